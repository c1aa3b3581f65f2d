"""Converters for ``pytensor.tensor.nlinalg`` (``pytensor.tensor.linalg`` in PyTensor 3).

``MatrixInverse``, ``Det`` and ``SLogDet`` are built on the pivoted LU factorization of
:mod:`pytensor_onnx.dispatch.linalg` (ONNX Runtime has no float64 ``Det`` kernel), single and
batched.  ``BatchedDot`` becomes ``MatMul``.  Eigen- and singular-value decompositions are
refused with a reason.  ``KroneckerProduct`` is an ``OpFromGraph`` and is inlined by
:mod:`pytensor_onnx.dispatch.builders`.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor import blas

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch import linalg as la
from pytensor_onnx.dispatch.basic import onnx_funcify, optional_classes
from pytensor_onnx.dispatch.math import matmul
from pytensor_onnx.dispatch.slinalg import (
    _refuse,
    linalg_class,
    register_core_and_batched,
    square_input,
)

Values = Sequence[ir.Value]


@register_core_and_batched(linalg_class("MatrixInverse"))
def _inverse(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    eye = builder.cast(la.compare(builder, "Equal", n.rows, n.arange), dtype, "bool")
    ndim = node.inputs[0].type.ndim
    lu = la.lu_factor(builder, a, n, ndim, dtype)
    return [la.lu_solve(builder, lu, eye, n, ndim, dtype, nan_if_singular=True)]


@register_core_and_batched(linalg_class("Det"))
def _det(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    return [la.det(builder, la.lu_factor(builder, a, n, node.inputs[0].type.ndim, dtype), n, dtype)]


@register_core_and_batched(linalg_class("SLogDet"))
def _slogdet(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    sign, logabsdet = la.slogdet(
        builder, la.lu_factor(builder, a, n, node.inputs[0].type.ndim, dtype), n, dtype
    )
    return [sign, logabsdet]


def _batched_dot(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # BatchedDot multiplies matching stacks of matrices: MatMul's broadcasting case.
    return [matmul(builder, node)]


for _cls in optional_classes(blas, "BatchedDot"):
    onnx_funcify.register(_cls)(_batched_dot)

_NO_SPECTRAL = (
    "{} needs an iterative eigen/singular-value solver, which has no ONNX construction yet "
    "(Cholesky, LU, QR, solves, inverse and determinants are supported)"
)
register_core_and_batched(linalg_class("Eigh"))(_refuse(_NO_SPECTRAL.format("Eigh")))
register_core_and_batched(linalg_class("Eig"))(_refuse(_NO_SPECTRAL.format("Eig")))
register_core_and_batched(linalg_class("SVD"))(
    _refuse(_NO_SPECTRAL.format("SVD (and norm ord=2/'nuc')"))
)
register_core_and_batched(linalg_class("MatrixPinv"))(
    _refuse(_NO_SPECTRAL.format("MatrixPinv (SVD-based)"))
)
register_core_and_batched(linalg_class("Lstsq"))(_refuse(_NO_SPECTRAL.format("Lstsq (SVD-based)")))
