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


def test_tract_runs_what_it_used_to_refuse() -> None:
    # Float64 special functions (their reductions use Floor: tract has no float64 Round),
    # integer squares (tract turns Mul(x, x) into a Square without integer kernels) and int64
    # outputs of a Cast (tract returns them in its TDim type; the adapter converts them).
    if not runtimes.is_available("tract"):
        pytest.skip("tract is not installed (pip install 'pytensor-onnx[runtimes]')")
    x = pt.vector("x")
    n = pt.lvector("n")
    outputs = [pt.gammaln(x), pt.gamma(x), pt.psi(x), pt.sin(x), pt.sqr(n), (x > 0).astype("int64")]
    values = [np.array([-2.5, -0.5, 0.5, 3.0, 7.25]), np.array([-3, 0, 5, 2**40, -(2**62)])]
    model = export_onnx([x, n], outputs)
    got = runtimes.run("tract", model, {"x": values[0], "n": values[1]})
    want = runtimes.run("ort", model, {"x": values[0], "n": values[1]})
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-14)
