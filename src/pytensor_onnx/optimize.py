"""The ONNX-level optimization stage: rewrites of the converted graph into the operators that
ONNX Runtime runs as fused kernels.

:func:`optimize` runs on the onnx-ir model after conversion and shape inference, before the
checks (``export_onnx`` and ``mode="ONNX"``; ``verify``'s comparison of intermediate values
reads the unoptimized graph, where every PyTensor variable has its value).  Each rewrite
looks at one node and its direct producers, so the stage is linear in the size of the graph;
a rewrite applies only where it computes the same values, NaN and infinities included:

* ``Max(x, 0)`` with a constant zero that does not broadcast ``x`` is ``Relu(x)`` (both
  propagate NaN in ONNX Runtime; ``Relu`` keeps the sign of ``-0.0``, which compares equal
  to the ``+0.0`` of ``maximum``); ONNX Runtime fuses ``Relu`` into a preceding ``Gemm``;
* ``Add(MatMul(a, b), c)`` with ``a`` and ``b`` of rank 2, ``c`` of shape ``(n,)`` or
  ``(1, n)`` and a ``MatMul`` used only there is ``Gemm(a, b, c)``, in float32 (the bias is
  added inside the product's accumulation: the result may differ from ``MatMul`` then
  ``Add`` in the last bit); a bias ``Unsqueeze(v, [0])`` is passed as ``v``.  float64 keeps
  ``MatMul`` and ``Add``, which ONNX Runtime fuses itself at load: tract 0.23 fails a
  float64 ``Gemm`` (it applies the float32 ``beta`` attribute to the float64 bias).

Nodes left without use are removed afterwards.
"""

from __future__ import annotations

import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
from onnx_ir.traversal import RecursiveGraphIterator

#: The dtypes ``Relu`` replaces ``Max`` in.
_FLOATS = frozenset({ir.DataType.FLOAT, ir.DataType.DOUBLE})


def optimize(model: ir.Model) -> None:
    """Rewrite ``model`` in place (see the module documentation)."""
    graphs = {model.graph, *(node.graph for node in RecursiveGraphIterator(model.graph))}
    for graph in graphs:
        if graph is None:
            continue
        for node in list(graph):
            if node.domain != "":
                continue
            if node.op_type == "Max":
                _relu(graph, node)
            elif node.op_type == "Add":
                _gemm(graph, node)
    ir_passes.RemoveUnusedNodesPass()(model)


def _replace(graph: ir.Graph, node: ir.Node, new: ir.Node) -> None:
    """Put ``new`` in the place of the one-output ``node``, with its output's type and shape
    and its metadata (provenance)."""
    old_out, new_out = node.outputs[0], new.outputs[0]
    new_out.type, new_out.shape = old_out.type, old_out.shape
    new.metadata_props.update(node.metadata_props)
    ir.convenience.replace_nodes_and_values(graph, node, [node], [new], [old_out], [new_out])


def _rank(value: ir.Value) -> int | None:
    return None if value.shape is None else len(value.shape)


def _relu(graph: ir.Graph, node: ir.Node) -> None:
    if len(node.inputs) != 2:
        return
    for x, other in (node.inputs, node.inputs[::-1]):
        zero = None if other is None else ir.convenience.get_const_tensor(other)
        rank = None if x is None else _rank(x)
        if (
            x is not None
            and zero is not None
            and x.dtype in _FLOATS
            and zero.dtype == x.dtype
            and rank is not None
            and len(zero.shape) <= rank
            and zero.size == 1
            and float(zero.numpy().reshape(())) == 0.0
        ):
            _replace(graph, node, ir.node("Relu", [x]))
            return


def _gemm(graph: ir.Graph, node: ir.Node) -> None:
    if len(node.inputs) != 2:
        return
    for product, bias in (node.inputs, node.inputs[::-1]):
        if product is None or bias is None:
            return
        matmul = product.producer()
        if (
            matmul is None
            or matmul.op_type != "MatMul"
            or matmul.domain != ""
            or len(product.uses()) != 1
            or product.dtype != ir.DataType.FLOAT
            or bias.dtype != product.dtype
        ):
            continue
        a, b = matmul.inputs
        if a is None or b is None or _rank(a) != 2 or b.shape is None or len(b.shape) != 2:
            continue
        n = b.shape[1]
        if isinstance(n, int) and bias.shape is not None and _row_of(bias.shape, n):
            _replace(graph, node, ir.node("Gemm", [a, b, _unexpanded_row(bias)]))
            return


def _unexpanded_row(bias: ir.Value) -> ir.Value:
    """The vector ``v`` if ``bias`` is ``Unsqueeze(v, [0])`` (``Gemm`` broadcasts it alike),
    else ``bias``."""
    unsqueeze = bias.producer()
    if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or unsqueeze.domain != "":
        return bias
    vector, axes = unsqueeze.inputs
    axes_tensor = None if axes is None else ir.convenience.get_const_tensor(axes)
    if (
        vector is None
        or _rank(vector) != 1
        or axes_tensor is None
        or axes_tensor.numpy().tolist() not in ([0], [-2])
    ):
        return bias
    return vector


def _row_of(shape: ir.Shape, n: int) -> bool:
    """Whether ``shape`` is ``(n,)`` or ``(1, n)`` (a bias that ``Gemm`` broadcasts)."""
    dims = list(shape)
    return dims == [n] or dims == [1, n]


__all__ = ["optimize"]
