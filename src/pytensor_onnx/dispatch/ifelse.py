"""Converters for PyTensor's ``IfElse`` (``pytensor.ifelse`` / ``pytensor.conditional``).

``ifelse(cond, then..., else...)`` becomes one ONNX ``If`` whose branches output the branch
values.  The graph is converted in topological order, so the branch values are first built
in the enclosing graph; :func:`sink_into_branches` (run by ``build_model`` once the whole
graph is converted) then moves every node whose results are used by one branch only into
that branch, so that ONNX Runtime, like PyTensor's lazy ``ifelse``, computes only the
branch it takes.

PyTensor 3's ``LazyIfElse`` holds its branches as ``OpFromGraph``s: their inner graphs are
converted directly inside the ``If`` branches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import onnx_ir as ir
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply, Variable

from pytensor_onnx.builder import ONNXBuilder, variable_dtype, variable_shape
from pytensor_onnx.dispatch.basic import convert_nodes, onnx_funcify, optional_classes
from pytensor_onnx.dispatch.scan import rewritten_inner_graph

try:  # PyTensor 3
    from pytensor.conditional.op import IfElse
except ImportError:  # PyTensor 2
    from pytensor.ifelse import IfElse  # type: ignore[no-redef]

Values = Sequence[ir.Value]


def if_then_else(
    builder: ONNXBuilder,
    condition: ir.Value,
    outputs: Sequence[Variable],
    then_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
    else_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
) -> list[ir.Value]:
    """Append an ONNX ``If`` on the 0-d bool ``condition``; its results are typed like the
    PyTensor variables ``outputs``.  Each ``compute`` makes its branch's values in the
    branch's builder (values of enclosing graphs may be read there)."""
    dtypes = [variable_dtype(var) for var in outputs]

    def typed(compute: Callable[[ONNXBuilder], Sequence[ir.Value]]) -> Callable[..., Values]:
        def cast(branch: ONNXBuilder) -> Values:
            values = compute(branch)
            return [branch.cast(v, dtype) for v, dtype in zip(values, dtypes, strict=True)]

        return cast

    values = builder.if_then_else(condition, typed(then_compute), typed(else_compute), dtypes)
    for var, value in zip(outputs, values, strict=True):
        # The branches may differ in static shape: keep only what the PyTensor type knows.
        value.shape = ir.Shape(variable_shape(var))
    return values


def _if_node(
    builder: ONNXBuilder,
    node: Apply,
    then_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
    else_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
) -> list[ir.Value]:
    """Append an ``If`` on ``node.inputs[0]`` with the given branch computations."""
    condition = builder.input(node, 0, "bool")
    return if_then_else(builder, condition, node.outputs, then_compute, else_compute)


@onnx_funcify.register(IfElse)
def _ifelse(op: IfElse, node: Apply, builder: ONNXBuilder) -> Values:
    # The branch values are converted in the enclosing graph; sink_into_branches moves them.
    n_outs = op.n_outs
    then_values = [builder.input(node, 1 + i) for i in range(n_outs)]
    else_values = [builder.input(node, 1 + n_outs + i) for i in range(n_outs)]
    return _if_node(builder, node, lambda _: then_values, lambda _: else_values)


def _inline_branch(branch_op: OpFromGraph, node: Apply) -> Callable[[ONNXBuilder], Values]:
    def compute(branch: ONNXBuilder) -> Values:
        fgraph = rewritten_inner_graph(branch_op.fgraph)
        for inner, outer in zip(fgraph.inputs, node.inputs[1:], strict=True):
            branch.bind(inner, branch.value(outer))
        convert_nodes(fgraph.toposort(), branch)
        return [branch.value(out) for out in fgraph.outputs]

    return compute


for _lazy in optional_classes("pytensor.conditional.op", "LazyIfElse"):

    @onnx_funcify.register(_lazy)
    def _lazy_ifelse(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
        # PyTensor 3: each branch is an OpFromGraph of the shared inputs.
        then_compute = _inline_branch(op.true_branch, node)
        return _if_node(builder, node, then_compute, _inline_branch(op.false_branch, node))


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
        # An If moved into a later If's branch is handled when that branch is visited.
        if node.op_type == "If" and node.domain == "" and node.graph is graph:
            for branch in _subgraphs(node):
                _sink(graph, node, branch)
    for node in graph:
        for subgraph in _subgraphs(node):
            sink_into_branches(subgraph)
