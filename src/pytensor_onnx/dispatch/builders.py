"""Converters for ``pytensor.compile.builders``: OpFromGraph (and PyTensor 3's symbolic ops).

A user's ``OpFromGraph`` becomes, by the export option ``op_from_graph``:

* ``"inline"`` (the default): its inner graph converted in place into the enclosing graph,
  which every runtime runs (OpenVINO, tract and onnx2torch refuse local functions);
* ``"function"``: an ONNX local function (domain :data:`FUNCTION_DOMAIN`, named after the
  Op), called by one node per use.  The structure stays visible (Netron shows the call and
  the function body), and repeated uses share one body.

PyTensor's own ``OpFromGraph`` subclasses (the "symbolic ops" of PyTensor 3 such as
decompositions, which exist as plain ops in PyTensor 2) are always inlined, so that a
model's structure does not depend on the PyTensor version.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply

from pytensor_onnx.builder import ONNXBuilder, onnx_dtype, variable_dtype, variable_shape
from pytensor_onnx.dispatch.basic import convert_nodes, inline_inner_graph, onnx_funcify, thaw

#: The domain of the local functions made from OpFromGraph.
FUNCTION_DOMAIN = "pytensor.op_from_graph"
#: The values of the ``op_from_graph`` export option.
OP_FROM_GRAPH_MODES = ("function", "inline")


def _function_for(op: OpFromGraph, builder: ONNXBuilder) -> ir.Function:
    """The local function implementing ``op``, made on first use."""
    found = builder.functions.get(op)
    if found is not None:
        return found
    name = builder.names.claim(op.name or type(op).__name__)
    body = ONNXBuilder(
        builder.opset,
        name,
        names=builder.names,
        functions=builder.functions,
        options=builder.options,
        initializers=False,
    )
    body.graph.opset_imports[FUNCTION_DOMAIN] = 1
    fgraph = thaw(op.fgraph)
    for i, var in enumerate(fgraph.inputs):
        value = ir.Value(
            name=body.names.claim(f"{name}_input_{i}"),
            type=ir.TensorType(onnx_dtype(variable_dtype(var))),
        )
        body.graph.inputs.append(value)
        body.bind(var, value)
    convert_nodes(fgraph.toposort(), body)
    for var in fgraph.outputs:
        body.add_output(body.value(var))
    body.name_values()
    function = ir.Function(FUNCTION_DOMAIN, name, graph=body.graph, attributes=[])
    builder.functions[op] = function
    return function


@onnx_funcify.register(OpFromGraph)
def _op_from_graph(op: OpFromGraph, node: Apply, builder: ONNXBuilder) -> Sequence[ir.Value]:
    mode = builder.options.get("op_from_graph", "inline")
    if mode not in OP_FROM_GRAPH_MODES:
        raise ValueError(f"op_from_graph must be one of {OP_FROM_GRAPH_MODES}, got {mode!r}")
    if mode == "inline" or type(op) is not OpFromGraph:
        return inline_inner_graph(op.fgraph, node, builder)
    function = _function_for(op, builder)
    builder.opset_imports[FUNCTION_DOMAIN] = 1
    outputs = builder.op_multi(
        function.name,
        builder.inputs(node),
        domain=FUNCTION_DOMAIN,
        num_outputs=len(node.outputs),
    )
    for var, value in zip(node.outputs, outputs, strict=True):
        value.dtype = onnx_dtype(variable_dtype(var))
        value.shape = ir.Shape(variable_shape(var))
    return list(outputs)
