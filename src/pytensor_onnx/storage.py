"""Writing models whose weights go to an external data file, and checking model files.

A protobuf message cannot exceed 2 GiB, so large initializers must live in a separate
file next to the ``.onnx`` (ONNX "external data").  :func:`save_with_external_data` lets
onnx-ir write them (:func:`onnx_ir.save` streams tensor by tensor, so memory stays
bounded), checks the written files, and only then moves them into place: a failed
export leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
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


def all_initializers(model: ir.Model) -> Iterator[tuple[str, ir.Value]]:
    """The initializers of ``model``'s graph and subgraphs (a ``Scan`` body holds the
    weights only it reads), by name."""
    for graph in model.graphs():
        yield from graph.initializers.items()


def initializer_bytes(model: ir.Model) -> int:
    """The number of bytes held by the initializers of ``model``'s graphs."""
    return sum(
        value.const_value.nbytes
        for _, value in all_initializers(model)
        if value.const_value is not None
    )


def external_data_name(path: PathLike, model: ir.Model, threshold: int) -> str:
    """The name of the external data file written next to ``path`` for ``model``:
    ``<model file name>.<hash>.data``, the hash of the tensors it holds.

    A new model's data never overwrites the data file the previous model at ``path`` reads,
    so replacing the model file is the one step that switches from the old pair to the new.
    """
    digest = hashlib.blake2b(digest_size=8)
    for name, value in all_initializers(model):
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
        for tensor in _all_tensors(model)
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return {name for name in locations if pattern.fullmatch(name)}


_Body = onnx.GraphProto | onnx.FunctionProto


def _graphs(body: _Body) -> Iterator[tuple[_Body, int]]:
    """``body`` and every subgraph of its nodes, with how deep each is nested (0 for
    ``body``), walked without recursion so a deeply nested model cannot overflow the stack."""
    pending: list[tuple[_Body, int]] = [(body, 0)]
    while pending:
        current, depth = pending.pop()
        yield current, depth
        for node in current.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    pending.append((attr.g, depth + 1))
                pending.extend((graph, depth + 1) for graph in attr.graphs)


def _sparse_tensors(graph: _Body) -> Iterator[onnx.SparseTensorProto]:
    """The sparse tensors of one graph or function body (not of its subgraphs)."""
    if isinstance(graph, onnx.GraphProto):
        yield from graph.sparse_initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor
            yield from attr.sparse_tensors


def _tensors(graph: _Body) -> Iterator[onnx.TensorProto]:
    """The tensors stored in one graph or function body (not in its subgraphs):
    initializers, tensor attributes, and the values and indices of sparse tensors."""
    if isinstance(graph, onnx.GraphProto):
        yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
    for sparse in _sparse_tensors(graph):
        yield sparse.values
        yield sparse.indices


def _all_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    """Every tensor stored in ``model``: its graph, model-local functions and their
    subgraphs."""
    for body in (model.graph, *model.functions):
        for graph, _ in _graphs(body):
            yield from _tensors(graph)


def check_external_data_locations(
    model: onnx.ModelProto, directory: PathLike | None = None
) -> None:
    """Refuse external data that would be read from outside the model's directory.

    Checked before anything is read, for every tensor of the model, its subgraphs and
    model-local functions included: the location may be neither absolute nor contain
    ``..``.  With ``directory`` (the directory of the model file) the location must also
    stay inside it once symbolic links are resolved, and the bytes it claims (offset and
    length) must lie within the file.

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
    for tensor in _all_tensors(model):
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


#: Most levels of subgraphs (``If`` branches, ``Loop`` and ``Scan`` bodies) inside one
#: another in an untrusted model, counted through calls of model-local functions.  Measured:
#: OpenVINO 2026.4 doubles its load time with each level of nested ``If`` (0.9 s for 16
#: levels, 12 s for 20, not done after 60 s for 31); protobuf's parsers refuse files nested
#: 32 levels or deeper.
MAX_SUBGRAPH_DEPTH = 16
#: Most nodes in an untrusted model, subgraphs included and each call of a model-local
#: function counted as the nodes of its body.  Measured: ONNX Runtime 1.32 loads a chain of
#: 100,000 nodes in 4 s, 200,000 in 11 s and 1,000,000 in over 2 minutes; 3 KB of functions
#: each calling the next twice over 40 levels make 2**40 nodes, which the ONNX checker,
#: shape inference, ONNX Runtime and ``onnx.reference`` try to expand for ever.
MAX_NODES = 200_000
#: Most elements an untrusted model may have a runtime make, at load, from a few bytes: the
#: dense size of sparse tensors and the outputs of ``ConstantOfShape``, ``Expand``, ``Tile``
#: and ``Range`` whose size is fixed by constants.  Measured: ONNX Runtime 1.32 folds such
#: nodes when it loads the model, 2**27 float64 elements (1 GiB) from a 161-byte file in
#: 2-3 s and 2.1 GiB of memory; it densifies a 90-byte sparse initializer of 2**28 float32
#: elements in 9.5 s and 3.1 GiB.
MAX_CONSTANT_ELEMENTS = 2**27

#: Counts beyond this are all "too many" (keeps the arithmetic on small integers).
_COUNT_CAP = 2**64
#: Constant inputs with at most this many elements are read to size the nodes using them.
_SMALL_CONSTANT = 64
#: The operators whose output size constants can fix (see :data:`MAX_CONSTANT_ELEMENTS`).
_SIZED_BY_CONSTANTS = frozenset({"ConstantOfShape", "Expand", "Tile", "Range"})

_FunctionKey = tuple[str, str, str]


def _product(values: Iterable[int]) -> int:
    """The product of ``values`` (0 if one is 0 or negative), capped at ``_COUNT_CAP``."""
    factors = [int(value) for value in values]
    if any(factor <= 0 for factor in factors):
        return 0
    result = 1
    for factor in factors:
        result = min(result * factor, _COUNT_CAP)
    return result


def _stored_bytes(tensor: onnx.TensorProto) -> int:
    """An upper bound of the bytes of data ``tensor`` holds in the model file."""
    if tensor.HasField("raw_data"):
        return len(tensor.raw_data)
    fields = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
    return 8 * sum(len(getattr(tensor, name)) for name in fields)


@dataclass
class _Cost:
    """What a graph or function body costs once model-local functions are expanded."""

    nodes: int = 0
    depth: int = 0
    constant_elements: int = 0

    def add_call(self, callee: _Cost, depth: int) -> None:
        self.nodes = min(self.nodes + callee.nodes, _COUNT_CAP)
        self.depth = max(self.depth, depth + callee.depth)
        self.constant_elements = min(self.constant_elements + callee.constant_elements, _COUNT_CAP)


def _function_key(function: onnx.FunctionProto) -> _FunctionKey:
    return (function.domain, function.name, function.overload)


def _call_key(node: onnx.NodeProto) -> _FunctionKey:
    return (node.domain, node.op_type, node.overload)


class _Constants:
    """Dims of the constant tensors of a body (initializers and ``Constant`` nodes, of its
    subgraphs too) and the values of the small ones stored inline."""

    def __init__(self, graphs: Sequence[_Body]) -> None:
        self.dims: dict[str, list[int]] = {}
        self.values: dict[str, np.ndarray] = {}
        for graph in graphs:
            if isinstance(graph, onnx.GraphProto):
                for tensor in graph.initializer:
                    self._add_tensor(tensor.name, tensor)
            for node in graph.node:
                if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                    self._add_attribute(node.output[0], node)

    def _add_tensor(self, name: str, tensor: onnx.TensorProto) -> None:
        from onnx.external_data_helper import uses_external_data

        self.dims[name] = list(tensor.dims)
        if _product(tensor.dims) <= _SMALL_CONSTANT and not uses_external_data(tensor):
            # A malformed tensor is not read: its consumers are not sized, runtimes refuse it.
            with contextlib.suppress(Exception):
                self.values[name] = onnx.numpy_helper.to_array(tensor)

    def _add_attribute(self, name: str, node: onnx.NodeProto) -> None:
        for attr in node.attribute:
            if attr.name == "value" and attr.HasField("t"):
                self._add_tensor(name, attr.t)
            elif attr.name in ("value_int", "value_float"):
                self.dims[name] = []
                self.values[name] = np.array(attr.i if attr.name == "value_int" else attr.f)
            elif attr.name in ("value_ints", "value_floats"):
                items = attr.ints if attr.name == "value_ints" else attr.floats
                self.dims[name] = [len(items)]
                if len(items) <= _SMALL_CONSTANT:
                    self.values[name] = np.array(items)

    def value(self, node: onnx.NodeProto, index: int, kinds: str = "iu") -> np.ndarray | None:
        """The value of input ``index`` of ``node`` if it is a small constant of one of the
        NumPy dtype ``kinds`` (integers by default)."""
        value = self.values.get(node.input[index]) if index < len(node.input) else None
        return value if value is not None and value.dtype.kind in kinds else None

    def made_elements(self, node: onnx.NodeProto) -> int:
        """Elements ``node`` makes when constants fix its output size (a lower bound where
        its data input is not constant), else 0."""
        if node.op_type not in _SIZED_BY_CONSTANTS or node.domain not in ("", "ai.onnx"):
            return 0
        if node.op_type != "Range":
            size = self.value(node, 0 if node.op_type == "ConstantOfShape" else 1)
            if size is None:
                return 0
            if node.op_type == "ConstantOfShape":
                return _product(size.ravel())
            data = self.dims.get(node.input[0], [])
            if node.op_type == "Tile":  # the data's elements times every repeat
                return _product([*data, *size.ravel()])
            shape = [int(d) for d in size.ravel()]  # Expand broadcasts the data to the shape
            rank = max(len(data), len(shape))
            padded_data = [1] * (rank - len(data)) + data
            padded_shape = [1] * (rank - len(shape)) + shape
            return _product(max(a, b) for a, b in zip(padded_data, padded_shape, strict=True))
        bounds = [self.value(node, i, kinds="iuf") for i in range(3)]
        numbers = [float(b.item()) for b in bounds if b is not None and b.size == 1]
        if len(numbers) != 3:
            return 0
        start, limit, delta = numbers
        if delta == 0 or not all(map(math.isfinite, numbers)):
            return 0
        return min(max(math.ceil((limit - start) / delta), 0), _COUNT_CAP)


def _body_cost(body: _Body, functions: Mapping[_FunctionKey, _Cost]) -> _Cost:
    """The cost of ``body``, calls of the functions in ``functions`` expanded."""
    graphs = list(_graphs(body))
    constants = _Constants([graph for graph, _ in graphs])
    cost = _Cost()
    for graph, depth in graphs:
        cost.depth = max(cost.depth, depth)
        made = sum(_product(sparse.dims) for sparse in _sparse_tensors(graph))
        for node in graph.node:
            callee = functions.get(_call_key(node)) if functions else None
            if callee is not None:
                cost.add_call(callee, depth)
            else:
                made += constants.made_elements(node)
        cost.nodes = min(cost.nodes + len(graph.node), _COUNT_CAP)
        cost.constant_elements = min(cost.constant_elements + made, _COUNT_CAP)
    return cost


def _function_costs(model: onnx.ModelProto) -> dict[_FunctionKey, _Cost]:
    """The cost of every model-local function, its calls of others expanded.

    Raises
    ------
    ValueError
        If a function calls itself, directly or through others.
    """
    bodies = {_function_key(function): function for function in model.functions}

    def callees(key: _FunctionKey) -> Iterator[_FunctionKey]:
        for graph, _ in _graphs(bodies[key]):
            for node in graph.node:
                if _call_key(node) in bodies:
                    yield _call_key(node)

    costs: dict[_FunctionKey, _Cost] = {}
    for root in bodies:
        # Depth-first without recursion: a function is costed after all it calls.
        stack = [(root, callees(root))]
        calling = {root}
        while stack:
            key, pending = stack[-1]
            callee = next((c for c in pending if c not in costs), None)
            if callee is None:
                stack.pop()
                calling.discard(key)
                costs[key] = _body_cost(bodies[key], costs)
            elif callee in calling:
                raise ValueError(
                    f"model-local function {callee[0]}::{callee[1]} calls itself (directly or "
                    "through other functions): refused"
                )
            else:
                calling.add(callee)
                stack.append((callee, callees(callee)))
    return costs


def check_untrusted_structure(
    model: onnx.ModelProto,
    *,
    max_depth: int = MAX_SUBGRAPH_DEPTH,
    max_nodes: int = MAX_NODES,
    max_constant_elements: int = MAX_CONSTANT_ELEMENTS,
) -> None:
    """Refuse a model whose structure would make the checker or a runtime spend minutes or
    gigabytes: the cheap walk of the protobuf that runs before anything else sees it.

    Refused: a tensor claiming more elements than the data it holds could fill (e.g. dims
    of 2**60 elements and no data); subgraphs nested more than ``max_depth`` deep; more than
    ``max_nodes`` nodes; model-local functions that call themselves; more than
    ``max_constant_elements`` elements made from constants at load (see
    :data:`MAX_CONSTANT_ELEMENTS`).  Nodes, depth and elements count each call of a
    model-local function as its body.  Tensors in external data are not sized here
    (:func:`check_external_data_locations` keeps their reads inside the data file).

    Parameters
    ----------
    model
        The model, loaded without its external data.
    max_depth, max_nodes, max_constant_elements
        The limits (defaults: :data:`MAX_SUBGRAPH_DEPTH`, :data:`MAX_NODES`,
        :data:`MAX_CONSTANT_ELEMENTS`).

    Raises
    ------
    ValueError
        Saying what exceeds which limit.
    """
    from onnx.external_data_helper import uses_external_data

    for tensor in _all_tensors(model):
        claimed = _product(tensor.dims)
        stored = _stored_bytes(tensor)
        if not uses_external_data(tensor) and claimed > 8 * stored:  # 1 bit per element at least
            raise ValueError(
                f"tensor {tensor.name!r} claims {claimed} elements but holds {stored} bytes "
                "of data: refused"
            )
    functions = _function_costs(model)
    bodies = [("the model", _body_cost(model.graph, functions))]
    bodies += [
        (f"model-local function {key[0]}::{key[1]}", cost) for key, cost in functions.items()
    ]
    for where, cost in bodies:
        if cost.depth > max_depth:
            raise ValueError(
                f"{where} nests subgraphs {cost.depth} deep (If/Loop/Scan bodies, through "
                f"function calls), over the limit of {max_depth}: refused"
            )
        if cost.nodes > max_nodes:
            raise ValueError(
                f"{where} has {cost.nodes} nodes (subgraphs and function calls expanded), over "
                f"the limit of {max_nodes}: refused"
            )
        if cost.constant_elements > max_constant_elements:
            raise ValueError(
                f"{where} makes {cost.constant_elements} elements from constants (sparse "
                "tensors, ConstantOfShape/Expand/Tile/Range of constant sizes), over the limit "
                f"of {max_constant_elements}: refused"
            )


def check_untrusted_model(model: onnx.ModelProto, directory: PathLike | None = None) -> None:
    """The checks of a model from an untrusted file, before anything else reads it:
    :func:`check_untrusted_structure` and :func:`check_external_data_locations`.

    Parameters
    ----------
    model
        The model, loaded without its external data.
    directory
        The directory of the model file (``None``: external data locations are checked as
        text only).

    Raises
    ------
    ValueError
        Saying what is refused.
    """
    check_untrusted_structure(model)
    check_external_data_locations(model, directory)


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
    "MAX_CONSTANT_ELEMENTS",
    "MAX_NODES",
    "MAX_SUBGRAPH_DEPTH",
    "PROTOBUF_LIMIT_BYTES",
    "all_initializers",
    "check_external_data_locations",
    "check_model_file",
    "check_untrusted_model",
    "check_untrusted_structure",
    "external_data_name",
    "initializer_bytes",
    "save_with_external_data",
    "wants_external_data",
]
