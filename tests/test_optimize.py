"""The ONNX-level optimization stage (src/pytensor_onnx/optimize.py): fused operators where
they compute the same values, and the graph left alone where they would not."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

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
    # initializer named after the variable (never folded), which Gemm takes as it is.
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


def _optimized(graph: onnx.GraphProto, feeds: dict[str, np.ndarray]) -> list[str]:
    """Optimize a hand-made graph; check that ONNX Runtime and ``onnx.reference`` give the
    same values before and after; return the operators left (``Constant`` excluded)."""
    before = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    before.ir_version = 8
    model = ir.serde.deserialize_model(before)
    optimize(model)
    after = ir.serde.serialize_model(model)
    onnx.checker.check_model(after, full_check=True)
    for proto in (before, after):
        session = ort.InferenceSession(proto.SerializeToString())
        for got, want in zip(
            session.run(None, feeds),
            ReferenceEvaluator(before).run(None, feeds),
            strict=True,
        ):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(
            ReferenceEvaluator(proto).run(None, feeds),
            ReferenceEvaluator(before).run(None, feeds),
            strict=True,
        ):
            np.testing.assert_array_equal(got, want)
    return [node.op_type for node in all_nodes(after) if node.op_type != "Constant"]


def _assert_same_values(
    before: onnx.ModelProto, after: onnx.ModelProto, feeds: dict[str, np.ndarray]
) -> None:
    """``after`` gives in ONNX Runtime and ``onnx.reference`` what ``onnx.reference`` gives
    for ``before``."""
    want = ReferenceEvaluator(before).run(None, feeds)
    for got in (
        ort.InferenceSession(after.SerializeToString()).run(None, feeds),
        ReferenceEvaluator(after).run(None, feeds),
    ):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def _info(name: str, dtype: int, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.mark.parametrize("dtype", [TensorProto.FLOAT, TensorProto.DOUBLE])
def test_constant_subgraphs_fold(dtype: int) -> None:
    np_dtype = helper.tensor_dtype_to_np_dtype(dtype)
    ints = np.array([3, -1, 0], dtype=np.int64)
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(ints[2:])),
            helper.make_node("Unsqueeze", ["c", "axes"], ["row"]),
            helper.make_node("Cast", ["row"], ["cast"], to=dtype),
            helper.make_node("Shape", ["cast"], ["shape"]),
            helper.make_node("Expand", ["cast", "shape"], ["same"]),
            helper.make_node("Add", ["x", "same"], ["y"]),
        ],
        "g",
        [_info("x", dtype, ["batch", 3])],
        [_info("y", dtype, ["batch", 3])],
        [numpy_helper.from_array(ints, "c")],
    )
    x = np.array([[1.5, np.nan, -np.inf], [0.0, -0.0, np.inf]], dtype=np_dtype)
    assert _optimized(graph, {"x": x}) == ["Add"]


def test_folding_keeps_graph_outputs_parameters_and_undefined_casts() -> None:
    nan = np.array([np.nan, np.inf, 1.5])
    graph = helper.make_graph(
        [
            # A graph output keeps its node (its name is the interface).
            helper.make_node("Cast", ["c"], ["c32"], to=TensorProto.FLOAT),
            # Float to integer of NaN and infinity is undefined in ONNX: left to the runtime
            # (compared only through IsNaN, which any runtime answers alike).
            helper.make_node("Cast", ["nan"], ["ints"], to=TensorProto.INT64),
            helper.make_node("Cast", ["ints"], ["back"], to=TensorProto.DOUBLE),
            helper.make_node("Mul", ["back", "zero"], ["masked"]),
            helper.make_node("Add", ["x", "masked"], ["y"]),
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, [3])],
        [_info("c32", TensorProto.FLOAT, [3]), _info("y", TensorProto.DOUBLE, [3])],
        [
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0]), "c"),
            numpy_helper.from_array(nan[2:], "nan"),
            numpy_helper.from_array(np.zeros(3), "zero"),
        ],
    )
    ops = _optimized(graph, {"x": np.ones(3)})
    assert ops == ["Cast", "Mul", "Add"]  # c32 kept; 1.5 -> 1 -> 1.0 folded
    graph.initializer[1].CopyFrom(numpy_helper.from_array(nan, "nan"))
    model = ir.serde.deserialize_model(helper.make_model(graph))
    optimize(model)
    assert [node.op_type for node in model.graph] == ["Cast", "Cast", "Cast", "Mul", "Add"]

    # A fold that the specification rejects is left for the runtime to report.
    out_of_range = helper.make_graph(
        [
            helper.make_node("Gather", ["c", "index"], ["picked"]),
            helper.make_node("Neg", ["picked"], ["y"]),
        ],
        "g",
        [],
        [_info("y", TensorProto.DOUBLE, [])],
        [
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0]), "c"),
            numpy_helper.from_array(np.array(5), "index"),
        ],
    )
    model = ir.serde.deserialize_model(helper.make_model(out_of_range))
    optimize(model)
    assert [node.op_type for node in model.graph] == ["Gather", "Neg"]

    # The initializer of a shared variable (a parameter) is never folded into another value.
    b = pytensor.shared(np.array([1.0, 2.0]), name="b")
    x = pt.matrix("x")
    exported = export_onnx([x], [x + b])
    assert [i.name for i in exported.graph.initializer] == ["b"]
    assert [node.op_type for node in exported.graph.node] == ["Constant", "Unsqueeze", "Add"]


def test_folding_never_grows_the_file() -> None:
    big = np.arange(200.0).reshape(10, 20)
    graph = helper.make_graph(
        [
            # Used once: the transposed copy replaces the original.
            helper.make_node("Transpose", ["once"], ["t1"]),
            # Used twice: folding would store both.
            helper.make_node("Transpose", ["twice"], ["t2"]),
            helper.make_node("Add", ["twice", "x"], ["y0"]),
            # A small constant expanded: folding would store the large result.
            helper.make_node("Expand", ["one", "shape"], ["wide"]),
            helper.make_node("Add", ["x", "wide"], ["y1"]),
            helper.make_node("Add", ["t1", "t2"], ["y2"]),
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, [10, 20])],
        [_info(n, TensorProto.DOUBLE, [None, None]) for n in ("y0", "y1", "y2")],
        [
            numpy_helper.from_array(big, "once"),
            numpy_helper.from_array(big + 1, "twice"),
            numpy_helper.from_array(np.ones((1, 1)), "one"),
            numpy_helper.from_array(np.array([10, 20], dtype=np.int64), "shape"),
        ],
    )
    ops = _optimized(graph, {"x": np.ones((10, 20))})
    assert sorted(ops) == sorted(["Transpose", "Add", "Expand", "Add", "Add"])
    model = ir.serde.deserialize_model(helper.make_model(graph))
    optimize(model)
    sizes = sorted(value.const_value.size for value in model.graph.initializers.values())
    assert sizes == [1, 2, 200, 200]


def test_no_op_casts_reshapes_and_expands_are_bypassed() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["cast"], to=TensorProto.DOUBLE),
            helper.make_node("Reshape", ["cast", "shape"], ["reshaped"]),
            helper.make_node("Expand", ["reshaped", "shape"], ["expanded"]),
            helper.make_node("Neg", ["expanded"], ["y"]),
            # An unknown dimension: the Reshape may change the shape, so it stays.
            helper.make_node("Reshape", ["v", "flat"], ["v_flat"]),
            helper.make_node("Neg", ["v_flat"], ["z"]),
            # A graph output keeps its node.
            helper.make_node("Cast", ["x"], ["out"], to=TensorProto.DOUBLE),
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, [2, 3]), _info("v", TensorProto.DOUBLE, ["n", 3])],
        [
            _info("y", TensorProto.DOUBLE, [2, 3]),
            _info("z", TensorProto.DOUBLE, [None]),
            _info("out", TensorProto.DOUBLE, [2, 3]),
        ],
        [
            numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "shape"),
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
        ],
    )
    graph = onnx.shape_inference.infer_shapes(helper.make_model(graph)).graph
    feeds = {"x": np.array([[1.0, np.nan, 3.0], [-np.inf, 0.0, 2.0]]), "v": np.ones((4, 3))}
    # The two Casts of x are one after common-subexpression elimination.
    assert sorted(_optimized(graph, feeds)) == ["Cast", "Neg", "Neg", "Reshape"]


def test_common_subexpressions_merge_in_the_main_graph_and_in_loop_bodies() -> None:
    body = helper.make_graph(
        [
            helper.make_node("Sin", ["acc"], ["s1"]),
            helper.make_node("Sin", ["acc"], ["s2"]),
            helper.make_node("Add", ["s1", "s2"], ["acc_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            _info("i", TensorProto.INT64, []),
            _info("cond", TensorProto.BOOL, []),
            _info("acc", TensorProto.DOUBLE, [3]),
        ],
        [_info("cond_out", TensorProto.BOOL, []), _info("acc_out", TensorProto.DOUBLE, [3])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Exp", ["x"], ["e1"]),
            helper.make_node("Exp", ["x"], ["e2"]),
            helper.make_node("Mul", ["e1", "e2"], ["start"]),
            helper.make_node("Loop", ["n", "true", "start"], ["y"], body=body),
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, [3]), _info("n", TensorProto.INT64, [])],
        [_info("y", TensorProto.DOUBLE, [3])],
        [numpy_helper.from_array(np.array(True), "true")],
    )
    feeds = {"x": np.array([0.5, np.nan, -np.inf]), "n": np.array(3)}
    assert _optimized(graph, feeds) == ["Exp", "Mul", "Loop", "Sin", "Add", "Identity"]


def _scaling_loop(name: str, outer: str, scale: float) -> onnx.NodeProto:
    """``Loop`` that multiplies ``x`` by ``outer * scale`` ``n`` times (names prefixed by
    ``name``, so that every body is a separate graph)."""
    body = helper.make_graph(
        [
            helper.make_node("Constant", [], [f"{name}_k32"], value_float=scale),
            helper.make_node("Cast", [f"{name}_k32"], [f"{name}_k"], to=TensorProto.DOUBLE),
            helper.make_node("Mul", [outer, f"{name}_k"], [f"{name}_f"]),
            helper.make_node("Mul", [f"{name}_acc", f"{name}_f"], [f"{name}_acc_out"]),
            helper.make_node("Identity", [f"{name}_cond"], [f"{name}_cond_out"]),
        ],
        name,
        [
            _info(f"{name}_i", TensorProto.INT64, []),
            _info(f"{name}_cond", TensorProto.BOOL, []),
            _info(f"{name}_acc", TensorProto.DOUBLE, [3]),
        ],
        [
            _info(f"{name}_cond_out", TensorProto.BOOL, []),
            _info(f"{name}_acc_out", TensorProto.DOUBLE, [3]),
        ],
    )
    return helper.make_node("Loop", ["n", "true", "x"], [name], body=body)


def test_loops_with_equal_bodies_and_inputs_merge() -> None:
    # The structural comparison reads the bodies' inputs by position and the values they
    # capture by identity (after the capturing graph's own merges); a float attribute -0.0
    # is not 0.0.
    loops = [
        _scaling_loop("same", "e1", 0.5),
        _scaling_loop("same_again", "e1", 0.5),  # merges into "same" (an Identity)
        _scaling_loop("other_capture", "s", 0.5),
        _scaling_loop("merged_capture", "e2", 0.5),  # e2 is e1: merges into "same"
        _scaling_loop("zero", "e1", 0.0),
        _scaling_loop("negative_zero", "e1", -0.0),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Exp", ["x"], ["e1"]),
            helper.make_node("Exp", ["x"], ["e2"]),
            helper.make_node("Sin", ["x"], ["s"]),
            *loops,
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, [3]), _info("n", TensorProto.INT64, [])],
        [_info(loop.output[0], TensorProto.DOUBLE, [3]) for loop in loops],
        [numpy_helper.from_array(np.array(True), "true")],
    )
    feeds = {"x": np.array([0.5, np.nan, -np.inf]), "n": np.array(2)}
    model = ir.serde.deserialize_model(helper.make_model(graph))
    optimize(model)
    assert [value.name for value in model.graph.outputs] == [loop.output[0] for loop in loops]
    remaining = [node.op_type for node in model.graph]
    assert remaining.count("Loop") == 4
    assert remaining.count("Exp") == 1
    assert _optimized(graph, feeds).count("Loop") == 4


def test_loop_invariant_nodes_move_before_the_loop() -> None:
    # In the inner body, Exp(x) and the float Div read only values of the enclosing graphs:
    # they move out of both loops.  Add(acc, ...) reads the iteration; the integer Div (a
    # division by zero may crash) and a body output stay.
    inner = helper.make_graph(
        [
            helper.make_node("Exp", ["x"], ["ex"]),
            helper.make_node("Div", ["ex", "x"], ["ratio"]),
            helper.make_node("Div", ["k", "k"], ["k_over_k"]),
            helper.make_node("Cast", ["k_over_k"], ["one"], to=TensorProto.DOUBLE),
            helper.make_node("Mul", ["ratio", "one"], ["step"]),
            helper.make_node("Add", ["acc", "step"], ["acc_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
            helper.make_node("Neg", ["x"], ["scan_out"]),
        ],
        "inner",
        [
            _info("i", TensorProto.INT64, []),
            _info("cond", TensorProto.BOOL, []),
            _info("acc", TensorProto.DOUBLE, [3]),
        ],
        [
            _info("cond_out", TensorProto.BOOL, []),
            _info("acc_out", TensorProto.DOUBLE, [3]),
            _info("scan_out", TensorProto.DOUBLE, [3]),
        ],
    )
    outer = helper.make_graph(
        [
            helper.make_node("Loop", ["n", "true", "acc2"], ["inner_acc", "stacked"], body=inner),
            helper.make_node("Identity", ["cond2"], ["cond2_out"]),
        ],
        "outer",
        [
            _info("j", TensorProto.INT64, []),
            _info("cond2", TensorProto.BOOL, []),
            _info("acc2", TensorProto.DOUBLE, [3]),
        ],
        [_info("cond2_out", TensorProto.BOOL, []), _info("inner_acc", TensorProto.DOUBLE, [3])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", "true", "x"], ["y"], body=outer)],
        "g",
        [
            _info("x", TensorProto.DOUBLE, [3]),
            _info("n", TensorProto.INT64, []),
            _info("k", TensorProto.INT64, []),
        ],
        [_info("y", TensorProto.DOUBLE, [3])],
        [numpy_helper.from_array(np.array(True), "true")],
    )
    graph = onnx.shape_inference.infer_shapes(helper.make_model(graph)).graph  # dtypes
    feeds = {"x": np.array([0.5, np.nan, -2.0]), "n": np.array(3), "k": np.array(2)}
    assert _optimized(graph, feeds) == [
        "Exp", "Div", "Loop", "Loop", "Identity", "Div", "Cast", "Mul", "Add", "Identity", "Neg"
    ]  # fmt: skip


def test_one_element_constants_get_the_rank_they_broadcast_to() -> None:
    # ONNX Runtime broadcasts a lower-rank scalar against a last axis of length 1 element by
    # element (16x slower); the rank-matched constant gives the same values.
    body = helper.make_graph(
        [
            helper.make_node("Mul", ["acc", "half"], ["acc_out"]),
            helper.make_node("Identity", ["cond"], ["cond_out"]),
        ],
        "body",
        [
            _info("i", TensorProto.INT64, []),
            _info("cond", TensorProto.BOOL, []),
            _info("acc", TensorProto.DOUBLE, ["batch", 1]),
        ],
        [
            _info("cond_out", TensorProto.BOOL, []),
            _info("acc_out", TensorProto.DOUBLE, ["batch", 1]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "one"], ["a"]),
            helper.make_node("Min", ["a", "row_one", "x"], ["b"]),
            helper.make_node("Greater", ["b", "one"], ["positive"]),
            helper.make_node("Where", ["positive", "zero", "b"], ["c"]),
            helper.make_node("Add", ["v", "square_one"], ["wide"]),  # c is the higher rank
            helper.make_node("Loop", ["n", "true", "c"], ["y"], body=body),
        ],
        "g",
        [
            _info("x", TensorProto.DOUBLE, ["batch", 1]),
            _info("v", TensorProto.DOUBLE, [3]),
            _info("n", TensorProto.INT64, []),
        ],
        [_info("y", TensorProto.DOUBLE, ["batch", 1]), _info("wide", TensorProto.DOUBLE, [1, 3])],
        [
            numpy_helper.from_array(np.array(True), "true"),
            numpy_helper.from_array(np.array(1.0), "one"),
            numpy_helper.from_array(np.array([1.0]), "row_one"),
            numpy_helper.from_array(np.array(-0.0), "zero"),
            numpy_helper.from_array(np.array(0.5), "half"),
            numpy_helper.from_array(np.array([[1.0]]), "square_one"),
        ],
    )
    x = np.array([[0.5], [np.nan], [-np.inf], [np.inf], [-0.0], [3.0]])
    feeds = {"x": x, "v": np.array([1.0, -np.inf, np.nan]), "n": np.array(2)}
    # As in export_onnx, the optimizer sees the inferred shapes.
    before = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    before.ir_version = 8
    before = onnx.shape_inference.infer_shapes(before, strict_mode=True)
    model = ir.serde.deserialize_model(before)
    optimize(model)
    after = ir.serde.serialize_model(model)
    onnx.checker.check_model(after, full_check=True)
    _assert_same_values(before, after, feeds)
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        if node.op_type in ("Constant", "Loop", "Identity"):
            continue
        ranks = [len(value.shape) for value in node.inputs if value is not None]
        expected = [1, 2] if node.inputs[0].name == "v" else [2] * len(ranks)
        assert ranks == expected, (node.op_type, ranks)


@pytest.mark.parametrize("x", [np.ones((0, 3)), np.ones((3, 0)), np.arange(6.0).reshape(2, 3)])
def test_reductions_get_nonnegative_axes(x: np.ndarray) -> None:
    # ONNX Runtime 1.30/1.31 (onnxruntime-web/-node) return an empty input unchanged from a
    # reduction over a negative axis; over the equivalent non-negative axis they are right.
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x", "last"], ["sum"], keepdims=0),
            helper.make_node("ReduceMax", ["x"], ["max"], axes=[-2, -1], keepdims=1),
            helper.make_node("ReduceL2", ["x"], ["norm"], axes=[-2], keepdims=0),
            helper.make_node("ArgMin", ["x"], ["first"], axis=-1, keepdims=0),
            helper.make_node("ReduceSum", ["v", "last"], ["unknown_rank"], keepdims=0),
        ],
        "g",
        [_info("x", TensorProto.DOUBLE, ["m", "n"]), _info("v", TensorProto.DOUBLE, None)],
        [
            _info("sum", TensorProto.DOUBLE, None),
            _info("max", TensorProto.DOUBLE, None),
            _info("norm", TensorProto.DOUBLE, None),
            _info("first", TensorProto.INT64, None),
            _info("unknown_rank", TensorProto.DOUBLE, None),
        ],
        [
            numpy_helper.from_array(np.array([-1], dtype=np.int64), "last"),
        ],
    )
    # At opset 17 ReduceSum takes its axes as an input, the other reductions as an attribute.
    before = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    before.ir_version = 8
    model = ir.serde.deserialize_model(before)
    optimize(model)
    after = ir.serde.serialize_model(model)
    axes = {}
    for node in model.graph:
        attributes = node.attributes
        if "axis" in attributes:
            axes[node.op_type] = [attributes["axis"].as_int()]
        elif "axes" in attributes:
            axes[node.op_type] = list(attributes["axes"].as_ints())
        elif node.op_type == "ReduceSum":
            key = node.outputs[0].name
            axes[key] = ir.convenience.get_const_tensor(node.inputs[1]).numpy().tolist()
    # The input of unknown rank keeps its negative axis.
    assert axes == {
        "sum": [1],
        "ReduceMax": [0, 1],
        "ReduceL2": [0],
        "ArgMin": [1],
        "unknown_rank": [-1],
    }
    feeds = {"x": x, "v": np.ones((2, 2))}
    if x.shape[1] == 0:  # ArgMin over an empty axis is an error in every runtime
        return
    _assert_same_values(before, after, feeds)
