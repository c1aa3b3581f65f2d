"""Untrusted model files: external data that would be read from outside the model's
directory, or beyond the end of its file, is refused before anything is read."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from pytensor_onnx.cli import EXIT_OK, EXIT_USAGE, main
from pytensor_onnx.storage import check_external_data_locations
from pytensor_onnx.verify import verify


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
