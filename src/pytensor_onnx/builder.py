"""The object that owns the onnx-ir graph while a PyTensor graph is converted.

Converters never touch protobuf: they ask the :class:`ONNXBuilder` for the value of a
PyTensor variable, add nodes with :meth:`ONNXBuilder.op`, and make constants with
:meth:`ONNXBuilder.const`.  The builder records one :class:`onnx_ir.Value` per PyTensor
variable, keeps value names unique and knows the target opset.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Constant, Variable
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.type import TensorType

#: ONNX Runtime CPU kernels missing for some dtypes (probed with onnxruntime 1.32 at opsets
#: 18 and 28; ``tests/test_builder.py`` pins these down).  Such ops are computed in the
#: dtype given by ``_KERNEL_COMPUTE_DTYPE`` and cast back, which is exact for integers
#: (wrap-around arithmetic commutes with narrowing casts) except for the order of uint64
#: values at or above 2**63.
_SMALL_INTS = frozenset({"int8", "int16", "uint8", "uint16"})
_KERNEL_GAPS: dict[str, frozenset[str]] = {
    "Pow": _SMALL_INTS | {"uint32", "uint64"},
    "Neg": frozenset({"uint8", "uint16", "uint32", "uint64"}),
    "Abs": frozenset({"bool"}),
    "Sign": frozenset({"bool"}),
    "Max": frozenset({"int16", "uint16", "bool"}),
    "Min": frozenset({"int16", "uint16", "bool"}),
    "Where": frozenset({"int16", "uint16", "uint32", "uint64", "bool"}),
    "Pad": frozenset({"int16", "uint16"}),
    "MatMul": _SMALL_INTS | {"bool"},
    "ReduceSum": _SMALL_INTS | {"uint32", "uint64", "bool"},
    "ReduceProd": _SMALL_INTS | {"uint32", "uint64", "bool"},
    "CumSum": _SMALL_INTS | {"uint32", "uint64", "bool"},
    "ReduceMax": frozenset({"int16", "uint16", "uint32", "uint64", "bool"}),
    "ReduceMin": frozenset({"int16", "uint16", "uint32", "uint64", "bool"}),
    "ArgMax": frozenset({"int16", "uint16", "uint32", "uint64", "bool"}),
    "ArgMin": frozenset({"int16", "uint16", "uint32", "uint64", "bool"}),
    "Less": frozenset({"bool"}),
    "LessOrEqual": frozenset({"bool"}),
    "Greater": frozenset({"bool"}),
    "GreaterOrEqual": frozenset({"bool"}),
}
_KERNEL_COMPUTE_DTYPE = {
    "bool": "int32",
    "int8": "int32",
    "int16": "int32",
    "uint8": "int32",
    "uint16": "int32",
    "uint32": "int64",
    "uint64": "int64",
}

#: Constants with more elements than this become initializers instead of ``Constant`` nodes.
CONSTANT_NODE_MAX_SIZE = 64

_INVALID_NAME_CHARS = re.compile(r"[^0-9A-Za-z_.]")


def onnx_dtype(dtype: str | np.dtype[Any]) -> ir.DataType:
    """Return the ONNX element type for a NumPy/PyTensor dtype.

    Raises
    ------
    TypeError
        For dtypes ONNX cannot hold (e.g. complex, object).
    """
    np_dtype = np.dtype(dtype)
    if np_dtype.kind == "c":
        raise TypeError(
            f"dtype {np_dtype} is complex; ONNX Runtime has no complex tensors. "
            "Split the computation into real and imaginary parts."
        )
    try:
        return ir.DataType.from_numpy(np_dtype)
    except TypeError as err:
        raise TypeError(f"dtype {np_dtype} has no ONNX equivalent") from err


#: The dtype of a random generator in ONNX: its seed (see :mod:`pytensor_onnx.dispatch.random`).
SEED_DTYPE = "int64"


def is_random_generator(var: Variable) -> bool:
    """Whether ``var`` is a random generator, which ONNX holds as an int64 seed."""
    return isinstance(var.type, RandomGeneratorType)


def variable_dtype(var: Variable) -> str:
    """The dtype string of a tensor or scalar PyTensor variable (a generator's: its seed's)."""
    if is_random_generator(var):
        return SEED_DTYPE
    return str(var.type.dtype)


def variable_shape(var: Variable) -> tuple[int | None, ...]:
    """The static shape of a tensor variable (``()`` for scalars), ``None`` for unknown dims."""
    return tuple(getattr(var.type, "shape", ()))


def _transliterate(char: str) -> str:
    """An ASCII spelling of one (NFKD-decomposed) character: Greek letters by name
    (``σ`` → ``sigma``, ``Σ`` → ``Sigma``), any other non-ASCII character ``_``."""
    if char.isascii():
        return char
    words = unicodedata.name(char, "").split()
    if words[:1] == ["GREEK"] and words[1:2] in (["SMALL"], ["CAPITAL"]):
        letter = words[-1].lower()  # "GREEK SMALL LETTER FINAL SIGMA" -> "sigma"
        return letter if words[1] == "SMALL" else letter.capitalize()
    return "_"


def sanitize_name(name: str) -> str:
    """Make ``name`` a plain identifier-like ONNX name (letters, digits, ``_`` and ``.``).

    Accents are dropped (``é`` → ``e``), Greek letters spelled out (``σ_log__`` →
    ``sigma_log__``), and any other character becomes ``_``.  The original names are
    recorded in the model's metadata (:data:`~pytensor_onnx.export.NAMES_METADATA_KEY`).
    """
    decomposed = unicodedata.normalize("NFKD", name)
    spelled = "".join(_transliterate(c) for c in decomposed if unicodedata.category(c) != "Mn")
    cleaned = _INVALID_NAME_CHARS.sub("_", spelled)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


class NameRegistry:
    """Hands out unique names, deterministically, in request order."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def claim(self, name: str) -> str:
        """Return ``name`` (sanitized) or ``name_1``, ``name_2``... if it is already taken."""
        base = sanitize_name(name)
        candidate = base
        counter = 0
        while candidate in self._used:
            counter += 1
            candidate = f"{base}_{counter}"
        self._used.add(candidate)
        return candidate


class ONNXBuilder:
    """Builds one ONNX graph (the main graph or a subgraph) from PyTensor variables.

    Parameters
    ----------
    opset
        The default-domain opset the graph targets; converters may branch on it.
    name
        The graph name.
    parent
        The builder of the enclosing graph, for subgraphs (loop bodies, branches):
        values of the parent are visible in the subgraph by ONNX's scoping rules.
    names
        The name registry, shared by a graph and its subgraphs (ONNX requires names to be
        unique across nested graphs).
    functions
        The model's local functions by key (e.g. the Op they implement), shared by every
        builder of a model (default: the parent's, else a new dict).
    options
        Export options that converters read, e.g. ``op_from_graph``, or ``float32`` (no
        value of the model may be float64) (default: the parent's, else none).
    initializers
        Whether large constants may become initializers; ``False`` for ONNX function
        bodies, which have none (constants are then ``Constant`` nodes).
    """

    def __init__(
        self,
        opset: int,
        name: str = "pytensor_graph",
        *,
        parent: ONNXBuilder | None = None,
        names: NameRegistry | None = None,
        functions: dict[Any, ir.Function] | None = None,
        options: Mapping[str, Any] | None = None,
        initializers: bool = True,
    ) -> None:
        self.opset = opset
        self.parent = parent
        self.names = names if names is not None else NameRegistry()
        self.functions: dict[Any, ir.Function] = (
            functions if functions is not None else parent.functions if parent else {}
        )
        self.options: Mapping[str, Any] = (
            options if options is not None else parent.options if parent else {}
        )
        self.initializers = initializers
        self.graph = ir.Graph(inputs=[], outputs=[], nodes=[], opset_imports={"": opset}, name=name)
        self._tape = ir.tape.Tape(self.graph)
        self._values: dict[Variable, ir.Value] = {}
        self._constants: dict[tuple[str, tuple[int, ...], bytes], ir.Value] = {}
        self._streams = 0
        self._anchor: ir.Value | None = None
        #: The static number of elements of the elementwise node being converted, if known
        #: (see :meth:`elementwise`).
        self.elementwise_size: int | None = None
        self.opset_imports: dict[str, int] = {"": opset} if parent is None else parent.opset_imports

    # ------------------------------------------------------------------ values
    def bind_placeholder(self, var: Variable) -> None:
        """Stand in for ``var``, an output of a node that could not be converted."""
        self._values[var] = ir.Value(name=self.names.claim("unconverted"))

    def bind(self, var: Variable, value: ir.Value) -> ir.Value:
        """Record ``value`` as the ONNX value of ``var`` and annotate its type from PyTensor."""
        if not hasattr(var.type, "dtype"):
            # Slice and None variables (index helpers of PyTensor 2.x) have no ONNX type: their
            # consumers read the producing node, and the placeholder value is never used.
            self._values[var] = value
            return value
        expected = onnx_dtype(variable_dtype(var))
        if value.type is None:
            value.dtype = expected
        elif value.dtype != expected:
            raise TypeError(
                f"converter bug: ONNX value {value.name!r} is {value.dtype}, "
                f"but PyTensor variable {var} is {expected}"
            )
        self._values[var] = value
        # Scalar-typed variables inside Composite graphs stand for whole broadcast tensors,
        # so only tensor types carry a reliable shape.
        if value.shape is None and isinstance(var.type, TensorType):
            value.shape = ir.Shape(variable_shape(var))
        return value

    def lookup(self, var: Variable) -> ir.Value | None:
        """The value bound to ``var`` in this graph or an enclosing one, if any."""
        builder: ONNXBuilder | None = self
        while builder is not None:
            value = builder._values.get(var)
            if value is not None:
                return value
            builder = builder.parent
        return None

    def value(self, var: Variable) -> ir.Value:
        """The ONNX value of ``var``; constants are materialized on first use."""
        found = self.lookup(var)
        if found is not None:
            return found
        if isinstance(var, Constant):
            return self.bind(var, self.const(np.asarray(var.data), variable_dtype(var)))
        raise KeyError(f"variable {var} has no ONNX value yet (converted out of order?)")

    def inputs(self, node: Any, dtype: str | None = None) -> list[ir.Value]:
        """The values of all inputs of ``node``, optionally cast to ``dtype``."""
        return [self.input(node, i, dtype) for i in range(len(node.inputs))]

    def input(self, node: Any, index: int, dtype: str | None = None) -> ir.Value:
        """The value of ``node.inputs[index]``, cast to ``dtype`` if given and different."""
        var = node.inputs[index]
        value = self.value(var)
        if dtype is None:
            return value
        return self.cast(value, dtype, variable_dtype(var))

    # ------------------------------------------------------------------- nodes
    def op(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        *,
        domain: str = "",
    ) -> ir.Value:
        """Append a one-output node and return its output value.

        Operators that some runtimes lack are written as equivalent portable nodes (see
        :data:`PORTABLE_REPLACEMENTS`), so no converter emits them.
        """
        if domain == "" and op_type in PORTABLE_REPLACEMENTS:
            return PORTABLE_REPLACEMENTS[op_type](self, list(inputs), dict(attributes or {}))
        return self._tape.op(op_type, inputs, attributes, domain=domain)

    def op_multi(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        attributes: Mapping[str, Any] | None = None,
        *,
        num_outputs: int,
        domain: str = "",
    ) -> Sequence[ir.Value]:
        """Append a node with ``num_outputs`` outputs and return them."""
        return self._tape.op_multi_out(
            op_type, inputs, attributes, num_outputs=num_outputs, domain=domain
        )

    def top_k(
        self, x: ir.Value, k: ir.Value, axis: int, dtype: str, *, largest: bool
    ) -> tuple[ir.Value, ir.Value]:
        """The ``k`` largest (or smallest) entries of ``x`` (of ``dtype``) along ``axis``,
        sorted, and their int64 indices: ONNX ``TopK`` (ties keep the lower index, NaN sorts
        last).

        ``k`` is a 1-element int64 value.  onnxruntime-web 1.30 traps ("divide by zero") in
        ``TopK`` with ``k > 0`` of an input that is empty along another axis (a batch of no
        rows): unless those axes are known not to be empty, an ``If`` gives an empty input
        its empty results without ``TopK`` (about 1.5 µs in ONNX Runtime 1.32).

        tract types a ``k`` computed from dimensions of unknown length as a dimension, which
        its ``TopK`` cannot evaluate.  In portable exports such a ``k`` goes through a
        ``Cast`` to uint64 and back, which tract computes when the model runs; its results
        then have a length of their own, which inside the ``If`` a ``Slice`` to ``k`` makes
        the length of the other branch's results again (a copy: 2-8 % of a sort of 10**6
        float64 values in ONNX Runtime).
        """
        attributes = {"axis": axis, "largest": int(largest), "sorted": 1}
        others = length = None
        if x.shape is not None:
            others = [d for i, d in enumerate(x.shape) if i != axis % len(x.shape)]
            length = x.shape[axis]
        computed_k = self.portable and k.const_value is None and not isinstance(length, int)

        def top(b: ONNXBuilder, *, same_length: bool) -> list[ir.Value]:
            if not computed_k:
                return list(b.op_multi("TopK", [x, k], attributes, num_outputs=2))
            count = b.cast(b.cast(k, "uint64", "int64"), "int64", "uint64")
            results = b.op_multi("TopK", [x, count], attributes, num_outputs=2)
            if not same_length:
                return list(results)
            return [b.op("Slice", [r, b.int64s([0]), k, b.int64s([axis])]) for r in results]

        if others is not None and all(isinstance(d, int) and d > 0 for d in others):
            values, indices = top(self, same_length=False)
            return values, indices

        def empty(b: ONNXBuilder) -> list[ir.Value]:
            values = b.op("Slice", [x, b.int64s([0]), k, b.int64s([axis])])
            # Not a Cast of ``values``: tract types an int64 made by a Cast as a dimension.
            zero = ir.Tensor(np.zeros(1, dtype=np.int64))
            return [values, b.op("ConstantOfShape", [b.shape(values)], {"value": zero})]

        is_empty = self.op("Equal", [self.op("Size", [x]), self.scalar(0, "int64")])
        values, indices = self.if_then_else(
            is_empty,
            empty,
            lambda b: top(b, same_length=True),
            (dtype, "int64"),
            names=("empty", "top_k"),
        )
        return values, indices

    def if_then_else(
        self,
        condition: ir.Value,
        then_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
        else_compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
        dtypes: Sequence[str],
        *,
        names: tuple[str, str] = ("then_branch", "else_branch"),
    ) -> list[ir.Value]:
        """Append an ONNX ``If`` on the 0-d bool ``condition`` and return its outputs, of
        ``dtypes``.

        Each ``compute`` makes its branch's values (of ``dtypes``) in the branch's own
        builder, where values of enclosing graphs may be read; ``names`` name the two
        branch graphs.
        """
        branches = [
            ir.AttrGraph(attr, self._branch(name, compute, dtypes))
            for attr, name, compute in zip(
                ("then_branch", "else_branch"), names, (then_compute, else_compute), strict=True
            )
        ]
        node = ir.Node("", "If", [condition], attributes=branches, num_outputs=len(dtypes))
        self.add_node(node)
        for value, dtype in zip(node.outputs, dtypes, strict=True):
            value.dtype = onnx_dtype(dtype)
        return list(node.outputs)

    def _branch(
        self,
        name: str,
        compute: Callable[[ONNXBuilder], Sequence[ir.Value]],
        dtypes: Sequence[str],
    ) -> ir.Graph:
        """A subgraph (an ``If`` branch) whose outputs, of ``dtypes``, ``compute`` makes in
        the subgraph's builder."""
        branch = ONNXBuilder(self.opset, self.names.claim(name), parent=self, names=self.names)
        for value, dtype in zip(compute(branch), dtypes, strict=True):
            # An Identity makes each output the branch's own (it may be an outer value).
            out = branch.op("Identity", [value])
            out.dtype = onnx_dtype(dtype)
            branch.graph.outputs.append(out)
        branch.name_values()
        return branch.graph

    def typed_op(
        self,
        op_type: str,
        inputs: Sequence[ir.Value | None],
        dtype: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        data: Sequence[int] | None = None,
        cast_back: bool = True,
    ) -> ir.Value:
        """Append ``op_type`` whose data inputs hold ``dtype``, working around missing kernels.

        Parameters
        ----------
        op_type, inputs, attributes
            As for :meth:`op`; the data inputs must already be of ``dtype``.
        dtype
            The dtype of the data inputs (and of the output when ``cast_back``).
        data
            Indices of the inputs that hold data of ``dtype`` (default: all).  Other inputs
            (conditions, axes) are passed unchanged.
        cast_back
            Whether the output has ``dtype`` too (False for comparisons, ArgMax...).
        """
        if dtype not in _KERNEL_GAPS.get(op_type, ()):
            return self.op(op_type, inputs, attributes)
        compute = _KERNEL_COMPUTE_DTYPE[dtype]
        indices = range(len(inputs)) if data is None else data
        widened = list(inputs)
        for i in indices:
            value = widened[i]
            if value is not None:
                widened[i] = self.cast(value, compute, dtype)
        result = self.op(op_type, widened, attributes)
        return self.cast(result, dtype, compute) if cast_back else result

    def add_output(self, value: ir.Value) -> ir.Value:
        """Append ``value`` to this graph's outputs and return the value appended.

        An ONNX graph output must be produced by a node of that graph, and be an output only
        once; graph inputs, initializers, values of an enclosing graph and values that are
        already outputs therefore go through an ``Identity`` node (which keeps their type).
        """
        producer = value.producer()
        if producer is None or producer.graph is not self.graph or value.is_graph_output():
            copy = self.op("Identity", [value])
            copy.type, copy.shape = value.type, value.shape
            value = copy
        self.graph.outputs.append(value)
        return value

    def add_node(self, node: ir.Node) -> None:
        """Append a node built elsewhere (e.g. one holding subgraph attributes)."""
        self.graph.append(node)

    def name_values(self) -> None:
        """Rename the node outputs of this builder's graph uniquely in the model.

        Each onnx-ir graph names new values ``val_<n>`` with its own counter, and
        NameFixPass keeps names unique per scope only, so a subgraph value can share the name
        of a value of the enclosing graph (invalid SSA for ONNX Runtime).  Subgraph builders
        call this once their graph is complete; the prefix is the graph name, which they
        claim from the shared name registry.
        """
        prefix = self.graph.name or self.names.claim("subgraph")
        for i, node in enumerate(self.graph):
            for j, value in enumerate(node.outputs):
                value.name = f"{prefix}_{i}_{j}"

    # --------------------------------------------------------------- constants
    def const(self, data: Any, dtype: str | np.dtype[Any] | None = None) -> ir.Value:
        """A constant value holding ``data`` (cast to ``dtype``), shared when repeated.

        Small constants become ``Constant`` nodes (usable in subgraphs and functions);
        large ones become initializers of the main graph.
        """
        array = np.asarray(data, dtype=dtype)
        if not array.flags.c_contiguous:
            array = np.asarray(array, order="C")
        key = (array.dtype.str, array.shape, array.tobytes())
        root = self.root
        cached = root._constants.get(key)
        if cached is not None:
            return cached
        tensor = ir.Tensor(array)
        if array.size > CONSTANT_NODE_MAX_SIZE and root.initializers:
            value = ir.Value(
                name=root.names.claim("const"),
                type=ir.TensorType(tensor.dtype),
                shape=ir.Shape(array.shape),
                const_value=tensor,
            )
            root.graph.register_initializer(value)
        else:
            node = ir.Node(
                "",
                "Constant",
                [],
                attributes=[ir.AttrTensor("value", tensor)],
                graph=None,
            )
            root.graph.append(node)
            value = node.outputs[0]
            value.dtype = tensor.dtype
            value.shape = ir.Shape(array.shape)
        root._constants[key] = value
        return value

    def int64s(self, values: Iterable[int]) -> ir.Value:
        """A 1-D int64 constant, the form ONNX takes for axes, shapes and pads."""
        return self.const(np.array(list(values), dtype=np.int64))

    def scalar(self, value: Any, dtype: str) -> ir.Value:
        """A 0-d constant of ``dtype``."""
        return self.const(np.array(value, dtype=dtype))

    def next_stream(self) -> int:
        """A new random-stream number, unique in the model (0, 1, ... in conversion order)."""
        root = self.root
        root._streams += 1
        return root._streams - 1

    def is_inf(
        self, x: ir.Value, dtype: str, *, positive: bool = True, negative: bool = True
    ) -> ir.Value:
        """Whether the float ``x`` of ``dtype`` is infinite (of the selected signs), as
        comparisons with infinity: every runtime has them (tract lacks a float64 ``IsInf``),
        and one sign is one ``Equal``."""
        if positive and negative:
            return self.op("Equal", [self.op("Abs", [x]), self.scalar(np.inf, dtype)])
        if positive or negative:
            return self.op("Equal", [x, self.scalar(np.inf if positive else -np.inf, dtype)])
        return self.op("Not", [self.op("Equal", [x, x])])  # nothing detected: all false

    @contextlib.contextmanager
    def elementwise(self, variable: Variable) -> Iterator[None]:
        """Convert an elementwise node whose output is ``variable``.

        Inside, :attr:`elementwise_size` of the root builder is the static number of
        elements of ``variable`` (``None`` when a dimension is not known): the
        special-function decompositions choose by it between forms that take few nodes
        (for a few elements, where ONNX Runtime's cost per node dominates) and forms that
        stream through large tensors fast.
        """
        root = self.root
        shape = getattr(variable.type, "shape", None)
        size = None if shape is None or None in shape else int(np.prod(shape, dtype=np.int64))
        saved, root.elementwise_size = root.elementwise_size, size
        try:
            yield
        finally:
            root.elementwise_size = saved

    @property
    def portable(self) -> bool:
        """Whether to build the constructions every runtime computes alike (the export
        option ``portable``, on by default) rather than ONNX Runtime's faster forms."""
        return bool(self.options.get("portable", True))

    @property
    def root(self) -> ONNXBuilder:
        """The builder of the main graph."""
        builder = self
        while builder.parent is not None:
            builder = builder.parent
        return builder

    def dimension_anchor(self) -> ir.Value | None:
        """An empty bool tensor whose dimensions after the first are the main graph's
        named input dimensions, each once (``None`` if it has none); made once, in the main
        graph.

        Every ``Scan`` passes it through its body (see ``dispatch._loop.LoopBody``): tract
        resolves the sizes in a body from the shapes of the body's inputs, and cannot invert
        expressions such as a size rounded up to a block (``32 * ((n + 31) / 32)``).
        """
        root = self.root
        if root._anchor is None:
            pieces: list[ir.Value] = []
            seen: set[str] = set()
            for value in root.graph.inputs:
                axes = []
                for axis, dim in enumerate(value.shape or ()):
                    if isinstance(dim, ir.SymbolicDim) and dim.value and dim.value not in seen:
                        seen.add(dim.value)
                        axes.append(axis)
                if axes:
                    shape = root.op("Shape", [value])
                    pieces.append(root.op("Gather", [shape, root.int64s(axes)]))
            if not pieces:
                return None
            root._anchor = root.op(
                "ConstantOfShape",
                [root.op("Concat", [root.int64s([0]), *pieces], {"axis": 0})],
                {"value": ir.Tensor(np.zeros(1, dtype=bool))},
            )
        return root._anchor

    # ----------------------------------------------------------------- helpers
    def cast(self, value: ir.Value, to: str, from_: str | None = None) -> ir.Value:
        """Cast ``value`` to dtype ``to``; a no-op when the source dtype is known to match."""
        target = onnx_dtype(to)
        source = onnx_dtype(from_) if from_ is not None else value.dtype
        if source == target:
            return value
        return self.op("Cast", [value], {"to": target})

    def shape(self, value: ir.Value) -> ir.Value:
        """The 1-D int64 shape of ``value``."""
        return self.op("Shape", [value])

    def dim(self, value: ir.Value, axis: int) -> ir.Value:
        """The length of ``value`` along ``axis`` as a 1-element int64 tensor."""
        attributes = {"start": axis}
        if axis != -1:
            attributes["end"] = axis + 1
        return self.op("Shape", [value], attributes)

    def axis_length(self, value: ir.Value, axis: int) -> ir.Value:
        """The length of ``value`` along ``axis`` as a 0-d int64 tensor."""
        return self.op("Squeeze", [self.dim(value, axis), self.int64s([0])])

    def axis_pads(
        self, rank: int, axis: int, before: int | ir.Value, after: int | ir.Value
    ) -> ir.Value:
        """``Pad``'s ``pads`` input for ``before``/``after`` entries along ``axis`` of a value of
        rank ``rank`` (the counts are ints or 1-element int64 values).

        The counts cover every axis: a ``Pad`` with an ``axes`` input breaks ONNX Runtime
        1.32's transpose optimizer, which moves a ``Transpose`` through a ``Pad`` by
        permuting ``pads`` as if it covered every axis (the session then fails with an
        out-of-bounds ``Gather``).
        """
        axis %= rank
        counts = [0] * axis + [before] + [0] * (rank - axis - 1)
        counts += [0] * axis + [after] + [0] * (rank - axis - 1)
        pieces: list[ir.Value] = []
        constants: list[int] = []
        for count in counts:
            if isinstance(count, int):
                constants.append(count)
                continue
            if constants:
                pieces.append(self.int64s(constants))
                constants = []
            pieces.append(count)
        if constants:
            pieces.append(self.int64s(constants))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, {"axis": 0})

    def pad_axis(
        self,
        value: ir.Value,
        axis: int,
        before: int | ir.Value,
        after: int | ir.Value,
        *,
        rank: int,
        constant: ir.Value | None = None,
    ) -> ir.Value:
        """``value`` (of rank ``rank``) with ``before``/``after`` entries ``constant`` (0-d of
        ``value``'s dtype; default zero) added along ``axis`` (see :meth:`axis_pads`)."""
        return self.op("Pad", [value, self.axis_pads(rank, axis, before, after), constant])

    def append_zeros(self, value: ir.Value, count: ir.Value, axis: int, dtype: str) -> ir.Value:
        """``value`` (of ``dtype``) with ``count`` (a one-element 1-D int64 value) zeros
        appended along ``axis`` (negative: from the end; the rank need not be known).

        A ``Concat``, where :meth:`pad_axis` is a ``Pad``: tract refuses a ``Pad`` whose
        amounts depend on an unknown dimension.
        """
        pieces = [] if axis == 0 else [self.op("Shape", [value], {"end": axis})]
        pieces.append(count)
        if axis != -1:
            pieces.append(self.op("Shape", [value], {"start": axis + 1}))
        zeros = self.op(
            "ConstantOfShape",
            [self.op("Concat", pieces, {"axis": 0})],
            {"value": ir.Tensor(np.zeros(1, dtype=dtype))},
        )
        return self.op("Concat", [value, zeros], {"axis": axis})

    def merge_dims(self, value: ir.Value, start: int, stop: int | None = None) -> ir.Value:
        """``value`` with its axes ``start:stop`` merged into one (``stop=None``: to the end).

        The merged length is computed, not ``-1``, and the reshape has ``allowzero``: ONNX
        Runtime refuses a ``-1`` next to a 0-length dimension, and reads a plain 0 as "copy".
        """
        parts = [self.op("Shape", [value], {"start": 0, "end": start})] if start else []
        middle = {"start": start} if stop is None else {"start": start, "end": stop}
        parts.append(self.op("ReduceProd", [self.op("Shape", [value], middle)], {"keepdims": 1}))
        if stop is not None:
            parts.append(self.op("Shape", [value], {"start": stop}))
        shape = parts[0] if len(parts) == 1 else self.op("Concat", parts, {"axis": 0})
        return self.op("Reshape", [value, shape], {"allowzero": 1})


# ---------------------------------------------------------------- portable operators
def _is_nan(builder: ONNXBuilder, xs: list[Any], attrs: dict[str, Any]) -> ir.Value:
    (x,) = xs
    return builder.op("Not", [builder.op("Equal", [x, x])])


def _is_inf(builder: ONNXBuilder, xs: list[Any], attrs: dict[str, Any]) -> ir.Value:
    # x - x is NaN exactly for infinite and NaN x; no constant, so no dtype is needed.
    (x,) = xs
    difference = builder.op("Sub", [x, x])
    infinite = builder.op("And", [builder.op("Equal", [x, x]), _is_nan(builder, [difference], {})])
    positive, negative = attrs.get("detect_positive", 1), attrs.get("detect_negative", 1)
    if positive and negative:
        return infinite
    if not (positive or negative):  # detects nothing: all false
        return builder.op("And", [infinite, builder.op("Not", [infinite])])
    sign = builder.op("Greater" if positive else "Less", [x, builder.op("Neg", [x])])
    return builder.op("And", [infinite, sign])


def _or_equal(strict: str) -> Callable[[ONNXBuilder, list[Any], dict[str, Any]], ir.Value]:
    def replacement(builder: ONNXBuilder, xs: list[Any], attrs: dict[str, Any]) -> ir.Value:
        a, b = xs
        return builder.op("Or", [builder.op(strict, [a, b]), builder.op("Equal", [a, b])])

    return replacement


#: Operators written as other nodes by :meth:`ONNXBuilder.op`, because runtimes people deploy
#: to lack them: tract 0.23 has no float64 ``IsNaN``/``IsInf`` kernels, onnx2torch no
#: ``GreaterOrEqual``/``LessOrEqual``.  The replacements are exact (NaN compares false, as in
#: the originals); measured in ONNX Runtime 1.32 on 10⁶ float64 values they cost 0.3-0.6 ms
#: more than the fused kernels (benchmarks/bench_portable_ops.py).
PORTABLE_REPLACEMENTS: dict[str, Callable[[ONNXBuilder, list[Any], dict[str, Any]], ir.Value]] = {
    "IsNaN": _is_nan,
    "IsInf": _is_inf,
    "GreaterOrEqual": _or_equal("Greater"),
    "LessOrEqual": _or_equal("Less"),
}
