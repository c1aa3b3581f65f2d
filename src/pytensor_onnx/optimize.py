"""The ONNX-level optimization stage: constant folding, no-op and common-subexpression
elimination, and rewrites into the operators that ONNX Runtime runs as fused kernels.

:func:`optimize` runs on the onnx-ir model after conversion and shape inference, before the
checks (``export_onnx`` and ``mode="ONNX"``; ``verify``'s comparison of intermediate values
reads the unoptimized graph, where every PyTensor variable has its value).  Every step looks
at one node and its direct producers, in the main graph and in every subgraph, so the stage
is linear in the size of the graph; a step applies only where it computes the same values,
NaN and infinities included:

* **constant folding**: a node of a data-movement operator or a ``Cast`` (:data:`FOLDABLE`)
  whose inputs are all constants becomes a constant computed by ``onnx.reference`` (the
  specification's semantics), e.g. the ``Unsqueeze`` of a constant bias becomes a new
  initializer.  Constants are ``Constant`` outputs and the initializers of constants; graph
  inputs are not, nor are the initializers of shared variables, which keep their names and
  shapes so that their values can be replaced in the file.  A fold never grows the file by
  more than a small constant: a result larger than ``CONSTANT_NODE_MAX_SIZE`` elements is
  folded only where its large inputs have no other use (they are then removed) and it is
  not larger than them.  A ``Cast`` from a float to an integer type is folded only for
  finite values (ONNX leaves the others undefined);
* **no-op removal**: a ``Cast`` to the dtype its input has, and a ``Reshape`` or ``Expand``
  whose input already has the (static) output shape, are bypassed;
* **rank-matched scalars**: a constant of one element that a broadcasting elementwise
  operator (:data:`BROADCASTING`) combines with an input of higher (known) rank gets that
  rank, e.g. ``Add(x, c)`` with ``x`` of shape ``(n, 1)`` and ``c`` of shape ``()`` reads a
  ``c`` of shape ``(1, 1)``: the same values, but ONNX Runtime 1.32 broadcasts a
  lower-rank scalar against a last axis of length 1 element by element (84 µs instead of
  5 µs for 10,000 float64 values);
* **non-negative reduction axes**: the negative axes of a reduction (``Reduce*``,
  ``ArgMax``, ``ArgMin``) whose input has a known rank are written as the equivalent
  non-negative ones: ONNX Runtime 1.30/1.31 (onnxruntime-web/-node) return an empty input
  unchanged from a reduction over a negative axis (a wrong shape, and where the reduced
  axis is the empty one, no values where sums of nothing belong);
* **loop-invariant code motion**: a node of a ``Loop`` body that reads no value of the
  iteration, of an operator that cannot fail at run time (:data:`HOISTABLE`), is moved
  before the loop and computed once (``Scan`` bodies stay self-contained for OpenVINO);
* **common-subexpression elimination**: a node that computes what an earlier node of its
  graph computes is removed, in the main graph and in every subgraph; nodes with subgraphs
  (``Loop``, ``Scan``, ``If``) are compared by the structure of their subgraphs, so the
  equal derivative loops that PyTensor's gradient builds for each use of a special function
  run once (onnx-ir's pass skips such nodes);
* ``Max(x, 0)`` with a constant zero that does not broadcast ``x`` is ``Relu(x)`` (both
  propagate NaN in ONNX Runtime; ``Relu`` keeps the sign of ``-0.0``, which compares equal
  to the ``+0.0`` of ``maximum``); ONNX Runtime fuses ``Relu`` into a preceding ``Gemm``;
* ``Add(MatMul(a, b), c)`` with ``a`` and ``b`` of rank 2, ``c`` of shape ``(n,)`` or
  ``(1, n)`` and a ``MatMul`` used only there is ``Gemm(a, b, c)``, in float32 (the bias is
  added inside the product's accumulation: the result may differ from ``MatMul`` then
  ``Add`` in the last bit); a bias ``Unsqueeze(v, [0])`` is passed as ``v``.  float64 keeps
  ``MatMul`` and ``Add``, which ONNX Runtime fuses itself at load: tract 0.23 fails a
  float64 ``Gemm`` (it applies the float32 ``beta`` attribute to the float64 bias).

Values that are graph outputs are never folded or bypassed (their names are the model's
interface).  Nodes and initializers left without use are removed at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
from onnx.reference import ReferenceEvaluator
from onnx_ir.traversal import RecursiveGraphIterator

from pytensor_onnx.builder import CONSTANT_NODE_MAX_SIZE

#: The dtypes ``Relu`` replaces ``Max`` in.
_FLOATS = frozenset({ir.DataType.FLOAT, ir.DataType.DOUBLE})

#: The key of ``ir.Value.meta`` that marks the initializer of a shared variable (a model
#: parameter, never folded into another value).
PARAMETER = "pytensor_onnx.parameter"

#: Operators whose nodes are folded when all their inputs are constants: they move or
#: reinterpret data (``Cast`` rounds exactly as every runtime does), so the folded value is
#: the one any runtime would compute.
FOLDABLE = frozenset(
    {
        "Cast",
        "Concat",
        "Expand",
        "Gather",
        "Reshape",
        "Shape",
        "Size",
        "Slice",
        "Squeeze",
        "Transpose",
        "Unsqueeze",
    }
)


#: Elementwise operators whose inputs broadcast (multidirectionally) against each other.
BROADCASTING = frozenset(
    {
        "Add",
        "And",
        "BitShift",
        "BitwiseAnd",
        "BitwiseOr",
        "BitwiseXor",
        "Div",
        "Equal",
        "Greater",
        "GreaterOrEqual",
        "Less",
        "LessOrEqual",
        "Max",
        "Min",
        "Mod",
        "Mul",
        "Or",
        "Pow",
        "Sub",
        "Sum",
        "Where",
        "Xor",
    }
)


def optimize(model: ir.Model) -> None:
    """Rewrite ``model`` in place (see the module documentation)."""
    subgraphs = (node.graph for node in RecursiveGraphIterator(model.graph))
    graphs = [g for g in dict.fromkeys([model.graph, *subgraphs]) if isinstance(g, ir.Graph)]
    taken = {
        value.name for graph in graphs for value in (*graph.inputs, *graph.initializers.values())
    } | {value.name for graph in graphs for node in graph for value in node.outputs}
    for graph in graphs:
        constants = _Constants(graph, taken)
        for node in list(graph):
            if node.domain != "":
                continue
            if node.op_type in FOLDABLE:
                _fold(model, graph, node)
            if node.graph is graph and node.op_type in ("Cast", "Reshape", "Expand"):
                _bypass_no_op(graph, node)
            if node.graph is graph and node.op_type in BROADCASTING:
                _match_scalar_ranks(node, constants)
            if node.graph is graph and _is_reduction(node.op_type):
                _nonnegative_axes(node, constants)
    _hoist_loop_invariants(model.graph)
    _eliminate_common_subexpressions(model.graph)
    for graph in graphs:
        for node in list(graph):
            if node.domain != "":
                continue
            if node.op_type == "Max":
                _relu(graph, node)
            elif node.op_type == "Add":
                _gemm(graph, node)
    ir_passes.RemoveUnusedNodesPass()(model)


#: Operators moved out of ``Loop`` bodies when they read nothing that changes
#: between iterations.  None of them can fail at run time on inputs of broadcastable shapes
#: (``Div``, ``Mod`` and ``Pow`` only on floats: an integer division by zero may crash), so
#: computing them once before the loop, also for a loop of no iteration, changes nothing.
HOISTABLE = frozenset(
    {
        "Abs",
        "Add",
        "And",
        "Cast",
        "Ceil",
        "Constant",
        "Cos",
        "Div",
        "Equal",
        "Exp",
        "Floor",
        "Greater",
        "GreaterOrEqual",
        "Identity",
        "IsInf",
        "IsNaN",
        "Less",
        "LessOrEqual",
        "Log",
        "Max",
        "Min",
        "Mod",
        "Mul",
        "Neg",
        "Not",
        "Or",
        "Pow",
        "Reciprocal",
        "Round",
        "Sign",
        "Sin",
        "Sqrt",
        "Sub",
        "Tanh",
        "Where",
        "Xor",
    }
)
_FLOAT_ONLY = frozenset({"Div", "Mod", "Pow"})


def _hoist_loop_invariants(graph: ir.Graph) -> None:
    """Move the nodes of the ``Loop`` bodies of ``graph`` that read no iteration value (a
    body input, or a body node that does) before their loop; inner loops first, so that a
    node invariant in two nested loops leaves both.  Body outputs stay in the body.
    ``Scan`` bodies are left self-contained: OpenVINO miscounts the inputs of a ``Scan``
    whose body reads enclosing graphs."""
    for node in list(graph):
        for subgraph in _node_subgraphs(node):
            _hoist_loop_invariants(subgraph)
        if node.domain != "" or node.op_type != "Loop":
            continue
        body = node.attributes["body"].as_graph()
        varying = {*body.inputs, *body.initializers.values()}
        outputs = set(body.outputs)
        names: set[str | None] | None = None
        for inner in list(body):
            if (
                _hoistable(inner)
                and not any(value in varying for value in inner.inputs if value is not None)
                and not any(value in outputs for value in inner.outputs)
            ):
                if names is None:
                    names = {other.name for other in graph}
                body.remove(inner)
                inner.name = _unused_name(f"{node.name}_{inner.name}", names)
                graph.insert_before(node, inner)
            else:
                varying.update(inner.outputs)


def _unused_name(name: str, taken: set[str | None]) -> str:
    """``name``, or ``name`` with a numeric suffix, not in ``taken`` (which gets it)."""
    candidate, suffix = name, 0
    while candidate in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    taken.add(candidate)
    return candidate


def _hoistable(node: ir.Node) -> bool:
    if node.domain != "" or node.op_type not in HOISTABLE:
        return False
    return node.op_type not in _FLOAT_ONLY or all(
        value.dtype is not None and value.dtype.is_floating_point() for value in node.outputs
    )


def _eliminate_common_subexpressions(graph: ir.Graph) -> None:
    """Merge the nodes of ``graph`` that compute the same values as an earlier node.

    Nodes with subgraphs (``Loop``, ``Scan``, ``If``) are compared by structure: their
    subgraphs are merged first, then compared node by node, with the subgraph inputs by
    position and the values of enclosing graphs by identity.  Values are visited in
    topological order, so every input of a node is already the one kept.  Every operator
    the export emits is deterministic (a random draw is a function of the seed input and of its
    node's own stream number), so equal inputs give equal outputs.
    """
    kept: dict[_Key, ir.Node] = {}
    for node in list(graph):
        for subgraph in _node_subgraphs(node):
            _eliminate_common_subexpressions(subgraph)
        key = _node_key(node, lambda value: value)
        earlier = kept.setdefault(key, node)
        if earlier is not node:
            _merge(graph, node, earlier)


#: The structural key of a node or graph: tuples of strings, numbers, bytes and the
#: ``ir.Value`` objects of enclosing graphs (compared by identity).
_Key = tuple[object, ...]


def _subgraphs(attribute: ir.Attr) -> list[ir.Graph]:
    if attribute.type == ir.AttributeType.GRAPH:
        return [attribute.as_graph()]
    if attribute.type == ir.AttributeType.GRAPHS:
        return list(attribute.as_graphs())
    return []


def _node_subgraphs(node: ir.Node) -> list[ir.Graph]:
    """The subgraphs of ``node``'s attributes (a ``Loop`` body, an ``If``'s branches)."""
    return [subgraph for a in node.attributes.values() for subgraph in _subgraphs(a)]


def _node_key(node: ir.Node, ref: Callable[[ir.Value], object]) -> _Key:
    """What ``node`` computes, with each input named by ``ref``."""
    return (
        node.domain,
        node.op_type,
        node.overload,
        len(node.outputs),
        tuple(None if value is None else ref(value) for value in node.inputs),
        tuple(sorted((name, _attribute_key(a)) for name, a in node.attributes.items())),
    )


def _attribute_key(attribute: ir.Attr) -> object:
    """A value equal for attributes of equal meaning; an attribute of a kind not compared
    (a reference, a sparse tensor, a type) gets a key equal to nothing else."""
    if attribute.is_ref():
        return attribute
    kind, value = attribute.type, attribute.value
    if kind in (ir.AttributeType.INT, ir.AttributeType.STRING):
        return value
    if kind in (ir.AttributeType.INTS, ir.AttributeType.STRINGS):
        return tuple(value)
    if kind == ir.AttributeType.FLOAT:
        return float(value).hex()  # tells -0.0 from 0.0
    if kind == ir.AttributeType.FLOATS:
        return tuple(float(x).hex() for x in value)
    if kind == ir.AttributeType.TENSOR:
        return _tensor_key(value)
    if kind == ir.AttributeType.TENSORS:
        return tuple(_tensor_key(t) for t in value)
    if kind in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS):
        return tuple(_graph_key(g) for g in _subgraphs(attribute))
    return attribute


def _tensor_key(tensor: ir.TensorProtocol) -> _Key:
    array = tensor.numpy()
    return (tensor.dtype, array.shape, array.tobytes())


def _graph_key(graph: ir.Graph) -> _Key:
    """What ``graph`` computes from its inputs (by position) and the values of enclosing
    graphs (by identity)."""
    local: dict[ir.Value, _Key] = {
        value: ("input", index) for index, value in enumerate(graph.inputs)
    }

    def ref(value: ir.Value) -> object:
        return local.get(value, value)

    nodes = []
    for index, node in enumerate(graph):
        nodes.append(_node_key(node, ref))
        for output_index, output in enumerate(node.outputs):
            local[output] = ("node", index, output_index)
    return (
        tuple(value.dtype for value in graph.inputs),
        tuple(nodes),
        tuple(ref(value) for value in graph.outputs),
    )


def _merge(graph: ir.Graph, node: ir.Node, earlier: ir.Node) -> None:
    """Remove ``node``, whose outputs equal those of ``earlier``, from ``graph``.

    A graph output of ``node`` keeps its name, type and shape: ``earlier``'s output takes
    them over, or, if it is a graph input or output itself, an ``Identity`` of it does.
    """
    for old, new in zip(node.outputs, earlier.outputs, strict=True):
        if old.is_graph_output():
            output = new
            if new.is_graph_input() or new.is_graph_output():
                identity = ir.node("Identity", [new])
                graph.insert_before(node, identity)
                output = identity.outputs[0]
            output.name, output.type, output.shape = old.name, old.type, old.shape
            for index, value in enumerate(graph.outputs):
                if value is old:
                    graph.outputs[index] = output
        ir.convenience.replace_all_uses_with(old, new)
    for subgraph in _node_subgraphs(node):
        for inner in RecursiveGraphIterator(subgraph):
            for index in range(len(inner.inputs)):
                inner.replace_input_with(index, None)
    graph.remove(node, safe=True)


def _constant(value: ir.Value | None) -> np.ndarray | None:
    """The value's array if it is a constant of the model (not a graph input or parameter)."""
    if value is None or value.is_graph_input() or value.meta.get(PARAMETER):
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def _fold(model: ir.Model, graph: ir.Graph, node: ir.Node) -> None:
    """Replace ``node`` by the constant it computes if all its inputs are constants (see the
    module documentation for when it is not)."""
    out = node.outputs[0]
    if len(node.outputs) != 1 or out.is_graph_output() or not node.inputs:
        return
    arrays: list[np.ndarray] = []
    for input_value in node.inputs:
        array = _constant(input_value)
        if array is None:
            return
        arrays.append(array)
    if node.op_type == "Cast" and arrays[0].dtype.kind == "f" and not np.isfinite(arrays[0]).all():
        to = ir.DataType(node.attributes["to"].as_int())
        if not (to.is_floating_point() or to == ir.DataType.BOOL):
            return
    proto = ir.serde.serialize_node(node)
    proto.ClearField("input")
    proto.ClearField("output")
    names = [f"x{i}" for i in range(len(arrays))]
    proto.input.extend(names)
    proto.output.append("y")
    try:
        with np.errstate(all="ignore"):
            (result,) = ReferenceEvaluator(proto).run(None, dict(zip(names, arrays, strict=True)))
    except Exception:  # e.g. an index out of range: left for the runtime to report
        return
    result = np.asarray(result)
    if result.size > CONSTANT_NODE_MAX_SIZE and not (
        all(
            len(v.uses()) == 1
            for v, a in zip(node.inputs, arrays, strict=True)
            if v is not None and a.size > CONSTANT_NODE_MAX_SIZE
        )
        and result.size <= sum(a.size for a in arrays)
    ):
        return
    tensor = ir.Tensor(result)
    if result.size > CONSTANT_NODE_MAX_SIZE and graph is model.graph:
        value = ir.Value(type=ir.TensorType(tensor.dtype), shape=ir.Shape(result.shape))
        value.const_value = tensor
    else:
        constant = ir.node("Constant", [], attributes={"value": tensor})
        constant.metadata_props.update(node.metadata_props)
        graph.insert_before(node, constant)
        value = constant.outputs[0]
        value.type, value.shape = ir.TensorType(tensor.dtype), ir.Shape(result.shape)
    ir.convenience.replace_all_uses_with(out, value)
    graph.remove(node, safe=True)
    value.name = out.name
    if value.producer() is None:
        graph.register_initializer(value)


class _Constants:
    """Constants of a graph by value, dtype and shape, made on demand with names unused in
    the model (``taken``, which grows)."""

    def __init__(self, graph: ir.Graph, taken: set[str | None]) -> None:
        self.graph = graph
        self.taken = taken
        self.made: dict[tuple[bytes, str, tuple[int, ...]], ir.Value] = {}

    def get(self, array: np.ndarray, before: ir.Node, name: str) -> ir.Value:
        """The constant ``array``, inserted before ``before`` and named after ``name``."""
        key = (array.tobytes(), array.dtype.str, array.shape)
        if key not in self.made:
            constant = ir.node("Constant", [], {"value": ir.tensor(array)})
            constant.metadata_props.update(before.metadata_props)  # provenance
            self.graph.insert_before(before, constant)
            value = constant.outputs[0]
            value.type = ir.TensorType(ir.DataType.from_numpy(array.dtype))
            value.shape = ir.Shape(array.shape)
            value.name = _unused_name(name, self.taken)
            self.made[key] = value
        return self.made[key]


def _match_scalar_ranks(node: ir.Node, constants: _Constants) -> None:
    """Give the one-element constant inputs of ``node`` the largest rank among its inputs."""
    ranks = [None if x is None else _rank(x) for x in node.inputs]
    known = [r for r in ranks if r is not None]
    if not known or len(known) != len(ranks):
        return
    rank = max(known)
    for index, x in enumerate(node.inputs):
        if (
            x is None
            or x.shape is None
            or len(x.shape) >= rank
            or list(x.shape) != [1] * len(x.shape)
        ):
            continue
        array = _constant(x)
        if array is not None:
            ranked = constants.get(
                array.reshape((1,) * rank), node, f"{x.name or 'scalar'}_rank{rank}"
            )
            node.replace_input_with(index, ranked)


def _is_reduction(op_type: str) -> bool:
    """Whether ``op_type`` reduces over axes of its first input (``Reduce*``, ``ArgMax``,
    ``ArgMin``)."""
    return op_type.startswith(("Reduce", "Arg"))


def _nonnegative_axes(node: ir.Node, constants: _Constants) -> None:
    """Write the negative axes of a reduction (an ``axes`` input or attribute, an ``axis``
    attribute) as the equivalent non-negative ones where its input's rank is known."""
    x = node.inputs[0] if node.inputs else None
    rank = None if x is None else _rank(x)
    if rank is None:
        return
    for name, attribute in list(node.attributes.items()):
        if name == "axis" and attribute.as_int() < 0:
            node.attributes[name] = ir.AttrInt64(name, attribute.as_int() + rank)
        elif name == "axes" and any(axis < 0 for axis in attribute.as_ints()):
            axes = [axis + rank if axis < 0 else axis for axis in attribute.as_ints()]
            node.attributes[name] = ir.AttrInt64s(name, axes)
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        array = _constant(node.inputs[1])
        if array is not None and (array < 0).any():
            nonnegative = np.where(array < 0, array + rank, array)
            axes_value = constants.get(nonnegative, node, f"{node.inputs[1].name}_nonnegative")
            node.replace_input_with(1, axes_value)


def _bypass_no_op(graph: ir.Graph, node: ir.Node) -> None:
    """Let the users of a ``Cast`` to its input's dtype, or of a ``Reshape``/``Expand`` to
    its input's static shape, read the input."""
    x, out = node.inputs[0], node.outputs[0]
    if x is None or out.is_graph_output():
        return
    if node.op_type == "Cast":
        if x.dtype is None or x.dtype != ir.DataType(node.attributes["to"].as_int()):
            return
    elif not (
        x.shape is not None
        and out.shape is not None
        and x.shape.is_static()
        and out.shape.is_static()
        and list(x.shape) == list(out.shape)
    ):
        return
    ir.convenience.replace_all_uses_with(out, x)


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
