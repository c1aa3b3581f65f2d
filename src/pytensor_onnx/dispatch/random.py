"""Converters for ``pytensor.tensor.random``: RandomVariables as seeded, counter-based draws.

A random generator (a shared ``RandomGeneratorType`` variable or an input) is an int64 seed
in ONNX (one scalar graph input, named after the variable, ``seed`` if unnamed).  Each
RandomVariable node draws from its own stream of the Threefry generator of
:mod:`pytensor_onnx.dispatch._random`, transforms the uniforms in float64 and casts the result
to the node's dtype; in float32-only exports (``float32=True``) the samplers of continuous
distributions (:data:`FLOAT32_SAMPLERS`) compute float32 draws in float32 instead.  Its
"next generator" output is ``seed + 1``: a function whose update feeds it back draws anew on
every call, and a chained draw gets a different key.

The draws are not NumPy's bit stream; the contract is distributional and reproducible: the
same seed gives the same bits in every runtime (see ``docs/random.md``).  Distributions
without a converter are refused by name.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import reduce

import numpy as np
import onnx_ir as ir
import pytensor.tensor.random.basic as ptr
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.random.op import DefaultGeneratorMakerOp, RandomVariable
from pytensor.tensor.type_other import NoneTypeT

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch._loop import Carry, ScanOut, fori_loop, while_any
from pytensor_onnx.dispatch._numerics import Num
from pytensor_onnx.dispatch._random import (
    RandomStream,
    compute_where,
    draw_where,
    rejection_sample,
    round_words,
)
from pytensor_onnx.dispatch.basic import onnx_funcify
from pytensor_onnx.dispatch.linalg import cholesky, size_of
from pytensor_onnx.dispatch.scalar import acos64, expm1, log1p
from pytensor_onnx.dispatch.scalar_math import gammaln64

#: ``transform(num, stream, params)``: draws (1-D, one per element, in the dtype of ``num`` and
#: of the stream) from the stream and the parameters, broadcast and flattened to the draw's
#: shape.
Transform = Callable[[Num, RandomStream, list[ir.Value]], ir.Value]

#: The RandomVariable classes (``module.Name``) whose samplers compute float32 draws in
#: float32 in float32-only exports (``float32=True``); the others compute in float64 inside
#: (the discrete ones need float64 for counts above ``2**24``), and the float32 conversion
#: says so.
FLOAT32_SAMPLERS: set[str] = set()


def qualified_name(cls: type) -> str:
    """``module.Name`` of a class, as :data:`FLOAT32_SAMPLERS` holds it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def draws_in_float32(op: Op, dtype: str) -> bool:
    """Whether ``op``'s draws of ``dtype`` are computed in float32 in a float32-only export."""
    return dtype == "float32" and qualified_name(type(op)) in FLOAT32_SAMPLERS


def draw_dtype(node: Apply, builder: ONNXBuilder) -> str:
    """The dtype a sampler of :data:`FLOAT32_SAMPLERS` computes ``node``'s draws in."""
    dtype = variable_dtype(node.outputs[1])
    if builder.options.get("float32") and draws_in_float32(node.op, dtype):
        return "float32"
    return "float64"


def batch_shape(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> ir.Value:
    """The 1-D int64 shape of the draws: ``size`` if given, else the parameters' broadcast
    batch shape (each parameter's shape without its support dims)."""
    if not isinstance(node.inputs[1].type, NoneTypeT):
        return builder.input(node, 1, "int64")
    params = node.inputs[2:]
    ranks = [p.type.ndim - nd for p, nd in zip(params, op.ndims_params, strict=True)]
    rank = max(ranks, default=0)
    shapes = []
    for index, batch_rank in enumerate(ranks, start=2):
        if batch_rank == 0:
            continue
        shape = builder.op("Shape", [builder.input(node, index)], {"start": 0, "end": batch_rank})
        if batch_rank < rank:
            shape = builder.op(
                "Concat", [builder.int64s([1] * (rank - batch_rank)), shape], {"axis": 0}
            )
        shapes.append(shape)
    if not shapes:
        return builder.int64s([])
    # Each dim is 1 or the common length, so the broadcast length is the largest.
    return reduce(lambda a, b: builder.op("Max", [a, b]), shapes)


def _element_count(builder: ONNXBuilder, shape: ir.Value) -> ir.Value:
    """The 0-d int64 number of elements of ``shape`` (1 for the empty shape)."""
    with_one = builder.op("Concat", [builder.int64s([1]), shape], {"axis": 0})
    return builder.op("ReduceProd", [with_one], {"keepdims": 0})


def flat_param(
    builder: ONNXBuilder, node: Apply, index: int, shape: ir.Value, dtype: str = "float64"
) -> ir.Value:
    """Parameter ``index`` of ``node`` in ``dtype``, broadcast to ``shape`` and flattened."""
    value = builder.input(node, index, dtype)
    expanded = builder.op("Expand", [value, shape])
    return builder.op("Reshape", [expanded, builder.int64s([-1])])


def box_muller(num: Num, u: ir.Value, v: ir.Value) -> ir.Value:
    """``sqrt(-2 log u) cos(2 pi v)``: a standard normal deviate from two uniforms.

    With ``u`` in the open interval of :meth:`RandomStream.uniform`, ``|z|`` reaches 8.57
    (``u = 2**-53``), so tails are exact down to probabilities of about 1e-17; in float32,
    5.77 (``u = 2**-24``, probability 8e-9).
    """
    radius = num.unary("Sqrt", num.mul(-2.0, num.unary("Log", u)))
    return num.mul(radius, num.unary("Cos", num.mul(2.0 * math.pi, v)))


def _box_muller_uniforms(
    stream: RandomStream, words: tuple[int | ir.Value, int | ir.Value]
) -> tuple[ir.Value, ir.Value]:
    """The uniforms of Box-Muller: the open-interval one from word ``words[0]``, the other
    from ``words[1]``; a float32 stream takes both from the one call of ``words[0]``."""
    first, second = words
    if stream.dtype == "float32":
        return stream.uniform_pair(first)
    return stream.uniform(first, open_interval=True), stream.uniform(second)


def standard_normal(
    num: Num, stream: RandomStream, words: tuple[int | ir.Value, int | ir.Value] = (0, 1)
) -> ir.Value:
    """Standard normal deviates by Box-Muller from uniform ``words`` (default 0 and 1; a
    float32 stream uses the first only, see :func:`_box_muller_uniforms`).

    Where the stream covers every element of a draw, one pair of uniforms gives two
    deviates, ``r cos(2 pi v)`` for element ``2 j`` and ``r sin(2 pi v)`` for ``2 j + 1``
    (independent standard normals): half the random bits and logarithms.  A view of some
    elements (a rejection round's pending ones) draws one deviate per element.
    """
    if stream.count is None:
        return box_muller(num, *_box_muller_uniforms(stream, words))
    pairs = stream.pairs()
    b = num.builder
    u, v = _box_muller_uniforms(pairs, words)
    radius = num.unary("Sqrt", num.mul(-2.0, num.unary("Log", u)))
    angle = num.mul(2.0 * math.pi, v)
    axis = b.int64s([1])
    both = b.op(
        "Concat",
        [
            b.op("Unsqueeze", [num.mul(radius, num.unary("Cos", angle)), axis]),
            b.op("Unsqueeze", [num.mul(radius, num.unary("Sin", angle)), axis]),
        ],
        {"axis": 1},
    )
    interleaved = b.op("Reshape", [both, b.int64s([-1])])
    end = b.op("Reshape", [stream.count, b.int64s([1])])
    return b.op("Slice", [interleaved, b.int64s([0]), end, b.int64s([0])])


def log_standard_gamma(num: Num, stream: RandomStream, shape: ir.Value) -> ir.Value:
    """The logarithm of standard gamma deviates of ``shape`` (per element).

    Marsaglia and Tsang (2000), exact by rejection (acceptance above 95 % for every shape):
    ``d v`` with ``d = a - 1/3``, ``v = (1 + c x)**3``, ``c = 1 / sqrt(9 d)``, ``x`` normal,
    accepted when ``log u < x**2 / 2 + d - d v + d log v``.  Shapes ``a < 1`` draw with
    ``a + 1`` and add ``log(u') / a`` (the boost ``G(a) = G(a + 1) u'**(1/a)``), in log space,
    so that tiny shapes (``a = 1e-3``, whose draws underflow float64 half of the time) keep
    their logarithm, which beta draws use.  Word 0 is the boost's uniform; round ``r`` uses
    words ``3 r + 1 .. 3 r + 3``.
    """
    small = num.lt(shape, 1.0)

    def propose(
        body: Num, inner: RandomStream, round_: ir.Value, params: list[ir.Value]
    ) -> tuple[ir.Value, ir.Value]:
        (a,) = params
        d = body.sub(body.where(body.lt(a, 1.0), body.add(a, 1.0), a), 1.0 / 3.0)
        c = body.div(1.0, body.unary("Sqrt", body.mul(9.0, d)))
        b = body.builder
        first, second, third = round_words(b, round_, 3, offset=1)
        x = standard_normal(body, inner, (first, second))
        t = body.add(1.0, body.mul(c, x))
        v = body.mul(body.mul(t, t), t)
        log_v = body.unary("Log", v)
        bound = body.add(
            body.mul(0.5, body.mul(x, x)), body.mul(d, body.add(body.sub(1.0, v), log_v))
        )
        log_u = body.unary("Log", inner.uniform(third, open_interval=True))
        accepted = body.both(body.gt(v, 0.0), body.lt(log_u, bound))
        return body.add(body.unary("Log", d), log_v), accepted

    log_draws = rejection_sample(stream, [shape], propose, "gamma_rejection")

    def boost(subset: RandomStream, params: list[ir.Value]) -> ir.Value:
        return num.div(num.unary("Log", subset.uniform(0, open_interval=True)), params[0])

    return num.add(log_draws, draw_where(stream, small, [shape], boost))


def _location_scale(standard: Callable[[Num, RandomStream], ir.Value]) -> Transform:
    def transform(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
        loc, scale = params
        return num.add(loc, num.mul(scale, standard(num, stream)))

    return transform


def _exponential_deviate(num: Num, stream: RandomStream) -> ir.Value:
    """``-log(u)``: a standard exponential deviate (``u`` never 0)."""
    return num.unary("Neg", num.unary("Log", stream.uniform(0, open_interval=True)))


def _tan_half_turn(num: Num, stream: RandomStream) -> ir.Value:
    """``tan(pi (u - 1/2))``, a standard Cauchy deviate (sin/cos: ONNX Runtime has no
    float64 ``Tan``)."""
    angle = num.mul(math.pi, num.sub(stream.uniform(0, open_interval=True), 0.5))
    return num.div(num.unary("Sin", angle), num.unary("Cos", angle))


def _laplace_deviate(num: Num, stream: RandomStream) -> ir.Value:
    """``-sign(t) log(1 - 2 |t|)`` for ``t = u - 1/2`` (exact: ``u`` is a multiple of 2**-53)."""
    t = num.sub(stream.uniform(0, open_interval=True), 0.5)
    magnitude = num.unary("Neg", num.unary("Log", num.sub(1.0, num.mul(2.0, num.unary("Abs", t)))))
    return num.mul(num.unary("Sign", t), magnitude)


def _logistic_deviate(num: Num, stream: RandomStream) -> ir.Value:
    """``log(u / (1 - u))`` (``1 - u`` exact)."""
    u = stream.uniform(0, open_interval=True)
    return num.unary("Log", num.div(u, num.sub(1.0, u)))


def _gumbel_deviate(num: Num, stream: RandomStream) -> ir.Value:
    """``-log(-log(u))``."""
    inner = num.unary("Neg", num.unary("Log", stream.uniform(0, open_interval=True)))
    return num.unary("Neg", num.unary("Log", inner))


def _gamma(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    shape, scale = params
    return num.mul(scale, num.unary("Exp", log_standard_gamma(num, stream, shape)))


def _generalized_gamma(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``lambd G**(1/p)`` for ``G`` gamma of shape ``alpha / p`` (SciPy's ``gengamma``)."""
    alpha, p, lambd = params
    log_gamma = log_standard_gamma(num, stream, num.div(alpha, p))
    return num.mul(lambd, num.unary("Exp", num.div(log_gamma, p)))


def _invgamma(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    shape, scale = params
    log_gamma = log_standard_gamma(num, stream, shape)
    return num.mul(scale, num.unary("Exp", num.unary("Neg", log_gamma)))


def _beta(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``X / (X + Y)`` for gamma deviates ``X``, ``Y`` of shapes ``a`` and ``b``, computed as
    ``1 / (1 + exp(log Y - log X))`` (stays exact when both underflow, as for tiny shapes)."""
    a, b = params
    log_x = log_standard_gamma(num, stream.lane(0, 2), a)
    log_y = log_standard_gamma(num, stream.lane(1, 2), b)
    return num.div(1.0, num.add(1.0, num.unary("Exp", num.sub(log_y, log_x))))


def _student_t(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``loc + scale z / sqrt(G / (df / 2))`` for a normal ``z`` and a gamma ``G`` of shape
    ``df / 2`` (``2 G / df`` is a chi-square deviate over its degrees of freedom)."""
    df, loc, scale = params
    half = num.mul(0.5, df)
    z = standard_normal(num, stream.lane(0, 2))
    log_g = log_standard_gamma(num, stream.lane(1, 2), half)
    ratio = num.unary("Exp", num.mul(0.5, num.sub(num.unary("Log", half), log_g)))
    return num.add(loc, num.mul(scale, num.mul(z, ratio)))


#: Below this rate Poisson draws are by inversion, from it on by PTRS (NumPy's threshold).
POISSON_INVERSION_MAX = 10.0


def _poisson_inversion(num: Num, stream: RandomStream, rate: ir.Value) -> ir.Value:
    """Sequential-search inversion (rates below :data:`POISSON_INVERSION_MAX`): the least
    ``k`` with ``u <= P(X <= k)``, one ``while_any`` loop (about ``rate + 1`` steps; one for
    tiny rates).  Elements with larger rates stop at once."""
    u = stream.uniform(0)
    p0 = num.unary("Exp", num.unary("Neg", rate))

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        k, p, cdf = state
        # Not below the cdf yet (and the terms have not underflowed, where rounding left
        # the cdf short of u).  The cdf never decreases and a zero term stays zero, so an
        # element that stops never resumes: only k needs the condition (adding it is much
        # cheaper than a Where in ONNX Runtime); the p and cdf of stopped elements run on
        # unused.
        more = body.both(body.gt(u, cdf), body.gt(p, 0.0))
        more = body.both(more, body.lt(rate, POISSON_INVERSION_MAX))
        p_next = body.mul(p, body.div(rate, body.add(k, 1.0)))
        k_next = body.add(k, body.builder.cast(more, body.dtype, "bool"))
        return [k_next, p_next, body.add(cdf, p_next)], more

    zeros = num.mul(rate, 0.0)
    return while_any(num, [zeros, p0, p0], step, 2**62, "poisson_inversion")[0]


def _poisson_ptrs(num: Num, stream: RandomStream, rate: ir.Value) -> ir.Value:
    """PTRS, the transformed rejection of Hoermann (1993) (rates from
    :data:`POISSON_INVERSION_MAX` on; acceptance above 85 %, so up to rate 1e9 and beyond
    it costs about one round).  Round ``r`` uses words ``2 r`` and ``2 r + 1``; elements with
    smaller rates are not sampled."""

    def propose(
        body: Num, inner: RandomStream, round_: ir.Value, params: list[ir.Value]
    ) -> tuple[ir.Value, ir.Value]:
        (lam,) = params
        b = body.builder
        first, second = round_words(b, round_, 2)
        slam = body.unary("Sqrt", lam)
        big_b = body.add(0.931, body.mul(2.53, slam))
        big_a = body.add(-0.059, body.mul(0.02483, big_b))
        inv_alpha = body.add(1.1239, body.div(1.1328, body.sub(big_b, 3.4)))
        v_r = body.sub(0.9277, body.div(3.6224, body.sub(big_b, 2.0)))
        centred = body.sub(inner.uniform(first, open_interval=True), 0.5)
        v = inner.uniform(second, open_interval=True)
        us = body.sub(0.5, body.unary("Abs", centred))
        k = body.unary(
            "Floor",
            body.add(
                body.mul(body.add(body.div(body.mul(2.0, big_a), us), big_b), centred),
                body.add(lam, 0.43),
            ),
        )
        quick = body.both(body.ge(us, 0.07), body.le(v, v_r))
        excluded = body.either(body.lt(k, 0.0), body.both(body.lt(us, 0.013), body.gt(v, us)))
        log_accept = body.add(
            body.unary("Log", body.mul(v, inv_alpha)),
            body.unary(
                "Neg", body.unary("Log", body.add(body.div(big_a, body.mul(us, us)), big_b))
            ),
        )

        def slow_test(values: list[ir.Value]) -> ir.Value:
            """The exact test, for the elements the quick test leaves open only (its
            gammaln costs most of a round)."""
            lam, k, log_accept = values
            log_target = body.sub(
                body.sub(body.mul(k, body.unary("Log", lam)), lam),
                gammaln64(body, body.add(k, 1.0)),
            )
            return body.le(log_accept, log_target)

        open_ = body.both(body.unary("Not", quick), body.unary("Not", excluded))
        slow = compute_where(b, open_, [lam, k, log_accept], slow_test, False)
        return k, body.either(quick, slow)

    large = num.ge(rate, POISSON_INVERSION_MAX)
    return rejection_sample(stream, [rate], propose, "poisson_rejection", where=large)


def _poisson(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    (rate,) = params
    small = num.lt(rate, POISSON_INVERSION_MAX)
    inversion = _poisson_inversion(num, stream.lane(0, 2), rate)
    return num.where(small, inversion, _poisson_ptrs(num, stream.lane(1, 2), rate))


def _negative_binomial(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Gamma-Poisson mixture: ``Poisson(G)`` for ``G`` gamma of shape ``n`` and scale
    ``(1 - p) / p`` (failures before the ``n``-th success, NumPy's convention)."""
    n, p = params
    scale = num.div(num.sub(1.0, p), p)
    rate = num.mul(scale, num.unary("Exp", log_standard_gamma(num, stream.lane(0, 2), n)))
    return _poisson(num, stream.lane(1, 2), [rate])


#: Binomial draws with ``n min(p, 1 - p)`` below this are by inversion, else by BTRS.
BINOMIAL_INVERSION_MAX = 10.0


def _binomial_inversion(num: Num, stream: RandomStream, n: ir.Value, p: ir.Value) -> ir.Value:
    """Sequential-search inversion for ``p <= 1/2`` and ``n p`` below
    :data:`BINOMIAL_INVERSION_MAX` (about ``n p + 1`` steps of one ``while_any`` loop)."""
    u = stream.uniform(0)
    ratio = num.div(p, num.sub(1.0, p))
    pmf0 = num.unary("Exp", num.mul(n, log1p(num.builder, num.unary("Neg", p), num.dtype)))
    active = num.lt(num.mul(n, p), BINOMIAL_INVERSION_MAX)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        k, pmf, cdf = state
        # As in the Poisson inversion, a stopped element never resumes (k stays, the cdf
        # does not decrease, a zero pmf stays zero): only k is conditional.
        more = body.both(body.both(body.gt(u, cdf), body.gt(pmf, 0.0)), body.lt(k, n))
        more = body.both(more, active)
        pmf_next = body.mul(pmf, body.mul(ratio, body.div(body.sub(n, k), body.add(k, 1.0))))
        k_next = body.add(k, body.builder.cast(more, body.dtype, "bool"))
        return [k_next, pmf_next, body.add(cdf, pmf_next)], more

    zeros = num.mul(n, 0.0)
    return while_any(num, [zeros, pmf0, pmf0], step, 2**62, "binomial_inversion")[0]


def _binomial_btrs(num: Num, stream: RandomStream, n: ir.Value, p: ir.Value) -> ir.Value:
    """BTRS, the transformed rejection of Hoermann (1993), for ``p <= 1/2`` and ``n p`` from
    :data:`BINOMIAL_INVERSION_MAX` on (acceptance above 80 %, about one round even at
    ``n = 1e9``).  Round ``r`` uses words ``2 r`` and ``2 r + 1``; other elements are not
    sampled."""

    def propose(
        body: Num, inner: RandomStream, round_: ir.Value, params: list[ir.Value]
    ) -> tuple[ir.Value, ir.Value]:
        trials, prob = params
        b = body.builder
        first, second = round_words(b, round_, 2)
        q = body.sub(1.0, prob)
        spq = body.unary("Sqrt", body.mul(trials, body.mul(prob, q)))
        big_b = body.add(1.15, body.mul(2.53, spq))
        big_a = body.add(body.add(-0.0873, body.mul(0.0248, big_b)), body.mul(0.01, prob))
        c = body.add(body.mul(trials, prob), 0.5)
        v_r = body.sub(0.92, body.div(4.2, big_b))
        alpha = body.mul(body.add(2.83, body.div(5.1, big_b)), spq)
        mode = body.unary("Floor", body.mul(body.add(trials, 1.0), prob))
        centred = body.sub(inner.uniform(first, open_interval=True), 0.5)
        v = inner.uniform(second, open_interval=True)
        us = body.sub(0.5, body.unary("Abs", centred))
        k = body.unary(
            "Floor",
            body.add(body.mul(body.add(body.div(body.mul(2.0, big_a), us), big_b), centred), c),
        )
        inside = body.both(body.ge(k, 0.0), body.le(k, trials))
        quick = body.both(body.ge(us, 0.07), body.le(v, v_r))
        log_accept = body.unary(
            "Log", body.div(body.mul(v, alpha), body.add(body.div(big_a, body.mul(us, us)), big_b))
        )

        def slow_test(values: list[ir.Value]) -> ir.Value:
            """The exact test, for the elements the quick test leaves open only: its four
            gammaln cost most of a round."""
            trials, prob, q, mode, k, log_accept = values

            def log_factorials(x: ir.Value) -> ir.Value:
                return body.add(
                    gammaln64(body, body.add(x, 1.0)),
                    gammaln64(body, body.add(body.sub(trials, x), 1.0)),
                )

            log_target = body.add(
                body.sub(log_factorials(mode), log_factorials(k)),
                body.mul(body.sub(k, mode), body.unary("Log", body.div(prob, q))),
            )
            return body.le(log_accept, log_target)

        open_ = body.both(inside, body.unary("Not", quick))
        slow = compute_where(b, open_, [trials, prob, q, mode, k, log_accept], slow_test, False)
        return k, body.both(inside, body.either(quick, slow))

    large = num.ge(num.mul(n, p), BINOMIAL_INVERSION_MAX)
    return rejection_sample(stream, [n, p], propose, "binomial_rejection", where=large)


def _binomial(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Draws for ``min(p, 1 - p)`` (``n - k`` when ``p > 1/2``), by inversion or BTRS."""
    n, p = params
    flipped = num.gt(p, 0.5)
    low_p = num.where(flipped, num.sub(1.0, p), p)
    small = num.lt(num.mul(n, low_p), BINOMIAL_INVERSION_MAX)
    inversion = _binomial_inversion(num, stream.lane(0, 2), n, low_p)
    k = num.where(small, inversion, _binomial_btrs(num, stream.lane(1, 2), n, low_p))
    return num.where(flipped, num.sub(n, k), k)


def _beta_binomial(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``Binomial(n, P)`` for ``P`` beta of ``(a, b)``."""
    n, a, b = params
    prob = _beta(num, stream.lane(0, 2), [a, b])
    return _binomial(num, stream.lane(1, 2), [n, prob])


#: Von Mises draws use the uniform angle below this concentration, a wrapped normal above
#: :data:`VONMISES_NORMAL_MIN` (NumPy's thresholds), Best-Fisher rejection in between.
VONMISES_UNIFORM_MAX = 1e-8
VONMISES_NORMAL_MIN = 1e6


def _vonmises(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Best and Fisher (1979) by rejection, as NumPy (acceptance above 65 %); the result is
    ``mu + angle`` wrapped to ``[-pi, pi]``."""
    mu, kappa = params

    def propose(
        body: Num, inner: RandomStream, round_: ir.Value, gathered: list[ir.Value]
    ) -> tuple[ir.Value, ir.Value]:
        (k,) = gathered
        b = body.builder
        first, second = round_words(b, round_, 2)
        r = body.add(1.0, body.unary("Sqrt", body.add(1.0, body.mul(4.0, body.mul(k, k)))))
        rho = body.div(body.sub(r, body.unary("Sqrt", body.mul(2.0, r))), body.mul(2.0, k))
        s_mid = body.div(body.add(1.0, body.mul(rho, rho)), body.mul(2.0, rho))
        s = body.where(body.lt(k, 1e-5), body.add(body.div(1.0, k), k), s_mid)
        z = body.unary("Cos", body.mul(math.pi, inner.uniform(first)))
        w = body.div(body.add(1.0, body.mul(s, z)), body.add(s, z))
        y = body.mul(k, body.sub(s, w))
        v = inner.uniform(second, open_interval=True)
        quick = body.ge(body.sub(body.mul(y, body.sub(2.0, y)), v), 0.0)
        slow = body.ge(body.add(body.unary("Log", body.div(y, v)), body.sub(1.0, y)), 0.0)
        return w, body.either(quick, slow)

    moderate = num.both(num.ge(kappa, VONMISES_UNIFORM_MAX), num.le(kappa, VONMISES_NORMAL_MIN))
    w = rejection_sample(stream.lane(0, 3), [kappa], propose, "vonmises_rejection", where=moderate)
    u = stream.lane(1, 3).uniform(0)
    # w = cos(angle) may round just outside [-1, 1].
    clipped = num.builder.op("Clip", [w, num.val(-1.0), num.val(1.0)])
    angle = acos64(num.builder, [clipped], num.dtype)
    angle = num.where(num.lt(u, 0.5), num.unary("Neg", angle), angle)
    angle = num.where(
        num.lt(kappa, VONMISES_UNIFORM_MAX), num.mul(math.pi, num.sub(num.mul(2.0, u), 1.0)), angle
    )
    wrapped_normal = num.div(standard_normal(num, stream.lane(2, 3)), num.unary("Sqrt", kappa))
    angle = num.where(num.gt(kappa, VONMISES_NORMAL_MIN), wrapped_normal, angle)
    # Wrap mu + angle to [-pi, pi] (symmetrically, as NumPy).
    total = num.add(mu, angle)
    magnitude = num.builder.op(
        "Mod", [num.add(num.unary("Abs", total), math.pi), num.val(2.0 * math.pi)], {"fmod": 1}
    )
    return num.negate_where(num.lt(total, 0.0), num.sub(magnitude, math.pi))


def _log_binomial(num: Num, a: ir.Value, k: ir.Value) -> ir.Value:
    """``log C(a, k)`` through ``gammaln``."""
    return num.sub(
        gammaln64(num, num.add(a, 1.0)),
        num.add(gammaln64(num, num.add(k, 1.0)), gammaln64(num, num.add(num.sub(a, k), 1.0))),
    )


def _hypergeometric(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Chop-down inversion from the mode: the probabilities of ``mode + 1, mode - 1,
    mode + 2, ...`` (by the ratios of neighbouring terms) are added to ``P(mode)`` (through
    ``gammaln``) until they pass ``u``: one ``while_any`` loop of up to about 9 standard
    deviations of steps, stopped by the support's ends or by terms below ``P(mode)``'s
    rounding."""
    good, bad, sample = params
    total = num.add(good, bad)
    low = num.builder.op("Max", [num.sub(sample, bad), num.val(0.0)])
    high = num.builder.op("Min", [sample, good])
    mode = num.unary(
        "Floor", num.div(num.mul(num.add(sample, 1.0), num.add(good, 1.0)), num.add(total, 2.0))
    )
    mode = num.clamp(mode, low, high)
    log_p = num.sub(
        num.add(_log_binomial(num, good, mode), _log_binomial(num, bad, num.sub(sample, mode))),
        _log_binomial(num, total, sample),
    )
    p_mode = num.unary("Exp", log_p)
    negligible = num.mul(p_mode, 2.0**-53)
    u = stream.uniform(0)
    excess = num.sub(bad, sample)

    def step(body: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        up, down, p_up, p_down, cdf, result = state
        # One term above the searched range, then one below (P(k+1) / P(k) and
        # P(k-1) / P(k) of the hypergeometric terms).
        going_up = body.both(body.gt(u, cdf), body.lt(up, high))
        ratio_up = body.div(
            body.mul(body.sub(good, up), body.sub(sample, up)),
            body.mul(body.add(up, 1.0), body.add(body.add(excess, up), 1.0)),
        )
        p_up = body.where(going_up, body.mul(p_up, ratio_up), p_up)
        up = body.add(up, body.builder.cast(going_up, body.dtype, "bool"))
        cdf = body.add(cdf, body.where(going_up, p_up, 0.0))
        result = body.where(body.both(going_up, body.le(u, cdf)), up, result)
        going_down = body.both(body.gt(u, cdf), body.gt(down, low))
        ratio_down = body.div(
            body.mul(down, body.add(excess, down)),
            body.mul(body.add(body.sub(good, down), 1.0), body.add(body.sub(sample, down), 1.0)),
        )
        p_down = body.where(going_down, body.mul(p_down, ratio_down), p_down)
        down = body.sub(down, body.builder.cast(going_down, body.dtype, "bool"))
        cdf = body.add(cdf, body.where(going_down, p_down, 0.0))
        result = body.where(body.both(going_down, body.le(u, cdf)), down, result)
        # Both ends exhausted, or both next terms below P(mode)'s rounding (the rounding of
        # the gammaln terms can leave u above every partial sum, which would otherwise walk
        # the whole support).
        open_up = body.both(body.lt(up, high), body.gt(p_up, negligible))
        open_down = body.both(body.gt(down, low), body.gt(p_down, negligible))
        more = body.both(body.gt(u, cdf), body.either(open_up, open_down))
        return [up, down, p_up, p_down, cdf, result], more

    state = [mode, mode, p_mode, p_mode, p_mode, mode]
    return while_any(num, state, step, 2**62, "hypergeometric_search")[-1]


def _pareto(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Inversion, ``scale u**(-1/b)`` (SciPy's ``pareto``: support from ``scale`` on)."""
    b, scale = params
    return num.mul(scale, num.unary("Exp", num.div(_exponential_deviate(num, stream), b)))


def _triangular(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Inversion on either side of the mode."""
    left, mode, right = params
    u = stream.uniform(0)
    width = num.sub(right, left)
    rising = num.add(left, num.unary("Sqrt", num.mul(u, num.mul(width, num.sub(mode, left)))))
    falling = num.sub(
        right, num.unary("Sqrt", num.mul(num.sub(1.0, u), num.mul(width, num.sub(right, mode))))
    )
    return num.where(num.lt(u, num.div(num.sub(mode, left), width)), rising, falling)


def _truncated_exponential(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Inversion, ``loc - scale log1p(u expm1(-b))`` (SciPy's ``truncexpon``, support
    ``[loc, loc + b scale]``)."""
    b, loc, scale = params
    tail = expm1(num.builder, num.unary("Neg", b), num.dtype)
    standard = num.unary("Neg", log1p(num.builder, num.mul(stream.uniform(0), tail), num.dtype))
    return num.add(loc, num.mul(scale, standard))


def wald_transform(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Michael, Schucany and Haas (1976), as NumPy: a root of the normal-square equation,
    chosen by a uniform (words 0-1: the normal, word 2: the choice)."""
    mean, scale = params
    z = standard_normal(num, stream)
    y = num.mul(z, z)
    mean_y = num.mul(mean, y)
    root = num.unary("Sqrt", num.add(num.mul(4.0, num.mul(scale, mean_y)), num.mul(mean_y, mean_y)))
    # mean + mean (mean_y - root) / (2 scale), without the cancellation of mean_y - root
    # (whose product with mean_y + root is -4 scale mean_y).
    x = num.sub(mean, num.div(num.mul(2.0, num.mul(mean, mean_y)), num.add(mean_y, root)))
    choose_small = num.le(stream.uniform(2), num.div(mean, num.add(mean, x)))
    return num.where(choose_small, x, num.div(num.mul(mean, mean), x))


def _uniform(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    low, high = params
    return num.add(low, num.mul(num.sub(high, low), stream.uniform(0)))


def _halfnormal(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    loc, scale = params
    return num.add(loc, num.mul(scale, num.unary("Abs", standard_normal(num, stream))))


def _lognormal(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    return num.unary("Exp", _location_scale(standard_normal)(num, stream, params))


def _exponential(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    return num.mul(params[0], _exponential_deviate(num, stream))


def _halfcauchy(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    loc, scale = params
    return num.add(loc, num.mul(scale, num.unary("Abs", _tan_half_turn(num, stream))))


def _weibull(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    return num.pow(_exponential_deviate(num, stream), num.div(1.0, params[0]))


def _bernoulli(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    hit = num.lt(stream.uniform(0), params[0])
    return num.builder.cast(hit, num.dtype, "bool")


def integers_transform(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``low + floor(u (high - low))``: uniform on ``[low, high)`` with a bias below
    ``(high - low) / 2**53``."""
    low, high = params
    return num.add(low, num.unary("Floor", num.mul(stream.uniform(0), num.sub(high, low))))


def _geometric(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Inversion: ``ceil(log(u) / log1p(-p))``, at least 1 (trials up to the first success)."""
    log_q = log1p(num.builder, num.unary("Neg", params[0]), num.dtype)
    trials = num.unary(
        "Ceil", num.div(num.unary("Log", stream.uniform(0, open_interval=True)), log_q)
    )
    return num.builder.op("Max", [trials, num.val(1.0)])


#: The RandomVariables with one value per element, by a transform of uniforms or an exact
#: rejection sampler (see each function).
TRANSFORMS: dict[type[RandomVariable], Transform] = {
    ptr.UniformRV: _uniform,
    ptr.NormalRV: _location_scale(standard_normal),
    ptr.HalfNormalRV: _halfnormal,
    ptr.LogNormalRV: _lognormal,
    ptr.ExponentialRV: _exponential,
    ptr.CauchyRV: _location_scale(_tan_half_turn),
    ptr.HalfCauchyRV: _halfcauchy,
    ptr.LaplaceRV: _location_scale(_laplace_deviate),
    ptr.LogisticRV: _location_scale(_logistic_deviate),
    ptr.GumbelRV: _location_scale(_gumbel_deviate),
    ptr.WeibullRV: _weibull,
    ptr.BernoulliRV: _bernoulli,
    ptr.IntegersRV: integers_transform,
    ptr.GeometricRV: _geometric,
    ptr.GammaRV: _gamma,
    ptr.InvGammaRV: _invgamma,
    ptr.GenGammaRV: _generalized_gamma,
    ptr.BetaRV: _beta,
    ptr.StudentTRV: _student_t,
    ptr.PoissonRV: _poisson,
    ptr.NegBinomialRV: _negative_binomial,
    ptr.BinomialRV: _binomial,
    ptr.BetaBinomialRV: _beta_binomial,
    ptr.VonMisesRV: _vonmises,
    ptr.ParetoRV: _pareto,
    ptr.TriangularRV: _triangular,
    ptr.TruncExponentialRV: _truncated_exponential,
    ptr.WaldRV: wald_transform,
    ptr.HyperGeometricRV: _hypergeometric,
}


def draw_node(
    node: Apply,
    builder: ONNXBuilder,
    shape: ir.Value,
    draws: Callable[[RandomStream], ir.Value],
    *,
    count: ir.Value | None = None,
    dtype: str = "float64",
    stream_dtype: str = "float64",
) -> list[ir.Value]:
    """The two outputs of a RandomVariable node: the next seed and the draws.

    ``draws`` gets the node's stream (over ``count`` elements, 0-d int64; by default those of
    ``shape``; its uniforms in ``stream_dtype``) and returns the flat draws in ``dtype``,
    reshaped to ``shape`` and cast to the node's dtype here.
    """
    seed = builder.input(node, 0)
    elements = _element_count(builder, shape) if count is None else count
    flat = draws(RandomStream.create(builder, seed, elements, stream_dtype))
    values = builder.op("Reshape", [flat, shape], {"allowzero": 1})
    values = builder.cast(values, variable_dtype(node.outputs[1]), dtype)
    return [builder.op("Add", [seed, builder.scalar(1, "int64")]), values]


def transform_converter(transform: Transform) -> Callable[..., Sequence[ir.Value]]:
    """The converter of a RandomVariable whose draws are ``transform`` of its parameters
    (each broadcast to the draws' shape and flattened, in the :func:`draw_dtype`)."""

    def convert(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
        shape = batch_shape(op, node, builder)
        work = draw_dtype(node, builder)
        params = [flat_param(builder, node, i, shape, work) for i in range(2, len(node.inputs))]
        return draw_node(
            node,
            builder,
            shape,
            lambda stream: transform(Num(builder, work), stream, params),
            dtype=work,
            stream_dtype=work,
        )

    return convert


for _cls, _transform in TRANSFORMS.items():
    onnx_funcify.register(_cls)(transform_converter(_transform))
    if _cls.__dict__.get("dtype") == "floatX":  # continuous: the discrete stay in float64
        FLOAT32_SAMPLERS.add(qualified_name(_cls))


@onnx_funcify.register(ptr.CategoricalRV)
def _categorical(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Inversion: the number of cumulative probabilities below ``u`` times their total (the
    probabilities need not be normalized; the last category takes any rounding excess)."""
    shape = batch_shape(op, node, builder)
    probs = builder.input(node, 2, "float64")
    categories = builder.dim(probs, -1)
    full = builder.op("Concat", [shape, categories], {"axis": 0})
    rows = builder.op("Expand", [probs, full])
    rows = builder.op(
        "Reshape", [rows, builder.op("Concat", [builder.int64s([-1]), categories], {"axis": 0})]
    )
    cdf = builder.op("CumSum", [rows, builder.scalar(1, "int64")])
    total = builder.op(
        "Slice", [cdf, builder.int64s([-1]), builder.int64s([2**62]), builder.int64s([1])]
    )
    num = Num(builder, "float64")

    def draws(stream: RandomStream) -> ir.Value:
        target = num.mul(builder.op("Unsqueeze", [stream.uniform(0), builder.int64s([1])]), total)
        below = builder.cast(num.le(cdf, target), "int64", "bool")
        index = builder.op("ReduceSum", [below, builder.int64s([1])], {"keepdims": 0})
        last = builder.op("Sub", [builder.op("Squeeze", [categories]), builder.scalar(1, "int64")])
        return builder.cast(builder.op("Min", [index, last]), "float64", "int64")

    return draw_node(node, builder, shape, draws)


@onnx_funcify.register(ptr.DirichletRV)
def _dirichlet(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Normalized gamma variates of shapes ``alpha``, in log space (a softmax of their
    logarithms), so that components with tiny ``alpha`` keep their share instead of all
    underflowing to 0/0."""
    work = draw_dtype(node, builder)
    alpha = builder.input(node, 2, work)
    categories = builder.dim(alpha, -1)
    shape = builder.op("Concat", [batch_shape(op, node, builder), categories], {"axis": 0})
    flat_alpha = builder.op("Reshape", [builder.op("Expand", [alpha, shape]), builder.int64s([-1])])
    rows = builder.op("Concat", [builder.int64s([-1]), categories], {"axis": 0})
    num = Num(builder, work)

    def draws(stream: RandomStream) -> ir.Value:
        log_gamma = builder.op("Reshape", [log_standard_gamma(num, stream, flat_alpha), rows])
        largest = builder.op("ReduceMax", [log_gamma, builder.int64s([1])], {"keepdims": 1})
        weights = num.unary("Exp", num.sub(log_gamma, largest))
        total = builder.op("ReduceSum", [weights, builder.int64s([1])], {"keepdims": 1})
        return builder.op("Reshape", [num.div(weights, total), builder.int64s([-1])])

    return draw_node(node, builder, shape, draws, dtype=work, stream_dtype=work)


@onnx_funcify.register(ptr.MvNormalRV)
def _multivariate_normal(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """``mean + L z`` with ``L`` the lower Cholesky factor of each covariance (of the
    covariance's own batch shape, broadcast by ``MatMul``) and ``z`` standard normals.

    Every ``method`` (``cholesky``, ``svd``, ``eigh``) uses the Cholesky factor: the draws have
    the same distribution, but a singular covariance (which ``svd``/``eigh`` accept) gives NaN
    draws, as PyTensor's ``Cholesky`` of it does.
    """
    work = draw_dtype(node, builder)
    mean = builder.input(node, 2, work)
    cov = builder.input(node, 3, work)
    cov_var = node.inputs[3]
    n = size_of(builder, cov, -1, cov_var.type.shape[-1])
    lower = cholesky(builder, cov, n, cov_var.type.ndim, work)
    shape = builder.op(
        "Concat", [batch_shape(op, node, builder), builder.dim(mean, -1)], {"axis": 0}
    )
    flat_mean = builder.op("Reshape", [builder.op("Expand", [mean, shape]), builder.int64s([-1])])
    columns = builder.op("Concat", [shape, builder.int64s([1])], {"axis": 0})
    num = Num(builder, work)

    def draws(stream: RandomStream) -> ir.Value:
        z = builder.op("Reshape", [standard_normal(num, stream), columns])
        scaled = builder.op("Reshape", [builder.op("MatMul", [lower, z]), builder.int64s([-1])])
        return num.add(flat_mean, scaled)

    return draw_node(node, builder, shape, draws, dtype=work, stream_dtype=work)


@dataclass(frozen=True)
class _StepCount:
    """A loop's step count for :func:`fori_loop`: 0-d int64 value and static value."""

    value: ir.Value
    static: int | None


@onnx_funcify.register(ptr.MultinomialRV)
def _multinomial(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Conditional binomials over the categories: ``x_j = Binomial(n_left, p_j / p_left)``
    for ``j < k - 1`` (one :func:`fori_loop` step each), the last category takes what is
    left.  The draw of category ``j`` uses the counters of the output elements ``(..., j)``,
    so every category draws from its own counters."""
    probs = builder.input(node, 3, "float64")
    static_k = node.inputs[3].type.shape[-1]
    categories = builder.dim(probs, -1)
    batch = batch_shape(op, node, builder)
    shape = builder.op("Concat", [batch, categories], {"axis": 0})
    rows = builder.op("Concat", [builder.int64s([-1]), categories], {"axis": 0})
    table = builder.op("Reshape", [builder.op("Expand", [probs, shape]), rows])
    trials = builder.input(node, 2, "float64")
    flat_trials = builder.op(
        "Reshape", [builder.op("Expand", [trials, batch]), builder.int64s([-1])]
    )
    steps = _StepCount(
        builder.op("Sub", [builder.op("Squeeze", [categories]), builder.scalar(1, "int64")]),
        None if static_k is None else static_k - 1,
    )

    def draws(stream: RandomStream) -> ir.Value:
        counters = [builder.op("Reshape", [word, rows]) for word in stream.counter]
        left_p = builder.op("ReduceSum", [table, builder.int64s([1])], {"keepdims": 0})

        def step(inner: ONNXBuilder, j: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
            left_n, left_p = state
            num = Num(inner, "float64")
            p_j = inner.op("Gather", [table, j], {"axis": 1})
            share = num.where(
                num.gt(left_p, 0.0),
                inner.op("Clip", [num.div(p_j, left_p), num.val(0.0), num.val(1.0)]),
                0.0,
            )
            low, high = (inner.op("Gather", [c, j], {"axis": 1}) for c in counters)
            column = replace(stream, builder=inner, counter=(low, high), count=None)
            x = _binomial(num, column, [left_n, share])
            return [num.sub(left_n, x), num.sub(left_p, p_j), x]

        (left, _), (taken,) = fori_loop(
            builder,
            steps,
            [Carry(flat_trials, "float64"), Carry(left_p, "float64")],
            [ScanOut("float64", builder.shape(flat_trials))],
            step,
            "multinomial",
        )
        columns = builder.op("Transpose", [taken], {"perm": [1, 0]})
        last = builder.op("Unsqueeze", [left, builder.int64s([1])])
        table_draws = builder.op("Concat", [columns, last], {"axis": 1})
        return builder.op("Reshape", [table_draws, builder.int64s([-1])])

    return draw_node(node, builder, shape, draws)


FLOAT32_SAMPLERS.update(qualified_name(cls) for cls in (ptr.DirichletRV, ptr.MvNormalRV))


@onnx_funcify.register(DefaultGeneratorMakerOp)
def _generator_from_seed(
    op: DefaultGeneratorMakerOp, node: Apply, builder: ONNXBuilder
) -> list[ir.Value]:
    """``default_rng(seed)``: an integer seed is the generator (an int64 seed in ONNX)."""
    return [builder.input(node, 0, "int64")]


def _without_replacement(
    op: RandomVariable, node: Apply, builder: ONNXBuilder, sample: ir.Value | None
) -> list[ir.Value]:
    """Entries of a population (``arange(a)`` for an integer ``a``, else the slices of ``a``
    along its first core axis) in the order of random keys: all of them (a permutation,
    ``sample`` None) or the first ``prod(sample)`` in the shape ``sample`` (1-D int64).

    The keys are uniforms, or, with probabilities ``p`` (the parameter after the
    population), ``-log(u) / p``: exponential variates of rates ``p``, whose order is the
    order in which drawing without replacement proportionally to ``p`` picks the entries
    (Efraimidis and Spirakis 2006).  ``TopK`` ranks them; ties of the 53-bit uniforms are
    negligible (probability ``n**2 / 2**54`` for ``n`` entries).
    """
    batch = batch_shape(op, node, builder)
    population = builder.input(node, 2)
    population_var = node.inputs[2]
    core_rank = op.ndims_params[0]
    if core_rank == 0:
        # An integer population size (the same for every batch element).
        flat = builder.op("Reshape", [population, builder.int64s([-1])])
        n = builder.op("Slice", [flat, builder.int64s([0]), builder.int64s([1])])
        n = builder.cast(n, "int64", variable_dtype(population_var))
        rest = builder.int64s([])
    else:
        core = builder.op("Shape", [population], {"start": population_var.type.ndim - core_rank})
        n = builder.op("Slice", [core, builder.int64s([0]), builder.int64s([1])])
        rest = builder.op("Slice", [core, builder.int64s([1]), builder.int64s([2**62])])
    take = n if sample is None else builder.op("ReduceProd", [sample], {"keepdims": 1})
    keys_shape = builder.op("Concat", [builder.int64s([-1]), n], {"axis": 0})
    weighted = len(op.ndims_params) == 3  # population, p, core shape
    num = Num(builder, "float64")

    def draws(stream: RandomStream) -> ir.Value:
        keys = builder.op("Reshape", [stream.uniform(0, open_interval=True), keys_shape])
        if weighted:
            p = builder.input(node, 3, "float64")
            p = builder.op("Expand", [p, builder.op("Concat", [batch, n], {"axis": 0})])
            rates = builder.op("Reshape", [p, keys_shape])
            keys = num.div(num.unary("Neg", num.unary("Log", keys)), rates)
        _, order = builder.top_k(keys, take, 1, "float64", largest=False)
        if core_rank == 0:
            return builder.op("Reshape", [order, builder.int64s([-1])])
        full = builder.op("Concat", [batch, n, rest], {"axis": 0})
        rows = builder.op("Concat", [builder.int64s([-1]), n, rest], {"axis": 0})
        data = builder.op("Reshape", [builder.op("Expand", [population, full]), rows])
        index = builder.op("Unsqueeze", [order, builder.int64s([2])])
        picked = builder.op("GatherND", [data, index], {"batch_dims": 1})
        return builder.op("Reshape", [picked, builder.int64s([-1])])

    shape = builder.op("Concat", [batch, n if sample is None else sample, rest], {"axis": 0})
    count = builder.op("Mul", [_element_count(builder, batch), builder.op("Squeeze", [n])])
    dtype = "int64" if core_rank == 0 else variable_dtype(population_var)
    return draw_node(node, builder, shape, draws, count=count, dtype=dtype)


@onnx_funcify.register(ptr.PermutationRV)
def _permutation(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """A uniformly random order of the population (see :func:`_without_replacement`)."""
    return _without_replacement(op, node, builder, None)


@onnx_funcify.register(ptr.ChoiceWithoutReplacement)
def _choice_without_replacement(
    op: RandomVariable, node: Apply, builder: ONNXBuilder
) -> list[ir.Value]:
    """The first entries of a random order of the population, weighted by ``p`` if given (see
    :func:`_without_replacement`); the core shape is the same for every batch element."""
    sample = builder.input(node, len(node.inputs) - 1, "int64")
    if node.inputs[-1].type.ndim > 1:
        # Batched core shapes are all the same (PyTensor's rule): the first one holds.
        length = builder.op("Shape", [sample], {"start": -1})
        rows = builder.op("Concat", [builder.int64s([-1]), length], {"axis": 0})
        sample = builder.op(
            "Gather",
            [builder.op("Reshape", [sample, rows]), builder.scalar(0, "int64")],
            {"axis": 0},
        )
    return _without_replacement(op, node, builder, sample)


def seed_from_generator(generator: np.random.Generator) -> np.ndarray:
    """The int64 seed (0-d array) that stands for ``generator`` in an ONNX graph.

    It is the generator's next ``integers(2**63)`` draw, taken from a copy: ``generator``
    itself is not advanced, so the same generator state always gives the same seed.
    """
    return np.asarray(copy.deepcopy(generator).integers(2**63), dtype=np.int64)


def generator_from_seed(seed: np.ndarray) -> np.random.Generator:
    """The NumPy generator that stands for the int64 ``seed`` an ONNX graph returned (the
    next state of a generator): ``numpy.random.default_rng(seed)`` (of the unsigned value)."""
    return np.random.default_rng(int(np.asarray(seed).astype(np.uint64)))
