"""Converters for ``pytensor.tensor.elemwise``: Elemwise, DimShuffle and CAReduce."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
import pytensor.scalar.basic as ps
from pytensor.graph.basic import Apply
from pytensor.tensor.elemwise import CAReduce, DimShuffle, Elemwise
from pytensor.tensor.math import MulWithoutZeros

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import onnx_funcify

Values = Sequence[ir.Value]


@onnx_funcify.register(Elemwise)
def _elemwise(op: Elemwise, node: Apply, builder: ONNXBuilder) -> Values:
    # Scalar converters only look at dtypes, and ONNX broadcasts like NumPy, so the scalar
    # op's converter applied to the tensor node is the elementwise operation.
    with builder.elementwise(node.outputs[0]):
        return onnx_funcify(op.scalar_op, node, builder)


@onnx_funcify.register(DimShuffle)
def _dimshuffle(op: DimShuffle, node: Apply, builder: ONNXBuilder) -> Values:
    x = builder.input(node, 0)
    new_order = list(op.new_order)
    kept = [d for d in new_order if d != "x"]
    dropped = [d for d in range(op.input_ndim) if d not in kept]
    if dropped:
        x = builder.op("Squeeze", [x, builder.int64s(dropped)])
    # After the squeeze the kept axes are numbered by their rank among themselves.
    rank = {d: i for i, d in enumerate(sorted(kept))}
    perm = [rank[d] for d in kept]
    if perm != sorted(perm):
        x = builder.op("Transpose", [x], {"perm": perm})
    expanded = [i for i, d in enumerate(new_order) if d == "x"]
    if expanded:
        x = builder.op("Unsqueeze", [x, builder.int64s(expanded)])
    return [x]


def reduce_axes(axis: Sequence[int] | None, ndim: int) -> list[int]:
    """Normalized, sorted reduction axes (``None`` means all axes)."""
    if axis is None:
        return list(range(ndim))
    return sorted(a % ndim for a in axis)


def reduce(
    builder: ONNXBuilder,
    op_type: str,
    x: ir.Value,
    axes: Sequence[int],
    dtype: str,
    *,
    keepdims: bool = False,
) -> ir.Value:
    """Apply the ONNX ``Reduce*`` op ``op_type`` over ``axes`` of ``x`` (of ``dtype``)."""
    return builder.typed_op(
        op_type, [x, builder.int64s(axes)], dtype, {"keepdims": int(keepdims)}, data=[0]
    )


def _propagate_nan(
    builder: ONNXBuilder, x: ir.Value, result: ir.Value, axes: Sequence[int], dtype: str
) -> ir.Value:
    """NaN where any reduced element is NaN (ONNX Runtime's ReduceMax/Min skip NaN,
    NumPy's max/min return it)."""
    is_nan = builder.cast(builder.op("IsNaN", [x]), "uint8", "bool")
    has_nan = builder.cast(reduce(builder, "ReduceMax", is_nan, axes, "uint8"), "bool", "uint8")
    return builder.op("Where", [has_nan, builder.scalar(np.nan, dtype), result])


INT64_MAX = int(np.iinfo(np.int64).max)

_REDUCE_OPS: dict[type, str] = {
    ps.Add: "ReduceSum",
    ps.Mul: "ReduceProd",
    ps.Maximum: "ReduceMax",
    ps.Minimum: "ReduceMin",
}


#: Dtypes whose ReduceMax/ReduceMin run in a wider dtype (ONNX Runtime kernel gaps); the
#: empty-reduction identity of the wide dtype is clipped back to the narrow one.
_EXTREMUM_COMPUTE = {"int16": "int32", "uint16": "int32", "uint32": "int64", "uint64": "int64"}


def _reduce_extremum(
    builder: ONNXBuilder, onnx_op: str, x: ir.Value, axes: Sequence[int], dtype: str
) -> ir.Value:
    """ReduceMax/ReduceMin of ``x`` (of ``dtype``) with NumPy's NaN propagation.

    An empty reduction gives the identity PyTensor's ``initial`` uses: -inf/inf for floats,
    the dtype's min/max for integers.
    """
    compute = _EXTREMUM_COMPUTE.get(dtype)
    if compute is None:
        result = reduce(builder, onnx_op, x, axes, dtype)
        if np.dtype(dtype).kind == "f":
            result = _propagate_nan(builder, x, result, axes, dtype)
        return result
    info = np.iinfo(dtype)
    bound = int(info.min if onnx_op == "ReduceMax" else info.max)
    wide = reduce(builder, onnx_op, builder.cast(x, compute, dtype), axes, compute)
    clip = "Max" if onnx_op == "ReduceMax" else "Min"
    wide = builder.op(clip, [wide, builder.scalar(bound, compute)])
    return builder.cast(wide, dtype, compute)


def _sum_int64(
    builder: ONNXBuilder, x: ir.Value, axes: Sequence[int], ndim: int, dtype: str
) -> ir.Value:
    """Exact (wrap-around) sum of 64-bit integers as a product with a vector of ones.

    ONNX Runtime's ReduceSum accumulates int64 in floating point: sums above 2**53 lose
    their low bits (measured with onnxruntime 1.32); its MatMul is exact.
    """
    kept = [d for d in range(ndim) if d not in axes]
    x = builder.cast(x, "int64", dtype)
    if axes != list(range(len(kept), ndim)):
        x = builder.op("Transpose", [x], {"perm": [*kept, *axes]})
    x = builder.merge_dims(x, len(kept))
    ones = builder.op(
        "Expand", [builder.scalar(1, "int64"), builder.op("Shape", [x], {"start": -1})]
    )
    return builder.cast(builder.op("MatMul", [x, ones]), dtype, "int64")


def _reduce_bool(builder: ONNXBuilder, x: ir.Value, axes: Sequence[int], all_: bool) -> ir.Value:
    """All (``all_``) or Any of a bool tensor, as counts: ReduceSum has the right identity."""
    if all_:
        x = builder.op("Not", [x])
    count = reduce(builder, "ReduceSum", builder.cast(x, "int64", "bool"), axes, "int64")
    zero = builder.scalar(0, "int64")
    return builder.op("Equal" if all_ else "Greater", [count, zero])


def _reduced_to_front(
    builder: ONNXBuilder, node: Apply, axes: Sequence[int], dtype: str
) -> tuple[ir.Value, ir.Value, int | None]:
    """The input of ``node`` (cast to ``dtype``) with its reduced ``axes`` moved to the front
    and flattened: ``(flat, kept_shape, static number of reduced elements or None)``."""
    x = builder.input(node, 0, dtype)
    ndim = node.inputs[0].type.ndim
    kept = [d for d in range(ndim) if d not in axes]
    if axes != list(range(len(axes))):
        x = builder.op("Transpose", [x], {"perm": [*axes, *kept]})
    rest = builder.op("Shape", [x], {"start": len(axes)})
    flat = builder.merge_dims(x, 0, len(axes))
    static_shape = node.inputs[0].type.shape
    reduced = [static_shape[a] for a in axes]
    return flat, rest, int(np.prod(reduced)) if None not in reduced else None


def _prod_int64(builder: ONNXBuilder, node: Apply, axes: Sequence[int], dtype: str) -> ir.Value:
    """Exact (wrap-around) product of 64-bit integers: the last row of a log-depth
    cumulative product, after a leading row of ones (so that empty products are 1).

    ONNX Runtime's int64 ReduceProd is computed in floating point (inexact above 2**53 and
    wrong on overflow, measured with onnxruntime 1.32).
    """
    from pytensor_onnx.dispatch.extra_ops import cumprod

    flat, _, static_len = _reduced_to_front(builder, node, axes, dtype)
    rank = node.inputs[0].type.ndim - len(axes) + 1
    one = builder.scalar(1, dtype)
    ones_first = builder.pad_axis(flat, 0, 1, 0, rank=rank, constant=one)
    static = None if static_len is None else static_len + 1
    products = cumprod(builder, ones_first, 0, dtype, static, rank=rank)
    return builder.op("Gather", [products, builder.scalar(-1, "int64")], {"axis": 0})


def _reduce_loop(
    op: CAReduce, node: Apply, builder: ONNXBuilder, axes: Sequence[int], acc_dtype: str
) -> ir.Value:
    """Any other scalar op (Composite, bitwise ops...): fold it over the reduced elements.

    The reduced axes are moved to the front and flattened, then an ONNX ``Loop`` (unrolled
    for short static lengths) applies the scalar op's own converter, starting from its
    identity when it has one (so empty reductions work) or else from the first element.
    Elements keep the input dtype: a Composite fused by PyTensor 2 takes an accumulator of
    ``acc_dtype`` and an element of the input dtype (e.g. float64 and float32).
    """
    from pytensor_onnx.dispatch._loop import Carry, fori_loop
    from pytensor_onnx.dispatch.linalg import size_of

    in_dtype = variable_dtype(node.inputs[0])
    flat, rest, static_len = _reduced_to_front(builder, node, axes, in_dtype)
    identity = getattr(op.scalar_op, "identity", None)
    kind = np.dtype(acc_dtype).kind
    if identity is not None and (kind in "fb" or identity == 0):
        init = builder.op("Expand", [builder.scalar(identity, acc_dtype), rest])
        count = size_of(builder, flat, 0, static_len)
    else:
        # No usable identity (e.g. bitwise and of integers): start from the first element.
        first = builder.op("Gather", [flat, builder.scalar(0, "int64")], {"axis": 0})
        init = builder.cast(first, acc_dtype, in_dtype)
        flat = builder.op(
            "Slice", [flat, builder.int64s([1]), builder.int64s([INT64_MAX]), builder.int64s([0])]
        )
        count = size_of(builder, flat, 0, None if static_len is None else static_len - 1)

    def step(body: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        element = body.op("Gather", [flat, k], {"axis": 0})
        acc_var, elem_var = ps.get_scalar_type(acc_dtype)(), ps.get_scalar_type(in_dtype)()
        body.bind(acc_var, state[0])
        body.bind(elem_var, element)
        scalar_node = op.scalar_op.make_node(acc_var, elem_var)
        [out] = onnx_funcify(op.scalar_op, scalar_node, body)
        return [body.cast(out, acc_dtype, variable_dtype(scalar_node.outputs[0]))]

    [result], _ = fori_loop(builder, count, [Carry(init, acc_dtype)], [], step, "careduce")
    return result


@onnx_funcify.register(CAReduce)
def _careduce(op: CAReduce, node: Apply, builder: ONNXBuilder) -> Values:
    in_dtype = variable_dtype(node.inputs[0])
    out_dtype = variable_dtype(node.outputs[0])
    ndim = node.inputs[0].type.ndim
    axes = reduce_axes(op.axis, ndim)
    scalar_cls = type(op.scalar_op)
    if not axes:
        return [builder.input(node, 0, out_dtype)]
    acc_dtype = getattr(op, "acc_dtype", None) or out_dtype
    if in_dtype == "bool" and acc_dtype == "bool":
        # On booleans, max/and is All and min/or is Any.
        if scalar_cls in (ps.AND, ps.Minimum):
            return [_reduce_bool(builder, builder.input(node, 0), axes, all_=True)]
        if scalar_cls in (ps.OR, ps.Maximum):
            return [_reduce_bool(builder, builder.input(node, 0), axes, all_=False)]
    onnx_op = _REDUCE_OPS.get(scalar_cls)
    if scalar_cls is MulWithoutZeros:
        # ProdWithoutZeros (in the gradient of prod): the product of the non-zero elements.
        x = builder.input(node, 0, acc_dtype)
        zero = builder.op("Equal", [x, builder.scalar(0, acc_dtype)])
        x = builder.op("Where", [zero, builder.scalar(1, acc_dtype), x])
        result = reduce(builder, "ReduceProd", x, axes, acc_dtype)
    elif onnx_op == "ReduceSum" and acc_dtype in ("int64", "uint64"):
        result = _sum_int64(builder, builder.input(node, 0, acc_dtype), axes, ndim, acc_dtype)
    elif onnx_op == "ReduceProd" and acc_dtype in ("int64", "uint64"):
        result = _prod_int64(builder, node, axes, acc_dtype)
    elif onnx_op is None:
        result = _reduce_loop(op, node, builder, axes, acc_dtype)
    elif onnx_op in ("ReduceMax", "ReduceMin"):
        result = _reduce_extremum(
            builder, onnx_op, builder.input(node, 0, acc_dtype), axes, acc_dtype
        )
    else:
        result = reduce(builder, onnx_op, builder.input(node, 0, acc_dtype), axes, acc_dtype)
    return [builder.cast(result, out_dtype, acc_dtype)]
