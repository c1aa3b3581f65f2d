"""Fit the predictive page's PyMC regression and export its posterior predictive to ONNX.

Writes ``web/predictive.onnx`` (inputs ``seed``: int64 scalar and ``x``: float64 ``[n]``, any
``n``; output ``y``: float64 ``[1000, n]``, one predictive draw per posterior draw) and
``web/predictive.json`` (the training points and the posterior draws, for the page's plot and
summary and for ``tests/test_web.py``).  Needs PyMC::

    pip install -e ".[pymc]" && python web/build_predictive.py

The data are 30 points from a fixed linear trend with Gaussian noise; the model is
``y ~ Normal(intercept + slope * x, sigma)``, fitted by NUTS (2 chains of 500 draws, a fixed
``random_seed``) and exported with ``export_posterior_predictive(..., var_names=["y"])``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pymc as pm

from pytensor_onnx.pymc import export_posterior_predictive

WEB = Path(__file__).resolve().parent
PARAMETERS = ("intercept", "slope", "sigma")


def synthetic_data(seed: int, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` training points: x uniform on [0, 10], y = 1.5 + 0.8 x + N(0, 1.2^2)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.0, 10.0, n))
    y = 1.5 + 0.8 * x + rng.normal(0.0, 1.2, n)
    return x, y


def regression(x: np.ndarray, y: np.ndarray) -> pm.Model:
    """Return the linear regression; its likelihood is sized by ``x``, so new x of any length
    can be fed to the export (``pm.set_data({"x": ...})`` in PyMC)."""
    with pm.Model() as model:
        x_data = pm.Data("x", x)
        intercept = pm.Normal("intercept", 0.0, 10.0)
        slope = pm.Normal("slope", 0.0, 5.0)
        sigma = pm.HalfNormal("sigma", 5.0)
        pm.Normal("y", intercept + slope * x_data, sigma, observed=y, shape=x_data.shape)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--output", type=Path, default=WEB / "predictive.onnx")
    args = parser.parse_args()

    x, y = synthetic_data(args.seed)
    model = regression(x, y)
    with model:
        idata = pm.sample(
            args.draws,
            tune=500,
            chains=args.chains,
            cores=1,
            random_seed=args.seed,
            progressbar=False,
        )
    posterior = idata.posterior
    for name in PARAMETERS:
        values = posterior[name].values
        print(f"{name}: {values.mean():.3f} +- {values.std():.3f}")

    export_posterior_predictive(model, idata, args.output, var_names=["y"], graph_name="ppc")
    summary = {
        "x": x.tolist(),
        "y": y.tolist(),
        # chains x draws, the order of the export's draw axis once stacked
        "posterior": {name: posterior[name].values.tolist() for name in PARAMETERS},
    }
    (WEB / "predictive.json").write_text(json.dumps(summary) + "\n")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes) and {WEB / 'predictive.json'}")


if __name__ == "__main__":
    main()
