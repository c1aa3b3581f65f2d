"""Converters for ``pytensor.scalar.basic`` ops and ``Composite``.

A scalar converter sees either an ``Elemwise`` node (tensor inputs) or a node of a
``Composite`` inner graph (scalar inputs standing for broadcast tensors); it only relies
on the dtypes of ``node.inputs`` / ``node.outputs``, so the same code serves both and ONNX's
NumPy-style broadcasting does the rest.

Functions that ONNX lacks (``log1p``, ``expm1``, ``round`` half away from zero, floor
division with NumPy semantics...), that ONNX Runtime lacks float64 kernels for
(``tan``, ``sinh``, ``cosh``, ``asinh``, ``acosh``, ``atanh``) or whose float64 kernels are
not relatively accurate (``sin``, ``cos``: see ``tests/dispatch/test_kernel_accuracy.py``)
are built from accurate decompositions here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import numpy as np
import onnx_ir as ir
import pytensor.scalar.basic as ps
from pytensor.graph.basic import Apply
from pytensor.scalar import upcast

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch import _special_tables as tables
from pytensor_onnx.dispatch._loop import Carry, Steps, fori_loop
from pytensor_onnx.dispatch._numerics import Num, work_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, inline_inner_graph, onnx_funcify

Values = Sequence[ir.Value]
#: A function computing an elementwise result from input values already of ``dtype``.
Kernel = Callable[[ONNXBuilder, list[ir.Value], str], ir.Value]


def _out_dtype(node: Apply) -> str:
    return variable_dtype(node.outputs[0])


def _is_float(dtype: str) -> bool:
    return np.dtype(dtype).kind == "f"


def _is_int(dtype: str) -> bool:
    return np.dtype(dtype).kind in "iu"


def register_kernel(
    *op_classes: type, inputs_dtype: str = "output", bool_native: bool = False
) -> Callable[[Kernel], Kernel]:
    """Register ``kernel`` for scalar op classes whose inputs are cast to one common dtype.

    ``inputs_dtype`` is ``"output"`` (cast inputs to the output dtype, for arithmetic) or
    ``"upcast"`` (cast inputs to their common upcast dtype, for comparisons).
    The kernel gets the builder, the cast input values and that dtype, and returns the
    result, which is then cast to the node's output dtype if needed.

    ONNX arithmetic has no bool kernels, so an ``"output"`` kernel of a bool node computes
    on 0/1 in int8 and its result is cast back to bool (``sqr``, ``//``, ``%`` of bools), as
    NumPy's bool arithmetic does, unless ``bool_native`` says it handles bools itself.
    """

    def decorator(kernel: Kernel) -> Kernel:
        def convert(op: ps.ScalarOp, node: Apply, builder: ONNXBuilder) -> Values:
            out_dtype = _out_dtype(node)
            if inputs_dtype == "output":
                dtype = "int8" if out_dtype == "bool" and not bool_native else out_dtype
            else:
                dtype = upcast(*(variable_dtype(i) for i in node.inputs))
            values = builder.inputs(node, dtype)
            result = kernel(builder, values, dtype)
            return [builder.cast(result, out_dtype, "bool" if inputs_dtype != "output" else dtype)]

        for cls in op_classes:
            onnx_funcify.register(cls)(convert)
        return kernel

    return decorator


def _fold(op_type: str) -> Kernel:
    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        result = xs[0]
        for x in xs[1:]:
            result = builder.typed_op(op_type, [result, x], dtype)
        return result

    return kernel


def _direct(op_type: str) -> Kernel:
    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        return builder.typed_op(op_type, xs, dtype)

    return kernel


def _bool_as(bool_op: str, numeric_op: str) -> Kernel:
    """Fold with ``numeric_op``, or with ``bool_op`` for bools (ONNX arithmetic has no bool)."""

    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        return _fold(bool_op if dtype == "bool" else numeric_op)(builder, xs, dtype)

    return kernel


# PyTensor adds and multiplies bools as logical or / and.
register_kernel(ps.Add, bool_native=True)(_bool_as("Or", "Add"))
register_kernel(ps.Mul, bool_native=True)(_bool_as("And", "Mul"))

for _cls, _onnx in [
    (ps.Sub, "Sub"),
    (ps.TrueDiv, "Div"),
    (ps.Neg, "Neg"),
    (ps.Abs, "Abs"),
    (ps.Sign, "Sign"),
    (ps.Exp, "Exp"),
    (ps.Log, "Log"),
    (ps.Sqrt, "Sqrt"),
    (ps.Tanh, "Tanh"),
    (ps.Reciprocal, "Reciprocal"),
    (ps.Maximum, "Max"),
    (ps.Minimum, "Min"),
]:
    register_kernel(_cls)(_direct(_onnx))


def _float_or_ints(float_kernel: Kernel, int_kernel: Kernel) -> Kernel:
    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        return (float_kernel if _is_float(dtype) else int_kernel)(builder, xs, dtype)

    return kernel


#: Squarings of an exact integer power: enough for every bit of a non-negative int64 exponent.
_INT_POW_STEPS = 63


def _int_pow(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    """``x ** y`` of integers, exact with wrap-around (as NumPy and PyTensor's Numba backend):
    ONNX Runtime's integer ``Pow`` goes through float64 (``3 ** 39`` is off by 11).

    Square-and-multiply over the bits of ``y`` in 64-bit integers.  A negative exponent
    gives the integer result ``1 / x ** -y`` truncated: ``1`` for ``x = 1``, ``+-1`` for
    ``x = -1``, else 0 (what the Numba backend computes; NumPy raises).
    """
    wide = "uint64" if dtype.startswith("u") else "int64"
    exponent = _constant_exponent(xs[1])
    if exponent is not None:
        x = builder.cast(xs[0], wide, dtype)
        return builder.cast(_int_pow_by_constant(builder, x, exponent, wide), dtype, wide)
    x, y = (builder.cast(v, wide, dtype) for v in xs)
    one, two, zero = (builder.scalar(v, wide) for v in (1, 2, 0))
    # The loop states broadcast to x + y by adding zeros of that shape: ONNX Runtime 1.32
    # refuses a Scan whose state starts as an ``Expand`` of a length-1 input-dependent value
    # (here the exponent) to a static shape with a 0 ("Inferred=1 Declared=0").
    zeros = builder.op("Mul", [builder.op("Add", [x, y]), zero])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        result, base, exponent = state
        odd = b.op("Equal", [b.op("Mod", [exponent, two]), one])
        result = b.typed_op("Where", [odd, b.op("Mul", [result, base]), result], wide, data=[1, 2])
        return [result, b.op("Mul", [base, base]), b.op("Div", [exponent, two])]

    start = [
        builder.op("Add", [one, zeros]),
        builder.op("Add", [x, zeros]),
        builder.op("Add", [builder.op("Max", [y, zero]), zeros]),
    ]
    steps = Steps(builder.scalar(_INT_POW_STEPS, "int64"), _INT_POW_STEPS)
    (result, _, _), _ = fori_loop(builder, steps, [Carry(v, wide) for v in start], [], step, "pow")
    if wide == "int64":
        negative_result = builder.op(
            "Where",
            [
                builder.op("Equal", [x, builder.scalar(-1, wide)]),
                builder.op("Sub", [one, builder.op("Mul", [two, builder.op("Mod", [y, two])])]),
                builder.op("Where", [builder.op("Equal", [x, one]), one, zero]),
            ],
        )
        result = builder.op("Where", [builder.op("Less", [y, zero]), negative_result, result])
    return builder.cast(result, dtype, wide)


def _constant_exponent(y: ir.Value) -> tuple[int, ir.Value | None] | None:
    """``(e, shaped)`` if the exponent ``y`` is a constant of one element ``e >= 0`` (also
    behind ``Cast`` nodes): ``shaped`` is ``None`` for a 0-d constant, else ``y``, whose
    shape the result broadcasts to."""
    source, casts = y, []
    while (producer := source.producer()) is not None and producer.op_type == "Cast":
        # Casts of a constant (folded later): they keep its value if every type holds it.
        if producer.inputs[0] is None:
            return None
        casts.append(ir.DataType(producer.attributes["to"].as_int()).numpy())
        source = producer.inputs[0]
    tensor = ir.convenience.get_const_tensor(source)
    if tensor is None or tensor.size != 1 or tensor.dtype.is_floating_point():
        return None
    array = tensor.numpy()
    value = int(array.reshape(()))
    if value < 0 or any(int(np.array(value).astype(dtype)) != value for dtype in casts):
        return None
    return value, None if array.ndim == 0 else y


def _int_pow_by_constant(
    builder: ONNXBuilder, x: ir.Value, exponent: tuple[int, ir.Value | None], wide: str
) -> ir.Value:
    """``x ** e`` of 64-bit integers (dtype ``wide``) for a constant ``e >= 0``:
    square-and-multiply unrolled over the bits of ``e`` (``n ** 2`` is one ``Mul``),
    wrapping around as ``Mul`` does."""
    e, shaped = exponent
    result: ir.Value | None = None
    base = x
    while e:
        if e & 1:
            result = base if result is None else builder.op("Mul", [result, base])
        e >>= 1
        if e:
            base = builder.op("Mul", [base, base])
    if result is None:  # x ** 0
        result = builder.op("Expand", [builder.scalar(1, wide), builder.shape(x)])
    if shaped is not None:  # broadcast like the exponent (a one-element tensor)
        ones = builder.op("Expand", [builder.scalar(1, wide), builder.shape(shaped)])
        result = builder.op("Mul", [result, ones])
    return result


register_kernel(ps.Pow)(_float_or_ints(_direct("Pow"), _int_pow))


def _identity_kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    return xs[0]


# Integer inputs of floor/ceil/trunc/round keep their dtype in PyTensor: nothing to do.
for _cls, _onnx in [(ps.Floor, "Floor"), (ps.Ceil, "Ceil"), (ps.RoundHalfToEven, "Round")]:
    register_kernel(_cls)(_float_or_ints(_direct(_onnx), _identity_kernel))


@register_kernel(ps.Trunc)
def _trunc(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    if not _is_float(dtype):
        return xs[0]
    (x,) = xs
    floor = builder.op("Floor", [x])
    ceil = builder.op("Ceil", [x])
    return builder.op("Where", [builder.op("Less", [x, builder.scalar(0, dtype)]), ceil, floor])


@register_kernel(ps.RoundHalfAwayFromZero)
def _round_half_away(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    if not _is_float(dtype):
        return xs[0]
    (x,) = xs
    magnitude = builder.op("Abs", [x])
    floor = builder.op("Floor", [magnitude])
    # ``magnitude - floor`` is exact in floating point, so the tie test is exact too.
    frac = builder.op("Sub", [magnitude, floor])
    up = builder.op("GreaterOrEqual", [frac, builder.scalar(0.5, dtype)])
    rounded = builder.op("Where", [up, builder.op("Add", [floor, builder.scalar(1, dtype)]), floor])
    negative = builder.op("Less", [x, builder.scalar(0, dtype)])
    return builder.op("Where", [negative, builder.op("Neg", [rounded]), rounded])


@register_kernel(ps.Sqr)
def _sqr(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    if np.dtype(dtype).kind != "i":
        return builder.op("Mul", [x, x])
    # -(x * -x), exact with wrap-around: tract 0.23 turns Mul(x, x) into its own Square,
    # which has no integer kernels (ONNX has no Neg of unsigned integers, so they keep it).
    return builder.op("Neg", [builder.op("Mul", [x, builder.op("Neg", [x])])])


@register_kernel(ps.Exp2)
def _exp2(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    return builder.op("Pow", [builder.scalar(2, dtype), xs[0]])


def _log_base(base: float) -> Kernel:
    inverse_log = 1.0 / math.log(base)

    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        return builder.op("Mul", [builder.op("Log", [xs[0]]), builder.scalar(inverse_log, dtype)])

    return kernel


register_kernel(ps.Log2)(_log_base(2.0))
register_kernel(ps.Log10)(_log_base(10.0))


# ------------------------------------------------------------------ log1p / expm1
def log1p(builder: ONNXBuilder, x: ir.Value, dtype: str, *, finite: bool = False) -> ir.Value:
    """``log(1 + x)`` accurate for small ``x`` (Kahan's trick: ``log(u) * x / (u - 1)``).

    ``finite=True`` leaves out the guard for ``x = +inf`` (where the ratio is inf / inf), for
    callers whose ``x`` is never +inf.
    """
    u = builder.op("Add", [x, builder.scalar(1, dtype)])
    d = builder.op("Sub", [u, builder.scalar(1, dtype)])
    corrected = builder.op("Mul", [builder.op("Log", [u]), builder.op("Div", [x, d])])
    exact = builder.op("Equal", [d, builder.scalar(0, dtype)])
    result = builder.op("Where", [exact, x, corrected])
    if finite:
        return result
    is_inf = builder.is_inf(x, dtype, negative=False)
    return builder.op("Where", [is_inf, x, result])


def expm1(builder: ONNXBuilder, x: ir.Value, dtype: str) -> ir.Value:
    """``exp(x) - 1`` accurate for small ``x`` (Kahan's trick for ``|x| < 0.5``)."""
    u = builder.op("Exp", [x])
    d = builder.op("Sub", [u, builder.scalar(1, dtype)])
    log_u = builder.op("Log", [u])
    ratio = builder.op("Div", [builder.op("Mul", [d, x]), log_u])
    kahan = builder.op("Where", [builder.op("Equal", [u, builder.scalar(1, dtype)]), x, ratio])
    small = builder.op("Less", [builder.op("Abs", [x]), builder.scalar(0.5, dtype)])
    return builder.op("Where", [small, kahan, d])


register_kernel(ps.Log1p)(lambda b, xs, dtype: log1p(b, xs[0], dtype))
register_kernel(ps.Expm1)(lambda b, xs, dtype: expm1(b, xs[0], dtype))


# --------------------------------------------- hyperbolic and tan (no float64 kernel in ORT)
def _native_float32(op_type: str, float64_kernel: Kernel) -> Kernel:
    """Use the ONNX op where ONNX Runtime has a kernel, the decomposition for float64."""

    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        if dtype == "float64":
            return float64_kernel(builder, xs, dtype)
        return builder.op(op_type, xs)

    return kernel


#: pi/2 as a sum of three doubles, the first two of 33 significant bits (fdlibm's ``pio2_1``,
#: ``pio2_2``, ``pio2_2t``), so that ``k * part`` is exact for the first two when |k| < 2**20.
_HALF_PI_PARTS = (1.57079632673412561417e00, 6.07710050630396597660e-11, 2.02226624879595063154e-21)
#: Arguments from here on go to ONNX Runtime's kernels (accurate there, probed up to 1e300).
_REDUCTION_LIMIT = 2.0**19


def _reduce_half_pi(num: Num, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``(k, r)`` with ``x = k pi/2 + r``, ``|r| <= pi/4``, for ``|x| < 2**19``.

    ONNX Runtime's float64 ``Sin``/``Cos`` are only absolutely accurate for ``1 < |x| < 16``
    (``Sin(pi) = -0.0``), but relatively accurate on ``[-pi/2, pi/2]``: ``r`` is computed
    Cody-Waite style, exact but for the last part's rounding, so that values next to the
    zeros keep their relative accuracy.  ``k`` is ``+0.0`` for small ``x`` so that ``r`` is
    ``x`` itself, signed zero included (``0 - floor(1/2 - x 2/pi)``: ONNX Runtime's optimizer
    was seen to remove ``round(x 2/pi) + 0``).
    """
    k = num.sub(0.0, num.nearest_integer(num.mul(x, -2.0 / math.pi)))
    r = x
    for part in _HALF_PI_PARTS:
        r = num.sub(r, num.mul(k, part))
    return k, r


def _parity(num: Num, n: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``(n mod 2, floor(n / 2))`` of the integer-valued ``n`` (exact below ``2**53``)."""
    half = num.unary("Floor", num.mul(n, 0.5))
    return num.sub(n, num.add(half, half)), half


def _beyond_reduction(num: Num, x: ir.Value) -> ir.Value:
    """Where ``|x|`` is past the argument reduction, so that ONNX Runtime's kernel computes
    it (bool; false for NaN)."""
    return num.ge(num.unary("Abs", x), _REDUCTION_LIMIT)


def _sin_of(num: Num, k: ir.Value, r: ir.Value, x: ir.Value | None = None) -> ir.Value:
    """``sin(k pi/2 + r)`` (``|r| <= pi/4``) with one ``Sin`` on ``[-pi/2, pi/2]``: ``+-sin r``
    or ``+-cos r = +-sin(pi/2 - |r|)``.  Given ``x = k pi/2 + r``, that is ``sin(x)``: then
    arguments past the reduction take ONNX Runtime's ``Sin`` of ``x`` itself, and signed
    zeros are kept.

    On many elements the argument and the sign are selected by multiplying with 0 and 1,
    not with ``Where``: ONNX Runtime's ``Where`` costs 25 times a ``Mul`` on a mask that
    changes from element to element (its branch is mispredicted half of the time), as the
    quadrants of varied arguments do.  The products are exact and one of each pair is
    zero, so the values are those of the selection, but a sum of zeros is ``+0.0``: ``x``'s
    own zeros are put back with a ``Where`` whose mask hardly varies.  On a few elements
    (:attr:`Num.few_elements`) the ``Where`` form, with fewer nodes, is faster.
    """
    cosine = num.sub(math.pi / 2, num.unary("Abs", r))
    if num.few_elements:
        # ``r`` in Where's second branch: ONNX Runtime's Where turns a -0.0 taken from its
        # first branch into +0.0.
        value = num.unary("Sin", num.where(num.odd_integer(k), cosine, r))
        value = num.negate_where(num.odd_integer(num.unary("Floor", num.mul(k, 0.5))), value)
        if x is None:
            return value
        return num.where(_beyond_reduction(num, x), num.unary("Sin", x), value)
    odd, half = _parity(num, k)
    flip, _ = _parity(num, half)
    argument = num.add(num.mul(odd, cosine), num.mul(num.sub(1.0, odd), r))
    if x is not None:
        beyond = num.builder.cast(_beyond_reduction(num, x), num.dtype, "bool")
        argument = num.add(num.mul(beyond, x), num.mul(num.sub(1.0, beyond), argument))
        flip = num.mul(flip, num.sub(1.0, beyond))
    value = num.mul(num.unary("Sin", argument), num.sub(1.0, num.mul(flip, 2.0)))
    if x is None:
        return value
    # The mask has no Not, which ONNX Runtime's optimizer folds by swapping the branches;
    # NaN stays NaN.
    return num.where(num.gt(num.unary("Abs", x), 0.0), value, x)


def _sin64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    num = Num(builder, dtype)
    (x,) = xs
    k, r = _reduce_half_pi(num, x)
    return _sin_of(num, k, r, x)


def _cos_of(num: Num, x: ir.Value, k: ir.Value, r: ir.Value) -> ir.Value:
    # cos(x) = sin(x + pi/2); past the reduction, ONNX Runtime's Cos (a cheap Where: its mask
    # is the same for nearly every element; the reduced value second, for its signed zeros).
    return num.where(
        _beyond_reduction(num, x), num.unary("Cos", x), _sin_of(num, num.add(k, 1.0), r)
    )


def _cos64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    num = Num(builder, dtype)
    (x,) = xs
    k, r = _reduce_half_pi(num, x)
    return _cos_of(num, x, k, r)


def sin_and_cos(num: Num, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``(sin x, cos x)`` as the ``Sin``/``Cos`` converters compute them, sharing the argument
    reduction in float64 (ONNX Runtime's kernels in float32)."""
    if num.dtype != "float64":
        return num.unary("Sin", x), num.unary("Cos", x)
    k, r = _reduce_half_pi(num, x)
    return _sin_of(num, k, r, x), _cos_of(num, x, k, r)


def _tan64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    num = Num(builder, dtype)
    (x,) = xs
    k, r = _reduce_half_pi(num, x)
    sin_r, cos_r = num.unary("Sin", r), num.unary("Cos", r)
    # tan(r + pi/2) = -cos r / sin r.
    cotangent = num.unary("Neg", num.div(cos_r, sin_r))
    reduced = num.where(num.odd_integer(k), cotangent, num.div(sin_r, cos_r))
    native = num.div(num.unary("Sin", x), num.unary("Cos", x))
    # ``reduced`` second, for its signed zeros (see _sin_of).
    return num.where(_beyond_reduction(num, x), native, reduced)


def _with_sign_of(builder: ONNXBuilder, x: ir.Value, magnitude: ir.Value, dtype: str) -> ir.Value:
    negative = builder.op("Less", [x, builder.scalar(0, dtype)])
    return builder.op("Where", [negative, builder.op("Neg", [magnitude]), magnitude])


def _sinh64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    a = builder.op("Abs", [x])
    # Small |x|: sinh = (u + u / (u + 1)) / 2 with u = expm1(|x|), free of cancellation.
    u = expm1(builder, a, dtype)
    small = builder.op(
        "Mul",
        [
            builder.op(
                "Add", [u, builder.op("Div", [u, builder.op("Add", [u, builder.scalar(1, dtype)])])]
            ),
            builder.scalar(0.5, dtype),
        ],
    )
    # Large |x|: exp(|x|/2) * (exp(|x|/2) / 2) does not overflow before sinh does.
    half = builder.op("Exp", [builder.op("Mul", [a, builder.scalar(0.5, dtype)])])
    large = builder.op("Mul", [half, builder.op("Mul", [half, builder.scalar(0.5, dtype)])])
    magnitude = builder.op(
        "Where", [builder.op("Less", [a, builder.scalar(20, dtype)]), small, large]
    )
    return _with_sign_of(builder, x, magnitude, dtype)


def _cosh64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    a = builder.op("Abs", [x])
    half = builder.op("Exp", [builder.op("Mul", [a, builder.scalar(0.5, dtype)])])
    big = builder.op("Mul", [half, builder.op("Mul", [half, builder.scalar(0.5, dtype)])])
    small = builder.op(
        "Mul", [builder.op("Exp", [builder.op("Neg", [a])]), builder.scalar(0.5, dtype)]
    )
    return builder.op("Add", [big, small])


_LN2 = math.log(2.0)


def _asinh64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    a = builder.op("Abs", [x])
    a2 = builder.op("Mul", [a, a])
    one = builder.scalar(1, dtype)
    root = builder.op("Sqrt", [builder.op("Add", [a2, one])])
    # asinh(a) = log1p(a + a^2 / (1 + sqrt(1 + a^2))), no cancellation for small a.
    moderate = log1p(
        builder,
        builder.op("Add", [a, builder.op("Div", [a2, builder.op("Add", [one, root])])]),
        dtype,
    )
    # a^2 overflows for huge a; there asinh(a) = log(2a) to double precision.
    huge = builder.op("Add", [builder.op("Log", [a]), builder.scalar(_LN2, dtype)])
    magnitude = builder.op(
        "Where", [builder.op("Less", [a, builder.scalar(1e8, dtype)]), moderate, huge]
    )
    return _with_sign_of(builder, x, magnitude, dtype)


def _acosh64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    t = builder.op("Sub", [x, builder.scalar(1, dtype)])
    # acosh(1 + t) = log1p(t + sqrt(2t + t^2)), accurate near x = 1.
    inner = builder.op("Add", [builder.op("Add", [t, t]), builder.op("Mul", [t, t])])
    moderate = log1p(builder, builder.op("Add", [t, builder.op("Sqrt", [inner])]), dtype)
    huge = builder.op("Add", [builder.op("Log", [x]), builder.scalar(_LN2, dtype)])
    result = builder.op(
        "Where", [builder.op("Less", [x, builder.scalar(1e8, dtype)]), moderate, huge]
    )
    # NaN below 1: sqrt(2t + t^2) is real again for x < -1, the sum rounds to -1 or above
    # for large |x| (-inf at x = -1.2e8).
    below = builder.op("Less", [x, builder.scalar(1, dtype)])
    return builder.op("Where", [below, builder.scalar(math.nan, dtype), result])


def _atanh64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    (x,) = xs
    a = builder.op("Abs", [x])
    one = builder.scalar(1, dtype)
    # atanh(a) = log1p(2a / (1 - a)) / 2
    ratio = builder.op("Div", [builder.op("Add", [a, a]), builder.op("Sub", [one, a])])
    magnitude = builder.op("Mul", [log1p(builder, ratio, dtype), builder.scalar(0.5, dtype)])
    return _with_sign_of(builder, x, magnitude, dtype)


for _cls, _onnx, _kernel in [
    (ps.Sin, "Sin", _sin64),
    (ps.Cos, "Cos", _cos64),
    (ps.Tan, "Tan", _tan64),
    (ps.Sinh, "Sinh", _sinh64),
    (ps.Cosh, "Cosh", _cosh64),
    (ps.ArcSinh, "Asinh", _asinh64),
    (ps.ArcCosh, "Acosh", _acosh64),
    (ps.ArcTanh, "Atanh", _atanh64),
]:
    register_kernel(_cls)(_native_float32(_onnx, _kernel))


# ------------------------------------------------------------ integer division and modulo
def _nonzero_divisor(builder: ONNXBuilder, b: ir.Value, dtype: str) -> tuple[ir.Value, ir.Value]:
    """A divisor safe for ONNX Runtime's integer kernels (which fail on 0 and trap on
    ``INT_MIN / -1``) and the mask of the entries that were replaced."""
    special = builder.op("Equal", [b, builder.scalar(0, dtype)])
    if np.dtype(dtype).kind == "i":
        special = builder.op("Or", [special, builder.op("Equal", [b, builder.scalar(-1, dtype)])])
    safe = builder.typed_op("Where", [special, builder.scalar(1, dtype), b], dtype, data=[1, 2])
    return safe, special


def _sign_differs(builder: ONNXBuilder, r: ir.Value, b: ir.Value, dtype: str) -> ir.Value:
    """``r != 0 and sign(r) != sign(b)``: where truncated results need a floor correction."""
    zero = builder.scalar(0, dtype)
    nonzero = builder.op("Not", [builder.op("Equal", [r, zero])])
    differ = builder.op("Xor", [builder.op("Less", [r, zero]), builder.op("Less", [b, zero])])
    return builder.op("And", [nonzero, differ])


def _int_div(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    a, b = xs
    safe, special = _nonzero_divisor(builder, b, dtype)
    q = builder.typed_op("Div", [a, safe], dtype)
    r = builder.op("Sub", [a, builder.op("Mul", [q, safe])])
    if np.dtype(dtype).kind == "i":
        correction = builder.cast(_sign_differs(builder, r, safe, dtype), dtype, "bool")
        q = builder.op("Sub", [q, correction])
        # NumPy: x // 0 == 0 and x // -1 == -x (wrapping for INT_MIN).
        minus_one = builder.op("Equal", [b, builder.scalar(-1, dtype)])
        q = builder.typed_op(
            "Where", [minus_one, builder.typed_op("Neg", [a], dtype), q], dtype, data=[1, 2]
        )
        zero_div = builder.op("Equal", [b, builder.scalar(0, dtype)])
        return builder.typed_op(
            "Where", [zero_div, builder.scalar(0, dtype), q], dtype, data=[1, 2]
        )
    return builder.typed_op("Where", [special, builder.scalar(0, dtype), q], dtype, data=[1, 2])


def _float_floor_div(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    a, b = xs
    # NumPy's npy_divmod: based on fmod so that a == b * (a // b) + a % b holds closely.
    mod = builder.op("Mod", [a, b], {"fmod": 1})
    div = builder.op("Div", [builder.op("Sub", [a, mod]), b])
    adjust = _sign_differs(builder, mod, b, dtype)
    div = builder.op("Where", [adjust, builder.op("Sub", [div, builder.scalar(1, dtype)]), div])
    floor = builder.op("Floor", [div])
    round_up = builder.op("Greater", [builder.op("Sub", [div, floor]), builder.scalar(0.5, dtype)])
    result = builder.op(
        "Where", [round_up, builder.op("Add", [floor, builder.scalar(1, dtype)]), floor]
    )
    by_zero = builder.op("Equal", [b, builder.scalar(0, dtype)])
    return builder.op("Where", [by_zero, builder.op("Div", [a, b]), result])


register_kernel(ps.IntDiv)(_float_or_ints(_float_floor_div, _int_div))


def _float_mod(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    a, b = xs
    r = builder.op("Mod", [a, b], {"fmod": 1})
    return builder.op("Where", [_sign_differs(builder, r, b, dtype), builder.op("Add", [r, b]), r])


def _int_mod(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    a, b = xs
    safe, special = _nonzero_divisor(builder, b, dtype)
    # ONNX integer Mod with fmod=0 takes the sign of the divisor, as NumPy does.
    r = builder.op("Mod", [a, safe], {"fmod": 0})
    return builder.typed_op("Where", [special, builder.scalar(0, dtype), r], dtype, data=[1, 2])


register_kernel(ps.Mod)(_float_or_ints(_float_mod, _int_mod))


# ------------------------------------------------------------------ comparisons and logic
def _comparison(op_type: str) -> Kernel:
    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        return builder.typed_op(op_type, xs, dtype, cast_back=False)

    return kernel


for _cls, _onnx in [
    (ps.EQ, "Equal"),
    (ps.LT, "Less"),
    (ps.LE, "LessOrEqual"),
    (ps.GT, "Greater"),
    (ps.GE, "GreaterOrEqual"),
]:
    register_kernel(_cls, inputs_dtype="upcast")(_comparison(_onnx))


@register_kernel(ps.NEQ, inputs_dtype="upcast")
def _neq(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    return builder.op("Not", [builder.op("Equal", xs)])


@register_kernel(ps.IsNan, inputs_dtype="upcast")
def _isnan(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    # x != x: true for NaN only (and never for integers).
    return builder.op("Not", [builder.op("Equal", [xs[0], xs[0]])])


@register_kernel(ps.IsInf, inputs_dtype="upcast")
def _isinf(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    if _is_float(dtype):
        return builder.is_inf(xs[0], dtype)
    return builder.op("Not", [builder.op("Equal", [xs[0], xs[0]])])  # integers: never


register_kernel(ps.AND, bool_native=True)(_bool_as("And", "BitwiseAnd"))
register_kernel(ps.OR, bool_native=True)(_bool_as("Or", "BitwiseOr"))
register_kernel(ps.XOR, bool_native=True)(_bool_as("Xor", "BitwiseXor"))


@register_kernel(ps.Invert, bool_native=True)
def _invert(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    return builder.op("Not" if dtype == "bool" else "BitwiseNot", xs)


# ------------------------------------------------------------------------ selection
@onnx_funcify.register(ps.Switch)
def _switch(op: ps.Switch, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = _out_dtype(node)
    cond = builder.input(node, 0, "bool")
    a = builder.input(node, 1, dtype)
    b = builder.input(node, 2, dtype)
    return [builder.typed_op("Where", [cond, a, b], dtype, data=[1, 2])]


@register_kernel(ps.Clip)
def _clip(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    # PyTensor: x < lo ? lo : (x > hi ? hi : x); NaN in x passes through.  ONNX Clip needs
    # scalar bounds, PyTensor broadcasts them, so use Where.
    x, lo, hi = xs
    upper = builder.typed_op("Where", [builder.op("Greater", [x, hi]), hi, x], dtype, data=[1, 2])
    return builder.typed_op("Where", [builder.op("Less", [x, lo]), lo, upper], dtype, data=[1, 2])


@onnx_funcify.register(ps.Second)
def _second(op: ps.Second, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = _out_dtype(node)
    template = builder.input(node, 0)
    fill = builder.input(node, 1, dtype)
    return [builder.op("Expand", [fill, builder.shape(template)])]


@onnx_funcify.register(ps.Identity)
@onnx_funcify.register(ps.Cast)
def _cast(op: ps.ScalarOp, node: Apply, builder: ONNXBuilder) -> Values:
    return [builder.input(node, 0, _out_dtype(node))]


# ----------------------------------------------------------------------------- Composite
@onnx_funcify.register(ps.Composite)
def _composite(op: ps.Composite, node: Apply, builder: ONNXBuilder) -> Values:
    return inline_inner_graph(op.fgraph, node, builder)


@onnx_funcify.register(ps.Complex)
def _complex_error(op: ps.ScalarOp, node: Apply, builder: ONNXBuilder) -> Values:
    raise UnsupportedOpError.for_node(
        node, "complex numbers have no ONNX Runtime support; split real and imaginary parts"
    )


@onnx_funcify.register(ps.Real)
@onnx_funcify.register(ps.Imag)
@onnx_funcify.register(ps.Conj)
def _parts_of_real(op: ps.ScalarOp, node: Apply, builder: ONNXBuilder) -> Values:
    # Of a real number, as NumPy defines them: real(x) = conj(x) = x, imag(x) = 0 (also
    # for NaN and infinities); PyTensor builds them on real tensors (e.g. Real(Sqr(x)) in
    # PyTensor 3's Frobenius norm).
    if variable_dtype(node.inputs[0]).startswith("complex"):
        _complex_error(op, node, builder)
    dtype = _out_dtype(node)
    x = builder.input(node, 0, dtype)
    if isinstance(op, ps.Imag):
        return [builder.op("Expand", [builder.scalar(0, dtype), builder.shape(x)])]
    return [x]


# ------------------------------------------- inverse trigonometric (no float64 kernels in ORT)
_PI = Fraction("3.14159265358979323846264338327950288419716939937510")


def _quarter_pi_split(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """``k * pi / 4`` for ``k = 0..4`` as heads rounded to ``dtype`` and the tails left."""
    heads = np.array([float(k * _PI / 4) for k in range(5)]).astype(dtype)
    tails = [float(k * _PI / 4 - Fraction(float(head))) for k, head in enumerate(heads)]
    return heads, np.array(tails).astype(dtype)


#: ``dtype: (heads, tails)`` of the multiples of ``pi / 4``.
_QUARTER_PI = {dtype: _quarter_pi_split(dtype) for dtype in ("float32", "float64")}


def _atan_parts(num: Num, a: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``(k, p)`` with ``atan(a) = k * pi / 4 + p`` for ``a >= 0``, ``k`` in ``{0, 1, 2}``.

    ``a`` is reduced to ``[0, tan(pi/8)]`` by ``atan(a) = pi/2 - atan(1/a)`` and
    ``atan(b) = pi/4 + atan((b - 1) / (b + 1))``; the multiple of ``pi/4`` is kept apart so
    that it is added once, in double-double precision, by :func:`_quarter_pi_sum`.
    """
    inverted = num.gt(a, 1.0)
    b = num.where(inverted, num.div(1.0, a), a)
    shifted = num.gt(b, tables.ATAN_SMALL_MAX)
    c = num.where(shifted, num.div(num.sub(b, 1.0), num.add(b, 1.0)), b)
    z_max = tables.ATAN_SMALL_MAX**2
    p = num.mul(c, num.chebyshev_on(num.mul(c, c), 0.0, z_max, tables.ATAN_SMALL_CHEB))
    k = num.where(shifted, 1.0, 0.0)
    return num.where(inverted, num.sub(2.0, k), k), num.negate_where(inverted, p)


def _quarter_pi_sum(num: Num, k: ir.Value, p: ir.Value) -> ir.Value:
    """``k * pi / 4 + p`` for integer-valued ``k`` in ``0..4``, rounded once."""
    index = num.builder.cast(k, "int64", num.dtype)
    head_values, tail_values = _QUARTER_PI[num.dtype]
    heads = num.builder.op("Gather", [num.builder.const(head_values, num.dtype), index])
    tails = num.builder.op("Gather", [num.builder.const(tail_values, num.dtype), index])
    return num.add(heads, num.add(p, tails))


def _atan_nonnegative(num: Num, a: ir.Value) -> ir.Value:
    return _quarter_pi_sum(num, *_atan_parts(num, a))


def _atan64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    num = Num(builder, dtype)
    (x,) = xs
    return num.negate_where(num.lt(x, 0.0), _atan_nonnegative(num, num.unary("Abs", x)))


def _asin64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    num = Num(builder, dtype)
    (x,) = xs
    # asin(x) = atan(x / sqrt((1 - x) (1 + x))); 1 - x is exact near x = 1.
    cosine = num.unary("Sqrt", num.mul(num.sub(1.0, x), num.add(1.0, x)))
    return _atan64(builder, [num.div(x, cosine)], dtype)


def acos64(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    """``arccos(x)`` (ONNX Runtime has no float64 ``Acos``)."""
    num = Num(builder, dtype)
    (x,) = xs
    # acos(x) = 2 atan(sqrt((1 - x) / (1 + x))), accurate at both ends.
    half = _atan_nonnegative(num, num.unary("Sqrt", num.div(num.sub(1.0, x), num.add(1.0, x))))
    return num.add(half, half)


def _atan2(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    # ONNX has no Atan2: float32 is computed in float64 and rounded once (in float32 in
    # float32-only exports).
    work = work_dtype(builder, dtype)
    num = Num(builder, work)
    y, x = (builder.cast(v, work, dtype) for v in xs)
    ay, ax = num.unary("Abs", y), num.unary("Abs", x)
    k, p = _atan_parts(num, num.div(ay, ax))
    # inf / inf: the angle is pi/4; y = +-0 gives 0 (then pi for x < 0 or x = -0), unless
    # x is NaN.
    both_inf = num.both(num.is_inf(ay), num.is_inf(ax))
    k = num.where(both_inf, 1.0, k)
    zero = num.either(both_inf, num.both(num.eq(y, 0.0), builder.op("Not", [num.is_nan(x)])))
    p = num.where(zero, 0.0, p)
    k = num.where(num.eq(y, 0.0), num.where(zero, 0.0, k), k)
    # x < 0: pi - angle.
    left = num.sign_bit(x)
    k = num.where(left, num.sub(4.0, k), k)
    p = num.negate_where(left, p)
    angle = _quarter_pi_sum(num, k, p)
    return builder.cast(num.negate_where(num.sign_bit(y), angle), dtype, work)


for _cls, _onnx, _kernel in [
    (ps.ArcTan, "Atan", _atan64),
    (ps.ArcSin, "Asin", _asin64),
    (ps.ArcCos, "Acos", acos64),
]:
    register_kernel(_cls)(_native_float32(_onnx, _kernel))
register_kernel(ps.ArcTan2)(_atan2)
