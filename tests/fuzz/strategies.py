"""Hypothesis strategies for random PyTensor graphs, one strategy per dispatch area.

A graph is generated as Python source (one assignment per step, e.g.
``v2 = pt.cumsum(v1, axis=-1)``) executed against the inputs, so the very same text is the
body of a failure's standalone reproducer.  Inputs are generated with static shapes, which
tell every step the concrete shape of each intermediate; the symbolic variant re-executes the
same source on inputs whose dims are unknown (``None``; length-1 dims stay static, as PyTensor
only broadcasts dims it knows to be 1).

Each area strategy (``AREAS``) takes the draw function and the :class:`GraphBuilder`, picks
operands from the terms built so far (or new inputs) and adds one step.  Where ONNX Runtime
is documented to diverge from PyTensor, the strategy does not generate the diverging input
and names the divergence from :data:`DIVERGENCES` in a comment of the generated code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from hypothesis import assume
from hypothesis import strategies as st
from pytensor.graph.basic import Variable

try:  # PyTensor 3 moved ifelse and deprecated the old module
    from pytensor.conditional.op import ifelse
except ImportError:  # PyTensor 2
    from pytensor.ifelse import ifelse

from tests.compare import OPSETS, ULPS_PER_OPERATION

#: Documented ways ONNX Runtime differs from PyTensor that the generator steers around, each
#: named in the generated code where it applies (see docs/fuzzing.md).
DIVERGENCES = {
    "integer-division-by-zero": "ORT fails the run on integer Div/Mod by zero "
    "(ONNXRUNTIME_FACTS.md); PyTensor returns 0: integer divisors are nonzero.",
    "out-of-range-index": "PyTensor raises IndexError, ORT fails the run "
    "(docs/ops/indexing_sorting_reductions.md): indices are in range.",
    "float-to-int-cast": "casting NaN, inf or out-of-range floats to integers is undefined "
    "(C, NumPy): floats are clipped and NaN replaced before such a cast; and a last-ulp "
    "difference next to an integer (i0(0) is 1 - 2**-53 in the export) changes the truncated "
    "value: floats are moved off the integers by 1/pi first.",
    "unstable-argsort": "NumPy's default quicksort may order ties differently; the export is "
    "a stable sort (docs/ops/indexing_sorting_reductions.md): argsort asks for kind='stable'.",
    "int64-above-2**53": "ORT's int64 ReduceSum/ReduceProd and integer Pow go through float64 "
    "(ONNXRUNTIME_FACTS.md): integer values stay small.",
    "softmax-of-one-nonfinite": "PyTensor 3 simplifies softmax/log_softmax along an axis of static "
    "length 1 to 1/0 even for NaN or inf, PyTensor 2 and the export give NaN: such inputs are "
    "made finite.",
    "softmax-of-unsigned": "PyTensor computes softmax/log_softmax of unsigned integers with "
    "x - max(x) in the unsigned dtype, which wraps (softmax([0, 1]) of uint8 gives [nan, 0]); "
    "the export computes in float: unsigned inputs are cast to int64 first.",
    "cumprod-overflow-order": "cumprod multiplies in log-depth rounds, NumPy in sequence: where "
    "a partial product overflows or underflows they differ (docs/ops/"
    "indexing_sorting_reductions.md): float magnitudes are put in [0.5, 1], zeros, signs and "
    "NaN kept.",
    "logsumexp-of-integer": "PyTensor 2.38's and 3.0's rewriter never finishes compiling "
    "logsumexp of an integer tensor, so there is no reference value (the export converts it; "
    "tests/dispatch/test_reductions.py checks it against SciPy): integers are cast to float64 "
    "first on those versions.",
    "bessel-at-infinity": "SciPy's (so PyTensor's) i0/i1/j0/j1 return NaN at +-inf, the export "
    "their limits (+-inf, 0; docs/ops/special_functions.md): infinities become 0 before them.",
    "overflowing-intermediates": "where a product in a dot or an intermediate of a solve "
    "overflows or meets an infinity, BLAS/LAPACK (fused multiply-adds: inf + 3e38 * -2 is inf; "
    "substitution in their own order) and the export (the product overflows first: inf - inf "
    "is NaN; blocked steps multiply infinities by zeros) differ: a dot's term has its finite "
    "magnitudes capped at 1e30 (its infinities and NaN are kept), a dot's other operand and a "
    "solve's right-hand side have no special values.",
    "softplus-of-bool": "PyTensor 2.38 computes softplus of a bool in float16 (its float32 result "
    "for True is 1.3134766, not 1.3132616); PyTensor 3 and the export in float32: on PyTensor 2 "
    "bools are cast to int16 (same float32 result type) first.",
}

#: PyTensor 2.x, where some divergences apply.
PYTENSOR_2 = int(pytensor.__version__.split(".")[0]) < 3

FLOATS = ("float32", "float64")
INTS = ("int8", "int16", "int32", "int64", "uint8")
DISCRETE = (*INTS, "bool")
CAST_TARGETS = ("bool", "int8", "int32", "int64", "uint8", "float32", "float64")

#: Documented relative accuracy of the functions whose error exceeds one operation's budget
#: (docs/ops/special_functions.md: gammainc/gammaincc down to values of 1e-300).
DOCUMENTED_ERROR = {
    "gammainc": {"float64": 1.5e-13, "float32": 5.9e-08},
    "gammaincc": {"float64": 1.5e-13, "float32": 5.9e-08},
    "betainc": {"float64": 3e-12, "float32": 5.9e-08},
}


def documented_cost(function: str, dtype: str) -> int:
    """A step's rounding budget, in operations of ``ULPS_PER_OPERATION`` ulps each, that
    covers ``function``'s documented accuracy in ``dtype`` (1 for the other functions)."""
    error = DOCUMENTED_ERROR.get(function, {}).get(dtype, 0.0)
    ulps = ULPS_PER_OPERATION * float(np.finfo(dtype).eps)
    return max(1, math.ceil(error / ulps))


#: Values at the edges of the float domains, sprinkled into float inputs.
SPECIAL_FLOATS = {
    "float32": (np.nan, np.inf, -np.inf, -0.0, 0.0, 3e38, -3e38, 1e-40, 1e-30, 1.0, -1.0),
    "float64": (np.nan, np.inf, -np.inf, -0.0, 0.0, 1e300, -1e300, 1e-310, 1e-200, 1.0, -1.0),
}


@dataclass(frozen=True)
class FuzzInput:
    """One graph input: its name, dtype and value (whose shape is the static shape)."""

    name: str
    value: np.ndarray

    def declaration(self, symbolic: bool) -> str:
        """The Python line creating the PyTensor input."""
        shape = tuple(None if symbolic and d != 1 else d for d in self.value.shape)
        return f'{self.name} = pt.tensor("{self.name}", dtype="{self.value.dtype}", shape={shape})'

    def literal(self) -> str:
        """A Python expression for the value (``nan``/``inf`` from NumPy)."""
        return (
            f"np.array({self.value.tolist()!r}, dtype='{self.value.dtype}')"
            f".reshape({self.value.shape})"
        )


@dataclass
class FuzzCase:
    """A generated graph: inputs with values, the source of its steps, the outputs."""

    inputs: list[FuzzInput]
    steps: list[str]
    outputs: list[str]
    intermediates: list[str]
    tags: frozenset[str]
    symbolic: bool
    opset: int
    operations: int  # the rounding-error budget, in operations (GraphBuilder.add's cost)

    @property
    def source(self) -> str:
        """The Python source building the graph from the inputs."""
        return "\n".join([inp.declaration(self.symbolic) for inp in self.inputs] + self.steps)

    def build(self) -> tuple[list[Variable], list[Variable], list[Variable]]:
        """Execute the source: ``(inputs, outputs, float intermediates)``."""
        namespace = execute(self.source)
        return (
            [namespace[inp.name] for inp in self.inputs],
            [namespace[name] for name in self.outputs],
            [namespace[name] for name in self.intermediates],
        )

    @property
    def values(self) -> list[np.ndarray]:
        """The input values, in input order."""
        return [inp.value for inp in self.inputs]

    def reproducer(self, header: str) -> str:
        """A standalone Python script re-running this case (run from the repository root)."""
        values = ",\n    ".join(inp.literal() for inp in self.inputs)
        names = ", ".join(inp.name for inp in self.inputs)
        return (
            f'"""{header}"""\n\n'
            "import numpy as np\n"
            "import pytensor\n"
            "import pytensor.tensor as pt\n"
            "from numpy import inf, nan\n\n"
            "from tests.compare import differential_check\n"
            "from tests.fuzz.strategies import ifelse\n\n"
            f"{self.source}\n\n"
            f"values = [\n    {values},\n]\n"
            f"verdict = differential_check(\n    [{names}],\n"
            f"    [{', '.join(self.outputs)}],\n    values,\n"
            f"    operations={self.operations},\n"
            f"    intermediates=[{', '.join(self.intermediates)}],\n"
            f"    opset={self.opset},\n)\n"
            "print(verdict)\n"
        )


def execute(source: str) -> dict[str, Any]:
    """Run graph-building source in a namespace with ``np``, ``pt``, ``pytensor``, ``ifelse``."""
    namespace: dict[str, Any] = {
        "np": np, "pt": pt, "pytensor": pytensor, "ifelse": ifelse,
        "nan": np.nan, "inf": np.inf,
    }  # fmt: skip
    exec(source, namespace)
    return namespace


@dataclass
class GraphBuilder:
    """The graph built so far: inputs, steps and each term's variable (static shapes)."""

    draw: Callable[[st.SearchStrategy[Any]], Any]
    floatX: str
    inputs: list[FuzzInput] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    terms: dict[str, Variable] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    operations: int = 0
    namespace: dict[str, Any] = field(default_factory=lambda: execute(""))

    # -- operands ---------------------------------------------------------------------------

    def new_input(
        self, dtype: str, shape: Sequence[int], *, special: bool = True, nonzero: bool = False
    ) -> str:
        """A new input of ``dtype`` and ``shape`` with drawn values; returns its name."""
        return self.input_of(
            self.draw(array_values(dtype, tuple(shape), special=special, nonzero=nonzero))
        )

    def input_of(self, value: np.ndarray) -> str:
        """A new input holding ``value``; returns its name."""
        name = f"x{len(self.inputs)}"
        self.inputs.append(FuzzInput(name, value))
        self.namespace[name] = pt.tensor(name, dtype=str(value.dtype), shape=value.shape)
        self.terms[name] = self.namespace[name]
        return name

    def term(self, accept: Callable[[Variable], bool] = lambda v: True, known: bool = True) -> str:
        """The name of an existing term satisfying ``accept`` (rejects the example if none).

        With ``known`` (the default) only terms of fully known static shape qualify.
        """
        names = [
            n for n, v in self.terms.items() if accept(v) and not (known and None in v.type.shape)
        ]
        assume(names)
        return str(self.draw(st.sampled_from(names)))

    def shape(self, expression: str) -> tuple[int, ...]:
        """The static shape of a term or of an expression of terms."""
        shape = eval(expression, self.namespace).type.shape
        assume(None not in shape)
        return tuple(int(d) for d in shape)

    # -- steps ------------------------------------------------------------------------------

    def add(self, expression: str, *tags: str, note: str = "", cost: int = 1) -> str:
        """Add ``v<i> = expression`` (rejecting what PyTensor refuses to build).

        ``cost`` is the step's share of the rounding-error budget, in operations (see
        :func:`documented_cost`).
        """
        name = f"v{len(self.steps)}"
        line = f"{name} = {expression}" + (f"  # {note}" if note else "")
        try:
            exec(line, self.namespace)
        except Exception:  # PyTensor refuses the construction: not a graph to test
            assume(False)
        variable = self.namespace[name]
        assume(isinstance(variable, Variable))
        assume(None in variable.type.shape or math.prod(variable.type.shape) <= 4096)
        self.steps.append(line)
        self.operations += cost
        self.terms[name] = variable
        self.tags.update(tags)
        return name


# -- values -------------------------------------------------------------------------------------


def array_values(
    dtype: str, shape: tuple[int, ...], *, special: bool = True, nonzero: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """Arrays of small values, with edge values (inf, nan, -0.0, huge, tiny) sprinkled in."""
    size = math.prod(shape)

    @st.composite
    def build(draw: Callable[[st.SearchStrategy[Any]], Any]) -> np.ndarray:
        if dtype == "bool":
            flat = draw(st.lists(st.booleans(), min_size=size, max_size=size))
        elif dtype in FLOATS:
            width = 32 if dtype == "float32" else 64
            flat = draw(st.lists(st.floats(-4, 4, width=width), min_size=size, max_size=size))
            if special and size:
                for _ in range(draw(st.integers(0, 2))):
                    position = draw(st.integers(0, size - 1))
                    flat[position] = draw(st.sampled_from(SPECIAL_FLOATS[dtype]))
        else:  # small integers: "int64-above-2**53"
            low = 1 if nonzero else (0 if dtype.startswith("u") else -4)
            flat = draw(st.lists(st.integers(low, 5), min_size=size, max_size=size))
            if nonzero and not dtype.startswith("u"):
                signs = draw(st.lists(st.booleans(), min_size=size, max_size=size))
                flat = [-v if s else v for v, s in zip(flat, signs, strict=True)]
        return np.array(flat, dtype=dtype).reshape(shape)

    return build()


def shapes(min_dims: int = 0, max_dims: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Small shapes, 0-size dims included."""
    return st.lists(st.integers(0, 3), min_size=min_dims, max_size=max_dims).map(tuple)


def is_float(v: Variable) -> bool:
    return v.type.dtype in FLOATS


def is_int(v: Variable) -> bool:
    return v.type.dtype in INTS


def has_dims(n: int) -> Callable[[Variable], bool]:
    return lambda v: v.type.ndim >= n


def axis_of(draw: Callable[[st.SearchStrategy[Any]], Any], ndim: int) -> int:
    """An axis of an ``ndim``-dim tensor, negative or not."""
    return int(draw(st.integers(-ndim, ndim - 1)))


def broadcastable_shape(
    draw: Callable[[st.SearchStrategy[Any]], Any], shape: tuple[int, ...]
) -> tuple[int, ...]:
    """A shape broadcasting against ``shape``: a suffix of it with some dims set to 1."""
    suffix = shape[len(shape) - draw(st.integers(0, len(shape))) :]
    return tuple(1 if draw(st.booleans()) else d for d in suffix)


# -- one strategy per dispatch area ----------------------------------------------------------

FLOAT_UNARY = (
    "exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "arctan", "tanh", "sinh",
    "cosh", "arcsinh", "arccos", "arctanh", "sigmoid", "softplus", "erf", "erfc", "erfcx",
    "erfinv", "gammaln", "psi", "gamma", "abs", "sign", "floor", "ceil", "round", "neg",
    "reciprocal", "sqr", "log1mexp", "i0", "i1", "j0", "j1", "exp2", "log2", "log10", "isnan",
    "isinf",
)  # fmt: skip
INT_UNARY = ("abs", "neg", "sign", "sqr", "invert")


def elemwise_unary(draw: Any, g: GraphBuilder) -> None:
    """Elementwise math and special functions (integers are upcast by PyTensor)."""
    x = g.term(known=False)
    dtype = g.terms[x].type.dtype
    if dtype in INTS or dtype == "bool":
        op = draw(st.sampled_from(INT_UNARY + FLOAT_UNARY))
    else:
        op = draw(st.sampled_from(FLOAT_UNARY))
    kind = "float" if dtype in FLOATS else ("bool" if dtype == "bool" else "int")
    if op in ("i0", "i1", "j0", "j1") and kind == "float":
        x, note = f"pt.switch(pt.isinf({x}), 0, {x})", "bessel-at-infinity"
    elif op == "softplus" and kind == "bool" and PYTENSOR_2:
        x, note = f"pt.cast({x}, 'int16')", "softplus-of-bool"
    else:
        note = ""
    g.add(f"pt.{op}({x})", f"unary:{op}:{kind}", note=note)


BINARY = {
    "add": "pt.add({a}, {b})", "sub": "pt.sub({a}, {b})", "mul": "pt.mul({a}, {b})",
    "true_div": "pt.true_div({a}, {b})", "int_div": "pt.int_div({a}, {b})",
    "mod": "pt.mod({a}, {b})", "pow": "pt.pow({a}, {b})", "maximum": "pt.maximum({a}, {b})",
    "minimum": "pt.minimum({a}, {b})", "arctan2": "pt.arctan2({a}, {b})",
    "lt": "pt.lt({a}, {b})", "ge": "pt.ge({a}, {b})", "eq": "pt.eq({a}, {b})",
    "neq": "pt.neq({a}, {b})", "and": "pt.and_({a}, {b})", "or": "pt.or_({a}, {b})",
    "xor": "pt.xor({a}, {b})", "switch": "pt.switch(pt.gt({a}, 0), {a}, {b})",
}  # fmt: skip
BITWISE = ("and", "or", "xor")


def elemwise_binary(draw: Any, g: GraphBuilder) -> None:
    """Binary elementwise ops with broadcasting, mixed dtypes and Python-scalar operands."""
    op = draw(st.sampled_from(sorted(BINARY)))
    accept = (lambda v: not is_float(v)) if op in BITWISE else (lambda v: True)
    a = g.term(accept)
    a_dtype = g.terms[a].type.dtype
    b_dtype = a_dtype if op in BITWISE else draw(st.sampled_from((a_dtype, *FLOATS, "int64")))
    integer_division = op in ("int_div", "mod") and (a_dtype in DISCRETE and b_dtype in DISCRETE)
    source = draw(st.sampled_from(("input", "scalar", "term")))
    note = ""
    if source == "scalar" and b_dtype != "bool":
        b = repr(draw(st.sampled_from((2, -1, 3) if integer_division else (2, -1, 0.5, 0, -2.5))))
    elif source == "term" and not integer_division:
        shape = g.shape(a)
        b = g.term(lambda v: accept(v) and _broadcasts(v.type.shape, shape))
    else:
        b = g.new_input(b_dtype, broadcastable_shape(draw, g.shape(a)), nonzero=integer_division)
    if integer_division:
        note = "integer-division-by-zero"
    a, b = (b, a) if draw(st.booleans()) and source != "scalar" else (a, b)
    kinds = "".join(
        sorted({"f" if t in FLOATS else ("b" if t == "bool" else "i") for t in (a_dtype, b_dtype)})
    )
    g.add(BINARY[op].format(a=a, b=b), f"binary:{op}:{kinds}", note=note)


def _broadcasts(shape: tuple[int | None, ...], other: tuple[int, ...]) -> bool:
    return len(shape) <= len(other) and all(
        d in (1, o) for d, o in zip(reversed(shape), reversed(other), strict=False)
    )


#: Added before a float-to-int cast: exactly computed integers (``i0(0) = 1``) then truncate
#: the same whether a decomposition lands on them or one ulp below.
OFF_INTEGER = 1 / math.pi


def cast(draw: Any, g: GraphBuilder) -> None:
    """Casts between bool, integers and floats."""
    x = g.term()
    target = draw(st.sampled_from(CAST_TARGETS))
    source = g.terms[x].type.dtype
    if source in FLOATS and target in INTS:
        low = 0 if target.startswith("u") else -100
        g.add(
            f"pt.cast(pt.switch(pt.isnan({x}), 0, pt.clip({x}, {low}, 100) + {OFF_INTEGER!r}),"
            f" '{target}')",
            f"cast:{source}:{target}",
            note="float-to-int-cast",
        )
    else:
        g.add(f"pt.cast({x}, '{target}')", f"cast:{source}:{target}")


REDUCTIONS = ("sum", "prod", "max", "min", "mean", "all", "any", "argmax", "argmin", "var", "std")


def reduction(draw: Any, g: GraphBuilder) -> None:
    """Reductions over random axes (None, one, several, negative), with and without keepdims."""
    x = g.term(has_dims(1))
    ndim = g.terms[x].type.ndim
    op = draw(st.sampled_from(REDUCTIONS))
    axes = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
        )
    )
    keepdims = draw(st.booleans())
    dtype = g.terms[x].type.dtype
    g.add(
        f"pt.{op}({x}, axis={axes!r}, keepdims={keepdims})",
        f"reduce:{op}:{'float' if dtype in FLOATS else dtype}",
    )


def basic_slicing(draw: Any, g: GraphBuilder) -> None:
    """Basic indexing: slices with negative and stepped bounds, negative integer indices,
    and ``set_subtensor``/``inc_subtensor`` into such a view."""
    x = g.term(has_dims(1))
    shape = g.shape(x)
    items = []
    for d in shape[: draw(st.integers(1, len(shape)))]:
        if d and draw(st.integers(0, 3)) == 0:
            items.append(str(draw(st.integers(-d, d - 1))))  # "out-of-range-index"
        else:
            bound = st.one_of(st.none(), st.integers(-d - 2, d + 2))
            step = draw(st.one_of(st.none(), st.sampled_from((1, 2, 3, -1, -2))))
            start, stop = draw(bound), draw(bound)
            items.append(
                f"{'' if start is None else start}:{'' if stop is None else stop}"
                + ("" if step is None else f":{step}")
            )
    view = f"{x}[{', '.join(items)}]"
    how = draw(st.sampled_from(("get", "set", "inc")))
    if how == "get":
        g.add(view, "subtensor:basic")
        return
    y = g.new_input(g.terms[x].type.dtype, broadcastable_shape(draw, g.shape(view)))
    g.add(f"pt.{how}_subtensor({view}, {y})", f"subtensor:{how}")


def advanced_indexing(draw: Any, g: GraphBuilder) -> None:
    """Integer-array indexing (negative and repeated indices, on any axis), boolean masks,
    and ``set``/``inc`` through integer arrays (repeated indices accumulate)."""
    x = g.term(has_dims(1))
    shape = g.shape(x)
    kind = draw(st.sampled_from(("int", "mask", "set", "inc")))
    if kind == "mask":
        g.add(f"{x}[pt.gt({x}, 0)]", "advanced:mask")
        return
    axis = draw(st.integers(0, len(shape) - 1))
    assume(shape[axis] > 0)
    indices = draw(
        st.lists(st.integers(-shape[axis], shape[axis] - 1), min_size=0, max_size=4)
    )  # "out-of-range-index"
    index = g.input_of(np.array(indices, dtype="int64"))
    view = f"{x}[{':, ' * axis}{index}]"
    if kind == "int":
        g.add(view, "advanced:int")
        return
    y = g.new_input(g.terms[x].type.dtype, broadcastable_shape(draw, g.shape(view)))
    g.add(f"pt.{kind}_subtensor({view}, {y})", f"advanced:{kind}")


def join(draw: Any, g: GraphBuilder) -> None:
    """``concatenate`` along a random axis with a new input, ``stack`` of a term with itself."""
    x = g.term(has_dims(1))
    shape = g.shape(x)
    if draw(st.booleans()):
        axis = axis_of(draw, len(shape))
        other = list(shape)
        other[axis] = draw(st.integers(0, 3))
        y = g.new_input(g.terms[x].type.dtype, other)
        g.add(f"pt.concatenate([{x}, {y}], axis={axis})", "join:concatenate")
    else:
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
        g.add(f"pt.stack([{x}, {x}], axis={axis})", "join:stack")


def reshape(draw: Any, g: GraphBuilder) -> None:
    """Reshape (with -1), flatten, transpose, expand_dims and squeeze."""
    x = g.term()
    shape = g.shape(x)
    size = math.prod(shape)
    kind = draw(st.sampled_from(("reshape", "flatten", "transpose", "expand", "squeeze")))
    if kind == "reshape":
        factors = _factorization(draw, size)
        if size and factors and draw(st.booleans()):
            factors[draw(st.integers(0, len(factors) - 1))] = -1
        g.add(f"pt.reshape({x}, {tuple(factors)!r})", "shape:reshape")
    elif kind == "flatten":
        g.add(f"{x}.flatten()", "shape:flatten")
    elif kind == "transpose":
        perm = draw(st.permutations(range(len(shape))))
        g.add(f"pt.transpose({x}, {tuple(perm)!r})", "shape:transpose")
    elif kind == "expand":
        g.add(f"pt.expand_dims({x}, {draw(st.integers(0, len(shape)))})", "shape:expand_dims")
    else:
        ones = [i for i, d in enumerate(shape) if d == 1]
        assume(ones)
        g.add(f"pt.squeeze({x}, axis={draw(st.sampled_from(ones))})", "shape:squeeze")


def _factorization(draw: Any, size: int) -> list[int]:
    """A random list of dims whose product is ``size`` (0 gets a 0 dim)."""
    dims: list[int] = []
    rest = size
    while rest > 1 and len(dims) < 3:
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        dims.append(int(draw(st.sampled_from(divisors))))
        rest //= dims[-1]
    dims.append(rest)
    if size == 0:
        dims = [*draw(st.lists(st.integers(1, 3), max_size=2)), 0]
    return list(draw(st.permutations(dims)))


def cumulative(draw: Any, g: GraphBuilder) -> None:
    """``cumsum``/``cumprod`` along a random axis or flattened."""
    x = g.term()
    ndim = g.terms[x].type.ndim
    axis = None if ndim == 0 or draw(st.booleans()) else axis_of(draw, ndim)
    op = draw(st.sampled_from(("cumsum", "cumprod")))
    dtype = g.terms[x].type.dtype
    note = ""
    if op == "cumprod" and dtype in FLOATS:
        x, note = f"pt.sign({x}) * pt.clip(pt.abs({x}), 0.5, 1)", "cumprod-overflow-order"
    g.add(f"pt.{op}({x}, axis={axis})", f"cumulative:{op}:{dtype}", note=note)


def sorting(draw: Any, g: GraphBuilder) -> None:
    """``sort`` and stable ``argsort`` along a random axis."""
    x = g.term(has_dims(1))
    axis = axis_of(draw, g.terms[x].type.ndim)
    if draw(st.booleans()):
        g.add(f"pt.sort({x}, axis={axis})", "sort:sort")
    else:
        g.add(f"pt.argsort({x}, axis={axis}, kind='stable')", "sort:argsort",
              note="unstable-argsort")  # fmt: skip


def matmul(draw: Any, g: GraphBuilder) -> None:
    """``dot``/``matmul`` of a term with a new input of a compatible shape (1-D to 3-D)."""
    x = g.term(lambda v: 1 <= v.type.ndim <= 3 and v.type.dtype != "bool")
    shape = g.shape(x)
    n = shape[-1]
    other = (n,) if draw(st.booleans()) else (n, draw(st.integers(0, 3)))
    y_dtype = draw(st.sampled_from((g.terms[x].type.dtype, g.floatX)))
    y = g.new_input(y_dtype, other, special=False)
    note = ""
    if is_float(g.terms[x]):
        # Finite magnitudes capped at 1e30, infinities and NaN kept.
        x = f"pt.switch(pt.isinf({x}), {x}, pt.clip({x}, -1e30, 1e30))"
        note = "overflowing-intermediates"
    op = draw(st.sampled_from(("pt.dot({x}, {y})", "pt.matmul({x}, {y})")))
    g.add(op.format(x=x, y=y), "matmul", note=note)


def control_flow(draw: Any, g: GraphBuilder) -> None:
    """``ifelse`` on a data-dependent condition, or a small ``scan`` (a damped running sum)."""
    x = g.term(has_dims(1) if draw(st.booleans()) else (lambda v: True))
    if g.terms[x].type.ndim == 0 or draw(st.booleans()):
        y = g.new_input(g.terms[x].type.dtype, g.shape(x))
        g.add(f"ifelse(pt.gt(pt.sum({x}), 0), {x}, {y})", "control:ifelse")
        return
    # Sequences of any length, 0 included (a guarded ONNX Scan).
    g.add(
        f"pytensor.scan(lambda x_t, acc: 0.5 * acc + x_t, sequences=[{x}], "
        f"outputs_info=[pt.zeros({x}.shape[1:], dtype={x}.dtype)], return_updates=False)",
        "control:scan",
    )


def linalg(draw: Any, g: GraphBuilder) -> None:
    """Cholesky and solves of a well-conditioned SPD matrix ``M M^T + n I``."""
    n = draw(st.integers(1, 4))
    m = g.new_input(g.floatX, (n, n), special=False)
    spd = g.add(f"{m} @ {m}.T + {n} * pt.eye({n}, dtype='{g.floatX}')", "linalg:spd")
    kind = draw(st.sampled_from(("cholesky", "solve", "solve_pos")))
    if kind == "cholesky":
        g.add(f"pt.linalg.cholesky({spd})", "linalg:cholesky")
        return
    b = g.new_input(g.floatX, (n,) if draw(st.booleans()) else (n, 2), special=False)
    assume_a = "pos" if kind == "solve_pos" else "gen"
    g.add(
        f"pt.linalg.solve({spd}, {b}, assume_a='{assume_a}')",
        f"linalg:{kind}",
        note="overflowing-intermediates",
    )


#: Whether this PyTensor spells ``logsumexp`` as ``log(sum(exp(x)))`` (2.38 and 3.0), which
#: its rewriter rewrites forever for an integer ``x`` ("logsumexp-of-integer").
LOGSUMEXP_IS_COMPOSITE = pt.logsumexp(pt.vector(dtype="float64")).owner.op == pt.log


def special(draw: Any, g: GraphBuilder) -> None:
    """Softmax, log-softmax, logsumexp and the incomplete gamma and beta functions."""
    x = g.term(has_dims(1))
    axis = axis_of(draw, g.terms[x].type.ndim)
    kinds = ("softmax", "log_softmax", "logsumexp", "gammainc", "gammaincc", "betainc")
    kind = draw(st.sampled_from(kinds))
    dtype = g.terms[x].type.dtype
    if kind in ("softmax", "log_softmax"):
        note = ""
        if g.terms[x].type.shape[axis] == 1 and dtype in FLOATS:
            x, note = (
                f"pt.switch(pt.isnan({x}) | pt.isinf({x}), 0, {x})",
                "softmax-of-one-nonfinite",
            )
        elif dtype.startswith("uint"):
            x, note = f"pt.cast({x}, 'int64')", "softmax-of-unsigned"
        g.add(f"pt.special.{kind}({x}, axis={axis})", f"special:{kind}:{dtype}", note=note)
    elif kind == "logsumexp":
        note = ""
        if LOGSUMEXP_IS_COMPOSITE and dtype not in FLOATS:
            x, note = f"pt.cast({x}, 'float64')", "logsumexp-of-integer"
        g.add(f"pt.logsumexp({x}, axis={axis})", f"special:{kind}", note=note)
    elif kind == "betainc":
        a = g.new_input(g.floatX, broadcastable_shape(draw, g.shape(x)), special=False)
        out_dtype = pytensor.scalar.upcast(g.floatX, dtype)
        # Shapes from the term (b) and a new input (a), the point squashed into [0, 1].
        expression = f"pt.betainc(pt.abs({a}) + 0.5, pt.abs({x}) + 0.5, pt.sigmoid({a}))"
        g.add(expression, f"special:{kind}", cost=documented_cost(kind, out_dtype))
    else:
        a = g.new_input(g.floatX, broadcastable_shape(draw, g.shape(x)), special=False)
        out_dtype = pytensor.scalar.upcast(g.floatX, dtype)  # integer x: float64
        expression = f"pt.{kind}(pt.abs({a}) + 0.5, {x})"
        g.add(expression, f"special:{kind}", cost=documented_cost(kind, out_dtype))


#: Every area, one strategy each; the composer picks among them at every step.
AREAS: tuple[Callable[[Any, GraphBuilder], None], ...] = (
    elemwise_unary, elemwise_binary, cast, reduction, basic_slicing, advanced_indexing, join,
    reshape, cumulative, sorting, matmul, control_flow, linalg, special,
)  # fmt: skip


@st.composite
def graphs(
    draw: Callable[[st.SearchStrategy[Any]], Any],
    areas: Sequence[Callable[[Any, GraphBuilder], None]] = AREAS,
    max_steps: int = 4,
) -> FuzzCase:
    """A random graph: 1-2 inputs, 1-``max_steps`` steps from ``areas``, 1-2 outputs."""
    floatX = draw(st.sampled_from(FLOATS))
    g = GraphBuilder(draw, floatX)
    for _ in range(draw(st.integers(1, 2))):
        dtype = draw(st.sampled_from((floatX, floatX, "int64", "int32", "int8", "bool")))
        g.new_input(dtype, draw(shapes()))
    for _ in range(draw(st.integers(1, max_steps))):
        draw(st.sampled_from(areas))(draw, g)
    step_names = [line.split(" = ")[0] for line in g.steps]
    outputs = [step_names[-1]]
    if len(step_names) > 1 and draw(st.booleans()):
        outputs.insert(0, draw(st.sampled_from(step_names[:-1])))
    intermediates = [n for n in step_names if g.terms[n].type.dtype in FLOATS]
    return FuzzCase(
        inputs=g.inputs,
        steps=g.steps,
        outputs=outputs,
        intermediates=intermediates,
        tags=frozenset(g.tags),
        operations=g.operations,
        symbolic=draw(st.booleans()),
        opset=draw(st.sampled_from(OPSETS)),
    )
