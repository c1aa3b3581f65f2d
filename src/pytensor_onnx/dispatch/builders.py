"""Converters for ``pytensor.compile.builders``: OpFromGraph (and PyTensor 3's symbolic ops).

The inner graph is converted in place (inlined) into the enclosing ONNX graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.basic import inline_inner_graph, onnx_funcify


@onnx_funcify.register(OpFromGraph)
def _op_from_graph(op: OpFromGraph, node: Apply, builder: ONNXBuilder) -> Sequence[ir.Value]:
    return inline_inner_graph(op.fgraph, node, builder)
