"""ONNXBuilder: operators some runtimes lack are written as exact portable nodes."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from pytensor_onnx.builder import PORTABLE_REPLACEMENTS, ONNXBuilder, onnx_dtype
from tests.compare import all_nodes, assert_portable, run_onnx

EDGES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -1.5, 1e308, -5e-324]


def _model(op_type: str, attributes: dict[str, int], dtype: str, n_inputs: int):
    builder = ONNXBuilder(18, "g")
    inputs = [
        ir.Value(name=f"x{i}", type=ir.TensorType(onnx_dtype(dtype)), shape=ir.Shape([None]))
        for i in range(n_inputs)
    ]
    builder.graph.inputs.extend(inputs)
    out = builder.add_output(builder.op(op_type, inputs, attributes))
    out.name, out.dtype, out.shape = "y", ir.DataType.BOOL, ir.Shape([None])
    builder.graph.opset_imports[""] = 18
    return ir.serde.serialize_model(ir.Model(builder.graph, ir_version=8))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("op_type", "attributes", "expected"),
    [
        ("IsNaN", {}, np.isnan),
        ("IsInf", {}, np.isinf),
        ("IsInf", {"detect_negative": 0}, np.isposinf),
        ("IsInf", {"detect_positive": 0}, np.isneginf),
        ("IsInf", {"detect_positive": 0, "detect_negative": 0}, lambda x: np.zeros_like(x, bool)),
    ],
)
def test_unary_replacements_are_exact(op_type, attributes, expected, dtype) -> None:
    model = _model(op_type, attributes, dtype, 1)
    assert_portable(model)
    x = np.array(EDGES, dtype=dtype)
    for (got,) in run_onnx(model, {"x0": x}):
        np.testing.assert_array_equal(got, expected(x))


@pytest.mark.parametrize("dtype", ["float64", "int64", "int32"])
@pytest.mark.parametrize(
    ("op_type", "expected"), [("GreaterOrEqual", np.greater_equal), ("LessOrEqual", np.less_equal)]
)
def test_comparison_replacements_are_exact(op_type, expected, dtype) -> None:
    model = _model(op_type, {}, dtype, 2)
    assert {n.op_type for n in all_nodes(model)} == {"Or", "Equal", op_type[:-7]}
    if dtype.startswith("float"):
        a, b = np.meshgrid(np.array(EDGES, dtype), np.array(EDGES, dtype))
    else:
        info = np.iinfo(dtype)
        values = np.array([info.min, -1, 0, 1, info.max], dtype)
        a, b = np.meshgrid(values, values)
    a, b = a.ravel(), b.ravel()
    for (got,) in run_onnx(model, {"x0": a, "x1": b}):
        np.testing.assert_array_equal(got, expected(a, b))


def test_every_replaced_operator_is_tested() -> None:
    assert set(PORTABLE_REPLACEMENTS) == {"IsNaN", "IsInf", "GreaterOrEqual", "LessOrEqual"}


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("symbolic_count", [False, True])
def test_pad_axis_between_transposes(axis: int, symbolic_count: bool) -> None:
    # ONNX Runtime 1.32's transpose optimizer moves the Transposes of Transpose -> Pad ->
    # Transpose through the Pad by permuting its pads as if they covered every axis; with
    # Pad's axes input the session then failed (an out-of-bounds Gather).
    builder = ONNXBuilder(18, "g")
    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.DOUBLE), shape=ir.Shape([2, 3]))
    count = ir.Value(name="count", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([1]))
    builder.graph.inputs.extend([x, count])
    transposed = builder.op("Transpose", [x], {"perm": [1, 0]})
    one = builder.scalar(-1.0, "float64")
    after = count if symbolic_count else 2
    padded = builder.pad_axis(transposed, axis, 1, after, rank=2, constant=one)
    out = builder.add_output(builder.op("Transpose", [padded], {"perm": [1, 0]}))
    out.name, out.dtype = "y", ir.DataType.DOUBLE
    builder.graph.opset_imports[""] = 18
    model = ir.serde.serialize_model(ir.Model(builder.graph, ir_version=8))
    value = np.arange(6.0).reshape(2, 3)
    pad_width = [(0, 0), (0, 0)]
    pad_width[1 - axis % 2] = (1, 2)  # the transposed axis
    expected = np.pad(value, pad_width, constant_values=-1.0)
    for got in run_onnx(model, {"x": value, "count": np.array([2])}):
        np.testing.assert_array_equal(got[0], expected)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [0, 3])
def test_append_zeros_along_any_axis(axis: int, dtype: str, rows: int) -> None:
    # The input's dims are unknown, and so may be 0; the count is only known at run time.
    builder = ONNXBuilder(18, "g")
    onnx_type = ir.TensorType(onnx_dtype(dtype))
    x = ir.Value(name="x", type=onnx_type, shape=ir.Shape(["a", "b", "c"]))
    count = ir.Value(name="count", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([1]))
    builder.graph.inputs.extend([x, count])
    out = builder.add_output(builder.append_zeros(x, count, axis, dtype))
    out.name, out.dtype = "y", onnx_type.dtype
    builder.graph.opset_imports[""] = 18
    model = ir.serde.serialize_model(ir.Model(builder.graph, ir_version=8))
    value = np.arange(rows * 2 * 4, dtype=dtype).reshape(rows, 2, 4) - np.array(np.inf, dtype)
    value[..., 0] = np.nan
    pad_width = [(0, 0)] * 3
    pad_width[axis] = (0, 2)
    expected = np.pad(value, pad_width)
    for got in run_onnx(model, {"x": value, "count": np.array([2])}):
        assert got[0].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got[0], expected)
    assert_portable(model)
    assert "Pad" not in {node.op_type for node in all_nodes(model)}  # tract needs constant pads
