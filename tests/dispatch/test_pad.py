"""``pt.pad`` (``pytensor.tensor.pad.Pad``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from tests.compare import REFERENCE_MODE, assert_matches, compare_onnx_and_py, input_like, run_onnx

MODES = ["constant", "edge", "wrap", "reflect", "symmetric"]
WIDTHS = {
    "scalar": 2,
    "pair": (1, 3),
    "per_axis": ((0, 2), (3, 1)),
    "wide": ((7, 9), (5, 0)),
}


def _ops(model: object) -> set[str]:
    return {n.op_type for n in model.graph.node}  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
def test_pad_modes(mode: str, floatX: str, symbolic: bool) -> None:
    value = np.arange(12, dtype=floatX).reshape(3, 4) - 5
    x = input_like(value, "x", symbolic)
    outs = [pt.pad(x, width, mode=mode) for width in WIDTHS.values()]
    model = compare_onnx_and_py([x], outs, [value])
    # A direct construction, not the inlined inner graph (a Scan in PyTensor 2).
    assert "Loop" not in _ops(model) and "Scan" not in _ops(model)


def _compare_with_numpy(value: np.ndarray, width: object, modes: list[str]) -> None:
    """Export ``pt.pad`` in each mode with unknown dims and compare with ``np.pad``."""
    x = pt.tensor("x", dtype=str(value.dtype), shape=(None,) * value.ndim)
    model = export_onnx([x], [pt.pad(x, width, mode=mode) for mode in modes])
    for results in run_onnx(model, {"x": value}):
        for mode, got in zip(modes, results, strict=True):
            assert_matches(got, np.pad(value, width, mode=mode), None, None, mode)


def test_pad_3d_and_length_one_axis() -> None:
    # Compared with NumPy: PyTensor 2.38's reflect graph divides by zero on a length-1 axis.
    _compare_with_numpy(np.arange(8.0).reshape(2, 1, 4), ((1, 0), (2, 3), (0, 2)), MODES)


@pytest.mark.parametrize("mode", MODES)
def test_pad_symbolic_widths(mode: str) -> None:
    value = np.arange(10.0).reshape(2, 5)
    x = input_like(value, "x", symbolic=True)
    widths = pt.lmatrix("widths")
    out = pt.pad(x, widths, mode=mode)
    fn = pytensor.function([x, widths], out, mode=REFERENCE_MODE)
    model = export_onnx([x, widths], [out])
    for w in ([[1, 2], [0, 3]], [[0, 0], [4, 6]], [[3, 3], [1, 0]]):
        w_value = np.array(w)
        for (got,) in run_onnx(model, {"x": value, "widths": w_value}):
            assert_matches(got, fn(value, w_value), None, None, f"{mode} {w}")


def test_pad_constant_values(floatX: str) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 3)
    x = input_like(value, "x", symbolic=True)
    c = pt.scalar("c", dtype=floatX)
    outs = [
        pt.pad(x, ((1, 2), (2, 1)), constant_values=((10, 20), (30, 40))),
        pt.pad(x, 1, constant_values=(-1, 1)),
        pt.pad(x, 2, constant_values=c),
        pt.pad(x, ((0, 1), (1, 0)), constant_values=np.inf),
    ]
    compare_onnx_and_py([x, c], outs, [value, np.array(-2.5, dtype=floatX)])


@pytest.mark.parametrize("dtype", ["int16", "uint16", "int64", "bool"])
def test_pad_integer_dtypes(dtype: str) -> None:
    value = (np.arange(6) % 2).astype(dtype).reshape(2, 3)
    x = input_like(value, "x", symbolic=True)
    outs = [pt.pad(x, 1, mode="edge"), pt.pad(x, (2, 1), mode="reflect")]
    if dtype != "bool":
        outs.append(pt.pad(x, 1, constant_values=np.array(3, dtype=dtype)))
    compare_onnx_and_py([x], outs, [value])


def test_pad_empty_axis_without_padding() -> None:
    # Compared with NumPy: PyTensor's own graphs fail here (2.38: wrap/reflect/symmetric,
    # 3.3: edge).
    _compare_with_numpy(np.zeros((0, 3)), ((0, 0), (1, 2)), MODES)


@pytest.mark.parametrize("mode", ["linear_ramp", "maximum", "minimum", "mean"])
def test_pad_inlined_modes(mode: str, floatX: str) -> None:
    pytest.importorskip("pytensor_onnx.dispatch.subtensor")  # inner graphs use IncSubtensor
    value = np.array([[1.0, 5.0, -2.0], [3.0, 0.5, 4.0]], dtype=floatX)
    x = input_like(value, "x")
    kwargs = {"end_values": (-1, 2)} if mode == "linear_ramp" else {}
    compare_onnx_and_py([x], [pt.pad(x, ((1, 2), (2, 1)), mode=mode, **kwargs)], [value])


def test_pad_gradient(floatX: str) -> None:
    value = np.linspace(-1, 1, 6).astype(floatX).reshape(2, 3)
    x = input_like(value, "x", symbolic=True)
    weights = np.arange(1, 1 + 7 * 7).reshape(7, 7).astype(floatX)
    cost = (pt.pad(x, ((2, 3), (1, 3)), mode="reflect") * weights).sum()
    cost = cost + (pt.pad(x, 2, mode="symmetric") ** 2).sum()
    compare_onnx_and_py([x], [cost, pytensor.grad(cost, x)], [value])
