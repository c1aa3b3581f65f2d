"""The one construction of ONNX ``Loop`` and ``Scan`` nodes, shared by every converter that
iterates.

:class:`LoopBody` builds a loop body (iteration number, condition, loop-carried values,
sequences, per-step outputs) and appends the node; everything that iterates goes through
it.  A loop without condition and with a known, positive number of steps becomes an ONNX
``Scan`` (``LoopBody(..., scan=True)``): runtimes without ``Loop`` (tract) run it, and ONNX
Runtime runs it 1.2-2x faster (``benchmarks/bench_scan.py``); so does one whose count is known
only at run time, where its steps can run on empty data (a guarded ``Scan``, see
:meth:`LoopBody._build_guarded_scan`).  Its body is self-contained: values of enclosing graphs
that it reads become pass-through state (OpenVINO's ``Scan`` import miscounts the inputs of
bodies that read enclosing scopes), sequences become scan inputs.  For tract, the loops
that opt in (``float_sizes``) pass the integers computed from shapes that their bodies read
into the body as float64 (:meth:`LoopBody._float_carrier`), and every ``Scan`` passes the
model's named input dimensions through (:meth:`ONNXBuilder.dimension_anchor`).
Two drivers cover the common shapes of iteration:

* :func:`fori_loop`: a fixed number of steps ``k = 0 .. count-1`` (column steps of the
  factorizations, cumulative products, sequential reductions), unrolled when the count is
  static and small;
* :func:`while_any`: an elementwise iteration that runs until no element asks for more
  (series and continued fractions of the special functions, Jacobi sweeps).

``Scan`` and ``ScalarLoop`` use :class:`LoopBody` directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnx
import onnx_ir as ir
from onnx_ir.traversal import RecursiveGraphIterator
from pytensor.graph.basic import Variable
from pytensor.tensor.type import TensorType

from pytensor_onnx.builder import ONNXBuilder, onnx_dtype, variable_dtype, variable_shape
from pytensor_onnx.dispatch._numerics import Num

#: Largest static step count that :func:`fori_loop` unrolls instead of emitting a ``Loop``.
UNROLL_MAX = 12

ShapeLike = ir.Shape | Sequence[int | None] | None


class LoopBody:
    """The builder of an ONNX ``Loop`` body: iteration number, condition, carried values.

    Add carried values with :meth:`carry` (and their next values with :meth:`carry_out`, in
    the same order), per-step outputs with :meth:`scan_out` and, for a while loop, the
    condition with :meth:`continue_while`; then :meth:`build` appends the ``Loop`` node to
    the enclosing graph.  The body sees the enclosing graph's values by ONNX's scoping rules.

    Parameters
    ----------
    builder
        The builder of the graph holding the ``Loop`` node.
    name
        The body graph's name (made unique in the model).
    scan
        Build an ONNX ``Scan`` (no condition allowed) instead of a ``Loop`` where it can: for
        a constant, positive trip count and a body whose outputs have known ranks.
    any_count
        With ``scan``, also for a count known only at run time (or zero): the ``Scan`` then
        runs ``max(count, 1)`` steps (see :meth:`_build_guarded_scan`), so the body must
        compute without error on its initial values and sequence entries of zeros, which
        the loop bodies of ``Scan`` Ops do; bodies that index data by the step number (the
        column steps of a factorization of size ``count``) do not.
    float_sizes
        With ``scan``, pass the integers computed from shapes that the body reads, and the
        carried values added with ``position``, as float64 (see :meth:`_float_carrier`).
        Only for bodies whose such integers are the converter's own sizes and positions,
        never user data (float64 is exact only below 2**53).

    Attributes
    ----------
    inner
        The builder of the body graph.
    iteration
        The 0-d int64 iteration number (``0, 1, ...``).
    condition
        The 0-d bool condition the body receives.
    """

    def __init__(
        self,
        builder: ONNXBuilder,
        name: str,
        *,
        scan: bool = False,
        any_count: bool = False,
        float_sizes: bool = False,
    ) -> None:
        self.outer = builder
        self.scan = scan
        self.any_count = any_count
        self.float_sizes = float_sizes
        self._positions: set[int] = set()
        self._sequences: list[tuple[ir.Value, ir.Value]] = []
        self.inner = ONNXBuilder(
            builder.opset, builder.names.claim(name), parent=builder, names=builder.names
        )
        self.iteration = self._graph_input("iteration", "int64", ())
        self.condition = self._graph_input("condition", "bool", ())
        self._initial: list[ir.Value] = []
        self._carried_in: list[ir.Value] = []
        self._carried_out: list[ir.Value] = []
        self._scan_out: list[ir.Value] = []
        self._condition_out: ir.Value | None = None

    def _graph_input(self, name: str, dtype: str, shape: ShapeLike) -> ir.Value:
        value = ir.Value(
            name=self.inner.names.claim(name),
            type=ir.TensorType(onnx_dtype(dtype)),
            shape=shape if shape is None or isinstance(shape, ir.Shape) else ir.Shape(shape),
        )
        self.inner.graph.inputs.append(value)
        return value

    def carry(
        self,
        initial: ir.Value,
        name: str,
        dtype: str,
        shape: ShapeLike = None,
        *,
        position: bool = False,
    ) -> ir.Value:
        """Add a loop-carried value starting at ``initial``; return its in-body value.

        ``shape`` is the value's shape if it is the same at every step (``None``: unknown);
        ``position`` marks int64 sizes or positions (see :class:`Carry`).
        """
        if position:
            self._positions.add(len(self._initial))
        value = self._graph_input(name, dtype, shape)
        self._initial.append(initial)
        self._carried_in.append(value)
        return value

    def carry_like(self, initial: ir.Value, name: str, like: Variable) -> ir.Value:
        """:meth:`carry` with the dtype of the PyTensor variable ``like`` and, for a tensor,
        its static shape (scalar variables inside a ``Composite`` stand for tensors of any
        shape, so theirs is left unknown)."""
        shape = variable_shape(like) if isinstance(like.type, TensorType) else None
        return self.carry(initial, name, variable_dtype(like), shape)

    def sequence(self, outer: ir.Value, like: Variable) -> ir.Value:
        """Step ``k``'s entry ``outer[k]`` of a sequence at least as long as the trip count
        (the PyTensor variable ``like`` types it): a scan input of a ``Scan``, which
        :meth:`build` turns into a ``Gather`` in a ``Loop``."""
        shape = variable_shape(like) if isinstance(like.type, TensorType) else None
        return self.sequence_of(outer, variable_dtype(like), shape)

    def sequence_of(self, outer: ir.Value, dtype: str, shape: ShapeLike) -> ir.Value:
        """:meth:`sequence` for entries of ``dtype`` and ``shape`` (``None``: unknown)."""
        value = self._graph_input("sequence", dtype, shape)  # reordered by build
        self._sequences.append((outer, value))
        return value

    def carry_out(self, value: ir.Value) -> None:
        """The next value of the carried value of the same index (in :meth:`carry` order)."""
        self._carried_out.append(value)

    def scan_out(self, value: ir.Value, dtype: str) -> None:
        """Add a per-step value of ``dtype``; the ``Loop`` stacks them, flattened.

        ``onnx.reference`` stacks scan outputs with ``np.vstack``, which is right for 1-D
        values only; :func:`unstack` restores the step shape after the loop.
        """
        flat = self.inner.op("Reshape", [value, self.inner.int64s([-1])])
        flat.dtype = onnx_dtype(dtype)
        flat.shape = ir.Shape([None])
        self._scan_out.append(flat)

    def continue_while(self, value: ir.Value) -> None:
        """The body's condition output: the loop goes on while this 0-d bool is true."""
        self._condition_out = value

    def build(self, trip_count: ir.Value | None) -> list[ir.Value]:
        """Append the ``Loop`` (or ``Scan``) node; return carried finals then scan outputs.

        ``trip_count`` is a 0-d int64 value, or ``None`` for a loop bounded only by its
        condition (a ``Scan`` needs one).
        """
        if len(self._carried_out) != len(self._initial):
            raise RuntimeError("LoopBody: every carried value needs exactly one next value")
        for carried_in, carried_out in zip(self._carried_in, self._carried_out, strict=True):
            # The carried value keeps its type; a next value of unknown type takes it.
            carried_out.type = carried_out.type or carried_in.type
        if self.scan and trip_count is not None:
            captured = self._captured()
            if self._scan_shapes_known(captured):
                if not self.iteration.uses() and not any(v.uses() for _, v in self._sequences):
                    self._read_iteration()
                    captured = self._captured()  # now with the constant it added
                count = _constant_tensor(trip_count)
                if count is not None and int(count.numpy()) > 0:
                    return self._build_scan(trip_count, captured)
                if self.any_count:
                    return self._build_guarded_scan(trip_count, captured)
        self._sequences_as_gathers()
        condition = self._condition_out if self._condition_out is not None else self.condition
        outputs = [
            self.inner.add_output(v) for v in [condition, *self._carried_out, *self._scan_out]
        ]
        self.inner.name_values()
        # onnx.reference runs no step without an explicit initial condition.
        start = self.outer.const(np.array(True))
        node = ir.Node(
            "",
            "Loop",
            [trip_count, start, *self._initial],
            attributes=[ir.AttrGraph("body", self.inner.graph)],
            num_outputs=len(outputs) - 1,
        )
        self.outer.add_node(node)
        results = list(node.outputs)
        for result, body_out in zip(results, outputs[1:], strict=True):
            result.type = body_out.type
        return results

    def _captured(self) -> dict[ir.Value, list[tuple[ir.Node, int]]]:
        """Values of enclosing graphs read in the body (or its subgraphs), with their uses."""
        nodes = list(RecursiveGraphIterator(self.inner.graph))
        local = {self.inner.graph, *(node.graph for node in nodes)}
        uses: dict[ir.Value, list[tuple[ir.Node, int]]] = {}
        for node in nodes:
            for index, value in enumerate(node.inputs):
                if value is not None and value.graph not in local:
                    uses.setdefault(value, []).append((node, index))
        return uses

    def _scan_shapes_known(self, captured: Iterable[ir.Value]) -> bool:
        """Whether every value the ``Scan`` body would output has a known rank (ONNX
        Runtime refuses ``Scan`` bodies with shapeless outputs; a ``Loop`` is built then)."""
        carried = zip(self._initial, self._carried_in, self._carried_out, strict=True)
        for initial, carried_in, carried_out in carried:
            if carried_in.shape is None and _infer_type(initial, self.outer.opset):
                # A Scan's state keeps its shape (ONNX Runtime checks it at every step).
                carried_in.shape = initial.shape
            if carried_out.shape is None:
                if carried_in.shape is None:
                    return False
                carried_out.shape = carried_in.shape
        return all(
            _infer_type(outer, self.outer.opset)
            for outer in captured
            if not _copied(_constant_tensor(outer))
        )

    def _sequences_as_gathers(self) -> None:
        """Turn the scan inputs back into ``Gather`` reads, for a ``Loop``."""
        inputs = self.inner.graph.inputs
        for outer, value in self._sequences:
            node = ir.Node(
                "", "Gather", [outer, self.iteration], attributes=[ir.AttrInt64("axis", 0)]
            )
            node.outputs[0].type, node.outputs[0].shape = value.type, value.shape
            value.replace_all_uses_with(node.outputs[0])
            inputs.remove(value)
            self._prepend([node])
        self._sequences.clear()
        self.scan = False

    def _prepend(self, nodes: list[ir.Node]) -> None:
        body_nodes = list(self.inner.graph)
        if body_nodes:
            self.inner.graph.insert_before(body_nodes[0], nodes)
        else:
            self.inner.graph.extend(nodes)

    def _read_iteration(self) -> None:
        """Make every output of a ``Scan`` body that reads none of its scan inputs depend on
        the step number, without changing its value.

        OpenVINO drops a scan input that the body does not read and then runs one step only;
        tract refuses such a ``Scan``.  Each output is multiplied by ``iteration > -1`` (true)
        cast to its dtype (``And`` for booleans), which neither can fold away.
        """
        body = self.inner
        valid = body.op("Greater", [self.iteration, body.scalar(-1, "int64")])
        factors: dict[ir.DataType, ir.Value] = {}

        def keep(value: ir.Value) -> ir.Value:
            dtype = value.dtype
            assert dtype is not None  # carried and per-step values are typed
            if dtype == ir.DataType.BOOL:
                result = body.op("And", [value, valid])
            else:
                if dtype not in factors:
                    factors[dtype] = body.cast(valid, _dtype_name(value), "bool")
                result = body.op("Mul", [value, factors[dtype]])
            result.type, result.shape = value.type, value.shape
            return result

        self._carried_out = [keep(v) for v in self._carried_out]
        self._scan_out = [keep(v) for v in self._scan_out]

    def _build_guarded_scan(
        self, trip_count: ir.Value, captured: dict[ir.Value, list[tuple[ir.Node, int]]]
    ) -> list[ir.Value]:
        """A ``Scan`` for a count known only at run time (or not positive).

        ONNX Runtime fails a ``Scan`` of zero steps ("Invalid dim0_offset"), and guarding it
        with an ``If`` breaks tract and OpenVINO.  So the ``Scan`` runs ``max(count, 1)``
        steps, sequences padded with one row of zeros for a step that does not count; where
        the count is not positive, the carried values keep their initial values and the
        per-step outputs are cut to no rows.  The extra step happens only then.
        """
        host = self.outer
        zero, one = host.scalar(0, "int64"), host.scalar(1, "int64")
        # Counts are never negative (loop counts are sizes; PyTensor refuses a negative
        # n_steps, and a negative count fails this Scan's length check).  The count itself,
        # not its maximum with 0, bounds the Slices: tract then sees that the per-step
        # outputs have the count's length, and it follows Max (not Where) of dimensions.
        ran = host.op("Greater", [trip_count, zero])
        steps = host.op("Max", [trip_count, one])
        end = as_1d(host, trip_count)
        # The rows the steps read, then `steps - count` (0 or 1) rows of zeros.
        extra = as_1d(host, host.op("Sub", [steps, trip_count]))
        padded = []
        for outer, inner in self._sequences:
            rows = host.op("Slice", [outer, host.int64s([0]), end])
            padded.append(host.append_zeros(rows, extra, 0, _dtype_name(inner)))
        results = self._build_scan(steps, captured, sequences=padded)
        n_carried = len(self._initial)
        finals = [
            host.typed_op("Where", [ran, final, initial], _dtype_name(final), data=[1, 2])
            for final, initial in zip(results[:n_carried], self._initial, strict=True)
        ]
        stacked = [
            host.op("Slice", [out, host.int64s([0]), end, host.int64s([0])])
            for out in results[n_carried:]
        ]
        for value, like in zip([*finals, *stacked], results, strict=True):
            value.type, value.shape = like.type, like.shape
        return [*finals, *stacked]

    def _float_carrier(self, value: ir.Value) -> bool:
        """Whether the int64 ``value`` of the enclosing graph, read by the body, enters the
        ``Scan`` body as float64 (and is cast back to int64 there).

        tract types integers computed from shapes as dimensions, which do not unify with a
        body's int64 input; float64 holds them exactly (below 2**53) and unifies.  Only with
        ``float_sizes``, and in graphs that compute in float64 anyway: a float32 graph's
        model holds no float64 tensor (tract refuses its loops over sizes known only at run
        time).
        """
        return self._floats_allowed() and _from_shapes(value)

    def _floats_allowed(self) -> bool:
        options = self.outer.options
        return self.float_sizes and bool(options.get("float64")) and not options.get("float32")

    def _carry_as_float(
        self, casts: list[ir.Node]
    ) -> tuple[list[ir.Value], list[ir.Value], list[int]]:
        """The ``Scan``'s initial and body-output carried values, with the positions (see
        :meth:`carry`) carried as float64 where :meth:`_floats_allowed`, and their indices.
        The casts back to int64 at the start of the body are appended to ``casts``."""
        double = ir.TensorType(ir.DataType.DOUBLE)
        initial, carried_out = list(self._initial), list(self._carried_out)
        as_float: list[int] = []
        if not self._floats_allowed():
            return initial, carried_out, as_float
        for k, (start, carried_in) in enumerate(zip(initial, self._carried_in, strict=True)):
            if k not in self._positions:
                continue
            as_float.append(k)
            initial[k] = self.outer.cast(start, "float64")
            uses = list(carried_in.uses())
            node = _cast_node(carried_in, ir.DataType.INT64)
            for user, index in uses:
                user.replace_input_with(index, node.outputs[0])
            casts.append(node)
            initial[k].type = carried_in.type = double
            carried_out[k] = self.inner.cast(carried_out[k], "float64")
            carried_out[k].type, carried_out[k].shape = double, carried_in.shape
        return initial, carried_out, as_float

    def _build_scan(
        self,
        trip_count: ir.Value,
        captured: dict[ir.Value, list[tuple[ir.Node, int]]],
        sequences: list[ir.Value] | None = None,
    ) -> list[ir.Value]:
        """The ``Scan`` node for ``trip_count`` steps; ``sequences`` are the scan inputs if
        already cut to that length (else each sequence's first ``trip_count`` rows)."""
        if self._condition_out is not None or self.condition.uses():
            raise RuntimeError("LoopBody: a Scan has no loop condition")
        anchor = self.outer.dimension_anchor()
        if anchor is not None:
            captured.setdefault(anchor, [])
        captured_outer, captured_in, constants = [], [], []
        for outer, uses in captured.items():
            tensor = _constant_tensor(outer)
            if tensor is not None and _copied(tensor):
                # Copied into the body: runtimes want constant shapes and axes.
                node = ir.Node("", "Constant", [], attributes=[ir.AttrTensor("value", tensor)])
                constants.append(node)
                inner = read = node.outputs[0]
                inner.type, inner.shape = outer.type, outer.shape
            else:
                inner = read = ir.Value(
                    name=self.inner.names.claim("captured"), type=outer.type, shape=outer.shape
                )
                if self._float_carrier(outer):
                    outer = self.outer.cast(outer, "float64")
                    outer.type = inner.type = ir.TensorType(ir.DataType.DOUBLE)
                    node = _cast_node(inner, ir.DataType.INT64)
                    constants.append(node)
                    read = node.outputs[0]
                captured_outer.append(outer)
                captured_in.append(inner)
            for node, index in uses:
                node.replace_input_with(index, read)
        initial, carried_out, as_float = self._carry_as_float(constants)
        if constants:
            self._prepend(constants)
        inputs = self.inner.graph.inputs
        inputs.clear()
        inputs.extend(
            [*self._carried_in, *captured_in, self.iteration, *(v for _, v in self._sequences)]
        )
        outputs = [self.inner.add_output(v) for v in [*carried_out, *captured_in, *self._scan_out]]
        self.inner.name_values()
        host = self.outer
        zero, one = host.scalar(0, "int64"), host.scalar(1, "int64")
        steps = host.op("Range", [zero, trip_count, one])
        if sequences is None:
            end = as_1d(host, trip_count)
            sequences = [
                host.op("Slice", [value, host.int64s([0]), end, host.int64s([0])])
                for value, _ in self._sequences
            ]
        node = ir.Node(
            "",
            "Scan",
            [*initial, *captured_outer, steps, *sequences],
            attributes=[
                ir.AttrGraph("body", self.inner.graph),
                ir.AttrInt64("num_scan_inputs", 1 + len(sequences)),
            ],
            num_outputs=len(outputs),
        )
        host.add_node(node)
        n_carried = len(self._initial)
        for k, (result, body_out) in enumerate(zip(node.outputs, outputs, strict=True)):
            result.type = body_out.type
            # States keep their shape; per-step outputs come stacked: (steps, flat size).
            is_state = k < n_carried + len(captured_in)
            result.shape = body_out.shape if is_state else ir.Shape([None, None])
        finals = list(node.outputs[:n_carried])
        for k in as_float:
            finals[k] = host.cast(finals[k], "int64")
            finals[k].type, finals[k].shape = self._initial[k].type, node.outputs[k].shape
        return [*finals, *node.outputs[n_carried + len(captured_in) :]]


def _cast_node(value: ir.Value, to: ir.DataType) -> ir.Node:
    """A ``Cast`` node of ``value`` to ``to`` (not yet in a graph), its output typed."""
    node = ir.Node("", "Cast", [value], attributes=[ir.AttrInt64("to", to)])
    node.outputs[0].type, node.outputs[0].shape = ir.TensorType(to), value.shape
    return node


#: Ops whose int64 output values come from all their inputs' values, or from the listed
#: inputs only (the others are shapes, indices or conditions).
_VALUES_FROM_ALL = frozenset(
    {"Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Neg", "Abs", "Range", "Concat"}
)
_VALUES_FROM: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(
        (
            "Cast",
            "Identity",
            "Squeeze",
            "Unsqueeze",
            "Reshape",
            "Expand",
            "Tile",
            "Transpose",
            "Gather",
            "GatherElements",
            "GatherND",
            "Slice",
            "Clip",
        ),
        (0,),
    ),
    "Where": (1, 2),
}


def _from_shapes(value: ir.Value) -> bool:
    """Whether the int64 ``value``'s entries are computed from a ``Shape`` or ``Size``
    (through int64 arithmetic and data movement; not, say, a ``ConstantOfShape`` whose
    shape comes from one)."""
    if value.dtype != ir.DataType.INT64:
        return False
    seen, stack = {value}, [value]
    while stack:
        node = stack.pop().producer()
        if node is None:
            continue
        if node.op_type in ("Shape", "Size"):
            return True
        if node.op_type in _VALUES_FROM_ALL:
            sources = list(node.inputs)
        else:
            sources = [
                node.inputs[i] for i in _VALUES_FROM.get(node.op_type, ()) if i < len(node.inputs)
            ]
        for v in sources:
            if v is not None and v not in seen and v.dtype == ir.DataType.INT64:
                seen.add(v)
                stack.append(v)
    return False


def _dtype_name(value: ir.Value) -> str:
    """The NumPy name of a typed value's dtype (``"float64"``, ``"uint16"``...)."""
    assert value.dtype is not None
    return value.dtype.numpy().name


def as_1d(builder: ONNXBuilder, scalar: ir.Value) -> ir.Value:
    """A 0-d int64 value as a one-element 1-D value (a ``Slice`` bound, a shape entry)."""
    return builder.op("Reshape", [scalar, builder.int64s([1])])


#: How far :func:`_infer_type` walks up producers whose outputs have no type.
_INFER_DEPTH = 64


def _infer_type(value: ir.Value, opset: int, depth: int = 0) -> bool:
    """Whether ``value``'s type and rank are known, after filling them in, where the
    converters' shape arithmetic left them out, by ONNX's inference of its producer (and,
    recursively, of the producer's inputs)."""
    if value.type is not None and value.shape is not None:
        return True
    node = value.producer()
    if (
        node is None
        or depth >= _INFER_DEPTH
        or any(attr.type == ir.AttributeType.GRAPH for attr in node.attributes.values())
    ):
        return False
    input_types, input_data = {}, {}
    for v in node.inputs:
        if v is None:
            continue
        if v.name is None or not _infer_type(v, opset, depth + 1):
            return False
        input_types[v.name] = ir.serde.serialize_value(v).type
        if (tensor := _constant_tensor(v)) is not None:
            # Axes, shapes and other constant inputs decide the output's rank.
            input_data[v.name] = ir.serde.serialize_tensor(tensor)
    try:
        inferred = onnx.shape_inference.infer_node_outputs(
            onnx.defs.get_schema(node.op_type, opset, node.domain),
            ir.serde.serialize_node(node),
            input_types,
            input_data,
        )
    except (onnx.defs.SchemaError, onnx.shape_inference.InferenceError):
        return False
    for output in node.outputs:
        found = inferred.get(output.name or "")
        if found is not None and found.tensor_type.HasField("shape"):
            output.type = ir.serde.deserialize_type_proto_for_type(found)
            output.shape = ir.serde.deserialize_type_proto_for_shape(found)
    return value.type is not None and value.shape is not None


#: Largest constant (in elements) copied into a ``Scan`` body; larger ones are carried.
_COPIED_CONSTANT_MAX = 1024


def _copied(tensor: ir.TensorProtocol | None) -> bool:
    """Whether a ``Scan`` body gets its own copy of this captured constant."""
    return tensor is not None and tensor.size <= _COPIED_CONSTANT_MAX


def _constant_tensor(value: ir.Value) -> ir.TensorProtocol | None:
    """The tensor of an initializer or ``Constant`` output, else ``None``."""
    if value.const_value is not None:
        return value.const_value
    producer = value.producer()
    if producer is not None and producer.op_type == "Constant" and "value" in producer.attributes:
        return producer.attributes["value"].as_tensor()
    return None


def sink_weights_into_scans(graph: ir.Graph) -> None:
    """Move each initializer that one ``Scan`` of ``graph`` alone reads, as state its body
    hands on unchanged, into that body (as an initializer of the body).

    A ``Scan`` body is self-contained (see the module docs), so the values of the enclosing
    graph that it reads are passed through as state, and ONNX Runtime copies state at every
    step: a 1000x1000 weight matrix made 100 steps of ``tanh(w @ h + x)`` 2.7x slower
    (``benchmarks/bench_scan.py``).  Only initializers that nothing else reads move, so the
    file holds each weight once; those a nested ``Scan`` alone reads move on into its body.
    Run once the whole graph is built.
    """
    for node in list(graph):
        if node.op_type != "Scan" or node.domain != "":
            continue
        body = node.attributes["body"].as_graph()
        n_states = len(node.inputs) - node.attributes["num_scan_inputs"].as_int()
        moved = [
            k
            for k in range(n_states)
            if _passed_on(body, k)
            and (outer := node.inputs[k]) is not None
            and outer.is_initializer()
            and not outer.is_graph_input()  # a default the caller may override
            and outer.const_value is not None
            and len(outer.uses()) == 1
            and not node.outputs[k].uses()
            and not node.outputs[k].is_graph_output()
        ]
        if moved:
            _sink_states(graph, node, body, moved)
        sink_weights_into_scans(body)  # a Scan in the body may read them alone


def _passed_on(body: ir.Graph, k: int) -> bool:
    """Whether ``body`` hands its ``k``-th input on unchanged as its ``k``-th output (through
    the ``Identity`` that :meth:`ONNXBuilder.add_output` puts between them)."""
    out, producer = body.outputs[k], body.outputs[k].producer()
    return out is body.inputs[k] or (
        producer is not None
        and producer.op_type == "Identity"
        and producer.inputs[0] is body.inputs[k]
    )


def _sink_states(graph: ir.Graph, node: ir.Node, body: ir.Graph, moved: list[int]) -> None:
    """Make the initializers of the pass-through states ``moved`` of the ``Scan`` ``node``
    initializers of its ``body`` (external data then still holds them)."""
    for k in sorted(moved, reverse=True):
        outer, inner = node.inputs[k], body.inputs[k]
        assert outer is not None and outer.name is not None
        identity = body.outputs.pop(k).producer()
        if identity is not None:  # now unused
            body.remove(identity, safe=True)
        body.inputs.pop(k)
        inner.replace_all_uses_with(graph.initializers.pop(outer.name))
        body.register_initializer(outer)
    kept = [k for k in range(len(node.outputs)) if k not in moved]
    scan = ir.Node(
        "",
        "Scan",
        [value for k, value in enumerate(node.inputs) if k not in moved],
        attributes=list(node.attributes.values()),
        num_outputs=len(kept),
    )
    graph.insert_before(node, scan)
    for new, k in zip(scan.outputs, kept, strict=True):
        old = node.outputs[k]
        new.type, new.shape = old.type, old.shape
        old.replace_all_uses_with(new, replace_graph_outputs=True)
        new.name, old.name = old.name, None
    graph.remove(node, safe=True)


def any_true(builder: ONNXBuilder, mask: ir.Value) -> ir.Value:
    """Whether any element of the bool tensor ``mask`` is true, as a 0-d bool (false if empty)."""
    count = builder.op("ReduceSum", [builder.cast(mask, "int64", "bool")], {"keepdims": 0})
    return builder.op("Greater", [count, builder.scalar(0, "int64")])


def unstack(
    builder: ONNXBuilder, stacked: ir.Value, count: ir.Value, step_shape: ir.Value
) -> ir.Value:
    """Reshape ``count`` flattened steps (:meth:`LoopBody.scan_out`) to ``(count, *step_shape)``.

    ``count`` is a 0-d int64 value and ``step_shape`` a 1-D int64 value.  With ``allowzero``,
    a count of 0 means 0 steps, not "copy the dimension".
    """
    steps = builder.op("Unsqueeze", [count, builder.int64s([0])])
    shape = builder.op("Concat", [steps, step_shape], {"axis": 0})
    return builder.op("Reshape", [stacked, shape], {"allowzero": 1})


# ------------------------------------------------------------------------------ fori_loop
@dataclass(frozen=True)
class Carry:
    """A value threaded through a loop, with its dtype (needed to type the loop body).

    ``position`` marks int64 values that stay sizes or positions computed from shapes
    (below 2**53): a ``Scan`` with ``float_sizes`` carries them as float64, for tract.
    """

    value: ir.Value
    dtype: str
    position: bool = False


@dataclass(frozen=True)
class ScanOut:
    """A per-step loop output: its dtype and its shape (a 1-D int64 value of the outer graph)."""

    dtype: str
    shape: ir.Value


@dataclass(frozen=True)
class Steps:
    """A step count: its 0-d int64 value and, if known when exporting, its length."""

    value: ir.Value
    static: int | None


class Count(Protocol):
    """A step count: its 0-d int64 value and its static value if known (e.g. a ``Size``)."""

    @property
    def value(self) -> ir.Value: ...

    @property
    def static(self) -> int | None: ...


#: One loop step: ``(builder, k, state) -> new state + per-step values``; ``k`` is 0-d int64.
Step = Callable[[ONNXBuilder, ir.Value, list[ir.Value]], list[ir.Value]]


def fori_loop(
    builder: ONNXBuilder,
    count: Count,
    state: Sequence[Carry],
    scans: Sequence[ScanOut],
    step: Step,
    name: str,
    *,
    unroll: bool = False,
    any_count: bool = False,
    float_sizes: bool = False,
    sequences: Sequence[Carry] = (),
) -> tuple[list[ir.Value], list[ir.Value]]:
    """Run ``step`` for ``k = 0 .. count-1`` and return the final state and the scan outputs.

    ``step(builder, k, state)`` returns the new state followed by one value per entry of
    ``scans``; those per-step values come back stacked along a new first axis.  The
    ``state`` it receives ends with step ``k``'s entry of each of ``sequences`` (values at
    least ``count`` long along their first axis: scan inputs, where reading a captured
    value by ``k`` would make ONNX Runtime copy it at every step of a ``Scan``).  Unrolled
    into ``builder``'s graph when ``count`` is static and at most :data:`UNROLL_MAX` (or
    static and ``unroll``), else an ONNX ``Scan`` if the count is static, or with
    ``any_count`` (see :class:`LoopBody`: the step must then also compute without error at
    ``k = 0`` when the count is 0), else an ONNX ``Loop``.  ``float_sizes``: see
    :class:`LoopBody`.
    """
    n_state = len(state)
    if count.static is not None and (unroll or count.static <= UNROLL_MAX):
        values = [c.value for c in state]
        per_step: list[list[ir.Value]] = [[] for _ in scans]
        for index in range(count.static):
            k = builder.scalar(index, "int64")
            entries = [builder.op("Gather", [seq.value, k]) for seq in sequences]
            results = step(builder, k, [*values, *entries])
            values = results[:n_state]
            for stack, value in zip(per_step, results[n_state:], strict=True):
                stack.append(builder.op("Unsqueeze", [value, builder.int64s([0])]))
        if count.static == 0:
            # No steps: empty stacks, shaped (0, *per-step shape).
            stacked = [
                builder.op(
                    "ConstantOfShape",
                    [builder.op("Concat", [builder.int64s([0]), scan.shape], {"axis": 0})],
                    {"value": ir.Tensor(np.zeros(1, dtype=scan.dtype))},
                )
                for scan in scans
            ]
        else:
            stacked = [builder.op("Concat", stack, {"axis": 0}) for stack in per_step]
        return values, stacked

    body = LoopBody(builder, name, scan=True, any_count=any_count, float_sizes=float_sizes)
    for c in state:
        _infer_type(c.value, builder.opset)
    carried = [
        body.carry(c.value, f"{name}_state", c.dtype, c.value.shape, position=c.position)
        for c in state
    ]
    for seq in sequences:
        _infer_type(seq.value, builder.opset)
        shape = seq.value.shape
        entry_shape = None if shape is None else ir.Shape(list(shape)[1:])
        carried.append(body.sequence_of(seq.value, seq.dtype, entry_shape))
    results = step(body.inner, body.iteration, carried)
    for value, carry in zip(results[:n_state], state, strict=True):
        value.dtype = onnx_dtype(carry.dtype)
        body.carry_out(value)
    for value, scan in zip(results[n_state:], scans, strict=True):
        body.scan_out(value, scan.dtype)
    known = None if count.static is None else builder.scalar(count.static, "int64")
    outputs = body.build(count.value if known is None else known)
    stacked = [
        unstack(builder, out, count.value, scan.shape)
        for out, scan in zip(outputs[n_state:], scans, strict=True)
    ]
    return outputs[:n_state], stacked


# ------------------------------------------------------------------------------ while_any
#: One step of :func:`while_any`: the body's ``Num`` and the carried values give the new
#: carried values and a bool tensor, true where another iteration is needed.
LoopStep = Callable[[Num, list[ir.Value]], tuple[list[ir.Value], ir.Value]]


def while_any(
    num: Num, state: Sequence[ir.Value], step: LoopStep, max_iterations: int, name: str
) -> list[ir.Value]:
    """Iterate ``step`` in an ONNX ``Loop`` while any element still asks for more.

    The carried values all have the dtype of ``num`` (their shapes may differ and change);
    the loop stops after ``max_iterations`` steps or once the mask returned by ``step`` is
    all false (an empty tensor stops it at once).

    Returns
    -------
    list of onnx_ir.Value
        The carried values after the last iteration.
    """
    body = LoopBody(num.builder, name)
    carried = [body.carry(value, f"{name}_state", num.dtype) for value in state]
    new_state, more = step(Num(body.inner, num.dtype), carried)
    for value in new_state:
        body.carry_out(value)
    body.continue_while(any_true(body.inner, more))
    return body.build(num.builder.const(np.array(max_iterations, dtype=np.int64)))


__all__ = [
    "UNROLL_MAX",
    "Carry",
    "LoopBody",
    "ScanOut",
    "Step",
    "Steps",
    "any_true",
    "as_1d",
    "fori_loop",
    "sink_weights_into_scans",
    "unstack",
    "while_any",
]
