"""Converters for PyMC's own RandomVariables (``pymc.distributions``), registered when met.

Most of PyMC's distributions draw with PyTensor's basic RandomVariables, or with symbolic
random variables (``OpFromGraph`` subclasses such as ``MixtureRV``, ``CensoredRV``, the hurdle
and zero-inflated ones) whose inner graphs :mod:`pytensor_onnx.dispatch.builders` inlines.
The RandomVariables PyMC defines with a NumPy/SciPy ``rng_fn`` get a transform here, built
on the samplers of :mod:`pytensor_onnx.dispatch.random`; the others are refused by name.
Registration is lazy (:func:`~pytensor_onnx.dispatch.basic.register_lazy`), so importing this
package does not import PyMC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import onnx_ir as ir

from pytensor_onnx.dispatch._numerics import Num
from pytensor_onnx.dispatch._random import RandomStream
from pytensor_onnx.dispatch.basic import onnx_funcify, refuse_lazy, register_lazy
from pytensor_onnx.dispatch.random import (
    Transform,
    integers_transform,
    standard_normal,
    transform_converter,
    wald_transform,
)

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


#: (module, class name, transform) of the PyMC RandomVariables converted here.
TRANSFORMS: list[tuple[str, str, Transform]] = [
    (_CONTINUOUS, "SkewNormalRV", _skew_normal),
    (_CONTINUOUS, "WaldRV", _shifted_wald),
    (_CONTINUOUS, "RiceRV", _rice),
    (_CONTINUOUS, "MoyalRV", _moyal),
    (_DISCRETE, "DiscreteUniformRV", _discrete_uniform),
]

#: (module, class name, reason) of the PyMC RandomVariables refused by name.
REFUSED: list[tuple[str, str, str]] = [
    (
        _CONTINUOUS,
        "TruncatedNormalRV",
        "truncated normal draws (pm.Truncated of a Normal) have no ONNX sampler yet",
    ),
    (
        _CONTINUOUS,
        "PolyaGammaRV",
        "Polya-Gamma draws (an alternating-series sampler) have no ONNX sampler",
    ),
    (
        _CONTINUOUS,
        "InterpolatedRV",
        "draws from an Interpolated density have no ONNX sampler yet",
    ),
    (
        _MULTIVARIATE,
        "StickBreakingWeightsRV",
        "stick-breaking weights have no ONNX sampler yet",
    ),
]


def _registrar(converter: Callable[..., Sequence[ir.Value]]) -> Callable[[type], object]:
    return lambda cls: onnx_funcify.register(cls)(converter)


for _module, _name, _transform in TRANSFORMS:
    register_lazy(_module, _name, _registrar(transform_converter(_transform)))

for _module, _name, _reason in REFUSED:
    refuse_lazy(
        _module, _name, f"{_reason}; draw it outside the model and pass the draws in as inputs"
    )
