"""Converters for ``pytensor.tensor.blockwise.Blockwise``.

A Blockwise node applies a core Op over leading batch dimensions.  Core Ops whose ONNX
construction already broadcasts over leading dimensions (like ``MatMul``) register a
batched converter with :func:`onnx_funcify_blockwise`; it receives the Blockwise node.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.math import Dot

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify
from pytensor_onnx.dispatch.math import matmul

Values = Sequence[ir.Value]


@singledispatch
def onnx_funcify_blockwise(core_op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    """Convert a Blockwise ``node`` whose core Op is ``core_op`` (dispatched on its class)."""
    raise UnsupportedOpError.for_node(
        node,
        f"no batched converter for core Op {type(core_op).__name__}; register one with "
        "pytensor_onnx.dispatch.blockwise.onnx_funcify_blockwise",
        op=core_op,
    )


@onnx_funcify.register(Blockwise)
def _blockwise(op: Blockwise, node: Apply, builder: ONNXBuilder) -> Values:
    return onnx_funcify_blockwise(op.core_op, node, builder)


@onnx_funcify_blockwise.register(Dot)
def _batched_dot(core_op: Dot, node: Apply, builder: ONNXBuilder) -> Values:
    # ONNX MatMul broadcasts leading dimensions as NumPy's matmul does.
    return [matmul(builder, node)]
