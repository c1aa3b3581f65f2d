"""Special functions (``pytensor.scalar.math``) and inverse trigonometric functions.

Each function is checked twice: against PyTensor's own evaluation (``compare_onnx_and_py``:
ONNX Runtime and ``onnx.reference``, both opsets, static and symbolic shapes) on grids with
edge values, and against SciPy/NumPy on dense grids reaching into the tails with tolerances
close to the accuracy documented in ``docs/ops/special_functions.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special as sp

from pytensor_onnx import DEFAULT_OPSET, UnsupportedOpError, export_onnx, runtimes
from pytensor_onnx.dispatch._numerics import FEW_ELEMENTS
from tests.compare import compare_onnx_and_py, input_like, ort_session

EDGES = np.array([-np.inf, -3.5, -1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 2.0, 30.0, np.inf, np.nan])


def _grid(low: float, high: float, extra: tuple[float, ...] = ()) -> np.ndarray:
    inside = EDGES[(low <= EDGES) & (high >= EDGES) | np.isnan(EDGES)]
    return np.concatenate([inside, np.linspace(max(low, -8.0), min(high, 8.0), 23), extra])


# name: (function, grid for the comparison with PyTensor)
UNARY: dict[str, tuple[Callable[[pt.TensorVariable], pt.TensorVariable], np.ndarray]] = {
    "erf": (pt.erf, _grid(-np.inf, np.inf, (6.0, -27.0))),
    "erfc": (pt.erfc, _grid(-np.inf, np.inf, (9.5, 26.0, -27.0))),
    "erfcx": (pt.erfcx, _grid(-26.0, np.inf, (1e3, 1e10, -20.0))),
    "erfinv": (pt.erfinv, _grid(-1.0, 1.0, (0.999999, -0.9999999999, 1e-20, 1.5))),
    "erfcinv": (pt.erfcinv, _grid(0.0, 2.0, (1e-300, 1e-20, 1.9999999, 3.0))),
    "gammaln": (pt.gammaln, _grid(-np.inf, np.inf, (-2.5, -7.3, 1e8, 1e300))),
    "gamma": (pt.gamma, _grid(-np.inf, np.inf, (-2.5, -7.3, 120.3, 171.5, 180.0))),
    "psi": (pt.psi, _grid(-np.inf, np.inf, (-2.5, -7.3, 1.4616321449683622, 1e10))),
    "tri_gamma": (pt.tri_gamma, _grid(-np.inf, np.inf, (-2.5, -7.3, 1e-8, 1e10))),
    # SciPy's i0/i1 return NaN at +-inf; the decomposition returns the limit, +-inf.
    "i0": (pt.i0, _grid(-700.0, 700.0, (-700.0, 12.0, 700.0))),
    "i1": (pt.i1, _grid(-700.0, 700.0, (-700.0, 12.0, 700.0))),
    # SciPy's j0/j1 return NaN at +-inf; the decomposition returns the limit, 0.
    "j0": (pt.j0, _grid(-1e30, 1e30, (2.404825557695773, 8.0, 8.5, -30.5, 1e5, 1e30))),
    "j1": (pt.j1, _grid(-1e30, 1e30, (3.8317059702075125, 8.0, 8.5, -30.5, 1e5, 1e30))),
    "log1mexp": (pt.log1mexp, _grid(-np.inf, 0.0, (-1e-10, -0.6931, -0.6932, -40.0, -800.0))),
    "softplus": (pt.softplus, _grid(-np.inf, np.inf, (-40.0, 20.0, 35.0))),
    "log_sigmoid": (lambda x: pt.log(pt.sigmoid(x)), _grid(-np.inf, np.inf, (-40.0, 20.0, 40.0))),
    "arctan": (pt.arctan, _grid(-np.inf, np.inf, (0.4142135, 1e300, -1e-300))),
    "arcsin": (pt.arcsin, _grid(-1.0, 1.0, (0.999999, -0.4142, 1.5))),
    "arccos": (pt.arccos, _grid(-1.0, 1.0, (0.999999, -0.999999, -1.5))),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_pytensor(name: str, floatX: str) -> None:
    fn, grid = UNARY[name]
    with np.errstate(all="ignore"):
        value = grid.astype(floatX)
    x = input_like(value, "x")
    # One opset here; test_unary_with_symbolic_shapes runs every function at all of them.
    compare_onnx_and_py([x], [fn(x)], [value], opsets=(DEFAULT_OPSET,))


def test_unary_with_symbolic_shapes(floatX: str, symbolic: bool) -> None:
    # All functions in one graph (output i is sorted(UNARY)[i]), on 2-D inputs.
    names = sorted(UNARY)
    with np.errstate(all="ignore"):
        values = [np.resize(UNARY[name][1], (2, 11)).astype(floatX) for name in names]
    inputs = [input_like(v, f"x_{name}", symbolic) for v, name in zip(values, names, strict=True)]
    outputs = [UNARY[name][0](x) for name, x in zip(names, inputs, strict=True)]
    compare_onnx_and_py(inputs, outputs, values)


def test_special_functions_broadcast_in_composites() -> None:
    # Elemwise fusion is off for ONNX, but user graphs may hold Composites; here a 2-D input
    # feeds several functions and an arithmetic combination (betaln is a gammaln sum).
    rng = np.random.default_rng(0)
    a_val = rng.uniform(0.1, 20.0, size=(3, 4))
    b_val = rng.uniform(0.1, 20.0, size=(1, 4))
    a = input_like(a_val, "a", symbolic=True)
    b = input_like(b_val, "b", symbolic=True)
    outputs = [pt.special.betaln(a, b), pt.erfc(a - b) * pt.psi(b), pt.gamma(a / b)]
    compare_onnx_and_py([a, b], outputs, [a_val, b_val])


# ------------------------------------------------------------------ accuracy vs SciPy
def _onnx_values(
    fn: Callable[..., pt.TensorVariable], *values: np.ndarray, elements: int | None = None
) -> np.ndarray:
    """``fn`` at ``values`` in ONNX Runtime, exported for inputs of unknown length or, with
    ``elements``, of that static length (the grid then runs in chunks, the last one padded):
    the decompositions take their forms for few elements there (``Num.few_elements``)."""
    shape = (elements,)
    inputs = [pt.tensor(f"x{i}", dtype=str(v.dtype), shape=shape) for i, v in enumerate(values)]
    session = ort_session(export_onnx(inputs, [fn(*inputs)]))
    if elements is None:
        return session.run(None, {x.name: v for x, v in zip(inputs, values, strict=True)})[0]
    length = len(values[0])
    padded = [np.resize(v, -(-length // elements) * elements) for v in values]
    chunks = [
        session.run(
            None, {x.name: v[start : start + elements] for x, v in zip(inputs, padded, strict=True)}
        )[0]
        for start in range(0, length, elements)
    ]
    return np.concatenate(chunks)[:length]


def _max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    got = got.astype(np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    error = np.abs(got - want) / np.abs(want)
    return float(np.max(np.where(same, 0.0, error)))


_RNG = np.random.default_rng(42)
_POSITIVE = np.concatenate([np.logspace(-300, 10, 2000), np.linspace(1e-3, 30.0, 3000)])
_NEAR_ONE_TWO = np.concatenate([1.0 + np.logspace(-16, -1, 200), 1.0 - np.logspace(-16, -1, 200)])
_NEAR_ONE_TWO = np.concatenate([_NEAR_ONE_TWO, _NEAR_ONE_TWO + 1.0])
# Negative non-integers away from the zeros of gammaln/psi, where any reflection formula
# (SciPy's too) loses relative accuracy by the conditioning of the function.
_NEGATIVE = -_RNG.uniform(0.0, 30.0, 2000)

# name: (pytensor function, scipy function, grid, float64 rtol).  The tolerances include
# SciPy's own error where it is the larger one (erfc/erfcx tails, gammaln next to 2, see
# test_accuracy_at_hard_points for the high-precision reference there).
ACCURACY = {
    "erf": (
        pt.erf,
        sp.erf,
        np.concatenate([np.linspace(-6, 6, 4001), np.logspace(-300, 0, 300)]),
        2e-15,
    ),
    "erfc": (
        pt.erfc,
        sp.erfc,
        np.concatenate([np.linspace(-6, 26.5, 8001), -np.logspace(-300, 0, 300)]),
        1e-13,
    ),
    "erfcx": (
        pt.erfcx,
        sp.erfcx,
        np.concatenate([np.linspace(-26, 30, 8001), np.logspace(-300, 10, 3000)]),
        1e-13,
    ),
    "erfinv": (
        pt.erfinv,
        sp.erfinv,
        np.concatenate([np.linspace(-1, 1, 4001)[1:-1], 1 - np.logspace(-16, -1, 300)]),
        2e-15,
    ),
    "erfcinv": (
        pt.erfcinv,
        sp.erfcinv,
        np.concatenate([np.linspace(0, 2, 4001)[1:-1], np.logspace(-307, -1, 600)]),
        2e-15,
    ),
    "gammaln": (pt.gammaln, sp.gammaln, _POSITIVE, 5e-14),
    "gamma": (
        pt.gamma,
        sp.gamma,
        np.concatenate([np.linspace(1e-3, 171.6, 8001), np.logspace(-300, 2.2, 1000)]),
        4e-15,
    ),
    "psi": (
        pt.psi,
        sp.psi,
        np.concatenate([_POSITIVE, 1.4616321449683622 + np.linspace(-1e-6, 1e-6, 201)]),
        2e-15,
    ),
    "tri_gamma": (
        pt.tri_gamma,
        lambda x: sp.polygamma(1, x),
        np.concatenate([_POSITIVE[1000:], _NEGATIVE]),
        2e-15,
    ),
    "i0": (pt.i0, sp.i0, np.linspace(-700, 700, 8001), 3e-15),
    "i1": (pt.i1, sp.i1, np.linspace(-700, 700, 8001), 3e-15),
    "arctan": (
        pt.arctan,
        np.arctan,
        np.concatenate([np.logspace(-300, 300, 3000), -np.logspace(-5, 5, 1000)]),
        5e-16,
    ),
    "arcsin": (
        pt.arcsin,
        np.arcsin,
        np.concatenate([np.linspace(-1, 1, 4001), 1 - np.logspace(-16, -1, 200)]),
        6e-16,
    ),
    "arccos": (
        pt.arccos,
        np.arccos,
        np.concatenate([np.linspace(-1, 1, 4001), -1 + np.logspace(-16, -1, 200)]),
        6e-16,
    ),
}


@pytest.mark.parametrize("elements", [None, FEW_ELEMENTS], ids=["many", "few"])
@pytest.mark.parametrize("name", sorted(ACCURACY))
def test_accuracy_against_scipy(name: str, floatX: str, elements: int | None) -> None:
    fn, reference, grid, rtol = ACCURACY[name]
    value = grid.astype(floatX)
    want = reference(value.astype(np.float64))
    got = _onnx_values(fn, value, elements=elements)
    if floatX == "float32":
        # Computed in float64 and rounded once (native kernels for atan/asin/acos).
        finite = np.abs(want) < np.finfo(np.float32).max
        normal = np.abs(want) > np.finfo(np.float32).tiny
        keep = finite & normal
        tolerance = 4e-7 if name.startswith("arc") else 1.2e-7
        assert _max_relative_error(got[keep], want[keep]) < tolerance
    else:
        assert _max_relative_error(got, want) < rtol


def test_accuracy_at_hard_points() -> None:
    # Where SciPy itself is off by more than 1e-14, against mpmath at 50 digits.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50

    def erfcinv_reference(q: object) -> object:
        return mpmath.findroot(lambda x: mpmath.log(mpmath.erfc(x)) - mpmath.log(q), 27)

    cases = [
        (pt.erfc, mpmath.erfc, np.linspace(10.0, 26.5, 67)),
        (pt.erfcx, lambda x: mpmath.erfc(x) * mpmath.exp(x * x), np.linspace(-26.0, -5.0, 43)),
        (pt.gammaln, mpmath.loggamma, np.concatenate([_NEAR_ONE_TWO[::8], [1.9915971990663552]])),
        (pt.erfcinv, erfcinv_reference, np.array([3.4086e-320, 1e-310, 5e-324])),
        (pt.psi, mpmath.digamma, 1.4616321449683622 + np.linspace(-1e-9, 1e-9, 21)),
    ]
    for fn, reference, grid in cases:
        want = np.array([float(reference(mpmath.mpf(float(v)))) for v in grid])
        assert _max_relative_error(_onnx_values(fn, grid), want) < 2e-15, fn


def test_reflection_accuracy_for_negative_arguments() -> None:
    # log|Gamma| and psi for x < 0 lose relative accuracy only next to their zeros: the
    # absolute error stays at rounding level of the reflection terms.
    x = _NEGATIVE
    got_lgamma = _onnx_values(pt.gammaln, x)
    np.testing.assert_allclose(got_lgamma, sp.gammaln(x), rtol=2e-15, atol=5e-15)
    got_psi = _onnx_values(pt.psi, x)
    # SciPy's psi is off by up to 5e-14 next to the poles (checked with mpmath).
    np.testing.assert_allclose(got_psi, sp.psi(x), rtol=1e-13, atol=5e-14)
    got_gamma = _onnx_values(pt.gamma, np.concatenate([x, -np.linspace(0.01, 170.0, 1000)]))
    np.testing.assert_allclose(
        got_gamma, sp.gamma(np.concatenate([x, -np.linspace(0.01, 170.0, 1000)])), rtol=5e-14
    )


@pytest.mark.parametrize("symbolic", [False, True])
def test_reflection_at_integers_and_ties(symbolic: bool) -> None:
    # The reflections take the nearest integer with Floor (tract has no float64 Round): poles
    # at large odd and even integers (where x + 1/2 is a tie), half-integers, the largest
    # double below 1/2, and integers too large for a fraction.
    big = 2.0**52
    values = np.array(
        [-(big + 1), -big, -(big - 0.5), -(2.0**53 + 2), -1e300, -3.5, -2.5, -1.5, -0.5,
         -(0.5 - 2.0**-54), 0.5 - 2.0**-54, -3.0, -1.0, -0.0, np.inf, -np.inf, np.nan]
    )  # fmt: skip
    x = input_like(values, "x", symbolic=symbolic)
    compare_onnx_and_py([x], [pt.gammaln(x), pt.gamma(x), pt.psi(x)], [values])


def test_gammaln_relative_accuracy_at_its_zeros() -> None:
    # gammaln(1 + e) ~ -0.577 e and gammaln(2 + e) ~ 0.423 e: the zeros are factored out.
    eps = np.array([1e-15, -1e-15, 3e-12, -7e-9, 1e-5])
    x = np.concatenate([1.0 + eps, 2.0 + eps])
    got = _onnx_values(pt.gammaln, x)
    # Leading terms of the Taylor series at 1 and 2 (psi(1) = -gamma, psi(2) = 1 - gamma).
    euler = 0.5772156649015329
    expected = np.concatenate([-euler * (x[:5] - 1.0), (1.0 - euler) * (x[5:] - 2.0)])
    # (SciPy's gammaln is off by up to 40% relative next to 1, so it is not the reference.)
    np.testing.assert_allclose(got[:4], expected[:4], rtol=1e-8)
    np.testing.assert_allclose(got[5:9], expected[5:9], rtol=1e-8)


def test_erfc_keeps_relative_accuracy_in_the_far_tail() -> None:
    x = np.array([10.0, 20.0, 25.0, 26.5, 27.0])
    got = _onnx_values(pt.erfc, x)
    np.testing.assert_allclose(got[:4], sp.erfc(x[:4]), rtol=4e-15)
    assert 0.0 < got[4] < 1e-317  # subnormal, as SciPy's


# ------------------------------------------------------------------------ gradients
GRADIENTS = {
    "erf": (pt.erf, np.array([-2.0, -0.3, 0.0, 0.4, 3.0])),
    "erfc": (pt.erfc, np.array([-2.0, -0.3, 0.0, 0.4, 3.0, 20.0])),
    "erfcx": (pt.erfcx, np.array([-2.0, -0.3, 0.0, 0.4, 3.0, 200.0])),
    "erfinv": (pt.erfinv, np.array([-0.99, -0.3, 0.0, 0.4, 0.999999])),
    "erfcinv": (pt.erfcinv, np.array([1e-10, 0.3, 1.0, 1.4, 1.99])),
    "gammaln": (pt.gammaln, np.array([1e-3, 0.5, 1.0, 2.0, 7.5, 40.0, -2.5])),
    "gamma": (pt.gamma, np.array([1e-3, 0.5, 1.0, 2.0, 7.5, 40.0, -2.5])),
    "psi": (pt.psi, np.array([1e-3, 0.5, 1.0, 2.0, 7.5, 40.0, -2.5])),
    "i0": (pt.i0, np.array([-30.0, -1.0, 0.0, 0.5, 9.0, 100.0])),
    "i1": (pt.i1, np.array([-30.0, -1.0, 0.0, 0.5, 9.0, 100.0])),
    # SciPy's j0/j1 return NaN at +-inf; the decomposition returns the limit, 0.
    "j0": (pt.j0, _grid(-1e30, 1e30, (2.404825557695773, 8.0, 8.5, -30.5, 1e5, 1e30))),
    "j1": (pt.j1, _grid(-1e30, 1e30, (3.8317059702075125, 8.0, 8.5, -30.5, 1e5, 1e30))),
    "log1mexp": (pt.log1mexp, np.array([-50.0, -1.0, -0.7, -0.1, -1e-8])),
    "log_sigmoid": (lambda x: pt.log(pt.sigmoid(x)), np.array([-50.0, -1.0, 0.0, 3.0, 40.0])),
    "arctan": (pt.arctan, np.array([-50.0, -1.0, 0.0, 3.0, 40.0])),
    "arcsin": (pt.arcsin, np.array([-0.9, -0.1, 0.0, 0.3, 0.99])),
    "arccos": (pt.arccos, np.array([-0.9, -0.1, 0.0, 0.3, 0.99])),
}


def test_gradients(floatX: str) -> None:
    # One graph: the gradient of sum_i sum(f_i(x_i)) is f_i' at x_i for each input.
    names = sorted(GRADIENTS)
    values = [GRADIENTS[name][1].astype(floatX) for name in names]
    inputs = [input_like(v, f"x_{name}") for v, name in zip(values, names, strict=True)]
    cost = pt.add(*(GRADIENTS[name][0](x).sum() for name, x in zip(names, inputs, strict=True)))
    compare_onnx_and_py(inputs, [cost, *pytensor.grad(cost, inputs)], values)


def test_gamma_next_to_zero_is_one_over_x(floatX: str, symbolic: bool) -> None:
    # Gamma(x) ~ 1/x: at subnormal negative x the reflection gave -0 for -inf (found by the
    # fuzzer at -2.2e-311), and 1/x overflows to +-inf below 1/DBL_MAX.
    tiny = np.finfo(floatX).tiny
    value = np.array([-tiny / 1e3, tiny / 1e3, -tiny, tiny, -1e-17, 1e-17, -6e-17, 0.0, -0.0])
    value = np.concatenate([value, [-np.finfo(floatX).smallest_subnormal, 1e-30]])
    value = value.astype(floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.gamma(x)], [value])


def test_gamma_and_poch_overflow_to_inf(floatX: str, symbolic: bool) -> None:
    # Past e^-z's underflow, Stirling's product was inf * 0 = NaN (poch(1, 3e38) in float32).
    value = np.array([30, 35.5, 36, 171.6, 172, 400, 1000, 1e30, 3e38, np.inf, np.nan])
    value = value.astype(floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.gamma(x), pt.special.poch(pt.ones_like(x), x)], [value])


def test_higher_derivatives_of_gammaln() -> None:
    # psi, tri_gamma, then polygamma(2, x) and polygamma(3, x): what Laplace approximations
    # and Fisher-information computations export.
    value = np.array([1e-3, 0.5, 1.0, 2.5, 7.5, 40.0, -2.5])
    x = input_like(value, "x")
    derivatives = [pt.gammaln(x)]
    for _ in range(4):
        derivatives.append(pytensor.grad(derivatives[-1].sum(), x))
    compare_onnx_and_py([x], derivatives[1:], [value])


@pytest.mark.parametrize("elements", [None, FEW_ELEMENTS], ids=["many", "few"])
def test_polygamma(floatX: str, elements: int | None) -> None:
    value = _grid(-np.inf, np.inf, (-2.5, -7.3, 1e-8, 1e10, 25.0)).astype(floatX)
    x = input_like(value, "x")
    outputs = [pt.polygamma(n, x) for n in (0, 1, 2, 5)]
    compare_onnx_and_py([x], outputs, [value], opsets=(DEFAULT_OPSET,))
    grid = np.concatenate([np.logspace(-20, 8, 500), np.linspace(1e-3, 40, 1000)])
    for n in (2, 3, 6):
        got = _onnx_values(lambda v, n=n: pt.polygamma(n, v), grid, elements=elements)
        assert _max_relative_error(got, sp.polygamma(n, grid)) < 3e-15
        negative = _onnx_values(lambda v, n=n: pt.polygamma(n, v), _NEGATIVE, elements=elements)
        want = sp.polygamma(n, _NEGATIVE)
        # SciPy is off by up to 1e-13 next to half-integers here (checked with mpmath).
        np.testing.assert_allclose(negative, want, rtol=2e-13, atol=2e-14)


def test_polygamma_of_unknown_order_is_refused() -> None:
    n = pt.lscalar("n")
    x = pt.vector("x")
    with pytest.raises(NotImplementedError, match="constant n"):
        export_onnx([n, x], [pt.polygamma(n, x)])


# ---------------------------------------------------------------- two-input functions
def test_arctan2_special_values(floatX: str) -> None:
    specials = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-300, 3.0])
    y_val, x_val = (v.ravel().astype(floatX) for v in np.meshgrid(specials, specials))
    y = input_like(y_val, "y")
    x = input_like(x_val, "x")
    compare_onnx_and_py([y, x], [pt.arctan2(y, x)], [y_val, x_val])
    got = _onnx_values(pt.arctan2, y_val, x_val)
    # Signed zeros and the +-pi branch follow NumPy exactly (float64: bit for bit).
    want = np.arctan2(y_val, x_val)
    number = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[number]), np.signbit(want[number]))
    if floatX == "float64":
        np.testing.assert_array_equal(got, want)


def test_arctan2_accuracy() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=5000) * np.exp(rng.normal(size=5000) * 20)
    x = rng.normal(size=5000) * np.exp(rng.normal(size=5000) * 20)
    got = _onnx_values(pt.arctan2, y, x)
    assert _max_relative_error(got, np.arctan2(y, x)) < 5e-16
    y_val, x_val = y[:50].reshape(5, 10), x[:10]
    ys = input_like(y_val, "y", symbolic=True)
    xs = input_like(x_val, "x", symbolic=True)
    cost = pt.arctan2(ys, xs).sum()
    compare_onnx_and_py([ys, xs], [cost, *pytensor.grad(cost, [ys, xs])], [y_val, x_val])


def _incomplete_gamma_grid() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    a = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), 2000))
    x = a * np.exp(rng.normal(size=2000) * 0.5)
    edge_a = np.array([0.5, 1.0, 2.0, 10.0, 100.0, 0.0, 0.0, 1.0, 1.0, np.inf, 2.0, -1.0, 3.0])
    edge_x = np.array([0.5, 1e-10, 30.0, 9.0, 150.0, 1.0, 0.0, 0.0, np.inf, 3.0, np.nan, 1.0, 1e3])
    return np.concatenate([a, edge_a]), np.concatenate([x, edge_x])


def test_gammainc_gammaincc(floatX: str) -> None:
    a_val, x_val = (v.astype(floatX) for v in _incomplete_gamma_grid())
    a = input_like(a_val, "a", symbolic=True)
    x = input_like(x_val, "x", symbolic=True)
    # SciPy's own error grows like a * 1e-16 for large a (up to ~1e-12 here).
    rtol = 5e-12 if floatX == "float64" else 1e-5
    compare_onnx_and_py([a, x], [pt.gammainc(a, x), pt.gammaincc(a, x)], [a_val, x_val], rtol=rtol)


def test_gammainc_small_arguments_and_tails() -> None:
    a = np.array([0.5, 1.0, 3.0, 20.0, 0.1, 5.0, 50.0])
    x = np.array([1e-8, 1e-3, 0.5, 5.0, 30.0, 60.0, 150.0])
    got_p = _onnx_values(pt.gammainc, a, x)
    got_q = _onnx_values(pt.gammaincc, a, x)
    np.testing.assert_allclose(got_p, sp.gammainc(a, x), rtol=2e-14)
    np.testing.assert_allclose(got_q, sp.gammaincc(a, x), rtol=2e-13)


def test_gammainc_far_below_a_keeps_relative_accuracy() -> None:
    # x << a: the prefix x^a e^-x / Gamma(a) used to lose its accuracy (8e-7 at x = 1e-8) and
    # underflow to 0 at x = 1e-20 (true 2.8e-207), so a gamma log-CDF became -inf.
    a = np.array([10.0, 10.0, 10.0, 50.0, 1e3, 2.5])
    x = np.array([1e-8, 1e-12, 1e-20, 1e-3, 10.0, 1e-30])
    np.testing.assert_allclose(_onnx_values(pt.gammainc, a, x), sp.gammainc(a, x), rtol=1e-13)
    log_cdf = _onnx_values(lambda a, x: pt.log(pt.gammainc(a, x)), a[2:3], x[2:3])
    np.testing.assert_allclose(log_cdf, np.log(sp.gammainc(a[2:3], x[2:3])), rtol=1e-14)


def test_gammainc_of_two_infinities_is_nan() -> None:
    inf = np.array([np.inf])
    assert np.isnan(_onnx_values(pt.gammainc, inf, inf)).all()
    assert np.isnan(_onnx_values(pt.gammaincc, inf, inf)).all()


def test_gammainc_gradient_wrt_x() -> None:
    a_val = np.array([0.5, 2.0, 30.0])
    x_val = np.array([0.3, 2.5, 28.0])
    a = input_like(a_val, "a")
    x = input_like(x_val, "x")
    cost = (pt.gammainc(a, x) + pt.log(pt.gammaincc(a, x))).sum()
    compare_onnx_and_py([a, x], [cost, pytensor.grad(cost, x)], [a_val, x_val])


def _incomplete_beta_grid(
    size: int, largest: float = 1e4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shapes from 1e-3 to ``largest`` and points spread around the mean, plus SciPy's edge
    cases."""
    rng = np.random.default_rng(5)
    a = np.exp(rng.uniform(np.log(1e-3), np.log(largest), size))
    b = np.exp(rng.uniform(np.log(1e-3), np.log(largest), size))
    mean = a / (a + b)
    spread = np.sqrt(mean * (1.0 - mean) / (a + b + 1.0))
    x = np.clip(mean + 2.0 * spread * rng.normal(size=size), 1e-300, 1.0 - 1e-16)
    x[: size // 4] = rng.uniform(size=size // 4)
    inf, nan = np.inf, np.nan
    edges = [
        (0.0, 1.0, 0.5), (1.0, 0.0, 0.5), (0.0, 0.0, 0.5), (-1.0, 1.0, 0.5), (1.0, 1.0, -0.1),
        (1.0, 1.0, 1.1), (2.0, 3.0, 0.0), (2.0, 3.0, 1.0), (inf, 1.0, 0.5), (1.0, inf, 0.5),
        (inf, inf, 0.5), (2.0, 3.0, nan), (nan, 1.0, 0.5), (1e-300, 1.0, 0.5), (0.0, 1.0, 0.0),
        (0.5, 0.5, 1e-300), (1.0, 0.0, 1.0), (0.0, inf, 0.5), (inf, 0.0, 0.5), (1.0, 1.0, 0.3),
        (1e5, 3e5, 0.25), (5.0, 1e6, 1e-6), (50.0, 60.0, 0.45), (2.0, 3.0, -0.0),
    ]  # fmt: skip
    edge_a, edge_b, edge_x = (np.array(column) for column in zip(*edges, strict=True))
    return (
        np.concatenate([a, edge_a]),
        np.concatenate([b, edge_b]),
        np.concatenate([x, edge_x]),
    )


def test_betainc(floatX: str, symbolic: bool) -> None:
    # SciPy evaluates float32 in float32, where I_x(a, b) at a + b = 1e4 is conditioned
    # like 100 ulp of x: its own error there is ~1e-5; the decomposition works in float64.
    largest = 1e4 if floatX == "float64" else 30.0
    grid = _incomplete_beta_grid(200, largest)
    values = [v.astype(floatX) for v in grid]
    a, b, x = (input_like(v, n, symbolic) for v, n in zip(values, "abx", strict=True))
    # The continued fraction's error grows like sqrt(a) eps, the prefix's like a eps.
    rtol = 5e-12 if floatX == "float64" else 2e-5
    compare_onnx_and_py([a, b, x], [pt.betainc(a, b, x)], values, rtol=rtol)


def test_betainc_relative_accuracy() -> None:
    a, b, x = (v[:2000] for v in _incomplete_beta_grid(2000))
    got = _onnx_values(pt.betainc, a, b, x)
    want = sp.betainc(a, b, x)
    # SciPy underflows to 0 below ~1e-290, where the decomposition still has the value.
    kept = want > 1e-280
    assert _max_relative_error(got[kept], want[kept]) < 3e-12
    assert np.all((got[~kept] >= 0.0) & (got[~kept] < 1e-280))


def test_betainc_large_and_unbalanced_shapes_keep_relative_accuracy() -> None:
    # One shape large and one small: the gammaln differences in log B(a, b) used to cancel
    # (4e-9 at a = 5, b = 1e6); a converged element used to drift while others iterated.
    a = np.array([5.0, 5269.07, 4.6256, 1e6, 3.0, 1e4])
    b = np.array([1e6, 0.001005, 0.00133, 1e6, 1e4, 3.0])
    x = np.array([1e-6, 0.9999954, 0.97067, 0.5, 2e-4, 0.9997])
    np.testing.assert_allclose(_onnx_values(pt.betainc, a, b, x), sp.betainc(a, b, x), rtol=1e-12)


def test_betainc_gradient() -> None:
    a_val = np.array([0.5, 2.0, 30.0, 1.5])
    b_val = np.array([1.5, 3.0, 20.0, 0.7])
    x_val = np.array([0.3, 0.5, 0.55, 0.9])
    a, b, x = (input_like(v, n) for v, n in zip((a_val, b_val, x_val), "abx", strict=True))
    cost = pt.log(pt.betainc(a, b, x)).sum()
    compare_onnx_and_py(
        [a, b, x], [cost, *pytensor.grad(cost, [a, b, x])], [a_val, b_val, x_val], rtol=1e-9
    )


# The inverses: SciPy's gammaincinv, gammainccinv and betaincinv.  Edges: the ends of
# [0, 1] for valid, zero and infinite shapes, invalid shapes and probabilities, NaN, the far
# tails (SciPy's quirks outside the domain, e.g. gammaincinv(1e-3, -0.1) = 0, are left out).
_INF, _NAN = np.inf, np.nan
_GAMMA_INVERSE_EDGES = [
    (2.0, 0.0), (2.0, 1.0), (0.0, 0.0), (0.0, 1.0), (_INF, 0.0), (_INF, 1.0), (0.0, 0.5),
    (-1.0, 0.5), (-1.0, 0.0), (_INF, 0.5), (2.0, -0.1), (2.0, 1.1), (2.0, _NAN), (_NAN, 0.5),
    (2.0, 1e-300), (1e-3, 0.5), (1e4, 0.5), (2.0, 1.0 - 2.0**-53), (1e-3, 1e-300),
]  # fmt: skip


def _gamma_inverse_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shapes from 1e-3 to 1e5, probabilities uniform or down to 1e-300, and the edges."""
    rng = np.random.default_rng(11)
    a = np.exp(rng.uniform(np.log(1e-3), np.log(1e5), size))
    p = np.where(rng.uniform(size=size) < 0.5, rng.uniform(size=size), 0.0)
    p = np.where(p == 0.0, np.exp(rng.uniform(-690.0, 0.0, size)), p)
    edge_a, edge_p = (np.array(column) for column in zip(*_GAMMA_INVERSE_EDGES, strict=True))
    return np.concatenate([a, edge_a]), np.concatenate([p, edge_p])


@pytest.mark.parametrize("name", ["gammaincinv", "gammainccinv"])
def test_gamma_inverses(name: str, floatX: str, symbolic: bool) -> None:
    a_val, p_val = (v.astype(floatX) for v in _gamma_inverse_grid(12))
    a = input_like(a_val, "a", symbolic)
    p = input_like(p_val, "p", symbolic)
    compare_onnx_and_py([a, p], [getattr(pt, name)(a, p)], [a_val, p_val], rtol=1e-11)


def test_beta_inverse(floatX: str, symbolic: bool) -> None:
    edges = [
        (2.0, 3.0, 0.3), (0.5, 0.5, 0.9), (30.0, 2.0, 1e-20), (1e-3, 5.0, 0.7), (4.0, 1e3, 0.999),
        (0.0, 1.0, 0.5), (1.0, 0.0, 0.5), (_INF, 1.0, 0.0), (-1.0, 2.0, 0.5), (2.0, 2.0, 0.0),
        (2.0, 2.0, 1.0), (2.0, 2.0, _NAN), (_INF, 2.0, 0.0), (_INF, 2.0, 1.0), (0.0, 3.0, 0.0),
        (2.0, 2.0, -0.1), (2.0, 2.0, 1.1), (_NAN, 2.0, 0.5), (2.0, 3.0, 1e-300),
    ]  # fmt: skip
    a_val, b_val, y_val = (np.array(column) for column in zip(*edges, strict=True))
    values = [v.astype(floatX) for v in (a_val, b_val, y_val)]
    a, b, y = (input_like(v, n, symbolic) for v, n in zip(values, "aby", strict=True))
    compare_onnx_and_py([a, b, y], [pt.betaincinv(a, b, y)], values, rtol=1e-11)


def test_gamma_inverses_are_accurate_from_the_bulk_to_the_far_tails() -> None:
    a, p = _gamma_inverse_grid(2000)
    for name in ("gammaincinv", "gammainccinv"):
        got = _onnx_values(getattr(pt, name), a, p)
        want = getattr(sp, name)(a, p)
        assert _max_relative_error(got, want) < 2e-12, name


def test_beta_inverse_is_accurate_and_solves_where_scipy_does_not() -> None:
    rng = np.random.default_rng(12)
    size = 300
    a = np.exp(rng.uniform(np.log(1e-3), np.log(1e5), size))
    b = np.exp(rng.uniform(np.log(1e-3), np.log(1e5), size))
    y = np.where(rng.uniform(size=size) < 0.5, rng.uniform(size=size), 0.0)
    y = np.where(y == 0.0, np.exp(rng.uniform(-690.0, 0.0, size)), y)
    got = _onnx_values(pt.betaincinv, a, b, y)
    want = sp.betaincinv(a, b, y)
    # Below the smallest normal number SciPy stops at 2.2e-308 and the export gives the
    # power law's (subnormal or zero) root; elsewhere both agree.
    normal = want > np.finfo(np.float64).tiny
    assert _max_relative_error(got[normal], want[normal]) < 1e-11
    assert np.all(got[want == np.finfo(np.float64).tiny] < 2.3e-308)
    # SciPy returns NaN for some far-tail points: the export's root solves the equation.
    failed = np.isnan(want)
    assert failed.any() and np.isfinite(got[failed]).all()
    np.testing.assert_allclose(sp.betainc(a[failed], b[failed], got[failed]), y[failed], rtol=1e-12)


@pytest.mark.parametrize("name", ["gammaincinv", "gammainccinv", "betaincinv"])
def test_incomplete_inverses_in_float32_models(name: str) -> None:
    # float32=True computes the inverses in float32: about 1e-6 relative (up to 2.2e-5 for
    # shapes near 0.05), as the roots of a function known to a few float32 ulps (amplified
    # by 1/a for small shapes).
    rng = np.random.default_rng(13)
    shapes = [rng.uniform(0.05, 50.0, 500) for _ in range(2 if name == "betaincinv" else 1)]
    p = np.concatenate([rng.uniform(size=250), np.exp(rng.uniform(-80.0, 0.0, 250))])
    values = [v.astype(np.float32) for v in (*shapes, p)]
    inputs = [pt.vector(f"x{i}", dtype="float64") for i in range(len(values))]
    model = export_onnx(inputs, [getattr(pt, name)(*inputs)], float32=True)
    got = ort_session(model).run(None, {x.name: v for x, v in zip(inputs, values, strict=True)})[0]
    want = getattr(sp, name)(*(v.astype(np.float64) for v in values))
    assert got.dtype == np.float32
    kept = want > 1e-30
    assert _max_relative_error(got[kept], want[kept]) < 5e-5


def test_float32_beta_inverse_stays_in_the_unit_interval_near_one() -> None:
    # A converged float32 Halley step rounded to 1.0000004 for y within 1e-4 of 1 (a NaN in
    # PyMC's StudentT inverse CDF, sqrt(nu / x - nu)); it is limited to the bracket now.
    y = pt.vector("y", dtype="float64")
    model = export_onnx([y], [pt.betaincinv(1.5, 0.5, y)], float32=True)
    near_one = np.float32(1) - np.arange(2000, dtype=np.float32) * np.float32(2**-24)
    (got,) = ort_session(model).run(None, {"y": near_one})
    assert np.all((got >= 0) & (got <= 1))
    want = sp.betaincinv(1.5, 0.5, near_one.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not hasattr(pt, "ndtri_exp"), reason="PyTensor has no ndtri_exp")
def test_ndtri_exp(floatX: str, symbolic: bool) -> None:
    # The three forms (log(2 e^y) in the lower tail, expm1 in the centre and the upper tail),
    # their boundaries log(1/4) and log(3/4), and the edges 0, > 0, -inf, NaN.
    edges = [-800.0, -30.0, -2.0, np.log(0.25), -0.7, np.log(0.75), -0.1, -1e-10, -1e-300]
    value = np.array([*edges, 0.0, 1e-300, 0.5, -np.inf, np.nan]).astype(floatX)
    y = input_like(value, "y", symbolic)
    compare_onnx_and_py([y], [pt.ndtri_exp(y)], [value])


@pytest.mark.skipif(not hasattr(pt, "ndtri_exp"), reason="PyTensor has no ndtri_exp")
def test_ndtri_exp_far_below_the_subnormal_numbers() -> None:
    # exp(y) underflows below y = -745; the tail series covers y down to about -1490 and the
    # asymptotic form of erfc beyond (to y = -1e300, where the quantile is -1.4e150).
    y = np.array([-1490.0, -1500.0, -1e5, -227319.4032961852, -1e300])
    got = _onnx_values(pt.ndtri_exp, y)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    want = [
        float(mpmath.findroot(lambda x, t=t: mpmath.log(mpmath.ncdf(x)) - t, sp.ndtri_exp(t)))
        for t in y[:-1]
    ]
    np.testing.assert_allclose(got[:-1], want, rtol=4e-16)
    np.testing.assert_allclose(got[-1], -math.sqrt(2e300), rtol=1e-15)


def test_empty_input_does_not_loop() -> None:
    value = np.zeros((0, 3))
    a = input_like(value, "a", symbolic=True)
    x = input_like(value, "x", symbolic=True)
    outputs = [
        pt.gammainc(a, x),
        pt.erfc(x),
        pt.gammaln(a),
        pt.betainc(a, a, x),
        pt.gammaincinv(a, x),
        pt.betaincinv(a, a, x),
    ]
    compare_onnx_and_py([a, x], outputs, [value, value])


def test_log_add_and_diff_exp() -> None:
    a_val = np.array([-1000.0, -3.0, 0.0, 5.0, 700.0, -np.inf, 2.0])
    b_val = np.array([-1001.0, -3.5, -1e-9, 1.0, 699.0, -np.inf, 2.0])
    a = input_like(a_val, "a")
    b = input_like(b_val, "b")
    logdiffexp = pt.log(pt.exp(a) - pt.exp(b))
    compare_onnx_and_py([a, b], [pt.logaddexp(a, b), logdiffexp], [a_val, b_val])


def test_xlogx_xlogy0() -> None:
    from pytensor.tensor import xlogx

    x_val = np.array([0.0, 1e-300, 0.5, 1.0, 3.0, np.inf])
    y_val = np.array([0.0, 0.0, 2.0, 1.0, 0.5, 2.0])
    x = input_like(x_val, "x")
    y = input_like(y_val, "y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated in PyTensor 3
        outputs = [xlogx.xlogx(x), xlogx.xlogy0(x, y)]
    compare_onnx_and_py([x, y], outputs, [x_val, y_val])


# --------------------------------------------------------------- structure and tables
def test_float64_graphs_avoid_missing_kernels() -> None:
    x = pt.vector("x", dtype="float64")
    outputs = [f(x) for f in (pt.erf, pt.erfc, pt.gammaln, pt.psi, pt.arctan, pt.arcsin, pt.arccos)]
    model = export_onnx([x], outputs)
    op_types = {node.op_type for node in model.graph.node}
    assert not op_types & {"Erf", "Atan", "Asin", "Acos", "Softplus"}
    # Horner/Clenshaw evaluation keeps the graphs small.
    assert len(model.graph.node) < 1200


def test_chebyshev_tables_are_the_stated_interpolants() -> None:
    mpmath = pytest.importorskip("mpmath")
    from pytensor_onnx.dispatch import _special_tables as tables

    mpmath.mp.dps = 40

    def coefficients(f: Callable[[object], object], low: float, high: float, n: int) -> np.ndarray:
        nodes = [mpmath.cos(mpmath.pi * (j + 0.5) / n) for j in range(n)]
        values = [f((high - low) / 2 * t + (high + low) / 2) for t in nodes]
        c = [
            2
            * mpmath.fsum(
                v * mpmath.cos(mpmath.pi * k * (j + 0.5) / n) for j, v in enumerate(values)
            )
            / n
            for k in range(n)
        ]
        c[0] /= 2
        return np.array([float(v) for v in c])

    erf_small = coefficients(lambda z: mpmath.erf(mpmath.sqrt(z)) / mpmath.sqrt(z), 0.0, 0.25, 40)
    np.testing.assert_allclose(
        tables.ERF_SMALL_CHEB, erf_small[: len(tables.ERF_SMALL_CHEB)], rtol=1e-15, atol=1e-30
    )
    z_max = tables.ATAN_SMALL_MAX**2
    atan_small = coefficients(
        lambda z: mpmath.atan(mpmath.sqrt(z)) / mpmath.sqrt(z), 0.0, z_max, 40
    )
    np.testing.assert_allclose(
        tables.ATAN_SMALL_CHEB, atan_small[: len(tables.ATAN_SMALL_CHEB)], rtol=1e-13, atol=1e-30
    )
    z1, z2 = (mpmath.mpf(hi) + mpmath.mpf(lo) for hi, lo in tables.J0_ZEROS)
    j0_small = coefficients(
        lambda s: mpmath.besselj(0, mpmath.sqrt(s)) / ((s - z1**2) * (s - z2**2)), 0.0, 64.0, 60
    )
    np.testing.assert_allclose(
        tables.J0_SMALL_CHEB, j0_small[: len(tables.J0_SMALL_CHEB)], rtol=1e-13, atol=1e-30
    )
    for (hi, lo), zero in zip(tables.J0_ZEROS, (1, 2), strict=True):
        assert hi + lo == float(mpmath.besseljzero(0, zero))
        assert lo == float(mpmath.besseljzero(0, zero) - mpmath.mpf(hi))


def test_ive_of_orders_zero_to_two(floatX: str) -> None:
    value = np.array([-700.0, -3.0, -0.0, 1e-3, 0.5, 7.9, 9.0, 100.0, 1e5]).astype(floatX)
    x = input_like(value, "x")
    outputs = [pt.ive(0, x), pt.ive(1, x), pt.ive(2, x), pt.iv(1, x)[:-1], pt.iv(2, x)[:-1]]
    compare_onnx_and_py([x], outputs, [value])
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    grid = np.linspace(-700, 700, 2001).astype(floatX)
    tiny = np.logspace(-300, 2, 100).astype(floatX)
    for order in (1, 2):
        got = _onnx_values(lambda v, order=order: pt.ive(order, v), np.concatenate([grid, tiny]))
        # SciPy's ive is off by up to 6e-14 for tiny x: mpmath is the reference there.
        tiny_want = [
            float(
                mpmath.besseli(order, mpmath.mpf(float(v))) * mpmath.exp(-abs(mpmath.mpf(float(v))))
            )
            for v in tiny
        ]
        want = np.concatenate([sp.ive(order, grid.astype(np.float64)), tiny_want])
        rtol = 3e-15 if floatX == "float64" else 1.2e-7
        # float32 results below the normal range are subnormal: absolute tolerance there.
        np.testing.assert_allclose(got, want, rtol=rtol, atol=np.finfo(floatX).tiny)


def test_ive_of_other_orders_is_refused() -> None:
    x = pt.vector("x")
    with pytest.raises(NotImplementedError, match=r"constant v in \{0, 1, 2\}"):
        export_onnx([x], [pt.ive(3, x)])


def test_gammaincc_small_a_is_relatively_accurate() -> None:
    # Q(a, x) for a < 1 is small where P is close to 1; it has its own series.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    a, x = (v.ravel() for v in np.meshgrid([1e-3, 0.01, 0.3, 0.9], [1e-5, 0.1, 0.5, 1.2]))
    want = np.array(
        [
            float(mpmath.gammainc(mpmath.mpf(s), mpmath.mpf(t), mpmath.inf, regularized=True))
            for s, t in zip(a, x, strict=True)
        ]
    )
    assert _max_relative_error(_onnx_values(pt.gammaincc, a, x), want) < 5e-15


def test_integer_inputs_are_upcast() -> None:
    # PyTensor computes special functions of integers in float (int8 -> float32).
    small = np.array([-3, 0, 1, 2, 5, 100], dtype="int8")
    large = np.array([-3, 0, 1, 2, 5, 100, 10**6], dtype="int64")
    x8 = input_like(small, "x8")
    x64 = input_like(large, "x64")
    outputs = [pt.gammaln(x8), pt.erf(x8), pt.psi(x64), pt.gammainc(x64, x8[:, None])]
    compare_onnx_and_py([x8, x64], outputs, [small, large])


def test_loops_on_scalars_and_inside_scan() -> None:
    # The incomplete gamma Loop with 0-d values, and nested in the Loop of a Scan body.
    a = pt.dscalar("a")
    x = pt.dscalar("x")
    values = [np.array(2.5), np.array(1.5)]
    compare_onnx_and_py([a, x], [pt.gammainc(a, x), pt.gammaincc(a, x)], values)
    xs = pt.dvector("xs")
    total, _ = pytensor.scan(
        lambda v, acc: acc + pt.gammaincc(v, 2.0) + pt.gammaln(v),
        sequences=[xs],
        outputs_info=[pt.constant(np.float64(0.0))],
    )
    compare_onnx_and_py([xs], [total], [np.array([0.5, 1.5, 30.0])])


def test_bessel_j_accuracy_against_mpmath() -> None:
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(8)
    zeros = [2.404825557695773, 3.8317059702075125, 5.520078110286311, 7.015586669815619]
    near = np.concatenate([z + np.linspace(-1e-8, 1e-8, 5) for z in zeros])
    small = np.concatenate([rng.uniform(0.0, 8.0, 300), np.logspace(-300, 0, 30), near])
    large = np.concatenate([rng.uniform(8.0, 100.0, 150), np.exp(rng.uniform(4.6, 18.4, 100))])
    for order, fn in ((0, pt.j0), (1, pt.j1)):
        for grid, relative in ((small, True), (large, False)):
            points = np.concatenate([grid, -grid])
            got = _onnx_values(fn, points)
            want = np.array([float(mpmath.besselj(order, mpmath.mpf(v))) for v in grid])
            want = np.concatenate([want, want * (-1) ** order])
            # Relative below 8 (the first two zeros are factored out); beyond, relative to
            # the envelope sqrt(2 / (pi x)), as the zeros there are not.
            scale = np.abs(want) if relative else np.sqrt(2.0 / (np.pi * np.abs(points)))
            assert np.max(np.abs(got - want) / scale) < 4e-15


def test_bessel_j2_of_the_j1_gradient() -> None:
    mpmath = pytest.importorskip("mpmath")
    grid = np.concatenate([np.linspace(-30.0, 30.0, 241), np.logspace(-150, 0, 40), [1.0, 8.0]])
    got = _onnx_values(lambda x: pt.jv(2.0, x), grid)
    want = np.array([float(mpmath.besselj(2, mpmath.mpf(v))) for v in grid])
    # Relative to max(|J2|, the envelope): next to the zeros of J2 the recurrence
    # 2 J1 / x - J0 keeps absolute accuracy only.
    scale = np.maximum(np.abs(want), np.minimum(0.1, np.sqrt(2.0 / (np.pi * np.abs(grid)))))
    assert np.max(np.abs(got - want) / scale) < 4e-15


def test_bessel_j_at_zero_and_infinity() -> None:
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    j0 = _onnx_values(pt.j0, values)
    j1 = _onnx_values(pt.j1, values)
    np.testing.assert_array_equal(j0, [1.0, 1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(j1, [0.0, -0.0, 0.0, -0.0, np.nan])
    assert np.signbit(j1[1]) and np.signbit(j1[3])


def test_bessel_j_gradients() -> None:
    value = np.array([-9.5, -2.0, 0.0, 0.7, 3.0, 12.0, 40.0])
    x = input_like(value, "x", symbolic=True)
    cost = (pt.j0(x) * pt.j1(x)).sum()
    compare_onnx_and_py([x], [cost, pytensor.grad(cost, x)], [value])


# ------------------------------------------------------------ Bessel K of real order
def test_kve_matches_pytensor(floatX: str, symbolic: bool) -> None:
    # Orders with fractional parts 0 and +-1/2 (the ends of Temme's range), negative orders,
    # arguments on both sides of the switch at 2 and the edges: x = 0 (inf), x < 0, inf and
    # NaN (SciPy: NaN), infinite orders (NaN).
    orders = np.array([0.0, 0.5, -0.5, 1.0, 1.5, 2.25, -3.7, 7.5, 20.0, 0.3, 2.0, 1.0, np.inf])
    args = np.array([1.0, 0.1, 3.0, 2.0, 1.9999, 0.5, 4.0, 1.0, 50.0, 0.0, -1.0, np.inf, 1.0])
    order_values = np.concatenate([orders, orders[:4], [np.nan]]).astype(floatX)
    arg_values = np.concatenate([args, [1e-3, 300.0, 1e-200, np.nan], [1.0]]).astype(floatX)
    v, x = input_like(order_values, "v", symbolic), input_like(arg_values, "x", symbolic)
    compare_onnx_and_py([v, x], [pt.kve(v, x), pt.kv(v, x)], [order_values, arg_values])


def test_kve_accuracy_against_mpmath() -> None:
    # Random orders up to 40 and arguments from 1e-4 to 2000; SciPy's own kve is off by up to
    # 6e-14 near x = 2, so the reference is mpmath.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    rng = np.random.default_rng(21)
    v = rng.uniform(-40.0, 40.0, 400)
    x = np.exp(rng.uniform(np.log(1e-4), np.log(2e3), 400))
    got = _onnx_values(pt.kve, v, x)
    want = np.array(
        [float(mpmath.besselk(a, b) * mpmath.exp(b)) for a, b in zip(v, x, strict=True)]
    )
    finite = np.isfinite(want)
    assert np.array_equal(np.isfinite(got), finite)  # overflow where mpmath's value does
    assert _max_relative_error(got[finite], want[finite]) < 5e-15


def test_kve_in_float32_models() -> None:
    rng = np.random.default_rng(22)
    v = rng.uniform(-10.0, 10.0, 500).astype(np.float32)
    x = np.exp(rng.uniform(np.log(1e-2), np.log(100.0), 500)).astype(np.float32)
    vs, xs = pt.vector("v", dtype="float64"), pt.vector("x", dtype="float64")
    model = export_onnx([vs, xs], [pt.kve(vs, xs)], float32=True)
    (got,) = ort_session(model).run(None, {"v": v, "x": x})
    want = sp.kve(v.astype(np.float64), x.astype(np.float64))
    finite = np.isfinite(want) & (want < np.finfo(np.float32).max)
    assert got.dtype == np.float32
    assert _max_relative_error(got[finite], want[finite]) < 1e-5


def test_kve_gradient_and_hsgp_spectral_density(symbolic: bool) -> None:
    # PyTensor's derivative in x is (1 - v/x) kve(v, x) - kve(v - 1, x); PyMC's rational
    # quadratic kernel's spectral density (HSGP) is (z/2)**nu K_nu(z) of a symbolic order.
    v_value, x_value = np.array([0.3, 1.5, 4.2, 2.5]), np.array([0.7, 2.0, 9.0, 1.9])
    v, x = input_like(v_value, "v", symbolic), input_like(x_value, "x", symbolic)
    cost = (pt.kve(v, x) + (x / 2) ** v * pt.kv(v, x)).sum()
    compare_onnx_and_py([v, x], [cost, pytensor.grad(cost, x)], [v_value, x_value], rtol=1e-12)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino"])
def test_kve_of_constant_orders_on_static_sizes(runtime: str, tmp_path: Path) -> None:
    # PyMC's HSGP form: a constant order, arguments of static size (and the reverse).  Every
    # carried value of the loops starts with the result's shape (OpenVINO fails a loop whose
    # values change shape), and Steed's loop also stops once its sum stops changing
    # (OpenVINO computes float64 in float32, where float64's tolerance is never reached, and
    # the loop ran until its terms overflowed).
    if runtime == "openvino":
        pytest.importorskip("openvino")
    x_value = np.array([0.5, 1.9, 2.0, 3.0, 10.0, 60.0])
    v_value = np.array([0.0, 0.3, 1.5, 2.5, 7.2, 0.5])
    x, v = pt.vector("x", shape=(6,)), pt.vector("v", shape=(6,))
    outputs = [pt.kve(0.3, x), pt.kve(2.0, x), pt.kv(2.5, x), pt.kve(v, 3.0)]
    path = tmp_path / "kve.onnx"
    export_onnx([x, v], outputs, path)
    got = runtimes.run(runtime, path, {"x": x_value, "v": v_value})
    want = [sp.kve(0.3, x_value), sp.kve(2.0, x_value), sp.kv(2.5, x_value), sp.kve(v_value, 3.0)]
    rtol = 1e-5 if runtime == "openvino" else 1e-13
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol)


@pytest.mark.parametrize(
    ("build", "name", "reason"),
    [
        (lambda x: pt.jv(3.0, x), "Jv", r"constant v in \{0, 1, 2\}"),
        (lambda x: pt.jv(x, 2.0), "Jv", r"constant v in \{0, 1, 2\}"),
        (lambda x: pt.hyp2f1(x, 1.0, 2.0, 0.5), "Hyp2F1", "hypergeometric"),
        (lambda x: pt.owens_t(x, 0.5), "Owens_t", "Owen's T"),
    ],
)
def test_unconstructed_special_functions_are_refused_by_name(
    build: Callable[[pt.TensorVariable], pt.TensorVariable], name: str, reason: str
) -> None:
    x = pt.vector("x")
    with pytest.raises(UnsupportedOpError, match=rf"(?s)scalar\.math\.{name}\b.*{reason}"):
        export_onnx([x], [build(x)])


@pytest.mark.parametrize("fn", [pt.gammaln, pt.psi, pt.tri_gamma, pt.i0], ids=lambda f: f.name)
def test_few_elements_take_fewer_nodes(fn: Callable[..., pt.TensorVariable]) -> None:
    # A parameter of a PyMC model is a scalar: ONNX Runtime's cost per node dominates there,
    # and the series are one MatMul with the powers of their variable instead of a chain of
    # nodes per coefficient (their accuracy: test_accuracy_against_scipy[few]).
    counts = {}
    for shape in [(None,), (FEW_ELEMENTS,), ()]:
        x = pt.tensor("x", dtype="float64", shape=shape)
        nodes = export_onnx([x], [fn(x)]).graph.node
        counts[shape] = (len(nodes), sum(node.op_type == "MatMul" for node in nodes))
    assert counts[(None,)][1] == 0
    for shape in [(FEW_ELEMENTS,), ()]:
        assert counts[shape][1] >= 1
        assert counts[shape][0] < counts[(None,)][0], counts
