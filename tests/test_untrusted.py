"""Untrusted model files: external data that would be read from outside the model's
directory, or beyond the end of its file, is refused before anything is read; runs that do
not end are stopped by a timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx, runtimes
from pytensor_onnx.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from pytensor_onnx.storage import check_external_data_locations
from pytensor_onnx.verify import verify

H, TP = onnx.helper, onnx.TensorProto
#: A timeout must stop the run this soon after it expires.
QUICK_SECONDS = 5.0


def _split_model(tmp_path: Path) -> tuple[Path, onnx.ModelProto]:
    """A model with one initializer in an external data file next to it."""
    big = pytensor.shared(np.arange(1000, dtype=np.float64), name="big")
    x = pt.vector("x", shape=(4,))
    path = tmp_path / "m.onnx"
    export_onnx([x], [x + big[:4]], path, external_data=True)
    return path, onnx.load(path, load_external_data=False)


def _external(model: onnx.ModelProto) -> onnx.TensorProto:
    from onnx.external_data_helper import uses_external_data

    return next(t for t in model.graph.initializer if uses_external_data(t))


def _set(tensor: onnx.TensorProto, key: str, value: str) -> None:
    for entry in tensor.external_data:
        if entry.key == key:
            entry.value = value
            return
    tensor.external_data.add(key=key, value=value)


def _outside_link(path: Path, tensor: onnx.TensorProto) -> None:
    secret = path.parent.parent / "secret.bin"
    secret.write_bytes(b"\0" * 8000)
    (path.parent / "link.data").symlink_to(secret)
    _set(tensor, "location", "link.data")


def _too_long(path: Path, tensor: onnx.TensorProto) -> None:
    _set(tensor, "length", str(2**40))


def _offset_past_end(path: Path, tensor: onnx.TensorProto) -> None:
    _set(tensor, "offset", str(2**40))
    _set(tensor, "length", "8")


def _missing_file(path: Path, tensor: onnx.TensorProto) -> None:
    _set(tensor, "location", "absent.data")


TAMPERINGS: dict[str, tuple[Callable[[Path, onnx.TensorProto], None], str]] = {
    "symlink": (_outside_link, "a link leading outside the model's directory"),
    "length": (_too_long, "beyond the end of the file"),
    "offset": (_offset_past_end, "beyond the end of the file"),
    "missing": (_missing_file, "not a file in the model's directory"),
}


def _tampered(tmp_path: Path, how: str) -> Path:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    path, model = _split_model(model_dir)
    TAMPERINGS[how][0](path, _external(model))
    onnx.save(model, path)
    return path


def test_untampered_model_passes(tmp_path: Path) -> None:
    path, model = _split_model(tmp_path)
    check_external_data_locations(model, tmp_path)
    assert main(["inspect", str(path)]) == EXIT_OK


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
@pytest.mark.parametrize("command", ["inspect", "check", "run"])
def test_cli_refuses_tampered_external_data(
    tmp_path: Path, how: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _tampered(tmp_path, how)
    assert main([command, str(path)]) == EXIT_USAGE
    assert TAMPERINGS[how][1] in capsys.readouterr().err


@pytest.mark.parametrize("how", sorted(TAMPERINGS))
def test_verify_refuses_tampered_external_data(tmp_path: Path, how: str) -> None:
    path = _tampered(tmp_path, how)
    x = pt.vector("x", shape=(4,))
    with pytest.raises(ValueError, match=TAMPERINGS[how][1]):
        verify(([x], [x]), [np.zeros(4)], model=path)


def test_external_data_of_a_subgraph_tensor_is_checked() -> None:
    inner = onnx.helper.make_tensor("w", onnx.TensorProto.DOUBLE, [1], [0.0])
    inner.data_location = onnx.TensorProto.EXTERNAL
    inner.ClearField("double_data")
    inner.external_data.add(key="location", value="../../etc/passwd")
    const = onnx.helper.make_node("Constant", [], ["c"], value=inner)
    branch = onnx.helper.make_graph(
        [const],
        "branch",
        [],
        [onnx.helper.make_tensor_value_info("c", onnx.TensorProto.DOUBLE, [1])],
    )
    node = onnx.helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)
    graph = onnx.helper.make_graph(
        [node],
        "g",
        [onnx.helper.make_tensor_value_info("cond", onnx.TensorProto.BOOL, [])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, [1])],
    )
    with pytest.raises(ValueError, match="outside the model's directory"):
        check_external_data_locations(onnx.helper.make_model(graph))


# ------------------------------------------------------------------------------ crafted files
def _model(
    nodes: list[onnx.NodeProto],
    *,
    inputs: tuple[onnx.ValueInfoProto, ...] = (),
    initializers: tuple[onnx.TensorProto, ...] = (),
    sparse: tuple[onnx.SparseTensorProto, ...] = (),
    functions: tuple[onnx.FunctionProto, ...] = (),
    y_shape: list[int] | None = None,
) -> onnx.ModelProto:
    """A model computing ``y`` (float) with ``nodes``."""
    graph = H.make_graph(
        nodes,
        "crafted",
        list(inputs),
        [H.make_tensor_value_info("y", TP.FLOAT, y_shape)],
        list(initializers),
        sparse_initializer=list(sparse),
    )
    opsets = [H.make_opsetid("", 18), H.make_opsetid("local", 1)]
    model = H.make_model(graph, opset_imports=opsets, functions=list(functions))
    model.ir_version = 8
    return model


def loop_model(iterations: int) -> onnx.ModelProto:
    """``y = a + iterations`` as a ``Loop`` adding 1 at each step (float input ``a``, [1])."""
    body = H.make_graph(
        [
            H.make_node("Add", ["v_in", "one"], ["v_out"]),
            H.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "body",
        [
            H.make_tensor_value_info("i", TP.INT64, []),
            H.make_tensor_value_info("c_in", TP.BOOL, []),
            H.make_tensor_value_info("v_in", TP.FLOAT, [1]),
        ],
        [
            H.make_tensor_value_info("c_out", TP.BOOL, []),
            H.make_tensor_value_info("v_out", TP.FLOAT, [1]),
        ],
        [onnx.numpy_helper.from_array(np.ones(1, np.float32), "one")],
    )
    return _model(
        [H.make_node("Loop", ["n", "go", "a"], ["y"], body=body)],
        inputs=(H.make_tensor_value_info("a", TP.FLOAT, [1]),),
        initializers=(
            onnx.numpy_helper.from_array(np.array(iterations, np.int64), "n"),
            onnx.numpy_helper.from_array(np.array(True), "go"),
        ),
        y_shape=[1],
    )


# -------------------------------------------------------------------------------- timeouts
@pytest.fixture(scope="module")
def endless_loop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2**31 steps: ONNX Runtime needs about 23 minutes, onnx.reference about 14 hours."""
    path = tmp_path_factory.mktemp("loop") / "loop.onnx"
    onnx.save(loop_model(2**31), path)
    return path


def test_check_timeout_stops_an_endless_loop(
    endless_loop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    args = ["check", str(endless_loop), "--runtime", "ort", "--timeout", "1"]
    assert main(args) == EXIT_FAILED
    assert time.perf_counter() - start < 1 + QUICK_SECONDS
    captured = capsys.readouterr()
    assert "  onnxruntime: the run was stopped after 1 s (timeout)" in captured.out
    assert captured.out.endswith("model has problems\n")
    assert "onnxruntime: the run was stopped after 1 s" in captured.err


def test_verify_timeout_stops_an_endless_loop(endless_loop: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(runtimes.RunTimeout, match=r"^onnxruntime: the run was stopped after 1 s"):
        verify(endless_loop, timeout=1)
    assert time.perf_counter() - start < 1 + QUICK_SECONDS


def test_verify_timeout_stops_onnx_reference(tmp_path: Path) -> None:
    """10**6 steps: ONNX Runtime takes 0.7 s, onnx.reference 24 s; it runs in a child
    process that is killed."""
    path = tmp_path / "loop.onnx"
    onnx.save(loop_model(10**6), path)
    start = time.perf_counter()
    with pytest.raises(
        runtimes.RunTimeout, match=r"^onnx.reference: the run was stopped after 4 s"
    ):
        verify(path, {"a": np.zeros(1, np.float32)}, timeout=4, repeat=0)
    assert time.perf_counter() - start < 4 + QUICK_SECONDS


@pytest.mark.parametrize("runtime", ["openvino", "reference"])
def test_runtimes_stopped_in_a_child_process(endless_loop: Path, runtime: str) -> None:
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    feeds = {"a": np.zeros(1, np.float32)}
    start = time.perf_counter()
    with pytest.raises(runtimes.RunTimeout, match="the run was stopped after 1 s"):
        runtimes.run(runtime, endless_loop, feeds, timeout=1)
    assert time.perf_counter() - start < 1 + QUICK_SECONDS


@pytest.mark.parametrize("runtime", ["reference", "openvino", "tract"])
def test_child_process_returns_outputs_and_errors(runtime: str) -> None:
    """With a timeout, outputs and the runtime's messages come back from the child."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    feeds = {"a": np.array([1.5], np.float32)}
    model = loop_model(3)
    if runtime == "tract":  # tract has no Loop
        with pytest.raises(runtimes.RuntimeFailure, match=r"^tract: .*Loop") as info:
            runtimes.run(runtime, model, feeds, timeout=60)
        assert "Stack backtrace" not in str(info.value)
        return
    (got,) = runtimes.run(runtime, model, feeds, timeout=60)
    np.testing.assert_array_equal(got, runtimes.run(runtime, model, feeds)[0])
    assert got.dtype == np.float32 and got.tolist() == [4.5]
