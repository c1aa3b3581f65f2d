"""The ``onnx_funcify`` registry, the conversion loop and converters for basic compile ops."""

from __future__ import annotations

import importlib
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from types import ModuleType
from typing import Any

import onnx_ir as ir
import pytensor
from pytensor.compile.ops import DeepCopyOp, ViewOp
from pytensor.graph.basic import Apply
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.op import Op
from pytensor.tensor.type_other import NoneTypeT

import pytensor_onnx
from pytensor_onnx.builder import ONNXBuilder

_REGISTER_HINT = """\
To add a converter, register a function for the Op class before exporting:

    from pytensor_onnx import onnx_funcify

    @onnx_funcify.register(MyOp)
    def _(op, node, builder):
        x = builder.input(node, 0)
        return [builder.op("Relu", [x])]  # one onnx_ir.Value per node output
"""


@dataclass(frozen=True)
class UnsupportedEntry:
    """One node that could not be converted, and why."""

    op: Op
    node: Apply
    reason: str

    def describe(self) -> str:
        """A one-paragraph description: Op class, node, reason and where the node was made."""
        cls = type(self.op)
        text = f"- {cls.__module__}.{cls.__qualname__}: node `{self.node}`"
        if self.reason:
            text += f"\n    reason: {self.reason}"
        origin = _node_origin(self.node)
        if origin:
            text += f"\n    created at: {origin}"
        return text


_LIBRARY_DIRS = (
    *(str(Path(module.__file__).parent) for module in (pytensor, pytensor_onnx) if module.__file__),
    sysconfig.get_paths()["stdlib"],
)


def _node_origin(node: Apply) -> str:
    """The user code line that created ``node``, from PyTensor's creation trace.

    Frames inside PyTensor and this package are skipped, and so are the Op's own methods
    (a custom Op's ``make_node`` is not where the user applied it); nodes made by rewrites
    have no user frame and get an empty string.
    """
    op_methods = {
        (code.co_filename, code.co_name)
        for cls in type(node.op).__mro__
        for attr in vars(cls).values()
        if (code := getattr(attr, "__code__", None)) is not None
    }
    for out in node.outputs:
        trace = getattr(out.tag, "trace", None)
        if not trace:
            continue
        frames = trace[-1] if isinstance(trace[0], (list, traceback.StackSummary)) else trace
        for frame in reversed(list(frames)):
            filename, lineno, name, line = tuple(frame)[:4]
            if not str(filename).startswith(_LIBRARY_DIRS) and (filename, name) not in op_methods:
                return f"{filename}:{lineno} in {name}: {line}"
    return ""


class UnsupportedOpError(NotImplementedError):
    """Raised when a graph holds Ops (or Op parameters) that have no ONNX conversion.

    One exception lists every offending node of the graph at once.

    Attributes
    ----------
    entries
        One :class:`UnsupportedEntry` per unconvertible node.
    """

    def __init__(self, entries: Sequence[UnsupportedEntry]) -> None:
        self.entries = list(entries)
        super().__init__(self._message())

    @classmethod
    def for_node(cls, node: Apply, reason: str = "", op: Op | None = None) -> UnsupportedOpError:
        """An error for a single node (``op`` defaults to ``node.op``)."""
        return cls([UnsupportedEntry(op if op is not None else node.op, node, reason)])

    def _message(self) -> str:
        classes = {type(e.op) for e in self.entries}
        lines = [
            f"{len(self.entries)} node(s) of {len(classes)} Op class(es) cannot be "
            "converted to ONNX:"
        ]
        lines.extend(entry.describe() for entry in self.entries)
        lines.append("")
        lines.append(_REGISTER_HINT)
        return "\n".join(lines)


#: Converters for Op classes of other packages (e.g. PyMC), registered the first time such an
#: Op is met, so that importing this package does not import those packages.
_LAZY_CONVERTERS: dict[tuple[str, str], Callable[[type], object]] = {}


@dataclass(frozen=True)
class Refusal:
    """A converter that refuses every node of its Op classes, with ``reason``.

    Registered for Ops that cannot be expressed in ONNX, so that the error says why; the
    supported-op table lists these classes apart.
    """

    reason: str

    def __call__(self, op: Op, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
        # ``op`` is the refused class itself, also where ``node`` is its Elemwise/Blockwise.
        raise UnsupportedOpError.for_node(node, self.reason, op=op)


def register_lazy(module: str, name: str, registrar: Callable[[type], object]) -> None:
    """Call ``registrar(cls)`` to register a converter when class ``module.name`` is first met."""
    OPTIONAL_OP_CLASSES.append((module, name))
    _LAZY_CONVERTERS[(module, name)] = registrar


#: Op classes of other packages refused by name, ``(module, name) -> reason`` (for the
#: supported-op table, which lists them with the other refusals).
LAZY_REFUSALS: dict[tuple[str, str], str] = {}


def refuse_lazy(module: str, name: str, reason: str) -> None:
    """Refuse class ``module.name`` (of another package, e.g. PyMC) with ``reason`` when met."""
    LAZY_REFUSALS[(module, name)] = reason
    refusal = Refusal(reason)
    _LAZY_CONVERTERS[(module, name)] = lambda cls: onnx_funcify.register(cls)(refusal)


@singledispatch
def onnx_funcify(op: Op, node: Apply, builder: ONNXBuilder) -> Sequence[ir.Value]:
    """Convert one PyTensor ``Apply`` node into ONNX nodes.

    Parameters
    ----------
    op
        The node's Op; the converter is chosen by its class.
    node
        The PyTensor ``Apply`` node.
    builder
        The :class:`~pytensor_onnx.builder.ONNXBuilder` owning the ONNX graph. Use
        ``builder.input(node, i)`` for input values and ``builder.op(...)`` to add nodes.

    Returns
    -------
    list of onnx_ir.Value
        One value per output of ``node``, in order.
    """
    registrar = _LAZY_CONVERTERS.pop((type(op).__module__, type(op).__qualname__), None)
    if registrar is not None:
        registrar(type(op))
        return onnx_funcify(op, node, builder)
    raise UnsupportedOpError.for_node(node, "no converter is registered for this Op class", op=op)


#: Every Op class requested through :func:`optional_classes`, as ``(module, name)``, whether
#: or not the installed PyTensor has it (for the supported-op table).
OPTIONAL_OP_CLASSES: list[tuple[str, str]] = []


def optional_classes(module: ModuleType | str, *names: str) -> list[type]:
    """The classes among ``names`` that ``module`` (or the module of that dotted name, if the
    installed PyTensor has it) defines in the installed PyTensor.

    Converters for Ops that exist only in some PyTensor versions register through this.
    """
    module_name = module if isinstance(module, str) else module.__name__
    OPTIONAL_OP_CLASSES.extend((module_name, name) for name in names)
    if isinstance(module, str):
        try:
            module = importlib.import_module(module)
        except ImportError:
            return []
    return [getattr(module, name) for name in names if hasattr(module, name)]


def convert_nodes(nodes: Iterable[Apply], builder: ONNXBuilder) -> None:
    """Convert ``nodes`` (in topological order), binding every output in ``builder``.

    All nodes are attempted; if any fail, one :class:`UnsupportedOpError` listing all of
    them is raised at the end.  A node fed by an unconverted node is still tried for its own
    :class:`UnsupportedOpError`, but any other error it raises is a consequence of the missing
    input (such as a complex value ONNX cannot type) and is not reported.
    """
    failures: list[UnsupportedEntry] = []
    unconverted: set[Any] = set()
    for node in nodes:
        downstream = any(var in unconverted for var in node.inputs)
        try:
            outputs = onnx_funcify(node.op, node, builder)
            if len(outputs) != len(node.outputs):
                raise RuntimeError(
                    f"converter for {type(node.op).__name__} returned {len(outputs)} values "
                    f"for {len(node.outputs)} outputs"
                )
            for var, value in zip(node.outputs, outputs, strict=True):
                builder.bind(var, value)
        except UnsupportedOpError as err:
            failures.extend(err.entries)
        except Exception:
            if not downstream:
                raise
        else:
            continue
        # Untyped placeholders let the remaining nodes be visited so that every failure is
        # found (even outputs ONNX could not type, such as complex ones).
        for var in node.outputs:
            builder.bind_placeholder(var)
            unconverted.add(var)
    if failures:
        raise UnsupportedOpError(failures)


def thaw(fgraph: Any) -> FunctionGraph:
    """An inner graph with variables of its own.

    PyTensor 3 freezes inner graphs and shares their variables between graphs (the inputs
    of every frozen graph are the same ``NominalVariable`` objects, and equal subgraphs are
    one object).  Binding them in a builder that already holds another graph's variables
    would overwrite those bindings, so inner graphs are thawed (copied) first.
    """
    unfreeze = getattr(fgraph, "unfreeze", None)
    thawed = unfreeze() if unfreeze is not None else fgraph
    assert isinstance(thawed, FunctionGraph)
    return thawed


def inline_inner_graph(fgraph: Any, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Convert the inner graph of ``node`` (Composite, OpFromGraph...) into ``builder``'s graph,
    its inputs taking the values of ``node``'s inputs.  ``None`` inputs (a RandomVariable's
    absent ``size``) have no value: the converters using them read their type."""
    fgraph = thaw(fgraph)
    for inner_input, outer_input in zip(fgraph.inputs, node.inputs, strict=True):
        if isinstance(outer_input.type, NoneTypeT):
            continue
        builder.bind(inner_input, builder.value(outer_input))
    convert_nodes(fgraph.toposort(), builder)
    return [builder.value(out) for out in fgraph.outputs]


@onnx_funcify.register(DeepCopyOp)
@onnx_funcify.register(ViewOp)
def _identity(op: Op, node: Apply, builder: ONNXBuilder) -> Sequence[ir.Value]:
    # ONNX values are immutable: a copy or a view is the value itself.
    return [builder.input(node, 0)]
