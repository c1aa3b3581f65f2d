"""Shape Ops (``pytensor.tensor.shape``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from tests.compare import REFERENCE_MODE, assert_matches, compare_onnx_and_py, input_like, run_onnx


def _ops(model: object) -> list[str]:
    return [n.op_type for n in model.graph.node]  # type: ignore[attr-defined]


def test_shape_and_shape_i(floatX: str, symbolic: bool) -> None:
    value = np.ones((3, 1, 4), dtype=floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [x.shape, x.shape[0], x.shape[2], x.shape[-2]], [value])


@pytest.mark.parametrize("shape", [(0, 3), (2, 0), (0,)])
def test_shape_of_empty(shape: tuple[int, ...], symbolic: bool) -> None:
    value = np.zeros(shape, dtype="float64")
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [x.shape, x.shape[0], x.size], [value])


def test_specify_shape(floatX: str) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 3)
    x = pt.tensor("x", dtype=floatX, shape=(None, None))
    y = pt.specify_shape(x, (2, None)) * 2
    model = compare_onnx_and_py([x], [y], [value])
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_value == 2


RESHAPES = {
    "minus_one_last": lambda x: x.reshape((x.shape[0], -1)),
    "minus_one_first": lambda x: x.reshape((-1, 2)),
    "flat": lambda x: x.reshape((-1,)),
    "computed": lambda x: x.reshape((x.shape[1] * x.shape[2], x.shape[0])),
    "add_dims": lambda x: x.reshape((1, x.shape[0], 1, -1)),
    "flatten_1": lambda x: pt.flatten(x, 1),
    "flatten_2": lambda x: pt.flatten(x, 2),
}


@pytest.mark.parametrize("name", sorted(RESHAPES))
def test_reshape(name: str, floatX: str, symbolic: bool) -> None:
    value = np.arange(24, dtype=floatX).reshape(3, 4, 2)
    x = input_like(value, "x", symbolic)
    out = RESHAPES[name](x)
    model = compare_onnx_and_py([x], [out], [value])
    assert "Reshape" in _ops(model)


def test_reshape_empty(symbolic: bool) -> None:
    value = np.zeros((0, 4, 2), dtype="float32")
    x = input_like(value, "x", symbolic)
    # A 0 in the target shape is a zero-length dim (not "copy the input dim").
    outs = [x.reshape((x.shape[1], 0)), x.reshape((x.shape[0], 8)), x.reshape((0, 3))]
    compare_onnx_and_py([x], outs, [value])


def test_reshape_symbolic_target_input() -> None:
    value = np.arange(12.0).reshape(3, 4)
    x = input_like(value, "x", symbolic=True)
    shape = pt.lvector("shape")
    out = x.reshape(shape, ndim=3)
    compare_onnx_and_py([x, shape], [out], [value, np.array([2, -1, 3])])


def test_reshape_to_scalar_and_back(floatX: str) -> None:
    value = np.array([[2.5]], dtype=floatX)
    x = input_like(value, "x")
    scalar = x.reshape(())
    compare_onnx_and_py([x], [scalar, scalar.reshape((1, 1, 1))], [value])


@pytest.mark.parametrize("int_dtype", ["int8", "int32", "uint16", "bool"])
def test_reshape_other_dtypes(int_dtype: str) -> None:
    value = (np.arange(6) % 3).astype(int_dtype).reshape(2, 3)
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [x.reshape((3, -1)), x.T.flatten()], [value])


def test_squeeze_expand_dims(floatX: str, symbolic: bool) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 1, 3)
    x = input_like(value, "x", symbolic)
    outs = [
        pt.squeeze(x),
        pt.squeeze(x, axis=1),
        pt.expand_dims(x, (0, -1)),
        pt.expand_dims(pt.squeeze(x), 1).T,
    ]
    compare_onnx_and_py([x], outs, [value])


def test_reshape_gradient(floatX: str) -> None:
    value = np.linspace(-1, 1, 12).astype(floatX).reshape(3, 4)
    x = input_like(value, "x", symbolic=True)
    weights = pt.as_tensor(np.arange(12, dtype=floatX).reshape(6, 2))
    cost = (x.reshape((-1, 2)) * weights).sum() + (x.reshape((x.shape[1], -1)) ** 2).sum()
    compare_onnx_and_py([x], [cost, pytensor.grad(cost, x)], [value])


def test_symbolic_shapes_export_once() -> None:
    """One model, exported with unknown dims, runs at several input sizes."""
    x = pt.matrix("x", dtype="float64")
    outs = [x.reshape((x.shape[0], -1)) * 2, x.reshape((-1,)), x.shape, pt.flatten(x.T)]
    fn = pytensor.function([x], outs, mode=REFERENCE_MODE)
    model = export_onnx([x], outs)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["x_dim0", "x_dim1"]
    for shape in [(2, 3), (5, 1), (0, 4), (7, 2)]:
        value = np.arange(np.prod(shape), dtype="float64").reshape(shape)
        for results in run_onnx(model, {"x": value}):
            for got, want in zip(results, fn(value), strict=True):
                assert_matches(got, want, None, None, f"shape {shape}")
