"""Elementwise scalar ops (``pytensor.scalar.basic``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from pytensor.tensor.elemwise import Elemwise

from pytensor_onnx import export_onnx
from pytensor_onnx.dispatch import UnsupportedOpError
from tests.compare import all_nodes, compare_onnx_and_py, input_like, run_onnx

EDGE = np.array(
    [-np.inf, -3.5, -1.0, -0.5, -1e-300, 0.0, 1e-12, 0.5, 1.0, 2.5, 30.0, np.inf, np.nan]
)


def _values(dtype: str, low: float = -np.inf, high: float = np.inf) -> np.ndarray:
    values = EDGE[(low <= EDGE) & (high >= EDGE) | np.isnan(EDGE)]
    return np.concatenate([values, np.linspace(max(low, -5), min(high, 5), 11)]).astype(dtype)


UNARY = {
    "neg": (pt.neg, {}),
    "abs": (pt.abs, {}),
    "sign": (pt.sign, {}),
    "exp": (pt.exp, {}),
    "exp2": (pt.exp2, {}),
    "log": (pt.log, {"low": 0.0}),
    "log2": (pt.log2, {"low": 0.0}),
    "log10": (pt.log10, {"low": 0.0}),
    "log1p": (pt.log1p, {"low": -1.0}),
    "expm1": (pt.expm1, {}),
    "sqrt": (pt.sqrt, {"low": 0.0}),
    "sqr": (pt.sqr, {}),
    "reciprocal": (pt.reciprocal, {}),
    "floor": (pt.floor, {}),
    "ceil": (pt.ceil, {}),
    "trunc": (pt.trunc, {}),
    "round_half_to_even": (pt.round_half_to_even, {}),
    "round_half_away_from_zero": (pt.round_half_away_from_zero, {}),
    "sin": (pt.sin, {"low": -1e6, "high": 1e6}),
    "cos": (pt.cos, {"low": -1e6, "high": 1e6}),
    "tan": (pt.tan, {"low": -1e3, "high": 1e3}),
    "sinh": (pt.sinh, {}),
    "cosh": (pt.cosh, {}),
    "tanh": (pt.tanh, {}),
    "arcsinh": (pt.arcsinh, {}),
    "arccosh": (pt.arccosh, {"low": 1.0}),
    "arctanh": (pt.arctanh, {"low": -1.0, "high": 1.0}),
    "sigmoid": (pt.sigmoid, {}),
    "softplus": (pt.softplus, {}),
    "isnan": (pt.isnan, {}),
    "isinf": (pt.isinf, {}),
    "real": (pt.real, {}),
    "imag": (pt.imag, {}),
    # pt.conj of a real tensor returns it unchanged; the Op itself, as rewrites may leave it:
    "conj": (Elemwise(ps.conj), {}),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name: str, floatX: str, symbolic: bool) -> None:
    fn, domain = UNARY[name]
    value = _values(floatX, **domain)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [fn(x)], [value])


def test_log1p_expm1_accuracy_near_zero() -> None:
    value = np.array([1e-300, -1e-20, 1e-15, 3e-9, -2e-5, 1e-3, -0.3, 0.49, 0.51, 700.0])
    x = input_like(value, "x")
    compare_onnx_and_py([x], [pt.log1p(x), pt.expm1(x)], [value], rtol=4e-16 * 4)


def test_softplus_tails() -> None:
    value = np.array(
        [-800.0, -745.0, -40.0, -37.0, -36.9, 0.0, 17.9, 18.0, 33.2, 33.3, 40.0, 1e300]
    )
    x = input_like(value, "x")
    compare_onnx_and_py([x], [pt.softplus(x)], [value])


def test_hyperbolic_float64_range() -> None:
    value = np.array([-710.0, -709.9, -25.0, -1e-8, 1e-300, 0.1, 19.99, 20.01, 709.9, 710.4])
    x = input_like(value, "x")
    compare_onnx_and_py([x], [pt.sinh(x), pt.cosh(x)], [value], rtol=4e-16 * 8)


def test_inverse_hyperbolic_float64_range() -> None:
    big = np.array([1.0, 1.0 + 1e-15, 1.5, 1e7, 1e9, 1e200, 1.7e308])
    small = np.array([-0.999999, -1e-10, 1e-300, 0.3, 0.9999999999])
    x = input_like(big, "x")
    y = input_like(small, "y")
    compare_onnx_and_py(
        [x, y],
        [pt.arcsinh(x), pt.arccosh(x), pt.arcsinh(y), pt.arctanh(y)],
        [big, small],
        rtol=4e-16 * 8,
    )


BINARY = {
    "add": pt.add,
    "sub": pt.sub,
    "mul": pt.mul,
    "true_div": pt.true_div,
    "int_div": pt.int_div,
    "mod": pt.mod,
    "pow": pt.pow,
    "maximum": pt.maximum,
    "minimum": pt.minimum,
    "eq": pt.eq,
    "neq": pt.neq,
    "lt": pt.lt,
    "le": pt.le,
    "gt": pt.gt,
    "ge": pt.ge,
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_broadcasting(name: str, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(0)
    a = np.concatenate([_values(floatX), rng.normal(size=3).astype(floatX)]).reshape(-1, 1)
    b = np.array([-2.0, -0.5, 0.0, 0.3, 1.0, 3.0, np.inf, np.nan], dtype=floatX)
    if name == "pow":
        a = np.abs(a)
    x = input_like(a, "x", symbolic)
    y = input_like(b, "y", symbolic)
    compare_onnx_and_py([x, y], [BINARY[name](x, y)], [a, b])


def info_min(dtype: str) -> int:
    return int(np.iinfo(dtype).min)


def info_max(dtype: str) -> int:
    return int(np.iinfo(dtype).max)


def _ints(values: list[int], dtype: str) -> np.ndarray:
    """``values`` clipped to the range of ``dtype`` (duplicates after clipping are fine)."""
    return np.array([min(max(v, info_min(dtype)), info_max(dtype)) for v in values], dtype=dtype)


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize(
    "name", ["add", "sub", "mul", "int_div", "mod", "maximum", "minimum", "lt", "eq"]
)
def test_integer_binary(name: str, dtype: str) -> None:
    a = _ints([info_min(dtype), info_min(dtype) + 1, -7, -1, 0, 1, 7, 100, info_max(dtype)], dtype)
    a = a.reshape(-1, 1)
    b = _ints([-3, -1, 0, 1, 2, 5], dtype)
    x = input_like(a, "x")
    y = input_like(b, "y")
    compare_onnx_and_py([x, y], [BINARY[name](x, y)], [a, b])


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_unary(dtype: str) -> None:
    # The extremes wrap around in the squares, as in NumPy.
    a = _ints([info_min(dtype), -5, -1, 0, 1, 3, 11, info_max(dtype)], dtype)
    x = input_like(a, "x")
    outputs = [pt.abs(x), pt.sqr(x), pt.invert(x), pt.pow(x, 2)]
    if dtype.startswith("int"):
        outputs += [pt.neg(x), pt.sign(x)]
    compare_onnx_and_py([x], outputs, [a])


def test_bitwise_and_logical() -> None:
    a = np.array([0, 1, 5, -3, 127], dtype="int8")
    b = np.array([3, 1, 4, 6, -128], dtype="int8")
    p = np.array([True, False, True, False, True])
    q = np.array([True, True, False, False, True])
    x, y, u, v = (input_like(a, "x"), input_like(b, "y"), input_like(p, "p"), input_like(q, "q"))
    outputs = [x & y, x | y, x ^ y, ~x, u & v, u | v, u ^ v, ~u]
    compare_onnx_and_py([x, y, u, v], outputs, [a, b, p, q])


def test_mixed_dtype_upcasts(floatX: str) -> None:
    a = np.array([1, -2, 3], dtype="int8")
    b = np.array([0.5, 1.5, -2.5], dtype=floatX)
    x, y = input_like(a, "x"), input_like(b, "y")
    outputs = [x + y, x * 2, y * 2, x / 3, x < y, pt.switch(x > 0, x, y), y**x]
    compare_onnx_and_py([x, y], outputs, [a, b])


def test_clip_and_switch_broadcast(floatX: str, symbolic: bool) -> None:
    value = np.array([[-np.inf, -2.0, 0.3, np.nan, 5.0]], dtype=floatX).T
    lo = np.array([-1.0, 0.0], dtype=floatX)
    x, lower = input_like(value, "x", symbolic), input_like(lo, "lo", symbolic)
    compare_onnx_and_py(
        [x, lower],
        [pt.clip(x, lower, 1.0), pt.switch(x > lower, x, lower), pt.second(x, lower)],
        [value, lo],
    )


def test_casts(floatX: str) -> None:
    value = np.array([-3.7, -0.5, 0.0, 0.5, 2.9, 100.0], dtype=floatX)
    x = input_like(value, "x")
    outputs = [pt.cast(x, d) for d in ["int8", "int32", "int64", "float32", "float64", "bool"]]
    compare_onnx_and_py([x], outputs, [value])


def test_composite_expanded(floatX: str, symbolic: bool) -> None:
    import pytensor.scalar as ps
    from pytensor.tensor.elemwise import Elemwise

    a, b = ps.float64("a"), ps.float64("b")
    composite = ps.Composite([a, b], [ps.exp(a) * b + ps.log1p(a * a), ps.maximum(a, b)])
    value = np.linspace(-3, 3, 7).astype("float64")
    x, y = input_like(value, "x", symbolic), input_like(value[::-1].copy(), "y", symbolic)
    outputs = Elemwise(composite)(x, y)
    compare_onnx_and_py([x, y], outputs, [value, value[::-1].copy()])


def test_complex_parts_of_complex_values_are_refused() -> None:
    x, y = pt.vector("x"), pt.vector("y")
    with pytest.raises(UnsupportedOpError, match=r"(?s)Real.*complex numbers"):
        export_onnx([x, y], [pt.real(pt.exp(pt.complex(x, y)))])


def test_bool_arithmetic_is_logical() -> None:
    p = np.array([True, False, True, False])
    q = np.array([True, True, False, False])
    u, v = input_like(p, "p"), input_like(q, "q")
    compare_onnx_and_py([u, v], [pt.mul(u, v), pt.add(u, v)], [p, q])


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "uint64"])
def test_integer_power_is_exact(dtype: str, symbolic: bool) -> None:
    # ONNX Runtime's integer Pow goes through float64: 3 ** 39 came out 11 too small.
    x = np.array([3, 2, 7, 0, 1, 5, 2, 0], dtype=dtype)
    y = np.array([39, 64, 0, 0, 63, 13, 5, 7], dtype=dtype)
    a, b = input_like(x, "a", symbolic), input_like(y, "b", symbolic)
    compare_onnx_and_py([a, b], [a**b], [x, y])


@pytest.mark.parametrize("dtype", ["int64", "uint8"])
def test_integer_power_of_an_empty_array_by_a_scalar(dtype: str, symbolic: bool) -> None:
    # Found by fuzzing: the loop states were Expands of the length-1 exponent to the static
    # shape (0,), and ONNX Runtime 1.32 refused the model ("Inferred=1 Declared=0").
    x = np.zeros(0, dtype=dtype)
    a = input_like(x, "a", symbolic)
    b = pt.scalar("b", dtype=dtype)
    compare_onnx_and_py([a, b], [a**b], [x, np.array(3, dtype=dtype)])


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "uint64"])
@pytest.mark.parametrize("exponent", [0, 1, 2, 3, 4])
def test_integer_power_by_a_constant_is_unrolled(dtype: str, exponent: int, symbolic: bool) -> None:
    # n ** 2 and n ** 3 in the loop bodies of PyTensor's betainc gradient: a constant
    # exponent is square-and-multiply unrolled over its bits, not a 63-step Loop; results
    # stay exact (results within every dtype: PyTensor's own overflow handling varies).
    # PyTensor rewrites a tensor's x ** 2 itself, so the power sits in a Composite here, as
    # in a ScalarLoop's body.
    x = np.array([3, 2, 0, 1, 3, 0], dtype=dtype)
    a = input_like(x, "a", symbolic)
    inner = ps.get_scalar_type(dtype)("n")
    power = Elemwise(ps.Composite([inner], [inner ** ps.constant(np.array(exponent, dtype))]))
    model = compare_onnx_and_py([a], [power(a), power(a[None, :])], [x])
    assert not any(node.op_type == "Loop" for node in all_nodes(model))


def test_integer_power_by_a_narrower_constant_is_unrolled() -> None:
    # PyTensor's betainc gradient raises its integer counter to narrower constants: the
    # kernel sees the constant behind a Cast.
    x = np.array([3, -2, 0, 1, 11, -7], dtype="int32")
    a = input_like(x, "a", symbolic=True)
    inner = ps.int32("n")
    power = Elemwise(ps.Composite([inner], [inner ** ps.constant(np.array(3, "int16"))]))
    model = compare_onnx_and_py([a], [power(a)], [x])
    assert not any(node.op_type == "Loop" for node in all_nodes(model))


def test_integer_power_with_negative_exponents() -> None:
    # Integer results of 1 / x ** -y (PyTensor's Numba backend; its Python one raises).
    a, b = pt.vector("a", dtype="int64"), pt.vector("b", dtype="int64")
    model = export_onnx([a, b], [a**b])
    x = np.array([1, -1, -1, 2, -2, 0, 3])
    y = np.array([-5, -3, -2, -1, -1, 0, -2])
    for (got,) in run_onnx(model, {"a": x, "b": y}):
        np.testing.assert_array_equal(got, [1, -1, 1, 0, 0, 1, 0])
