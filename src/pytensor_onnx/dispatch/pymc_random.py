"""Converters for PyMC's own RandomVariables (``pymc.distributions``), registered when met.

Most of PyMC's distributions draw with PyTensor's basic RandomVariables, or with symbolic
random variables (``OpFromGraph`` subclasses such as ``MixtureRV``, ``CensoredRV``, the hurdle
and zero-inflated ones) whose inner graphs :mod:`pytensor_onnx.dispatch.builders` inlines.
The RandomVariables PyMC defines with a NumPy/SciPy ``rng_fn`` get a transform (or, with a
support dimension, a converter) here, built on the samplers of
:mod:`pytensor_onnx.dispatch.random`; the others are refused by name.
Registration is lazy (:func:`~pytensor_onnx.dispatch.basic.register_lazy`), so importing this
package does not import PyMC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.tensor.random.op import RandomVariable

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch._numerics import Num
from pytensor_onnx.dispatch._random import RandomStream, rejection_sample, round_words
from pytensor_onnx.dispatch.basic import (
    UnsupportedOpError,
    onnx_funcify,
    refuse_lazy,
    register_lazy,
)
from pytensor_onnx.dispatch.extra_ops import search_sorted
from pytensor_onnx.dispatch.random import (
    FLOAT32_SAMPLERS,
    Transform,
    batch_shape,
    draw_node,
    flat_param,
    integers_transform,
    standard_normal,
    transform_converter,
    wald_transform,
)
from pytensor_onnx.dispatch.scalar import expm1
from pytensor_onnx.dispatch.scalar_math import erfc64, erfcinv64

_CONTINUOUS = "pymc.distributions.continuous"
_DISCRETE = "pymc.distributions.discrete"
_MULTIVARIATE = "pymc.distributions.multivariate"


def _skew_normal(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``mu + sigma (d |u| + sqrt(1 - d**2) v)`` for normals ``u``, ``v`` and
    ``d = alpha / sqrt(1 + alpha**2)`` (Azzalini's representation)."""
    mu, sigma, alpha = params
    d = num.div(alpha, num.unary("Sqrt", num.add(1.0, num.mul(alpha, alpha))))
    u = num.unary("Abs", standard_normal(num, stream.lane(0, 2)))
    v = standard_normal(num, stream.lane(1, 2))
    spread = num.unary("Sqrt", num.sub(1.0, num.mul(d, d)))
    return num.add(mu, num.mul(sigma, num.add(num.mul(d, u), num.mul(spread, v))))


def _shifted_wald(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """PyMC's Wald: ``alpha`` plus an inverse Gaussian of mean ``mu`` and shape ``lam``."""
    mu, lam, alpha = params
    return num.add(alpha, wald_transform(num, stream, [mu, lam]))


def _rice(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``sigma |(b + z1, z2)|`` for normals ``z1``, ``z2`` (SciPy's ``rice(b, scale=sigma)``)."""
    b, sigma = params
    x = num.add(b, standard_normal(num, stream.lane(0, 2)))
    y = standard_normal(num, stream.lane(1, 2))
    return num.mul(sigma, num.unary("Sqrt", num.add(num.mul(x, x), num.mul(y, y))))


def _moyal(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """``mu - sigma log(z**2)`` for a normal ``z`` (minus the log of a chi-square(1))."""
    mu, sigma = params
    z = standard_normal(num, stream)
    return num.sub(mu, num.mul(sigma, num.unary("Log", num.mul(z, z))))


def _discrete_uniform(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Uniform on the integers ``lower .. upper`` (both included)."""
    lower, upper = params
    return integers_transform(num, stream, [lower, num.add(upper, 1.0)])


#: Truncated normal intervals whose standardized upper end (on the side of the lower tail)
#: is below ``-TRUNCNORM_TAIL`` are drawn by rejection; above it, by inversion, where the
#: normal CDF at that end is still far above the smallest normal float64 (1e-197 here).
TRUNCNORM_TAIL = 30.0


def _ndtr(num: Num, x: ir.Value) -> ir.Value:
    """The standard normal CDF, relatively accurate in the lower tail."""
    return num.mul(0.5, erfc64(num, num.mul(x, -1.0 / math.sqrt(2.0))))


def _truncnorm_tail(
    body: Num, inner: RandomStream, round_: ir.Value, gathered: list[ir.Value]
) -> tuple[ir.Value, ir.Value]:
    """One round for a standard normal on ``[alpha, beta]``, ``alpha > 0``: Robert (1995)'s
    exponential proposal of rate ``(alpha + sqrt(alpha**2 + 4)) / 2``, or, on intervals
    narrower than ``1 / alpha``, a uniform proposal (either accepts at least a third)."""
    alpha, beta = gathered
    first, second = round_words(body.builder, round_, 2)
    u = inner.uniform(first, open_interval=True)
    log_v = body.unary("Log", inner.uniform(second, open_interval=True))
    width = body.sub(beta, alpha)
    rate = body.mul(0.5, body.add(alpha, body.unary("Sqrt", body.add(body.mul(alpha, alpha), 4.0))))
    exponential = body.sub(alpha, body.div(body.unary("Log", u), rate))
    off_rate = body.sub(exponential, rate)
    accept_exponential = body.both(
        body.le(exponential, beta), body.le(log_v, body.mul(-0.5, body.mul(off_rate, off_rate)))
    )
    uniform = body.add(alpha, body.mul(u, width))
    accept_uniform = body.le(
        log_v, body.mul(-0.5, body.mul(body.sub(uniform, alpha), body.add(uniform, alpha)))
    )
    narrow = body.lt(body.mul(width, alpha), 1.0)
    return (
        body.where(narrow, uniform, exponential),
        # ONNX Runtime has no boolean Where.
        body.either(
            body.both(narrow, accept_uniform),
            body.both(body.builder.op("Not", [narrow]), accept_exponential),
        ),
    )


def _truncated_normal(num: Num, stream: RandomStream, params: list[ir.Value]) -> ir.Value:
    """Normal ``(mu, sigma)`` restricted to ``[lower, upper]``.

    With the interval standardized and, when it lies right of 0, mirrored to the left (so
    that its CDF values are small and relatively accurate), inversion of the CDF; intervals
    beyond :data:`TRUNCNORM_TAIL` standard deviations, where the CDF underflows, by exact
    rejection (:func:`_truncnorm_tail`).
    """
    mu, sigma, lower, upper = params
    a = num.div(num.sub(lower, mu), sigma)
    b = num.div(num.sub(upper, mu), sigma)
    mirrored = num.gt(a, 0.0)
    low = num.where(mirrored, num.unary("Neg", b), a)
    high = num.where(mirrored, num.unary("Neg", a), b)
    cdf_low, cdf_high = _ndtr(num, low), _ndtr(num, high)
    p = num.add(
        cdf_low,
        num.mul(stream.lane(0, 2).uniform(0, open_interval=True), num.sub(cdf_high, cdf_low)),
    )
    inverted = num.mul(-math.sqrt(2.0), erfcinv64(num, num.mul(2.0, p)))
    # Rounding may step just outside the interval.
    inverted = num.clamp(inverted, low, high)
    tail = num.lt(high, -TRUNCNORM_TAIL)
    alpha = num.where(tail, num.unary("Neg", high), TRUNCNORM_TAIL + 1.0)
    beta = num.where(tail, num.unary("Neg", low), math.inf)
    far = rejection_sample(
        stream.lane(1, 2), [alpha, beta], _truncnorm_tail, "truncnorm_tail", where=tail
    )
    standard = num.where(tail, num.unary("Neg", far), inverted)
    return num.add(mu, num.mul(sigma, num.negate_where(mirrored, standard)))


def _stick_breaking_weights(
    op: RandomVariable, node: Apply, builder: ONNXBuilder
) -> list[ir.Value]:
    """``K + 1`` weights ``beta_k prod_{j<k} (1 - beta_j)`` for ``beta_k`` Beta(1, alpha), the
    last ``prod_{j<K} (1 - beta_j)``.

    By inversion, ``log(1 - beta) = log(u) / alpha``: the products are sums of logarithms, so
    weights far down the stick are relatively accurate instead of ``1 - sum`` of the others.
    """
    shape = batch_shape(op, node, builder)
    alpha = flat_param(builder, node, 2, shape)
    k = builder.op("Reshape", [builder.input(node, 3, "int64"), builder.int64s([1])])
    sticks = builder.op("Add", [k, builder.int64s([1])])
    rows = builder.op("Concat", [builder.int64s([-1]), sticks], {"axis": 0})
    num = Num(builder, "float64")

    def draws(stream: RandomStream) -> ir.Value:
        u = builder.op("Reshape", [stream.uniform(0, open_interval=True), rows])
        log_rest = num.div(
            num.unary("Log", u), builder.op("Unsqueeze", [alpha, builder.int64s([1])])
        )
        before = builder.op("CumSum", [log_rest, builder.scalar(1, "int64")], {"exclusive": 1})
        betas = num.unary("Neg", expm1(builder, log_rest, "float64"))
        # The last stick takes what is left: its beta is 1 (its uniform is not used).
        column = builder.op(
            "Range",
            [
                builder.scalar(0, "int64"),
                builder.op("Squeeze", [sticks]),
                builder.scalar(1, "int64"),
            ],
        )
        betas = num.where(builder.op("Equal", [column, k]), 1.0, betas)
        weights = num.mul(betas, num.unary("Exp", before))
        return builder.op("Reshape", [weights, builder.int64s([-1])])

    return draw_node(node, builder, builder.op("Concat", [shape, sticks], {"axis": 0}), draws)


def _interpolated(op: RandomVariable, node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Inversion of the CDF of a piecewise-linear density on a lattice ``x`` with values
    ``pdf`` and CDF values ``cdf`` there (PyMC's ``Interpolated``, one lattice).

    A uniform ``p`` falls in segment ``i`` with ``cdf[i] < p <= cdf[i + 1]`` (a bisection);
    there the CDF is ``cdf[i] + pdf[i] t + slope t**2 / 2`` in ``t = y - x[i]``, and the
    root ``t = 2 d / (pdf[i] + sqrt(pdf[i]**2 + 2 slope d))`` for ``d = p - cdf[i]`` is
    free of cancellation for every slope (0 included).
    """
    lattice = []
    for index in (2, 3, 4):
        var = node.inputs[index]
        if any(dim != 1 for dim in var.type.shape[:-1]):
            raise UnsupportedOpError.for_node(
                node,
                "Interpolated with a batch of lattices (parameters of more than one dimension) "
                "is not converted; PyMC's own sampler does not draw it either",
            )
        lattice.append(
            builder.op("Reshape", [builder.input(node, index, "float64"), builder.int64s([-1])])
        )
    x, pdf, cdf = lattice
    shape = batch_shape(op, node, builder)
    num = Num(builder, "float64")
    static = node.inputs[4].type.shape[-1]

    def draws(stream: RandomStream) -> ir.Value:
        p = stream.uniform(0, open_interval=True)
        insertion = search_sorted(
            builder, cdf, p, side="left", dtype="float64", static_length=static
        )
        # Rounding in a CDF that ends just below 1 must not step off the lattice.
        last = builder.op("Sub", [builder.axis_length(x, 0), builder.scalar(2, "int64")])
        below = builder.op("Sub", [insertion, builder.scalar(1, "int64")])
        i = num.clamp(below, builder.scalar(0, "int64"), last)
        j = builder.op("Add", [i, builder.scalar(1, "int64")])
        x_i, x_j = (builder.op("Gather", [x, k]) for k in (i, j))
        pdf_i, pdf_j = (builder.op("Gather", [pdf, k]) for k in (i, j))
        d = num.sub(p, builder.op("Gather", [cdf, i]))
        slope = num.div(num.sub(pdf_j, pdf_i), num.sub(x_j, x_i))
        root = num.unary(
            "Sqrt",
            builder.op(
                "Max",
                [num.add(num.mul(pdf_i, pdf_i), num.mul(num.mul(2.0, slope), d)), num.val(0.0)],
            ),
        )
        t = num.div(num.mul(2.0, d), num.add(pdf_i, root))
        return num.clamp(num.add(x_i, t), x_i, x_j)

    return draw_node(node, builder, shape, draws)


#: (module, class name, transform) of the PyMC RandomVariables converted here.
TRANSFORMS: list[tuple[str, str, Transform]] = [
    (_CONTINUOUS, "SkewNormalRV", _skew_normal),
    (_CONTINUOUS, "WaldRV", _shifted_wald),
    (_CONTINUOUS, "RiceRV", _rice),
    (_CONTINUOUS, "MoyalRV", _moyal),
    (_CONTINUOUS, "TruncatedNormalRV", _truncated_normal),
    (_DISCRETE, "DiscreteUniformRV", _discrete_uniform),
]

#: (module, class name, reason) of the PyMC RandomVariables refused by name.
REFUSED: list[tuple[str, str, str]] = [
    (
        _CONTINUOUS,
        "PolyaGammaRV",
        "Polya-Gamma draws (an alternating-series sampler) have no ONNX sampler",
    ),
]


def _registrar(converter: Callable[..., Sequence[ir.Value]]) -> Callable[[type], object]:
    return lambda cls: onnx_funcify.register(cls)(converter)


for _module, _name, _transform in TRANSFORMS:
    register_lazy(_module, _name, _registrar(transform_converter(_transform)))
# The truncated normal's inverse-CDF and tail samplers use the float64 erfc/erfcinv.
FLOAT32_SAMPLERS.update(
    f"{module}.{name}"
    for module, name, _ in TRANSFORMS
    if module == _CONTINUOUS and name != "TruncatedNormalRV"
)

register_lazy(_MULTIVARIATE, "StickBreakingWeightsRV", _registrar(_stick_breaking_weights))
register_lazy(_CONTINUOUS, "InterpolatedRV", _registrar(_interpolated))

for _module, _name, _reason in REFUSED:
    refuse_lazy(
        _module, _name, f"{_reason}; draw it outside the model and pass the draws in as inputs"
    )
