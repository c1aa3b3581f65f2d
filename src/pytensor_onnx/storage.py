"""Writing models whose weights go to an external data file, and checking model files.

A protobuf message cannot exceed 2 GiB, so large initializers must live in a separate
file next to the ``.onnx`` (ONNX "external data").  :func:`save_with_external_data` lets
onnx-ir write them (:func:`onnx_ir.save` streams tensor by tensor, so memory stays
bounded), checks the written files, and only then moves them into place: a failed
export leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

PathLike = str | os.PathLike[str]

#: The protobuf limit on one serialized message (and so on a single-file model).
PROTOBUF_LIMIT_BYTES = 2**31
#: With ``external_data=None``, models whose initializers hold more bytes than this are
#: written with an external data file; smaller ones stay a single file.
AUTO_EXTERNAL_DATA_BYTES = 2**30
#: Default for ``external_data_threshold``: initializers of at least this many bytes go to
#: the external data file (smaller ones stay inline, where tools can read them cheaply).
DEFAULT_EXTERNAL_DATA_THRESHOLD = 1024


def initializer_bytes(model: ir.Model) -> int:
    """The number of bytes held by the initializers of ``model``'s main graph."""
    return sum(
        value.const_value.nbytes
        for value in model.graph.initializers.values()
        if value.const_value is not None
    )


def external_data_name(path: PathLike, model: ir.Model, threshold: int) -> str:
    """The name of the external data file written next to ``path`` for ``model``:
    ``<model file name>.<hash>.data``, the hash of the tensors it holds.

    A new model's data never overwrites the data file the previous model at ``path`` reads,
    so replacing the model file is the one step that switches from the old pair to the new.
    """
    digest = hashlib.blake2b(digest_size=8)
    for name, value in model.graph.initializers.items():
        tensor = value.const_value
        if tensor is not None and tensor.nbytes >= threshold:
            digest.update(name.encode())
            digest.update(memoryview(np.ascontiguousarray(tensor.numpy())).cast("B"))
    return f"{Path(path).name}.{digest.hexdigest()}.data"


def _own_data_files(path: Path) -> set[str]:
    """The data files of this package's naming that the model at ``path`` references."""
    if not path.is_file():
        return set()
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception:  # not a model (or unreadable): it references nothing of ours
        return set()
    pattern = re.compile(re.escape(path.name) + r"(\.[0-9a-f]{16})?\.data")
    locations = {
        entry.value
        for tensor in model.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return {name for name in locations if pattern.fullmatch(name)}


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in ``graph`` and its subgraphs (initializers, sparse initializers,
    tensor attributes), walked without recursion so a deeply nested model cannot overflow the
    stack."""
    pending = [graph]
    while pending:
        current = pending.pop()
        yield from current.initializer
        for sparse in current.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in current.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    pending.append(attr.g)
                pending.extend(attr.graphs)


def check_external_data_locations(
    model: onnx.ModelProto, directory: PathLike | None = None
) -> None:
    """Refuse external data that would be read from outside the model's directory.

    Checked before anything is read, for every tensor of the model, its subgraphs included:
    the location may be neither absolute nor contain ``..``.  With ``directory`` (the
    directory of the model file) the location must also stay inside it once symbolic links
    are resolved, and the bytes it claims (offset and length) must lie within the file.

    Parameters
    ----------
    model
        The model, loaded without its external data.
    directory
        The directory of the model file (``None``: the location text alone is checked).

    Raises
    ------
    ValueError
        Naming the tensor and the location.
    """
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    root = Path(directory).resolve() if directory is not None else None
    for tensor in _all_tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        where = f"tensor {tensor.name!r} reads external data from {info.location!r}"
        location = Path(info.location)
        if not info.location or location.is_absolute() or ".." in location.parts:
            raise ValueError(f"{where}, outside the model's directory: refused")
        if root is None:
            continue
        target = (root / location).resolve()
        if not target.is_relative_to(root):
            raise ValueError(
                f"{where}, a link leading outside the model's directory ({target}): refused"
            )
        if not target.is_file():
            raise ValueError(f"{where}, which is not a file in the model's directory")
        offset = info.offset or 0  # ExternalDataInfo refuses negative offsets and lengths
        size = target.stat().st_size
        end = offset + (info.length if info.length is not None else 0)
        if offset > size or end > size:
            raise ValueError(
                f"{where} bytes {offset}..{end}, beyond the end of the file ({size} bytes): refused"
            )


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def wants_external_data(model: ir.Model, path: PathLike | None, external_data: bool | None) -> bool:
    """Decide whether ``model`` is written with external data.

    Parameters
    ----------
    model
        The model about to be written.
    path
        Where it is written (``None``: kept in memory only).
    external_data
        ``True`` forces external data, ``False`` forces a single file, ``None`` decides by
        size (more than :data:`AUTO_EXTERNAL_DATA_BYTES` of initializers).

    Raises
    ------
    ValueError
        If external data is needed or requested without a path, or a single file is
        forced for a model over the protobuf limit.
    """
    size = initializer_bytes(model)
    if external_data is None:
        external_data = size > AUTO_EXTERNAL_DATA_BYTES
    if external_data and path is None:
        raise ValueError(
            f"the model holds {size / 2**30:.2f} GiB of initializers, which must go to an "
            "external data file (protobuf messages are limited to 2 GiB): pass a path"
            if size > AUTO_EXTERNAL_DATA_BYTES
            else "external_data=True needs a path to write the data file next to"
        )
    if not external_data and size >= PROTOBUF_LIMIT_BYTES:
        raise ValueError(
            f"the model holds {size / 2**30:.2f} GiB of initializers, over the 2 GiB protobuf "
            "limit of a single-file model: allow external data (external_data=None or True)"
        )
    return external_data


def check_model_file(path: PathLike) -> None:
    """Check a model file (with or without external data) like ``check_model`` does in memory.

    Runs the ONNX checker with ``full_check`` on the path (the form that works past 2 GiB)
    and strict shape inference (without data propagation, see ``export.check_model``).
    """
    onnx.checker.check_model(os.fspath(path), full_check=True)
    with tempfile.TemporaryDirectory(prefix="pytensor_onnx_check_") as tmp:
        onnx.shape_inference.infer_shapes_path(
            os.fspath(path),
            os.path.join(tmp, "inferred.onnx"),
            check_type=True,
            strict_mode=True,
            data_prop=False,
        )


def save_with_external_data(
    model: ir.Model,
    path: PathLike,
    *,
    threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD,
    check: bool = True,
    verify: Callable[[Path], object] | None = None,
) -> onnx.ModelProto:
    """Write ``model`` to ``path`` with its large initializers in an external data file.

    The write is all-or-nothing: both files are written into a temporary directory next to
    ``path``, checked (and verified) and flushed to disk; the data file, whose name holds
    the hash of its content (:func:`external_data_name`), is renamed into place, and then
    the model file: that rename is the commit.  Until it happens the previous model and the
    data file it reads are untouched; after it, the previous model's data file (of this
    package's naming) is removed.  A failure at any step removes what this write added.
    A process killed mid-write can leave its temporary directory (``.<name>.*``) and, killed
    between the two renames, an unreferenced data file; the old pair stays intact.

    Parameters
    ----------
    model
        The model to write; it is not modified.
    path
        The ``.onnx`` file; the data file is ``<name>.<hash>.data`` in the same directory.
    threshold
        Initializers of at least this many bytes go to the data file.
    check
        Run :func:`check_model_file` on the written files.
    verify
        Called with the temporary model path before the files are moved into place; an
        exception it raises aborts the export.

    Returns
    -------
    onnx.ModelProto
        The written model without its external tensor data (tensors reference the file).
    """
    target = Path(path)
    data_name = external_data_name(target, model, threshold)
    previous = _own_data_files(target)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    published: Path | None = None
    try:
        tmp_model = tmpdir / target.name
        ir.save(model, tmp_model, external_data=data_name, size_threshold_bytes=threshold)
        if check:
            check_model_file(tmp_model)
        if verify is not None:
            verify(tmp_model)
        tmp_data = tmpdir / data_name
        final_data = target.parent / data_name
        if tmp_data.exists() and not final_data.exists():  # same name: same content
            _fsync(tmp_data)
            os.replace(tmp_data, final_data)
            published = final_data
        _fsync(tmp_model)
        os.replace(tmp_model, target)  # the commit
        published = None
    finally:
        if published is not None:
            published.unlink(missing_ok=True)
        shutil.rmtree(tmpdir, ignore_errors=True)
    for name in previous - {data_name}:
        (target.parent / name).unlink(missing_ok=True)
    return onnx.load(os.fspath(target), load_external_data=False)


__all__ = [
    "AUTO_EXTERNAL_DATA_BYTES",
    "DEFAULT_EXTERNAL_DATA_THRESHOLD",
    "PROTOBUF_LIMIT_BYTES",
    "check_external_data_locations",
    "check_model_file",
    "external_data_name",
    "initializer_bytes",
    "save_with_external_data",
    "wants_external_data",
]
