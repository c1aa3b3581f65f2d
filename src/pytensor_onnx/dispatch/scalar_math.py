"""Converters for ``pytensor.scalar.math``: sigmoid, softplus and the special functions.

ONNX Runtime has no float64 ``Softplus`` kernel at newer opsets and its float32 kernel
loses relative accuracy for very negative inputs, so softplus is always decomposed the
way PyTensor evaluates it.
"""

from __future__ import annotations

import onnx_ir as ir
import pytensor.scalar.math as psm

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch.scalar import log1p, register_kernel


@register_kernel(psm.Sigmoid)
def _sigmoid(builder: ONNXBuilder, xs: list[ir.Value], dtype: str) -> ir.Value:
    return builder.op("Sigmoid", xs)


def softplus(builder: ONNXBuilder, x: ir.Value, dtype: str) -> ir.Value:
    """``log(1 + exp(x))`` with PyTensor's branch points (-37, 18, 33.3)."""
    exp = builder.op("Exp", [x])
    middle = log1p(builder, exp, dtype)
    upper = builder.op("Add", [x, builder.op("Exp", [builder.op("Neg", [x])])])

    def below(bound: float) -> ir.Value:
        return builder.op("Less", [x, builder.scalar(bound, dtype)])

    result = builder.op("Where", [below(33.3), upper, x])
    result = builder.op("Where", [below(18.0), middle, result])
    return builder.op("Where", [below(-37.0), exp, result])


register_kernel(psm.Softplus)(lambda b, xs, dtype: softplus(b, xs[0], dtype))
