"""Export a PyMC model's log-density, its NUTS gradient and its posterior predictive to ONNX.

Run with ``python examples/pymc_logp.py [OUTPUT_DIR]`` (needs PyMC: ``pip install -e ".[pymc]"``
from a clone).  The three ``.onnx`` files go to ``OUTPUT_DIR`` (default: ``pymc_onnx/``).  The
model is a hierarchical varying-intercept regression with an integer group index in ``pm.Data``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

try:
    import pymc as pm
except ImportError:
    sys.exit('this example needs PyMC: pip install -e ".[pymc]" (from a clone of pytensor-onnx)')

from pytensor_onnx.pymc import RAVEL_METADATA_KEY, export_logp, export_logp_dlogp, export_predictive


def build_model(rng: np.random.Generator) -> pm.Model:
    """A varying-intercept model: y ~ Normal(a[group] + b * x, sigma)."""
    groups = rng.integers(0, 5, size=200)
    x = rng.normal(size=200)
    y = rng.normal(size=5)[groups] + 0.7 * x + rng.normal(scale=0.5, size=200)
    with pm.Model(coords={"group": range(5)}) as model:
        group_idx = pm.Data("group_idx", groups)
        x_data = pm.Data("x", x)
        mu_a = pm.Normal("mu_a", 0, 5)
        sigma_a = pm.HalfNormal("sigma_a", 2)
        a = pm.Normal("a", mu_a, sigma_a, dims="group")
        b = pm.Normal("b", 0, 2)
        sigma = pm.HalfNormal("sigma", 1)
        mu = pm.Deterministic("mu", a[group_idx] + b * x_data)
        pm.Normal("y", mu, sigma, observed=y)
    return model


def main(out_dir: Path) -> None:
    rng = np.random.default_rng(0)
    model = build_model(rng)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"writing the models to {out_dir}/")

    # 1. logp over the value variables (transformed space)
    export_logp(model, out_dir / "model_logp.onnx")
    session = ort.InferenceSession(out_dir / "model_logp.onnx", providers=["CPUExecutionProvider"])
    point = model.initial_point()
    feeds = {v.name: np.asarray(point[v.name]) for v in model.value_vars}
    (logp,) = session.run(None, feeds)
    expected = model.compile_logp()(point)
    print(f"logp at the initial point: ONNX {float(logp):.12f}, PyMC {expected:.12f}")

    # 2. logp and gradient over one raveled vector: what a NUTS sampler calls
    proto = export_logp_dlogp(model, out_dir / "model_logp_dlogp.onnx")
    layout = json.loads({p.key: p.value for p in proto.metadata_props}[RAVEL_METADATA_KEY])
    print("raveled layout:", [(e["name"], e["shape"], e["start"], e["stop"]) for e in layout])
    session = ort.InferenceSession(
        out_dir / "model_logp_dlogp.onnx", providers=["CPUExecutionProvider"]
    )
    x = rng.normal(size=layout[-1]["stop"])
    logp, dlogp = session.run(None, {"x": x})
    reference = model.logp_dlogp_function(ravel_inputs=True)
    reference.set_extra_values({})
    ref_logp, ref_dlogp = reference(x)
    difference = max(abs(logp - ref_logp), np.abs(dlogp - ref_dlogp).max())
    print(f"logp+gradient: max |difference| {difference:.2e}")

    # 3. posterior predictive mean for new data, draws baked in (here: fake posterior draws)
    draws = {name: rng.normal(size=(100, *np.shape(point[name]))) for name in ("mu_a", "a", "b")}
    draws["sigma_a"] = np.abs(rng.normal(size=100))
    draws["sigma"] = np.abs(rng.normal(size=100))
    export_predictive(model, draws, out_dir / "model_predictive.onnx", var_names=["mu"])
    session = ort.InferenceSession(
        out_dir / "model_predictive.onnx", providers=["CPUExecutionProvider"]
    )
    new_groups = np.array([0, 3, 4], dtype=model["group_idx"].dtype)  # PyMC stores int32
    new_x = np.array([-1.0, 0.0, 1.0])
    (mu,) = session.run(None, {"group_idx": new_groups, "x": new_x})
    expected = draws["a"][:, new_groups] + draws["b"][:, None] * new_x  # mu, draw by draw
    print(
        f"predictive mu: {mu.shape[0]} draws x {mu.shape[1]} new points; "
        f"max |difference| from NumPy {np.abs(mu - expected).max():.2e}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("pymc_onnx"))
