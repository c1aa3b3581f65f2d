"""Converters for ``pytensor.tensor.nlinalg`` (``pytensor.tensor.linalg`` in PyTensor 3).

``MatrixInverse``, ``Det`` and ``SLogDet`` are built on the pivoted LU factorization of
:mod:`pytensor_onnx.dispatch.linalg` (ONNX Runtime has no float64 ``Det`` kernel), single and
batched, and so are ``tensorinv``/``tensorsolve`` (reshaped to square matrices).
``BatchedDot`` becomes ``MatMul``.  Symmetric eigen- and singular-value decompositions
use Jacobi rotations (:mod:`pytensor_onnx.dispatch._jacobi`); general ``Eig``, ``Schur`` and
``QZ`` are refused with a reason.  ``KroneckerProduct`` is an ``OpFromGraph`` and is inlined by
:mod:`pytensor_onnx.dispatch.builders`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir
import pytensor.tensor.linalg as ptla
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op
from pytensor.tensor import blas

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch import _jacobi as jacobi
from pytensor_onnx.dispatch import linalg as la
from pytensor_onnx.dispatch._numerics import work_dtype
from pytensor_onnx.dispatch.basic import (
    Refusal,
    UnsupportedOpError,
    onnx_funcify,
    optional_classes,
)
from pytensor_onnx.dispatch.math import matmul
from pytensor_onnx.dispatch.slinalg import (
    linalg_class,
    matrix_size,
    qr_sizes,
    register_core_and_batched,
    square_input,
    symmetric_from_triangle,
)

Values = Sequence[ir.Value]


def lu_inverse(builder: ONNXBuilder, a: ir.Value, n: la.Size, ndim: int, dtype: str) -> ir.Value:
    """The inverses of square matrices ``a`` (rank ``ndim``): pivoted LU, then solves with the
    identity.  Exactly singular matrices give NaN (NumPy raises ``LinAlgError``)."""
    return la.solve_by_lu(builder, a, la.identity(builder, n, dtype), n, ndim, dtype)


@register_core_and_batched(linalg_class("MatrixInverse"))
def _inverse(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    return [lu_inverse(builder, a, n, node.inputs[0].type.ndim, dtype)]


@register_core_and_batched(linalg_class("Det"))
def _det(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    ndim = node.inputs[0].type.ndim
    return [la.det(builder, la.lu_factor(builder, a, n, ndim, dtype), n, ndim, dtype)]


@register_core_and_batched(linalg_class("SLogDet"))
def _slogdet(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    ndim = node.inputs[0].type.ndim
    sign, logabsdet = la.slogdet(builder, la.lu_factor(builder, a, n, ndim, dtype), n, ndim, dtype)
    return [sign, logabsdet]


def _batched_dot(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # BatchedDot multiplies matching stacks of matrices: MatMul's broadcasting case.
    return [matmul(builder, node)]


for _cls in optional_classes(blas, "BatchedDot"):
    onnx_funcify.register(_cls)(_batched_dot)

register_core_and_batched(linalg_class("Eig"))(
    Refusal(
        "Eig of a general (non-symmetric) matrix returns complex eigenvalues and vectors, and "
        "ONNX Runtime has no complex tensor kernels; for symmetric matrices use eigh"
    )
)


# ------------------------------------------------------------------- symmetric eigen
def spectral_dtype(builder: ONNXBuilder, node: Apply) -> str:
    """The dtype the spectral decompositions of ``node`` compute in.

    Float64: float32 inputs are decomposed in float64 and the results rounded, as NumPy's
    ``linalg`` does; float32 in float32-only exports (:func:`~._numerics.work_dtype`).
    """
    return work_dtype(builder, variable_dtype(node.outputs[0]))


#: NumPy's default ``rcond`` of ``pinv``: singular values up to this times the largest are
#: discarded.
NUMPY_PINV_RCOND = 1e-15

#: PyTensor 2.x defines the Ops in ``slinalg``/``nlinalg`` (with gradient Ops of their own);
#: PyTensor 3 in ``pytensor.tensor.linalg`` (its ``slinalg``/``nlinalg`` are deprecation shims).
_LEGACY_MODULES = (
    (
        importlib.import_module("pytensor.tensor.nlinalg"),
        importlib.import_module("pytensor.tensor.slinalg"),
    )
    if not hasattr(ptla, "Eigh")
    else (ptla, ptla)
)


def symmetric_input(
    builder: ONNXBuilder, node: Apply, index: int, n: la.Size, lower: bool
) -> ir.Value:
    """Input ``index`` in :func:`spectral_dtype`, symmetrized from its ``lower`` (upper)
    triangle."""
    a = builder.input(node, index, spectral_dtype(builder, node))
    return symmetric_from_triangle(builder, a, n, node.inputs[index].type.ndim, lower)


def diag_matrix(builder: ONNXBuilder, d: ir.Value, n: la.Size, dtype: str) -> ir.Value:
    """Diagonal matrices with diagonals ``d`` (..., n)."""
    eye = la.compare(builder, "Equal", n.rows, n.arange)
    return la.where(builder, eye, la.unsqueeze(builder, d, -1), builder.scalar(0, dtype))


def fold_to_triangle(
    builder: ONNXBuilder, g: ir.Value, n: la.Size, ndim: int, lower: bool, dtype: str
) -> ir.Value:
    """``tril(g) + triu(g, 1).T`` (``lower``) or ``triu(g) + tril(g, -1).T``.

    The gradient with respect to a matrix of which only one triangle is read.
    """
    zero = builder.scalar(0, dtype)
    keep = la.compare(builder, "GreaterOrEqual" if lower else "LessOrEqual", n.rows, n.arange)
    kept = la.where(builder, keep, g, zero)
    moved = la.transpose_last(builder, la.where(builder, keep, zero, g), ndim)
    return builder.op("Add", [kept, moved])


def eigen(
    builder: ONNXBuilder, node: Apply, lower: bool, vectors: bool
) -> tuple[ir.Value, ir.Value | None, la.Size]:
    """Eigenvalues (and vectors) of ``node``'s symmetric input, generalized when it has two.

    With ``b``, ``A v = w B v`` is reduced to ``C y = w y`` with ``B = L Lᵀ`` (Cholesky),
    ``C = L⁻¹ A L⁻ᵀ`` and ``v = L⁻ᵀ y`` (so ``vᵀ B v = I``, as LAPACK ``sygvd``).
    """
    n = matrix_size(builder, node, builder.input(node, 0))
    ndim = max(var.type.ndim for var in node.inputs)
    work = spectral_dtype(builder, node)
    a = symmetric_input(builder, node, 0, n, lower)
    if len(node.inputs) == 1:
        w, v = jacobi.symmetric_eigen(builder, a, n, ndim, work, vectors)
        return w, v, n
    b = symmetric_input(builder, node, 1, n, lower)
    factor = la.cholesky(builder, b, n, ndim, work)
    half = la.solve_triangular(builder, factor, a, n, ndim, work, lower=True)
    c = la.solve_triangular(
        builder, factor, la.transpose_last(builder, half, ndim), n, ndim, work, lower=True
    )
    c = builder.op(
        "Mul",
        [
            builder.op("Add", [c, la.transpose_last(builder, c, ndim)]),
            builder.scalar(0.5, work),
        ],
    )
    w, y = jacobi.symmetric_eigen(builder, c, n, ndim, work, vectors)
    if y is None:
        return w, None, n
    v = la.solve_triangular(builder, factor, y, n, ndim, work, lower=True, trans=True)
    return w, v, n


def _lower(op: Any) -> bool:
    """The triangle an eigen Op reads: ``lower`` in PyTensor 3, ``UPLO`` in PyTensor 2."""
    lower = getattr(op, "lower", None)
    return bool(lower) if lower is not None else op.UPLO == "L"


def _as_outputs(
    builder: ONNXBuilder,
    node: Apply | Sequence[Variable],
    values: Sequence[ir.Value],
    work: str,
) -> list[ir.Value]:
    """``values`` (in ``work``, the :func:`spectral_dtype`) cast to the dtypes of ``node``'s
    outputs (or of the given variables)."""
    outputs = node.outputs if isinstance(node, Apply) else node
    return [
        builder.cast(value, variable_dtype(out), work)
        for value, out in zip(values, outputs, strict=True)
    ]


@register_core_and_batched(linalg_class("Eigh"))
def _eigh(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    w, v, _ = eigen(builder, node, _lower(op), vectors=True)
    assert v is not None
    return _as_outputs(builder, node, [w, v], spectral_dtype(builder, node))


@register_core_and_batched(linalg_class("Eigvalsh"))
def _eigvalsh(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    w, _, _ = eigen(builder, node, op.lower, vectors=False)
    return _as_outputs(builder, node, [w], spectral_dtype(builder, node))


def _eigh_grad(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor 2's EighGrad: g = v (diag(gw) + (C∘E)ᵀ) vᵀ with C = vᵀ gv and
    # E[m, k] = 1 / (w[k] - w[m]) off the diagonal, folded onto the read triangle.
    dtype = variable_dtype(node.outputs[0])
    n = matrix_size(builder, node, builder.input(node, 0))
    w, v, gw, gv = (builder.input(node, i, dtype) for i in range(1, 5))
    ndim = node.inputs[2].type.ndim
    vt = la.transpose_last(builder, v, ndim)
    c = builder.op("MatMul", [vt, gv])
    gaps = builder.op("Sub", [la.unsqueeze(builder, w, -2), la.unsqueeze(builder, w, -1)])
    eye = la.compare(builder, "Equal", n.rows, n.arange)
    gaps = la.where(builder, eye, builder.scalar(1, dtype), gaps)
    scaled = la.where(builder, eye, builder.scalar(0, dtype), builder.op("Div", [c, gaps]))
    inner = builder.op(
        "Add", [la.transpose_last(builder, scaled, ndim), diag_matrix(builder, gw, n, dtype)]
    )
    g = builder.op("MatMul", [builder.op("MatMul", [v, inner]), vt])
    return [fold_to_triangle(builder, g, n, ndim, op.UPLO == "L", dtype)]


def _eigvalsh_grad(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor 2's EigvalshGrad: gA = v diag(gw) vᵀ, gB = -v diag(gw w) vᵀ of the generalized
    # problem, each folded onto the read triangle.
    dtype = variable_dtype(node.outputs[0])
    w, v, n = eigen(builder, node, op.lower, vectors=True)
    assert v is not None
    work = spectral_dtype(builder, node)
    w, v = builder.cast(w, dtype, work), builder.cast(v, dtype, work)
    gw = builder.input(node, 2, dtype)
    ndim = node.outputs[0].type.ndim
    vt = la.transpose_last(builder, v, ndim)

    def sandwich(weights: ir.Value) -> ir.Value:
        scaled = builder.op("Mul", [v, la.unsqueeze(builder, weights, -2)])
        return fold_to_triangle(
            builder, builder.op("MatMul", [scaled, vt]), n, ndim, op.lower, dtype
        )

    return [sandwich(gw), sandwich(builder.op("Neg", [builder.op("Mul", [gw, w])]))]


for _cls in optional_classes(_LEGACY_MODULES[0], "EighGrad"):
    register_core_and_batched(_cls)(_eigh_grad)
for _cls in optional_classes(_LEGACY_MODULES[1], "EigvalshGrad"):
    register_core_and_batched(_cls)(_eigvalsh_grad)


# ------------------------------------------------------------- singular values
@dataclass(frozen=True)
class Singular:
    """One-sided Jacobi on a matrix input, oriented tall when the static shape allows.

    ``orth`` holds ``t @ v = x`` for ``t`` = the input or (``transposed``) its transpose;
    ``rows``/``cols``/``k`` are the sizes of ``t`` and ``min(rows, cols)``; ``ndim`` is the
    input's rank and ``dtype`` the one the iteration works in.
    """

    orth: jacobi.Orthogonalized
    rows: la.Size
    cols: la.Size
    k: la.Size
    ndim: int
    transposed: bool
    dtype: str


def singular(builder: ONNXBuilder, node: Apply, a: ir.Value, vectors: bool) -> Singular:
    """One-sided Jacobi of ``a`` (``node.inputs[0]`` in :func:`spectral_dtype`).

    A wide matrix with static sizes is transposed first, so that the rotated columns are the
    shorter side (fewer rounds, and no columns that must shrink to rounding noise); with
    symbolic sizes the columns of ``a`` are rotated as they are.
    """
    ndim = node.inputs[0].type.ndim
    rows, cols, k = qr_sizes(builder, node, a)
    transposed = rows.static is not None and cols.static is not None and rows.static < cols.static
    if transposed:
        a = la.transpose_last(builder, a, ndim)
        rows, cols = cols, rows
    work = spectral_dtype(builder, node)
    orth = jacobi.orthogonalize_columns(builder, a, (rows, cols), ndim, work, vectors)
    return Singular(orth, rows, cols, k, ndim, transposed, work)


def leading(builder: ONNXBuilder, x: ir.Value, k: la.Size, axis: int) -> ir.Value:
    """The first ``k`` entries of ``x`` along ``axis``."""
    end = la.unsqueeze(builder, k.value, 0)
    return builder.op("Slice", [x, builder.int64s([0]), end, builder.int64s([axis])])


def orthonormal_completion(
    builder: ONNXBuilder,
    x: ir.Value,
    s: ir.Value,
    rows: la.Size,
    k: la.Size,
    ndim: int,
    dtype: str,
) -> ir.Value:
    """Orthogonal (..., m, m) matrices whose first ``k`` columns are ``x / s`` (``dtype``).

    Columns with ``s == 0`` (rank deficiency) and the columns beyond ``k`` are completed by
    the Householder QR of ``x / s``: ``Q`` with each of its first ``k`` columns multiplied by
    the sign of ``R``'s diagonal entry (``Q R = x / s`` with ``R`` ≈ identity where ``s > 0``).
    """
    zero = builder.scalar(0, dtype)
    one = builder.scalar(1, dtype)
    s_row = la.unsqueeze(builder, s, -2)
    positive = la.compare(builder, "Greater", s_row, zero)
    unit = la.where(
        builder, positive, builder.op("Div", [x, la.where(builder, positive, s_row, one)]), zero
    )
    qr = la.householder_qr(builder, unit, rows, k, k, ndim, dtype)
    q, r = qr.q, qr.r
    assert q is not None
    diagonal = la.diagonal(builder, leading(builder, r, k, -2), k, ndim, dtype)
    signs = la.where(
        builder, la.compare(builder, "Less", diagonal, zero), builder.op("Neg", [one]), one
    )
    # The columns beyond k keep their sign: pad the signs with ones up to m.
    rest = la.unsqueeze(builder, builder.op("Sub", [rows.value, k.value]), 0)
    signs = builder.pad_axis(signs, -1, 0, rest, rank=ndim - 1, constant=one)
    return builder.op("Mul", [q, la.unsqueeze(builder, signs, -2)])


def sorted_singular_values(builder: ONNXBuilder, svd: Singular) -> tuple[ir.Value, ir.Value]:
    """The ``k`` singular values in descending order, and the column order that sorts all."""
    count = la.unsqueeze(builder, svd.cols.value, 0)
    values, order = builder.top_k(svd.orth.s, count, -1, svd.dtype, largest=True)
    return leading(builder, values, svd.k, -1), order


@register_core_and_batched(linalg_class("SVD"))
def _svd(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    work = spectral_dtype(builder, node)
    a = builder.input(node, 0, work)
    svd = singular(builder, node, a, vectors=op.compute_uv)
    ndim = svd.ndim
    s, order = sorted_singular_values(builder, svd)
    if not op.compute_uv:
        return _as_outputs(builder, node, [s], work)
    assert svd.orth.v is not None
    x = leading(builder, jacobi.permute_columns(builder, svd.orth.x, order, ndim), svd.k, -1)
    right = jacobi.permute_columns(builder, svd.orth.v, order, ndim)
    left = orthonormal_completion(builder, x, s, svd.rows, svd.k, ndim, work)
    if not op.full_matrices:
        left, right = leading(builder, left, svd.k, -1), leading(builder, right, svd.k, -1)
    if svd.transposed:
        u, vt = right, la.transpose_last(builder, left, ndim)
    else:
        u, vt = left, la.transpose_last(builder, right, ndim)
    return _as_outputs(builder, node, [u, s, vt], work)


def pseudo_inverse_weights(
    builder: ONNXBuilder, svd: Singular, cutoff: ir.Value, dtype: str
) -> ir.Value:
    """``1 / s²`` for the column norms ``s`` of ``svd`` that are among its ``k`` largest and
    above ``cutoff * max(s)``, else 0 (the discarded singular values).

    A wide matrix with symbolic sizes is rotated as it is: its ``cols - k`` extra columns
    converge to rounding noise of the dtype, above NumPy's cutoff ``1e-15`` in float32
    (measured: a 4 x 5 ``pinv`` off by 3e9), so they are never kept.
    """
    s = svd.orth.s
    zero = builder.scalar(0, dtype)
    # The loop left ``s`` of unknown rank: its last axis is named non-negatively (see
    # :func:`~pytensor_onnx.dispatch.linalg.diagonal`).
    last = builder.int64s([svd.ndim - 2])
    largest = builder.op("ReduceMax", [s, last], {"keepdims": 1})
    values, _ = sorted_singular_values(builder, svd)
    kth = builder.op("ReduceMin", [values, last], {"keepdims": 1})
    kept = builder.op(
        "And",
        [
            la.compare(builder, "Greater", s, builder.op("Mul", [cutoff, largest])),
            la.compare(builder, "GreaterOrEqual", s, kth),
        ],
    )
    squares = builder.op("Mul", [s, s])
    one = builder.scalar(1, dtype)
    return la.where(
        builder, kept, builder.op("Div", [one, la.where(builder, kept, squares, one)]), zero
    )


def apply_pseudo_inverse(
    builder: ONNXBuilder, svd: Singular, weights: ir.Value, rhs: ir.Value | None
) -> ir.Value:
    """``pinv(a) @ rhs`` (or ``pinv(a)``) for the input ``a`` of ``svd``.

    With ``t v = x`` for ``t = a``, ``pinv(a) = v diag(weights) xᵀ``; for ``t = aᵀ``
    (``transposed``), ``pinv(a) = pinv(t)ᵀ = x diag(weights) vᵀ``.
    """
    assert svd.orth.v is not None
    left, right = (svd.orth.x, svd.orth.v) if svd.transposed else (svd.orth.v, svd.orth.x)
    right = la.transpose_last(builder, right, svd.ndim)
    if rhs is not None:
        right = builder.op("MatMul", [right, rhs])
    scaled = builder.op("Mul", [left, la.unsqueeze(builder, weights, -2)])
    return builder.op("MatMul", [scaled, right])


@register_core_and_batched(linalg_class("MatrixPinv"))
def _pinv(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    work = spectral_dtype(builder, node)
    a = builder.input(node, 0, work)
    if op.hermitian:
        # NumPy's hermitian path (eigh) reads the lower triangle.
        a = symmetric_from_triangle(
            builder, a, matrix_size(builder, node, a), node.inputs[0].type.ndim, True
        )
    svd = singular(builder, node, a, vectors=True)
    weights = pseudo_inverse_weights(builder, svd, builder.scalar(NUMPY_PINV_RCOND, work), work)
    return _as_outputs(builder, node, [apply_pseudo_inverse(builder, svd, weights, None)], work)


@onnx_funcify.register(linalg_class("Lstsq"))
def _lstsq(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # numpy.linalg.lstsq (LAPACK gelsd) in the spectral dtype: the minimum-norm solution with
    # singular values <= rcond * max(s) discarded (rcond <= 0 or >= 1 means machine precision).
    work = spectral_dtype(builder, node)
    a = builder.input(node, 0, work)
    rhs_ndim = node.inputs[1].type.ndim
    rhs = builder.input(node, 1, work)
    if rhs_ndim == 1:
        rhs = la.unsqueeze(builder, rhs, -1)
    rcond = builder.input(node, 2, work)
    eps = builder.scalar(np.finfo(work).eps / 2, work)
    usable = builder.op(
        "And",
        [
            la.compare(builder, "Greater", rcond, builder.scalar(0, work)),
            la.compare(builder, "Less", rcond, builder.scalar(1, work)),
        ],
    )
    rcond = la.where(builder, usable, rcond, eps)
    svd = singular(builder, node, a, vectors=True)
    weights = pseudo_inverse_weights(builder, svd, rcond, work)
    kept = la.compare(builder, "Greater", weights, builder.scalar(0, work))
    rank = builder.op("ReduceSum", [builder.cast(kept, "int64", "bool")], {"keepdims": 0})
    solution = apply_pseudo_inverse(builder, svd, weights, rhs)
    residual = builder.op("Sub", [rhs, builder.op("MatMul", [a, solution])])
    sums = builder.op("ReduceSumSquare", [residual, builder.int64s([0])], {"keepdims": 0})
    # NumPy returns the residual sums only for full column rank with more rows than columns.
    rows, cols = (svd.cols, svd.rows) if svd.transposed else (svd.rows, svd.cols)
    full = builder.op(
        "And",
        [
            la.compare(builder, "Equal", rank, cols.value),
            la.compare(builder, "Greater", rows.value, cols.value),
        ],
    )
    count = la.where(builder, full, builder.dim(sums, 0), builder.int64s([0]))
    sums = builder.op("Slice", [sums, builder.int64s([0]), count, builder.int64s([0])])
    if rhs_ndim == 1:
        solution = builder.op("Squeeze", [solution, builder.int64s([-1])])
    values, _ = sorted_singular_values(builder, svd)
    out_solution, out_sums, out_values = _as_outputs(
        builder, [node.outputs[0], node.outputs[1], node.outputs[3]], [solution, sums, values], work
    )
    out_rank = builder.cast(rank, variable_dtype(node.outputs[2]), "int64")
    return [out_solution, out_sums, out_rank, out_values]


# ------------------------------------------------------------------ tensor inverse/solve
def float_output(node: Apply) -> str:
    """The float dtype of ``node``'s output; refuse integer outputs.

    PyTensor types ``tensorinv``/``tensorsolve`` of integer tensors as integer but NumPy
    returns floats, so the declared type cannot hold the result.
    """
    dtype = variable_dtype(node.outputs[0])
    if dtype not in ("float32", "float64"):
        raise UnsupportedOpError.for_node(
            node, f"{type(node.op).__name__} with output dtype {dtype} (NumPy returns floats)"
        )
    return dtype


def static_product(dims: Sequence[int | None]) -> int | None:
    """The product of ``dims`` if all are known, else ``None``."""
    known = [d for d in dims if d is not None]
    return int(np.prod(known, dtype=np.int64)) if len(known) == len(dims) else None


def dims_product(builder: ONNXBuilder, x: ir.Value, start: int, end: int | None) -> ir.Value:
    """The product of ``x``'s dims ``start:end`` as a 1-element int64 value."""
    attributes = {"start": start} if end is None else {"start": start, "end": end}
    dims = builder.op("Shape", [x], attributes)
    return builder.op("ReduceProd", [dims, builder.int64s([0])], {"keepdims": 1})


def as_square(
    builder: ONNXBuilder, a: ir.Value, rows: ir.Value, static: int | None
) -> tuple[ir.Value, la.Size]:
    """``a`` reshaped to a (rows, rows) matrix, and its size (``static`` if known)."""
    square = builder.op("Reshape", [a, builder.op("Concat", [rows, rows], {"axis": 0})])
    return square, la.size_of(builder, square, -1, static)


@onnx_funcify.register(linalg_class("TensorInv"))
def _tensor_inv(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # numpy.linalg.tensorinv: a (I..., J...) with ind = len(I) is inverted as the matrix
    # (prod(J), prod(I)) and the inverse reshaped to (J..., I...).
    dtype = float_output(node)
    shape = node.inputs[0].type.shape
    ind = op.ind
    if not 0 < ind < len(shape):
        raise UnsupportedOpError.for_node(
            node, f"tensorinv with ind={ind} on a {len(shape)}-d tensor (needs 0 < ind < ndim)"
        )
    rotated = shape[ind:] + shape[:ind]
    declared = node.outputs[0].type.shape
    if any(d is not None and d != r for d, r in zip(declared, rotated, strict=True)):
        # PyTensor 2.38 gives the result the input's type, shape (I..., J...).
        raise UnsupportedOpError.for_node(
            node,
            f"tensorinv: PyTensor types the result with static shape {declared} but NumPy "
            f"returns shape {rotated}; give the input unknown dims",
        )
    rows_static, cols_static = static_product(shape[ind:]), static_product(shape[:ind])
    if rows_static is not None and cols_static is not None and rows_static != cols_static:
        raise UnsupportedOpError.for_node(
            node, f"tensorinv of a non-square ({rows_static} x {cols_static}) tensor"
        )
    a = builder.input(node, 0, dtype)
    square, n = as_square(
        builder, a, dims_product(builder, a, ind, None), rows_static or cols_static
    )
    inverse = lu_inverse(builder, square, n, 2, dtype)
    out_shape = builder.op(
        "Concat",
        [builder.op("Shape", [a], {"start": ind}), builder.op("Shape", [a], {"end": ind})],
        {"axis": 0},
    )
    return [builder.op("Reshape", [inverse, out_shape])]


@onnx_funcify.register(linalg_class("TensorSolve"))
def _tensor_solve(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # numpy.linalg.tensorsolve: a (B..., Q...) with B = b's shape (after moving `axes` of a
    # to the end) is solved as the matrix (prod(Q), prod(Q)) against b raveled; x has shape Q.
    dtype = float_output(node)
    a_ndim, b_ndim = node.inputs[0].type.ndim, node.inputs[1].type.ndim
    if a_ndim - b_ndim != 2:
        raise UnsupportedOpError.for_node(
            node,
            f"tensorsolve of a {a_ndim}-d by a {b_ndim}-d tensor: the solution has "
            f"{a_ndim - b_ndim} dims but PyTensor always types it as a matrix",
        )
    order = list(range(a_ndim))
    for axis in op.axes or ():
        if not 0 <= axis < a_ndim:
            # NumPy's list.remove fails on negative axes.
            raise UnsupportedOpError.for_node(node, f"tensorsolve with axes={op.axes}")
        order.remove(axis)
        order.append(axis)
    a = builder.input(node, 0, dtype)
    if order != list(range(a_ndim)):
        a = builder.op("Transpose", [a], {"perm": order})
    a_shape = [node.inputs[0].type.shape[i] for i in order]
    q_shape = builder.op("Shape", [a], {"start": b_ndim})
    static = static_product(a_shape[b_ndim:])
    if static is None:
        static = static_product(node.inputs[1].type.shape)
    square, n = as_square(builder, a, dims_product(builder, a, b_ndim, None), static)
    rhs = builder.op("Reshape", [builder.input(node, 1, dtype), builder.int64s([-1, 1])])
    x = la.solve_by_lu(builder, square, rhs, n, 2, dtype)
    return [builder.op("Reshape", [x, q_shape])]


# --------------------------------------------------------------------- refused: Schur, QZ
register_core_and_batched(linalg_class("Schur"))(
    Refusal(
        "the real Schur decomposition needs the Hessenberg QR algorithm with shifts and "
        "deflation (LAPACK gees), a data-dependent iteration that is not constructed in ONNX"
    )
)
register_core_and_batched(linalg_class("QZ"))(
    Refusal(
        "the generalized Schur (QZ) decomposition needs the Hessenberg-triangular QZ "
        "iteration with shifts and deflation (LAPACK gges), which is not constructed in ONNX"
    )
)
