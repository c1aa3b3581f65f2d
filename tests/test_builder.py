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
