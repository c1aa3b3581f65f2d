"""Float64 -> float32 conversion of a PyTensor graph, done before the ONNX conversion.

The conversion rebuilds the graph node by node: float64 inputs, shared values and
constants become float32, every node is re-made from its converted inputs (so Elemwise
upcasting, reductions and the rewrites that run afterwards see float32 types), and Op
parameters naming float64 (``Cast``, ``dtype``/``acc_dtype`` of reductions, ``Eye``,
``ARange``...) are retargeted to float32.  Doing it on the PyTensor side, before
:func:`~pytensor_onnx.rewrite.rewrite_for_onnx` and the converters, means that every
dtype-dependent choice (rewrites, converter decompositions with float64-only constants or
thresholds) takes its float32 path, as if the user had written the graph in float32.

Integer and bool variables are left alone.  Inner graphs of ``OpFromGraph`` nodes (PyTensor
3's "symbolic" ops) are inlined and converted, those of ``Scan`` are converted in place;
nodes that cannot be re-made in float32 keep computing in float64 between explicit casts,
and a warning names them.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
import onnx.inliner
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytensor.tensor.linalg as ptla
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.op import Op
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.rewriting.basic import copy_stack_trace
from pytensor.scalar.loop import ScalarLoop
from pytensor.scan.op import Scan
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import CAReduce, Elemwise
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.type import TensorType

from pytensor_onnx.dispatch.basic import _node_origin
from pytensor_onnx.dispatch.random import draws_in_float32

FLOAT64 = "float64"
FLOAT32 = "float32"


def float32_array(array: np.ndarray) -> np.ndarray:
    """``array`` as float32 if it is float64, unchanged otherwise."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _retype(type_: Any) -> Any:
    """The float32 counterpart of a float64 PyTensor type (others unchanged)."""
    if getattr(type_, "dtype", None) != FLOAT64:
        return type_
    if isinstance(type_, TensorType):
        return type_.clone(dtype=FLOAT32)
    if isinstance(type_, ps.ScalarType):
        return ps.get_scalar_type(FLOAT32)
    return type_


def _retype_param(value: Any, kept: list[Apply]) -> Any:
    """An Op parameter with float64 dtypes/types replaced by float32 ones (``kept`` as in
    :func:`_retype_op`)."""
    if isinstance(value, str):
        return FLOAT32 if value == FLOAT64 else value
    if isinstance(value, np.dtype):
        return np.dtype(FLOAT32) if value == np.float64 else value
    if isinstance(value, (TensorType, ps.ScalarType)):
        return _retype(value)
    if isinstance(value, Op):
        return _retype_op(value, kept)
    return value


def _retype_op(op: Op, kept: list[Apply]) -> Op:
    """``op`` with float64 parameters retargeted to float32 (``op`` itself if none).

    Scalar Ops with an inner graph (``Composite``, ``ScalarLoop``, also inside
    ``Elemwise``) get their inner graph converted like any other graph; inner nodes that
    must stay float64 are appended to ``kept``.
    """
    if isinstance(op, ps.Cast):
        return ps.Cast(_retype(op.o_type), name=op.name) if op.o_type.dtype == FLOAT64 else op
    if isinstance(op, Elemwise):
        scalar_op = _retype_op(op.scalar_op, kept)
        if scalar_op is op.scalar_op:
            return op
        return Elemwise(scalar_op, op.inplace_pattern)
    if isinstance(op, (ps.Composite, ScalarLoop)):
        return _retype_scalar_inner_graph(op, kept)
    changes = {}
    for prop in getattr(op, "__props__", ()):
        old = getattr(op, prop)
        new = _retype_param(old, kept)
        if new is not old and new != old:
            changes[prop] = new
    if not changes:
        return op
    # Ops store their props as plain attributes (that is what __props__ means), so a copy
    # with the attributes replaced is the same Op with float32 parameters.
    new_op = copy.copy(op)
    for prop, value in changes.items():
        setattr(new_op, prop, value)
    return new_op


def _retype_scalar_inner_graph(op: ps.Composite | ScalarLoop, kept: list[Apply]) -> Op:
    """A ``Composite`` or ``ScalarLoop`` whose inner scalar graph is converted to float32;
    inner nodes that must stay float64 are appended to ``kept``."""
    if not any(var.type.dtype == FLOAT64 for var in [*op.inputs, *op.outputs]):
        return op
    inner = _Float32Rebuilder()
    inputs = [inner.new_input(var) for var in op.inputs]
    outputs = inner.convert(op.outputs)
    new_op: Op
    if isinstance(op, ScalarLoop):
        n_state = len(op.outputs) - op.is_while
        new_op = ScalarLoop(
            init=inputs[:n_state],
            update=outputs[:n_state],
            constant=inputs[n_state:],
            until=outputs[-1] if op.is_while else None,
            name=op.name,
        )
    else:
        composite = ps.Composite(inputs, outputs)
        # PyTensor 2's CAReduce fusion sets the identity of the reduction it fused on the
        # Composite (a CAReduce over it starts from that value); others have none.
        if hasattr(op, "identity"):
            composite.identity = op.identity  # type: ignore[attr-defined]
        new_op = composite
    kept.extend(inner.kept_float64)
    return new_op


def _cast(var: Variable, dtype: str) -> Variable:
    """``var`` cast to ``dtype``, as a scalar or a tensor like ``var``."""
    if isinstance(var.type, ps.ScalarType):
        return ps.cast(var, dtype)
    return pt.cast(var, dtype)


def _expected_type(old: Variable) -> Any:
    return _retype(old.type)


def _types_match(new: Variable, old: Variable) -> bool:
    """Whether ``new`` is an acceptable float32 replacement for ``old``."""
    expected = _expected_type(old)
    if getattr(new.type, "dtype", None) != getattr(expected, "dtype", None):
        return False
    return getattr(new.type, "ndim", None) == getattr(expected, "ndim", None)


def _still_float64(new: Variable, old: Variable) -> bool:
    return getattr(new.type, "dtype", None) == FLOAT64 and old.type.dtype == FLOAT64


def _computes_in_float64(op: Op, inputs: Sequence[Variable]) -> bool:
    """Whether the elementwise ``op`` of ``inputs``, none of them float64, computes in
    float64: PyTensor upcasts float32 with int32/int64 to float64, also where the result is
    a bool (``eq(x_float32, n_int64)``).  Scalar Ops with an inner graph compute in the
    types of their inner graph."""
    scalar_op = op.scalar_op if isinstance(op, Elemwise) else op
    if not isinstance(scalar_op, ps.ScalarOp) or isinstance(scalar_op, ps.ScalarInnerGraphOp):
        return False
    dtypes = [getattr(var.type, "dtype", "") for var in inputs]
    return FLOAT64 not in dtypes and ps.upcast(*dtypes) == FLOAT64


def _make_outputs(op: Op, inputs: list[Variable], node: Apply) -> list[Variable] | None:
    """``op.make_node(*inputs).outputs`` if it works and has ``node``'s arity, else None."""
    try:
        new_node = op.make_node(*inputs)
    except (TypeError, ValueError, NotImplementedError):
        return None
    if len(new_node.outputs) != len(node.outputs):
        return None
    return list(new_node.outputs)


#: PyTensor's symbolic ops (``OpFromGraph``, also inside ``Blockwise``) that have converters
#: of their own because their inner graphs cannot be converted (they are built on ``Schur``
#: and ``QZ``): re-made in float32 by the PyTensor function that builds them, not inlined.
_REBUILT: dict[str, Callable[..., Variable]] = {
    "SolveSylvester": ptla.solve_sylvester,
    "SolveDiscreteARE": ptla.solve_discrete_are,
}


class _Float32Rebuilder:
    """Rebuilds a graph in float32, remembering old -> new variables."""

    def __init__(self, reported: frozenset[Apply] = frozenset()) -> None:
        self.memo: dict[Variable, Variable] = {}
        #: Nodes that an earlier conversion left in float64 and reported: not reported again.
        self.reported = reported
        self.kept_float64: list[Apply] = []
        #: RandomVariable nodes whose samplers compute in float64 inside (see the warning).
        self.random_draws: list[Apply] = []
        #: The new nodes that compute in float64 on purpose (kept nodes and draws).
        self.made_float64: list[Apply] = []

    def absorb(self, inner: _Float32Rebuilder) -> None:
        """Take over what the rebuilder of an inner graph recorded."""
        self.kept_float64.extend(inner.kept_float64)
        self.random_draws.extend(inner.random_draws)
        self.made_float64.extend(inner.made_float64)

    def keep(self, node: Apply, made: Apply) -> None:
        """Record that ``node`` computes in float64 as the new node ``made``."""
        if node not in self.reported and (
            not self.kept_float64 or self.kept_float64[-1] is not node
        ):
            self.kept_float64.append(node)
        self.made_float64.append(made)

    def new_input(self, var: Variable) -> Variable:
        new = _retype(var.type)()
        new.name = var.name
        self.memo[var] = new
        return new

    def get(self, var: Variable) -> Variable:
        found = self.memo.get(var)
        if found is not None:
            return found
        if isinstance(var, Constant):
            data = np.asarray(var.data)
            if data.dtype == np.float64 and isinstance(var.type, (TensorType, ps.ScalarType)):
                new: Variable = type(var)(_retype(var.type), data.astype(np.float32), name=var.name)
            else:
                new = var
            self.memo[var] = new
            return new
        raise KeyError(f"{var} was not converted before use")

    def convert(self, outputs: Sequence[Variable]) -> list[Variable]:
        from pytensor.graph.traversal import toposort

        for node in toposort(outputs):
            if not all(out in self.memo for out in node.outputs):
                self.convert_node(node)
        return [self.get(out) for out in outputs]

    def convert_node(self, node: Apply) -> None:
        core = node.op.core_op if isinstance(node.op, Blockwise) else node.op
        rebuild = _REBUILT.get(type(core).__name__) if isinstance(core, OpFromGraph) else None
        if rebuild is not None:
            # Their own constants (PyTensor's eye, zeros) take floatX: float32, as if written
            # in float32.
            with pytensor.config.change_flags(floatX="float32"):
                new = rebuild(*(self.get(i) for i in node.inputs))
            copy_stack_trace(node.outputs[0], new)
            self.memo[node.outputs[0]] = new
            return
        if isinstance(node.op, Blockwise) and isinstance(node.op.core_op, OpFromGraph):
            self.inline_blockwise(node)
            return
        inputs = [self.get(i) for i in node.inputs]
        if isinstance(node.op, OpFromGraph):
            self.inline(node, inputs)
            return
        new_outputs = None
        if isinstance(node.op, Scan):
            new_outputs = self.remake_scan(node, inputs)
        if new_outputs is None:
            new_outputs = self.remake(node, inputs)
        if new_outputs is None:
            new_outputs = self.keep_float64(node, inputs)
        made = new_outputs[0].owner
        if isinstance(node.op, RandomVariable) and (
            made is None or not draws_in_float32(made.op, new_outputs[1].type.dtype)
        ):
            if node not in self.reported:
                self.random_draws.append(node)
            if made is not None:
                self.made_float64.append(made)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            copy_stack_trace(old, new)
            self.memo[old] = new

    def inline(self, node: Apply, inputs: list[Variable]) -> None:
        op: Any = node.op
        inner = _Float32Rebuilder(self.reported)
        for inner_in, outer_in in zip(op.inner_inputs, inputs, strict=True):
            inner.memo[inner_in] = outer_in
        new_outputs = inner.convert(op.inner_outputs)
        self.absorb(inner)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            self.memo[old] = new

    def inline_blockwise(self, node: Apply) -> None:
        """Convert a ``Blockwise`` of an ``OpFromGraph`` (e.g. PyTensor 3's batched
        ``AllocDiag``) as its vectorized inner graph, whose inner types are not fixed."""
        op: Any = node.op.core_op
        vectorized = vectorize_graph(
            op.inner_outputs, replace=dict(zip(op.inner_inputs, node.inputs, strict=True))
        )
        new_outputs = self.convert(vectorized)
        for old, new in zip(node.outputs, new_outputs, strict=True):
            self.memo[old] = new

    def remake_scan(self, node: Apply, inputs: list[Variable]) -> list[Variable] | None:
        """A ``Scan`` with its inner graph converted too, or None if that is not consistent
        (e.g. a recurrent state whose inner output type differs from its input's)."""
        op: Any = node.op
        inner = _Float32Rebuilder(self.reported)
        inner_inputs = [inner.new_input(var) for var in op.inner_inputs]
        inner_outputs = inner.convert(op.inner_outputs)
        try:
            new_op = Scan(
                inner_inputs,
                inner_outputs,
                op.info,
                mode=op.mode,
                truncate_gradient=op.truncate_gradient,
                name=op.name,
                profile=op.profile,
                allow_gc=op.allow_gc,
                strict=op.strict,
            )
        except (TypeError, ValueError):
            return None
        outputs = _make_outputs(new_op, inputs, node)
        if outputs is None or not all(
            _types_match(new, old) for new, old in zip(outputs, node.outputs, strict=True)
        ):
            return None
        self.absorb(inner)
        return outputs

    def remake(self, node: Apply, inputs: list[Variable]) -> list[Variable] | None:
        """The outputs of ``node`` re-made from float32 inputs, or None if it cannot be.

        A node whose output stays float64 although its float inputs are float32 mixes in
        integers (PyTensor upcasts float32 with int32/int64 to float64, and divides
        integers in float64), and so does an elementwise comparison of float32 with such
        integers (:func:`_computes_in_float64`): its integer inputs are cast to float32, as
        a float32 graph would have to do.  If the output is still float64 (an Op with a
        fixed float64 inner graph, like ``Scan``), the node is recorded as computing in
        float64 and its output is cast to float32.
        """
        op = _retype_op(node.op, self.kept_float64)
        outputs = _make_outputs(op, inputs, node)
        if outputs is not None and (
            any(_still_float64(new, old) for new, old in zip(outputs, node.outputs, strict=True))
            or _computes_in_float64(op, inputs)
        ):
            as_float = [
                _cast(i, FLOAT32) if getattr(i.type, "dtype", "")[:1] in ("i", "u") else i
                for i in inputs
            ]
            outputs = _make_outputs(op, as_float, node) or outputs
        if outputs is None:
            return None
        results: list[Variable] = []
        for old, new in zip(node.outputs, outputs, strict=True):
            if _still_float64(new, old):
                self.keep(node, new.owner)
                results.append(_cast(new, FLOAT32))
            elif _types_match(new, old):
                results.append(new)
            else:
                return None
        return results

    def keep_float64(self, node: Apply, inputs: list[Variable]) -> list[Variable]:
        """Compute ``node`` in its original types, casting in and out."""
        original = [
            _cast(new, old.type.dtype) if new.type != old.type else new
            for new, old in zip(inputs, node.inputs, strict=True)
        ]
        made = node.op.make_node(*original)
        self.keep(node, made)
        outputs = made.outputs
        return [
            _cast(out, FLOAT32) if getattr(out.type, "dtype", None) == FLOAT64 else out
            for out in outputs
        ]


def _describe(node: Apply) -> str:
    """One line naming a node left in float64: the node, its output types, and the user
    code line that created it where PyTensor recorded one."""
    types = ", ".join(str(out.type) for out in node.outputs)
    origin = _node_origin(node)
    return f"- {node} -> {types}" + (f" (created at {origin})" if origin else "")


def convert_fgraph_to_float32(fgraph: FunctionGraph) -> FunctionGraph:
    """A new ``FunctionGraph`` computing ``fgraph`` in float32 instead of float64.

    Inputs keep their order and names; float64 inputs become float32 inputs with the same
    static shape.  Warns (``UserWarning``) when some nodes must keep computing in float64.
    """
    return _convert(fgraph, frozenset())[0]


def _convert(
    fgraph: FunctionGraph, reported: frozenset[Apply]
) -> tuple[FunctionGraph, frozenset[Apply]]:
    """:func:`convert_fgraph_to_float32`, warning about the nodes left in float64 except
    those in ``reported`` (left so by an earlier conversion); also returns the new graph's
    nodes that compute in float64 on purpose."""
    rebuilder = _Float32Rebuilder(reported)
    new_inputs = [rebuilder.new_input(var) for var in fgraph.inputs]
    new_outputs = rebuilder.convert(fgraph.outputs)
    if rebuilder.kept_float64:
        warnings.warn(
            f"float32 conversion: {len(rebuilder.kept_float64)} node(s) could not be re-made "
            "in float32 and still compute in float64 between casts:\n"
            + "\n".join(_describe(node) for node in rebuilder.kept_float64),
            UserWarning,
            stacklevel=3,
        )
    if rebuilder.random_draws:
        warnings.warn(
            f"float32 conversion: {len(rebuilder.random_draws)} random variable(s) compute "
            "their draws in float64 inside (discrete distributions need float64 arithmetic "
            "for counts above 2**24; see docs/random.md for the samplers that compute in "
            "float32), so the model holds float64 tensors:\n"
            + "\n".join(_describe(node) for node in rebuilder.random_draws),
            UserWarning,
            stacklevel=3,
        )
    new = FunctionGraph(new_inputs, new_outputs, clone=False)
    return new, frozenset(rebuilder.made_float64)


def rewrite_in_float32(
    fgraph: FunctionGraph, rewrite: Callable[[FunctionGraph], object]
) -> FunctionGraph:
    """``fgraph`` converted to float32 (:func:`convert_fgraph_to_float32`), then rewritten
    in place by ``rewrite``, then with what the rewrites made float64 converted again
    (``x ** -1`` of an integer becomes a float64 ``reciprocal``) and its reductions
    accumulating in float32 (:func:`narrow_accumulators`).  A node left in float64 is
    reported once."""
    fgraph, reported = _convert(fgraph, frozenset())
    rewrite(fgraph)
    if any(getattr(var.type, "dtype", None) == FLOAT64 for var in fgraph.variables):
        fgraph, _ = _convert(fgraph, reported)
    narrow_accumulators(fgraph)
    return fgraph


def narrow_accumulators(fgraph: FunctionGraph) -> None:
    """Make reductions with float32 outputs accumulate in float32 too, in place.

    PyTensor sums and multiplies float32 (and bool) values in a float64 accumulator by
    default, and rewrites that run after :func:`convert_fgraph_to_float32` create such
    reductions again; a float32 model computes them in float32.
    """
    for node in fgraph.toposort():
        op = node.op
        if (
            isinstance(op, CAReduce)
            and getattr(op, "acc_dtype", None) == FLOAT64
            and node.outputs[0].type.dtype == FLOAT32
        ):
            new_op = copy.copy(op)
            new_op.acc_dtype = FLOAT32
            new_out = new_op.make_node(*node.inputs).outputs[0]
            copy_stack_trace(node.outputs[0], new_out)
            fgraph.replace(node.outputs[0], new_out, reason="float32_accumulator")


_DOUBLE = onnx.TensorProto.DOUBLE
#: Node attributes that name the element type the node produces.
_DTYPE_ATTRIBUTES = ("to", "dtype", "output_dtype")


def _graph_float64_tensors(graph: onnx.GraphProto, where: str) -> list[str]:
    """The float64 tensors of one (sub)graph, described with their location ``where``."""
    found = [
        f"{where}: {kind} {value.name!r}"
        for kind, values in (
            ("input", graph.input),
            ("output", graph.output),
            ("value", graph.value_info),
        )
        for value in values
        if value.type.tensor_type.elem_type == _DOUBLE
    ]
    found += [
        f"{where}: initializer {tensor.name!r}"
        for tensor in graph.initializer
        if tensor.data_type == _DOUBLE
    ]
    for node in graph.node:
        label = f"{where}: {node.op_type} node {node.name!r}"
        for attr in node.attribute:
            if attr.name in _DTYPE_ATTRIBUTES and attr.type == onnx.AttributeProto.INT:
                if attr.i == _DOUBLE:
                    found.append(f"{label} makes float64 ({attr.name}=DOUBLE)")
            elif attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == _DOUBLE:
                found.append(f"{label} has a float64 tensor attribute {attr.name!r}")
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                found += _graph_float64_tensors(
                    sub, f"{where}/{node.name or node.op_type}.{attr.name}"
                )
    return found


def float64_tensors(model: onnx.ModelProto) -> list[str]:
    """Every float64 tensor of ``model``, one description each (empty if there is none).

    Looks at graph inputs, outputs, initializers and every intermediate value, in the main
    graph, in ``Loop``/``If``/``Scan`` bodies and in local functions, plus nodes whose
    attributes make float64 (``Cast(to=DOUBLE)``, float64 ``Constant`` values...).
    Intermediate types come from ONNX shape inference, run after inlining the local
    functions (shape inference does not type the values inside functions); local
    functions are also scanned as they are, so that unused ones count too.

    A model exported with ``float32=True`` has none; float32-only runtimes (OpenVINO's
    f32 mode, tract, many mobile runtimes) need that.
    """
    inlined = onnx.inliner.inline_local_functions(model)
    inferred = onnx.shape_inference.infer_shapes(inlined, strict_mode=True)
    found = _graph_float64_tensors(inferred.graph, "graph")
    for function in model.functions:
        body = onnx.helper.make_graph(list(function.node), function.name, [], [])
        found += _graph_float64_tensors(body, f"function {function.domain}.{function.name}")
    return found


__all__ = [
    "convert_fgraph_to_float32",
    "float32_array",
    "float64_tensors",
    "narrow_accumulators",
    "rewrite_in_float32",
]
