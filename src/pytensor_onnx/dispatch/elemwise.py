"""Converters for ``pytensor.tensor.elemwise``: Elemwise, DimShuffle and CAReduce."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
import pytensor.scalar.basic as ps
from pytensor.graph.basic import Apply
from pytensor.tensor.elemwise import CAReduce, DimShuffle, Elemwise

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify

Values = Sequence[ir.Value]


@onnx_funcify.register(Elemwise)
def _elemwise(op: Elemwise, node: Apply, builder: ONNXBuilder) -> Values:
    # Scalar converters only look at dtypes, and ONNX broadcasts like NumPy, so the scalar
    # op's converter applied to the tensor node is the elementwise operation.
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


_REDUCE_OPS: dict[type, str] = {
    ps.Add: "ReduceSum",
    ps.Mul: "ReduceProd",
    ps.Maximum: "ReduceMax",
    ps.Minimum: "ReduceMin",
}


@onnx_funcify.register(CAReduce)
def _careduce(op: CAReduce, node: Apply, builder: ONNXBuilder) -> Values:
    in_dtype = variable_dtype(node.inputs[0])
    out_dtype = variable_dtype(node.outputs[0])
    ndim = node.inputs[0].type.ndim
    axes = reduce_axes(op.axis, ndim)
    scalar_cls = type(op.scalar_op)
    if not axes:
        return [builder.input(node, 0, out_dtype)]
    if scalar_cls in (ps.AND, ps.OR) and in_dtype == "bool":
        # All / Any as counts: ReduceSum has the right identity (0) for empty reductions.
        x = builder.input(node, 0)
        if scalar_cls is ps.AND:
            x = builder.op("Not", [x])
        count = reduce(builder, "ReduceSum", builder.cast(x, "int64", "bool"), axes, "int64")
        zero = builder.scalar(0, "int64")
        result = builder.op("Equal" if scalar_cls is ps.AND else "Greater", [count, zero])
        return [builder.cast(result, out_dtype, "bool")]
    onnx_op = _REDUCE_OPS.get(scalar_cls)
    if onnx_op is None:
        raise UnsupportedOpError.for_node(
            node, f"reduction with scalar op {op.scalar_op} (and input dtype {in_dtype})"
        )
    acc_dtype = getattr(op, "acc_dtype", None) or out_dtype
    x = builder.input(node, 0, acc_dtype)
    result = reduce(builder, onnx_op, x, axes, acc_dtype)
    if onnx_op in ("ReduceMax", "ReduceMin") and np.dtype(acc_dtype).kind == "f":
        result = _propagate_nan(builder, x, result, axes, acc_dtype)
    return [builder.cast(result, out_dtype, acc_dtype)]
