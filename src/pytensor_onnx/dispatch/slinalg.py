"""Converters for ``pytensor.tensor.slinalg`` (``pytensor.tensor.linalg`` in PyTensor 3).

Cholesky, triangular and general solves, ``cho_solve``, LU, QR, Sylvester equations (so the
Lyapunov solvers), discrete algebraic Riccati equations, ``block_diag`` and ``expm``, as
single matrices and batched through ``Blockwise``; the algorithms are in
:mod:`pytensor_onnx.dispatch.linalg`.
The Op classes live in ``pytensor.tensor.linalg`` in PyTensor 3 and in
``pytensor.tensor.slinalg``/``nlinalg`` in PyTensor 2.38 (see :func:`linalg_class`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import onnx_ir as ir
import pytensor.tensor.linalg as ptla
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor import subtensor

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch import _tridiagonal
from pytensor_onnx.dispatch import linalg as la
from pytensor_onnx.dispatch._numerics import work_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify, optional_classes
from pytensor_onnx.dispatch.blockwise import onnx_funcify_blockwise
from pytensor_onnx.dispatch.scan import blockwise_loop

Values = Sequence[ir.Value]
Converter = Callable[[Any, Apply, ONNXBuilder], Values]


def linalg_class(name: str) -> type:
    """The linear-algebra Op class ``name`` of the installed PyTensor.

    PyTensor 3 exports every class from ``pytensor.tensor.linalg`` (its ``slinalg`` and
    ``nlinalg`` are deprecation shims); PyTensor 2.38 defines them in those two modules.
    """
    if hasattr(ptla, name):
        return getattr(ptla, name)
    for module in ("pytensor.tensor.slinalg", "pytensor.tensor.nlinalg"):
        found = getattr(importlib.import_module(module), name, None)
        if found is not None:
            return found
    raise AttributeError(f"PyTensor has no linear-algebra Op {name}")


def register_core_and_batched(*op_classes: type) -> Callable[[Converter], Converter]:
    """Register a converter for the Op classes and for ``Blockwise`` nodes around them.

    The constructions of :mod:`pytensor_onnx.dispatch.linalg` broadcast over leading
    dimensions, so one converter serves both (it receives the core Op either way).
    """

    def decorator(convert: Converter) -> Converter:
        for cls in op_classes:
            onnx_funcify.register(cls)(convert)
            onnx_funcify_blockwise.register(cls)(convert)
        return convert

    return decorator


def matrix_size(builder: ONNXBuilder, node: Apply, x: ir.Value, index: int = 0) -> la.Size:
    """The :class:`~pytensor_onnx.dispatch.linalg.Size` of the matrices ``node.inputs[index]``."""
    shape = node.inputs[index].type.shape
    static = shape[-1] if shape[-1] is not None else shape[-2]
    return la.size_of(builder, x, -1, static)


def square_input(
    builder: ONNXBuilder, node: Apply, index: int = 0, output: int = 0
) -> tuple[ir.Value, la.Size, str]:
    """Input ``index`` cast to the dtype of output ``output``, its size and that dtype."""
    dtype = variable_dtype(node.outputs[output])
    x = builder.input(node, index, dtype)
    return x, matrix_size(builder, node, x, index), dtype


def as_matrix_rhs(
    builder: ONNXBuilder, node: Apply, b_ndim: int, dtype: str
) -> tuple[ir.Value, int]:
    """The right-hand side ``node.inputs[1]`` as a stack of (n, m) matrices, and the rank
    of the solution in that form."""
    b = builder.input(node, 1, dtype)
    ndim = node.outputs[0].type.ndim
    if b_ndim == 1:
        return la.unsqueeze(builder, b, -1), ndim + 1
    return b, ndim


def from_matrix_rhs(builder: ONNXBuilder, x: ir.Value, b_ndim: int) -> ir.Value:
    """Undo :func:`as_matrix_rhs` on a solution."""
    return builder.op("Squeeze", [x, builder.int64s([-1])]) if b_ndim == 1 else x


def reading_triangle(builder: ONNXBuilder, node: Apply, a: ir.Value, lower: bool) -> ir.Value:
    """``a`` if ``lower`` else its transpose, so the referenced triangle is the lower one."""
    return a if lower else la.transpose_last(builder, a, node.inputs[0].type.ndim)


@register_core_and_batched(linalg_class("Cholesky"))
def _cholesky(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    ndim = node.inputs[0].type.ndim
    factor = la.cholesky(builder, reading_triangle(builder, node, a, op.lower), n, ndim, dtype)
    return [reading_triangle(builder, node, factor, op.lower)]


@register_core_and_batched(linalg_class("SolveTriangular"))
def _solve_triangular(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    b, ndim = as_matrix_rhs(builder, node, op.b_ndim, dtype)
    x = la.solve_triangular(
        builder, a, b, n, ndim, dtype, lower=op.lower, unit_diagonal=op.unit_diagonal
    )
    return [from_matrix_rhs(builder, x, op.b_ndim)]


def cholesky_solve(
    builder: ONNXBuilder,
    factor: ir.Value,
    b: ir.Value,
    n: la.Size,
    ndim: int,
    dtype: str,
    *,
    lower: bool,
) -> ir.Value:
    """Solve ``A x = b`` from the Cholesky ``factor`` of ``A`` (lower ``L`` or upper ``U``).

    Like LAPACK ``potrs``, a zero on the factor's diagonal is not checked (inf/NaN follow).
    """
    # A = L L^T: solve L y = b, then L^T x = y;  A = U^T U: solve U^T y = b, then U x = y.
    y = la.solve_triangular(
        builder, factor, b, n, ndim, dtype, lower=lower, trans=not lower, nan_if_singular=False
    )
    return la.solve_triangular(
        builder, factor, y, n, ndim, dtype, lower=lower, trans=lower, nan_if_singular=False
    )


@register_core_and_batched(linalg_class("CholeskySolve"))
def _cho_solve(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    factor, n, dtype = square_input(builder, node)
    b, ndim = as_matrix_rhs(builder, node, op.b_ndim, dtype)
    x = cholesky_solve(builder, factor, b, n, ndim, dtype, lower=op.lower)
    return [from_matrix_rhs(builder, x, op.b_ndim)]


def symmetric_from_triangle(
    builder: ONNXBuilder, a: ir.Value, n: la.Size, ndim: int, lower: bool
) -> ir.Value:
    """The symmetric matrices whose ``lower`` (or upper) triangle is that of ``a``."""
    mirrored = la.transpose_last(builder, a, ndim)
    keep = la.compare(builder, "GreaterOrEqual" if lower else "LessOrEqual", n.rows, n.arange)
    return la.where(builder, keep, a, mirrored)


def solve_tridiagonal(
    builder: ONNXBuilder, a: ir.Value, b: ir.Value, n: la.Size, ndims: tuple[int, int], dtype: str
) -> ir.Value:
    """``solve(a, b, assume_a="tridiagonal")`` for stacks of matrices ``a`` and ``b`` of
    ranks ``ndims``.

    The three diagonals are gathered from the flattened matrices (offsets ``i (n + 1) + n``,
    ``i (n + 1)``, ``i (n + 1) + 1``; nothing else is read), factored as LAPACK ``gttrf``
    and solved as ``gttrs`` in O(n).  An exactly zero pivot (``gttrf``'s ``info > 0``) makes
    that system's solution NaN, as for the other ``assume_a``.
    """
    flat_shape = builder.op(
        "Concat", [builder.op("Shape", [a], {"end": -2}), builder.int64s([-1])], {"axis": 0}
    )
    flat = builder.op("Reshape", [a, flat_shape])
    size = builder.op("Mul", [n.value, n.value])
    stride = builder.op("Add", [n.value, builder.scalar(1, "int64")])
    dl, d, du = (
        builder.op("Gather", [flat, builder.op("Range", [start, size, stride])], {"axis": -1})
        for start in (n.value, builder.scalar(0, "int64"), builder.scalar(1, "int64"))
    )
    a_ndim, b_ndim = ndims
    factors = _tridiagonal.factor(builder, dl, d, du, n.value, n.static, a_ndim - 1, dtype)
    x = _tridiagonal.solve(builder, factors, b, n.value, n.static, b_ndim, dtype, transposed=False)
    zero_pivot = la.compare(builder, "Equal", factors.d, builder.scalar(0, dtype))
    return la.nan_where(builder, la.any_true(builder, zero_pivot, dtype), x, dtype)


@register_core_and_batched(linalg_class("Solve"))
def _solve(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    b, x_ndim = as_matrix_rhs(builder, node, op.b_ndim, dtype)
    ndim = node.inputs[0].type.ndim
    assume_a = op.assume_a
    if assume_a == "pos":
        a = reading_triangle(builder, node, a, op.lower)
        factor = la.cholesky(builder, a, n, ndim, dtype)
        x = cholesky_solve(builder, factor, b, n, x_ndim, dtype, lower=True)
        return [from_matrix_rhs(builder, x, op.b_ndim)]
    if assume_a == "tridiagonal":
        x = solve_tridiagonal(builder, a, b, n, (ndim, x_ndim), dtype)
        return [from_matrix_rhs(builder, x, op.b_ndim)]
    if assume_a in ("sym", "her"):
        a = symmetric_from_triangle(builder, a, n, ndim, op.lower)
    elif assume_a not in ("gen", "banded"):
        raise UnsupportedOpError.for_node(node, f"Solve with assume_a={assume_a!r}")
    # "sym" (LAPACK sytrf, Bunch-Kaufman) and "banded" are solved with pivoted LU here:
    # the same solution up to rounding.
    x = la.solve_by_lu(builder, a, b, n, ndim, dtype, solution_ndim=x_ndim)
    return [from_matrix_rhs(builder, x, op.b_ndim)]


@register_core_and_batched(linalg_class("LUFactor"))
def _lu_factor(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    a, n, dtype = square_input(builder, node)
    ndim = node.inputs[0].type.ndim
    lu = la.lu_factor(builder, a, n, ndim, dtype)
    # PyTensor fills the factorization of an exactly singular matrix with NaN (getrf info > 0).
    packed = la.nan_where(builder, la.singular(builder, lu, n, ndim, dtype), lu.packed, dtype)
    return [packed, builder.cast(lu.pivots, variable_dtype(node.outputs[1]), "int64")]


@register_core_and_batched(linalg_class("LU"))
def _lu(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # The first output may be integer row indices; the factors have the float dtype.
    a, n, dtype = square_input(builder, node, output=1)
    lu = la.lu_factor(builder, a, n, node.inputs[0].type.ndim, dtype)
    lower, upper = la.lu_parts(builder, lu.packed, n, dtype)
    # A = P L U with P[perm[i], i] = 1, i.e. A[r] = (L U)[inverse[r]].
    inverse = la.invert_permutation(builder, lu.perm, n)
    if op.permute_l:
        return [la.permute_rows(builder, lower, inverse, node.inputs[0].type.ndim), upper]
    if op.p_indices:
        return [builder.cast(inverse, variable_dtype(node.outputs[0]), "int64"), lower, upper]
    hits = la.compare(builder, "Equal", la.unsqueeze(builder, lu.perm, -2), n.rows)
    return [builder.cast(hits, variable_dtype(node.outputs[0]), "bool"), lower, upper]


@register_core_and_batched(linalg_class("PivotToPermutations"))
def _pivot_to_permutations(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    pivots = builder.input(node, 0, "int64")
    static = node.inputs[0].type.shape[-1]
    n = la.size_of(builder, pivots, -1, static)
    perm = la.pivots_to_permutation(builder, pivots, n, node.inputs[0].type.ndim)
    if not op.inverse:
        perm = la.invert_permutation(builder, perm, n)
    return [builder.cast(perm, variable_dtype(node.outputs[0]), "int64")]


#: Where the tridiagonal LU Ops live: PyTensor 3, then 2.38.
_TRIDIAGONAL = (
    "pytensor.tensor.linalg.solvers.tridiagonal",
    "pytensor.tensor._linalg.solve.tridiagonal",
)


def _tridiagonal_order(
    builder: ONNXBuilder, node: Apply, d: ir.Value
) -> tuple[ir.Value, int | None]:
    """The order ``n`` of the tridiagonal matrices of a node whose input 1 is the diagonal."""
    static = node.inputs[1].type.shape[-1]
    value = builder.axis_length(d, -1)
    return value, static


@register_core_and_batched(
    *(cls for module in _TRIDIAGONAL for cls in optional_classes(module, "LUFactorTridiagonal"))
)
def _lu_factor_tridiagonal(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    dl, d, du = (builder.input(node, i, dtype) for i in range(3))
    n, static = _tridiagonal_order(builder, node, d)
    lu = _tridiagonal.factor(builder, dl, d, du, n, static, node.outputs[1].type.ndim, dtype)
    ipiv = builder.cast(lu.ipiv, variable_dtype(node.outputs[4]), "int64")
    return [lu.dl, lu.d, lu.du, lu.du2, ipiv]


@register_core_and_batched(
    *(
        cls
        for module in _TRIDIAGONAL
        for cls in optional_classes(module, "SolveLUFactorTridiagonal")
    )
)
def _solve_lu_factor_tridiagonal(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    dl, d, du, du2 = (builder.input(node, i, dtype) for i in range(4))
    n, static = _tridiagonal_order(builder, node, d)
    ipiv = builder.input(node, 4, "int64")
    lu = _tridiagonal.TridiagonalLU(dl, d, du, du2, ipiv)
    b = builder.input(node, 5, dtype)
    ndim = node.outputs[0].type.ndim
    if op.b_ndim == 1:
        b, ndim = la.unsqueeze(builder, b, -1), ndim + 1
    x = _tridiagonal.solve(builder, lu, b, n, static, ndim, dtype, transposed=op.transposed)
    return [from_matrix_rhs(builder, x, op.b_ndim)]


#: Where the linear-control Ops (Sylvester and Lyapunov solvers) live: PyTensor 3, then 2.38.
_LINEAR_CONTROL = (
    "pytensor.tensor.linalg.solvers.linear_control",
    "pytensor.tensor._linalg.solve.linear_control",
)


@register_core_and_batched(
    *(cls for module in _LINEAR_CONTROL for cls in optional_classes(module, "SolveSylvester"))
)
def _solve_sylvester(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor (as SciPy) solves A X + X B = Q by Bartels-Stewart on the real Schur forms of
    # A and B, which ONNX cannot build (see the refusal of Schur).  The equation is linear in
    # X: with row-major vectorization it is the system (A kron I_n + I_m kron B^T) vec(X) =
    # vec(Q) of order m n, solved by pivoted LU.  Same solution, backward stable, but
    # O((m n)^3) work instead of O(m^3 + n^3).  The Lyapunov solvers (continuous, and
    # discrete by the bilinear method) are Sylvester equations inside PyTensor's own graphs.
    dtype = variable_dtype(node.outputs[0])
    a, b, q = (builder.input(node, i, dtype) for i in range(3))
    if any(var.type.ndim > 2 for var in node.inputs):
        a, b, q = broadcast_batches(builder, [a, b, q])
    m, n = matrix_size(builder, node, a, 0), matrix_size(builder, node, b, 1)
    axes = builder.int64s
    # K[..., i, j, k, l] = A[..., i, k] [j == l] + [i == k] B[..., l, j]
    a_term = builder.op(
        "Mul",
        [
            builder.op("Unsqueeze", [a, axes([-3, -1])]),
            builder.op("Unsqueeze", [la.identity(builder, n, dtype), axes([0, 2])]),
        ],
    )
    b_transposed = la.transpose_last(builder, b, node.outputs[0].type.ndim)
    b_term = builder.op(
        "Mul",
        [
            builder.op("Unsqueeze", [la.identity(builder, m, dtype), axes([1, 3])]),
            builder.op("Unsqueeze", [b_transposed, axes([-4, -2])]),
        ],
    )
    kron = builder.merge_dims(builder.merge_dims(builder.op("Add", [a_term, b_term]), -4, -2), -2)
    rhs = builder.op("Unsqueeze", [builder.merge_dims(q, -2), axes([-1])])
    static = None if m.static is None or n.static is None else m.static * n.static
    order = la.size_of(builder, kron, -1, static)
    ndim = node.outputs[0].type.ndim
    x = la.solve_by_lu(builder, kron, rhs, order, ndim, dtype)
    return [builder.op("Reshape", [x, builder.shape(q)], {"allowzero": 1})]


@register_core_and_batched(
    *(cls for module in _LINEAR_CONTROL for cls in optional_classes(module, "SolveDiscreteARE"))
)
def _solve_discrete_are(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor (as SciPy) takes the stable deflating subspace of a symplectic pencil from the
    # QZ decomposition, which ONNX cannot build; the doubling algorithm converges to the same
    # stabilizing solution.
    dtype = variable_dtype(node.outputs[0])
    matrices = [builder.input(node, i, dtype) for i in range(4)]
    if any(var.type.ndim > 2 for var in node.inputs):
        matrices = broadcast_batches(builder, matrices)
    m = matrix_size(builder, node, matrices[0])
    return [la.discrete_riccati(builder, matrices, m, node.outputs[0].type.ndim, dtype)]


def qr_sizes(builder: ONNXBuilder, node: Apply, a: ir.Value) -> tuple[la.Size, la.Size, la.Size]:
    """Row count, column count and ``min(rows, columns)`` of the input of a QR node."""
    m_static, n_static = node.inputs[0].type.shape[-2:]
    m = la.size_of(builder, a, -2, m_static)
    n = la.size_of(builder, a, -1, n_static)
    if m_static is not None and n_static is not None:
        k_static: int | None = min(m_static, n_static)
        k = la.size_of(builder, a, -1, k_static)
    else:
        value = builder.op("Min", [m.value, n.value])
        arange = builder.op(
            "Range", [builder.scalar(0, "int64"), value, builder.scalar(1, "int64")]
        )
        k = la.Size(value, None, arange, la.unsqueeze(builder, arange, 1))
    return m, n, k


@register_core_and_batched(linalg_class("QR"))
def _qr(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    m_static, n_static = node.inputs[0].type.shape[-2:]
    if op.mode == "raw" and m_static is not None and m_static != n_static:
        # PyTensor 2.38 and 3.3 type raw's packed array (M, M) and R (M, N) but compute
        # (M, N) and (min(M, N), N): the model's declared output shapes would be wrong.
        raise UnsupportedOpError.for_node(
            node,
            "QR mode='raw' with a static row count M that is not statically equal to the "
            "column count N: PyTensor types the outputs (M, M) and (M, N) but computes "
            "(M, N) and (min(M, N), N); give the input an unknown row count",
        )
    dtype = variable_dtype(node.outputs[0])
    a = builder.input(node, 0, dtype)
    m, n, k = qr_sizes(builder, node, a)
    qr = la.householder_qr(
        builder,
        a,
        m,
        n,
        k,
        node.inputs[0].type.ndim,
        dtype,
        want_q=op.mode in ("full", "economic"),
        want_tau=op.mode == "raw",
        pivoting=op.pivoting,
    )
    # geqp3's column order, 0-based, in PyTensor's int32.
    pivots = []
    if qr.perm is not None:
        pivots.append(builder.cast(qr.perm, variable_dtype(node.outputs[-1]), "int64"))
    if op.mode == "r":
        return [qr.r, *pivots]
    if op.mode == "full" and qr.q is not None:
        return [qr.q, qr.r, *pivots]
    # economic and raw: R[..., :k, :], like SciPy
    start = builder.int64s([0])
    end = builder.op("Unsqueeze", [k.value, builder.int64s([0])])
    r = builder.op("Slice", [qr.r, start, end, builder.int64s([-2])])
    if op.mode == "raw" and qr.tau is not None:
        return [qr.packed, qr.tau, r, *pivots]
    if op.mode == "economic" and qr.q is not None:
        return [builder.op("Slice", [qr.q, start, end, builder.int64s([-1])]), r, *pivots]
    raise UnsupportedOpError.for_node(node, f"QR mode {op.mode!r}")


def _batched_take_rows(core_op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    """``Blockwise`` of ``x[idx]`` with one integer vector ``idx`` (rows picked per batch).

    PyTensor's rewrite that reuses one LU factorization for several solves (``lu_solve``)
    permutes the right-hand sides this way, batched when the solve is.  Other advanced
    indexing (e.g. of vectorized PyMC mixtures) runs the core converter in a loop over the
    batch.
    """
    x_var, idx_var = node.inputs[0], node.inputs[-1]
    batch = node.op.batch_ndim(node)
    idx_list = getattr(core_op, "idx_list", (0,))
    if (
        len(node.inputs) != 2
        or tuple(idx_list) != (0,)
        or idx_var.type.ndim != batch + 1
        or not str(idx_var.type.dtype).startswith(("int", "uint"))
    ):
        return blockwise_loop(node, builder)
    core_ndim = x_var.type.ndim - batch
    x = builder.input(node, 0)
    idx = builder.input(node, 1, "int64")
    ones = builder.int64s([1] * core_ndim)
    x = builder.op(
        "Expand",
        [x, builder.op("Concat", [builder.op("Shape", [idx], {"end": -1}), ones], {"axis": 0})],
    )
    target = builder.op(
        "Concat",
        [builder.op("Shape", [x], {"end": batch}), builder.op("Shape", [idx], {"start": -1})],
        {"axis": 0},
    )
    idx = builder.op("Expand", [idx, target])
    rows = builder.dim(x, batch)
    negative = la.compare(builder, "Less", idx, builder.scalar(0, "int64"))
    idx = la.where(builder, negative, builder.op("Add", [idx, rows]), idx)
    return [builder.op("GatherND", [x, la.unsqueeze(builder, idx, -1)], {"batch_dims": batch})]


for _cls in optional_classes(subtensor, "AdvancedSubtensor", "AdvancedSubtensor1"):
    onnx_funcify_blockwise.register(_cls)(_batched_take_rows)


def broadcast_batches(builder: ONNXBuilder, values: Sequence[ir.Value]) -> list[ir.Value]:
    """Stacks of matrices ``values`` expanded to their common (broadcast) batch shape."""
    batch = la.batch_shape(builder, [(x, 2) for x in values])
    return [la.expand_batch(builder, x, batch, 2) for x in values]


@register_core_and_batched(linalg_class("BlockDiagonal"))
def _block_diagonal(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    # Each block gets zero columns left and right (the widths of the other blocks), and the
    # padded blocks are stacked along the rows.
    dtype = variable_dtype(node.outputs[0])
    blocks = [builder.input(node, i, dtype) for i in range(len(node.inputs))]
    if any(var.type.ndim > 2 for var in node.inputs):
        blocks = broadcast_batches(builder, blocks)
    widths = [builder.op("Shape", [x], {"start": -1}) for x in blocks]
    # (ONNX Sum has no integer types.)
    total = builder.op("ReduceSum", [builder.op("Concat", widths, {"axis": 0})], {"keepdims": 1})
    rank = node.outputs[0].type.ndim
    before = builder.int64s([0])
    padded = []
    for x, width in zip(blocks, widths, strict=True):
        after = builder.op("Sub", [total, builder.op("Add", [before, width])])
        pads = builder.axis_pads(rank, -1, before, after)
        padded.append(builder.typed_op("Pad", [x, pads], dtype, data=[0]))
        before = builder.op("Add", [before, width])
    return [builder.op("Concat", padded, {"axis": -2})]


@register_core_and_batched(linalg_class("Expm"))
def _expm(op: Any, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    if dtype not in ("float32", "float64"):
        # PyTensor 2.38 types expm of an integer matrix as integer but returns floats.
        raise UnsupportedOpError.for_node(
            node, f"Expm with output dtype {dtype}: PyTensor computes floats (SciPy's expm)"
        )
    # Computed in float64 (float32 results rounded from it), in float32 in float32-only
    # exports.
    work = work_dtype(builder, dtype)
    a = builder.input(node, 0, work)
    n = matrix_size(builder, node, a)
    result = la.expm(builder, a, n, node.inputs[0].type.ndim, work)
    return [builder.cast(result, dtype, work)]
