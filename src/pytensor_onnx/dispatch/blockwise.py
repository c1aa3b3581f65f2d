"""Converters for ``pytensor.tensor.blockwise.Blockwise``.

A Blockwise node applies a core Op over leading batch dimensions.  Core Ops whose ONNX
construction already broadcasts over leading dimensions (like ``MatMul``) register a
batched converter with :func:`onnx_funcify_blockwise`; it receives the Blockwise node.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch

import onnx_ir as ir
from pytensor.compile.ops import DeepCopyOp, ViewOp
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.math import Dot

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.basic import onnx_funcify
from pytensor_onnx.dispatch.math import matmul
from pytensor_onnx.dispatch.scan import blockwise_loop

Values = Sequence[ir.Value]


@singledispatch
def onnx_funcify_blockwise(core_op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    """Convert a Blockwise ``node`` whose core Op is ``core_op`` (dispatched on its class).

    Without a batched converter, the core Op's own converter runs in an ONNX ``Loop`` over
    the batch (:func:`pytensor_onnx.dispatch.scan.blockwise_loop`).
    """
    return blockwise_loop(node, builder)


@onnx_funcify.register(Blockwise)
def _blockwise(op: Blockwise, node: Apply, builder: ONNXBuilder) -> Values:
    return onnx_funcify_blockwise(op.core_op, node, builder)


@onnx_funcify_blockwise.register(DeepCopyOp)
@onnx_funcify_blockwise.register(ViewOp)
def _batched_identity(core_op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    return [builder.input(node, 0)]


@onnx_funcify_blockwise.register(Dot)
def _batched_dot(core_op: Dot, node: Apply, builder: ONNXBuilder) -> Values:
    # ONNX MatMul broadcasts leading dimensions as NumPy's matmul does.
    return [matmul(builder, node)]
