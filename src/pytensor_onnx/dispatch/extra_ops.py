"""Converters for ``pytensor.tensor.extra_ops``.

* ``CumOp``: cumsum is ONNX ``CumSum``; ONNX has no cumulative product, so cumprod is a
  log-depth (Hillis-Steele) scan: ``ceil(log2 n)`` rounds of ``y *= shift(y, 2**r)``, the shift
  being a ``Gather`` of the rows ``2**r`` places back along the (transposed-to-front) axis,
  and ones before the start.  With ``portable=False`` it is a ``Pad`` with ones and a
  ``Slice``, 1.3-1.5x faster in ONNX Runtime for unknown lengths (measured on 10^6
  entries), but tract cannot pad by an amount known only at run time.  Each element is still the
  product of exactly its prefix (signs, zeros, inf and NaN behave as in NumPy); only the
  rounding order differs.
* ``SearchsortedOp``: a vectorized bisection (``ceil(log2(n + 1))`` rounds of ``Gather`` and a
  NaN-aware comparison, NaN sorting last as in NumPy).
* ``Unique``: ONNX ``Unique`` with ``sorted=1`` (flattened or along an axis).
* ``UnravelIndex`` / ``RavelMultiIndex``: integer ``Mod``/``Div`` and a dot with the strides;
  mode ``raise`` makes the run fail on an index out of range (as ``CheckAndRaise`` does).
* ``FillDiagonal`` / ``FillDiagonalOffset``: a ``Where`` on an index-equality mask.
* ``Repeat`` (vector repeats): a ``Gather`` with source indices from a scatter and a running sum.
* ``Bartlett``: NumPy's triangular window ``1 - |2k - (M - 1)| / (M - 1)`` for ``k < M`` (float64),
  ``[1]`` for ``M == 1`` (dividing by ``max(M - 1, 1)``) and empty for ``M < 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast
from pytensor.tensor import extra_ops

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch._loop import Carry, fori_loop
from pytensor_onnx.dispatch._numerics import work_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify
from pytensor_onnx.dispatch.linalg import Size
from pytensor_onnx.dispatch.raise_op import fail_unless
from pytensor_onnx.dispatch.tensor_basic import expand

Values = Sequence[ir.Value]

INT64_MAX = int(np.iinfo(np.int64).max)


# --------------------------------------------------------------------------- CumOp
def _arange(builder: ONNXBuilder, n: ir.Value) -> ir.Value:
    """``[0, 1, ..., n-1]`` (int64) for a 0-d int64 ``n``."""
    return builder.op("Range", [builder.scalar(0, "int64"), n, builder.scalar(1, "int64")])


def _halving_rounds(builder: ONNXBuilder, length: ir.Value, static: int | None) -> Size:
    """``ceil(log2(n + 1))`` (the rounds a doubling scan or a bisection over ``n`` elements
    needs, or one more at some powers of two, which is harmless) as a loop count.

    ``length`` is ``n`` as a 1-element int64 tensor; ``static`` its value if known.
    """
    if static is not None:
        rounds = int(np.ceil(np.log2(static + 1)))
        return Size(builder.scalar(rounds, "int64"), rounds, length, length)
    # In float64, or in float32 for float32-only exports: there the error of log2(n + 1), a
    # few float32 ulps of a value below 64 (under 2e-5), could make ceil fall one round
    # short just above a power of two; a margin of 1e-4 gives one more round instead.
    work = work_dtype(builder, "float32")
    n_plus_1 = builder.cast(builder.op("Add", [length, builder.int64s([1])]), work)
    log2 = builder.op("Div", [builder.op("Log", [n_plus_1]), builder.scalar(np.log(2.0), work)])
    if work != "float64":
        log2 = builder.op("Add", [log2, builder.scalar(1e-4, work)])
    rounds_value = builder.op(
        "Squeeze", [builder.cast(builder.op("Ceil", [log2]), "int64"), builder.int64s([0])]
    )
    return Size(rounds_value, None, length, length)


def cumprod(
    builder: ONNXBuilder,
    x: ir.Value,
    axis: int,
    dtype: str,
    static_length: int | None,
    *,
    rank: int,
) -> ir.Value:
    """Cumulative product of ``x`` (of rank ``rank``) along ``axis`` by a log-depth scan (see
    module docs)."""
    axis %= rank
    portable = builder.portable
    if portable and axis != 0:
        # The portable shift gathers along the axis: whole rows along the first axis are
        # fast copies in ONNX Runtime, single entries along a later axis are not.
        perm = [axis, *(d for d in range(rank) if d != axis)]
        moved = builder.op("Transpose", [x], {"perm": perm})
        result = cumprod(builder, moved, 0, dtype, static_length, rank=rank)
        return builder.op("Transpose", [result], {"perm": [int(d) for d in np.argsort(perm)]})
    length = builder.dim(x, axis)
    count = _halving_rounds(builder, length, static_length)
    one = builder.scalar(1, dtype)

    def step(body: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        [y] = state
        # Round k multiplies by the entries 2**k places back (a table: no carried shift).
        shift = body.op("Gather", [body.int64s([2**j for j in range(63)]), k])
        # The length from the body's own value: nothing to pass in from the enclosing graph.
        if not portable:
            # Ones padded in front, then the first `length` entries; pads over every axis
            # (ONNXBuilder.axis_pads: an axes input breaks ONNX Runtime).
            pads = body.axis_pads(rank, axis, body.op("Reshape", [shift, body.int64s([1])]), 0)
            padded = body.typed_op("Pad", [y, pads, one], dtype, data=[0, 2])
            axes = body.int64s([axis])
            shifted = body.op("Slice", [padded, body.int64s([0]), body.dim(y, axis), axes])
            return [body.op("Mul", [y, shifted])]
        # Entry i reads entry i - shift, or 1 before the start: a Gather keeps y's shape
        # (tract needs constant Pad amounts and static Slice lengths).
        length = body.op("Squeeze", [body.dim(y, 0), body.int64s([0])])
        source = body.op("Sub", [_arange(body, length), shift])
        before = body.op("Less", [source, body.scalar(0, "int64")])
        index = body.op("Max", [source, body.scalar(0, "int64")])
        shifted = body.op("Gather", [y, index], {"axis": 0})
        if rank > 1:
            before = body.op("Unsqueeze", [before, body.int64s(list(range(1, rank)))])
        ones_before = body.typed_op("Where", [before, one, shifted], dtype, data=[1, 2])
        return [body.op("Mul", [y, ones_before])]

    # Any count: a step on an empty axis reads nothing.
    [result], _ = fori_loop(builder, count, [Carry(x, dtype)], [], step, "cumprod", any_count=True)
    return result


@onnx_funcify.register(extra_ops.CpuContiguous)
def _cpu_contiguous(op: extra_ops.CpuContiguous, node: Apply, builder: ONNXBuilder) -> Values:
    # A C-contiguous copy: ONNX tensors have no memory layout, the value is the input's.
    return [builder.input(node, 0)]


@onnx_funcify.register(extra_ops.CumOp)
def _cumop(op: extra_ops.CumOp, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    accumulates = str(np.cumsum(np.zeros(1, variable_dtype(node.inputs[0]))).dtype)
    if accumulates != dtype:
        # bool and integers narrower than int64: PyTensor declares the input's dtype, its C
        # code computes in it (wrapping; a cumsum of bools stays bool), its Python and Numba
        # code return NumPy's int64 counts.  No single answer is right: refuse.
        name = "cumsum" if op.mode == "add" else "cumprod"
        raise UnsupportedOpError.for_node(
            node,
            f"{name} of {variable_dtype(node.inputs[0])} is "
            f"declared {dtype}, but PyTensor's Python and Numba backends return {accumulates} "
            f"(its C backend {dtype}): cast the input first, e.g. "
            f"pt.{name}(x.astype('{accumulates}'))",
        )
    x = builder.input(node, 0, dtype)
    axis = op.axis
    rank = node.inputs[0].type.ndim
    if axis is None:  # flattened (PyTensor 2 may keep axis=None in the Op)
        x = builder.op("Reshape", [x, builder.int64s([-1])])
        axis, rank = 0, 1
        shape = node.inputs[0].type.shape
        static = None if None in shape else int(np.prod(shape))
    else:
        static = node.inputs[0].type.shape[axis]
    if op.mode == "add":
        return [builder.typed_op("CumSum", [x, builder.scalar(axis, "int64")], dtype, data=[0])]
    return [cumprod(builder, x, axis, dtype, static, rank=rank)]


# ---------------------------------------------------------------------- searchsorted
def _ordered_before(builder: ONNXBuilder, a: ir.Value, b: ir.Value, dtype: str) -> ir.Value:
    """``a < b`` in NumPy's sort order (NaN after everything else)."""
    less = builder.typed_op("Less", [a, b], dtype, cast_back=False)
    if np.dtype(dtype).kind != "f":
        return less
    b_nan_only = builder.op(
        "And", [builder.op("IsNaN", [b]), builder.op("Not", [builder.op("IsNaN", [a])])]
    )
    return builder.op("Or", [less, b_nan_only])


def search_sorted(
    builder: ONNXBuilder,
    x: ir.Value,
    v: ir.Value,
    *,
    side: str,
    dtype: str,
    static_length: int | None,
) -> ir.Value:
    """NumPy's ``searchsorted(x, v, side)`` for a sorted 1-D ``x`` (int64, ``v``'s shape).

    A vectorized bisection: every value keeps an interval ``[lo, hi)`` of insertion points,
    halved ``ceil(log2(n + 1))`` times (unrolled for short static lengths, else a Loop).
    ``x`` and ``v`` are in ``dtype``; ``static_length`` is ``len(x)`` if known.
    """
    length = builder.dim(x, 0)
    n = builder.op("Squeeze", [length, builder.int64s([0])])
    last_index = builder.op("Sub", [n, builder.scalar(1, "int64")])
    zeros = builder.op("Expand", [builder.scalar(0, "int64"), builder.shape(v)])
    state = [Carry(zeros, "int64"), Carry(builder.op("Add", [zeros, n]), "int64")]

    def step(body: ONNXBuilder, k: ir.Value, bounds: list[ir.Value]) -> list[ir.Value]:
        lo, hi = bounds
        active = body.op("Less", [lo, hi])
        mid = body.op("Div", [body.op("Add", [lo, hi]), body.scalar(2, "int64")])
        # mid == n only for finished values (lo == hi == n): clamp to keep Gather in range.
        pivot = body.op("Gather", [x, body.op("Min", [mid, last_index])])
        if side == "left":
            go_right = _ordered_before(body, pivot, v, dtype)
        else:
            go_right = body.op("Not", [_ordered_before(body, v, pivot, dtype)])
        right = body.op("And", [active, go_right])
        left = body.op("And", [active, body.op("Not", [go_right])])
        new_lo = body.op("Where", [right, body.op("Add", [mid, body.scalar(1, "int64")]), lo])
        return [new_lo, body.op("Where", [left, mid, hi])]

    count = _halving_rounds(builder, length, static_length)
    [lo, _], _ = fori_loop(builder, count, state, [], step, "searchsorted")
    return lo


@onnx_funcify.register(extra_ops.SearchsortedOp)
def _searchsorted(op: extra_ops.SearchsortedOp, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = upcast(variable_dtype(node.inputs[0]), variable_dtype(node.inputs[1]))
    x = builder.input(node, 0, dtype)
    if len(node.inputs) == 3:
        x = builder.op("Gather", [x, builder.input(node, 2, "int64")])
    v = builder.input(node, 1, dtype)
    static = node.inputs[0].type.shape[0]
    return [search_sorted(builder, x, v, side=op.side, dtype=dtype, static_length=static)]


# ---------------------------------------------------------------------------- Unique
#: Integer dtypes ONNX Runtime has no Unique kernel for, computed exactly in int64.
_UNIQUE_AS_INT64 = frozenset({"bool", "int16", "int32", "uint8", "uint16", "uint32"})


def _unique_flat(builder: ONNXBuilder, x: ir.Value, dtype: str) -> list[ir.Value]:
    """``np.unique`` of a 1-D ``x`` with index, inverse and counts, from a stable sort.

    ONNX Runtime's ``Unique`` mishandles NaN (measured: it returns a single NaN for any
    input holding one); NumPy sorts NaNs last and counts them as one value.
    """
    from pytensor_onnx.dispatch.sort import sort_along

    values, order = sort_along(builder, x, dtype, 0)
    n = builder.dim(x, 0)
    tail = builder.op("Slice", [values, builder.int64s([1]), builder.int64s([INT64_MAX])])
    head = builder.op("Slice", [values, builder.int64s([0]), builder.int64s([-1])])
    differs = builder.op("Not", [builder.typed_op("Equal", [tail, head], dtype, cast_back=False)])
    if np.dtype(dtype).kind == "f":
        both_nan = builder.op("And", [builder.op("IsNaN", [tail]), builder.op("IsNaN", [head])])
        differs = builder.op("And", [differs, builder.op("Not", [both_nan])])
    # The first sorted element starts a group (when there is one).
    first = builder.op("Greater", [n, builder.int64s([0])])
    starts_group = builder.op(
        "Slice", [builder.op("Concat", [first, differs], {"axis": 0}), builder.int64s([0]), n]
    )
    unique = builder.op("Compress", [values, starts_group], {"axis": 0})
    first_index = builder.op("Compress", [order, starts_group], {"axis": 0})
    group = builder.op(
        "Sub",
        [
            builder.op(
                "CumSum", [builder.cast(starts_group, "int64", "bool"), builder.scalar(0, "int64")]
            ),
            builder.scalar(1, "int64"),
        ],
    )
    inverse = builder.op("ScatterElements", [group, order, group])
    starts = builder.op("Reshape", [builder.op("NonZero", [starts_group]), builder.int64s([-1])])
    ends = builder.op(
        "Concat",
        [builder.op("Slice", [starts, builder.int64s([1]), builder.int64s([INT64_MAX])]), n],
        {"axis": 0},
    )
    counts = builder.op("Sub", [ends, starts])
    return [unique, first_index, inverse, counts]


@onnx_funcify.register(extra_ops.Unique)
def _unique(op: extra_ops.Unique, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.inputs[0])
    x = builder.input(node, 0)
    if op.axis is None:
        x = builder.op("Reshape", [x, builder.int64s([-1])])
        values, first, inverse, counts = _unique_flat(builder, x, dtype)
    else:
        if np.dtype(dtype).kind == "f" or dtype == "uint64":
            raise UnsupportedOpError.for_node(
                node,
                f"unique along an axis of {dtype} data: ONNX Runtime's Unique mishandles NaN "
                "(and has no uint64 kernel); use axis=None or integer data",
            )
        key = builder.cast(x, "int64", dtype) if dtype in _UNIQUE_AS_INT64 else x
        attributes = {"sorted": 1, "axis": int(op.axis)}
        values, first, inverse, counts = builder.op_multi(
            "Unique", [key], attributes, num_outputs=4
        )
        values = builder.cast(values, dtype, "int64") if key is not x else values
    outputs = [values]
    if op.return_index:
        outputs.append(first)
    if op.return_inverse:
        outputs.append(inverse)
    if op.return_counts:
        outputs.append(counts)
    return outputs


# ------------------------------------------------------------- (un)ravel multi-index
def _dims(builder: ONNXBuilder, node: Apply, index: int) -> list[ir.Value]:
    """The entries of the 1-D dims input ``node.inputs[index]`` as 0-d int64 values."""
    dims = builder.input(node, index, "int64")
    n = node.inputs[index].type.shape[0]
    if n is None:
        raise UnsupportedOpError.for_node(node, "the number of dims must be known when exporting")
    return [builder.op("Gather", [dims, builder.scalar(i, "int64")]) for i in range(n)]


@onnx_funcify.register(extra_ops.UnravelIndex)
def _unravel_index(op: extra_ops.UnravelIndex, node: Apply, builder: ONNXBuilder) -> Values:
    dims = _dims(builder, node, 1)
    flat = builder.input(node, 0, "int64")
    order = range(len(dims) - 1, -1, -1) if op.order == "C" else range(len(dims))
    coords: dict[int, ir.Value] = {}
    for i in order:
        coords[i] = builder.op("Mod", [flat, dims[i]])
        flat = builder.op("Div", [flat, dims[i]])
    dtype = variable_dtype(node.outputs[0])
    return [builder.cast(coords[i], dtype, "int64") for i in range(len(dims))]


@onnx_funcify.register(extra_ops.RavelMultiIndex)
def _ravel_multi_index(op: extra_ops.RavelMultiIndex, node: Apply, builder: ONNXBuilder) -> Values:
    n_index = len(node.inputs) - 1
    dims = _dims(builder, node, n_index)
    modes = [op.mode] * n_index if isinstance(op.mode, str) else list(op.mode)
    zero = builder.scalar(0, "int64")
    indices = []
    for i in range(n_index):
        index = builder.input(node, i, "int64")
        if modes[i] == "wrap":
            index = builder.op("Mod", [index, dims[i]])
        elif modes[i] == "clip":
            top = builder.op("Sub", [dims[i], builder.scalar(1, "int64")])
            index = builder.op("Max", [builder.op("Min", [index, top]), zero])
        else:  # "raise": an index outside [0, dim) fails the run, as NumPy raises
            outside = builder.op(
                "Or",
                [builder.op("Less", [index, zero]), builder.op("GreaterOrEqual", [index, dims[i]])],
            )
            bad = builder.op("ReduceSum", [builder.cast(outside, "int64", "bool")], {"keepdims": 0})
            index = fail_unless(builder, builder.op("Equal", [bad, zero]), index)
        indices.append(index)
    order = range(n_index) if op.order == "C" else range(n_index - 1, -1, -1)
    flat: ir.Value | None = None
    for i in order:
        flat = (
            indices[i]
            if flat is None
            else builder.op("Add", [builder.op("Mul", [flat, dims[i]]), indices[i]])
        )
    assert flat is not None
    return [flat]


# ------------------------------------------------------------------- fill_diagonal
def _fill_where(builder: ONNXBuilder, node: Apply, mask: ir.Value) -> ir.Value:
    dtype = variable_dtype(node.outputs[0])
    a = builder.input(node, 0)
    value = builder.input(node, 1, dtype)
    return builder.typed_op("Where", [mask, value, a], dtype, data=[1, 2])


def _axis_index(builder: ONNXBuilder, a: ir.Value, axis: int, ndim: int) -> ir.Value:
    """The index along ``axis`` of every element of ``a``, broadcastable to ``a``."""
    n = builder.axis_length(a, axis)
    index = _arange(builder, n)
    other = [d for d in range(ndim) if d != axis]
    return builder.op("Unsqueeze", [index, builder.int64s(other)]) if other else index


@onnx_funcify.register(extra_ops.FillDiagonal)
def _fill_diagonal(op: extra_ops.FillDiagonal, node: Apply, builder: ONNXBuilder) -> Values:
    a = builder.input(node, 0)
    ndim = node.inputs[0].type.ndim
    first = _axis_index(builder, a, 0, ndim)
    mask: ir.Value | None = None
    for axis in range(1, ndim):
        equal = builder.op("Equal", [first, _axis_index(builder, a, axis, ndim)])
        mask = equal if mask is None else builder.op("And", [mask, equal])
    assert mask is not None
    return [_fill_where(builder, node, mask)]


@onnx_funcify.register(extra_ops.FillDiagonalOffset)
def _fill_diagonal_offset(
    op: extra_ops.FillDiagonalOffset, node: Apply, builder: ONNXBuilder
) -> Values:
    a = builder.input(node, 0)
    rows = _axis_index(builder, a, 0, 2)
    cols = _axis_index(builder, a, 1, 2)
    offset = builder.input(node, 2, "int64")
    mask = builder.op("Equal", [builder.op("Sub", [cols, rows]), offset])
    return [_fill_where(builder, node, mask)]


# -------------------------------------------------------------------------- Repeat
@onnx_funcify.register(extra_ops.Repeat)
def _repeat(op: extra_ops.Repeat, node: Apply, builder: ONNXBuilder) -> Values:
    # Vector repeats (PyTensor rewrites scalar repeats to Alloc + Reshape).  Output position
    # t copies element #{j : ends[j] <= t} along the axis, ends being the running sum of the
    # repeats; the counts come from scattering a 1 at every end and a running sum, in
    # O(len(x) + len(output)) memory.
    x = builder.input(node, 0)
    size = builder.dim(x, op.axis)
    repeats = expand(builder, builder.input(node, 1, "int64"), 1, size, 1)
    ends = builder.op("CumSum", [repeats, builder.scalar(0, "int64")])
    total = builder.op("ReduceSum", [repeats, builder.int64s([0])], {"keepdims": 1})
    marks = builder.op(
        "ConstantOfShape",
        [builder.op("Add", [total, builder.int64s([1])])],
        {"value": ir.Tensor(np.zeros(1, dtype=np.int64))},
    )
    ones = builder.op("Expand", [builder.scalar(1, "int64"), size])
    marks = builder.op("ScatterElements", [marks, ends, ones], {"axis": 0, "reduction": "add"})
    counts = builder.op("CumSum", [marks, builder.scalar(0, "int64")])
    source = builder.op("Slice", [counts, builder.int64s([0]), total])
    return [builder.op("Gather", [x, source], {"axis": op.axis})]


# ------------------------------------------------------------------------ Bartlett
@onnx_funcify.register(extra_ops.Bartlett)
def _bartlett(op: extra_ops.Bartlett, node: Apply, builder: ONNXBuilder) -> Values:
    m = builder.input(node, 0, "int64")
    k = builder.cast(
        _arange(builder, builder.op("Max", [m, builder.scalar(0, "int64")])), "float64"
    )
    last = builder.cast(builder.op("Sub", [m, builder.scalar(1, "int64")]), "float64")
    twice_k = builder.op("Mul", [k, builder.scalar(2.0, "float64")])
    distance = builder.op("Abs", [builder.op("Sub", [twice_k, last])])
    # M == 1: the distance is 0 and so is M - 1; dividing by 1 instead gives NumPy's [1].
    scale = builder.op("Max", [last, builder.scalar(1.0, "float64")])
    return [
        builder.op("Sub", [builder.scalar(1.0, "float64"), builder.op("Div", [distance, scale])])
    ]
