"""Converters for ``pytensor.tensor.special``: Softmax, LogSoftmax and SoftmaxGrad."""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
import pytensor.tensor.special as pts
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.special import LogSoftmax, Softmax

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify, optional_classes
from pytensor_onnx.dispatch.elemwise import reduce, reduce_axes

Values = Sequence[ir.Value]


def _softmax_axes(op: Op, ndim: int) -> list[int]:
    axis = op.axis  # type: ignore[attr-defined]
    return reduce_axes(None if axis is None else ([axis] if isinstance(axis, int) else axis), ndim)


def _shifted(builder: ONNXBuilder, x: ir.Value, axes: list[int], dtype: str) -> ir.Value:
    """``x - max(x, axes)``, the stabilized argument of the exponential."""
    return builder.op("Sub", [x, reduce(builder, "ReduceMax", x, axes, dtype, keepdims=True)])


@onnx_funcify.register(Softmax)
@onnx_funcify.register(LogSoftmax)
def _softmax(op: Softmax | LogSoftmax, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    if not dtype.startswith("float"):
        raise UnsupportedOpError.for_node(
            node,
            f"{type(op).__name__} with a {dtype} output is not defined (PyTensor 2 types "
            "the softmax of integers as integers and cannot compute it); cast the input to "
            "a float dtype first",
        )
    x = builder.input(node, 0, dtype)  # integer inputs give float outputs (PyTensor 3)
    axes = _softmax_axes(op, node.inputs[0].type.ndim)
    is_log = isinstance(op, LogSoftmax)
    # ONNX LogSoftmax is not used: onnx.reference computes it as log(softmax(x)), which
    # underflows to -inf where the decomposition below stays finite.
    if len(axes) == 1 and not is_log:
        return [builder.op("Softmax", [x], {"axis": axes[0]})]
    shifted = _shifted(builder, x, axes, dtype)
    exp = builder.op("Exp", [shifted])
    total = reduce(builder, "ReduceSum", exp, axes, dtype, keepdims=True)
    if is_log:
        return [builder.op("Sub", [shifted, builder.op("Log", [total])])]
    return [builder.op("Div", [exp, total])]


def _softmax_grad(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # dx = dy * sm - sm * sum(dy * sm, axes)
    dtype = variable_dtype(node.outputs[0])
    dy, sm = builder.inputs(node, dtype)
    axes = _softmax_axes(op, node.inputs[1].type.ndim)
    dy_sm = builder.op("Mul", [dy, sm])
    total = reduce(builder, "ReduceSum", dy_sm, axes, dtype, keepdims=True)
    return [builder.op("Sub", [dy_sm, builder.op("Mul", [sm, total])])]


for _cls in optional_classes(pts, "SoftmaxGrad"):  # a symbolic graph in PyTensor 3
    onnx_funcify.register(_cls)(_softmax_grad)
