"""Converters for ``pytensor.tensor.basic``: tensor construction, joins, splits and diagonals.

Shapes are computed in the graph (``Shape``/``Concat`` of int64 values), so every converter
here works with dims that are unknown at export time.  ``AllocDiag``, ``tri``/``tril``/``triu``,
``zeros_like``/``ones_like``/``fill``, ``broadcast_to`` and ``tile`` are rewritten by PyTensor
into the Ops converted here (``Alloc``, ``ARange``...) and elementwise Ops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op
from pytensor.tensor.basic import (
    Alloc,
    AllocEmpty,
    ARange,
    Choose,
    ExtractDiag,
    Eye,
    Join,
    MakeVector,
    Nonzero,
    PermuteRowElements,
    ScalarFromTensor,
    Split,
    TensorFromScalar,
)

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify
from pytensor_onnx.dispatch.shape import scalar_from_vector

Values = Sequence[ir.Value]

#: Dtypes ONNX ``Range`` has kernels and a definition for.
_RANGE_DTYPES = frozenset({"int16", "int32", "int64", "float32", "float64"})


@onnx_funcify.register(TensorFromScalar)
@onnx_funcify.register(ScalarFromTensor)
def _scalar_tensor(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor scalars are 0-d tensors in ONNX.
    return [builder.input(node, 0)]


# ---------------------------------------------------------------------------- helpers
def stack_scalars(builder: ONNXBuilder, scalars: Sequence[ir.Value]) -> ir.Value:
    """A 1-D tensor holding the 0-d values ``scalars`` (all of one dtype, at least one)."""
    axis0 = builder.int64s([0])
    items = [builder.op("Unsqueeze", [s, axis0]) for s in scalars]
    return items[0] if len(items) == 1 else builder.op("Concat", items, {"axis": 0})


def shape_from_inputs(builder: ONNXBuilder, node: Apply, indices: Sequence[int]) -> ir.Value:
    """The int64 shape vector made of the scalar inputs ``indices`` of ``node``."""
    if not indices:
        return builder.int64s([])
    return stack_scalars(builder, [builder.input(node, i, "int64") for i in indices])


def int64_range(builder: ONNXBuilder, start: ir.Value, stop: ir.Value) -> ir.Value:
    """``arange(start, stop)`` for 0-d int64 values ``start`` and ``stop``."""
    return builder.op("Range", [start, stop, builder.scalar(1, "int64")])


def static_int(var: Variable) -> int | None:
    """The value of a constant integer scalar ``var``, or ``None`` if it is not constant."""
    if isinstance(var, Constant):
        return int(np.asarray(var.data).item())
    return None


def _static_axis(op: Op, node: Apply, ndim: int) -> int:
    """The join/split axis: an Op property (PyTensor 3) or a constant input (PyTensor 2)."""
    axis = getattr(op, "axis", None)
    if axis is None:
        axis_var = node.inputs[1] if isinstance(op, Split) else node.inputs[0]
        axis = static_int(axis_var)
        if axis is None:
            raise UnsupportedOpError.for_node(
                node, "the axis is computed in the graph; ONNX needs it at export time"
            )
    return int(axis) % ndim


# ------------------------------------------------------------------------ construction
@onnx_funcify.register(MakeVector)
def _make_vector(op: MakeVector, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    if not node.inputs:
        return [builder.const(np.zeros(0, dtype=dtype))]
    return [stack_scalars(builder, builder.inputs(node, dtype))]


def expand(
    builder: ONNXBuilder, x: ir.Value, x_ndim: int, shape: ir.Value, length: int
) -> ir.Value:
    """``x`` (of rank ``x_ndim``) broadcast with the ``length``-element shape ``shape``.

    ONNX Runtime's ``ExpandElimination`` rewrite (1.32) removes an ``Expand`` whose constant
    target has no dim above 1 that differs from the input's, so a target dim of 0 is
    dropped: ``Expand`` of a ``(2, 1)`` value to ``(2, 0)`` returns the ``(2, 1)`` value.
    The rewrite never fires when the target has more dims than the input, so such targets
    get leading 1s, and the extra leading axis of the result is squeezed away.
    """
    if length > x_ndim:
        return builder.op("Expand", [x, shape])
    ones = builder.int64s([1] * (x_ndim - length + 1))
    padded = builder.op("Concat", [ones, shape], {"axis": 0})
    return builder.op("Squeeze", [builder.op("Expand", [x, padded]), builder.int64s([0])])


@onnx_funcify.register(Alloc)
def _alloc(op: Alloc, node: Apply, builder: ONNXBuilder) -> Values:
    value = builder.input(node, 0, variable_dtype(node.outputs[0]))
    shape = shape_from_inputs(builder, node, range(1, len(node.inputs)))
    # The value broadcasts to the shape (PyTensor checks it), so Expand's two-way
    # broadcasting gives exactly the requested shape.
    return [expand(builder, value, node.inputs[0].type.ndim, shape, len(node.inputs) - 1)]


@onnx_funcify.register(AllocEmpty)
def _alloc_empty(op: AllocEmpty, node: Apply, builder: ONNXBuilder) -> Values:
    # Uninitialized memory in PyTensor; zeros here.
    shape = shape_from_inputs(builder, node, range(len(node.inputs)))
    zero = ir.Tensor(np.zeros(1, dtype=op.dtype))
    return [builder.op("ConstantOfShape", [shape], {"value": zero})]


@onnx_funcify.register(ARange)
def _arange(op: ARange, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    in_dtypes = [variable_dtype(i) for i in node.inputs]
    if all(np.dtype(d).kind in "iu" for d in [dtype, *in_dtypes]):
        # Integer ranges are exact in int64, and ONNX Range's length rule
        # max(ceil((stop - start) / step), 0) is NumPy's.
        compute = dtype if dtype in _RANGE_DTYPES else "int64"
        result = builder.op("Range", builder.inputs(node, compute))
        return [builder.cast(result, dtype, compute)]
    return [_float_arange(builder, node, dtype)]


def _float_arange(builder: ONNXBuilder, node: Apply, dtype: str) -> ir.Value:
    """``numpy.arange`` as PyTensor calls it: Python (double) bounds, values in ``dtype``.

    NumPy takes the length ``ceil((stop - start) / step)`` in double precision, stores
    ``b0 = dtype(start)`` and ``b1 = dtype(start + step)``, and fills element ``i >= 2`` with
    ``b0 + i * (b1 - b0)`` computed in ``dtype``.  ONNX ``Range`` computes the length in the
    input dtype (different for float32) and accumulates, so the rule is rebuilt here.
    """
    start, stop, step = builder.inputs(node, "float64")
    span = builder.op("Div", [builder.op("Sub", [stop, start]), step])
    length = builder.op("Max", [builder.op("Ceil", [span]), builder.scalar(0.0, "float64")])
    # NumPy raises for a zero step or NaN/infinite bounds (a non-finite length); ONNX Range
    # raises for a zero delta, so the index range gets delta 0 there instead of a garbage
    # length from casting inf or NaN.
    finite = builder.op(
        "Not",
        [builder.op("Or", [builder.op("IsNaN", [length]), builder.is_inf(length, "float64")])],
    )
    index = builder.op(
        "Range",
        [
            builder.scalar(0, "int64"),
            builder.cast(length, "int64"),
            builder.cast(finite, "int64", "bool"),
        ],
    )
    compute = dtype if np.dtype(dtype).kind == "f" else "int64"
    first = builder.cast(start, compute, "float64")
    second = builder.cast(builder.op("Add", [start, step]), compute, "float64")
    delta = builder.op("Sub", [second, first])
    values = builder.op("Add", [first, builder.op("Mul", [builder.cast(index, compute), delta])])
    is_second = builder.op("Equal", [index, builder.scalar(1, "int64")])
    values = builder.op("Where", [is_second, second, values])
    return builder.cast(values, dtype, compute)


@onnx_funcify.register(Eye)
def _eye(op: Eye, node: Apply, builder: ONNXBuilder) -> Values:
    n, m, k = builder.inputs(node, "int64")
    zero = builder.scalar(0, "int64")
    rows = builder.op("Unsqueeze", [int64_range(builder, zero, n), builder.int64s([1])])
    cols = int64_range(builder, zero, m)
    on_diagonal = builder.op("Equal", [builder.op("Sub", [cols, rows]), k])
    return [builder.cast(on_diagonal, variable_dtype(node.outputs[0]), "bool")]


# ------------------------------------------------------------------------ join, split
@onnx_funcify.register(Join)
def _join(op: Join, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    tensors = node.inputs if getattr(op, "axis", None) is not None else node.inputs[1:]
    axis = _static_axis(op, node, node.outputs[0].type.ndim)
    values = [builder.cast(builder.value(t), dtype, variable_dtype(t)) for t in tensors]
    if len(values) == 1:
        return values
    return [builder.op("Concat", values, {"axis": axis})]


@onnx_funcify.register(Split)
def _split(op: Split, node: Apply, builder: ONNXBuilder) -> Values:
    x = builder.input(node, 0)
    axis = _static_axis(op, node, node.inputs[0].type.ndim)
    sizes = builder.input(node, len(node.inputs) - 1, "int64")
    # ONNX Split rejects zero-length parts at run time, so each part is a Slice between
    # running sums of the sizes.
    ends = builder.op("CumSum", [sizes, builder.scalar(0, "int64")])
    starts = builder.op("Sub", [ends, sizes])
    axes = builder.int64s([axis])
    parts = []
    for i in range(len(node.outputs)):
        index = builder.int64s([i])
        bounds = [builder.op("Gather", [v, index]) for v in (starts, ends)]
        parts.append(builder.op("Slice", [x, *bounds, axes]))
    return parts


# ---------------------------------------------------------------------- diagonals, nonzero
@onnx_funcify.register(ExtractDiag)
def _extract_diag(op: ExtractDiag, node: Apply, builder: ONNXBuilder) -> Values:
    ndim = node.inputs[0].type.ndim
    axis1, axis2 = op.axis1 % ndim, op.axis2 % ndim
    perm = [d for d in range(ndim) if d not in (axis1, axis2)] + [axis1, axis2]
    x = builder.input(node, 0)
    if perm != list(range(ndim)):
        x = builder.op("Transpose", [x], {"perm": perm})
    rows, cols = builder.dim(x, ndim - 2), builder.dim(x, ndim - 1)
    offset = op.offset
    # The diagonal starts at (max(-offset, 0), max(offset, 0)).
    row0, col0 = max(-offset, 0), max(offset, 0)
    length = builder.op(
        "Min",
        [
            builder.op("Sub", [rows, builder.int64s([row0])]),
            builder.op("Sub", [cols, builder.int64s([col0])]),
        ],
    )
    length = builder.op("Max", [length, builder.int64s([0])])
    index = int64_range(builder, builder.scalar(0, "int64"), scalar_from_vector(builder, length))
    if ndim == 2:
        one = builder.int64s([1])
        # Entry k is x[row0 + k, col0 + k]: a GatherND of (row, column) pairs.  tract cannot
        # multiply a range of unknown length by a dimension, as the flat positions below do.
        pairs = [
            builder.op("Unsqueeze", [builder.op("Add", [index, builder.int64s([first])]), one])
            for first in (row0, col0)
        ]
        return [builder.op("GatherND", [x, builder.op("Concat", pairs, {"axis": 1})])]
    # Batches: flat positions row * cols + col along the merged matrix axes (a GatherND with
    # batch dimensions fails in onnx.reference on an empty batch).
    flat_index = builder.op(
        "Add",
        [
            builder.op("Mul", [builder.op("Add", [index, builder.int64s([row0])]), cols]),
            builder.op("Add", [index, builder.int64s([col0])]),
        ],
    )
    leading = builder.op("Shape", [x], {"end": ndim - 2})
    merged = builder.op("Mul", [rows, cols])
    flat_shape = builder.op("Concat", [leading, merged], {"axis": 0})
    flat = builder.op("Reshape", [x, flat_shape], {"allowzero": 1})
    return [builder.op("Gather", [flat, flat_index], {"axis": -1})]


@onnx_funcify.register(Nonzero)
def _nonzero(op: Nonzero, node: Apply, builder: ONNXBuilder) -> Values:
    x = builder.input(node, 0)
    dtype = variable_dtype(node.inputs[0])
    if dtype != "bool":
        # ONNX Runtime's NonZero lacks float64 and most small-int kernels; a mask has one.
        # NaN compares unequal to zero, so it counts as nonzero, as in NumPy.
        zero = builder.scalar(0, dtype)
        x = builder.op("Not", [builder.typed_op("Equal", [x, zero], dtype, cast_back=False)])
    indices = builder.op("NonZero", [x])
    return [
        builder.op("Gather", [indices, builder.scalar(i, "int64")], {"axis": 0})
        for i in range(len(node.outputs))
    ]


@onnx_funcify.register(Choose)
def _choose(op: Choose, node: Apply, builder: ONNXBuilder) -> Values:
    if type(node.inputs[1].type).__name__ == "TypedListType":
        raise UnsupportedOpError.for_node(
            node, "choices given as a list of differently shaped tensors (a typed list)"
        )
    a = builder.input(node, 0, "int64")
    choices = builder.input(node, 1, variable_dtype(node.outputs[0]))
    a_ndim, choice_ndim = node.inputs[0].type.ndim, node.inputs[1].type.ndim - 1
    out_ndim = node.outputs[0].type.ndim
    count = builder.dim(choices, 0)
    if op.mode == "wrap":
        a = builder.op("Mod", [a, count])
    elif op.mode == "clip":
        last = builder.op("Sub", [count, builder.int64s([1])])
        a = builder.op("Max", [builder.op("Min", [a, last]), builder.int64s([0])])
    # Broadcast the indices against one choice, then every choice to that shape, and pick
    # along the leading axis.
    choice_shape = builder.op("Shape", [choices], {"start": 1})
    a = expand(builder, a, a_ndim, choice_shape, choice_ndim)
    if out_ndim > choice_ndim:
        new_axes = builder.int64s(range(1, 1 + out_ndim - choice_ndim))
        choices = builder.op("Unsqueeze", [choices, new_axes])
    choices_shape = builder.op("Concat", [count, builder.shape(a)], {"axis": 0})
    choices = expand(builder, choices, out_ndim + 1, choices_shape, out_ndim + 1)
    axis0 = builder.int64s([0])
    index = builder.op("Unsqueeze", [a, axis0])
    picked = builder.op("GatherElements", [choices, index], {"axis": 0})
    return [builder.op("Squeeze", [picked, axis0])]


@onnx_funcify.register(PermuteRowElements)
def _permute_row_elements(op: PermuteRowElements, node: Apply, builder: ONNXBuilder) -> Values:
    # make_node pads x and y to one rank; their leading dims broadcast, and y holds one
    # permutation of the last axis per row.
    ndim = node.outputs[0].type.ndim
    x = builder.input(node, 0)
    perm = builder.input(node, 1, "int64")

    def rows_like(value: ir.Value, other: ir.Value) -> ir.Value:
        # ``value`` with its leading dims broadcast against those of ``other``.
        leading = builder.op("Shape", [other], {"end": -1})
        target = builder.op("Concat", [leading, builder.dim(value, -1)], {"axis": 0})
        return expand(builder, value, ndim, target, ndim)

    x = rows_like(x, perm)
    perm = rows_like(perm, x)
    if op.inverse:
        # out[..., perm[..., i]] = x[..., i]
        return [builder.op("ScatterElements", [x, perm, x], {"axis": -1})]
    return [builder.op("GatherElements", [x, perm], {"axis": -1})]
