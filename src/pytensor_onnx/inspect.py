"""Looking inside exported models: a printable summary and per-node provenance.

:func:`summary` prints a model's inputs and outputs (dtypes, static and named dims), its
op histogram and how many bytes its initializers hold (inline and in external data).
:func:`annotate_provenance` records on each ONNX node which PyTensor Op and variable it
was converted from.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import onnx
import onnx_ir as ir
from pytensor.graph.basic import Apply, Variable

from pytensor_onnx.storage import all_initializers

PathLike = str | os.PathLike[str]

#: Node metadata keys written by :func:`annotate_provenance`.
PROVENANCE_OP = "pytensor_op"
PROVENANCE_VARIABLE = "pytensor_variable"
PROVENANCE_SOURCE = "pytensor_source"

_LIBRARY_DIRS = frozenset({"pytensor", "pytensor_onnx"})


# ----------------------------------------------------------------------------- provenance
def _creation_site(var: Variable) -> str:
    """``file.py:line`` of the user code that created ``var`` (base name only), or ``""``.

    Frames inside PyTensor and pytensor-onnx (graph rebuilding, rewrites) are skipped.
    """
    trace = getattr(var.tag, "trace", None)
    if not trace:
        return ""
    # A list of stack summaries (one per rewrite that copied the trace), or one summary.
    summaries = trace if isinstance(trace[0], list) else [trace]
    for frames in reversed(summaries):
        for frame in reversed(frames):
            filename, lineno = tuple(frame)[:2]
            if not any(part in _LIBRARY_DIRS for part in Path(filename).parts):
                return f"{os.path.basename(filename)}:{lineno}"
    return ""


def _tag(node: ir.Node, apply: Apply, var: Variable) -> None:
    node.metadata_props[PROVENANCE_OP] = str(apply.op)
    node.metadata_props[PROVENANCE_VARIABLE] = var.name or str(var)
    site = _creation_site(var)
    if site:
        node.metadata_props[PROVENANCE_SOURCE] = site


def annotate_provenance(model: ir.Model, value_map: Mapping[Variable, ir.Value]) -> None:
    """Record on each node of ``model`` the PyTensor Op and variable it was converted from.

    A converter appends its helper nodes (casts, constants, shapes) before the node that
    produces the PyTensor variable's value, so every node is attributed to the next
    variable-producing node in graph order.  Nodes after the last one (the ``Identity``
    nodes naming graph outputs) are attributed to the variable they read.

    Parameters
    ----------
    model
        The model built by :func:`~pytensor_onnx.export.build_model`; modified in place.
    value_map
        PyTensor variable -> ONNX value, in conversion order (``build_model(value_map=...)``).
    """
    creator: dict[int, Variable] = {}
    for var, value in value_map.items():
        if var.owner is not None:
            creator.setdefault(id(value), var)
    pending: list[ir.Node] = []
    for node in model.graph:
        pending.append(node)
        made = next((creator[id(v)] for v in node.outputs if id(v) in creator), None)
        if made is not None:
            assert made.owner is not None
            for waiting in pending:
                _tag(waiting, made.owner, made)
            pending = []
    for node in pending:
        read = next(
            (creator[id(v)] for v in node.inputs if v is not None and id(v) in creator), None
        )
        if read is not None:
            assert read.owner is not None
            _tag(node, read.owner, read)


# -------------------------------------------------------------------------------- summary
def _format_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _dims(value: ir.Value) -> str:
    if value.shape is None:
        return "?"
    return _format_dims(value.shape)


def _format_dims(shape: Iterable[Any]) -> str:
    """``[2, batch, ?]``: static dims, named symbolic dims, ``?`` for unknown ones."""
    dims = []
    for dim in shape:
        if isinstance(dim, int):
            dims.append(str(dim))
        else:
            dims.append(dim.value if isinstance(dim.value, str) else "?")
    return "[" + ", ".join(dims) + "]"


def _dtype_name(dtype: ir.DataType | None) -> str:
    if dtype is None:
        return "?"
    try:
        return str(dtype.numpy())
    except TypeError:  # types NumPy lacks (e.g. bfloat16)
        return dtype.name.lower()


@dataclass(frozen=True)
class TensorInfo:
    """Name, dtype and dims (``int`` static, ``str`` named, ``None`` unknown) of a value."""

    name: str
    dtype: str
    dims: str


@dataclass(frozen=True)
class InitializerInfo:
    """An initializer's name, dtype, dims, size and whether it lives in external data."""

    name: str
    dtype: str
    dims: str
    nbytes: int
    external: bool


@dataclass
class ModelSummary:
    """What :func:`summary` prints; ``str()`` gives the text."""

    graph_name: str
    producer: str
    ir_version: int
    opsets: dict[str, int]
    metadata: dict[str, str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    op_histogram: Counter[str]
    """Node counts by op type (``domain::type`` outside the default domain), main graph and
    its subgraphs; local function bodies are counted in ``functions``."""
    initializers: list[InitializerInfo] = field(default_factory=list)
    functions: dict[str, int] = field(default_factory=dict)

    @property
    def initializer_bytes(self) -> int:
        """Bytes held by all initializers (inline and external)."""
        return sum(i.nbytes for i in self.initializers)

    @property
    def external_bytes(self) -> int:
        """Bytes held by initializers stored in external data files."""
        return sum(i.nbytes for i in self.initializers if i.external)

    @property
    def node_count(self) -> int:
        """Nodes in the model, subgraphs included."""
        return sum(self.op_histogram.values())

    def __str__(self) -> str:
        opsets = ", ".join(f"{d or 'ai.onnx'} {v}" for d, v in sorted(self.opsets.items()))
        lines = [
            f"Model {self.graph_name!r}: producer {self.producer}, IR version "
            f"{self.ir_version}, opset {opsets}"
        ]
        if self.metadata:
            lines.append("Metadata: " + ", ".join(f"{k}={v}" for k, v in self.metadata.items()))
        for title, infos in (("Inputs", self.inputs), ("Outputs", self.outputs)):
            lines.append(f"{title} ({len(infos)}):")
            lines += _table([[i.name, i.dtype, i.dims] for i in infos])
        lines.append(f"Nodes: {self.node_count} ({len(self.op_histogram)} op types)")
        lines += _table([[op, str(n)] for op, n in _sorted_histogram(self.op_histogram)])
        if self.functions:
            lines.append(f"Local functions ({len(self.functions)}):")
            lines += _table([[name, f"{n} nodes"] for name, n in sorted(self.functions.items())])
        lines.append(
            f"Initializers: {len(self.initializers)}, {_format_bytes(self.initializer_bytes)}"
            f" ({_format_bytes(self.external_bytes)} in external data)"
        )
        largest = sorted(self.initializers, key=lambda i: (-i.nbytes, i.name))[:10]
        lines += _table(
            [
                [i.name, i.dtype, i.dims, _format_bytes(i.nbytes), "external" if i.external else ""]
                for i in largest
            ]
        )
        if len(self.initializers) > len(largest):
            lines.append(f"  ... and {len(self.initializers) - len(largest)} smaller ones")
        return "\n".join(lines)


def _sorted_histogram(histogram: Counter[str]) -> list[tuple[str, int]]:
    return sorted(histogram.items(), key=lambda item: (-item[1], item[0]))


def _table(rows: list[list[str]]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _as_ir_model(model: onnx.ModelProto | ir.Model | PathLike) -> ir.Model:
    if isinstance(model, ir.Model):
        return model
    if isinstance(model, onnx.ModelProto):
        return ir.serde.deserialize_model(model)
    # External tensors are loaded lazily: their sizes come from the file's metadata.
    return ir.load(os.fspath(model))


def _tensor_info(value: ir.Value) -> TensorInfo:
    return TensorInfo(value.name or "", _dtype_name(value.dtype), _dims(value))


def model_summary(model: onnx.ModelProto | ir.Model | PathLike) -> ModelSummary:
    """Collect the facts :func:`summary` prints, as a :class:`ModelSummary`."""
    ir_model = _as_ir_model(model)
    graph = ir_model.graph
    histogram: Counter[str] = Counter()
    for node in ir.traversal.RecursiveGraphIterator(graph):
        histogram[f"{node.domain}::{node.op_type}" if node.domain else node.op_type] += 1
    initializers = []
    for name, value in all_initializers(ir_model):
        tensor = value.const_value
        if tensor is None:
            continue
        initializers.append(
            InitializerInfo(
                name=name,
                dtype=_dtype_name(tensor.dtype),
                dims=_format_dims(tensor.shape),
                nbytes=int(tensor.nbytes),
                external=isinstance(tensor, ir.ExternalTensor),
            )
        )
    producer = " ".join(p for p in (ir_model.producer_name, ir_model.producer_version) if p)
    return ModelSummary(
        graph_name=graph.name or "",
        producer=producer or "unknown",
        ir_version=ir_model.ir_version,
        opsets=dict(ir_model.opset_imports),
        metadata=dict(ir_model.metadata_props),
        inputs=[_tensor_info(v) for v in graph.inputs],
        outputs=[_tensor_info(v) for v in graph.outputs],
        op_histogram=histogram,
        initializers=initializers,
        functions={
            f"{domain}::{name}": sum(1 for _ in ir.traversal.RecursiveGraphIterator(function))
            for (domain, name, _), function in ir_model.functions.items()
        },
    )


def printable(text: str) -> str:
    """``text`` with control characters (terminal escape sequences included) escaped, so that
    names from an untrusted model cannot drive the terminal; newlines are kept."""

    def escape(c: str) -> str:
        if c == "\n" or not unicodedata.category(c).startswith("C"):
            return c
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    return "".join(escape(c) for c in text)


def summary(model: onnx.ModelProto | ir.Model | PathLike, file: TextIO | None = None) -> None:
    """Print a summary of ``model``: inputs/outputs with dims, op histogram, initializer bytes.

    Parameters
    ----------
    model
        A ``ModelProto``, an ``onnx_ir.Model`` or the path of a ``.onnx`` file (external
        data is not read: sizes come from the tensor metadata).
    file
        Where to print (default ``sys.stdout``).  Use :func:`model_summary` for the data.
    """
    print(printable(str(model_summary(model))), file=file if file is not None else sys.stdout)


__all__ = [
    "PROVENANCE_OP",
    "PROVENANCE_SOURCE",
    "PROVENANCE_VARIABLE",
    "ModelSummary",
    "annotate_provenance",
    "model_summary",
    "printable",
    "summary",
]
