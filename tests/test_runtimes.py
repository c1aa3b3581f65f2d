"""The runtime adapters (src/pytensor_onnx/runtimes.py) agree with NumPy on a small MLP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx, runtimes


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("runtime", ["ort", "reference", "openvino", "tract"])
def test_runtime_runs_mlp(runtime: str, dtype: str) -> None:
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed (pip install 'pytensor-onnx[runtimes]')")
    x = pt.matrix("x", dtype=dtype)
    w = pt.matrix("w", dtype=dtype)
    model = export_onnx([x, w], [pt.tanh(x @ w).sum(axis=1)])
    rng = np.random.default_rng(0)
    feeds = {
        "x": rng.standard_normal((3, 4)).astype(dtype),
        "w": rng.standard_normal((4, 2)).astype(dtype),
    }
    (got,) = runtimes.run(runtime, model, feeds)
    # OpenVINO computes float64 models in float32 (runtimes.COMPUTES_FLOAT64_AS).
    computes = runtimes.COMPUTES_FLOAT64_AS.get(runtimes.canonical_name(runtime), dtype)
    rtol = 1e-12 if computes == "float64" else 1e-5
    np.testing.assert_allclose(got, np.tanh(feeds["x"] @ feeds["w"]).sum(axis=1), rtol=rtol)


def test_unknown_runtime_is_named() -> None:
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        runtimes.canonical_name("nope")


def test_runtime_failure_carries_the_runtimes_message(tmp_path: Path) -> None:
    missing = tmp_path / "missing.onnx"
    with pytest.raises(runtimes.RuntimeFailure, match=r"^onnxruntime: "):
        runtimes.run("ort", missing, {})
