"""Converters for ``pytensor.tensor.shape``: Shape, Shape_i, SpecifyShape and Reshape.

``Squeeze``/``ExpandDims``/``Flatten`` have no Op of their own in the supported PyTensor
versions: they are ``DimShuffle`` (see ``elemwise.py``) or ``Reshape`` nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.tensor.shape import Reshape, Shape, Shape_i, SpecifyShape

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.basic import onnx_funcify

Values = Sequence[ir.Value]


def scalar_from_vector(builder: ONNXBuilder, value: ir.Value) -> ir.Value:
    """The 0-d tensor held by the 1-element vector ``value``."""
    return builder.op("Squeeze", [value, builder.int64s([0])])


@onnx_funcify.register(Shape)
def _shape(op: Shape, node: Apply, builder: ONNXBuilder) -> Values:
    return [builder.shape(builder.input(node, 0))]


@onnx_funcify.register(Shape_i)
def _shape_i(op: Shape_i, node: Apply, builder: ONNXBuilder) -> Values:
    return [scalar_from_vector(builder, builder.dim(builder.input(node, 0), op.i))]


@onnx_funcify.register(SpecifyShape)
def _specify_shape(op: SpecifyShape, node: Apply, builder: ONNXBuilder) -> Values:
    # An assertion about the shape, with no effect on the values: ONNX cannot assert, and
    # the static dims it states are already in the output type.
    return [builder.input(node, 0)]


@onnx_funcify.register(Reshape)
def _reshape(op: Reshape, node: Apply, builder: ONNXBuilder) -> Values:
    x = builder.input(node, 0)
    target = builder.input(node, 1, "int64")
    # allowzero=1: a 0 in the target shape is a zero-length dim, as in NumPy (ONNX's default
    # would copy the input's dim instead).
    return [builder.op("Reshape", [x, target], {"allowzero": 1})]
