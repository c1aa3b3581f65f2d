"""Elementwise floating-point building blocks for the special-function decompositions.

:class:`Num` wraps an :class:`~pytensor_onnx.builder.ONNXBuilder` and one float dtype so that
numerical code reads like arithmetic: Python numbers become constants of that dtype, and the
evaluation schemes (Horner, Clenshaw, double-double products, argument reductions) are
written once here and shared by all special functions.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder

Operand = ir.Value | float

#: Bernoulli numbers ``B_2, B_4, ..., B_22`` (exact rationals), for the asymptotic series
#: of ``gammaln``, ``psi`` and ``trigamma``.
BERNOULLI_EVEN = (
    Fraction(1, 6),
    Fraction(-1, 30),
    Fraction(1, 42),
    Fraction(-1, 30),
    Fraction(5, 66),
    Fraction(-691, 2730),
    Fraction(7, 6),
    Fraction(-3617, 510),
    Fraction(43867, 798),
    Fraction(-174611, 330),
    Fraction(854513, 138),
)


def work_dtype(builder: ONNXBuilder, dtype: str) -> str:
    """The dtype a decomposition of ``dtype`` values computes in.

    Float64, so that float32 (and float16) results are the float64 value rounded once;
    but ``dtype`` itself when the export is float32-only (``float32=True``: no float64
    value may appear in the model), where the float32 paths are float32-accurate instead
    (their measured accuracy is in ``docs/deployment.md``).
    """
    if builder.options.get("float32") and dtype != "float64":
        return "float32"
    return "float64"


#: For values of a few elements (:attr:`Num.few_elements`), polynomials of more coefficients
#: than this are evaluated as one product with the powers of their variable
#: (:meth:`Num.powers_sum`); up to it Horner's scheme takes fewer nodes.
POWERS_MIN_DEGREE = 8

#: The most elements for which the powers of a polynomial's variable are formed: ONNX
#: Runtime runs the few nodes of :meth:`Num.powers_sum` faster than Horner's or Clenshaw's
#: chain up to about 32 elements (``gammaln``: 33 against 57 µs for one element); on large
#: tensors its wide intermediate is 2-3 times slower.
FEW_ELEMENTS = 16

#: Largest conditioning in the monomial basis (:func:`monomial_form`) of a Chebyshev
#: series evaluated through its powers; worse-conditioned ones keep Clenshaw's recurrence.
MONOMIAL_MAX_CONDITION = 2.0


@functools.cache
def monomial_form(coeffs: tuple[float, ...]) -> tuple[list[float], float]:
    """The Chebyshev series ``coeffs`` in the monomial basis, ``sum(m_k t**k)``, and its
    conditioning ``max(sum(|m_k t**k|) / |sum(m_k t**k)|)`` over ``[-1, 1]``.

    The conversion is exact (rational arithmetic, ``T_{k+1} = 2 t T_k - T_{k-1}``) and
    rounds each ``m_k`` once; the conditioning, measured on a fine grid, bounds the
    rounding error of a sum of the terms relative to the value.
    """
    basis = [[Fraction(1)], [Fraction(0), Fraction(1)]]  # T_0, T_1 by ascending powers
    while len(basis) < len(coeffs):
        doubled = [Fraction(0), *(2 * v for v in basis[-1])]
        basis.append(
            [a - b for a, b in itertools.zip_longest(doubled, basis[-2], fillvalue=Fraction(0))]
        )
    exact = [Fraction(0)] * len(coeffs)
    for c, polynomial in zip(coeffs, basis, strict=False):
        for j, v in enumerate(polynomial):
            exact[j] += Fraction(c) * v
    monomial = [float(m) for m in exact]
    t = np.linspace(-1.0, 1.0, 4097)
    terms = np.abs(np.asarray(monomial) * t[:, None] ** np.arange(len(monomial)))
    value = np.abs(np.polynomial.chebyshev.chebval(t, coeffs))
    with np.errstate(divide="ignore"):
        return monomial, float(np.max(terms.sum(axis=1) / value))


#: ``exp_square`` splits ``a`` at multiples of ``2**-k``: ``hi**2`` must be exact for every
#: ``a`` where ``exp(+-a**2)`` is finite and not zero (``a < 28`` in float64, ``< 11`` in
#: float32), so ``hi`` has at most half the significand bits.
_SQUARE_SPLIT = {"float64": 2.0**12, "float32": 2.0**6}


class Num:
    """Arithmetic on ONNX values of one float ``dtype``.

    Parameters
    ----------
    builder
        The builder that receives the nodes.
    dtype
        The float dtype of every value handled (the :func:`work_dtype` for the
        decompositions).
    """

    def __init__(self, builder: ONNXBuilder, dtype: str) -> None:
        self.builder = builder
        self.dtype = dtype
        #: The machine epsilon of ``dtype``.
        self.eps = float(np.finfo(dtype).eps)

    @property
    def few_elements(self) -> bool:
        """Whether the values have at most :data:`FEW_ELEMENTS` elements (statically known:
        the elementwise node being converted, :meth:`ONNXBuilder.elementwise`), where
        forms with fewer nodes are faster in ONNX Runtime than node-per-operation ones."""
        size = self.builder.root.elementwise_size
        return size is not None and 0 < size <= FEW_ELEMENTS

    # ----------------------------------------------------------------- basics
    def val(self, x: Operand) -> ir.Value:
        """``x`` itself, or a scalar constant of the dtype for Python numbers."""
        if isinstance(x, ir.Value):
            return x
        return self.builder.scalar(x, self.dtype)

    def _binary(self, op_type: str, a: Operand, b: Operand) -> ir.Value:
        return self.builder.op(op_type, [self.val(a), self.val(b)])

    def add(self, a: Operand, b: Operand) -> ir.Value:
        """``a + b``."""
        return self._binary("Add", a, b)

    def sub(self, a: Operand, b: Operand) -> ir.Value:
        """``a - b``."""
        return self._binary("Sub", a, b)

    def mul(self, a: Operand, b: Operand) -> ir.Value:
        """``a * b``."""
        return self._binary("Mul", a, b)

    def div(self, a: Operand, b: Operand) -> ir.Value:
        """``a / b``."""
        return self._binary("Div", a, b)

    def pow(self, a: Operand, b: Operand) -> ir.Value:
        """``a ** b``."""
        return self._binary("Pow", a, b)

    def unary(self, op_type: str, x: Operand) -> ir.Value:
        """A one-input ONNX op (``Exp``, ``Log``, ``Sqrt``, ``Abs``, ``Floor``...)."""
        return self.builder.op(op_type, [self.val(x)])

    def lt(self, a: Operand, b: Operand) -> ir.Value:
        """``a < b`` (bool)."""
        return self._binary("Less", a, b)

    def le(self, a: Operand, b: Operand) -> ir.Value:
        """``a <= b`` (bool)."""
        return self._binary("LessOrEqual", a, b)

    def gt(self, a: Operand, b: Operand) -> ir.Value:
        """``a > b`` (bool)."""
        return self._binary("Greater", a, b)

    def ge(self, a: Operand, b: Operand) -> ir.Value:
        """``a >= b`` (bool)."""
        return self._binary("GreaterOrEqual", a, b)

    def eq(self, a: Operand, b: Operand) -> ir.Value:
        """``a == b`` (bool)."""
        return self._binary("Equal", a, b)

    def where(self, cond: ir.Value, a: Operand, b: Operand) -> ir.Value:
        """``a`` where ``cond`` else ``b`` (NaN in the unselected branch does not leak)."""
        return self.builder.op("Where", [cond, self.val(a), self.val(b)])

    def along_new_axis(self, x: ir.Value, offsets: np.ndarray) -> ir.Value:
        """``x + offsets[k]`` along a new last axis (shape ``x``'s plus ``len(offsets)``),
        so that a per-``k`` computation is one node and :meth:`reduce_last` combines it."""
        unsqueezed = self.builder.op("Unsqueeze", [x, self.builder.int64s([-1])])
        return self.add(unsqueezed, self.builder.const(offsets, self.dtype))

    def reduce_last(self, op_type: str, terms: ir.Value, like: ir.Value) -> ir.Value:
        """``terms``, of the shape of ``like`` with one more (last) axis, reduced over that
        axis by ``op_type`` (``ReduceSum``, ``ReduceProd``...) to the shape of ``like``.

        The reduction keeps the axis and a ``Reshape`` drops it: ONNX Runtime 1.30/1.31
        (onnxruntime-web/-node) return an empty input's shape unchanged from any
        reduction, so ``keepdims=0`` (or a ``Squeeze``) would leave the axis in place.
        """
        builder = self.builder
        kept = builder.op(op_type, [terms, builder.int64s([-1])], {"keepdims": 1})
        return builder.op("Reshape", [kept, builder.shape(like)])

    def clamp(self, x: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
        """``x`` limited to ``[low, high]`` elementwise, in the dtype of its operands (no
        conversion, so integer indices too; ``Clip`` takes scalar bounds only)."""
        return self.builder.op("Max", [self.builder.op("Min", [x, high]), low])

    def negate_where(self, cond: ir.Value, x: ir.Value) -> ir.Value:
        """``-x`` where ``cond`` else ``x``, signed zeros included.

        A multiplication by ``+-1``: ONNX Runtime's ``Where`` turns a selected ``-0.0``
        into ``+0.0``.
        """
        return self.mul(x, self.where(cond, -1.0, 1.0))

    # ------------------------------------------------------------- polynomials
    def horner(self, x: ir.Value, coeffs: Sequence[float]) -> ir.Value:
        """``sum(coeffs[k] * x**k)`` (at least two coefficients): by Horner's scheme, or from
        :data:`POWERS_MIN_DEGREE` on as one product with the powers of ``x``
        (:meth:`powers_sum`), which takes far fewer nodes for the same rounding-error
        bound, ``eps * sum(|coeffs[k] * x**k|)`` up to a small factor."""
        if len(coeffs) > POWERS_MIN_DEGREE and self.few_elements:
            return self.powers_sum(x, coeffs)
        result = self.add(self.mul(x, coeffs[-1]), coeffs[-2])
        for c in reversed(coeffs[:-2]):
            result = self.add(self.mul(result, x), c)
        return result

    def chebyshev(self, t: ir.Value, coeffs: Sequence[float]) -> ir.Value:
        """``sum(coeffs[k] * T_k(t))`` by Clenshaw's recurrence (stable for ``|t| <= 1``), or
        for a few elements through the powers of ``t`` (:meth:`powers_sum`) where the series
        is well conditioned in the monomial basis (:func:`monomial_form`).

        Below float64, trailing coefficients that together are below a sixteenth of the
        dtype's rounding error (relative to the series' largest coefficient) are left out:
        the float64 tables serve float32 with far fewer terms.
        """
        if self.dtype != "float64":
            coeffs = list(coeffs)
            bound = self.eps / 16 * max(abs(c) for c in coeffs)
            dropped = 0.0
            while len(coeffs) > 3 and dropped + abs(coeffs[-1]) < bound:
                dropped += abs(coeffs.pop())
        if len(coeffs) > POWERS_MIN_DEGREE and self.few_elements:
            monomial, condition = monomial_form(tuple(coeffs))
            if condition <= MONOMIAL_MAX_CONDITION:
                return self.powers_sum(t, monomial)
        two_t = self.add(t, t)
        b1: Operand = coeffs[-1]
        b2: Operand = 0.0
        for c in reversed(coeffs[1:-1]):
            b1, b2 = self.sub(self.add(self.mul(two_t, b1), c), b2), b1
        return self.sub(self.add(self.mul(t, b1), coeffs[0]), b2)

    def powers_sum(self, x: ir.Value, coeffs: Sequence[float]) -> ir.Value:
        """``sum(coeffs[k] * x**k)`` as ``coeffs[0]`` plus one ``MatMul`` of the powers
        ``x, x**2, ..., x**d`` (along a new last axis) with ``coeffs[1:]``.

        The powers double in number per step, ``x**(m + j) = x**m * x**j``, so a degree-``d``
        polynomial takes about ``3 log2(d)`` nodes, not Horner's ``2 d``; ``x**k`` carries
        at most ``2 log2(k)`` roundings, and the high powers, which carry the most, have
        the smallest coefficients in every series evaluated this way.
        """
        builder = self.builder
        degree = len(coeffs) - 1
        top = builder.op("Unsqueeze", [x, builder.int64s([-1])])  # x**m, m = 1
        powers, length = top, 1
        while length < degree:
            take = min(length, degree - length)
            head = powers
            if take < length:
                head = builder.op(
                    "Slice",
                    [powers, builder.int64s([0]), builder.int64s([take]), builder.int64s([-1])],
                )
            powers = builder.op("Concat", [powers, self.mul(head, top)], {"axis": -1})
            length += take
            if length < degree:
                top = self.mul(top, top)
        weights = builder.const(np.array(coeffs[1:]), self.dtype)
        return self.add(builder.op("MatMul", [powers, weights]), coeffs[0])

    def chebyshev_on(
        self, x: ir.Value, low: float, high: float, coeffs: Sequence[float]
    ) -> ir.Value:
        """The Chebyshev series ``coeffs`` of a function on ``[low, high]``, at ``x``."""
        scale = 2.0 / (high - low)
        t = self.sub(self.mul(x, scale), (high + low) / (high - low))
        return self.chebyshev(t, coeffs)

    # --------------------------------------------------------- reductions
    def exp_square(self, a: ir.Value, sign: int) -> ir.Value:
        """``exp(sign * a**2)`` for finite ``a >= 0`` without the rounding error of ``a**2``.

        ``a = hi + lo`` with ``hi`` a multiple of ``2**-12`` (``2**-6`` in float32), so that
        ``hi**2`` is exact and ``a**2 = hi**2 + lo * (a + hi)`` up to a tiny term.
        """
        split = _SQUARE_SPLIT[self.dtype]
        hi = self.div(self.unary("Floor", self.mul(a, split)), split)
        lo = self.sub(a, hi)
        head = self.unary("Exp", self.mul(self.mul(hi, hi), float(sign)))
        tail = self.unary("Exp", self.mul(self.mul(lo, self.add(a, hi)), float(sign)))
        return self.mul(head, tail)

    def split_nearest(self, x: ir.Value) -> tuple[ir.Value, ir.Value]:
        """``(n, x - n)`` for an integer ``n`` nearest to ``x`` (a tie either way), both
        exact for every finite ``x`` (``r = x - n`` is NaN for infinities).

        ``sin(pi x)`` has the sign pattern of ``sin(pi r) * (-1)**n`` and the magnitude of
        ``sin(pi r)``.  ``x - n`` is exact because ``n`` is nearest (Sterbenz); ``n`` comes
        from ``Floor``, not ``Round``: tract 0.23 has no float64 ``Round`` kernel.
        """
        floor = self.unary("Floor", x)
        n = self.where(self.gt(self.sub(x, floor), 0.5), self.add(floor, 1.0), floor)
        return n, self.sub(x, n)

    def nearest_integer(self, x: ir.Value) -> ir.Value:
        """An integer nearest to ``x`` (ties up), ``floor(x + 1/2)``, for ``|x| < 2**51``.

        For argument reductions, which need some nearest integer, not ``round``'s ties to
        even: unlike ``Round``, it runs in float64 in tract 0.23.
        """
        return self.unary("Floor", self.add(x, 0.5))

    def sin_pi(self, r: ir.Value) -> ir.Value:
        """``sin(pi * r)`` for ``|r| <= 1/2`` (accurate: no root but 0 in that range)."""
        return self.unary("Sin", self.mul(r, math.pi))

    def cos_pi(self, r: ir.Value) -> ir.Value:
        """``cos(pi * r)`` for ``|r| <= 1/2``, relatively accurate next to ``r = +-1/2``.

        Evaluated as ``sin(pi (1/2 - |r|))``: ``1/2 - |r|`` is exact where it is small, while
        ``cos`` of the rounded ``pi r`` would lose relative accuracy next to its zero.
        """
        return self.sin_pi(self.sub(0.5, self.unary("Abs", r)))

    def odd_integer(self, n: ir.Value) -> ir.Value:
        """Whether the integer-valued ``n`` is odd (bool; false for NaN and infinities).

        A comparison without ``Not``: ONNX Runtime's optimizer turns ``Where(Not(c), a, b)``
        into ``Where(c, b, a)``, which would move a ``-0.0`` into the branch whose signed
        zeros its ``Where`` loses.
        """
        half = self.mul(n, 0.5)
        return self.lt(self.unary("Floor", half), half)

    def ne(self, a: Operand, b: Operand) -> ir.Value:
        """``a != b`` (bool, true for NaN)."""
        return self.builder.op("Not", [self.eq(a, b)])

    def is_inf(self, x: ir.Value, *, positive: bool = True, negative: bool = True) -> ir.Value:
        """Whether ``x`` is infinite (of the selected signs)."""
        return self.builder.is_inf(x, self.dtype, positive=positive, negative=negative)

    def is_nan(self, x: ir.Value) -> ir.Value:
        """Whether ``x`` is NaN."""
        return self.builder.op("IsNaN", [x])

    def both(self, a: ir.Value, b: ir.Value) -> ir.Value:
        """Logical and."""
        return self.builder.op("And", [a, b])

    def either(self, a: ir.Value, b: ir.Value) -> ir.Value:
        """Logical or."""
        return self.builder.op("Or", [a, b])

    def sign_bit(self, x: ir.Value) -> ir.Value:
        """Whether ``x`` is negative, ``-0.0`` included (bool)."""
        zero = self.eq(x, 0.0)
        negative_zero = self.both(zero, self.lt(self.div(1.0, x), 0.0))
        return self.either(self.lt(x, 0.0), negative_zero)
