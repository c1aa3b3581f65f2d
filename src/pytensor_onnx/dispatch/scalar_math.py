"""Converters for ``pytensor.scalar.math``: sigmoid, softplus and the special functions.

ONNX has no ``Lgamma``, ``Digamma``, ``Erfc``, ``Erfcx`` or Bessel ops, and ONNX Runtime has
no float64 ``Erf`` (nor a float64 ``Softplus`` at newer opsets).  The special functions are
therefore decomposed into ``Exp``/``Log``/``Sqrt``/``Sin``/``Cos`` and arithmetic, evaluated
in float64 (float32 inputs are cast up and the result cast back, which rounds a nearly exact
value once), or in float32 itself in float32-only exports (``float32=True``, see
:func:`~._numerics.work_dtype`):

- Chebyshev interpolants (tables in :mod:`._special_tables`, Clenshaw evaluation) on a
  fixed interval, reached by argument reduction (recurrences, reflection, a rational change of
  variable for the half line);
- asymptotic series with exact Bernoulli coefficients for large arguments;
- the known zeros (``gammaln`` at 1 and 2, ``psi`` at 1.4616...) factored out, so relative
  accuracy holds next to them;
- ``exp(-x**2)`` evaluated with ``x**2`` split into an exact head and a small tail.

The measured accuracy against SciPy is recorded in ``docs/ops/special_functions.md`` (float64)
and ``docs/deployment.md`` (float32 paths).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import onnx_ir as ir
import pytensor.scalar.math as psm
import pytensor.tensor.xlogx as ptx
from pytensor.graph.basic import Apply, Constant

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch import _special_tables as tables
from pytensor_onnx.dispatch._loop import while_any
from pytensor_onnx.dispatch._numerics import BERNOULLI_EVEN, Num, work_dtype
from pytensor_onnx.dispatch.basic import (
    Refusal,
    UnsupportedOpError,
    onnx_funcify,
    optional_classes,
    register_lazy,
)
from pytensor_onnx.dispatch.scalar import expm1, log1p, register_kernel, sin_and_cos

#: A decomposition: the arithmetic helper and input values of its dtype.
Decomposition = Callable[..., ir.Value]


def in_work_dtype(
    decomposition: Decomposition,
) -> Callable[[ONNXBuilder, list[ir.Value], str], ir.Value]:
    """A scalar kernel computing ``decomposition`` in the :func:`~._numerics.work_dtype` of
    the node dtype and casting to the node dtype."""

    def kernel(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
        work = work_dtype(builder, dtype)
        num = Num(builder, work)
        wide = [builder.cast(x, work, dtype) for x in xs]
        return builder.cast(decomposition(num, *wide), dtype, work)

    return kernel


# ------------------------------------------------------------------- sigmoid, softplus
@register_kernel(psm.Sigmoid)
def _sigmoid(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    """``exp(min(x, 0)) / (1 + e)`` with ``e = exp(-|x|)``: ``e / (1 + e)`` for ``x < 0``,
    else ``1 / (1 + e)``.

    ONNX Runtime's ``Sigmoid`` loses the negative tail (float64: 1e-3 relative error at -30,
    0 below -36; float32: 5x off at -18), see ``docs/ops/special_functions.md``.  Here
    ``e <= 1`` never overflows, ``1 + e`` has no cancellation and one division rounds, so
    the result is within 2 ulps everywhere, subnormal values below -708 included.  The
    numerator is an ``Exp`` of ``Min`` rather than a ``Where`` on ``x < 0``: the same values,
    and cheaper in ONNX Runtime, whose ``Where`` is slow on data-dependent masks.
    """
    (x,) = xs
    num = Num(builder, dtype)
    e = num.unary("Exp", num.unary("Neg", num.unary("Abs", x)))
    numerator = num.unary("Exp", builder.op("Min", [x, num.val(0.0)]))
    return num.div(numerator, num.add(e, 1.0))


def softplus(builder: ONNXBuilder, x: ir.Value, dtype: str) -> ir.Value:
    """``log(1 + exp(x))`` as ``max(x, 0) + log1p(exp(-|x|))``.

    Without branches on ``x``: the ``exp`` never overflows, the ``log1p`` term is at most
    ``log 2`` and adds to ``max(x, 0)`` without cancellation, so the result is within a few
    ulps everywhere (``exp(x)`` itself far below 0, ``x`` far above).  ONNX Runtime's
    ``Where`` costs up to ten ``Add`` s on data-dependent masks, and PyTensor's three branch
    points (-37, 18, 33.3) took four of them.  NaN propagates through the ``log1p`` term
    (also in runtimes whose ``Max`` drops it); ``softplus(-inf) = 0``, ``softplus(inf) = inf``.
    """
    magnitude = builder.op("Abs", [x])
    tail = log1p(builder, builder.op("Exp", [builder.op("Neg", [magnitude])]), dtype, finite=True)
    return builder.op("Add", [builder.op("Max", [x, builder.scalar(0, dtype)]), tail])


register_kernel(psm.Softplus)(lambda b, xs, dtype: softplus(b, xs[0], dtype))


@register_kernel(psm.Log1mexp)
def _log1mexp(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    # PyTensor's branches: log1p(-exp(x)) below log(1/2), log(-expm1(x)) above.
    (x,) = xs
    num = Num(builder, dtype)
    low = log1p(builder, num.unary("Neg", num.unary("Exp", x)), dtype)
    high = num.unary("Log", num.unary("Neg", expm1(builder, x, dtype)))
    return num.where(num.lt(x, -math.log(2.0)), low, high)


# ------------------------------------------------------------------- xlogx (PyTensor 2)
def _xlogy(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    x, y = (xs[0], xs[0]) if len(xs) == 1 else xs
    num = Num(builder, dtype)
    return num.where(num.eq(x, 0.0), 0.0, num.mul(x, num.unary("Log", y)))


# PyTensor 3 builds xlogy as a symbolic op whose inner graph is plain switch/mul/log.
for _cls in optional_classes(ptx, "XlogX", "XlogY0"):
    register_kernel(_cls)(_xlogy)


# ------------------------------------------------------------------- error functions
def _erfcx_nonnegative(num: Num, a: ir.Value) -> ir.Value:
    """``erfcx(a)`` for ``a >= 0`` (``+inf`` included): ``g(t) / (4 + a)`` with
    ``t = (4 - a) / (4 + a)``."""
    d = num.add(a, 4.0)
    t = num.sub(num.div(8.0, d), 1.0)
    return num.div(num.chebyshev(t, tables.ERFCX_CHEB), d)


def _erf_small(num: Num, x: ir.Value) -> ir.Value:
    """``erf(x)`` for ``|x| <= 1/2``."""
    return num.mul(x, num.chebyshev_on(num.mul(x, x), 0.0, 0.25, tables.ERF_SMALL_CHEB))


def _erfc_abs(num: Num, a: ir.Value) -> ir.Value:
    """``erfc(a)`` for ``a >= 1/2`` (any value below is computed too, but less accurately)."""
    value = num.mul(num.exp_square(a, -1), _erfcx_nonnegative(num, a))
    # exp(-a**2) underflows long before a reaches 30; inf would give NaN from inf - inf.
    return num.where(num.gt(a, 30.0), 0.0, value)


def erf64(num: Num, x: ir.Value) -> ir.Value:
    """``erf(x)`` in ``num.dtype``."""
    a = num.unary("Abs", x)
    large = num.mul(num.unary("Sign", x), num.sub(1.0, _erfc_abs(num, a)))
    return num.where(num.lt(a, 0.5), _erf_small(num, x), large)


def erfc64(num: Num, x: ir.Value) -> ir.Value:
    """``erfc(x)`` in ``num.dtype``, relatively accurate in the right tail."""
    a = num.unary("Abs", x)
    tail = _erfc_abs(num, a)
    large = num.where(num.lt(x, 0.0), num.sub(2.0, tail), tail)
    return num.where(num.lt(a, 0.5), num.sub(1.0, _erf_small(num, x)), large)


def erfcx64(num: Num, x: ir.Value) -> ir.Value:
    """``erfcx(x) = exp(x**2) * erfc(x)`` in ``num.dtype``."""
    a = num.unary("Abs", x)
    positive = _erfcx_nonnegative(num, a)
    # erfcx(-a) = 2 exp(a**2) - erfcx(a); it overflows for a > 26.6.
    negative = num.sub(
        num.mul(num.exp_square(num.where(num.lt(a, 27.0), a, 27.0), 1), 2.0), positive
    )
    negative = num.where(num.lt(a, 27.0), negative, math.inf)
    return num.where(num.lt(x, 0.0), negative, positive)


def _erfinv_central(num: Num, y: ir.Value) -> ir.Value:
    """``erfinv(y)`` for ``|y| <= 1/2``."""
    return num.mul(y, num.chebyshev_on(num.mul(y, y), 0.0, 0.25, tables.ERFINV_CENTRAL_CHEB))


def _erfcinv_tail(num: Num, q: ir.Value) -> ir.Value:
    """``erfcinv(q)`` for ``0 <= q <= 1/2``: ``s * f(log s)`` with ``s = sqrt(-log(q))``.

    In ``log s`` the function has no singularity near the interval (``s = 0`` moves to
    minus infinity), so one series covers ``q`` from 1/2 down to the smallest subnormal.
    """
    return _erfcinv_tail_of_log(num, num.unary("Log", q))


#: Fixed-point steps of :func:`_erfcinv_far`; each multiplies the error by ``1/(2 x^2)``,
#: below 7e-4 there.
_ERFCINV_FAR_STEPS = 5


def _erfcinv_far(num: Num, s: ir.Value) -> ir.Value:
    """``erfcinv(q)`` for ``s = sqrt(-log q)`` beyond the tail series (``q`` below the
    smallest subnormal): the root of ``x^2 = s^2 - log(x sqrt(pi)) + log(S(x))`` with the
    asymptotic series ``S = 1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + 105/(16x^8)`` of
    ``erfc(x) x sqrt(pi) e^(x^2)`` (truncation below 1e-13 from ``x = 27`` on), by fixed-point
    steps from ``x = s``."""
    square = num.mul(s, s)
    x = s
    for _ in range(_ERFCINV_FAR_STEPS):
        w = num.div(1.0, num.mul(x, x))
        series = num.horner(w, [1.0, -0.5, 0.75, -1.875, 6.5625])
        correction = num.sub(
            num.unary("Log", series), num.unary("Log", num.mul(x, math.sqrt(math.pi)))
        )
        x = num.unary("Sqrt", num.add(square, correction))
    return x


def _erfcinv_tail_of_log(num: Num, log_q: ir.Value) -> ir.Value:
    """``erfcinv(exp(log_q))`` for ``log_q <= log(1/2)`` (:func:`_erfcinv_tail`), also where
    ``exp(log_q)`` underflows."""
    s = num.unary("Sqrt", num.unary("Neg", log_q))
    low, high = tables.ERFCINV_TAIL_RANGE
    log_s = num.unary("Log", s)
    ratio = num.chebyshev_on(
        num.builder.op("Min", [log_s, num.val(high)]), low, high, tables.ERFCINV_TAIL_CHEB
    )
    value = num.where(num.gt(log_s, high), _erfcinv_far(num, s), num.mul(s, ratio))
    return num.where(num.is_inf(log_q, positive=False), math.inf, value)


def ndtri_exp64(num: Num, y: ir.Value) -> ir.Value:
    """``ndtri(exp(y))``, the standard normal quantile of ``exp(y)`` (SciPy's ``ndtri_exp``):
    ``-sqrt(2) erfcinv(2 e^y)`` from ``log(2 e^y) = y + log 2`` below ``e^y = 1/4`` (no
    underflow, to ``y = -1e300``), ``sqrt(2) erfinv(expm1(y + log 2))`` up to ``3/4`` and
    ``sqrt(2) erfcinv(-2 expm1(y))`` above; ``inf`` at 0, NaN for ``y > 0``."""
    log_quarter, log_three_quarters = math.log(0.25), math.log(0.75)
    log_twice = num.add(y, math.log(2.0))  # log(2 e^y)
    low = num.unary("Neg", _erfcinv_tail_of_log(num, log_twice))
    centre = _erfinv_central(num, expm1(num.builder, log_twice, num.dtype))
    rest = num.mul(expm1(num.builder, y, num.dtype), -2.0)  # 2 (1 - e^y), exact in relative
    high = _erfcinv_tail(num, rest)
    value = num.where(num.le(y, log_three_quarters), centre, high)
    value = num.mul(num.where(num.le(y, log_quarter), low, value), math.sqrt(2.0))
    return num.where(num.gt(y, 0.0), math.nan, value)


def erfinv64(num: Num, y: ir.Value) -> ir.Value:
    """``erfinv(y)`` in ``num.dtype`` (``1 - |y|`` is exact where the tail formula is used)."""
    a = num.unary("Abs", y)
    tail = num.mul(num.unary("Sign", y), _erfcinv_tail(num, num.sub(1.0, a)))
    return num.where(num.le(a, 0.5), _erfinv_central(num, y), tail)


def erfcinv64(num: Num, q: ir.Value) -> ir.Value:
    """``erfcinv(q)`` in ``num.dtype``, relatively accurate for tiny ``q``."""
    upper = num.gt(q, 1.0)
    p = num.where(upper, num.sub(2.0, q), q)
    tail = num.negate_where(upper, _erfcinv_tail(num, p))
    return num.where(num.le(p, 0.5), tail, _erfinv_central(num, num.sub(1.0, q)))


# ------------------------------------------------------------------- gamma family
_STIRLING_MIN = 10.0
#: Gamma(z) is above the largest finite value of the dtype for every z beyond these.
_GAMMA_OVERFLOW = {"float64": 172.0, "float32": 36.0}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


def _bernoulli_series(denominator: Callable[[int], int], terms: int) -> list[float]:
    """``B_2k / denominator(k)`` for ``k = 1..terms``, rounded once."""
    return [float(b / denominator(k)) for k, b in enumerate(BERNOULLI_EVEN[:terms], start=1)]


#: gammaln(x) - Stirling = sum B_2k / (2k (2k-1) x^(2k-1)); 8 terms reach 3e-17 at x = 10.
_LGAMMA_SERIES = _bernoulli_series(lambda k: 2 * k * (2 * k - 1), 8)
#: psi(x) = log(x) - 1/(2x) - sum B_2k / (2k x^2k); 9 terms reach 3e-18 at x = 10.
_DIGAMMA_SERIES = _bernoulli_series(lambda k: 2 * k, 9)
#: trigamma(x) = 1/x + 1/(2x^2) + sum B_2k / x^(2k+1); 10 terms reach 5e-18 at x = 10.
_TRIGAMMA_SERIES = _bernoulli_series(lambda k: 1, 10)


class _Reduced:
    """The argument reduction shared by ``gammaln``, ``gamma`` and ``psi``.

    For ``z >= 0`` with ``floor(z) = m`` and ``f = z - m`` (exact), the functions at ``z``
    come from their values at ``1 + f`` in ``[1, 2)`` and the factors ``z - k``,
    ``k = 1..m-1`` (for ``z >= 2``) or ``1 / z`` (for ``z < 1``).  Arguments from
    ``_STIRLING_MIN`` on use asymptotic series instead.

    The candidate factors ``z - k``, ``k = 1.._STIRLING_MIN-2``, lie along a new last axis,
    so that their product or sum is one reduction rather than a chain of nodes per ``k``;
    ``z - k`` is exact for ``k <= z``, and the factor of ``k`` is active where it is at
    least 1, which is where ``z >= k + 1``.
    """

    def __init__(self, num: Num, z: ir.Value) -> None:
        self.num = num
        self.z = z
        self.f = num.sub(z, num.unary("Floor", z))
        self.below_one = num.lt(z, 1.0)
        self.t = num.sub(num.add(self.f, self.f), 1.0)

    @functools.cached_property
    def factors(self) -> ir.Value:
        """The candidate factors ``z - k`` along a new last axis (``z + (-k)``, the same
        rounding)."""
        return self.num.along_new_axis(self.z, -np.arange(1.0, _STIRLING_MIN - 1.0))

    def product(self) -> ir.Value:
        """``(z - 1) (z - 2) ... (z - m + 1)`` (1 for ``z < 2``)."""
        num = self.num
        factors = num.builder.op("Max", [self.factors, num.val(1.0)])
        return num.reduce_last("ReduceProd", factors, self.z)

    def reciprocal_sum(self) -> ir.Value:
        """``1 / (z - 1) + ... + 1 / (z - m + 1)`` (0 for ``z < 2``)."""
        num = self.num
        inactive = num.lt(self.factors, 1.0)
        terms = num.where(inactive, 0.0, num.div(1.0, self.factors))
        return num.reduce_last("ReduceSum", terms, self.z)

    def lgamma_core(self) -> ir.Value:
        """``gammaln(1 + f)`` with its zeros at ``f = 0`` and ``f = 1`` factored out."""
        num = self.num
        zeros = num.mul(self.f, num.sub(self.f, 1.0))
        return num.mul(zeros, num.chebyshev(self.t, tables.LGAMMA_CORE_CHEB))


def _stirling_log_part(num: Num, z: ir.Value) -> ir.Value:
    """``(z - 1/2) (log z - 1)``, the leading part of ``gammaln(z)``."""
    return num.mul(num.sub(z, 0.5), num.sub(num.unary("Log", z), 1.0))


def _stirling_correction(num: Num, z: ir.Value) -> ir.Value:
    """``gammaln(z) - (z - 1/2) log z + z - log(2 pi)/2`` for ``z >= 10``."""
    r = num.div(1.0, z)
    return num.mul(r, num.horner(num.mul(r, r), _LGAMMA_SERIES))


def _gammaln_nonnegative(num: Num, z: ir.Value) -> ir.Value:
    reduced = _Reduced(num, z)
    shift = num.where(
        reduced.below_one,
        num.unary("Neg", num.unary("Log", z)),
        num.unary("Log", reduced.product()),
    )
    small = num.add(reduced.lgamma_core(), shift)
    large = num.add(
        num.add(_stirling_log_part(num, z), _HALF_LOG_2PI - 0.5), _stirling_correction(num, z)
    )
    return num.where(num.lt(z, _STIRLING_MIN), small, large)


def _reflected(num: Num, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """``(x < 0, 1 - x for x < 0 else x, x - n)``, ``n`` nearest to ``x``, for reflections."""
    negative = num.lt(x, 0.0)
    z = num.where(negative, num.sub(1.0, x), x)
    return negative, z, num.split_nearest(x)[1]


def gammaln64(num: Num, x: ir.Value) -> ir.Value:
    """``log|Gamma(x)|`` in ``num.dtype`` (SciPy's ``gammaln``)."""
    negative, z, r = _reflected(num, x)
    positive = _gammaln_nonnegative(num, z)
    # log|Gamma(x)| = log(pi / |sin(pi x)|) - gammaln(1 - x)
    log_sin = num.unary("Log", num.unary("Abs", num.sin_pi(r)))
    reflected = num.sub(num.sub(_LOG_PI, log_sin), positive)
    reflected = num.where(num.eq(r, 0.0), math.inf, reflected)
    reflected = num.where(num.is_inf(x), -math.inf, reflected)  # SciPy: gammaln(-inf) = -inf
    return num.where(negative, reflected, positive)


def gamma64(num: Num, x: ir.Value) -> ir.Value:
    """``Gamma(x)`` in ``num.dtype``."""
    negative = num.lt(x, 0.0)
    # Reflect through Gamma(1 - x) = z Gamma(z) with z = -x exact (1 - x is not, and Gamma
    # would amplify its rounding error by psi(1 - x)).
    z = num.unary("Abs", x)
    reduced = _Reduced(num, z)
    core = num.unary("Exp", reduced.lgamma_core())
    small = num.where(reduced.below_one, num.div(core, z), num.mul(core, reduced.product()))
    # Stirling: z^(z - 1/2) e^-z sqrt(2 pi) e^correction, with the power split in halves
    # so that it does not overflow before Gamma does.
    half_power = num.pow(z, num.mul(num.sub(z, 0.5), 0.5))
    scale = num.mul(num.unary("Exp", _stirling_correction(num, z)), math.sqrt(2.0 * math.pi))
    decay = num.mul(half_power, num.unary("Exp", num.unary("Neg", z)))
    large = num.mul(num.mul(half_power, decay), scale)
    positive = num.where(num.lt(z, _STIRLING_MIN), small, large)
    # Gamma overflows from here on; the product above would give inf * 0 = NaN once e^-z
    # underflows (z > 745 in float64, z > 104 in float32).
    positive = num.where(num.gt(z, _GAMMA_OVERFLOW[num.dtype]), math.inf, positive)
    # Gamma(x) = pi / (sin(pi x) Gamma(1 - x)); sin(pi x) = (-1)^n sin(pi r)
    n, r = num.split_nearest(x)
    sin = num.negate_where(num.odd_integer(n), num.sin_pi(r))
    reflected = num.div(math.pi, num.mul(sin, num.mul(z, positive)))
    reflected = num.where(num.eq(r, 0.0), math.nan, reflected)
    result = num.where(negative, reflected, positive)
    # Gamma(x) = 1/x - euler_gamma + O(x): 1/x to within eps/4 relative for |x| < eps/4, where
    # the forms above lose it (z Gamma(z) overflows, and 0 * inf gave -0 for subnormal x < 0);
    # Gamma(+-0) = +-inf and the overflow of 1/x (|x| < 1/DBL_MAX) follow.
    return num.where(num.lt(z, num.eps / 4.0), num.div(1.0, x), result)


def psi64(num: Num, x: ir.Value) -> ir.Value:
    """The digamma function ``psi(x)`` in ``num.dtype``, relatively accurate at its positive
    zero."""
    negative, z, r = _reflected(num, x)
    reduced = _Reduced(num, z)
    root_hi, root_lo = tables.DIGAMMA_ROOT
    if num.dtype != "float64":  # the head must be exact in the dtype for the subtraction
        head = float(np.float32(root_hi))
        root_hi, root_lo = head, (root_hi - head) + root_lo
    # psi(1 + f) = (1 + f - x0) * R(f), with 1 + f - x0 = (f - (x0_hi - 1)) - x0_lo exactly.
    distance = num.sub(num.sub(reduced.f, root_hi - 1.0), root_lo)
    core = num.mul(distance, num.chebyshev(reduced.t, tables.DIGAMMA_CORE_CHEB))
    shift = num.where(reduced.below_one, num.div(-1.0, z), reduced.reciprocal_sum())
    small = num.add(core, shift)
    w = num.div(1.0, num.mul(z, z))
    series = num.mul(w, num.horner(w, _DIGAMMA_SERIES))
    large = num.sub(num.sub(num.unary("Log", z), num.div(0.5, z)), series)
    positive = num.where(num.lt(z, _STIRLING_MIN), small, large)
    # psi(x) = psi(1 - x) - pi cos(pi x) / sin(pi x)
    cot = num.div(num.cos_pi(r), num.sin_pi(r))
    reflected = num.sub(positive, num.mul(cot, math.pi))
    reflected = num.where(num.eq(r, 0.0), math.nan, reflected)
    result = num.where(negative, reflected, positive)
    # SciPy: psi(+-0) = -+inf.
    return num.where(num.eq(x, 0.0), num.div(-1.0, x), result)


def _upward(
    num: Num, z: ir.Value, start: float, term: Callable[[ir.Value], ir.Value]
) -> tuple[ir.Value, ir.Value]:
    """``(sum(term(z + k) for k < m), z + m)`` with ``m`` the fewest steps that reach
    ``z + m >= start``, for the upward recurrences of the polygamma functions.

    The ``z + k`` lie along a new last axis, so that the sum is one reduction.
    """
    ys = num.along_new_axis(z, np.arange(float(math.ceil(start))))
    active = num.lt(ys, start)
    total = num.reduce_last("ReduceSum", num.where(active, term(ys), 0.0), z)
    steps = num.reduce_last("ReduceSum", num.builder.cast(active, num.dtype), z)
    return total, num.add(z, steps)


def trigamma64(num: Num, x: ir.Value) -> ir.Value:
    """``polygamma(1, x)`` in ``num.dtype`` (upward recurrence: a sum of positive terms)."""
    negative, z, r = _reflected(num, x)
    total, y = _upward(num, z, _STIRLING_MIN, lambda ys: num.div(1.0, num.mul(ys, ys)))
    inv = num.div(1.0, y)
    inv2 = num.mul(inv, inv)
    series = num.mul(num.mul(inv2, inv), num.horner(inv2, _TRIGAMMA_SERIES))
    positive = num.add(total, num.add(inv, num.add(num.mul(inv2, 0.5), series)))
    # trigamma(x) = pi^2 / sin(pi x)^2 - trigamma(1 - x)
    sin = num.sin_pi(r)
    reflected = num.sub(num.div(math.pi**2, num.mul(sin, sin)), positive)
    # Poles (and -inf, as SciPy) give +inf.
    reflected = num.where(num.eq(r, 0.0), math.inf, reflected)
    reflected = num.where(num.is_inf(x), math.inf, reflected)
    return num.where(negative, reflected, positive)


#: Largest PolyGamma order converted (the asymptotic series needs x >= 10 + 2n).
_POLYGAMMA_MAX_ORDER = 12


def _cot_derivative_polynomial(n: int) -> list[int]:
    """Coefficients (ascending) of ``Q_n`` with ``d^n/dx^n cot(pi x) = pi^n Q_n(cot(pi x))``:
    ``Q_0(c) = c`` and ``Q_{k+1}(c) = -(1 + c^2) Q_k'(c)``."""
    poly = [0, 1]
    for _ in range(n):
        derivative = [k * c for k, c in enumerate(poly)][1:] or [0]
        nxt = [0] * (len(derivative) + 2)
        for k, c in enumerate(derivative):
            nxt[k] -= c
            nxt[k + 2] -= c
        poly = nxt
    return poly


def polygamma64(num: Num, x: ir.Value, n: int) -> ir.Value:
    """``polygamma(n, x)`` for a fixed order ``n >= 1`` in ``num.dtype``.

    ``(-1)^(n+1) n! sum_{k<m} (x+k)^-(n+1)`` plus the asymptotic series at ``x + m >= 10 + 2n``
    (exact Bernoulli coefficients, as many terms as reach 1e-18), and for ``x < 0`` the
    reflection ``(-1)^n polygamma(n, 1 - x) - pi^(n+1) Q_n(cot(pi x))``.
    """
    sign = -1.0 if n % 2 == 0 else 1.0
    start = 10.0 + 2 * n
    negative, z, r = _reflected(num, x)
    total, y = _upward(num, z, start, lambda ys: num.pow(ys, -float(n + 1)))
    # (n-1)!/y^n + n!/(2 y^(n+1)) + sum B_2k (2k+n-1)!/(2k)! / y^(2k+n)
    series = []
    for k, bernoulli in enumerate(BERNOULLI_EVEN, start=1):
        coefficient = bernoulli * math.factorial(2 * k + n - 1) / math.factorial(2 * k)
        series.append(float(coefficient))
        if abs(coefficient) / start ** (2 * k) < 1e-18 * math.factorial(n - 1):
            break
    inv = num.div(1.0, y)
    w = num.mul(inv, inv)
    inner = num.mul(w, num.horner(w, series) if len(series) > 1 else series[0])
    inner = num.add(
        num.add(inner, num.mul(inv, math.factorial(n) / 2)), float(math.factorial(n - 1))
    )
    asymptotic = num.mul(num.pow(inv, float(n)), inner)
    positive = num.mul(num.add(num.mul(total, float(math.factorial(n))), asymptotic), sign)
    cot = num.div(num.cos_pi(r), num.sin_pi(r))
    q = _cot_derivative_polynomial(n)
    q_value = num.horner(cot, [float(c) for c in q])
    reflected = num.sub(num.mul(positive, -sign), num.mul(q_value, math.pi ** (n + 1)))
    # Poles (0 of either sign, negative integers) and -inf: SciPy's (-1)^(n+1) inf.
    pole = num.either(num.both(num.eq(r, 0.0), num.le(x, 0.0)), num.is_inf(x, positive=False))
    return num.where(pole, sign * math.inf, num.where(negative, reflected, positive))


@onnx_funcify.register(psm.PolyGamma)
def _polygamma(op: psm.PolyGamma, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    order = node.inputs[0]
    values = np.unique(np.asarray(order.data)) if isinstance(order, Constant) else None
    if values is None or values.size != 1 or not 0 <= values[0] <= _POLYGAMMA_MAX_ORDER:
        raise UnsupportedOpError.for_node(
            node, f"polygamma(n, x) is only converted for a constant n in 0..{_POLYGAMMA_MAX_ORDER}"
        )
    n = int(values[0])
    dtype = variable_dtype(node.outputs[0])

    def decomposition(num: Num, x: ir.Value) -> ir.Value:
        return psi64(num, x) if n == 0 else polygamma64(num, x, n)

    return [in_work_dtype(decomposition)(builder, [builder.input(node, 1, dtype)], dtype)]


# ------------------------------------------------------ regularized incomplete gamma
#: Relative size of the last series term / continued-fraction step that stops the loops, in
#: machine epsilons (a few units in the last place: rounding can keep a converged Lentz step
#: one ulp off 1).
_LOOP_TOLERANCE_EPS = 2.0
#: Iteration cap of the loops; the series and the continued fraction need about
#: ``9 * sqrt(a)`` steps next to ``x = a``, so ``a`` up to about 5e6 converges.
_GAMMAINC_MAX_ITERATIONS = 20000
#: A positive number far below any value the continued fraction meets, per dtype.
_TINY = {"float64": 1e-300, "float32": 1e-30}


#: ``1/3, 1/5, 1/7, ...``: ``log1p(t) = 2 atanh(u) = 2 (u + u^3/3 + u^5/5 + ...)`` with
#: ``u = t / (2 + t)``; 18 terms reach 1e-17 for ``|u| <= 1/3``.
_ATANH_SERIES = [1.0 / (2 * k + 3) for k in range(18)]


def _log1pmx_negated(num: Num, t: ir.Value) -> ir.Value:
    """``t - log(1 + t)`` (>= 0) without the cancellation at small ``t``."""
    u = num.div(t, num.add(t, 2.0))
    u2 = num.mul(u, u)
    # t - 2u = u t exactly, so t - log1p(t) = u t - 2 u^3 (1/3 + u^2/5 + ...).
    series = num.sub(
        num.mul(u, t), num.mul(num.mul(num.mul(u, u2), 2.0), num.horner(u2, _ATANH_SERIES))
    )
    direct = num.sub(t, log1p(num.builder, t, num.dtype))
    return num.where(num.le(num.unary("Abs", u), 1.0 / 3.0), series, direct)


def _gammainc_prefix(num: Num, a: ir.Value, x: ir.Value) -> ir.Value:
    """``x^a e^-x / Gamma(a)``, the factor in front of the series and continued fraction.

    For ``a >= 10`` it is ``sqrt(a / (2 pi)) exp(-a (t - log1p(t)) - c(a))`` with
    ``t = (x - a) / a`` and ``c`` the Stirling correction: the large terms ``a log x``,
    ``x`` and ``gammaln(a)`` cancel analytically instead of in floating point.
    """
    direct = num.unary(
        "Exp", num.sub(num.sub(num.mul(a, num.unary("Log", x)), x), gammaln64(num, a))
    )
    t = num.div(num.sub(x, a), a)
    # a (t - log1p(t)); for x well below a, 1 + t = x / a has lost its relative accuracy in t
    # (at x = 1e-20 and a = 10, t rounds to -1), so use (x - a) - a log(x / a) there.
    ratio = num.div(x, a)
    far_below = num.sub(num.sub(x, a), num.mul(a, num.unary("Log", ratio)))
    near = num.mul(a, _log1pmx_negated(num, t))
    exponent = num.add(num.where(num.lt(ratio, 0.5), far_below, near), _stirling_correction(num, a))
    scale = num.unary("Sqrt", num.mul(a, 1.0 / (2.0 * math.pi)))
    stirling = num.mul(scale, num.unary("Exp", num.unary("Neg", exponent)))
    return num.where(num.ge(a, _STIRLING_MIN), stirling, direct)


def _gammaincc_small_a(
    num: Num, a: ir.Value, x: ir.Value, active: ir.Value, shape: ir.Value
) -> ir.Value:
    """``Q(a, x)`` for ``a < 1`` and ``x < a + 1``, where ``1 - P`` would cancel.

    ``Q = -expm1(L) - a e^L S`` with ``L = a log x - gammaln(1 + a)`` and the alternating
    series ``S = sum_{n>=1} (-x)^n / (n! (a + n))`` (run in a ``Loop`` while ``active``).
    """
    lgamma1p = _Reduced(num, a).lgamma_core()  # exact zero at a = 0 factored out
    log_ratio = num.sub(num.mul(a, num.unary("Log", x)), lgamma1p)
    minus_x = num.unary("Neg", x)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        power, total, n = state  # power = (-x)^n / n!
        n = body.add(n, 1.0)
        power = body.mul(power, body.div(minus_x, n))
        term = body.div(power, body.add(a, n))
        total = body.add(total, term)
        tolerance = body.eps * _LOOP_TOLERANCE_EPS
        big = body.gt(body.unary("Abs", term), body.mul(body.unary("Abs", total), tolerance))
        return [power, total, n], body.both(active, big)

    one = num.builder.op("Expand", [num.val(1.0), shape])
    zero = num.builder.op("Expand", [num.val(0.0), shape])
    _, series, _ = while_any(
        num, [one, zero, num.val(0.0)], step, _GAMMAINC_MAX_ITERATIONS, "gammaincc_small_a"
    )
    tail = num.mul(num.mul(a, num.unary("Exp", log_ratio)), series)
    return num.sub(num.unary("Neg", expm1(num.builder, log_ratio, num.dtype)), tail)


def _gammainc_pair(num: Num, a: ir.Value, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``(P(a, x), Q(a, x))``, the regularized lower and upper incomplete gamma functions.

    The power series of ``P`` is used for ``x < a + 1`` and the continued fraction of ``Q``
    (modified Lentz) elsewhere; each runs in an ONNX ``Loop`` until every element it
    serves has converged.  The other function is ``1 - `` the computed one, which loses no
    relative accuracy because that one is at most about one half there, except ``Q`` for
    ``a < 1``, which has its own series (:func:`_gammaincc_small_a`).
    """
    builder = num.builder
    shape = builder.shape(num.add(a, x))
    series_region = num.lt(x, num.add(a, 1.0))
    valid = num.both(num.gt(a, 0.0), num.gt(x, 0.0))
    prefix = _gammainc_prefix(num, a, x)
    tolerance = num.eps * _LOOP_TOLERANCE_EPS
    tiny = _TINY[num.dtype]

    inv_a = builder.op("Expand", [num.div(1.0, a), shape])
    in_series = num.both(series_region, valid)

    def series_step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        term, total, n = state
        n = body.add(n, 1.0)
        term = body.mul(term, body.div(x, body.add(a, n)))
        total = body.add(total, term)
        big = body.gt(body.unary("Abs", term), body.mul(body.unary("Abs", total), tolerance))
        return [term, total, n], body.both(in_series, big)

    _, total, _ = while_any(
        num, [inv_a, inv_a, num.val(0.0)], series_step, _GAMMAINC_MAX_ITERATIONS, "gammainc_series"
    )
    p_series = num.mul(prefix, total)

    b0 = builder.op("Expand", [num.sub(num.add(x, 1.0), a), shape])
    in_fraction = num.both(builder.op("Not", [series_region]), valid)
    d0 = num.div(1.0, b0)

    def fraction_step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        h, c, d, i = state
        i = body.add(i, 1.0)
        an = body.mul(body.unary("Neg", i), body.sub(i, a))
        b = body.add(b0, body.add(i, i))
        d = body.add(body.mul(an, d), b)
        d = body.where(body.lt(body.unary("Abs", d), tiny), tiny, d)
        c = body.add(b, body.div(an, c))
        c = body.where(body.lt(body.unary("Abs", c), tiny), tiny, c)
        d = body.div(1.0, d)
        delta = body.mul(d, c)
        h = body.mul(h, delta)
        big = body.gt(body.unary("Abs", body.sub(delta, 1.0)), tolerance)
        return [h, c, d, i], body.both(in_fraction, big)

    c0 = builder.op("Expand", [num.val(1.0 / tiny), shape])
    h, _, _, _ = while_any(
        num,
        [d0, c0, d0, num.val(0.0)],
        fraction_step,
        _GAMMAINC_MAX_ITERATIONS,
        "gammaincc_fraction",
    )
    q_fraction = num.mul(prefix, h)

    lower = num.where(series_region, p_series, num.sub(1.0, q_fraction))
    small_a = num.both(in_series, num.lt(a, 1.0))
    q_small_a = _gammaincc_small_a(num, a, x, small_a, shape)
    upper = num.where(series_region, num.sub(1.0, p_series), q_fraction)
    upper = num.where(small_a, q_small_a, upper)
    # SciPy's conventions at the edges of the domain.
    invalid = num.either(num.lt(a, 0.0), num.lt(x, 0.0))
    invalid = num.either(invalid, num.both(num.eq(a, 0.0), num.eq(x, 0.0)))
    lower = num.where(num.eq(x, 0.0), 0.0, num.where(num.eq(a, 0.0), 1.0, lower))
    upper = num.where(num.eq(x, 0.0), 1.0, num.where(num.eq(a, 0.0), 0.0, upper))
    x_inf = num.is_inf(x, negative=False)
    lower = num.where(x_inf, 1.0, lower)
    upper = num.where(x_inf, 0.0, upper)
    a_inf = num.is_inf(a, negative=False)
    lower = num.where(num.both(a_inf, builder.op("Not", [x_inf])), 0.0, lower)
    upper = num.where(num.both(a_inf, builder.op("Not", [x_inf])), 1.0, upper)
    # Both infinite: no limit (SciPy and PyTensor give NaN).
    invalid = num.either(invalid, num.both(a_inf, x_inf))
    lower = num.where(invalid, math.nan, lower)
    upper = num.where(invalid, math.nan, upper)
    return lower, upper


def gammainc64(num: Num, a: ir.Value, x: ir.Value) -> ir.Value:
    """The regularized lower incomplete gamma function ``P(a, x)`` in ``num.dtype``."""
    return _gammainc_pair(num, a, x)[0]


def gammaincc64(num: Num, a: ir.Value, x: ir.Value) -> ir.Value:
    """The regularized upper incomplete gamma function ``Q(a, x)`` in ``num.dtype``."""
    return _gammainc_pair(num, a, x)[1]


# ------------------------------------------------------------------- incomplete beta
def _log_beta(num: Num, a: ir.Value, b: ir.Value) -> ir.Value:
    """``log B(a, b)`` for ``a, b > 0``.

    With the larger argument ``L >= 10``, ``gammaln(L) - gammaln(L + S)`` is taken in
    Stirling's form, ``-(L - 1/2) log1p(S / L) - S log(L + S) + S + c(L) - c(L + S)``: its
    terms are of the size of the result, where the two ``gammaln`` are of size ``L log L``
    and cancel (a 4e-9 relative error at ``S = 5``, ``L = 1e6``).
    """
    small = num.builder.op("Min", [a, b])
    large = num.builder.op("Max", [a, b])
    total = num.add(a, b)
    gammaln_a, gammaln_b = gammaln64(num, a), gammaln64(num, b)
    direct = num.sub(num.add(gammaln_a, gammaln_b), gammaln64(num, total))
    ratio_part = num.mul(num.sub(large, 0.5), log1p(num.builder, num.div(small, large), num.dtype))
    difference = num.add(
        num.sub(small, num.add(ratio_part, num.mul(small, num.unary("Log", total)))),
        num.sub(_stirling_correction(num, large), _stirling_correction(num, total)),
    )
    stirling = num.add(num.where(num.le(a, b), gammaln_a, gammaln_b), difference)
    return num.where(num.ge(large, _STIRLING_MIN), stirling, direct)


def _log_betainc_prefix(
    num: Num, a: ir.Value, b: ir.Value, x: ir.Value, log_beta: ir.Value
) -> ir.Value:
    """``log(x^a (1 - x)^b / B(a, b))``, the factor in front of the continued fraction, given
    ``log_beta = log B(a, b)`` (:func:`_log_beta`).

    For ``a, b >= 10`` the Stirling forms of the three ``gammaln`` in ``log B`` are combined
    with ``a log x + b log(1 - x)`` analytically: with ``d = x (a + b) - a`` (zero at the
    mean), the large terms become ``-a L(d / a) - b L(-d / b)``, ``L(t) = t - log(1 + t)``,
    which is small where the value matters instead of a difference of numbers of size
    ``a log a``.  Where ``x (a + b) / a < 1/2`` the first of them is ``a log(x (a + b) / a)``
    (``1 + d / a`` has lost its relative accuracy there, see :func:`_gammainc_prefix`).
    """
    direct = num.sub(
        num.add(
            num.mul(a, num.unary("Log", x)),
            num.mul(b, log1p(num.builder, num.unary("Neg", x), num.dtype)),
        ),
        log_beta,
    )
    total = num.add(a, b)
    d = num.sub(num.mul(x, total), a)
    ratio = num.div(num.mul(x, total), a)
    below_b = num.mul(b, _log1pmx_negated(num, num.div(num.unary("Neg", d), b)))
    far_below = num.sub(num.mul(a, num.unary("Log", ratio)), num.add(d, below_b))
    near = num.unary("Neg", num.add(num.mul(a, _log1pmx_negated(num, num.div(d, a))), below_b))
    main = num.where(num.lt(ratio, 0.5), far_below, near)
    scale = num.mul(0.5, num.unary("Log", num.div(num.div(num.mul(a, b), total), 2.0 * math.pi)))
    corrections = num.sub(
        _stirling_correction(num, total),
        num.add(_stirling_correction(num, a), _stirling_correction(num, b)),
    )
    stirling = num.add(num.add(main, scale), corrections)
    large = num.both(num.ge(a, _STIRLING_MIN), num.ge(b, _STIRLING_MIN))
    return num.where(large, stirling, direct)


def betainc64(num: Num, a: ir.Value, b: ir.Value, x: ir.Value) -> ir.Value:
    """The regularized incomplete beta function ``I_x(a, b)`` in ``num.dtype`` (SciPy's
    ``betainc``); see :func:`_betainc_pair`."""
    return _betainc_pair(num, a, b, x)[0]


def _betainc_pair(num: Num, a: ir.Value, b: ir.Value, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``I_x(a, b)`` and its complement ``1 - I_x(a, b) = I_(1-x)(b, a)``, each computed
    without cancellation where the other is close to 1 (except in the power-series region,
    whose complement is ``1 -`` the series).

    Two methods, each in an ONNX ``Loop`` that runs until every element it serves has
    converged:

    * where ``b x <= 1`` and ``x <= 0.95``, the power series
      ``I_x(a, b) = x^a / (a B(a, b)) (1 + sum_n a (1 - b)_n x^n / (n! (a + n)))``, which needs
      no complement (at small ``b`` and ``x`` above the mean, ``1 - I_(1-x)(b, a)`` would
      subtract two numbers close to 1);
    * elsewhere, below the mean (``x < (a + 1) / (a + b + 2)``) the continued fraction of
      ``I_x(a, b) a B(a, b) / (x^a (1 - x)^b)`` by the modified Lentz method (about
      ``sqrt(max(a, b))`` steps); above it, ``I_x(a, b) = 1 - I_(1-x)(b, a)`` puts the
      evaluation below the mean of the swapped arguments.
    """
    builder = num.builder
    a_plus_b = num.add(a, b)
    shape = builder.shape(num.add(a_plus_b, x))
    swap = num.gt(x, num.div(num.add(a, 1.0), num.add(a_plus_b, 2.0)))
    p = builder.op("Expand", [num.where(swap, b, a), shape])
    q = builder.op("Expand", [num.where(swap, a, b), shape])
    y = builder.op("Expand", [num.where(swap, num.sub(1.0, x), x), shape])
    valid = num.both(num.both(num.gt(p, 0.0), num.gt(q, 0.0)), num.gt(y, 0.0))
    valid = num.both(valid, num.lt(y, 1.0))
    in_series = num.both(num.le(num.mul(b, x), 1.0), num.le(x, 0.95))
    # The elements each loop serves (loop-invariant, so computed once outside the loops).
    series_active = num.both(valid, in_series)
    fraction_active = num.both(valid, builder.op("Not", [in_series]))
    log_beta = _log_beta(num, p, q)
    tolerance = num.eps * _LOOP_TOLERANCE_EPS
    tiny = _TINY[num.dtype]
    total = num.add(p, q)

    def clamp_tiny(body: Num, v: ir.Value) -> ir.Value:
        return body.where(body.lt(body.unary("Abs", v), tiny), tiny, v)

    def lentz(
        body: Num, h: ir.Value, c: ir.Value, d: ir.Value, coefficient: ir.Value
    ) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value]:
        d = body.div(1.0, clamp_tiny(body, body.add(1.0, body.mul(coefficient, d))))
        c = clamp_tiny(body, body.add(1.0, body.div(coefficient, c)))
        delta = body.mul(d, c)
        # A converged element keeps its value while the others iterate: multiplying by
        # factors within ``tolerance`` of 1 for thousands of steps would drift it by ~1e-12.
        big = body.gt(body.unary("Abs", body.sub(delta, 1.0)), tolerance)
        return body.where(big, body.mul(h, delta), h), c, d, big

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        h, c, d, m = state
        m = body.add(m, 1.0)
        two_m = body.add(m, m)
        # Even step: m (q - m) y / ((p + 2m - 1) (p + 2m)).
        even = body.div(
            body.mul(body.mul(m, body.sub(q, m)), y),
            body.mul(body.add(p, body.sub(two_m, 1.0)), body.add(p, two_m)),
        )
        h, c, d, even_big = lentz(body, h, c, d, even)
        # Odd step: -(p + m) (p + q + m) y / ((p + 2m) (p + 2m + 1)).
        odd = body.div(
            body.mul(body.mul(body.add(p, m), body.add(total, m)), y),
            body.mul(body.add(p, two_m), body.add(body.add(p, two_m), 1.0)),
        )
        h, c, d, odd_big = lentz(body, h, c, d, body.unary("Neg", odd))
        return [h, c, d, m], body.both(fraction_active, body.either(even_big, odd_big))

    first = num.div(num.mul(total, y), num.add(p, 1.0))
    d0 = num.div(1.0, clamp_tiny(num, num.sub(1.0, first)))
    one = builder.op("Expand", [num.val(1.0), shape])
    h, _, _, _ = while_any(
        num, [d0, one, d0, num.val(0.0)], step, _GAMMAINC_MAX_ITERATIONS, "betainc_fraction"
    )
    prefix = num.unary("Exp", _log_betainc_prefix(num, p, q, y, log_beta))
    below = num.div(num.mul(prefix, h), p)
    above = num.sub(1.0, below)
    value = num.where(swap, above, below)
    complement = num.where(swap, below, above)

    def series_step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        term, partial, n = state  # term = (1 - b)_n x^n / n!
        n = body.add(n, 1.0)
        term = body.mul(term, body.div(body.mul(body.sub(n, b), x), n))
        added = body.div(body.mul(term, a), body.add(a, n))
        partial = body.add(partial, added)
        big = body.gt(body.unary("Abs", added), body.mul(body.unary("Abs", partial), tolerance))
        return [term, partial, n], body.both(series_active, big)

    _, series, _ = while_any(
        num, [one, one, num.val(0.0)], series_step, _GAMMAINC_MAX_ITERATIONS, "betainc_series"
    )
    # x^a / (a B(a, b)) in logarithms: 1/a alone overflows for subnormal a.
    log_power = num.sub(num.mul(a, num.unary("Log", x)), num.add(log_beta, num.unary("Log", a)))
    series_value = num.mul(num.unary("Exp", log_power), series)
    value = num.where(in_series, series_value, value)
    complement = num.where(in_series, num.sub(1.0, series_value), complement)
    # SciPy's conventions at the edges of the domain, in this order.
    for condition, limit in [
        (num.eq(a, 0.0), 1.0),
        (num.eq(b, 0.0), 0.0),
        (num.is_inf(a, negative=False), 0.0),
        (num.is_inf(b, negative=False), 1.0),
        (num.eq(x, 0.0), 0.0),
        (num.eq(x, 1.0), 1.0),
    ]:
        value = num.where(condition, limit, value)
        complement = num.where(condition, 1.0 - limit, complement)
    invalid = num.either(num.lt(a, 0.0), num.lt(b, 0.0))
    invalid = num.either(invalid, num.either(num.lt(x, 0.0), num.gt(x, 1.0)))
    invalid = num.either(invalid, num.both(num.eq(a, 0.0), num.eq(b, 0.0)))
    both_inf = num.both(num.is_inf(a, negative=False), num.is_inf(b, negative=False))
    invalid = num.either(invalid, both_inf)
    return num.where(invalid, math.nan, value), num.where(invalid, math.nan, complement)


# ------------------------------------------------- inverses of the incomplete gamma and beta
#: Iteration cap of the Halley iteration of the inverses (a few steps from the initial
#: guesses; bisection steps where a Halley step leaves the bracket need at most ~60 more).
_INVERSE_MAX_ITERATIONS = 100

#: One Halley evaluation: the loop body's ``Num`` and the iterate ``x`` give the residual
#: ``g(x)`` (increasing in ``x``, zero at the root), ``g'(x)`` and ``g''(x) / g'(x)``.
Residual = Callable[[Num, ir.Value], tuple[ir.Value, ir.Value, ir.Value]]


def _within(num: Num, x: ir.Value, low: ir.Value, high: ir.Value) -> ir.Value:
    """Whether ``low < x < high`` (false for NaN)."""
    return num.both(num.gt(x, low), num.lt(x, high))


def _halley_root(
    num: Num,
    x0: ir.Value,
    high0: ir.Value,
    active: ir.Value,
    residual: Residual,
    name: str,
) -> ir.Value:
    """The root of the increasing ``residual`` in ``(0, high0)`` near ``x0``, per element.

    Halley steps ``x - u / (1 - c / 2)``, ``c = u g''/g'`` clamped to ``[-1, 1]`` (the
    correction is only meaningful while small), with ``u = g / g'``, safeguarded by
    the bracket ``(low, high)`` that every evaluation narrows: a step that leaves it (or is
    not finite, as where ``g'`` underflows far from the root) is replaced by Newton's step on
    ``log(x)``, else by bisection (or doubling while ``high`` is infinite).  An element
    stops once its step is below a few ulps of ``x`` or its residual is zero; elements not
    ``active`` keep ``x0``.  One ONNX ``Loop`` (:func:`~pytensor_onnx.dispatch._loop.while_any`).
    """
    shape = num.builder.shape(x0)
    low0 = num.builder.op("Expand", [num.val(0.0), shape])
    high0 = num.builder.op("Expand", [high0, shape])
    running0 = num.where(active, 1.0, 0.0)
    tolerance = 4.0 * num.eps
    # Subnormal roots: their spacing is the smallest subnormal, not a multiple of x.
    ulp = 4.0 * float(np.finfo(num.dtype).smallest_subnormal)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        x, low, high, running = state
        g, slope, curvature = residual(body, x)
        low = body.where(body.lt(g, 0.0), x, low)
        high = body.where(body.gt(g, 0.0), x, high)
        u = body.div(g, slope)
        bend = body.clamp(body.mul(u, curvature), body.val(-1.0), body.val(1.0))
        halley = body.sub(x, body.div(u, body.sub(1.0, body.mul(bend, 0.5))))
        # A step within a few ulps ends the iteration (it may touch the bracket, which the
        # residual's rounding noise sets around the root).
        step_size = body.unary("Abs", body.sub(halley, x))
        converged = body.le(step_size, body.add(body.mul(body.unary("Abs", x), tolerance), ulp))
        converged = body.either(converged, body.eq(g, 0.0))
        # Newton's step on log(x), for a residual that is about linear in log(x) (a power
        # law near 0), where Halley's step would cross 0: bisecting towards 0 would crawl.
        log_newton = body.mul(x, body.unary("Exp", body.unary("Neg", body.div(u, x))))
        bisection = body.where(
            body.is_inf(high), body.mul(x, 2.0), body.mul(body.add(low, high), 0.5)
        )
        fallback = body.where(_within(body, log_newton, low, high), log_newton, bisection)
        # A converged step may round just past the bracket (in float32, past 1 for
        # betaincinv): it is limited to the bracket, which holds the root.
        new = body.where(
            body.either(_within(body, halley, low, high), converged),
            body.clamp(halley, low, high),
            fallback,
        )
        # An iterate that no longer moves (a bisection of adjacent floats) is the root too.
        converged = body.either(converged, body.eq(new, x))
        new = body.where(body.gt(running, 0.0), new, x)
        running = body.where(converged, 0.0, running)
        return [new, low, high, running], body.gt(running, 0.0)

    x, _, _, _ = while_any(num, [x0, low0, high0, running0], step, _INVERSE_MAX_ITERATIONS, name)
    return x


def _normal_deviate_guess(num: Num, tail: ir.Value) -> ir.Value:
    """About ``-ndtri(tail)`` for ``0 < tail <= 1/2`` (Abramowitz and Stegun 26.2.22, error
    below 3e-3): the starting point of the inverses' iterations."""
    t = num.unary("Sqrt", num.mul(num.unary("Log", tail), -2.0))
    ratio = num.div(
        num.add(2.30753, num.mul(t, 0.27061)),
        num.add(1.0, num.mul(t, num.add(0.99229, num.mul(t, 0.04481)))),
    )
    return num.sub(t, ratio)


def _log_residual(
    num: Num,
    lower: ir.Value,
    value: ir.Value,
    complement: ir.Value,
    log_tail: ir.Value,
    density: ir.Value,
    bend: ir.Value,
) -> tuple[ir.Value, ir.Value, ir.Value]:
    """The residual of :func:`_halley_root` for an inverse of a distribution function ``F``
    in logarithms: ``log F(x) - log p`` where ``lower`` (the target ``p = exp(log_tail)`` is
    the lower tail), else ``log (1 - p) - log (1 - F(x))`` with ``complement = 1 - F``.

    Newton's method on the logarithm converges in a few steps from far into a tail, where
    on ``F - p`` itself it would crawl (``F`` decays like ``e^-x`` there).  ``density`` is
    ``F'`` and ``bend`` is ``F''/F'``.
    """
    tail_value = num.where(lower, value, complement)
    g = num.sub(num.unary("Log", tail_value), log_tail)
    g = num.where(lower, g, num.unary("Neg", g))
    ratio = num.div(density, tail_value)
    curvature = num.where(lower, num.sub(bend, ratio), num.add(bend, ratio))
    return g, ratio, curvature


def _gammaincinv_pair(num: Num, a: ir.Value, p: ir.Value, q: ir.Value) -> ir.Value:
    """``x`` with ``P(a, x) = p`` and ``Q(a, x) = q`` (one of them given, the other ``1 -``
    it): SciPy's ``gammaincinv`` and ``gammainccinv``.

    Halley's method (:func:`_halley_root`) on ``P(a, x) - p`` where ``p <= 1/2`` and on
    ``q - Q(a, x)`` elsewhere, so the smaller probability keeps its relative accuracy; both
    have the derivative ``x^(a-1) e^-x / Gamma(a)``.  Starting points: the Wilson-Hilferty
    cube ``a (1 - 1/(9a) + z / (3 sqrt(a)))^3`` for ``a > 1`` and, for ``a <= 1``,
    ``(p / t)^(1/a)`` below ``t = 1 - a (0.253 + 0.12 a)`` and ``1 - log(q / (1 - t))``
    above it; never below ``(p Gamma(a + 1))^(1/a)``, a lower bound of the root (since
    ``P(a, x) <= x^a / Gamma(a + 1)``) that is the root's value for small ``p``.
    """
    lower = num.le(p, 0.5)
    tail = num.where(lower, p, q)
    deviate = _normal_deviate_guess(num, num.builder.op("Max", [tail, num.val(_TINY[num.dtype])]))
    z = num.where(lower, num.unary("Neg", deviate), deviate)
    ninth = num.div(1.0, num.mul(a, 9.0))
    cube_root = num.add(num.sub(1.0, ninth), num.mul(z, num.unary("Sqrt", ninth)))
    wilson_hilferty = num.mul(a, num.mul(cube_root, num.mul(cube_root, cube_root)))
    t = num.sub(1.0, num.mul(a, num.add(0.253, num.mul(a, 0.12))))
    small_a_low = num.pow(num.div(p, t), num.div(1.0, a))
    small_a_high = num.sub(1.0, num.unary("Log", num.div(q, num.sub(1.0, t))))
    small_a = num.where(num.lt(p, t), small_a_low, small_a_high)
    guess = num.where(num.gt(a, 1.0), wilson_hilferty, small_a)
    log_a_factorial = gammaln64(num, num.add(a, 1.0))
    log_bound = num.div(num.add(num.unary("Log", p), log_a_factorial), a)
    guess = num.builder.op("Max", [guess, num.unary("Exp", log_bound)])
    tiny = float(np.finfo(num.dtype).tiny)
    guess = num.builder.op("Max", [guess, num.val(tiny)])

    domain = num.both(num.gt(a, 0.0), num.builder.op("Not", [num.is_inf(a)]))
    domain = num.both(domain, num.both(num.ge(p, 0.0), num.le(p, 1.0)))
    domain = num.both(domain, num.both(num.ge(q, 0.0), num.le(q, 1.0)))
    valid = num.both(domain, num.both(num.gt(p, 0.0), num.gt(q, 0.0)))
    valid = num.both(valid, num.ge(log_bound, math.log(tiny)))
    start = num.where(valid, guess, 1.0)
    a_minus_1 = num.sub(a, 1.0)

    log_tail = num.unary("Log", tail)

    def residual(body: Num, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        big_p, big_q = _gammainc_pair(body, a, x)
        density = body.div(_gammainc_prefix(body, a, x), x)
        bend = body.div(body.sub(a_minus_1, x), x)  # ((a - 1) - x) / x
        return _log_residual(body, lower, big_p, big_q, log_tail, density, bend)

    x = _halley_root(num, start, num.val(math.inf), valid, residual, "gammaincinv")
    # Where even the lower bound underflows, the root is that bound (0 or subnormal).
    x = num.where(num.lt(log_bound, math.log(tiny)), num.unary("Exp", log_bound), x)
    # SciPy's conventions: the ends of [0, 1] map to 0 and inf for every a >= 0.
    x = num.where(num.eq(p, 0.0), 0.0, x)
    x = num.where(num.eq(q, 0.0), math.inf, x)
    ends = num.both(num.ge(a, 0.0), num.either(num.eq(p, 0.0), num.eq(q, 0.0)))
    return num.where(num.either(domain, ends), x, math.nan)


def gammaincinv64(num: Num, a: ir.Value, p: ir.Value) -> ir.Value:
    """SciPy's ``gammaincinv(a, p)``: ``x`` with ``P(a, x) = p``."""
    return _gammaincinv_pair(num, a, p, num.sub(1.0, p))


def gammainccinv64(num: Num, a: ir.Value, q: ir.Value) -> ir.Value:
    """SciPy's ``gammainccinv(a, q)``: ``x`` with ``Q(a, x) = q``."""
    return _gammaincinv_pair(num, a, num.sub(1.0, q), q)


def betaincinv64(num: Num, a: ir.Value, b: ir.Value, y: ir.Value) -> ir.Value:
    """SciPy's ``betaincinv(a, b, y)``: ``x`` in ``[0, 1]`` with ``I_x(a, b) = y``.

    Halley's method (:func:`_halley_root`) on ``I_x(a, b) - y`` (derivative
    ``x^(a-1) (1 - x)^(b-1) / B(a, b)``), from the starting point of Abramowitz and Stegun
    26.5.22 for ``a, b >= 1`` and, for the others, the power laws of the two ends,
    ``(a w y)^(1/a)`` and ``1 - (b w (1 - y))^(1/b)`` with
    ``w = (a / (a + b))^a / a + (b / (a + b))^b / b``.  The iteration stays in ``x`` (not
    ``1 - x``), so a root near 0 keeps its relative accuracy whatever ``y`` is.
    """
    builder = num.builder
    tiny = _TINY[num.dtype]
    upper = num.gt(y, 0.5)
    tail = num.where(upper, num.sub(1.0, y), y)
    safe_tail = builder.op("Max", [tail, num.val(tiny)])
    # Abramowitz and Stegun 26.5.22, z the normal deviate of the upper tail y.
    deviate = _normal_deviate_guess(num, safe_tail)
    z = num.where(upper, num.unary("Neg", deviate), deviate)
    shift = num.div(num.sub(num.mul(z, z), 3.0), 6.0)
    inv_a = num.div(1.0, num.sub(num.mul(a, 2.0), 1.0))
    inv_b = num.div(1.0, num.sub(num.mul(b, 2.0), 1.0))
    h = num.div(2.0, num.add(inv_a, inv_b))
    correction = num.sub(num.add(shift, 5.0 / 6.0), num.div(2.0, num.mul(h, 3.0)))
    w = num.sub(
        num.div(num.mul(z, num.unary("Sqrt", num.add(shift, h))), h),
        num.mul(num.sub(inv_b, inv_a), correction),
    )
    normal_guess = num.div(a, num.add(a, num.mul(b, num.unary("Exp", num.mul(w, 2.0)))))
    # The power laws at the two ends, in logarithms.
    total = num.add(a, b)
    log_t = num.sub(num.mul(a, num.unary("Log", num.div(a, total))), num.unary("Log", a))
    log_u = num.sub(num.mul(b, num.unary("Log", num.div(b, total))), num.unary("Log", b))
    log_w = num.add(log_t, log1p(builder, num.unary("Exp", num.sub(log_u, log_t)), num.dtype))
    log_y = num.unary("Log", builder.op("Max", [y, num.val(tiny)]))
    log_rest = num.unary("Log", safe_tail)  # log(1 - y) where it matters (y > 1/2)
    near_zero = num.div(num.add(num.add(num.unary("Log", a), log_w), log_y), a)
    near_one = num.div(num.add(num.add(num.unary("Log", b), log_w), log_rest), b)
    power_guess = num.where(
        num.lt(log_y, num.sub(log_t, log_w)),
        num.unary("Exp", near_zero),
        num.sub(1.0, num.unary("Exp", near_one)),
    )
    both_large = num.both(num.ge(a, 1.0), num.ge(b, 1.0))
    guess = num.where(both_large, normal_guess, power_guess)
    # Far in a tail the root is that of the leading power law, I_x ~ x^a / (a B(a, b))
    # (1 - I_x ~ (1 - x)^b / (b B(a, b)) above), to a relative error of about x b (x a):
    # use it where that is small (the normal approximation can be off by hundreds of
    # orders of magnitude there).
    log_beta = _log_beta(num, a, b)
    log_tail = num.unary("Log", tail)
    end_a, end_b = num.where(upper, b, a), num.where(upper, a, b)
    log_end = num.div(num.add(num.add(num.unary("Log", end_a), log_beta), log_tail), end_a)
    end = num.unary("Exp", log_end)
    from_end = num.where(upper, num.sub(1.0, end), end)
    guess = num.where(num.lt(num.mul(end, num.add(end_b, 1.0)), 0.1), from_end, guess)
    guess = num.clamp(guess, num.val(float(np.finfo(num.dtype).tiny)), num.val(1.0 - num.eps))

    finite = num.both(builder.op("Not", [num.is_inf(a)]), builder.op("Not", [num.is_inf(b)]))
    domain = num.both(num.both(num.gt(a, 0.0), num.gt(b, 0.0)), finite)
    valid = num.both(domain, num.both(num.gt(y, 0.0), num.lt(y, 1.0)))
    log_tiny = math.log(float(np.finfo(num.dtype).tiny))
    underflows = num.both(num.lt(log_y, num.sub(log_t, log_w)), num.lt(near_zero, log_tiny))
    valid = num.both(valid, builder.op("Not", [underflows]))
    start = num.where(valid, guess, 0.5)
    a_minus_1, b_minus_1 = num.sub(a, 1.0), num.sub(b, 1.0)

    lower = builder.op("Not", [upper])

    def residual(body: Num, x: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        value, complement = _betainc_pair(body, a, b, x)
        log_prefix = _log_betainc_prefix(body, a, b, x, log_beta)
        one_minus_x = body.sub(1.0, x)
        density = body.div(body.unary("Exp", log_prefix), body.mul(x, one_minus_x))
        b_term = body.div(body.mul(b_minus_1, x), one_minus_x)  # x (b - 1) / (1 - x)
        bend = body.div(body.sub(a_minus_1, b_term), x)
        return _log_residual(body, lower, value, complement, log_tail, density, bend)

    x = _halley_root(num, start, num.val(1.0), valid, residual, "betaincinv")
    # Where I_x ~ x^a / (a B(a, b)) puts the root below the smallest normal number, it is
    # that power law's root (0 or subnormal).
    log_small_root = num.div(
        num.add(num.add(num.unary("Log", a), log_beta), num.unary("Log", y)), a
    )
    x = num.where(underflows, num.unary("Exp", log_small_root), x)
    # SciPy's conventions: the ends of [0, 1] map to 0 and 1 for all positive a and b.
    x = num.where(num.eq(y, 0.0), 0.0, x)
    x = num.where(num.eq(y, 1.0), 1.0, x)
    positive = num.both(num.gt(a, 0.0), num.gt(b, 0.0))
    ends = num.both(positive, num.either(num.eq(y, 0.0), num.eq(y, 1.0)))
    domain = num.both(domain, num.both(num.ge(y, 0.0), num.le(y, 1.0)))
    return num.where(num.either(domain, ends), x, math.nan)


# ------------------------------------------------------------------- Bessel I0, I1
def _bessel_scaled(order: int, small: tuple[float, ...], large: tuple[float, ...]) -> Decomposition:
    """``exp(-|x|) I_n(x)`` for integer ``n`` from Chebyshev series on ``[0, 8]`` (of
    ``e^-x I_n(x) / x^n``) and in ``16 / x - 1`` beyond (of ``sqrt(x) e^-x I_n(x)``);
    ``I_n(-x) = (-1)^n I_n(x)``."""

    def decomposition(num: Num, x: ir.Value) -> ir.Value:
        a = num.unary("Abs", x)
        near = num.chebyshev_on(a, 0.0, 8.0, small)
        for _ in range(order):
            near = num.mul(near, a)
        far = num.div(num.chebyshev(num.sub(num.div(16.0, a), 1.0), large), num.unary("Sqrt", a))
        scaled = num.where(num.le(a, 8.0), near, far)
        return num.negate_where(num.lt(x, 0.0), scaled) if order % 2 else scaled

    return decomposition


def _unscaled(order: int, scaled: Decomposition) -> Decomposition:
    def decomposition(num: Num, x: ir.Value) -> ir.Value:
        a = num.unary("Abs", x)
        # exp(|x|) in two halves: I_n(x) is finite up to |x| = 713, exp(|x|) only to 709.
        half = num.unary("Exp", num.mul(a, 0.5))
        value = num.mul(num.mul(scaled(num, x), half), half)
        # The limits at +-inf are +inf, or +-inf for odd orders; SciPy returns NaN there.
        return num.where(num.is_inf(a), x if order % 2 else a, value)

    return decomposition


#: ``order: (exp(-|x|) I_order(x), I_order(x))`` decompositions.
_BESSEL_I = {
    order: (scaled, _unscaled(order, scaled))
    for order, scaled in [
        (0, _bessel_scaled(0, tables.I0E_SMALL_CHEB, tables.I0E_LARGE_CHEB)),
        (1, _bessel_scaled(1, tables.I1E_SMALL_CHEB, tables.I1E_LARGE_CHEB)),
        (2, _bessel_scaled(2, tables.I2E_SMALL_CHEB, tables.I2E_LARGE_CHEB)),
    ]
}
i0e64, i0_64 = _BESSEL_I[0]
i1e64, i1_64 = _BESSEL_I[1]


def _of_constant_order(
    op: psm.ScalarOp, node: Apply, builder: ONNXBuilder, orders: dict[int, Decomposition]
) -> list[ir.Value]:
    """A Bessel function ``f(v, x)`` whose order ``v`` is a constant with a decomposition in
    ``orders``; other orders need a general-order Bessel algorithm and are refused."""
    order = node.inputs[0]
    values = np.unique(np.asarray(order.data)) if isinstance(order, Constant) else None
    if values is None or values.size != 1 or values[0] not in orders:
        name = type(op).__name__.lower()
        known = ", ".join(str(n) for n in sorted(orders))
        raise UnsupportedOpError.for_node(
            node, f"{name}(v, x) is only converted for a constant v in {{{known}}}", op=op
        )
    dtype = variable_dtype(node.outputs[0])
    decomposition = orders[int(values[0])]
    return [in_work_dtype(decomposition)(builder, [builder.input(node, 1, dtype)], dtype)]


def _ive(op: psm.ScalarOp, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    # Orders 0, 1 and 2: PyTensor 3's iv and i0/i1 (the gradient of i1 is ive(2, x)).
    return _of_constant_order(op, node, builder, {n: pair[0] for n, pair in _BESSEL_I.items()})


def _iv(op: psm.ScalarOp, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    return _of_constant_order(op, node, builder, {n: pair[1] for n, pair in _BESSEL_I.items()})


for _cls in optional_classes(psm, "Ive"):
    onnx_funcify.register(_cls)(_ive)
for _cls in optional_classes(psm, "Iv"):  # PyTensor 3 builds iv from ive
    onnx_funcify.register(_cls)(_iv)


# ------------------------------------------------------- Bessel K of real order (kve)
#: ``1 / Gamma(1 + x) = sum a_j x**j``: Abramowitz and Stegun 6.1.34 (the coefficients of
#: ``1 / Gamma(z) = sum c_k z**k``, ``a_j = c_(j+1)``), for the order's fractional part.
_RECIPROCAL_GAMMA = (
    1.0,
    0.5772156649015329,
    -0.6558780715202538,
    -0.0420026350340952,
    0.1665386113822915,
    -0.0421977345555443,
    -0.0096219715278770,
    0.0072189432466630,
    -0.0011651675918591,
    -0.0002152416741149,
    0.0001280502823882,
    -0.0000201348547807,
    -0.0000012504934821,
    0.0000011330272320,
    -0.0000002056338417,
    0.0000000061160950,
    0.0000000050020075,
    -0.0000000011812746,
    0.0000000001043427,
    0.0000000000077823,
    -0.0000000000036968,
    0.0000000000005100,
    -0.0000000000000206,
    -0.0000000000000054,
    0.0000000000000014,
    0.0000000000000001,
)
#: Below this argument ``K_mu`` comes from Temme's series, from it on from Steed's continued
#: fraction (both converge in a few tens of terms there).
_KVE_SERIES_MAX = 2.0
#: Iteration caps of the series and the continued fraction (neither needs 100).
_KVE_MAX_TERMS = 1000


def _kve_temme(num: Num, mu: ir.Value, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``K_mu(x)`` and ``K_(mu+1)(x)`` for ``|mu| <= 1/2`` and ``0 < x < 2``: Temme's series
    (Temme, "On the numerical evaluation of the modified Bessel function of the third
    kind", J. Comput. Phys. 19, 1975), unscaled."""
    half_x = num.mul(x, 0.5)
    log_2_over_x = num.unary("Neg", num.unary("Log", half_x))
    mu2 = num.mul(mu, mu)
    odd = num.horner(mu2, _RECIPROCAL_GAMMA[1::2])  # (1/G(1+mu) - 1/G(1-mu)) / (2 mu)
    even = num.horner(mu2, _RECIPROCAL_GAMMA[0::2])  # (1/G(1-mu) + 1/G(1+mu)) / 2
    gam1, gam2 = num.unary("Neg", odd), even
    reciprocal_plus = num.add(even, num.mul(mu, odd))  # 1 / Gamma(1 + mu)
    reciprocal_minus = num.sub(even, num.mul(mu, odd))  # 1 / Gamma(1 - mu)
    zero_mu = num.eq(mu, 0.0)
    # pi mu / sin(pi mu) -> 1 and sinh(e) / e -> 1 at 0 (Where keeps the unselected 0/0 out).
    fact = num.where(zero_mu, 1.0, num.div(num.mul(mu, math.pi), num.sin_pi(mu)))
    e = num.mul(mu, log_2_over_x)
    b = num.builder
    up, down = expm1(b, e, num.dtype), expm1(b, num.unary("Neg", e), num.dtype)
    sinh_ratio = num.where(num.eq(e, 0.0), 1.0, num.div(num.mul(num.sub(up, down), 0.5), e))
    cosh_e = num.add(1.0, num.mul(num.add(up, down), 0.5))
    ff = num.mul(
        fact, num.add(num.mul(gam1, cosh_e), num.mul(gam2, num.mul(sinh_ratio, log_2_over_x)))
    )
    exp_e = num.unary("Exp", e)  # not up + 1, which is 0 for e below -37
    p = num.div(num.mul(exp_e, 0.5), reciprocal_plus)
    q = num.div(0.5, num.mul(exp_e, reciprocal_minus))
    quarter_x2 = num.mul(half_x, half_x)
    zeros = num.mul(x, 0.0)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        i, ff, p, q, c, total, total1 = state
        i = body.add(i, 1.0)
        ff = body.div(body.add(body.add(body.mul(i, ff), p), q), body.sub(body.mul(i, i), mu2))
        c = body.div(body.mul(c, quarter_x2), i)
        p = body.div(p, body.sub(i, mu))
        q = body.div(q, body.add(i, mu))
        term = body.mul(c, ff)
        total = body.add(total, term)
        total1 = body.add(total1, body.mul(c, body.sub(p, body.mul(i, ff))))
        more = body.gt(body.unary("Abs", term), body.mul(body.unary("Abs", total), body.eps))
        return [i, ff, p, q, c, total, total1], more

    state = [zeros, ff, p, q, num.add(zeros, 1.0), ff, p]
    *_, total, total1 = while_any(num, state, step, _KVE_MAX_TERMS, "kve_temme")
    return total, num.div(num.mul(total1, 2.0), x)


def _kve_steed(num: Num, mu: ir.Value, x: ir.Value) -> tuple[ir.Value, ir.Value]:
    """``e^x K_mu(x)`` and ``e^x K_(mu+1)(x)`` for ``|mu| <= 1/2`` and ``x >= 2``: Steed's
    continued fraction CF2 with Temme's normalization sum (Temme 1975; Press et al.,
    Numerical Recipes, 6.7)."""
    # Every carried value starts with the broadcast shape of mu and x, which the steps give
    # it (OpenVINO fails a Loop whose carried values change shape, with static shapes).
    zeros = num.mul(num.add(mu, x), 0.0)
    a1 = num.add(zeros, num.sub(0.25, num.mul(mu, mu)))
    b0 = num.add(zeros, num.mul(num.add(x, 1.0), 2.0))
    d0 = num.div(1.0, b0)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        i, a, c, q1, q2, q, b, d, delh, h, s = state
        i = body.add(i, 1.0)
        a = body.sub(a, body.mul(body.sub(i, 1.0), 2.0))
        c = body.div(body.mul(body.unary("Neg", a), c), i)
        q_new = body.div(body.sub(q1, body.mul(b, q2)), a)
        q1, q2 = q2, q_new
        q = body.add(q, body.mul(c, q_new))
        b = body.add(b, 2.0)
        d = body.div(1.0, body.add(b, body.mul(a, d)))
        delh = body.mul(body.sub(body.mul(b, d), 1.0), delh)
        h = body.add(h, delh)
        change = body.mul(q, delh)
        s, previous = body.add(s, change), s
        # Also stop once the sum no longer changes: a runtime that computes float64 models
        # in float32 (OpenVINO) never gets below float64's eps, and c and q overflow.
        more = body.both(
            body.gt(body.unary("Abs", change), body.mul(body.unary("Abs", s), body.eps)),
            body.ne(s, previous),
        )
        return [i, a, c, q1, q2, q, b, d, delh, h, s], more

    state = [
        num.add(zeros, 1.0),
        num.unary("Neg", a1),
        a1,
        zeros,
        num.add(zeros, 1.0),
        a1,
        b0,
        d0,
        d0,
        d0,
        num.add(1.0, num.mul(a1, d0)),
    ]
    *_, h, s = while_any(num, state, step, _KVE_MAX_TERMS, "kve_steed")
    k_mu = num.div(num.unary("Sqrt", num.div(math.pi / 2.0, x)), s)
    ratio = num.div(num.sub(num.add(num.add(mu, x), 0.5), num.mul(a1, h)), x)
    return k_mu, num.mul(k_mu, ratio)


def kve64(num: Num, v: ir.Value, x: ir.Value) -> ir.Value:
    """``kve(v, x) = e^x K_v(x)`` for real ``v`` (``K_-v = K_v``): with ``n`` the integer
    nearest to ``|v|`` and ``mu = |v| - n``, ``K_mu`` and ``K_(mu+1)`` from Temme's series
    (``x < 2``) or Steed's continued fraction, then the forward recurrence
    ``K_(m+1) = 2 m / x K_m + K_(m-1)`` (stable: ``K`` grows with its order) up to ``n``, one
    ``Loop`` of ``n - 1`` steps, stopped early by overflow.  SciPy's values at the edges:
    ``inf`` at ``x = 0``, NaN for ``x < 0``, ``x = inf`` and infinite ``v``."""
    order = num.unary("Abs", v)
    n = num.unary("Floor", num.add(order, 0.5))
    finite_order = num.lt(order, math.inf)
    n = num.where(finite_order, n, 0.0)
    mu = num.where(finite_order, num.sub(order, n), 0.0)
    series = num.lt(x, _KVE_SERIES_MAX)
    positive = num.both(num.gt(x, 0.0), num.lt(x, math.inf))
    x_series = num.where(num.both(series, positive), x, 1.0)
    x_fraction = num.where(num.both(num.unary("Not", series), positive), x, _KVE_SERIES_MAX)
    k0_series, k1_series = _kve_temme(num, mu, x_series)
    scale = num.unary("Exp", x_series)
    k0_steed, k1_steed = _kve_steed(num, mu, x_fraction)
    k0 = num.where(series, num.mul(k0_series, scale), k0_steed)
    k1 = num.where(series, num.mul(k1_series, scale), k1_steed)
    x_safe = num.where(positive, x, 1.0)
    zeros = num.mul(num.add(x_safe, n), 0.0)  # the shape of the result, as for Steed's loop

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        m, previous, current = state
        going = body.lt(m, n)
        following = body.add(
            body.mul(body.div(body.mul(body.add(mu, m), 2.0), x_safe), current), previous
        )
        previous = body.where(going, current, previous)
        current = body.where(going, following, current)
        m = body.add(m, body.builder.cast(going, body.dtype, "bool"))
        more = body.both(body.lt(m, n), body.lt(current, math.inf))
        return [m, previous, current], more

    _, _, k_n = while_any(num, [num.add(zeros, 1.0), k0, k1], step, 2**62, "kve_recurrence")
    result = num.where(num.eq(n, 0.0), k0, k_n)
    result = num.where(num.eq(x, 0.0), math.inf, result)
    valid = num.both(num.both(num.ge(x, 0.0), num.lt(x, math.inf)), finite_order)
    return num.where(valid, result, math.nan)


for _cls in optional_classes(psm, "Kve"):
    register_kernel(_cls)(in_work_dtype(kve64))


# ------------------------------------------------------------------- Bessel J0, J1
#: The end of the interval of the small-argument series of ``J0``/``J1``.
_BESSEL_J_SPLIT = 8.0


def _bessel_j(
    order: int,
    small: tuple[float, ...],
    zeros: tuple[tuple[float, float], ...],
    amplitude: tuple[float, ...],
    phase: tuple[float, ...],
) -> Decomposition:
    """``J_n(x)`` for ``n = 0, 1``.

    ``|x| <= 8``: ``x^n (x - z1)(x + z1)(x - z2)(x + z2) g(x^2)`` with the first two zeros
    ``z1``, ``z2`` factored out (each ``x - z`` as ``(x - hi) - lo``, exact next to the zero,
    so that the relative accuracy holds there) and ``g`` a Chebyshev series.  Beyond, Hankel's
    form ``sqrt(2 / (pi x)) (P cos c - Q sin c)``, ``c = x - (2n + 1) pi/4``, with ``P`` and
    ``Q / u`` Chebyshev series in ``2 u^2 - 1``, ``u = 8 / x``, written with ``sin x`` and
    ``cos x`` (accurately reduced in float64).  ``J_n(-x) = (-1)^n J_n(x)``.
    """

    def decomposition(num: Num, x: ir.Value) -> ir.Value:
        a = num.unary("Abs", x)
        square = num.mul(a, a)
        factor: ir.Value = num.chebyshev_on(square, 0.0, 64.0, small)
        for hi, lo in zeros:
            head = float(np.dtype(num.dtype).type(hi))
            tail = (hi - head) + lo
            near_zero = num.sub(num.sub(a, head), tail)
            factor = num.mul(factor, num.mul(near_zero, num.add(a, hi)))
        if order == 1:
            factor = num.mul(factor, a)
        u = num.div(_BESSEL_J_SPLIT, a)
        v = num.sub(num.mul(num.mul(u, u), 2.0), 1.0)
        p = num.chebyshev(v, amplitude)
        q = num.mul(u, num.chebyshev(v, phase))
        sine, cosine = sin_and_cos(num, a)
        plus, minus = num.add(p, q), num.sub(p, q)
        if order == 0:  # sqrt(2) (P cos c - Q sin c) = (P + Q) cos x + (P - Q) sin x
            wave = num.add(num.mul(plus, cosine), num.mul(minus, sine))
        else:  # ... = (P + Q) sin x - (P - Q) cos x
            wave = num.sub(num.mul(plus, sine), num.mul(minus, cosine))
        far = num.mul(num.unary("Sqrt", num.div(1.0 / math.pi, a)), wave)
        value = num.where(num.le(a, _BESSEL_J_SPLIT), factor, far)
        if order == 0:
            # The product of the factors rounds to 1 + 2**-52 at x = 0: the first terms of
            # the power series, exact to 1e-27 below 1e-4, give J0(0) = 1.
            series = num.add(1.0, num.mul(square, num.add(-0.25, num.mul(square, 1.0 / 64.0))))
            value = num.where(num.lt(a, 1e-4), series, value)
        # The limits at +-inf (SciPy returns NaN there).
        value = num.where(num.is_inf(a), 0.0, value)
        return num.negate_where(num.sign_bit(x), value) if order else value

    return decomposition


j0_64 = _bessel_j(0, tables.J0_SMALL_CHEB, tables.J0_ZEROS, tables.J0_P_CHEB, tables.J0_Q_CHEB)
j1_64 = _bessel_j(1, tables.J1_SMALL_CHEB, tables.J1_ZEROS, tables.J1_P_CHEB, tables.J1_Q_CHEB)

#: ``1 / (k! (k + 2)!)``: ``J2(x) = (x^2 / 4) sum_k (-x^2 / 4)^k / (k! (k + 2)!)``; twelve
#: terms reach 1e-20 for ``|x| <= 1``.
_J2_SERIES = [1.0 / (math.factorial(k) * math.factorial(k + 2)) for k in range(12)]


def j2_64(num: Num, x: ir.Value) -> ir.Value:
    """``J2(x)`` (in the gradient of ``j1``): ``2 J1(x) / x - J0(x)`` for ``|x| > 1``, the
    power series below, where that difference cancels."""
    a = num.unary("Abs", x)
    quarter_square = num.mul(num.mul(a, a), 0.25)
    series = num.mul(quarter_square, num.horner(num.unary("Neg", quarter_square), _J2_SERIES))
    recurrence = num.sub(num.div(num.mul(j1_64(num, a), 2.0), a), j0_64(num, a))
    return num.where(num.le(a, 1.0), series, recurrence)


def _jv(op: psm.ScalarOp, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    # Orders 0, 1 and 2: the gradients of j0 (-j1), j1 ((j0 - jv(2, x)) / 2) and jv.
    return _of_constant_order(op, node, builder, {0: j0_64, 1: j1_64, 2: j2_64})


onnx_funcify.register(psm.Jv)(_jv)


_DECOMPOSED: list[tuple[type, Decomposition]] = [
    (psm.Erf, erf64),
    (psm.Erfc, erfc64),
    (psm.Erfcx, erfcx64),
    (psm.Erfinv, erfinv64),
    (psm.Erfcinv, erfcinv64),
    (psm.GammaLn, gammaln64),
    (psm.Gamma, gamma64),
    (psm.Psi, psi64),
    (psm.TriGamma, trigamma64),
    (psm.I0, i0_64),
    (psm.I1, i1_64),
    (psm.GammaInc, gammainc64),
    (psm.GammaIncC, gammaincc64),
    (psm.BetaInc, betainc64),
    (psm.GammaIncInv, gammaincinv64),
    (psm.GammaIncCInv, gammainccinv64),
    (psm.BetaIncInv, betaincinv64),
    (psm.J0, j0_64),
    (psm.J1, j1_64),
]
for _cls, _decomposition in _DECOMPOSED:
    register_kernel(_cls)(in_work_dtype(_decomposition))


# PyMC's own exponentially scaled Bessel ops (VonMises and Rice logp), registered when met.
def _kernel_registrar(decomposition: Decomposition) -> Callable[[type], object]:
    return lambda cls: register_kernel(cls)(in_work_dtype(decomposition))


for _name, _decomposition in [("I0e", i0e64), ("I1e", i1e64)]:
    register_lazy("pymc.distributions.dist_math", _name, _kernel_registrar(_decomposition))


# ------------------------------------------------------------------- refused, with reasons
_NOT_CONSTRUCTED = "no ONNX operator computes it and no decomposition is constructed yet"
_REFUSED: list[tuple[tuple[str, ...], str]] = [
    (("Hyp2F1",), f"the Gauss hypergeometric function: {_NOT_CONSTRUCTED}"),
    (("Owens_t",), f"Owen's T function: {_NOT_CONSTRUCTED}"),
]
for _cls in optional_classes(psm, "NdtriExp"):
    register_kernel(_cls)(in_work_dtype(ndtri_exp64))

for _names, _reason in _REFUSED:
    for _cls in optional_classes(psm, *_names):
        onnx_funcify.register(_cls)(Refusal(_reason))
