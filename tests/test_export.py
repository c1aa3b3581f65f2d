"""The public export API: graph capture, names, initializers, options, errors, files."""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from pytensor_onnx import (
    DEFAULT_OPSET,
    NAMES_METADATA_KEY,
    InvalidModelError,
    UnsupportedOpError,
    export_onnx,
    feeds_by_name,
    newest_ir_version,
    onnx_funcify,
    supported_opsets,
)
from tests.compare import OPSETS, ort_session, run_onnx


def _mlp() -> tuple[pt.TensorVariable, pt.TensorVariable, list]:
    rng = np.random.default_rng(0)
    x = pt.matrix("x")
    w1 = pytensor.shared(rng.normal(size=(4, 8)), name="W1")
    b1 = pytensor.shared(np.zeros(8), name="b1")
    w2 = pytensor.shared(rng.normal(size=(8, 3)), name="W2")
    b2 = pytensor.shared(np.zeros(3), name="b2")
    h = pt.maximum(x @ w1 + b1, 0)
    y = pt.special.softmax(h @ w2 + b2, axis=-1)
    return x, y, [w1, b1, w2, b2]


@pytest.mark.parametrize("linker", ["py", "cvm", "numba_or_c"])
def test_compiled_function_any_mode_runs_at_any_batch(linker: str, tmp_path: Path) -> None:
    x, y, _ = _mlp()
    # None is the user's default: C in PyTensor 2.x, Numba in 3.x
    mode = None if linker == "numba_or_c" else Mode(linker=linker, optimizer="fast_run")
    fn = pytensor.function([x], y, mode=mode)
    path = tmp_path / "mlp.onnx"
    model = export_onnx(fn, path)
    assert isinstance(model, onnx.ModelProto)
    assert path.read_bytes() == model.SerializeToString()
    session = ort_session(onnx.load(path))
    rng = np.random.default_rng(1)
    for batch in (1, 7, 1000):
        value = rng.normal(size=(batch, 4))
        (got,) = session.run(None, {"x": value})
        np.testing.assert_allclose(got, fn(value), rtol=1e-12, atol=1e-15)


def test_symbolic_export_matches_function_export() -> None:
    x, y, _ = _mlp()
    fn = pytensor.function([x], y)
    symbolic = export_onnx([x], [y])
    assert export_onnx([x], y).SerializeToString() == symbolic.SerializeToString()
    # A compiled function's FunctionMaker holds its outputs after the mode's rewrites (C BLAS
    # ops, fused Composites...), so the two exports may differ in structure, not in values.
    from_function = export_onnx(fn)
    value = np.random.default_rng(2).normal(size=(5, 4))
    expected = fn(value)
    for model in (symbolic, from_function):
        np.testing.assert_allclose(
            ort_session(model).run(None, {"x": value})[0], expected, rtol=1e-12
        )


def test_names_inputs_outputs_and_initializers() -> None:
    x, y, shared = _mlp()
    y.name = "probs"
    unused = pt.vector("unused")
    other = pt.vector("x")  # duplicate name
    model = export_onnx([x, unused, other], [y, (other * 2)])
    assert [i.name for i in model.graph.input] == ["x", "unused", "x_1"]
    assert [o.name for o in model.graph.output] == ["probs", "output_1"]
    assert sorted(i.name for i in model.graph.initializer) == sorted(s.name for s in shared)
    w1 = next(i for i in model.graph.initializer if i.name == "W1")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(w1), shared[0].get_value())
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "x_dim0"


def test_output_dims_named_after_equal_input_dims() -> None:
    x = pt.matrix("x")
    w = pytensor.shared(np.ones((4, 3)), name="w")
    model = export_onnx([x], [pt.tanh(x @ w) * 2, x.T])
    dims = [
        [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        for o in model.graph.output
    ]
    assert dims[0][0] == "x_dim0"
    assert dims[1] == [4, "x_dim0"]  # x's columns must match w's 4 rows (tests/test_dims.py)


def test_invalid_names_are_sanitized_and_unnamed_get_defaults() -> None:
    a = pt.vector("my input-1")
    b = pt.vector()
    model = export_onnx([a, b], [a + b, a])
    assert [i.name for i in model.graph.input] == ["my_input_1", "input_1"]
    # outputs are named after their variables, made unique against the inputs
    assert [o.name for o in model.graph.output] == ["output_0", "my_input_1_1"]


def test_shared_inputs_option() -> None:
    x, y, (w1, _, _, _) = _mlp()
    model = export_onnx([x], [y], shared_inputs=[w1, "b2"])
    assert [i.name for i in model.graph.input] == ["x", "W1", "b2"]
    assert sorted(i.name for i in model.graph.initializer) == ["W2", "b1"]
    value = np.ones((2, 4))
    feeds = {"x": value, "W1": np.zeros((4, 8)), "b2": np.array([0.0, 0.0, 50.0])}
    runtime, reference = run_onnx(model, feeds)
    expected = np.tile([0.0, 0.0, 1.0], (2, 1))
    np.testing.assert_allclose(runtime[0], expected, atol=1e-15)
    np.testing.assert_allclose(reference[0], expected, atol=1e-15)
    with pytest.raises(ValueError, match="no shared variable of that name"):
        export_onnx([x], [y], shared_inputs=["nope"])


def test_zero_dimensional_shared_value_stays_zero_dimensional() -> None:
    # np.ascontiguousarray turns 0-d arrays into 1-d ones: a scalar initializer must not.
    x = pt.dscalar("x")
    scale = pytensor.shared(np.float64(2.0), name="scale")
    model = export_onnx([x], [x * scale])
    (initializer,) = model.graph.initializer
    assert list(initializer.dims) == []
    for (result,) in run_onnx(model, {"x": np.array(3.0)}):
        assert np.shape(result) == ()
        assert float(result) == 6.0


def test_function_updates_warn_or_export() -> None:
    x = pt.vector("x")
    state = pytensor.shared(np.zeros(3), name="state")
    fn = pytensor.function([x], x.sum(), updates={state: state + x})
    with pytest.warns(UserWarning, match="updates are not exported"):
        model = export_onnx(fn)
    assert [i.name for i in model.graph.input] == ["x"]
    model = export_onnx(fn, include_updates=True)
    assert [i.name for i in model.graph.input] == ["x", "state"]
    assert [o.name for o in model.graph.output] == ["output_0", "state_updated"]
    runtime, reference = run_onnx(model, {"x": np.arange(3.0), "state": np.ones(3)})
    for outputs in (runtime, reference):
        np.testing.assert_allclose(outputs[1], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
)
def test_dtypes_preserved(dtype: str) -> None:
    x = pt.vector("x", dtype=dtype)
    model = export_onnx([x], [x, pt.cast(x, "float64"), x.sum()])
    elem = onnx.helper.tensor_dtype_to_np_dtype
    assert elem(model.graph.input[0].type.tensor_type.elem_type) == np.dtype(dtype)
    assert elem(model.graph.output[0].type.tensor_type.elem_type) == np.dtype(dtype)


def test_implicit_upcasts_become_explicit_casts() -> None:
    # int8 input, float32 constant, float64 input: PyTensor upcasts implicitly, ONNX may not
    # mix dtypes (the strict type check in export_onnx would reject the model).
    x = pt.vector("x", dtype="float64")
    k = pt.vector("k", dtype="int8")
    model = export_onnx([x, k], [x * k + np.float32(0.5)])
    assert "Cast" in {n.op_type for n in model.graph.node}
    feeds = {"x": np.array([1.0, 2.0]), "k": np.array([3, -4], dtype="int8")}
    for outputs in run_onnx(model, feeds):
        assert outputs[0].dtype == np.float64
        np.testing.assert_allclose(outputs[0], [3.5, -7.5])


def test_output_that_is_an_input_or_constant_or_repeated() -> None:
    x = pt.vector("x")
    y = x * 2
    model = export_onnx([x], [x, y, y, pt.constant(np.array([1.0, 2.0]))])
    runtime, reference = run_onnx(model, {"x": np.array([3.0])})
    for outputs in (runtime, reference):
        np.testing.assert_allclose(outputs[0], [3.0])
        np.testing.assert_allclose(outputs[1], [6.0])
        np.testing.assert_allclose(outputs[2], [6.0])
        np.testing.assert_allclose(outputs[3], [1.0, 2.0])


@pytest.mark.parametrize("opset", OPSETS)
def test_opsets_and_ir_version(opset: int) -> None:
    x, y, _ = _mlp()
    model = export_onnx([x], [y], opset=opset)
    assert {o.domain: o.version for o in model.opset_import}[""] == opset
    # The oldest IR version holding the opset, whatever the installed runtime reads.
    expected_ir = onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    assert model.ir_version == max(8, expected_ir) <= newest_ir_version()
    assert model.producer_name == "pytensor-onnx"
    ort_session(model)


def test_ir_version_default_is_the_oldest_holding_the_model() -> None:
    x, y, _ = _mlp()
    assert export_onnx([x], [y]).ir_version == 8  # opset 18 (ONNX 1.13)
    assert export_onnx([x], [y], opset=21).ir_version == 10  # opset 21 (ONNX 1.16)
    # Provenance puts metadata on nodes, which IR version 10 introduced.
    assert export_onnx([x], [y], provenance=True).ir_version == 10
    assert export_onnx([x], [y], ir_version=onnx.IR_VERSION).ir_version == onnx.IR_VERSION
    with pytest.raises(ValueError, match="needs IR version 10 or newer"):
        export_onnx([x], [y], opset=21, ir_version=9)


@pytest.mark.parametrize("opset", [17, 0, max(supported_opsets()) + 1, "18", True])
def test_unsupported_opset_is_a_clear_error(opset) -> None:
    x = pt.vector("x")
    with pytest.raises(ValueError, match=r"opset .* is not supported"):
        export_onnx([x], [x + 1], opset=opset)


def test_default_opset_is_18() -> None:
    x = pt.vector("x")
    assert DEFAULT_OPSET == 18
    model = export_onnx([x], [x + 1])
    assert {o.domain: o.version for o in model.opset_import}[""] == 18


def test_options_recorded() -> None:
    x = pt.vector("x")
    model = export_onnx(
        [x], [x + 1], graph_name="g", producer_name="me", producer_version="9", doc_string="hello"
    )
    assert (model.graph.name, model.producer_name, model.producer_version, model.doc_string) == (
        "g",
        "me",
        "9",
        "hello",
    )
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["pytensor_version"] == pytensor.__version__


def test_determinism_same_bytes(tmp_path: Path) -> None:
    first = _mlp()
    second = _mlp()
    a = export_onnx([first[0]], [first[1]], tmp_path / "a.onnx")
    b = export_onnx([second[0]], [second[1]], tmp_path / "b.onnx")
    assert a.SerializeToString() == b.SerializeToString()
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert str(tmp_path).encode() not in (tmp_path / "a.onnx").read_bytes()


class _Mystery(Op):
    __props__ = ()

    def make_node(self, x):
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.abs(inputs[0]) + 1


class _Other(_Mystery):
    pass


def test_every_unsupported_op_is_listed_once(tmp_path: Path) -> None:
    x = pt.vector("x")
    y = _Mystery()(x) + _Other()(x * 2) + _Mystery()(x + 1)
    path = tmp_path / "bad.onnx"
    with pytest.raises(UnsupportedOpError) as info:
        export_onnx([x], [y], path)
    error = info.value
    assert isinstance(error, NotImplementedError)
    assert len(error.entries) == 3
    message = str(error)
    assert "_Mystery" in message and "_Other" in message
    assert "onnx_funcify.register" in message
    assert "test_export.py" in message  # where the nodes were created
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_custom_converter_registration() -> None:
    class Plus1(_Mystery):
        def perform(self, node, inputs, outputs):
            outputs[0][0] = inputs[0] + 1

    @onnx_funcify.register(Plus1)
    def _(op, node, builder):
        x = builder.input(node, 0)
        return [builder.op("Add", [x, builder.scalar(1, "float64")])]

    x = pt.vector("x")
    model = export_onnx([x], [Plus1()(x) * 2])
    runtime, reference = run_onnx(model, {"x": np.array([1.0, 2.0])})
    np.testing.assert_allclose(runtime[0], [4.0, 6.0])
    np.testing.assert_allclose(reference[0], [4.0, 6.0])


def test_bad_arguments() -> None:
    x = pt.vector("x")
    with pytest.raises(TypeError, match=r"compiled pytensor\.function"):
        export_onnx(lambda v: v, "f.onnx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs outputs"):
        export_onnx([x])
    with pytest.raises(TypeError, match="free variables"):
        export_onnx([pt.constant(1.0)], [x])
    with pytest.raises(ValueError, match="not among the inputs"):
        export_onnx([x], [x + pt.vector("z")])
    with pytest.raises(TypeError, match="path must be"):
        export_onnx([x], [x], 3)  # type: ignore[arg-type]


def test_unrepresentable_inputs() -> None:
    import pytensor.sparse as ps

    s = ps.csr_matrix("s")
    with pytest.raises(TypeError, match="densify"):
        export_onnx([s], [ps.dense_from_sparse(s)])
    # Random generators are representable (an int64 seed): see tests/dispatch/test_random.py.


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    x = pt.vector("x")
    with pytest.raises(PermissionError):
        export_onnx([x], [x], locked / "m.onnx")


def test_missing_directory_and_directory_path(tmp_path: Path) -> None:
    x = pt.vector("x")
    with pytest.raises(FileNotFoundError):
        export_onnx([x], [x], tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError):
        export_onnx([x], [x], tmp_path)


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytensor_onnx import export as export_module

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(export_module.os, "replace", explode)
    x = pt.vector("x")
    with pytest.raises(OSError, match="disk full"):
        export_onnx([x], [x + 1], tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    x = pt.vector("x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_onnx([x], [x + 1], path)
    assert onnx.load(path).graph.input[0].name == "x"


def test_written_file_has_default_permissions(tmp_path: Path) -> None:
    x = pt.vector("x")
    path = tmp_path / "m.onnx"
    export_onnx([x], [x + 1], path)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize(
    ("name", "onnx_name"),
    [
        ("σ_log__", "sigma_log__"),
        ("Σ", "Sigma"),
        ("μ_α", "mu_alpha"),
        ("café", "cafe"),
        ("chol_cholesky-cov-packed__", "chol_cholesky_cov_packed__"),
        ("日本", "__"),
        ("3x", "_3x"),
    ],
)
def test_names_are_transliterated_and_recorded(name: str, onnx_name: str) -> None:
    x = pt.vector(name)
    y = (x * 2).copy(name=f"{name}_out")
    model = export_onnx([x], [y])
    assert [i.name for i in model.graph.input] == [onnx_name]
    names = json.loads({p.key: p.value for p in model.metadata_props}[NAMES_METADATA_KEY])
    assert names == {"inputs": {name: onnx_name}, "outputs": {f"{name}_out": f"{onnx_name}_out"}}
    assert feeds_by_name(model, {name: 1}) == {onnx_name: 1}
    assert feeds_by_name(model, {onnx_name: 1}) == {onnx_name: 1}


def test_feeds_by_name_refuses_unknown_and_doubled_names() -> None:
    x = pt.vector("σ")
    model = export_onnx([x], [x + 1])
    with pytest.raises(KeyError, match="no input named 'tau'"):
        feeds_by_name(model, {"tau": 1})
    with pytest.raises(ValueError, match="two values given for model input 'sigma'"):
        feeds_by_name(model, {"σ": 1, "sigma": 2})


def test_a_graph_without_outputs_is_refused() -> None:
    with pytest.raises(ValueError, match="no outputs"):
        export_onnx([pt.vector("x")], [])


class _Broken(_Mystery):
    """An Op whose (deliberately wrong) converter below emits an invalid model."""


def _register_broken(op_type: str) -> type[_Broken]:
    class Broken(_Broken):
        pass

    @onnx_funcify.register(Broken)
    def _(op, node, builder):
        return [builder.op(op_type, [builder.input(node, 0)])]

    return Broken


def test_models_failing_onnx_checks_raise_a_converter_bug(capfd, tmp_path: Path) -> None:
    # Not of bool: the type is refused by shape inference.
    x = pt.vector("x")
    path = tmp_path / "bad.onnx"
    with pytest.raises(InvalidModelError, match="converter bug: the exported model fails ONNX"):
        export_onnx([x], [_register_broken("Not")()(x)], path)
    assert not path.exists()
    assert "Traceback" not in capfd.readouterr().err  # onnx-ir's logged traceback is silenced


def test_models_onnx_runtime_cannot_load_raise_a_converter_bug(tmp_path: Path) -> None:
    # ONNX Runtime has no float64 Acos kernel: the checker accepts the model, the load fails.
    x = pt.vector("x")
    path = tmp_path / "bad.onnx"
    with pytest.raises(InvalidModelError, match="does not load in ONNX Runtime"):
        export_onnx([x], [_register_broken("Acos")()(x)], path)
    assert not path.exists()
    model = export_onnx([x], [_register_broken("Acos")()(x)], check=False)
    assert [n.op_type for n in model.graph.node] == ["Acos"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"ir_version": "10"}, TypeError, "ir_version must be an int"),
        ({"metadata": {"a": 1}}, TypeError, "metadata entries must be str"),
        ({"metadata": {1: "a"}}, TypeError, "metadata entries must be str"),
        ({"metadata": ["a"]}, TypeError, "metadata must be a mapping"),
        ({"graph_name": ""}, ValueError, "graph_name must be a non-empty string"),
        ({"producer_name": None}, ValueError, "producer_name must be a non-empty string"),
        ({"op_from_graph": "flat"}, ValueError, "op_from_graph must be one of"),
        ({"portable": "yes"}, TypeError, "portable must be a bool"),
    ],
)
def test_bad_options_are_refused_before_any_work(options, error, message, tmp_path: Path) -> None:
    x = pt.vector("x")
    with pytest.raises(error, match=message):
        export_onnx([x], [x + 1], tmp_path / "m.onnx", **options)
    assert list(tmp_path.iterdir()) == []


def test_an_input_given_twice_is_refused() -> None:
    x = pt.vector("x")
    with pytest.raises(ValueError, match=r"inputs \['x'\] are given more than once"):
        export_onnx([x, x], [x + 1])


def test_unsupported_op_error_points_at_the_line_applying_the_op() -> None:
    x = pt.vector("x")
    y = _Mystery()(x)  # the line the error must name, not _Mystery.make_node
    with pytest.raises(UnsupportedOpError) as info:
        export_onnx([x], [y])
    assert "y = _Mystery()(x)  # the line the error must name" in str(info.value)
    assert " in make_node: " not in str(info.value)
