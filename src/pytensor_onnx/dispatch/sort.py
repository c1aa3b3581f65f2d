"""Converters for ``pytensor.tensor.sort``: SortOp and ArgSortOp as a full-length ``TopK``.

``TopK`` with ``largest=0`` and ``k`` equal to the axis length is an ascending sort.  The
ONNX specification breaks ties by the lower index, which makes it a *stable* sort (NumPy's
``kind="stable"``; for other kinds NumPy may order equal elements differently), and ONNX
Runtime and ``onnx.reference`` both put NaN last, as NumPy does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply, Constant
from pytensor.graph.op import Op
from pytensor.tensor.sort import ArgSortOp, SortOp

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify

Values = Sequence[ir.Value]

#: Dtypes ONNX Runtime 1.32 has no TopK kernel for (probed at opsets 18 and 28), with an
#: order-preserving dtype to sort them in.
_SORT_KEY_DTYPE = {"bool": "int32", "uint16": "int32", "uint32": "int64", "uint64": "int64"}


def _sort_axis(op: Op, node: Apply) -> int:
    """The (non-negative) sort axis: a prop in PyTensor 3, a constant input in PyTensor 2."""
    ndim = node.inputs[0].type.ndim
    axis = getattr(op, "axis", None)
    if axis is None:
        axis_input = node.inputs[1]
        if not isinstance(axis_input, Constant):
            raise UnsupportedOpError.for_node(node, "the sort axis must be a constant")
        axis = int(axis_input.data)
    return int(axis) % ndim


def sort_along(
    builder: ONNXBuilder, x: ir.Value, dtype: str, axis: int
) -> tuple[ir.Value, ir.Value]:
    """Stable ascending sort of ``x`` (of ``dtype``) along ``axis``: (values, int64 indices)."""
    key = x
    key_dtype = _SORT_KEY_DTYPE.get(dtype)
    if key_dtype is not None:
        key = builder.cast(x, key_dtype, dtype)
        if dtype == "uint64":
            # Flip the sign bit so that the wrapped int64 values keep the uint64 order.
            sign = builder.scalar(np.iinfo(np.int64).min, "int64")
            key = builder.op("BitwiseXor", [key, sign])
    length = builder.dim(x, axis)
    values, indices = builder.top_k(key, length, axis, key_dtype or dtype, largest=False)
    if key_dtype is not None:
        values = builder.op("GatherElements", [x, indices], {"axis": axis})
    return values, indices


@onnx_funcify.register(SortOp)
def _sort(op: SortOp, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.inputs[0])
    values, _ = sort_along(builder, builder.input(node, 0), dtype, _sort_axis(op, node))
    return [values]


@onnx_funcify.register(ArgSortOp)
def _argsort(op: ArgSortOp, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.inputs[0])
    _, indices = sort_along(builder, builder.input(node, 0), dtype, _sort_axis(op, node))
    return [builder.cast(indices, variable_dtype(node.outputs[0]), "int64")]
