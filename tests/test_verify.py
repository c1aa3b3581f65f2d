"""verify(), export_onnx(verify=...), provenance metadata and summary()."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.scan.utils import until

from pytensor_onnx import (
    VerificationError,
    export_onnx,
    model_summary,
    onnx_funcify,
    runtimes,
    summary,
    verify,
)
from pytensor_onnx.inspect import PROVENANCE_OP, PROVENANCE_SOURCE, PROVENANCE_VARIABLE
from pytensor_onnx.verify import compare_arrays
from tests.compare import REFERENCE_MODE


class _Scale(Op):
    """Multiplies by ``factor``; its ONNX converter multiplies by ``onnx_factor``.

    A converter that disagrees with ``perform`` stands for a converter bug.
    """

    __props__ = ("factor", "onnx_factor")

    def __init__(self, factor: float, onnx_factor: float) -> None:
        self.factor = factor
        self.onnx_factor = onnx_factor

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = (inputs[0] * self.factor).astype(inputs[0].dtype)


@onnx_funcify.register(_Scale)
def _convert_scale(op, node, builder):
    x = builder.input(node, 0)
    return [builder.op("Mul", [x, builder.scalar(op.onnx_factor, str(node.inputs[0].dtype))])]


def graph_with_converter_bug(bug: float = 0.0):
    """A small graph whose ``_Scale`` node converts with a relative error of ``bug``."""
    x = pt.matrix("x", shape=(2, 3))
    w = pytensor.shared(np.arange(6.0).reshape(3, 2) / 6, name="w")
    hidden = pt.exp(x @ w)
    hidden.name = "hidden"
    scaled = _Scale(2.0, 2.0 + bug)(hidden)
    scaled.name = "scaled"
    out = pt.log1p(scaled).sum(axis=1)
    out.name = "out"
    return [x], [out, hidden]


X = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, -3.0]])


def test_verify_passes_and_reports_each_output_and_runtime() -> None:
    inputs, outputs = graph_with_converter_bug()
    report = verify((inputs, outputs), [X], mode=REFERENCE_MODE)
    assert report.passed
    assert [(c.name, c.runtime) for c in report.checks] == [
        ("out", "onnxruntime"),
        ("hidden", "onnxruntime"),
        ("out", "onnx.reference"),
        ("hidden", "onnx.reference"),
    ]
    for check in report.checks:
        assert check.max_abs_error < 1e-12
        assert (check.rtol, check.atol) == (1e-7, 1e-10)
        assert check.dtype == check.reference_dtype == "float64"
    assert {"export", "pytensor run", "onnxruntime load", "onnxruntime run"} <= set(report.timings)
    assert all(t >= 0 for t in report.timings.values())
    text = str(report)
    assert text.splitlines()[0] == "Verification against pytensor: PASSED"
    assert "max abs err" in text and "hidden" in text
    md = report.to_markdown()
    assert md.startswith("**Verification against pytensor: passed**")
    assert "| out | onnxruntime | float64 | 2 |" in md


def test_verify_detects_wrong_converter_and_finds_first_diverging_node() -> None:
    inputs, outputs = graph_with_converter_bug(bug=1e-6)
    report = verify((inputs, outputs), [X], intermediates=True, mode=REFERENCE_MODE)
    assert not report.passed
    by_output = {(c.name, c.runtime): c for c in report.checks}
    assert not by_output["out", "onnxruntime"].passed
    assert by_output["hidden", "onnxruntime"].passed  # computed before the bug
    assert 1e-8 < by_output["out", "onnxruntime"].max_rel_error < 1e-6
    divergence = report.first_divergence
    assert divergence is not None
    assert "_Scale" in divergence.op
    assert divergence.variable == "scaled"
    assert report.intermediates_checked >= 3
    assert "First diverging node" in str(report) and "scaled" in str(report)
    assert "FAIL" in report.to_markdown()


def test_intermediates_match_for_a_correctgraph_with_converter_bug() -> None:
    inputs, outputs = graph_with_converter_bug()
    report = verify((inputs, outputs), [X], intermediates=True, mode=REFERENCE_MODE)
    assert report.passed and report.first_divergence is None
    assert report.intermediates_checked >= 3


def test_verify_with_a_timeout_gives_the_same_report() -> None:
    """With a timeout, onnx.reference and the other runtimes run in a child process (the
    timeout kills it) and the intermediates' ONNX Runtime run is limited too."""
    inputs, outputs = graph_with_converter_bug(bug=1e-6)
    names = [name for name in ("openvino", "tract") if runtimes.is_available(name)]
    kwargs = {"intermediates": True, "mode": REFERENCE_MODE, "runtimes": names}
    unlimited = verify((inputs, outputs), [X], **kwargs)
    limited = verify((inputs, outputs), [X], timeout=60, **kwargs)
    assert limited.checks == unlimited.checks
    assert limited.failures == unlimited.failures
    assert limited.first_divergence == unlimited.first_divergence is not None
    assert "onnx.reference load+run" in limited.timings
    assert "onnx.reference run" not in limited.timings


def test_tolerances_can_be_loosened_per_output() -> None:
    inputs, outputs = graph_with_converter_bug(bug=1e-6)
    report = verify((inputs, outputs), [X], rtol={"out": 1e-5}, mode=REFERENCE_MODE)
    assert report.passed
    assert {c.rtol for c in report.checks if c.name == "out"} == {1e-5}


def test_export_with_verify_raises_and_writes_nothing(tmp_path: Path) -> None:
    inputs, outputs = graph_with_converter_bug(bug=1e-3)
    target = tmp_path / "model.onnx"
    with pytest.raises(VerificationError) as info:
        export_onnx(inputs, outputs, target, verify=[X])
    assert not info.value.report.passed
    assert "does not match PyTensor" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_export_with_verify_true_uses_random_inputs(tmp_path: Path) -> None:
    inputs, outputs = graph_with_converter_bug()
    target = tmp_path / "model.onnx"
    export_onnx(inputs, outputs, target, verify=True)
    assert target.exists()
    inputs, outputs = graph_with_converter_bug(bug=1e-3)
    with pytest.raises(VerificationError):
        export_onnx(inputs, outputs, tmp_path / "bad.onnx", verify=True)
    assert not (tmp_path / "bad.onnx").exists()


def test_verify_random_inputs_with_incompatible_unknown_dims_asks_for_values() -> None:
    x = pt.matrix("x")
    w = pytensor.shared(np.ones((4, 2)), name="w")
    # x's columns are exported as w's 4 rows (tests/test_dims.py), so random inputs fit ...
    assert verify(([x], [x @ w]), mode=REFERENCE_MODE).passed
    # ... but not when x's 3 x 3 random values must reshape to rows of 4.
    with pytest.raises(ValueError, match="pass input values"):
        verify(([x], [x.reshape((-1, 4)) @ w]), mode=REFERENCE_MODE)


def test_verify_a_compiled_function_with_shared_inputs() -> None:
    x = pt.vector("x", shape=(3,))
    data = pytensor.shared(np.array([1.0, 2.0, 3.0]), name="data")
    fn = pytensor.function([x], (x * data).sum(), mode=REFERENCE_MODE)
    report = verify(fn, [np.array([1.0, 1.0, 2.0])], shared_inputs=["data"])
    assert report.passed, str(report)
    # the shared variable is a model input, fed its current value
    report = verify(fn, {"x": np.ones(3), "data": np.zeros(3)}, shared_inputs=["data"])
    assert not report.passed  # PyTensor uses data's value, the model got zeros


def test_verify_model_alone_compares_runtimes(tmp_path: Path) -> None:
    inputs, outputs = graph_with_converter_bug()
    path = tmp_path / "m.onnx"
    export_onnx(inputs, outputs, path)
    report = verify(path, {"x": X})
    assert report.reference == "onnx.reference"
    assert report.passed
    assert [c.runtime for c in report.checks] == ["onnxruntime", "onnxruntime"]
    with pytest.raises(ValueError, match="intermediates"):
        verify(path, {"x": X}, intermediates=True)


def _loop_model() -> tuple[list, list]:
    x0 = pt.scalar("x0")
    # A while loop (until) is an ONNX Loop, which tract lacks; a fixed count would be a Scan.
    xs = pytensor.scan(
        lambda prev: (prev * 0.5 + 1.0, until(prev > 100.0)),
        outputs_info=[x0],
        n_steps=4,
        return_updates=False,
    )
    return [x0], [xs]


@pytest.mark.parametrize("source", ["graph", "model"])
def test_verify_in_other_runtimes(source: str, tmp_path: Path) -> None:
    """``runtimes=``: a row per output and runtime; a runtime that cannot run the model
    (tract has no Loop) fails the report with its message."""
    for name in ("openvino", "tract"):
        if not runtimes.is_available(name):
            pytest.skip(f"{name} is not installed")
    inputs, outputs = graph_with_converter_bug()
    path = tmp_path / "m.onnx"
    export_onnx(inputs, outputs, path)
    what = path if source == "model" else (inputs, outputs)
    report = verify(what, [X], runtimes=["openvino", "tract", "ort"], mode=REFERENCE_MODE)
    assert report.passed, str(report)
    assert {c.runtime for c in report.checks} >= {"onnxruntime", "openvino", "tract"}
    openvino = [c for c in report.checks if c.runtime == "openvino"]
    assert all((c.rtol, c.atol) == (1e-4, 1e-6) for c in openvino)  # computes in float32

    inputs, outputs = _loop_model()
    report = verify((inputs, outputs), [np.array(1.0)], runtimes=["tract"])
    assert not report.passed
    assert "Loop" in report.failures["tract"]
    assert "Stack backtrace" not in report.failures["tract"]
    assert "tract did not run the model: " in str(report)
    assert "tract did not run the model" in report.to_markdown()


def test_verify_names_unknown_and_missing_runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, outputs = graph_with_converter_bug()
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        verify((inputs, outputs), [X], runtimes=["nope"])
    monkeypatch.setattr(runtimes, "is_available", lambda name: name != "tract")
    with pytest.raises(runtimes.RuntimeUnavailable, match=r"pytensor-onnx\[runtimes\]"):
        verify((inputs, outputs), [X], runtimes=["all"])


@pytest.mark.parametrize(
    ("actual", "expected", "passed"),
    [
        ([1.0, np.nan, np.inf], [1.0, np.nan, np.inf], True),
        ([1.0, 2.0], [1.0, np.nan], False),
        ([np.inf], [-np.inf], False),
        ([1.0 + 1e-9], [1.0], True),
        ([1.0 + 1e-6], [1.0], False),
        ([0.0], [1e-11], True),  # within atol
        ([True, False], [True, True], False),
    ],
)
def test_compare_arrays(actual, expected, passed) -> None:
    max_abs, _, ok, problem = compare_arrays(
        np.array(actual), np.array(expected), rtol=1e-7, atol=1e-10
    )
    assert ok is passed
    assert problem == ""
    if passed:
        assert max_abs <= 1e-6


def test_compare_arrays_shape_mismatch() -> None:
    _, _, ok, problem = compare_arrays(np.zeros(3), np.zeros((1, 3)), 1e-7, 0)
    assert not ok and "shape" in problem


# ---------------------------------------------------------------------------- provenance
def test_provenance_records_op_and_variable_without_paths() -> None:
    inputs, outputs = graph_with_converter_bug()
    plain = export_onnx(inputs, outputs)
    assert all(len(node.metadata_props) == 0 for node in plain.graph.node)
    model = export_onnx(inputs, outputs, provenance=True)
    props = [{p.key: p.value for p in node.metadata_props} for node in model.graph.node]
    assert all(PROVENANCE_OP in p and PROVENANCE_VARIABLE in p for p in props)
    ops_by_var = {p[PROVENANCE_VARIABLE]: p[PROVENANCE_OP] for p in props}
    assert "_Scale" in ops_by_var["scaled"]
    assert "hidden" in ops_by_var
    for p in props:
        for value in p.values():
            assert "/" not in value and "\\" not in value
    sources = {p.get(PROVENANCE_SOURCE) for p in props}
    assert any(s is not None and s.startswith("test_verify.py:") for s in sources)
    # deterministic
    again = export_onnx(*graph_with_converter_bug(), provenance=True)
    assert again.SerializeToString() == model.SerializeToString()


def test_metadata_records_versions() -> None:
    model = export_onnx(*graph_with_converter_bug())
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pytensor_version"] == pytensor.__version__
    assert "pytensor_onnx_version" in meta
    assert model.producer_name == "pytensor-onnx"


def test_ir_version_can_be_lowered_for_older_runtimes() -> None:
    model = export_onnx(*graph_with_converter_bug(), ir_version=9)
    assert model.ir_version == 9
    assert verify(model, {"x": X}).passed
    with pytest.raises(ValueError, match="ir_version 7 is not supported"):
        export_onnx(*graph_with_converter_bug(), ir_version=7)


# ------------------------------------------------------------------------------- summary
def test_summary_lists_inputs_outputs_ops_and_bytes(tmp_path: Path) -> None:
    x = pt.matrix("x", shape=(None, 3))
    k = pt.vector("k", dtype="int64")
    w = pytensor.shared(np.ones((3, 200)), name="w")
    b = pytensor.shared(np.zeros(200, dtype=np.float32), name="b")
    y = pt.tanh(x @ w) + b
    y.name = "y"
    model = export_onnx([x, k], [y, k * 2])
    info = model_summary(model)
    assert [(i.name, i.dtype, i.dims) for i in info.inputs] == [
        ("x", "float64", "[x_dim0, 3]"),
        ("k", "int64", "[k_dim0]"),
    ]
    assert info.outputs[0].name == "y" and info.outputs[0].dtype == "float64"
    assert info.op_histogram["MatMul"] == 1 and info.op_histogram["Tanh"] == 1
    assert info.node_count == sum(1 for _ in model.graph.node)
    assert info.initializer_bytes == 3 * 200 * 8 + 200 * 4
    assert info.external_bytes == 0
    buffer = io.StringIO()
    summary(model, file=buffer)
    text = buffer.getvalue()
    assert "Inputs (2):" in text and "x_dim0" in text
    assert "MatMul" in text and "Initializers: 2, 5.5 KiB" in text
    assert "pytensor_version=" in text

    path = tmp_path / "m.onnx"
    export_onnx([x, k], [y, k * 2], path, external_data=True, external_data_threshold=1000)
    on_disk = model_summary(path)
    assert on_disk.external_bytes == 3 * 200 * 8  # b (800 bytes) stays inline
    assert on_disk.initializer_bytes == info.initializer_bytes
    assert "4.7 KiB in external data" in str(on_disk)


def test_summary_of_ir_model_and_proto_agree() -> None:
    import onnx_ir as ir

    model = export_onnx(*graph_with_converter_bug())
    assert str(model_summary(model)) == str(model_summary(ir.serde.deserialize_model(model)))
    assert isinstance(model, onnx.ModelProto)


def test_summary_lists_local_functions() -> None:
    helper = onnx.helper
    body = [helper.make_node("Exp", ["a"], ["e"]), helper.make_node("Neg", ["e"], ["b"])]
    function = helper.make_function(
        "custom", "ExpNeg", ["a"], ["b"], body, [helper.make_opsetid("", 18)]
    )
    graph = helper.make_graph(
        [helper.make_node("ExpNeg", ["x"], ["y"], domain="custom")],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n"])],
    )
    model = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("custom", 1)],
    )
    info = model_summary(model)
    assert info.op_histogram == {"custom::ExpNeg": 1}
    assert info.functions == {"custom::ExpNeg": 2}
    assert info.inputs[0].dims == "[n]"
    assert "Local functions (1):" in str(info) and "2 nodes" in str(info)


def test_intermediates_skip_uninitialized_scan_buffers() -> None:
    # Scan's output buffers start as AllocEmpty (uninitialized memory, different in every
    # runtime); only values Scan has filled are compared.
    x = pt.vector("x", shape=(6,))
    decay = pt.scalar("decay")
    states = pytensor.scan(
        lambda a, acc, d: acc * d + a,
        sequences=[x],
        outputs_info=[pt.zeros(())],
        non_sequences=[decay],
        return_updates=False,
    )
    loss = (states**2).sum()
    outputs = [loss, *pytensor.grad(loss, [x, decay])]
    values = [np.linspace(-1, 1, 6), np.array(0.7)]
    report = verify(([x, decay], outputs), values, intermediates=True, mode=REFERENCE_MODE)
    assert report.passed, str(report)
    assert report.intermediates_checked > 5


def test_intermediates_print_no_onnx_runtime_log_lines(capfd: pytest.CaptureFixture[str]) -> None:
    x = pt.matrix("x")
    w = pytensor.shared(np.ones((3, 4)), name="w")
    b = pytensor.shared(np.zeros(4), name="b")
    y = pt.special.softmax(pt.maximum(x @ w + b, 0), axis=-1)
    assert verify(([x], [y]), [np.ones((2, 3))], intermediates=True).passed
    assert "onnxruntime" not in capfd.readouterr().err
