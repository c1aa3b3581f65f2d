"""Converters for PyTensor's ``IfElse`` (``pytensor.ifelse`` / ``pytensor.conditional``).

``ifelse(cond, then..., else...)`` becomes one ONNX ``If`` whose branches output the branch
values.  The graph is converted in topological order, so the branch values are first built
in the enclosing graph; :func:`sink_into_branches` (run by ``build_model`` once the whole
graph is converted) then moves every node whose results are used by one branch only into
that branch, so that ONNX Runtime, like PyTensor's lazy ``ifelse``, computes only the
branch it takes.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply

from pytensor_onnx.builder import ONNXBuilder, onnx_dtype, variable_dtype, variable_shape
from pytensor_onnx.dispatch.basic import onnx_funcify

try:  # PyTensor 3
    from pytensor.conditional.op import IfElse
except ImportError:  # PyTensor 2
    from pytensor.ifelse import IfElse  # type: ignore[no-redef]

Values = Sequence[ir.Value]


def _branch(builder: ONNXBuilder, name: str, node: Apply, values: Sequence[ir.Value]) -> ir.Graph:
    branch = ONNXBuilder(
        builder.opset, builder.names.claim(name), parent=builder, names=builder.names
    )
    for var, value in zip(node.outputs, values, strict=True):
        # Branch outputs are outer-scope values: an Identity makes them the branch's own.
        out = branch.op("Identity", [value])
        out.dtype = onnx_dtype(variable_dtype(var))
        branch.graph.outputs.append(out)
    branch.name_values()
    return branch.graph


@onnx_funcify.register(IfElse)
def _ifelse(op: IfElse, node: Apply, builder: ONNXBuilder) -> Values:
    n_outs = op.n_outs
    condition = builder.input(node, 0, "bool")
    dtypes = [variable_dtype(var) for var in node.outputs]
    then_values = [builder.input(node, 1 + i, dtype) for i, dtype in enumerate(dtypes)]
    else_values = [builder.input(node, 1 + n_outs + i, dtype) for i, dtype in enumerate(dtypes)]
    result = ir.Node(
        "",
        "If",
        [condition],
        attributes=[
            ir.AttrGraph("then_branch", _branch(builder, "then_branch", node, then_values)),
            ir.AttrGraph("else_branch", _branch(builder, "else_branch", node, else_values)),
        ],
        num_outputs=n_outs,
    )
    builder.add_node(result)
    outputs = list(result.outputs)
    for var, value in zip(node.outputs, outputs, strict=True):
        value.dtype = onnx_dtype(variable_dtype(var))
        # The branches may differ in static shape: keep only what the PyTensor type knows.
        value.shape = ir.Shape(variable_shape(var))
    return outputs


def _subgraphs(node: ir.Node) -> list[ir.Graph]:
    graphs: list[ir.Graph] = []
    for attr in node.attributes.values():
        if attr.type == ir.AttributeType.GRAPH:
            graphs.append(attr.as_graph())
        elif attr.type == ir.AttributeType.GRAPHS:
            graphs.extend(attr.as_graphs())
    return graphs


def _sink(graph: ir.Graph, if_node: ir.Node, branch: ir.Graph) -> None:
    """Move the nodes of ``graph`` before ``if_node`` whose results only ``branch`` uses."""
    inside = {id(n) for n in ir.traversal.RecursiveGraphIterator(branch)}
    graph_outputs = {id(v) for v in graph.outputs}
    nodes = list(graph)
    moved: list[ir.Node] = []
    for candidate in reversed(nodes[: nodes.index(if_node)]):
        users = [use.node for out in candidate.outputs for use in out.uses()]
        private = (
            bool(users)
            and not any(id(out) in graph_outputs for out in candidate.outputs)
            and all(id(user) in inside for user in users)
        )
        if private:
            moved.append(candidate)
            inside.add(id(candidate))
            inside.update(
                id(n) for g in _subgraphs(candidate) for n in ir.traversal.RecursiveGraphIterator(g)
            )
    if not moved:
        return
    moved.reverse()
    for candidate in moved:
        graph.remove(candidate)
    first = next(iter(branch), None)
    if first is None:
        branch.extend(moved)
    else:
        branch.insert_before(first, moved)


def sink_into_branches(graph: ir.Graph) -> None:
    """Make the ``If`` nodes of ``graph`` (and of its subgraphs) lazy.

    Nodes used only by one branch of an ``If`` move into that branch, the last ``If`` first,
    then nested graphs are processed the same way.
    """
    for node in reversed(list(graph)):
        if node.op_type == "If" and node.domain == "":
            for branch in _subgraphs(node):
                _sink(graph, node, branch)
    for node in graph:
        for subgraph in _subgraphs(node):
            sink_into_branches(subgraph)
