"""float32 conversion (``export_onnx(..., float32=True)``): dtypes, accuracy, int/bool parts."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.scan.op import Scan

from pytensor_onnx import export_onnx, verify
from pytensor_onnx.export import capture
from pytensor_onnx.precision import float64_tensors
from tests.compare import REFERENCE_MODE, ort_session

FLOAT = onnx.TensorProto.FLOAT
DOUBLE = onnx.TensorProto.DOUBLE


def _graph_elem_types(graph: onnx.GraphProto) -> set[int]:
    types = {v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]}
    types |= {t.data_type for t in graph.initializer}
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to":
                types.add(attr.i)
            if attr.type == onnx.AttributeProto.TENSOR:
                types.add(attr.t.data_type)
            if attr.type == onnx.AttributeProto.GRAPH:
                types |= _graph_elem_types(attr.g)
    return types


def _all_elem_types(model: onnx.ModelProto) -> set[int]:
    """Every element type the model declares or computes in (values, initializers, casts),
    subgraphs (Loop/If bodies) and local functions included."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = _graph_elem_types(inferred.graph)
    for function in inferred.functions:
        types |= _graph_elem_types(onnx.helper.make_graph(function.node, "f", [], []))
    return types


def _mlp() -> tuple[list[pt.TensorVariable], list[pt.TensorVariable]]:
    rng = np.random.default_rng(1)
    x = pt.matrix("x", dtype="float64", shape=(6, 5))
    labels = pt.vector("labels", dtype="int64", shape=(6,))
    w1 = pytensor.shared(rng.normal(size=(5, 8)), name="w1")
    b1 = pytensor.shared(np.zeros(8), name="b1")
    w2 = pytensor.shared(rng.normal(size=(8, 3)), name="w2")
    hidden = pt.tanh(x @ w1 + b1)
    logits = hidden @ w2
    probs = pt.special.softmax(logits, axis=-1)
    probs.name = "probs"
    predicted = pt.argmax(logits, axis=-1)
    predicted.name = "predicted"
    onehot = pt.eq(labels[:, None], pt.arange(3)[None, :])
    loss = -pt.mean(pt.sum(onehot * pt.log(probs), axis=-1))
    (grad_w1,) = pytensor.grad(loss, [w1])
    grad_w1.name = "grad_w1"
    correct = pt.eq(predicted, labels)
    correct.name = "correct"
    return [x, labels], [probs, predicted, grad_w1, correct]


def test_mlp_float32_types_and_accuracy() -> None:
    inputs, outputs = _mlp()
    model = export_onnx(inputs, outputs, float32=True)
    types = _all_elem_types(model)
    assert DOUBLE not in types, "a float64 value is left in the float32 model"
    assert FLOAT in types
    assert {i.name: i.type.tensor_type.elem_type for i in model.graph.input} == {
        "x": FLOAT,
        "labels": onnx.TensorProto.INT64,
    }
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [
        FLOAT,
        onnx.TensorProto.INT64,
        FLOAT,
        onnx.TensorProto.BOOL,
    ]
    assert all(
        t.data_type == FLOAT for t in model.graph.initializer if t.name.startswith(("w", "b"))
    )

    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5))
    labels = rng.integers(0, 3, size=6)
    report = verify((inputs, outputs), [x, labels], model=model, mode=REFERENCE_MODE)
    assert report.passed, str(report)
    # float32 computation is close to, but not exactly, the float64 result.
    errors = {c.name: c.max_rel_error for c in report.checks if c.runtime == "onnxruntime"}
    assert 0 < errors["probs"] < 1e-5
    assert 0 < errors["grad_w1"] < 1e-3
    assert errors["predicted"] == 0 and errors["correct"] == 0


def test_float32_model_rejects_float64_input() -> None:
    inputs, outputs = _mlp()
    model = export_onnx(inputs[:1], outputs[:1], float32=True)
    session = ort_session(model)
    with pytest.raises(Exception, match=r"(?i)type"):
        session.run(None, {"x": np.ones((6, 5), dtype=np.float64)})


def test_explicit_float64_casts_and_dtypes_are_retargeted() -> None:
    x = pt.vector("x", dtype="float32", shape=(4,))
    n = pt.lscalar("n")
    outputs = [
        pt.cast(x, "float64") * 2.5,
        pt.sum(x, acc_dtype="float64", dtype="float64"),
        pt.eye(3, dtype="float64") + n,
        pt.zeros((4,), dtype="float64") + x,
        pt.cast(x * 1e6, "int64"),
    ]
    model = export_onnx([x, n], outputs, float32=True)
    assert DOUBLE not in _all_elem_types(model)
    x_val = np.array([0.1, -2.0, 3.5, 1e-3], dtype=np.float32)
    feeds = {"x": x_val, "n": np.array(5, dtype=np.int64)}
    expected = pytensor.function([x, n], outputs, mode=REFERENCE_MODE)(x_val, 5)
    for runtime in (
        ort_session(model).run(None, feeds),
        ReferenceEvaluator(model).run(None, feeds),
    ):
        for got, want in zip(runtime, expected, strict=True):
            assert got.dtype == (np.float32 if want.dtype == np.float64 else want.dtype)
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_float64_arange_becomes_float32() -> None:
    n = pt.lscalar("n")
    y = pt.arange(n, dtype="float64") / 3
    model = export_onnx([n], [y], float32=True)
    assert model.graph.output[0].type.tensor_type.elem_type == FLOAT
    (got,) = ort_session(model).run(None, {"n": np.array(4, dtype=np.int64)})
    np.testing.assert_allclose(got, np.arange(4, dtype=np.float32) / 3, rtol=1e-7)
    assert got.dtype == np.float32


def test_float32_inlines_symbolic_ops_and_keeps_their_float32_path() -> None:
    # PyTensor 3 builds some ops as OpFromGraph; their inner graphs are rebuilt in float32.
    x = pt.matrix("x", dtype="float64", shape=(2, 3))
    y = pt.special.log_softmax(x, axis=1) + pt.logsumexp(x, axis=0)
    captured = capture([x], [y], float32=True)
    dtypes = {str(v.type.dtype) for v in captured.fgraph.variables if hasattr(v.type, "dtype")}
    assert "float64" not in dtypes
    x_val = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 800.0]])
    report = verify(([x], [y]), [x_val], float32=True, mode=REFERENCE_MODE)
    assert report.passed, str(report)


def test_integers_mixed_with_floats_compute_in_float32() -> None:
    # PyTensor upcasts float32 with int64 to float64 and divides integers in float64: the
    # integers are cast to float32 instead, so no float64 computation is left.
    n = pt.lscalar("n")
    x = pt.vector("x", dtype="float64", shape=(3,))
    y = x * (n / 4) + n
    model = export_onnx([x, n], [y], float32=True)
    assert DOUBLE not in _all_elem_types(model)
    report = verify(([x, n], [y]), [np.array([1.0, 2.0, 3.0]), 3], model=model, mode=REFERENCE_MODE)
    assert report.passed, str(report)


@pytest.mark.parametrize("compare", [pt.eq, pt.lt, pt.ge], ids=["eq", "lt", "ge"])
def test_comparisons_of_floats_with_integers_compute_in_float32(compare: object) -> None:
    # The result is bool, but PyTensor compares float32 with int64 in float64: the integers
    # are cast to float32 instead (found by the fuzzer's float32=True path).
    n = pt.lvector("n")
    x = pt.vector("x", dtype="float64")
    y = compare(x, n)  # type: ignore[operator]
    model = export_onnx([x, n], [y], float32=True)
    assert DOUBLE not in _all_elem_types(model)
    values = [np.array([1.0, 2.5, -3.0, np.nan]), np.array([1, 2, -4, 0])]
    report = verify(([x, n], [y]), values, model=model, mode=REFERENCE_MODE)
    assert report.passed, str(report)


def test_float64_that_rewrites_make_is_converted_too() -> None:
    # PyTensor rewrites an integer x ** -1 into a float64 reciprocal cast back to int64,
    # after the conversion: the rewritten graph is converted again (found by the fuzzer).
    n = pt.lvector("n")
    x = pt.vector("x", dtype="float64")
    model = export_onnx([n, x], [pt.pow(n, -1), x * 2], float32=True)
    assert DOUBLE not in _all_elem_types(model)
    values = [np.array([1, -1, 2, 7]), np.array([1.5, 2.0, -3.0, 0.0])]
    report = verify(([n, x], [pt.pow(n, -1), x * 2]), values, model=model, mode=REFERENCE_MODE)
    assert report.passed, str(report)


def test_continuous_draws_compute_in_float32() -> None:
    rng = pytensor.shared(np.random.default_rng(0), name="rng")
    mu = pt.vector("mu", dtype="float64")
    draws = pt.random.normal(mu, 2.0, rng=rng) * pt.random.gamma(2.0, 1.0, size=mu.shape, rng=rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = export_onnx([mu], [draws], float32=True)
    assert model.graph.output[0].type.tensor_type.elem_type == FLOAT
    assert not float64_tensors(model)
    mu_val = np.zeros(20_000, np.float32)
    (out,) = ort_session(model).run(None, {"mu": mu_val, "rng": np.array(7, np.int64)})
    # The product of independent N(0, 2) and Gamma(2) draws has variance 4 * E[G**2] = 24.
    assert out.dtype == np.float32 and abs(out.std() / np.sqrt(24.0) - 1) < 0.05


def test_discrete_draws_compute_in_float64_with_a_warning() -> None:
    rng = pytensor.shared(np.random.default_rng(0), name="rng")
    rate = pt.vector("rate", dtype="float64")
    draws = pt.random.poisson(rate, rng=rng) + pt.random.normal(rate, 1.0, rng=rng)
    with pytest.warns(UserWarning, match=r"1 random variable\(s\) compute their draws in float64"):
        model = export_onnx([rate], [draws], float32=True)
    assert model.graph.output[0].type.tensor_type.elem_type == FLOAT
    assert float64_tensors(model)  # the documented exception
    rate_val = np.full(20_000, 3.0, np.float32)
    (out,) = ort_session(model).run(None, {"rate": rate_val, "rng": np.array(7, np.int64)})
    assert out.dtype == np.float32 and abs(out.mean() / 6.0 - 1) < 0.02


def test_float32_export_with_function_and_shared_float64_weights() -> None:
    w = pytensor.shared(np.linspace(0, 1, 6).reshape(2, 3), name="w")
    x = pt.vector("x", shape=(2,))
    fn = pytensor.function([x], pt.exp(x @ w), mode=REFERENCE_MODE)
    model = export_onnx(fn, float32=True, verify=[np.array([0.5, -1.0])])
    (init,) = [t for t in model.graph.initializer if t.name == "w"]
    assert init.data_type == FLOAT
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(init), np.linspace(0, 1, 6).reshape(2, 3).astype(np.float32)
    )
    # the shared variable itself is unchanged
    assert w.get_value().dtype == np.float64


def test_float32_conversion_without_float64_is_identity() -> None:
    x = pt.vector("x", dtype="float32", shape=(3,))
    k = pt.vector("k", dtype="int32", shape=(3,))
    outputs = [pt.sin(x) * 2, k * 3]
    plain = export_onnx([x, k], outputs)
    converted = export_onnx([x, k], outputs, float32=True)
    assert plain.SerializeToString() == converted.SerializeToString()


class _Float64Only(Op):
    """An Op that only accepts float64 vectors (like Ops with fixed inner types)."""

    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        if x.type.dtype != "float64":
            raise TypeError("float64 only")
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0] * 2


def test_nodes_that_cannot_be_float32_compute_in_float64_with_a_warning() -> None:
    x = pt.vector("x", dtype="float64", shape=(3,))
    y = _Float64Only()(pt.exp(x)) + 1
    # The warning names each node left in float64, its output types and where it was made.
    with pytest.warns(
        UserWarning,
        match=r"1 node\(s\) could not be re-made in float32 and still compute in float64 "
        r"between casts:\n- _Float64Only\(Exp\.0\) -> Vector\(float64, shape=\(3,\)\) "
        r"\(created at .*test_precision\.py",
    ):
        captured = capture([x], [y], float32=True)
    (node,) = [n for n in captured.fgraph.toposort() if isinstance(n.op, _Float64Only)]
    assert node.inputs[0].type.dtype == "float64"
    assert captured.fgraph.inputs[0].type.dtype == "float32"
    assert captured.fgraph.outputs[0].type.dtype == "float32"


def test_a_node_left_in_float64_is_reported_once() -> None:
    # n ** -1 makes the rewrites' float64 that a second conversion removes; the node the
    # first conversion left in float64 is not reported again by the second.
    x = pt.vector("x", dtype="float64", shape=(3,))
    n = pt.lvector("n")
    y = _Float64Only()(pt.exp(x)) + pt.pow(n, -1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        capture([x, n], [y], float32=True)
    messages = [str(w.message) for w in caught if "float32 conversion" in str(w.message)]
    assert len(messages) == 1 and "_Float64Only(Exp.0)" in messages[0]


def test_pymc_logp_and_gradient_in_float32() -> None:
    pm = pytest.importorskip("pymc")
    rng = np.random.default_rng(0)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 1)
        sigma = pm.HalfNormal("sigma", 1)
        b = pm.Normal("b", 0, 1, shape=3)
        pm.StudentT(
            "y",
            nu=4,
            mu=mu + pt.dot(rng.normal(size=(20, 3)), b),
            sigma=sigma,
            observed=rng.normal(size=20),
        )
    logp = model.logp()
    inputs = model.value_vars
    outputs = [logp, *pytensor.grad(logp, inputs)]
    values = [np.array(0.3), np.array(-0.2), np.array([0.1, 0.2, -0.3])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing may stay float64
        report = verify(
            (inputs, outputs), values, float32=True, intermediates=True, mode=REFERENCE_MODE
        )
    assert report.passed, str(report)
    assert report.first_divergence is None and report.intermediates_checked > 20
    assert all(c.dtype == "float32" and c.reference_dtype == "float64" for c in report.checks)
    assert max(c.max_rel_error for c in report.checks) < 1e-5


def test_scan_inner_graph_is_converted() -> None:
    x = pt.vector("x", shape=(4,))
    ys = pytensor.scan(
        lambda a, acc: acc * 0.5 + a,
        sequences=[x],
        outputs_info=[pt.zeros((), dtype="float64")],
        return_updates=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        captured = capture([x], [ys], float32=True)
    (scan,) = [n for n in captured.fgraph.toposort() if isinstance(n.op, Scan)]
    assert {v.type.dtype for v in [*scan.op.inner_inputs, *scan.op.inner_outputs]} == {"float32"}
    model = export_onnx([x], [ys], float32=True)
    assert DOUBLE not in _all_elem_types(model)
    report = verify(
        ([x], [ys]), [np.array([1.0, -2.0, 0.5, 3.0])], model=model, mode=REFERENCE_MODE
    )
    assert report.passed, str(report)
