"""How accurate ONNX Runtime's float64 kernels are, and the converters built on them.

Two probes over the whole float64 range (subnormals, +-0, +-inf, NaN, huge values, tails):

- every elementwise ONNX op the converters emit, as a one-node float64 model in ONNX Runtime
  against NumPy, with the accuracy the converters rely on asserted in ulps.  The list is
  derived from the dispatch package's source, so a converter that starts emitting a new op
  fails ``test_every_emitted_op_is_probed`` until the op's kernel is probed here;
- the converters' functions (``pt.sigmoid``, ``pt.softplus``, ``pt.log1p``, ...) exported
  with ``export_onnx`` and run in ONNX Runtime, against SciPy / NumPy / mpmath.

ONNX Runtime's own ``Sigmoid`` fails such a probe (float64: 0.1 % off at -30, 0 below -36;
float32: 5x off at -18), so ``pt.sigmoid`` is decomposed and ``Sigmoid`` is never emitted;
its float64 ``Sin``/``Cos`` are relatively accurate only on ``[-pi/2, pi/2]`` and beyond
``|x| = 16``, so float64 ``sin``/``cos``/``tan`` reduce their argument first.  The findings
are recorded in ``docs/ops/special_functions.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytensor.tensor as pt
import pytest
import scipy.special as sp
from onnx import helper

import pytensor_onnx
from pytensor_onnx import DEFAULT_OPSET, export_onnx
from pytensor_onnx.export import newest_ir_version
from tests.compare import OPSETS, compare_onnx_and_py, input_like, ort_session

_TINY = np.finfo(np.float64).tiny
_MAX = np.finfo(np.float64).max
_MAGNITUDES = np.concatenate(
    [[0.0, 5e-324, 1e-320, 1e-310, _TINY], np.logspace(-307, 308, 1500), [_MAX, np.inf]]
)
#: Signed values over the whole float64 range: zeros, subnormals, huge values, infinities, NaN.
WIDE = np.concatenate([_MAGNITUDES, -_MAGNITUDES, [np.nan]])
#: Values for binary ops (each pair of them is probed).
_PAIR_VALUES = np.concatenate(
    [
        [-np.inf, -_MAX, -1e300, -1e10, -700.5, -3.0, -2.5, -1.0, -0.5, -1e-300, -5e-324, -0.0],
        [0.0, 5e-324, 1e-300, 0.5, 1.0, 2.5, 3.0, 700.5, 1e10, 1e300, _MAX, np.inf, np.nan],
        np.linspace(-50.0, 50.0, 41),
    ]
)


def _pairs() -> tuple[np.ndarray, np.ndarray]:
    a, b = np.meshgrid(_PAIR_VALUES, _PAIR_VALUES)
    rng = np.random.default_rng(0)
    size = 20000
    magnitude = np.exp(rng.uniform(-700.0, 700.0, size))
    random_a = magnitude * rng.choice([-1.0, 1.0], size)
    random_b = rng.standard_normal(size) * np.exp(rng.uniform(-10.0, 10.0, size))
    return np.concatenate([a.ravel(), random_a]), np.concatenate([b.ravel(), random_b])


def _with(*extra: np.ndarray) -> np.ndarray:
    return np.concatenate([WIDE, *extra])


def ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``|got - want|`` in units of the spacing of float64 numbers at ``want``.

    Equal values (NaN and NaN included) count 0, any other NaN or infinity mismatch inf.
    """
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got - want) / np.spacing(np.abs(want))
    return np.where(same, 0.0, np.where(np.isnan(error), np.inf, error))


@dataclass(frozen=True)
class Probe:
    """A one-node float64 model of ``op_type`` and what it must match.

    ``grid`` holds one array per input, ``reference`` computes the exact (or correctly
    rounded, up to NumPy's own error) result, ``max_ulps`` is the accuracy the converters
    rely on; ``0`` means bit for bit (boolean results always are), the signs of zeros too
    unless ``signed_zeros`` is false.
    """

    op_type: str
    reference: Callable[..., np.ndarray]
    grid: tuple[np.ndarray, ...]
    max_ulps: float = 0.0
    attributes: dict[str, Any] = field(default_factory=dict)
    signed_zeros: bool = True


_PAIRS = _pairs()
_PI = math.pi
#: Where ONNX Runtime's float64 ``Sin``/``Cos`` are relatively accurate for any argument.
_ACCURATE_TRIG = _MAGNITUDES[(_MAGNITUDES < 1.0) | (_MAGNITUDES > 16.0)]


def _with_sign(magnitudes: np.ndarray) -> np.ndarray:
    return np.concatenate([magnitudes, -magnitudes])


PROBES = [
    # Exact in IEEE arithmetic: bit for bit, every special value included.
    *(
        Probe(op, ref, (WIDE,))
        for op, ref in [
            ("Abs", np.abs),
            ("Neg", np.negative),
            ("Sign", np.sign),
            ("Sqrt", np.sqrt),
            ("Reciprocal", np.reciprocal),
            ("IsNaN", np.isnan),
            ("IsInf", np.isinf),
        ]
    ),
    *(
        Probe(op, ref, (_with(np.linspace(-5.0, 5.0, 1001), np.arange(-5.0, 5.0) + 0.5),))
        for op, ref in [("Floor", np.floor), ("Ceil", np.ceil), ("Round", np.round)]
    ),
    *(
        Probe(op, ref, _PAIRS)
        for op, ref in [
            ("Add", np.add),
            ("Sub", np.subtract),
            ("Mul", np.multiply),
            ("Div", np.divide),
            ("Max", np.maximum),
            ("Min", np.minimum),
            ("Equal", np.equal),
            ("Less", np.less),
            ("LessOrEqual", np.less_equal),
            ("Greater", np.greater),
            ("GreaterOrEqual", np.greater_equal),
        ]
    ),
    Probe("Mod", np.fmod, _PAIRS, attributes={"fmod": 1}),
    Probe("Sum", lambda a, b, c: a + b + c, (*_PAIRS, _PAIRS[0][::-1].copy())),
    # ONNX Runtime's Relu keeps the sign of -0.0 (NumPy's maximum(-0.0, 0.0) is 0.0).
    Probe("Relu", lambda x: np.maximum(x, 0.0), (WIDE,), signed_zeros=False),
    Probe(
        "Clip",
        lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        (WIDE, np.array(-2.5), np.array(2.5)),
    ),
    # Transcendental kernels: within one ulp of NumPy (glibc), subnormal results included.
    Probe("Exp", np.exp, (_with(np.linspace(-746.0, 710.0, 20001)),), 1.0),
    Probe("Log", np.log, (_with(np.linspace(0.0, 10.0, 10001)),), 1.0),
    Probe("Pow", np.power, _PAIRS, 1.0),
    # Tanh: within 8 ulps (saturates to +-1 from |x| = 17.95, where tanh = 1 - 4.6e-16).
    Probe("Tanh", np.tanh, (_with(np.linspace(-25.0, 25.0, 20001)),), 8.0),
    # Sin on [-pi/2, pi/2] (what ``sin_pi`` uses) and both beyond |x| = 16: within 3 ulps.
    # In between they are only absolutely accurate, see test_sin_cos_near_their_zeros.
    *(
        Probe(
            op, ref, (np.concatenate([_with_sign(_ACCURATE_TRIG), np.linspace(-r, r, 20001)]),), 3.0
        )
        for op, ref, r in [("Sin", np.sin, _PI / 2), ("Cos", np.cos, _PI / 4)]
    ),
]


#: Emitted ops that do no floating-point arithmetic (structure, indexing, logic, selection,
#: control flow) or whose accuracy is that of an algorithm (reductions, softmax, linear
#: algebra); the converters' own tests cover them.
NOT_ELEMENTWISE = frozenset(
    [
        "And",
        "ArgMax",
        "ArgMin",
        "BitShift",
        "BitwiseAnd",
        "BitwiseNot",
        "BitwiseOr",
        "BitwiseXor",
        "Cast",
        "Compress",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "CumSum",
        "DFT",
        "Det",
        "Expand",
        "Gather",
        "GatherElements",
        "GatherND",
        "Gemm",
        "Identity",
        "If",
        "Loop",
        "MatMul",
        "NonZero",
        "Not",
        "Or",
        "Pad",
        "Range",
        "ReduceMax",
        "ReduceMin",
        "ReduceProd",
        "ReduceSum",
        "ReduceSumSquare",
        "Reshape",
        "Scan",
        "ScatterElements",
        "ScatterND",
        "Shape",
        "Size",
        "Slice",
        "Softmax",
        "Squeeze",
        "Tile",  # named by storage.py's check of untrusted models, not emitted
        "TopK",
        "Transpose",
        "Unique",
        "Unsqueeze",
        "Where",
        "Xor",
    ]
)
#: Emitted for float32 only: ONNX Runtime has no float64 kernel, float64 is decomposed.
FLOAT32_ONLY = frozenset(["Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Cosh", "Sinh", "Tan"])


def _emitted_op_types() -> set[str]:
    """The default-domain ONNX ops named as string literals in the package's source."""
    schemas = {schema.name for schema in onnx.defs.get_all_schemas() if schema.domain == ""}
    literals: set[str] = set()
    for path in Path(pytensor_onnx.__file__).parent.rglob("*.py"):
        literals.update(re.findall(r'"([A-Z][A-Za-z]*)"', path.read_text()))
    return literals & schemas


def test_every_emitted_op_is_probed() -> None:
    unprobed = _emitted_op_types() - NOT_ELEMENTWISE - FLOAT32_ONLY
    assert unprobed == {probe.op_type for probe in PROBES}


def _run_one_node(
    op_type: str,
    inputs: tuple[np.ndarray, ...],
    out_dtype: np.dtype[Any],
    attributes: dict[str, Any],
    opset: int,
) -> np.ndarray:
    names = [f"x{i}" for i in range(len(inputs))]
    graph = helper.make_graph(
        [helper.make_node(op_type, names, ["y"], **attributes)],
        op_type,
        [helper.make_tensor_value_info(n, onnx.TensorProto.DOUBLE, None) for n in names],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(out_dtype), None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = newest_ir_version()
    return ort_session(model).run(None, dict(zip(names, inputs, strict=True)))[0]


@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("probe", PROBES, ids=lambda probe: probe.op_type)
def test_float64_kernel(probe: Probe, opset: int) -> None:
    with np.errstate(all="ignore"):
        want = np.asarray(probe.reference(*probe.grid))
    got = _run_one_node(probe.op_type, probe.grid, want.dtype, probe.attributes, opset)
    if want.dtype == np.bool_:
        np.testing.assert_array_equal(got, want)
        return
    error = ulps(got, want)
    worst = int(np.argmax(error))
    at = [np.broadcast_to(x, want.shape)[worst] for x in probe.grid]
    assert error[worst] <= probe.max_ulps, (
        f"{probe.op_type}{tuple(at)}: {got[worst]!r}, want {want[worst]!r}, {error[worst]:.3g} ulps"
    )
    if probe.max_ulps == 0 and probe.signed_zeros:
        zero = want == 0
        np.testing.assert_array_equal(np.signbit(got[zero]), np.signbit(want[zero]))


def test_sin_cos_near_their_zeros() -> None:
    # Between |x| = 1 and 16 ONNX Runtime's float64 Sin and Cos are accurate to 3 ulps of 1
    # (6.7e-16) only absolutely: relative errors reach 1e-10 next to their zeros, and
    # Sin(pi) is -0.0 (sin(pi) = 1.2e-16).  The converters therefore use them only on
    # [-pi/2, pi/2] (float64 sin/cos/tan reduce the argument first) and beyond 2**19.
    x = np.concatenate([np.linspace(-16.0, 16.0, 64001), np.arange(-5, 6) * _PI / 2])
    for op_type, reference in [("Sin", np.sin), ("Cos", np.cos)]:
        got = _run_one_node(op_type, (x,), np.dtype(np.float64), {}, DEFAULT_OPSET)
        assert np.max(np.abs(got - reference(x))) <= 3 * np.finfo(np.float64).eps


# --------------------------------------------------------- converters, end to end
def _export_and_run(
    fn: Callable[[pt.TensorVariable], pt.TensorVariable], x: np.ndarray, *, static: bool = False
) -> Any:
    # A static shape of a few elements selects the converters' forms for few elements.
    v = pt.tensor("x", dtype=str(x.dtype), shape=x.shape if static else (None,))
    model = export_onnx([v], [fn(v)])
    return ort_session(model).run(None, {model.graph.input[0].name: x})[0]


def _expit(x: np.ndarray) -> np.ndarray:
    # SciPy's expit is 0 below -709.78 (it divides by 1 + exp(-x) = inf); there
    # sigmoid(x) = exp(x) / (1 + exp(x)) is exp(x) to 1e-300 relative.
    return np.where(x < -700.0, np.exp(x), sp.expit(x))


def _erfc(x: np.ndarray) -> np.ndarray:
    """mpmath's erfc at 30 digits (SciPy's is off by up to 60 ulps from 4 on); erfc is 0
    in float64 from 27.3 on, where mpmath's result overflows ``float()``."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        return np.array([float(mpmath.erfc(v)) for v in np.minimum(x, 28.0)])


def _log1mexp(x: np.ndarray) -> np.ndarray:
    return np.where(x < -math.log(2.0), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


#: Next to the zeros and poles of sin, cos, tan (multiples of pi/2), up to and past 2**19.
_TRIG_GRID = _with(
    np.linspace(-100.0, 100.0, 20001),
    np.arange(-400, 401) * (_PI / 2),
    _with_sign(np.geomspace(1.0, 2.0**20, 5000)),
)
_SIGMOID_GRID = _with(np.linspace(-800.0, 800.0, 16001))

# name: (function, NumPy/SciPy reference, grid, max ulps in float64).  The bounds are the
# measured ones: one rounding of the reference on top of the construction's own error.
FUNCTIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any], np.ndarray, float]] = {
    "sigmoid": (pt.sigmoid, _expit, _SIGMOID_GRID, 3.0),
    "softplus": (pt.softplus, lambda x: np.logaddexp(0.0, x), _SIGMOID_GRID, 3.0),
    "log_sigmoid": (
        lambda x: pt.log(pt.sigmoid(x)),
        lambda x: -np.logaddexp(0.0, -x),
        _SIGMOID_GRID,
        3.0,
    ),
    "log1p": (pt.log1p, np.log1p, _with(np.linspace(-1.0, 10.0, 11001)), 1.0),
    "expm1": (pt.expm1, np.expm1, _with(np.linspace(-800.0, 710.0, 15101)), 1.0),
    "exp": (pt.exp, np.exp, _with(np.linspace(-800.0, 710.0, 15101)), 1.0),
    "exp2": (pt.exp2, np.exp2, _with(np.linspace(-1080.0, 1030.0, 20001)), 1.0),
    "log": (pt.log, np.log, WIDE, 1.0),
    "log2": (pt.log2, np.log2, WIDE, 2.0),
    "log10": (pt.log10, np.log10, WIDE, 3.0),
    "log1mexp": (pt.log1mexp, _log1mexp, _with(-np.logspace(-300.0, 3.0, 3000)), 1.0),
    "sqrt": (pt.sqrt, np.sqrt, WIDE, 0.0),
    "tanh": (pt.tanh, np.tanh, _with(np.linspace(-25.0, 25.0, 10001)), 8.0),
    "sinh": (pt.sinh, np.sinh, _with(np.linspace(-720.0, 720.0, 14401)), 3.0),
    "cosh": (pt.cosh, np.cosh, _with(np.linspace(-720.0, 720.0, 14401)), 3.0),
    "arcsinh": (pt.arcsinh, np.arcsinh, WIDE, 2.0),
    "arccosh": (pt.arccosh, np.arccosh, _with(1.0 + np.logspace(-16.0, 0.0, 1000)), 2.0),
    "arctanh": (pt.arctanh, np.arctanh, _with(np.linspace(-1.0, 1.0, 10001)), 2.0),
    "sin": (pt.sin, np.sin, _TRIG_GRID, 3.0),
    "cos": (pt.cos, np.cos, _TRIG_GRID, 3.0),
    "tan": (pt.tan, np.tan, _TRIG_GRID, 5.0),
    "erf": (pt.erf, sp.erf, _with(np.linspace(-7.0, 7.0, 14001)), 3.0),
    "erfc": (pt.erfc, _erfc, _with(np.linspace(-7.0, 27.0, 1701)), 6.0),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_converter_accuracy_over_the_float64_range(name: str) -> None:
    fn, reference, grid, max_ulps = FUNCTIONS[name]
    with np.errstate(all="ignore"):
        want = reference(grid)
    error = ulps(_export_and_run(fn, grid), want)
    worst = int(np.argmax(error))
    assert error[worst] <= max_ulps, f"{name}({grid[worst]!r}): {error[worst]:.3g} ulps"


def test_sin_tan_keep_the_sign_of_zero() -> None:
    # Through the argument reduction; ONNX Runtime's Where loses a -0.0 taken from its first
    # branch, and its optimizer drops an Add of 0 and swaps the branches of Where(Not(c)).
    x = np.array([-0.0, 0.0, -1e-300, 2.0])
    for fn, reference in [(pt.sin, np.sin), (pt.tan, np.tan)]:
        for static in (False, True):
            got = _export_and_run(fn, x, static=static)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(reference(x)))


# --------------------------------------------------------------- sigmoid (issue #20)
#: The values of issue #20 (ONNX Runtime's Sigmoid: 9.348e-14 at -30, 0 at -40, -57, -700),
#: the subnormal range, the ends of ONNX Runtime's float32 kernel's trouble and large positives.
SIGMOID_POINTS = np.array(
    [
        *(-np.inf, -1e300, -745.0, -740.0, -700.0, -57.0, -40.0, -36.0, -30.0, -17.95, -10.0),
        *(-1e-300, -0.0, 0.0, 1e-300, 10.0, 30.0, 37.0, 40.0, 700.0, 1e300, np.inf, np.nan),
    ]
)


def _sigmoid_exact(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` at 30 digits (SciPy's ``expit`` is 0 below -709.78)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(30):
        return np.array([float(1 / (1 + mpmath.exp(-mpmath.mpf(float(v))))) for v in x])


def test_sigmoid_tail_float64() -> None:
    x = SIGMOID_POINTS
    error = ulps(_export_and_run(pt.sigmoid, x), _sigmoid_exact(x))
    assert np.max(error) <= 1.0, dict(zip(x, error, strict=True))


def test_sigmoid_tail_float32() -> None:
    # ONNX Runtime's float32 Sigmoid is 4.6 times too large at -17.95 and 0 below -87.
    with np.errstate(over="ignore"):
        x = np.concatenate([SIGMOID_POINTS, np.linspace(-104.0, 90.0, 19401)]).astype(np.float32)
    want = _sigmoid_exact(x.astype(np.float64))
    got = _export_and_run(pt.sigmoid, x)
    assert got.dtype == np.float32
    # Rounded once to float32 plus the float32 arithmetic: within 2 float32 ulps.
    spacing = np.spacing(np.abs(want.astype(np.float32))).astype(np.float64)
    same = (got == want.astype(np.float32)) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        error = np.where(same, 0.0, np.abs(got - want) / spacing)
    assert np.max(error) <= 2.0


def test_sigmoid_is_decomposed_and_matches_pytensor(floatX: str) -> None:
    with np.errstate(over="ignore"):
        value = SIGMOID_POINTS.astype(floatX)
    x = input_like(value, "x")
    model = compare_onnx_and_py([x], [pt.sigmoid(x), pt.sigmoid(-x) * 2.0], [value])
    assert "Sigmoid" not in {node.op_type for node in model.graph.node}
