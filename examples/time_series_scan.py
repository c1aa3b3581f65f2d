"""Export a small time-series model written with ``pytensor.scan`` and run it at two lengths.

The model is a local-level (random walk plus noise) Kalman filter: its log-likelihood and
the gradient with respect to the two noise scales, as a sampler such as NUTS needs them.
The series length is symbolic, so one ONNX file serves every length.

Run:  python examples/time_series_scan.py [output.onnx]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt

from pytensor_onnx import export_onnx


def local_level_loglike() -> tuple[list[pt.TensorVariable], list[pt.TensorVariable]]:
    """Inputs ``(y, log_sigma_level, log_sigma_obs)`` and outputs ``(loglike, gradient)``."""
    y = pt.vector("y")
    log_sigma_level = pt.scalar("log_sigma_level")
    log_sigma_obs = pt.scalar("log_sigma_obs")
    q = pt.exp(2 * log_sigma_level)
    r = pt.exp(2 * log_sigma_obs)

    def step(obs, level, var, q, r):
        var_pred = var + q
        innovation_var = var_pred + r
        gain = var_pred / innovation_var
        innovation = obs - level
        loglike = -0.5 * (pt.log(2 * np.pi * innovation_var) + innovation**2 / innovation_var)
        return level + gain * innovation, (1 - gain) * var_pred, loglike

    [_, _, terms] = pytensor.scan(
        step,
        sequences=[y],
        outputs_info=[y[0], pt.as_tensor(np.float64(1.0)), None],
        non_sequences=[q, r],
        return_updates=False,
    )
    loglike = terms.sum()
    loglike.name = "loglike"
    gradient = pt.stack(pytensor.grad(loglike, [log_sigma_level, log_sigma_obs]))
    gradient.name = "gradient"
    return [y, log_sigma_level, log_sigma_obs], [loglike, gradient]


def main(path: Path) -> None:
    inputs, outputs = local_level_loglike()
    export_onnx(inputs, outputs, path)
    reference = pytensor.function(inputs, outputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for length in (50, 400):
        series = np.cumsum(rng.normal(scale=0.3, size=length)) + rng.normal(size=length)
        feeds = {"y": series, "log_sigma_level": np.array(-1.0), "log_sigma_obs": np.array(0.0)}
        onnx_loglike, onnx_grad = session.run(None, feeds)
        py_loglike, py_grad = reference(*feeds.values())
        np.testing.assert_allclose(onnx_loglike, py_loglike, rtol=1e-10)
        np.testing.assert_allclose(onnx_grad, py_grad, rtol=1e-10)
        print(f"length {length:4d}: loglike {onnx_loglike:.6f}, gradient {onnx_grad} (= PyTensor)")
    print(f"model: {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp) / "local_level.onnx")
        print(
            "(the model was written to a temporary directory, now removed; pass a path to keep it)"
        )
