"""PyMC entry points on canonical models: logp, logp+gradient and predictive exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytest

pm = pytest.importorskip("pymc")

from onnx.reference import ReferenceEvaluator  # noqa: E402

import pytensor_onnx.pymc as pmx  # noqa: E402
from pytensor_onnx.pymc import (  # noqa: E402
    RAVEL_METADATA_KEY,
    export_logp,
    export_logp_dlogp,
    export_predictive,
)
from tests.compare import REFERENCE_MODE, ort_session, run_onnx  # noqa: E402

RNG = np.random.default_rng(20261126)

# PyMC's functions are compiled with PyTensor's Python implementations (SciPy special
# functions) as reference: PyTensor 2.38's C `psi` is only accurate to ~1e-8 (measured on the
# StudentT model's gradient with respect to nu), where the export agrees with SciPy to 1e-14.
PYMC_MODE = REFERENCE_MODE


def linear_regression() -> pm.Model:
    x = RNG.normal(size=50)
    y = 1.0 + 2.0 * x + RNG.normal(size=50)
    with pm.Model(coords={"obs": range(50)}) as model:
        data = pm.Data("x", x, dims="obs")
        intercept = pm.Normal("intercept", 0, 10)
        slope = pm.Normal("slope", 0, 10)
        sigma = pm.HalfNormal("sigma", 1)
        mu = pm.Deterministic("mu", intercept + slope * data, dims="obs")
        pm.Normal("y", mu, sigma, observed=y, dims="obs")
    return model


def eight_schools() -> pm.Model:
    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        theta_raw = pm.Normal("theta_raw", 0, 1, shape=8)
        theta = pm.Deterministic("theta", mu + tau * theta_raw)
        pm.Normal("y", theta, sigma, observed=y)
    return model


def logistic_regression() -> pm.Model:
    x = RNG.normal(size=(100, 3))
    y = (RNG.random(100) < 0.5).astype("int64")
    with pm.Model() as model:
        data = pm.Data("X", x)
        beta = pm.Normal("beta", 0, 1, shape=3)
        alpha = pm.Normal("alpha", 0, 1)
        p = pm.Deterministic("p", pm.math.sigmoid(alpha + data @ beta))
        pm.Bernoulli("y", logit_p=alpha + data @ beta, observed=y)
        del p
    return model


def poisson_glm() -> pm.Model:
    x = RNG.normal(size=40)
    exposure = RNG.uniform(1, 3, size=40)
    counts = RNG.poisson(exposure * np.exp(0.3 + 0.5 * x))
    with pm.Model() as model:
        data = pm.Data("x", x)
        offset = pm.Data("log_exposure", np.log(exposure))
        a = pm.Normal("a", 0, 1)
        b = pm.Normal("b", 0, 1)
        rate = pm.Deterministic("rate", pm.math.exp(a + b * data + offset))
        pm.Poisson("counts", rate, observed=counts)
    return model


def robust_regression() -> pm.Model:
    x = RNG.normal(size=30)
    y = 0.5 * x + RNG.standard_t(3, size=30)
    with pm.Model() as model:
        nu = pm.Gamma("nu", 2, 0.1)
        slope = pm.Normal("slope", 0, 5)
        sigma = pm.HalfNormal("sigma", 2)
        pm.StudentT("y", nu=nu, mu=slope * x, sigma=sigma, observed=y)
    return model


def varying_intercept() -> pm.Model:
    groups = RNG.integers(0, 4, size=60)
    y = RNG.normal(size=60) + groups
    with pm.Model(coords={"group": range(4)}) as model:
        index = pm.Data("group_idx", groups)
        mu_a = pm.Normal("mu_a", 0, 5)
        sigma_a = pm.HalfNormal("sigma_a", 2)
        a = pm.Normal("a", mu_a, sigma_a, dims="group")
        sigma = pm.HalfNormal("sigma", 2)
        mu = pm.Deterministic("mu", a[index])
        pm.Normal("y", mu, sigma, observed=y)
    return model


def normal_mixture() -> pm.Model:
    y = np.concatenate([RNG.normal(-2, 1, 30), RNG.normal(3, 1, 30)])
    with pm.Model() as model:
        w = pm.Dirichlet("w", np.ones(2))
        mu = pm.Normal(
            "mu", np.array([-1.0, 1.0]), 5, shape=2, transform=pm.distributions.transforms.ordered
        )
        sigma = pm.HalfNormal("sigma", 2, shape=2)
        pm.NormalMixture("y", w=w, mu=mu, sigma=sigma, observed=y)
    return model


def dirichlet_multinomial() -> pm.Model:
    counts = np.array([[3, 5, 2], [4, 4, 2], [1, 6, 3]])
    with pm.Model() as model:
        p = pm.Dirichlet("p", a=np.ones(3))
        pm.Multinomial("counts", n=counts.sum(axis=1), p=p, observed=counts)
    return model


def censored_student_t() -> pm.Model:
    # The censored points' log-probabilities are Student-t log-CDFs: betainc and its gradient.
    y = np.clip(RNG.standard_t(4, size=20) + 1.0, -1.0, 2.5)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 2)
        nu = pm.Gamma("nu", 2, 0.1)
        sigma = pm.HalfNormal("sigma", 1)
        dist = pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma)
        pm.Censored("y", dist, lower=-1.0, upper=2.5, observed=y)
    return model


def hsgp_rational_quadratic() -> pm.Model:
    # The HSGP's basis weights are scaled by the rational quadratic kernel's spectral
    # density, a Bessel K of real order alpha - 1/2 (kv). PyTensor has no gradient of kv in
    # its order, so alpha is fixed.
    x = np.linspace(0.0, 10.0, 40)[:, None]
    y = np.sin(x[:, 0]) + 0.2 * RNG.normal(size=40)
    with pm.Model() as model:
        ls = pm.Gamma("ls", 2.0, 1.0)
        cov = pm.gp.cov.RatQuad(1, alpha=2.3, ls=ls)
        f = pm.gp.HSGP(m=[15], c=1.5, cov_func=cov).prior("f", X=x)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", f, sigma, observed=y)
    return model


MODELS: dict[str, Callable[[], pm.Model]] = {
    "linear_regression": linear_regression,
    "eight_schools": eight_schools,
    "logistic_regression": logistic_regression,
    "poisson_glm": poisson_glm,
    "robust_regression": robust_regression,
    "varying_intercept": varying_intercept,
    "normal_mixture": normal_mixture,
    "dirichlet_multinomial": dirichlet_multinomial,
    "censored_student_t": censored_student_t,
    "hsgp_rational_quadratic": hsgp_rational_quadratic,
}


def _points(model: pm.Model, n: int = 3) -> list[dict[str, np.ndarray]]:
    """The initial point and random points around it (transformed space)."""
    start = model.initial_point()
    points = [start]
    for _ in range(n - 1):
        points.append({k: v + RNG.normal(scale=0.5, size=np.shape(v)) for k, v in start.items()})
    return points


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logp_matches_pymc(name: str) -> None:
    model = MODELS[name]()
    exported = export_logp(model)
    logp_fn = model.compile_logp(mode=PYMC_MODE)
    assert [i.name for i in exported.graph.input] == [v.name for v in model.value_vars]
    for point in _points(model):
        feeds = {v.name: np.asarray(point[v.name], dtype=v.dtype) for v in model.value_vars}
        expected = logp_fn(point)
        for outputs in run_onnx(exported, feeds):
            np.testing.assert_allclose(outputs[0], expected, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logp_dlogp_matches_pymc(name: str) -> None:
    model = MODELS[name]()
    exported = export_logp_dlogp(model)
    fn = model.logp_dlogp_function(ravel_inputs=True, mode=PYMC_MODE)
    fn.set_extra_values({})  # PyMC 5 insists, although all values are gradient variables
    layout = json.loads({p.key: p.value for p in exported.metadata_props}[RAVEL_METADATA_KEY])
    assert [entry["name"] for entry in layout] == [v.name for v in model.continuous_value_vars]
    for point in _points(model):
        x = np.concatenate([np.ravel(point[e["name"]]) for e in layout]).astype("float64")
        expected_logp, expected_grad = fn(x)
        for logp, grad in run_onnx(exported, {"x": x}):
            np.testing.assert_allclose(logp, expected_logp, rtol=1e-10)
            np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_jacobian_option() -> None:
    model = linear_regression()
    point = model.initial_point()
    feeds = {v.name: np.asarray(point[v.name]) for v in model.value_vars}
    for jacobian in (True, False):
        exported = export_logp(model, jacobian=jacobian)
        expected = model.compile_logp(jacobian=jacobian, mode=PYMC_MODE)(point)
        np.testing.assert_allclose(run_onnx(exported, feeds)[0][0], expected, rtol=1e-12)


def test_data_as_inputs_gives_symbolic_dims() -> None:
    model = linear_regression()
    exported = export_logp(model, data_as_inputs=True)
    assert [i.name for i in exported.graph.input] == ["intercept", "slope", "sigma_log__", "x"]


def test_predictive_with_new_data() -> None:
    model = linear_regression()
    draws = {
        "intercept": RNG.normal(size=20),
        "slope": RNG.normal(size=20),
        "sigma": RNG.uniform(0.5, 2, size=20),
    }
    exported = export_predictive(model, draws, var_names=["mu"])
    assert [i.name for i in exported.graph.input] == ["x"]
    for n in (50, 13):
        new_x = RNG.normal(size=n)
        expected = draws["intercept"][:, None] + draws["slope"][:, None] * new_x[None, :]
        for (mu,) in run_onnx(exported, {"x": new_x}):
            np.testing.assert_allclose(mu, expected, rtol=1e-12)


def test_predictive_logistic_from_inference_data() -> None:
    az = pytest.importorskip("arviz")
    model = logistic_regression()
    posterior = {"beta": RNG.normal(size=(2, 10, 3)), "alpha": RNG.normal(size=(2, 10))}
    if int(az.__version__.split(".")[0]) >= 1:  # arviz 1 takes a dict of groups
        idata = az.from_dict({"posterior": posterior})
    else:
        idata = az.from_dict(posterior=posterior)
    exported = export_predictive(model, idata, var_names=["p"])
    new_x = RNG.normal(size=(7, 3))
    beta = posterior["beta"].reshape(20, 3)
    alpha = posterior["alpha"].reshape(20)
    expected = 1 / (1 + np.exp(-(alpha[:, None] + beta @ new_x.T)))
    for (p,) in run_onnx(exported, {"X": new_x}):
        np.testing.assert_allclose(p, expected, rtol=1e-10)


def test_predictive_refuses_observed_variables() -> None:
    with pytest.raises(ValueError, match="sampling noise"):
        export_predictive(linear_regression(), {}, var_names=["y"])


def greek_model() -> pm.Model:
    y = RNG.normal(1.0, 2.0, size=30)
    with pm.Model() as model:
        μ = pm.Normal("μ", 0, 10)
        σ = pm.HalfNormal("σ", 5)
        pm.Normal("y", μ, σ, observed=y)
    return model


def test_greek_names_round_trip_by_pymc_name() -> None:
    from pytensor_onnx import NAMES_METADATA_KEY, feeds_by_name, verify

    model = greek_model()
    exported = export_logp(model)
    assert [i.name for i in exported.graph.input] == ["mu", "sigma_log__"]
    names = json.loads({p.key: p.value for p in exported.metadata_props}[NAMES_METADATA_KEY])
    assert names["inputs"] == {"μ": "mu", "σ_log__": "sigma_log__"}
    point = {"μ": np.array(0.7), "σ_log__": np.array(0.3)}
    expected = model.compile_logp(mode=PYMC_MODE)(point)
    for (logp,) in run_onnx(exported, feeds_by_name(exported, point)):
        np.testing.assert_allclose(logp, expected, rtol=1e-12)
    report = verify((list(model.value_vars), [model.logp()]), point, model=exported)
    assert report.passed
    with pytest.raises(KeyError, match="no input named 'sigma'"):
        feeds_by_name(exported, {"sigma": 1.0})


def test_predictive_names_unknown_variables() -> None:
    with pytest.raises(ValueError, match=r"\['nope'\] are not variables of the model"):
        export_predictive(linear_regression(), {}, var_names=["nope"])


def test_predictive_names_free_variables_without_draws() -> None:
    model = linear_regression()
    draws = {"intercept": RNG.normal(size=5), "sigma": RNG.uniform(1, 2, size=5)}
    with pytest.raises(ValueError, match=r"free random variables \['slope'\] that have no"):
        export_predictive(model, draws, var_names=["mu"])


def test_predictive_names_gp_conditional_without_draws() -> None:
    x = np.linspace(0, 1, 10)[:, None]
    with pm.Model() as model:
        ell = pm.HalfNormal("ell", 1)
        gp = pm.gp.Marginal(cov_func=pm.gp.cov.ExpQuad(1, ell))
        gp.marginal_likelihood("y", X=x, y=np.sin(3 * x[:, 0]), sigma=0.1)
        gp.conditional("f_pred", np.linspace(0, 1.2, 4)[:, None])
    draws = {"ell": RNG.uniform(0.5, 1, size=3)}
    with pytest.raises(ValueError, match=r"\['f_pred'\]"):
        export_predictive(model, draws, var_names=["f_pred"])


# ------------------------------------------------------------------ predictive draws
def _regression(n: int = 6) -> pm.Model:
    with pm.Model() as model:
        x = pm.Data("x", np.linspace(-2.0, 2.0, n))
        a = pm.Normal("a", 0.0, 5.0)
        b = pm.Normal("b", 0.0, 5.0)
        s = pm.HalfNormal("s", 2.0)
        pm.Normal("y", a + b * x, s, observed=np.zeros(n))
    return model


def _posterior(draws: int = 2000) -> Any:
    import xarray as xr

    rng = np.random.default_rng(0)
    values = {
        "a": rng.normal(1.0, 0.1, (2, draws)),
        "b": rng.normal(2.0, 0.2, (2, draws)),
        "s": rng.uniform(0.5, 1.0, (2, draws)),
    }
    return xr.Dataset({k: (("chain", "draw"), v) for k, v in values.items()})


def _within_monte_carlo_error(onnx_draws: np.ndarray, pymc_draws: np.ndarray) -> None:
    n = min(len(onnx_draws), len(pymc_draws))
    spread = np.std(pymc_draws, axis=0)
    np.testing.assert_array_less(
        np.abs(onnx_draws.mean(0) - pymc_draws.mean(0)), 5 * spread * np.sqrt(2 / n)
    )
    for q in (0.05, 0.5, 0.95):
        np.testing.assert_array_less(
            np.abs(np.quantile(onnx_draws, q, 0) - np.quantile(pymc_draws, q, 0)),
            8 * spread * np.sqrt(2 / n),
        )
    np.testing.assert_allclose(onnx_draws.std(0), spread, rtol=0.1)


def test_posterior_predictive_matches_pymc_in_distribution() -> None:
    model = _regression()
    posterior = _posterior()
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["y"])
    assert [i.name for i in onnx_model.graph.input] == ["seed", "x"]
    x = np.linspace(-1.0, 3.0, 6)
    (draws,) = ort_session(onnx_model).run(None, {"seed": np.array(5), "x": x})
    assert draws.shape == (4000, 6)
    with model:
        pm.set_data({"x": x})
        expected = pm.sample_posterior_predictive(
            posterior, random_seed=1, progressbar=False, return_inferencedata=False
        )["y"].reshape(-1, 6)
    _within_monte_carlo_error(draws, expected)
    (again,) = ort_session(onnx_model).run(None, {"seed": np.array(5), "x": x})
    (other,) = ort_session(onnx_model).run(None, {"seed": np.array(6), "x": x})
    (reference,) = ReferenceEvaluator(onnx_model).run(None, {"seed": np.array(5), "x": x})
    assert again.tobytes() == draws.tobytes()
    assert not np.any(other == draws)
    np.testing.assert_allclose(reference, draws, rtol=1e-12)


def test_prior_predictive_matches_pymc_in_distribution() -> None:
    model = _regression()
    onnx_model = pmx.export_prior_predictive(model, draws=4000, var_names=["y", "a", "b"])
    x = np.linspace(-2.0, 2.0, 6)
    y, a, b = ort_session(onnx_model).run(None, {"seed": np.array(2), "x": x})
    assert y.shape == (4000, 6) and a.shape == b.shape == (4000,)
    # a and b have the same prior: they must still be drawn independently.
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / np.sqrt(4000)
    with model:
        prior = pm.sample_prior_predictive(4000, random_seed=3, return_inferencedata=False)
    _within_monte_carlo_error(y, prior["y"])
    _within_monte_carlo_error(a[:, None], prior["a"][:, None])


def test_mixture_predictive_draws_match_pymc_in_distribution() -> None:
    # PyMC's mixture random variable cannot be vectorized over draws as it is (PyTensor's
    # fallback refuses its generator input): the exports inline it, and the vectorized
    # component choice becomes a batched advanced index.
    import xarray as xr

    with pm.Model() as model:
        w = pm.Dirichlet("w", np.ones(2))
        mu = pm.Normal("mu", np.array([-2.0, 2.0]), 1.0, shape=2)
        pm.NormalMixture("y", w=w, mu=mu, sigma=0.5, observed=np.zeros(3))
    rng = np.random.default_rng(3)
    weights = rng.dirichlet([8.0, 4.0], (2, 1000))
    means = rng.normal([-2.0, 2.0], 0.1, (2, 1000, 2))
    posterior = xr.Dataset(
        {"w": (("chain", "draw", "w_dim"), weights), "mu": (("chain", "draw", "mu_dim"), means)}
    )
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["y"])
    (draws,) = ort_session(onnx_model).run(None, {"seed": np.array(4)})
    with model:
        expected = pm.sample_posterior_predictive(
            posterior, random_seed=1, progressbar=False, return_inferencedata=False
        )["y"].reshape(-1, 3)
    assert draws.shape == (2000, 3)
    _within_monte_carlo_error(draws, expected)
    prior_model = pmx.export_prior_predictive(model, draws=4000, var_names=["y"])
    (prior_draws,) = ort_session(prior_model).run(None, {"seed": np.array(5)})
    with model:
        prior = pm.sample_prior_predictive(4000, random_seed=2, return_inferencedata=False)
    _within_monte_carlo_error(prior_draws, prior["y"])


def test_predictive_exports_keep_root_symbolic_random_variables() -> None:
    # PyMC's HalfCauchy is a symbolic random variable too; as a root it is resized (prior)
    # or replaced by its draws (posterior), not inlined (its inner Abs cannot be resized),
    # and so are roots that are mixtures or hurdles, and what they are made of.
    import xarray as xr

    with pm.Model() as model:
        tau = pm.HalfCauchy("tau", 2.0)
        pm.Normal("y", 0.0, tau, observed=np.zeros(3))
    prior_model = pmx.export_prior_predictive(model, draws=4000, var_names=["tau", "y"])
    tau_draws, y_draws = ort_session(prior_model).run(None, {"seed": np.array(3)})
    assert tau_draws.shape == (4000,) and y_draws.shape == (4000, 3)
    assert abs(np.median(tau_draws) - 2.0) < 0.25  # the median of HalfCauchy(2) is 2
    posterior = xr.Dataset({"tau": (("chain", "draw"), np.full((2, 500), 0.5))})
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["y"])
    (draws,) = ort_session(onnx_model).run(None, {"seed": np.array(3)})
    assert draws.shape == (1000, 3)
    assert abs(draws.std() - 0.5) < 0.05
    # Roots made of other random variables (a mixture of a point mass and a Poisson, a
    # hurdle over a truncated Poisson): P(0) = 0.7 + 0.3 exp(-4) and 0.7.
    for make, zero in [
        (lambda: pm.ZeroInflatedPoisson("v", 0.3, 4.0), 0.7 + 0.3 * np.exp(-4.0)),
        (lambda: pm.HurdlePoisson("v", 0.3, 3.0), 0.7),
    ]:
        with pm.Model() as root_model:
            make()
        exported = pmx.export_prior_predictive(root_model, draws=4000, var_names=["v"])
        (counts,) = ort_session(exported).run(None, {"seed": np.array(6)})
        assert counts.shape == (4000,)
        assert abs(np.mean(counts == 0) - zero) < 0.04


def test_posterior_predictive_of_a_gp_conditional() -> None:
    import xarray as xr

    x = np.linspace(0.0, 1.0, 8)[:, None]
    with pm.Model() as model:
        ell = pm.HalfNormal("ell", 1.0)
        eta = pm.HalfNormal("eta", 1.0)
        sigma = pm.HalfNormal("sigma", 0.5)
        gp = pm.gp.Marginal(cov_func=eta**2 * pm.gp.cov.ExpQuad(1, ell))
        gp.marginal_likelihood("y", X=x, y=np.sin(4 * x[:, 0]), sigma=sigma)
        gp.conditional("f_pred", np.linspace(0.0, 1.2, 5)[:, None])
    rng = np.random.default_rng(1)
    posterior = xr.Dataset(
        {
            "ell": (("chain", "draw"), rng.uniform(0.25, 0.35, (1, 2000))),
            "eta": (("chain", "draw"), rng.uniform(0.8, 1.2, (1, 2000))),
            "sigma": (("chain", "draw"), rng.uniform(0.05, 0.15, (1, 2000))),
        }
    )
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["f_pred"])
    (draws,) = ort_session(onnx_model).run(None, {"seed": np.array(4)})
    assert draws.shape == (2000, 5)
    with model:
        expected = pm.sample_posterior_predictive(
            posterior,
            var_names=["f_pred"],
            random_seed=2,
            progressbar=False,
            return_inferencedata=False,
        )["f_pred"].reshape(-1, 5)
    _within_monte_carlo_error(draws, expected)


@pytest.mark.parametrize("form", ["observed_data", "shape", "dims"])
def test_posterior_predictive_for_new_data_of_another_length(form: str) -> None:
    # The three ways a PyMC model sizes its likelihood: like its observed data, with
    # shape=x.shape, with dims; new x of another length must resize the draws.
    with pm.Model(coords={"obs": range(6)}) as model:
        dims = {"dims": "obs"} if form == "dims" else {}
        x = pm.Data("x", np.linspace(-2.0, 2.0, 6), **dims)
        y_obs = pm.Data("y_obs", np.zeros(6), **dims)
        mu = pm.Normal("a", 0.0, 5.0) + pm.Normal("b", 0.0, 5.0) * x
        sigma = pm.HalfNormal("s", 2.0)
        size = {"observed_data": {}, "shape": {"shape": x.shape}, "dims": {"dims": "obs"}}[form]
        pm.Normal("y", mu, sigma, observed=y_obs, **size)
    posterior = _posterior()
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["y"])
    names = [i.name for i in onnx_model.graph.input]
    # Sized like its data, the likelihood needs data of the new length, in PyMC too.
    assert names == ["seed", "x", "y_obs"] if form == "observed_data" else ["seed", "x"]
    x_new = np.linspace(-1.0, 3.0, 9)
    feeds = {"seed": np.array(5), "x": x_new, "y_obs": np.zeros(9)}
    (draws,) = ort_session(onnx_model).run(None, {name: feeds[name] for name in names})
    assert draws.shape == (4000, 9)
    with model:
        coords = {"obs": range(9)} if form == "dims" else None
        pm.set_data({"x": x_new, "y_obs": np.zeros(9)}, coords=coords)
        expected = pm.sample_posterior_predictive(
            posterior, random_seed=1, progressbar=False, return_inferencedata=False
        )["y"].reshape(-1, 9)
    _within_monte_carlo_error(draws, expected)


def test_posterior_predictive_draws_free_variables_with_dims_from_the_posterior() -> None:
    import xarray as xr

    # theta has a size (its dims), which the export lifts into its parameters: it must still
    # take its posterior draws, not be drawn from its prior.
    with pm.Model(coords={"group": range(3)}) as model:
        index = pm.Data("index", np.array([0, 1, 2, 1]))
        theta = pm.Normal("theta", 0.0, 1.0, dims="group")
        pm.Normal("y", theta[index], 0.1, observed=np.zeros(4), shape=index.shape)
    rng = np.random.default_rng(2)
    draws = rng.normal([10.0, 20.0, 30.0], 1.0, (1, 500, 3))
    posterior = xr.Dataset({"theta": (("chain", "draw", "group"), draws)})
    onnx_model = pmx.export_posterior_predictive(model, posterior, var_names=["y"])
    index_type = onnx_model.graph.input[1].type.tensor_type.elem_type  # PyMC's integer dtype
    new_index = np.array([2, 2, 0, 1, 0], onnx.helper.tensor_dtype_to_np_dtype(index_type))
    (y,) = ort_session(onnx_model).run(None, {"seed": np.array(1), "index": new_index})
    assert y.shape == (500, 5)
    np.testing.assert_allclose(y.mean(0), [30.0, 30.0, 10.0, 20.0, 10.0], atol=0.2)
