"""Untrusted model files: external data that would be read from outside the model's
directory, or beyond the end of its file, is refused before anything is read; so are models
built to make the checker or a runtime spend minutes or gigabytes (nesting, size claims,
function expansion, node count); runs that do not end are stopped by a timeout."""

from __future__ import annotations

import re
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
from pytensor_onnx.storage import (
    MAX_CONSTANT_ELEMENTS,
    MAX_NODES,
    MAX_SUBGRAPH_DEPTH,
    check_external_data_locations,
    check_untrusted_structure,
)
from pytensor_onnx.verify import verify

H, TP = onnx.helper, onnx.TensorProto
#: A refusal or a timeout must come this soon; without the checks, the crafted files below
#: cost minutes to hours (the measurements are with the limits in storage.py).
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


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def _length_prefix(field: int, size: int) -> bytes:
    """The key and length of a length-delimited protobuf field holding ``size`` bytes."""
    return _varint(field << 3 | 2) + _varint(size)


def nested_if_file(path: Path, depth: int) -> Path:
    """A model of ``depth`` ``If`` nodes, each in the ``then_branch`` of the one before,
    encoded by hand: protobuf's Python API cannot build messages deeper than its parser
    reads (32 levels of ``If``)."""

    def constant_graph() -> onnx.GraphProto:
        value = H.make_tensor("v", TP.FLOAT, [1], [1.0])
        node = H.make_node("Constant", [], ["y"], value=value)
        return H.make_graph([node], "leaf", [], [H.make_tensor_value_info("y", TP.FLOAT, [1])])

    leaf = constant_graph().SerializeToString()
    # GraphProto.node is field 1, NodeProto.attribute 5, AttributeProto.g 6; the other fields
    # come from serialized messages (a message's fields may come in any order).
    node_head = H.make_node("If", ["c"], ["y"], else_branch=constant_graph()).SerializeToString()
    attribute_head = onnx.AttributeProto(
        name="then_branch", type=onnx.AttributeProto.GRAPH
    ).SerializeToString()
    graph_tail = onnx.GraphProto(
        name="g", output=[H.make_tensor_value_info("y", TP.FLOAT, [1])]
    ).SerializeToString()
    prefixes, size = [], len(leaf)
    for _ in range(depth):
        attribute = attribute_head + _length_prefix(6, size)
        size += len(attribute)
        node = node_head + _length_prefix(5, size)
        size += len(node)
        graph = _length_prefix(1, size)
        size += len(graph) + len(graph_tail)
        prefixes.append(graph + node + attribute)
    inputs = onnx.GraphProto(input=[H.make_tensor_value_info("c", TP.BOOL, [])])
    graph_bytes = b"".join(reversed(prefixes)) + leaf + graph_tail * depth
    graph_bytes += inputs.SerializeToString()  # merged into the outer graph
    header = onnx.ModelProto(ir_version=8, opset_import=[H.make_opsetid("", 18)])
    path.write_bytes(header.SerializeToString() + _length_prefix(7, len(graph_bytes)) + graph_bytes)
    return path


def _claims_without_data(dims: list[int], data: bytes = b"") -> onnx.ModelProto:
    tensor = onnx.TensorProto(name="w", data_type=TP.FLOAT, dims=dims, raw_data=data)
    return _model([H.make_node("Identity", ["w"], ["y"])], initializers=(tensor,))


def _constant_claims_without_data() -> onnx.ModelProto:
    value = onnx.TensorProto(name="v", data_type=TP.FLOAT, dims=[2**60], raw_data=b"\0" * 4)
    return _model([H.make_node("Constant", [], ["y"], value=value)])


def _sparse_initializer(elements: int) -> onnx.ModelProto:
    values = onnx.numpy_helper.from_array(np.ones(1, np.float32), "w")
    indices = onnx.numpy_helper.from_array(np.zeros(1, np.int64), "w_indices")
    sparse = H.make_sparse_tensor(values, indices, [elements])
    return _model([H.make_node("Identity", ["w"], ["y"])], sparse=(sparse,))


def _made_from_constants(op: str, elements: int) -> onnx.ModelProto:
    """``op`` making ``elements`` values from constants of a few bytes."""
    ints = onnx.numpy_helper.from_array(np.array([elements], np.int64), "size")
    one = onnx.numpy_helper.from_array(np.ones(1, np.float32), "one")
    scalars = [onnx.numpy_helper.from_array(np.array(v, np.float32), n) for v, n in
               [(0.0, "start"), (float(elements), "limit"), (1.0, "delta")]]  # fmt: skip
    make = {
        "ConstantOfShape": (["size"], (ints,), {"value": H.make_tensor("v", TP.FLOAT, [1], [1])}),
        "Expand": (["one", "size"], (one, ints), {}),
        "Tile": (["one", "size"], (one, ints), {}),
        "Range": (["start", "limit", "delta"], tuple(scalars), {}),
    }
    inputs, initializers, attributes = make[op]
    nodes = [
        H.make_node(op, inputs, ["big"], **attributes),
        H.make_node("ReduceSum", ["big"], ["y"]),
    ]
    return _model(nodes, initializers=initializers)


def _doubling_functions(levels: int) -> onnx.ModelProto:
    """Functions ``f1`` ... ``fN``, each calling the one before twice: 2**N nodes expanded."""
    opsets = [H.make_opsetid("", 18), H.make_opsetid("local", 1)]
    functions = [
        H.make_function("local", "f0", ["x"], ["y"], [H.make_node("Neg", ["x"], ["y"])], opsets)
    ]
    for i in range(1, levels + 1):
        calls = [
            H.make_node(f"f{i - 1}", ["x"], ["t"], domain="local"),
            H.make_node(f"f{i - 1}", ["t"], ["y"], domain="local"),
        ]
        functions.append(H.make_function("local", f"f{i}", ["x"], ["y"], calls, opsets))
    return _model(
        [H.make_node(f"f{levels}", ["x"], ["y"], domain="local")],
        inputs=(H.make_tensor_value_info("x", TP.FLOAT, [1]),),
        functions=tuple(functions),
    )


def _recursive_function() -> onnx.ModelProto:
    opsets = [H.make_opsetid("", 18), H.make_opsetid("local", 1)]
    body = [H.make_node("f", ["x"], ["y"], domain="local")]
    function = H.make_function("local", "f", ["x"], ["y"], body, opsets)
    return _model(
        [H.make_node("f", ["x"], ["y"], domain="local")],
        inputs=(H.make_tensor_value_info("x", TP.FLOAT, [1]),),
        functions=(function,),
    )


def _many_nodes(count: int) -> onnx.ModelProto:
    model = _model([], inputs=(H.make_tensor_value_info("y", TP.FLOAT, [1]),))
    model.graph.node.extend([H.make_node("Identity", ["y"], ["y"])] * count)
    return model


def _saved(model: onnx.ModelProto) -> Callable[[Path], Path]:
    def write(path: Path) -> Path:
        path.write_bytes(model.SerializeToString())
        return path

    return write


#: Crafted files and the refusal each gets.  What each costs without the checks (onnx 1.23,
#: ONNX Runtime 1.32, OpenVINO 2026.4, measured on 2 cores, 4 GiB address-space limit):
#: - nested If: OpenVINO's load doubles with each level (12 s at 20 levels); protobuf's
#:   parsers refuse 32 levels or more in 0.1 s;
#: - tensors claiming 2**60 elements or more with no data: every runtime refuses, in 0.3 s,
#:   except OpenVINO, which runs a [2**32, 2**32] tensor whose element count overflows to 0;
#: - a 90-byte sparse initializer of 2**28 elements: ONNX Runtime loads it in 9.5 s, 3.1 GiB;
#: - ConstantOfShape/Expand/Tile/Range of 2**27 float64 from constants: ONNX Runtime folds
#:   them at load, 2-3 s and 2.1 GiB each;
#: - 40 levels of functions calling the next twice (3 KB): the checker, shape inference,
#:   ONNX Runtime and onnx.reference run for ever (20 levels: checker 4.6 s, ONNX Runtime
#:   over 40 s, onnx.reference 30 s);
#: - 1,000,000 nodes: ONNX Runtime takes over 2 minutes to load them.
BOMBS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "nested If": (
        lambda path: nested_if_file(path, MAX_SUBGRAPH_DEPTH + 1),
        f"nests subgraphs {MAX_SUBGRAPH_DEPTH + 1} deep",
    ),
    "nested If, 10000 levels": (
        lambda path: nested_if_file(path, 10_000),
        "not an ONNX model (DecodeError: ",
    ),
    "initializer claiming 2**60": (
        _saved(_claims_without_data([2**30, 2**30])),
        "tensor 'w' claims 1152921504606846976 elements but holds 0 bytes",
    ),
    "initializer claiming 2**64": (
        _saved(_claims_without_data([2**32, 2**32], b"\0" * 4)),
        "tensor 'w' claims 18446744073709551616 elements but holds 4 bytes",
    ),
    "Constant claiming 2**60": (
        _saved(_constant_claims_without_data()),
        "tensor 'v' claims 1152921504606846976 elements but holds 4 bytes",
    ),
    "sparse initializer": (
        _saved(_sparse_initializer(2**28)),
        f"makes {2**28} elements from constants",
    ),
    **{
        op: (_saved(_made_from_constants(op, 2**28)), f"makes {2**28} elements from constants")
        for op in ("ConstantOfShape", "Expand", "Tile", "Range")
    },
    "doubling functions": (
        _saved(_doubling_functions(40)),
        f"has {3 * 2**40 - 1} nodes (subgraphs and function calls expanded), over the limit",
    ),
    "recursive function": (
        _saved(_recursive_function()),
        "model-local function local::f calls itself",
    ),
    "node count": (
        _saved(_many_nodes(MAX_NODES + 1)),
        f"has {MAX_NODES + 1} nodes",
    ),
}


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {
        name: write(folder / f"bomb{i}.onnx") for i, (name, (write, _)) in enumerate(BOMBS.items())
    }


@pytest.mark.parametrize("bomb", list(BOMBS))
@pytest.mark.parametrize("command", ["inspect", "check", "run"])
def test_cli_refuses_bombs_quickly(
    bomb_files: dict[str, Path], bomb: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.perf_counter()
    assert main([command, str(bomb_files[bomb])]) == EXIT_USAGE
    assert time.perf_counter() - start < QUICK_SECONDS
    captured = capsys.readouterr()
    assert BOMBS[bomb][1] in captured.err and captured.out == ""


@pytest.mark.parametrize("bomb", [name for name in BOMBS if "10000" not in name])
def test_verify_refuses_bombs_quickly(bomb_files: dict[str, Path], bomb: str) -> None:
    start = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(BOMBS[bomb][1])):
        verify(bomb_files[bomb])
    assert time.perf_counter() - start < QUICK_SECONDS


def test_limits_are_inclusive(tmp_path: Path) -> None:
    """Models at each limit pass: the limits are where the documentation puts them."""
    deepest = onnx.load(nested_if_file(tmp_path / "deep.onnx", MAX_SUBGRAPH_DEPTH))
    check_untrusted_structure(deepest)
    check_untrusted_structure(_many_nodes(MAX_NODES))
    for op in ("ConstantOfShape", "Expand", "Tile", "Range"):
        check_untrusted_structure(_made_from_constants(op, MAX_CONSTANT_ELEMENTS))
    check_untrusted_structure(_sparse_initializer(MAX_CONSTANT_ELEMENTS))
    # f0 called 2**16 times and 2**17 - 1 call nodes: 3 * 2**16 - 1 = 196,607 nodes
    check_untrusted_structure(_doubling_functions(16))
    with pytest.raises(ValueError, match="limit of 7"):
        check_untrusted_structure(deepest, max_depth=MAX_SUBGRAPH_DEPTH - 9)


def test_exported_models_pass_the_checks(tmp_path: Path) -> None:
    """A model with a nested scan, constants of a fixed shape and an external data file."""
    x = pt.vector("x", shape=(4,))
    big = pytensor.shared(np.arange(1000, dtype=np.float64), name="big")
    rows = pytensor.scan(
        lambda xi: pytensor.scan(lambda xj: xj * 2, sequences=[x], return_updates=False) + xi,
        sequences=[x],
        return_updates=False,
    )
    y = rows.sum() + pt.zeros((3, 5)).sum() + big[:4]
    path = tmp_path / "m.onnx"
    export_onnx([x], [y], path, external_data=True)
    report = verify(path, timeout=60)
    assert report.passed, str(report)


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
