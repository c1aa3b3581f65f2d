"""PyMC's RandomVariables: its own RandomVariable classes (converted in
``dispatch/pymc_random.py``) and the symbolic random variables PyMC builds from basic ones
(mixtures, censoring, ordered categories, inlined), checked in distribution against SciPy with
fixed seeds, in ONNX Runtime and onnx.reference, float32 and float64."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.stats as st
from onnx.reference import ReferenceEvaluator

from pytensor_onnx import UnsupportedOpError, export_onnx
from pytensor_onnx.precision import float64_tensors
from tests.compare import ort_session
from tests.dispatch.test_random import N_DRAWS, P_MIN, _chi_square_p

pm = pytest.importorskip("pymc")

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def _draws(x: Any, seed: int, *, runtime: str = "ort") -> np.ndarray:
    """The draws of the PyMC variable ``x``; its generators (the only inputs: one per
    distribution PyMC made, e.g. a mixture's weights and components) get seeds from ``seed``."""
    model = export_onnx([], [x])
    feeds = {i.name: np.array(seed + k, np.int64) for k, i in enumerate(model.graph.input)}
    if runtime == "ort":
        (out,) = ort_session(model).run(None, feeds)
    else:
        (out,) = ReferenceEvaluator(model).run(None, feeds)
    return np.asarray(out)


def _truncated_cdf(dist: Any, lower: float, upper: float) -> Callable[[np.ndarray], np.ndarray]:
    low, high = dist.cdf(lower), dist.cdf(upper)
    return lambda x: np.clip((dist.cdf(x) - low) / (high - low), 0.0, 1.0)


def _mixture_cdf(weights: list[float], dists: list[Any]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: sum(w * d.cdf(x) for w, d in zip(weights, dists, strict=True))


def _piecewise_linear_cdf(x: np.ndarray, pdf: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The CDF of the density that interpolates ``pdf`` linearly on the lattice ``x``
    (normalized), integrated exactly per segment."""
    widths = np.diff(x)
    slopes = np.diff(pdf) / widths
    cumulative = np.concatenate([[0.0], np.cumsum((pdf[:-1] + pdf[1:]) / 2 * widths)])

    def cdf(y: np.ndarray) -> np.ndarray:
        i = np.clip(np.searchsorted(x, y, side="right") - 1, 0, len(x) - 2)
        t = np.clip(y - x[i], 0.0, widths[i])
        return (cumulative[i] + pdf[i] * t + slopes[i] * t * t / 2) / cumulative[-1]

    return cdf


_TRIANGLES = (np.array([0.0, 0.5, 1.3, 2.0, 3.0]), np.array([0.0, 1.0, 1.0, 0.2, 0.0]))
_GAMMA_LATTICE = np.linspace(0.05, 8.0, 50) ** 1.5  # uneven spacing
_GAMMA = (_GAMMA_LATTICE, st.gamma(2.5).pdf(_GAMMA_LATTICE))

#: (name, PyMC variable from (dtype, size), SciPy CDF).
CONTINUOUS: list[tuple[str, Callable[[str, Any], Any], Callable[[np.ndarray], np.ndarray]]] = [
    (
        "skew_normal",
        lambda d, s: pm.SkewNormal.dist(mu=1.0, sigma=2.0, alpha=-3.0, size=s, dtype=d),
        st.skewnorm(-3.0, 1.0, 2.0).cdf,
    ),
    (
        "skew_normal_symmetric",
        lambda d, s: pm.SkewNormal.dist(mu=0.0, sigma=1.0, alpha=0.0, size=s, dtype=d),
        st.norm().cdf,
    ),
    (
        "wald_shifted",
        lambda d, s: pm.Wald.dist(mu=1.5, lam=2.0, alpha=0.5, size=s, dtype=d),
        st.invgauss(1.5 / 2.0, loc=0.5, scale=2.0).cdf,
    ),
    (
        "rice",
        lambda d, s: pm.Rice.dist(nu=2.0, sigma=1.5, size=s, dtype=d),
        st.rice(2.0 / 1.5, scale=1.5).cdf,
    ),
    (
        "moyal",
        lambda d, s: pm.Moyal.dist(mu=0.5, sigma=2.0, size=s, dtype=d),
        st.moyal(0.5, 2.0).cdf,
    ),
    (
        "student_t",
        lambda d, s: pm.StudentT.dist(nu=3.0, mu=1.0, sigma=2.0, size=s, dtype=d),
        st.t(3.0, 1.0, 2.0).cdf,
    ),
    (
        "normal_mixture",
        lambda d, s: pm.Mixture.dist(
            w=[0.3, 0.7],
            comp_dists=pm.Normal.dist(mu=[-2.0, 2.0], sigma=[1.0, 0.5], dtype=d),
            size=s,
        ),
        _mixture_cdf([0.3, 0.7], [st.norm(-2.0, 1.0), st.norm(2.0, 0.5)]),
    ),
    # Rising and falling segments from and to a zero density, a flat one; and 49 segments of
    # an uneven lattice.
    *[
        (
            f"interpolated_{name}",
            lambda d, s, points=points: pm.Interpolated.dist(*points, size=s, dtype=d),
            _piecewise_linear_cdf(*points),
        )
        for name, points in [("triangles", _TRIANGLES), ("gamma", _GAMMA)]
    ],
    *[
        (
            f"truncated_normal_{name}",
            lambda d, s, lower=lower, upper=upper: pm.TruncatedNormal.dist(
                mu=1.0, sigma=2.0, lower=lower, upper=upper, size=s, dtype=d
            ),
            st.truncnorm((lower - 1.0) / 2.0, (upper - 1.0) / 2.0, 1.0, 2.0).cdf,
        )
        # The bulk, one-sided, both tails, a narrow interval, and far tails that the CDF
        # cannot reach (rejection, on both sides and with both proposals).
        for name, lower, upper in [
            ("central", -1.0, 4.0),
            ("lower_bound", 2.0, np.inf),
            ("upper_tail", 15.0, 16.0),
            ("lower_tail", -np.inf, -13.0),
            ("narrow", 0.99, 1.01),
            ("far_right", 81.0, np.inf),
            ("far_left", -np.inf, -81.0),
            ("far_narrow", 101.0, 101.02),  # a uniform proposal
            ("far_short", 101.0, 101.05),  # an exponential one, a third of it past the end
        ]
    ],
    # Truncated distributions without a specialized sampler draw by inverting the CDF:
    # gammaincinv (Gamma, InverseGamma) and betaincinv (Beta, StudentT).
    *[
        (
            f"truncated_{name}",
            lambda d, s, base=base, lower=lower, upper=upper: pt.cast(
                pm.Truncated.dist(base(), lower=lower, upper=upper, size=s), d
            ),
            _truncated_cdf(dist, lower, upper),
        )
        for name, base, dist, lower, upper in [
            ("gamma", lambda: pm.Gamma.dist(2.5, 1.5), st.gamma(2.5, scale=1 / 1.5), 0.5, 3.0),
            ("gamma_tail", lambda: pm.Gamma.dist(0.4, 1.0), st.gamma(0.4), 6.0, np.inf),
            (
                "inverse_gamma",
                lambda: pm.InverseGamma.dist(3.0, 2.0),
                st.invgamma(3.0, scale=2.0),
                0.2,
                1.5,
            ),
            ("beta", lambda: pm.Beta.dist(2.0, 5.0), st.beta(2.0, 5.0), 0.1, 0.6),
            ("beta_small", lambda: pm.Beta.dist(0.3, 0.6), st.beta(0.3, 0.6), 0.001, 0.999),
            ("student_t", lambda: pm.StudentT.dist(nu=3.0), st.t(3.0), -1.0, 8.0),
        ]
    ],
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "make", "cdf"), CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_goodness_of_fit(
    name: str, make: Callable[[str, Any], Any], cdf: Callable[[np.ndarray], np.ndarray], dtype: str
) -> None:
    x = make(dtype, (N_DRAWS,))
    draws = _draws(x, 4321)
    assert draws.dtype == dtype and draws.shape == (N_DRAWS,)
    assert np.all(np.isfinite(draws))
    assert st.kstest(draws.astype(np.float64), cdf).pvalue > P_MIN


#: The cases whose samplers keep float64 inside in float32-only exports (said by a warning):
#: the truncated normal (float64 erfc/erfcinv), the interpolated distribution's lattice
#: search, the mixture's component index (a categorical draw); the truncated ones of other
#: distributions invert their CDF with float32 special functions.
FLOAT64_INSIDE = ("interpolated_", "truncated_normal_", "normal_mixture")


@pytest.mark.parametrize(("name", "make", "cdf"), CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_goodness_of_fit_in_float32_only_exports(
    name: str, make: Callable[[str, Any], Any], cdf: Callable[[np.ndarray], np.ndarray]
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = export_onnx([], [make("float64", (N_DRAWS,))], float32=True)
    warned = [w for w in caught if "float32 conversion" in str(w.message)]
    if name.startswith(FLOAT64_INSIDE):
        assert warned and float64_tensors(model)
    else:
        assert not warned and not float64_tensors(model)
    feeds = {i.name: np.array(4321 + k, np.int64) for k, i in enumerate(model.graph.input)}
    (draws,) = ort_session(model).run(None, feeds)
    assert draws.dtype == np.float32
    if name != "truncated_gamma_tail":
        assert np.all(np.isfinite(draws))
    # PyMC draws a truncated variable as the inverse CDF of a uniform between the CDFs of
    # the bounds: above 6, Gamma(0.4)'s CDF is within 1.1e-3 of 1, where float32 resolves
    # about 17,500 values, and the uniforms within 3e-5 of the top round to a CDF of 1, whose
    # inverse is inf (PyMC's own float32 graph does the same).
    assert st.kstest(draws.astype(np.float64), cdf).pvalue > P_MIN


def _ordered_logistic_pmf(eta: float, cutpoints: np.ndarray) -> np.ndarray:
    cdf = np.concatenate([[0.0], 1 / (1 + np.exp(-(cutpoints - eta))), [1.0]])
    return np.diff(1 - cdf[::-1])[::-1]


_CUTPOINTS = np.array([-1.0, 0.0, 1.5])
_ZIP_SUPPORT = np.arange(40)
_ZIP_PMF = 0.3 * (_ZIP_SUPPORT == 0) + 0.7 * st.poisson(3.0).pmf(_ZIP_SUPPORT)

#: (name, PyMC variable of the given size, SciPy distribution).
DISCRETE: list[tuple[str, Callable[[Any], Any], Any]] = [
    (
        "discrete_uniform",
        lambda s: pm.DiscreteUniform.dist(lower=-2, upper=4, size=s),
        st.randint(-2, 5),
    ),
    (
        "zero_inflated_poisson",
        lambda s: pm.ZeroInflatedPoisson.dist(psi=0.7, mu=3.0, size=s),
        st.rv_discrete(values=(_ZIP_SUPPORT, _ZIP_PMF / _ZIP_PMF.sum())),
    ),
    (
        "ordered_logistic",
        lambda s: pm.OrderedLogistic.dist(eta=0.5, cutpoints=_CUTPOINTS, size=s),
        st.rv_discrete(
            values=(
                np.arange(4),
                np.diff(np.concatenate([[0.0], 1 / (1 + np.exp(-(_CUTPOINTS - 0.5))), [1.0]])),
            )
        ),
    ),
]


@pytest.mark.parametrize(("name", "make", "dist"), DISCRETE, ids=[c[0] for c in DISCRETE])
def test_discrete_goodness_of_fit(name: str, make: Callable[[Any], Any], dist: Any) -> None:
    draws = _draws(make((N_DRAWS,)), 99)
    assert draws.shape == (N_DRAWS,)
    assert _chi_square_p(draws.astype(np.int64), dist) > P_MIN


@pytest.mark.parametrize(
    "make",
    [
        c[1]
        for c in CONTINUOUS
        if c[0]
        in {
            "skew_normal",
            "wald_shifted",
            "rice",
            "moyal",
            "truncated_normal_far_right",
            "interpolated_gamma",
        }
    ]
    + [lambda d, s: pm.DiscreteUniform.dist(lower=-2, upper=4, size=s)],
)
def test_reference_evaluator_draws_what_onnxruntime_draws(make: Callable[..., Any]) -> None:
    x = make("float64", (2, 40))
    runtime = _draws(x, 5)
    reference = _draws(x, 5, runtime="reference")
    assert reference.dtype == runtime.dtype and reference.shape == runtime.shape == (2, 40)
    np.testing.assert_allclose(reference, runtime, rtol=1e-12)


def test_censored_normal_puts_the_tail_mass_on_the_bounds() -> None:
    x = pm.Censored.dist(pm.Normal.dist(0.0, 1.0), lower=-1.0, upper=0.5, size=N_DRAWS)
    draws = _draws(x, 8)
    assert draws.min() == -1.0 and draws.max() == 0.5
    tolerance = 4 * np.sqrt(0.25 / N_DRAWS)
    assert abs(np.mean(draws == -1.0) - st.norm.cdf(-1.0)) < tolerance
    assert abs(np.mean(draws == 0.5) - st.norm.sf(0.5)) < tolerance


def test_parameters_broadcast() -> None:
    x = pm.SkewNormal.dist(mu=np.array([-100.0, 0.0, 100.0]), sigma=0.1, alpha=np.array([[1.0]]))
    draws = _draws(x, 3)
    assert draws.shape == (1, 3)
    np.testing.assert_allclose(draws, [[-100.0, 0.0, 100.0]], atol=1.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("alpha", "k"), [(2.5, 4), (0.3, 6), (40.0, 3)])
def test_stick_breaking_weights(alpha: float, k: int, dtype: str) -> None:
    """The first weight is Beta(1, alpha); the last, ``prod (1 - beta_j)``, has
    ``-log`` Gamma(K, 1 / alpha); the weights are positive and sum to 1."""
    x = pm.StickBreakingWeights.dist(alpha=alpha, K=k, size=N_DRAWS, dtype=dtype)
    draws = _draws(x, 17)
    assert draws.dtype == dtype and draws.shape == (N_DRAWS, k + 1)
    assert np.all(draws >= 0)
    np.testing.assert_allclose(draws.sum(axis=1), 1.0, rtol=1e-5 if dtype == "float32" else 1e-12)
    wide = draws.astype(np.float64)
    assert st.kstest(wide[:, 0], st.beta(1.0, alpha).cdf).pvalue > P_MIN
    assert st.kstest(-np.log(wide[:, -1]), st.gamma(k, scale=1.0 / alpha).cdf).pvalue > P_MIN


def test_stick_breaking_weights_batched() -> None:
    x = pm.StickBreakingWeights.dist(alpha=np.array([0.5, 5.0]), K=3, size=(4, 2))
    draws = _draws(x, 2)
    assert draws.shape == (4, 2, 4)
    np.testing.assert_allclose(draws.sum(axis=-1), 1.0, rtol=1e-12)
    # Independent elements: no two rows alike.
    assert len({tuple(row) for row in draws.reshape(-1, 4)}) == 8
    np.testing.assert_allclose(_draws(x, 2, runtime="reference"), draws, rtol=1e-12)


@pytest.mark.parametrize(
    ("make", "name", "reason"),
    [
        (lambda: pm.PolyaGamma.dist(h=1.0, z=0.0, size=3), "PolyaGammaRV", "ONNX sampler"),
        (
            lambda: pm.Interpolated.dist(
                x_points=np.linspace(0, 1, 5), pdf_points=np.ones(5), size=3
            ).owner.op(np.ones((2, 5)), np.ones((2, 5)), np.ones((2, 5))),
            "InterpolatedRV",
            "a batch of lattices",
        ),
    ],
)
def test_unconverted_pymc_distributions_are_refused_by_name(
    make: Callable[[], Any], name: str, reason: str
) -> None:
    with pytest.raises(UnsupportedOpError, match=name) as info:
        export_onnx([], [make()])
    assert reason in str(info.value)


def test_autoregressive_draws_inside_a_scan() -> None:
    # PyMC's AR draws its innovations in a Scan whose inner graph holds a symbolic random
    # variable with an absent size.
    x = pm.AR.dist(
        rho=[0.6], sigma=0.5, init_dist=pm.Normal.dist(1.0, 2.0), steps=3, shape=(N_DRAWS, 4)
    )
    draws = _draws(x, 21)
    assert draws.shape == (N_DRAWS, 4)
    assert st.kstest(draws[:, 0], st.norm(1.0, 2.0).cdf).pvalue > P_MIN
    innovations = draws[:, 1:] - 0.6 * draws[:, :-1]
    assert st.kstest(innovations.ravel(), st.norm(0.0, 0.5).cdf).pvalue > P_MIN


def test_interpolated_lattice_given_at_run_time() -> None:
    """A lattice of unknown length (the bisection is a Loop) and a symbolic size."""
    op = pm.Interpolated.dist(np.linspace(0, 1, 3), np.ones(3)).owner.op
    x, pdf, cdf = pt.dvector("x"), pt.dvector("pdf"), pt.dvector("cdf")
    n = pt.lscalar("n")
    draws = op(x, pdf, cdf, size=(n,))
    model = export_onnx([x, pdf, cdf, n], [draws])
    lattice, density = _GAMMA
    density = density / np.sum((density[:-1] + density[1:]) / 2 * np.diff(lattice))
    cumulative = _piecewise_linear_cdf(lattice, density)(lattice)
    feeds = {"x": lattice, "pdf": density, "cdf": cumulative, "n": np.array(N_DRAWS)}
    feeds["seed"] = np.array(7, np.int64)
    (out,) = ort_session(model).run(None, feeds)
    assert out.shape == (N_DRAWS,) and np.all((out >= lattice[0]) & (out <= lattice[-1]))
    assert st.kstest(out, _piecewise_linear_cdf(lattice, density)).pvalue > P_MIN
    feeds["n"] = np.array(50)
    (reference,) = ReferenceEvaluator(model).run(None, feeds)
    np.testing.assert_array_equal(reference, ort_session(model).run(None, feeds)[0])
