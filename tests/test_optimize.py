"""The ONNX-level optimization stage (src/pytensor_onnx/optimize.py): fused operators where
they compute the same values, and the graph left alone where they would not."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytensor
import pytensor.tensor as pt
import pytest
from onnx import TensorProto, helper

from pytensor_onnx import export_onnx
from pytensor_onnx.optimize import optimize
from tests.compare import all_nodes, compare_onnx_and_py, input_like


def _op_types(inputs: list[pt.TensorVariable], outputs: list[pt.TensorVariable]) -> list[str]:
    model = export_onnx(inputs, outputs)
    return [node.op_type for node in all_nodes(model) if node.op_type != "Constant"]


@pytest.mark.parametrize("shared", [False, True], ids=["constant_biases", "shared_biases"])
@pytest.mark.parametrize("symbolic", [False, True])
def test_mlp_becomes_gemm_relu_softmax(floatX: str, symbolic: bool, shared: bool) -> None:
    # Constant biases are folded into (1, n) rows, shared ones are Unsqueeze(b, [0]) of an
    # initializer, which Gemm takes as it is.
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(8, 16)).astype(floatX), rng.normal(size=(16, 4)).astype(floatX)
    b1, b2 = (rng.normal(size=n).astype(floatX) for n in (16, 4))
    if shared:
        b1, b2 = pytensor.shared(b1, name="b1"), pytensor.shared(b2, name="b2")
    values = rng.normal(size=(5, 8)).astype(floatX)
    values[0, 0], values[1, 1], values[2, 2] = np.nan, np.inf, -np.inf
    x = input_like(values, "x", symbolic=symbolic)
    out = pt.special.softmax(pt.maximum(x @ w1 + b1, 0) @ w2 + b2, axis=-1)
    # float64 keeps MatMul + Add (tract fails a float64 Gemm; ONNX Runtime fuses them itself).
    fused = ["Gemm", "Relu", "Gemm", "Softmax"]
    unfused = ["MatMul", "Add", "Relu", "MatMul", "Add", "Softmax"]
    unfused += ["Unsqueeze", "Unsqueeze"] if shared else []
    want = fused if floatX == "float32" else unfused
    assert sorted(_op_types([x], [out])) == sorted(want)
    compare_onnx_and_py([x], [out], [values])


def test_relu_propagates_nan_and_keeps_infinities(floatX: str) -> None:
    values = np.array([-1.0, np.nan, 2.0, -0.0, np.inf, -np.inf], dtype=floatX)
    x = input_like(values, "x", symbolic=True)
    assert _op_types([x], [pt.maximum(x, 0)]) == ["Relu"]
    compare_onnx_and_py([x], [pt.maximum(x, 0), pt.maximum(0, x)], [values])


def test_what_is_not_rewritten(floatX: str) -> None:
    rng = np.random.default_rng(1)
    a = input_like(rng.normal(size=(3, 4)).astype(floatX), "a")
    b = input_like(rng.normal(size=(4, 5)).astype(floatX), "b")
    batch = input_like(rng.normal(size=(2, 3, 4)).astype(floatX), "batch")
    v = input_like(rng.normal(size=3).astype(floatX), "v")
    row = rng.normal(size=5).astype(floatX)
    column = rng.normal(size=(3, 1)).astype(floatX)
    product = a @ b
    # A bias that is not a row, a product used twice, a batched product, a nonzero bound.
    assert "Gemm" not in _op_types([a, b], [a @ b + column])
    assert _op_types([a, b], [product + row, product * 2]).count("MatMul") == 1
    assert "Gemm" not in _op_types([batch, b], [batch @ b + row])
    assert "Relu" not in _op_types([v], [pt.maximum(v, 0.5)])
    # Integers keep Max.
    n = pt.lvector("n")
    assert "Relu" not in _op_types([n], [pt.maximum(n, 0)])


def test_a_zero_that_broadcasts_keeps_max() -> None:
    # PyTensor broadcasts explicitly, so only a hand-made graph has Max(v, zeros((1, 1))),
    # a matrix, which Relu(v) is not.
    graph = helper.make_graph(
        [helper.make_node("Max", ["v", "zero"], ["y"])],
        "g",
        [helper.make_tensor_value_info("v", TensorProto.DOUBLE, [3])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [1, 3])],
        [helper.make_tensor("zero", TensorProto.DOUBLE, [1, 1], [0.0])],
    )
    model = ir.serde.deserialize_model(helper.make_model(graph))
    optimize(model)
    assert [node.op_type for node in model.graph] == ["Max"]
