"""The input dimensions a PyTensor graph requires to be equal, for naming them in ONNX.

An exported input's dimension of unknown size gets a symbolic name (``x_dim0``).  Two inputs
whose dimensions the graph combines without broadcasting (``x + y`` of two vectors, the
inner dimensions of a matrix product, the rows of a ``concatenate`` along columns) must have
equal sizes, or PyTensor itself refuses them ("Runtime broadcasting not allowed", a shape
mismatch).  Giving such dimensions one name states that in the model's signature, and some
runtimes need it: tract cannot broadcast two independently named dimensions (an unknown
size might be 1), so it refused the exported ``a @ b`` of two batches and the ``stack`` of
two matrices until they shared names.  A dimension that the graph ties to a static size
gets that size.

Only rules PyTensor enforces at run time are used: ``Elemwise`` and the batch dimensions of
``Blockwise`` (no runtime broadcasting), the core dimensions that one letter names in the
signature of a ``Blockwise`` or of a core op (``Cholesky``: ``(m,m)->(m,m)``), the axes
that ``DimShuffle`` moves, ``Subtensor`` takes whole and reductions keep, the axes of
shape-preserving ops (``Softmax``, ``CumOp``, ``IncSubtensor``, ...), ``Join``'s
non-joined axes, the matched dimensions of ``Dot`` and ``BatchedDot``, the sizes ``Alloc``
and ``AllocEmpty`` take from ``Shape_i``, and a ``Scan``'s steps: a sequence's entries
(its rows), a recurrent state and the value each step writes into it, and a non-sequence
are the same inside the inner graph as outside, whose own rules then apply.
Dimensions PyTensor cannot prove equal keep their own names.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

from pytensor.graph.basic import Apply, Constant, Variable, clone_get_equiv
from pytensor.graph.fg import FunctionGraph
from pytensor.scan.op import Scan
from pytensor.tensor import subtensor
from pytensor.tensor.basic import Alloc, AllocEmpty, Join
from pytensor.tensor.blas import BatchedDot
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from pytensor.tensor.extra_ops import CumOp
from pytensor.tensor.math import Argmax, Dot
from pytensor.tensor.shape import Shape_i, SpecifyShape
from pytensor.tensor.special import LogSoftmax, Softmax
from pytensor.tensor.type import TensorType
from pytensor.tensor.utils import _parse_gufunc_signature

from pytensor_onnx.dispatch.basic import optional_classes, thaw

#: A dimension: a variable and an axis.
Dim = tuple[Variable, int]


class _Size(int):
    """A static size as a member of a class of dimensions."""


class _Classes:
    """Union-find over dimensions; a static size is a member, so dimensions tied to the
    same size join one class."""

    def __init__(self) -> None:
        self._parent: dict[Hashable, Hashable] = {}

    def find(self, key: Hashable) -> Hashable:
        parent = self._parent.setdefault(key, key)
        if parent != key:
            parent = self._parent[key] = self.find(parent)
        return parent

    def union(self, keys: Iterable[Hashable]) -> None:
        roots = [self.find(key) for key in keys]
        for root in roots[1:]:
            self._parent[root] = roots[0]

    def union_dims(self, dims: Iterable[Dim]) -> None:
        """Join ``dims`` (tensor dimensions), each with its static size if it has one."""
        keys: list[Hashable] = []
        for var, axis in dims:
            keys.append((var, axis))
            size = var.type.shape[axis]
            if size is not None:
                keys.append(_Size(size))
        self.union(keys)

    def sizes(self) -> dict[Hashable, int]:
        """The static size of each class that has one, by its root."""
        return {self.find(key): int(key) for key in self._parent if isinstance(key, _Size)}


def _elementwise(
    classes: _Classes, inputs: Sequence[Variable], outputs: Sequence[Variable], ndim: int
) -> None:
    """The first ``ndim`` axes of ``inputs`` and ``outputs`` broadcast without runtime
    broadcasting: per axis, the inputs not statically of size 1 and the outputs are equal."""
    for axis in range(ndim):
        dims = [(var, axis) for var in inputs if var.type.shape[axis] != 1]
        classes.union_dims([*dims, *((out, axis) for out in outputs)])


def _blockwise(classes: _Classes, node: Apply) -> None:
    op = node.op
    batch = node.outputs[0].type.ndim - len(op.outputs_sig[0])
    _elementwise(classes, node.inputs, node.outputs, batch)
    _signature(classes, node, [*op.inputs_sig, *op.outputs_sig], batch)


def _core(classes: _Classes, node: Apply, signature: str) -> None:
    """A core op with a gufunc signature (``Cholesky``'s ``(m,m)->(m,m)``), applied to
    values of exactly the signature's ranks."""
    inputs_sig, outputs_sig = _parse_gufunc_signature(signature)
    sigs = [*inputs_sig, *outputs_sig]
    variables = [*node.inputs, *node.outputs]
    if len(sigs) == len(variables) and all(
        var.type.ndim == len(sig) for sig, var in zip(sigs, variables, strict=True)
    ):
        _signature(classes, node, sigs, 0)


def _signature(
    classes: _Classes, node: Apply, signatures: Sequence[Sequence[str]], batch: int
) -> None:
    """The core dimensions that one letter of a signature names are equal (after ``batch``
    leading batch dimensions)."""
    letters: dict[str, list[Dim]] = {}
    for signature, var in zip(signatures, [*node.inputs, *node.outputs], strict=True):
        for position, letter in enumerate(signature):
            if letter.isidentifier():
                letters.setdefault(letter, []).append((var, batch + position))
    for dims in letters.values():
        classes.union_dims(dims)


def _join(classes: _Classes, node: Apply) -> None:
    axis = getattr(node.op, "axis", None)
    tensors = list(node.inputs)
    if axis is None:  # PyTensor 2.x: the axis is the first input
        first = tensors.pop(0)
        if not isinstance(first, Constant):
            return
        axis = int(first.data)
    out = node.outputs[0]
    axis %= out.type.ndim
    for other in range(out.type.ndim):
        if other != axis:
            classes.union_dims([(var, other) for var in [*tensors, out]])


def _dot(classes: _Classes, node: Apply) -> None:
    x, y = node.inputs
    out = node.outputs[0]
    if not (1 <= x.type.ndim <= 2 and 1 <= y.type.ndim <= 2):
        return
    classes.union_dims([(x, x.type.ndim - 1), (y, 0)])
    if x.type.ndim == 2:
        classes.union_dims([(x, 0), (out, 0)])
    if y.type.ndim == 2:
        classes.union_dims([(y, 1), (out, out.type.ndim - 1)])


def _batched_dot(classes: _Classes, node: Apply) -> None:
    x, y = node.inputs
    out = node.outputs[0]
    if not x.type.ndim == y.type.ndim == out.type.ndim == 3:
        return
    classes.union_dims([(x, 0), (y, 0), (out, 0)])
    classes.union_dims([(x, 2), (y, 1)])
    classes.union_dims([(x, 1), (out, 1)])
    classes.union_dims([(y, 2), (out, 2)])


def _subtensor(classes: _Classes, node: Apply) -> None:
    """Axes taken whole (``:``) or not indexed keep their dimension."""
    inp, out = node.inputs[0], node.outputs[0]
    entries = list(node.op.idx_list)
    entries += [slice(None)] * (inp.type.ndim - len(entries))
    out_axis = 0
    for axis, entry in enumerate(entries):
        if isinstance(entry, slice):
            if entry == slice(None):
                classes.union_dims([(inp, axis), (out, out_axis)])
            out_axis += 1


def _reduction(classes: _Classes, node: Apply) -> None:
    """The axes a reduction keeps are the output's, in order."""
    inp, out = node.inputs[0], node.outputs[0]
    reduced = range(inp.type.ndim) if node.op.axis is None else node.op.axis
    kept = [axis for axis in range(inp.type.ndim) if axis not in reduced]
    for out_axis, axis in enumerate(kept):
        classes.union_dims([(inp, axis), (out, out_axis)])


def _value(var: Variable) -> Hashable:
    """The key of a scalar integer's value, as a member of a class of dimensions."""
    return ("value", var)


def _steps(classes: _Classes, outer: Variable, inners: Iterable[Variable]) -> None:
    """Each of ``inners`` is one step's entry of ``outer`` (its axes are ``outer``'s after
    the first)."""
    for inner in inners:
        for axis in range(inner.type.ndim):
            classes.union_dims([(outer, axis + 1), (inner, axis)])


def _same_dims(classes: _Classes, variables: Sequence[Variable]) -> None:
    for axis in range(variables[0].type.ndim):
        classes.union_dims([(var, axis) for var in variables])


def _scan(classes: _Classes, node: Apply) -> None:
    """A ``Scan``'s outer values and their entries in a copy of its inner graph with inputs
    of its own (PyTensor's inner graphs share their nominal input variables, PyTensor 3
    freezes them, and one op may serve several nodes), whose own dimensions are then tied
    by the same rules.

    A recurrent state's new value has the state's shape (PyTensor refuses an inner graph
    whose state and new value have incompatible types).  Gradient scans' mit-mot outputs
    are left alone.
    """
    op, info = node.op, node.op.info
    graph = thaw(op.fgraph)
    inner_in = [var.type() for var in graph.inputs]
    copies = clone_get_equiv(
        graph.inputs,
        graph.outputs,
        copy_inputs=False,
        memo=dict(zip(graph.inputs, inner_in, strict=True)),
    )
    inner_out = [copies[var] for var in graph.outputs]
    for outer, seq in zip(op.outer_seqs(node.inputs), op.inner_seqs(inner_in), strict=True):
        _steps(classes, outer, [seq])
    taps = iter([*op.inner_mitsot(inner_in), *op.inner_sitsot(inner_in)])
    slices = [*info.mit_sot_in_slices, *info.sit_sot_in_slices]
    states = zip(
        [*op.outer_mitsot(node.inputs), *op.outer_sitsot(node.inputs)],
        [*op.outer_mitsot_outs(node.outputs), *op.outer_sitsot_outs(node.outputs)],
        [*op.inner_mitsot_outs(inner_out), *op.inner_sitsot_outs(inner_out)],
        slices,
        strict=True,
    )
    for buffer, history, new, read in states:
        _same_dims(classes, [buffer, history])
        _steps(classes, buffer, [new, *(next(taps) for _ in read)])
    nit_sot = zip(op.outer_nitsot_outs(node.outputs), op.inner_nitsot_outs(inner_out), strict=True)
    for outer, new in nit_sot:
        _steps(classes, outer, [new])
    # An untraced state (no history) may change shape from step to step; the first step
    # reads the initial value and the last step gives the final one.
    untraced = zip(
        op.outer_untraced_sit_sot(node.inputs),
        op.inner_untraced_sit_sot(inner_in),
        op.inner_untraced_sit_sot_outs(inner_out),
        op.outer_untraced_sit_sot_outs(node.outputs),
        strict=True,
    )
    for initial, first, last, final in untraced:
        if isinstance(initial.type, TensorType):
            _same_dims(classes, [initial, first])
            _same_dims(classes, [last, final])
    non_seqs = zip(op.outer_non_seqs(node.inputs), op.inner_non_seqs(inner_in), strict=True)
    for outer, value in non_seqs:
        if isinstance(outer.type, TensorType):
            _same_dims(classes, [outer, value])
    for inner_node in copies.values():
        if isinstance(inner_node, Apply):
            _constrain(classes, inner_node)


#: Ops whose first output has the shape of their first input.
_SAME_SHAPE = (
    CumOp,
    LogSoftmax,
    Softmax,
    SpecifyShape,
    # AdvancedIncSubtensor1 was merged into AdvancedIncSubtensor in PyTensor 3.
    *optional_classes(subtensor, "IncSubtensor", "AdvancedIncSubtensor", "AdvancedIncSubtensor1"),
)


def _constrain(classes: _Classes, node: Apply) -> None:
    op = node.op
    if isinstance(op, Elemwise):
        _elementwise(classes, node.inputs, node.outputs, node.outputs[0].type.ndim)
    elif isinstance(op, Blockwise) and all(
        isinstance(var.type, TensorType) for var in [*node.inputs, *node.outputs]
    ):
        _blockwise(classes, node)
    elif (signature := getattr(op, "gufunc_signature", None)) and all(
        isinstance(var.type, TensorType) for var in [*node.inputs, *node.outputs]
    ):
        _core(classes, node, signature)
    elif isinstance(op, DimShuffle):
        (inp,), (out,) = node.inputs, node.outputs
        for axis, source in enumerate(op.new_order):
            if source != "x":
                classes.union_dims([(out, axis), (inp, source)])
    elif isinstance(op, Join):
        _join(classes, node)
    elif isinstance(op, Dot):
        _dot(classes, node)
    elif isinstance(op, BatchedDot):
        _batched_dot(classes, node)
    elif isinstance(op, subtensor.Subtensor):
        _subtensor(classes, node)
    elif isinstance(op, CAReduce | Argmax):
        _reduction(classes, node)
    elif isinstance(op, _SAME_SHAPE):
        _same_dims(classes, [node.inputs[0], node.outputs[0]])
    elif isinstance(op, Shape_i):
        classes.union([_value(node.outputs[0]), (node.inputs[0], op.i)])
    elif isinstance(op, Alloc | AllocEmpty):
        out = node.outputs[0]
        sizes = node.inputs[-out.type.ndim :] if out.type.ndim else []
        for axis, size in enumerate(sizes):
            classes.union_dims([(out, axis)])
            classes.union([(out, axis), _value(size)])
    elif isinstance(op, Scan):
        _scan(classes, node)


def input_dims(
    fgraph: FunctionGraph,
    inputs: Sequence[Variable],
    names: Sequence[str],
    fixed: Mapping[Variable, tuple[int, ...]],
) -> list[list[str | int]]:
    """The ONNX dimensions of ``inputs`` (inputs of ``fgraph`` named ``names``).

    A static size stays; a dimension of unknown size is the static size the graph ties it
    to (through static types or through the inputs of ``fixed`` shapes: the model's
    initializers), else the name of the first input dimension it must equal
    (``{name}_dim{axis}``, in input order), so equal dimensions share one name.
    """
    classes = _Classes()
    for node in fgraph.apply_nodes:  # the classes do not depend on the order
        _constrain(classes, node)
    for var, shape in fixed.items():
        for axis, size in enumerate(shape):
            classes.union([(var, axis), _Size(size)])
    named: dict[Hashable, str | int] = dict(classes.sizes())
    result: list[list[str | int]] = []
    for var, name in zip(inputs, names, strict=True):
        dims: list[str | int] = []
        for axis, size in enumerate(getattr(var.type, "shape", ())):
            if size is not None:
                dims.append(size)
                continue
            root = classes.find((var, axis))
            dims.append(named.setdefault(root, f"{name}_dim{axis}"))
        result.append(dims)
    return result
