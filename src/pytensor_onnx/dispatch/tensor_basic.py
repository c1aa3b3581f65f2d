"""Converters for ``pytensor.tensor.basic``."""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.basic import ScalarFromTensor, TensorFromScalar

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.basic import onnx_funcify

Values = Sequence[ir.Value]


@onnx_funcify.register(TensorFromScalar)
@onnx_funcify.register(ScalarFromTensor)
def _scalar_tensor(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor scalars are 0-d tensors in ONNX.
    return [builder.input(node, 0)]
