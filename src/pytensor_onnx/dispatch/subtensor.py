"""Converters for ``pytensor.tensor.subtensor``: basic and advanced indexing, inc/set.

Every indexing Op is first turned into a list of :class:`_Item` (one per indexed axis of
the data after ``newaxis`` insertion), then :func:`index_tensor` builds the ONNX graph:

* slices become one ``Slice`` node (ONNX clamps out-of-range bounds like Python does, except
  a backwards slice starting before the first element, which is fixed up explicitly); in
  portable exports a slice with a step along an axis of unknown size is a ``Gather`` of its
  positions instead (tract slices such an axis with step 1 only);
* ``newaxis`` becomes ``Unsqueeze``;
* boolean masks become integer index arrays through ``NonZero``;
* a single integer index (scalar or array) is a ``Gather`` on its axis, which is NumPy's rule
  for where the indexed dims go (an array indexing a vector is a faster ``GatherElements``
  where every runtime runs it, see :func:`_take`); several index arrays are broadcast, the
  indexed axes are transposed to the front and taken with ``GatherND``, and the result dims
  are moved back to the first indexed axis when the advanced indices are consecutive (NumPy's
  placement rule); in portable exports ``GatherND`` and ``ScatterND`` get their indices
  counted from the start (tract aborts on negative ones).

Increments and assignments index an ``arange`` shaped like ``x`` with the same function to get
the flat position of every selected element, then scatter into the flattened ``x`` with
``ScatterND`` (``reduction="add"`` accumulates repeated indices like ``np.add.at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op
from pytensor.tensor import subtensor as pts
from pytensor.tensor.type_other import MakeSlice, NoneTypeT, SliceType

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import onnx_funcify, optional_classes

Values = Sequence[ir.Value]

INT64_MAX = int(np.iinfo(np.int64).max)
INT64_MIN = int(np.iinfo(np.int64).min)

#: A slice bound: absent, a Python int (constant) or a 0-d int64 ONNX value.
Bound = int | ir.Value | None


@dataclass(frozen=True)
class _Item:
    """The index of one data axis: a slice, an integer array (0-d for scalars) or a newaxis."""

    kind: str  # "slice", "array" or "newaxis"
    start: Bound = None
    stop: Bound = None
    step: Bound = None
    array: ir.Value | None = None
    ndim: int = 0

    @property
    def is_full_slice(self) -> bool:
        """Whether this is ``:`` (the axis is taken whole)."""
        return (
            self.kind == "slice"
            and self.start is None
            and self.stop is None
            and (self.step is None or self.step == 1)
        )


_FULL = _Item("slice")


# ---------------------------------------------------------------------------- parsing
def _python_index(op: Op, node: Apply, first: int) -> list[object]:
    """The index tuple of a ``*Subtensor*`` node: slices, ``None`` (newaxis) and variables."""
    op_indices = list(node.inputs[first:])
    idx_list = getattr(op, "idx_list", None)
    if idx_list is None:
        # PyTensor 2 AdvancedSubtensor(1) / AdvancedIncSubtensor(1): the inputs are the indices.
        entries: Sequence[object] = op_indices
    else:
        entries = pts.indices_from_subtensor(op_indices, idx_list)
    parsed: list[object] = []
    for entry in entries:
        if isinstance(entry, Variable) and isinstance(entry.type, NoneTypeT):
            parsed.append(None)
        elif isinstance(entry, Variable) and isinstance(entry.type, SliceType):
            if isinstance(entry, Constant):
                parsed.append(entry.data)
            elif entry.owner is not None and isinstance(entry.owner.op, MakeSlice):
                parsed.append(slice(*entry.owner.inputs))
            else:
                raise TypeError(f"cannot read the slice {entry} of node {node}")
        else:
            parsed.append(entry)
    return parsed


def _bound(builder: ONNXBuilder, field: object) -> Bound:
    """A slice bound as ``None``, a Python int (for constants) or a 0-d int64 value."""
    if field is None:
        return None
    if isinstance(field, Variable):
        if isinstance(field.type, NoneTypeT):
            return None
        if isinstance(field, Constant):
            return int(np.asarray(field.data))
        return builder.cast(builder.value(field), "int64", variable_dtype(field))
    return int(field)  # type: ignore[call-overload]


def _checked_mask(builder: ONNXBuilder, mask: ir.Value, dims: ir.Value, ndim: int) -> ir.Value:
    """``mask``, made to fail at run time unless its shape equals ``dims`` (1-D int64).

    NumPy and PyTensor raise IndexError for a mask that does not match the indexed axes;
    ONNX has no assertion, so the mask is reshaped to ``dims`` gathered at positions that are
    out of range (an ONNX Runtime error) wherever the shapes differ.
    """
    matches = builder.op("Equal", [builder.shape(mask), dims])
    positions = builder.op(
        "Where", [matches, builder.const(np.arange(ndim, dtype=np.int64)), builder.int64s([ndim])]
    )
    return builder.op("Reshape", [mask, builder.op("Gather", [dims, positions])])


def _items(builder: ONNXBuilder, x: ir.Value, index: Sequence[object]) -> list[_Item]:
    """Per-axis items for indexing ``x``; a k-d boolean mask becomes k integer arrays (the
    rows of its ``NonZero``)."""
    items: list[_Item] = []
    axis = 0  # the axis of x the next entry indexes
    for entry in index:
        if entry is None:
            items.append(_Item("newaxis"))
            continue
        if isinstance(entry, slice):
            items.append(
                _Item(
                    "slice",
                    _bound(builder, entry.start),
                    _bound(builder, entry.stop),
                    _bound(builder, entry.step),
                )
            )
            axis += 1
            continue
        assert isinstance(entry, Variable)
        dtype = variable_dtype(entry)
        value = builder.value(entry)
        ndim = entry.type.ndim if hasattr(entry.type, "ndim") else 0
        if dtype == "bool":
            dims = builder.op("Shape", [x], {"start": axis, "end": axis + ndim})
            nonzero = builder.op("NonZero", [_checked_mask(builder, value, dims, ndim)])
            for row in range(ndim):
                picked = builder.op("Gather", [nonzero, builder.scalar(row, "int64")])
                items.append(_Item("array", array=picked, ndim=1))
            axis += ndim
        else:
            items.append(_Item("array", array=builder.cast(value, "int64", dtype), ndim=ndim))
            axis += 1
    return items


# --------------------------------------------------------------------------- building
def _vector(builder: ONNXBuilder, entries: Sequence[int | ir.Value]) -> ir.Value:
    """A 1-D int64 tensor from Python ints and 0-d int64 values."""
    if all(isinstance(e, int) for e in entries):
        return builder.int64s(entries)  # type: ignore[arg-type]
    parts = [
        builder.int64s([e])
        if isinstance(e, int)
        else builder.op("Reshape", [e, builder.int64s([1])])
        for e in entries
    ]
    return parts[0] if len(parts) == 1 else builder.op("Concat", parts, {"axis": 0})


def _int64(builder: ONNXBuilder, value: int | ir.Value) -> ir.Value:
    """``value`` as a 0-d int64 value (a constant for a Python int)."""
    return builder.scalar(value, "int64") if isinstance(value, int) else value


def _by_step_sign(
    builder: ONNXBuilder, step: int | ir.Value, if_positive: int, if_negative: int
) -> int | ir.Value:
    """``if_positive`` or ``if_negative`` depending on the sign of ``step`` (in-graph if needed)."""
    if isinstance(step, int):
        return if_positive if step > 0 else if_negative
    is_negative = builder.op("Less", [step, builder.scalar(0, "int64")])
    return builder.op(
        "Where",
        [is_negative, builder.scalar(if_negative, "int64"), builder.scalar(if_positive, "int64")],
    )


def _slice_bounds(
    builder: ONNXBuilder, data: ir.Value, axis: int, item: _Item, dim: int | None
) -> tuple[int | ir.Value, int | ir.Value, int | ir.Value]:
    """ONNX ``Slice`` start/end/step with Python's meaning of ``item`` on ``axis``."""
    step: int | ir.Value = 1 if item.step is None else item.step
    positive = isinstance(step, int) and step > 0
    negative = isinstance(step, int) and step < 0
    start = _by_step_sign(builder, step, 0, INT64_MAX) if item.start is None else item.start
    stop = _by_step_sign(builder, step, INT64_MAX, INT64_MIN) if item.stop is None else item.stop
    # ONNX clamps a backwards start to [0, dim - 1]; Python gives an empty slice when the
    # start lies before the first element.  Make start = stop = 0 (empty) in that case.
    if positive or item.start is None or (isinstance(start, int) and start >= 0):
        return start, stop, step
    if isinstance(start, int) and dim is not None:
        before_first = start + dim < 0
        if not before_first:
            return start, stop, step
        if negative:
            return 0, 0, step
    dim_value = builder.axis_length(data, axis)
    start_value = _int64(builder, start)
    adjusted = builder.op("Add", [start_value, dim_value])
    bad = builder.op("Less", [adjusted, builder.scalar(0, "int64")])
    if not negative:
        step_value = _int64(builder, step)
        backwards = builder.op("Less", [step_value, builder.scalar(0, "int64")])
        bad = builder.op("And", [bad, backwards])
    zero = builder.scalar(0, "int64")
    stop_value = _int64(builder, stop)
    return (
        builder.op("Where", [bad, zero, start_value]),
        builder.op("Where", [bad, zero, stop_value]),
        step,
    )


def _strided_positions(builder: ONNXBuilder, data: ir.Value, axis: int, item: _Item) -> ir.Value:
    """The positions the slice ``item`` takes along ``axis`` of ``data``, from ``start`` by
    ``step`` towards ``stop``, with the bounds clamped as Python's ``slice.indices`` does
    (into ``[0, n]`` for a positive step, ``[-1, n - 1]`` for a negative one)."""
    zero = builder.scalar(0, "int64")
    n = builder.axis_length(data, axis)
    raw_step = item.step
    assert raw_step is not None
    step = _int64(builder, raw_step)
    lower = _int64(builder, _by_step_sign(builder, raw_step, 0, -1))
    upper = builder.op("Add", [n, lower])  # n or n - 1

    def clamped(bound: Bound, if_positive: ir.Value, if_negative: ir.Value) -> ir.Value:
        if bound is None:
            if isinstance(raw_step, int):
                return if_positive if raw_step > 0 else if_negative
            backwards = builder.op("Less", [step, zero])
            return builder.op("Where", [backwards, if_negative, if_positive])
        value = _int64(builder, bound)
        from_end = builder.op("Less", [value, zero])
        value = builder.op("Where", [from_end, builder.op("Add", [value, n]), value])
        return builder.op("Min", [builder.op("Max", [value, lower]), upper])

    start = clamped(item.start, lower, upper)
    stop = clamped(item.stop, upper, lower)
    # ceil((stop - start) / step) positions, start + step * Range(0, count): ONNX Runtime 1.32
    # rewrites a Gather of a Range that counts down to -1 into a Slice that takes nothing,
    # and tract 0.23 cannot size a Range that counts down.  A step of 0 (refused by
    # PyTensor) makes the Range's own step 0, an error, never an integer division by 0.
    toward_zero = _int64(builder, _by_step_sign(builder, raw_step, 1, -1))
    one = builder.scalar(1, "int64")
    if isinstance(raw_step, int):
        divisor, unit = step, one
    else:
        nonzero = builder.op("Not", [builder.op("Equal", [step, zero])])
        divisor = builder.op("Where", [nonzero, step, one])
        unit = builder.cast(nonzero, "int64", "bool")
    span = builder.op(
        "Sub", [builder.op("Add", [stop, step]), builder.op("Add", [start, toward_zero])]
    )
    count = builder.op("Max", [builder.op("Div", [span, divisor]), zero])
    offsets = builder.op("Mul", [builder.op("Range", [zero, count, unit]), step])
    return builder.op("Add", [offsets, start])


def _apply_slices(
    builder: ONNXBuilder, data: ir.Value, items: Sequence[_Item], shape: Sequence[int | None]
) -> ir.Value:
    """``data`` sliced by the slice ``items``: one ``Slice``, and in portable exports a
    ``Gather`` of the positions of each slice with a step along an axis of unknown size
    (tract slices such an axis with step 1 only)."""
    starts, stops, steps, axes = [], [], [], []
    strided: list[int] = []
    for axis, item in enumerate(items):
        if item.kind != "slice" or item.is_full_slice:
            continue
        if builder.portable and shape[axis] is None and item.step not in (None, 1):
            strided.append(axis)
            continue
        start, stop, step = _slice_bounds(builder, data, axis, item, shape[axis])
        starts.append(start)
        stops.append(stop)
        steps.append(step)
        axes.append(axis)
    if axes:
        data = builder.op(
            "Slice",
            [
                data,
                _vector(builder, starts),
                _vector(builder, stops),
                builder.int64s(axes),
                _vector(builder, steps),
            ],
        )
    for axis in strided:
        positions = _strided_positions(builder, data, axis, items[axis])
        data = builder.op("Gather", [data, positions], {"axis": axis})
    return data


def _nonnegative(builder: ONNXBuilder, positions: ir.Value, data: ir.Value, axis: int) -> ir.Value:
    """``positions`` along ``axis`` of ``data`` with negative ones counted from the end, in
    portable exports: tract aborts on negative ``GatherND``/``ScatterND`` indices (ONNX
    allows them).  A ``Gather`` of ``arange(n)``, since tract's ``Gather`` takes negative
    indices and it cannot evaluate an index computed from a shape (``i + n``); out-of-range
    positions still fail."""
    if not builder.portable:
        return positions
    length = builder.axis_length(data, axis)
    zero, one = builder.scalar(0, "int64"), builder.scalar(1, "int64")
    return builder.op("Gather", [builder.op("Range", [zero, length, one]), positions])


#: onnx.reference computes ``GatherElements`` with ``np.choose``, which takes at most 32
#: choices (64 with NumPy 2): the longest vector a portable export takes entries of that way.
_REFERENCE_CHOICES = 32


def _take(builder: ONNXBuilder, data: ir.Value, item: _Item, length: int | None) -> ir.Value:
    """Entries of the vector ``data`` (of static ``length``) at the index array ``item``: a
    ``Gather``, or a ``GatherElements`` of the flattened indices where every runtime runs
    it: ONNX Runtime 1.32 takes 11.7 ms per 10**6 indices in ``Gather`` and 0.70 ms in
    ``GatherElements`` (``benchmarks/bench_portable_ops.py``).  That is in exports with
    ``portable=False``, and in portable ones from vectors of at most
    :data:`_REFERENCE_CHOICES` entries, since ``onnx.reference`` fails on longer ones.
    """
    indices = item.array
    assert indices is not None
    short = length is not None and length <= _REFERENCE_CHOICES
    if builder.portable and not short:
        return builder.op("Gather", [data, indices], {"axis": 0})
    if item.ndim == 1:
        return builder.op("GatherElements", [data, indices], {"axis": 0})
    flat = builder.op("Reshape", [indices, builder.int64s([-1])])
    taken = builder.op("GatherElements", [data, flat], {"axis": 0})
    return builder.op("Reshape", [taken, builder.shape(indices)])


def _gather_arrays(
    builder: ONNXBuilder,
    data: ir.Value,
    arrays: list[tuple[int, _Item]],
    shape: Sequence[int | None],
) -> ir.Value:
    """Take the integer index arrays ``(axis, item)`` from ``data`` (of static ``shape``
    along the indexed axes) as NumPy does."""
    ndim = len(shape)
    if len(arrays) == 1 or all(item.ndim == 0 for _, item in arrays):
        # One index array (its dims replace its axis), or only scalars (each removes its
        # axis): plain Gathers, from the last axis so that earlier axes keep their numbers.
        for axis, item in sorted(arrays, key=lambda a: -a[0]):
            if ndim == 1 and item.ndim > 0:
                data = _take(builder, data, item, shape[0])
            else:
                data = builder.op("Gather", [data, item.array], {"axis": axis})
        return data
    axes = [axis for axis, _ in arrays]
    rest = [d for d in range(ndim) if d not in axes]
    if axes != list(range(len(axes))):
        data = builder.op("Transpose", [data], {"perm": axes + rest})
    values = [item.array for _, item in arrays if item.array is not None]
    values = [_nonnegative(builder, v, data, k) for k, v in enumerate(values)]
    total = values[0]
    for value in values[1:]:
        total = builder.op("Add", [total, value])
    common = builder.shape(total)
    last = builder.int64s([-1])
    stacked = builder.op(
        "Concat",
        [builder.op("Unsqueeze", [builder.op("Expand", [v, common]), last]) for v in values],
        {"axis": -1},
    )
    result = builder.op("GatherND", [data, stacked])
    index_ndim = max(item.ndim for _, item in arrays)
    consecutive = axes == list(range(axes[0], axes[0] + len(axes)))
    if consecutive and axes[0] > 0:
        first = axes[0]
        n_rest = len(rest)
        perm = (
            [index_ndim + i for i in range(first)]
            + list(range(index_ndim))
            + [index_ndim + i for i in range(first, n_rest)]
        )
        result = builder.op("Transpose", [result], {"perm": perm})
    return result


def index_tensor(
    builder: ONNXBuilder, x: ir.Value, shape: Sequence[int | None], items: Sequence[_Item]
) -> ir.Value:
    """``x[items]`` with NumPy's semantics (``shape`` is the static shape of ``x``)."""
    new_axes = [i for i, item in enumerate(items) if item.kind == "newaxis"]
    full_shape = list(shape)
    if new_axes:
        x = builder.op("Unsqueeze", [x, builder.int64s(new_axes)])
        for axis in new_axes:
            full_shape.insert(axis, 1)
    padded = [_FULL if item.kind == "newaxis" else item for item in items]
    padded += [_FULL] * (len(full_shape) - len(padded))
    x = _apply_slices(builder, x, padded, full_shape)
    arrays = [(axis, item) for axis, item in enumerate(padded) if item.kind == "array"]
    if not arrays:
        return x
    return _gather_arrays(builder, x, arrays, full_shape)


def _scatter(
    builder: ONNXBuilder,
    target: ir.Value,
    positions: ir.Value,
    updates: ir.Value,
    *,
    set_instead_of_inc: bool,
    may_repeat: bool,
    accumulate: bool,
) -> ir.Value:
    """Write ``updates`` (shape ``positions.shape + target.shape[1:]``) into the slices
    ``target[positions]`` (int64 positions along the first axis, negative allowed).

    Increments of a vector are a ``ScatterElements`` of the flattened positions, which every
    runtime runs with negative ones: 1.5x faster than ``ScatterND`` in ONNX Runtime 1.32,
    and the positions need not be counted from the start for tract."""
    add = not set_instead_of_inc and (accumulate or not may_repeat)
    if add and target.shape is not None and len(target.shape) == 1:
        if positions.shape is None or len(positions.shape) != 1:
            positions = builder.op("Reshape", [positions, builder.int64s([-1])])
            updates = builder.op("Reshape", [updates, builder.int64s([-1])])
        positions = builder.op("Expand", [positions, builder.shape(updates)])
        return builder.op(
            "ScatterElements", [target, positions, updates], {"axis": 0, "reduction": "add"}
        )
    positions = _nonnegative(builder, positions, target, 0)
    index = builder.op("Unsqueeze", [positions, builder.int64s([-1])])
    if add:
        return builder.op("ScatterND", [target, index, updates], {"reduction": "add"})
    if not may_repeat:
        return builder.op("ScatterND", [target, index, updates])
    # Repeated positions: the last update wins, as in NumPy.  Find, per position, the largest
    # update number writing there, and let every writer write that value, so that the
    # (unspecified) order of ScatterND's writes does not matter.
    flat_positions = builder.op("Reshape", [positions, builder.int64s([-1])])
    n_updates = builder.op("Size", [flat_positions])
    row_shape = builder.op("Shape", [target], {"start": 1})
    # The row count, not -1: ONNX Runtime refuses -1 next to a 0-length row.
    rows_shape = builder.op(
        "Concat", [builder.op("Reshape", [n_updates, builder.int64s([1])]), row_shape], {"axis": 0}
    )
    rows = builder.op("Reshape", [updates, rows_shape], {"allowzero": 1})
    if not set_instead_of_inc:  # ignore_duplicates: x[idx] = x[idx] + y
        rows = builder.op("Add", [builder.op("Gather", [target, flat_positions]), rows])
    order = builder.op("Range", [builder.scalar(0, "int64"), n_updates, builder.scalar(1, "int64")])
    none = builder.op("Expand", [builder.scalar(-1, "int64"), builder.dim(target, 0)])
    flat_index = builder.op("Unsqueeze", [flat_positions, builder.int64s([-1])])
    last = builder.op("ScatterND", [none, flat_index, order], {"reduction": "max"})
    winner = builder.op("Gather", [last, flat_positions])
    rows = builder.op("Gather", [rows, winner])
    return builder.op("ScatterND", [target, flat_index, rows])


def _update(
    builder: ONNXBuilder,
    node: Apply,
    items: Sequence[_Item],
    *,
    set_instead_of_inc: bool,
    may_repeat: bool,
    accumulate: bool = True,
) -> ir.Value:
    """``x[items] = y`` or ``x[items] += y`` for a node with inputs ``(x, y, ...)``.

    Parameters
    ----------
    may_repeat
        Whether the index can select an element more than once (advanced indexing).
    accumulate
        For increments: whether repeated indices accumulate (``np.add.at``) or the last one
        wins (``x[idx] += y``, PyTensor's ``ignore_duplicates``).
    """
    dtype = variable_dtype(node.outputs[0])
    ndim = node.inputs[0].type.ndim
    x = builder.input(node, 0)
    if any(0 in getattr(v.type, "shape", ()) for v in (node.inputs[0], *node.inputs[2:])):
        # x or an index array is statically empty: nothing is selected, x is the result.
        # (Broadcasting y to the empty selection is also what ONNX Runtime 1.32's
        # ExpandElimination drops as a no-op when the shape is a load-time constant: it takes
        # a target length 0 for 1, and the scatter then fails.)
        return x
    y = builder.input(node, 1, dtype)
    # y broadcasts against x[items]; leading length-1 dims of y beyond its rank are dropped.
    selected_ndim = _selected_ndim(ndim, items)
    extra = node.inputs[1].type.ndim - selected_ndim
    if extra > 0:
        y = builder.op("Squeeze", [y, builder.int64s(range(extra))])
    modes = {
        "set_instead_of_inc": set_instead_of_inc,
        "may_repeat": may_repeat,
        "accumulate": accumulate,
    }
    single = _single_array_axis(items)
    shape = builder.shape(x)
    if single is not None:
        # One index array with every other axis whole: scatter rows of x directly.
        axis, item = single
        assert item.array is not None
        k = item.ndim
        selected_shape = builder.op(
            "Concat",
            [
                builder.op("Shape", [x], {"start": 0, "end": axis}),
                builder.shape(item.array),
                builder.op("Shape", [x], {"start": axis + 1}),
            ],
            {"axis": 0},
        )
        updates = builder.op("Expand", [y, selected_shape])
        if axis == 0:
            return _scatter(builder, x, item.array, updates, **modes)
        perm = [axis, *(d for d in range(ndim) if d != axis)]
        update_perm = [*range(axis, axis + k), *range(axis), *range(axis + k, ndim - 1 + k)]
        moved = _scatter(
            builder,
            builder.op("Transpose", [x], {"perm": perm}),
            item.array,
            builder.op("Transpose", [updates], {"perm": update_perm}),
            **modes,
        )
        return builder.op("Transpose", [moved], {"perm": [int(d) for d in np.argsort(perm)]})
    # General case: the flat position of every selected element, from an arange shaped like x.
    flat_shape = builder.int64s([-1])
    size = builder.op("Size", [x])
    arange = builder.op("Range", [builder.scalar(0, "int64"), size, builder.scalar(1, "int64")])
    x_shape = tuple(getattr(node.inputs[0].type, "shape", ()))
    positions = index_tensor(
        builder, builder.op("Reshape", [arange, shape], {"allowzero": 1}), x_shape, items
    )
    updates = builder.op("Expand", [y, builder.shape(positions)])
    x_flat = builder.op("Reshape", [x, flat_shape])
    result = _scatter(builder, x_flat, positions, updates, **modes)
    return builder.op("Reshape", [result, shape], {"allowzero": 1})


def _single_array_axis(items: Sequence[_Item]) -> tuple[int, _Item] | None:
    """``(axis, item)`` if ``items`` hold one index array and otherwise only full slices."""
    arrays = [(axis, item) for axis, item in enumerate(items) if item.kind == "array"]
    if len(arrays) != 1 or any(item.kind != "array" and not item.is_full_slice for item in items):
        return None
    return arrays[0]


def _selected_ndim(ndim: int, items: Sequence[_Item]) -> int:
    """The rank of ``x[items]`` for ``x`` of rank ``ndim``."""
    arrays = [item for item in items if item.kind == "array"]
    consumed = sum(1 for item in items if item.kind != "newaxis")
    n_new = len(items) - consumed
    kept = ndim - len(arrays) + n_new
    return kept + max((item.ndim for item in arrays), default=0)


# --------------------------------------------------------------------------- converters
@onnx_funcify.register(pts.Subtensor)
@onnx_funcify.register(pts.AdvancedSubtensor)
def _subtensor(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    items = _items(builder, builder.input(node, 0), _python_index(op, node, 1))
    return [index_tensor(builder, builder.input(node, 0), node.inputs[0].type.shape, items)]


@onnx_funcify.register(pts.IncSubtensor)
@onnx_funcify.register(pts.AdvancedIncSubtensor)
def _inc_subtensor(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    items = _items(builder, builder.input(node, 0), _python_index(op, node, 2))
    advanced = not isinstance(op, pts.IncSubtensor)
    return [
        _update(
            builder,
            node,
            items,
            set_instead_of_inc=op.set_instead_of_inc,  # type: ignore[attr-defined]
            may_repeat=advanced,
            accumulate=not getattr(op, "ignore_duplicates", False),
        )
    ]


def _advanced_subtensor1(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    items = _items(builder, builder.input(node, 0), [node.inputs[1]])
    return [index_tensor(builder, builder.input(node, 0), node.inputs[0].type.shape, items)]


def _advanced_inc_subtensor1(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    items = _items(builder, builder.input(node, 0), [node.inputs[2]])
    return [
        _update(
            builder,
            node,
            items,
            set_instead_of_inc=op.set_instead_of_inc,  # type: ignore[attr-defined]
            may_repeat=True,
        )
    ]


# AdvancedSubtensor1 / AdvancedIncSubtensor1 exist in PyTensor 2 only.
for _cls in optional_classes(pts, "AdvancedSubtensor1"):
    onnx_funcify.register(_cls)(_advanced_subtensor1)
for _cls in optional_classes(pts, "AdvancedIncSubtensor1"):
    onnx_funcify.register(_cls)(_advanced_inc_subtensor1)


@onnx_funcify.register(MakeSlice)
def _make_slice(op: MakeSlice, node: Apply, builder: ONNXBuilder) -> Values:
    # Slices are not tensors: the indexing converters read MakeSlice's inputs directly.
    return [ir.Value(name=builder.names.claim("slice"))]
