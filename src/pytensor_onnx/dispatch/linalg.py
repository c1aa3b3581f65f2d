"""Dense linear-algebra algorithms built from plain ONNX operators.

ONNX has no Cholesky, triangular solve, LU or QR operator, so these functions build them
from ``Gather``/``MatMul``/``Where`` steps, one step per column (or row).  Every function
works on stacks of matrices: the leading (batch) dimensions of the inputs broadcast as in
NumPy, so the same construction serves a core Op and its ``Blockwise``.

Each step touches O(n²) elements with a few vectorized nodes (a matrix-vector ``MatMul`` or
a broadcast rank-1 update), so an n-by-n factorization costs O(n³) flops in n steps.  The steps
are *unrolled* when the matrix size is static and at most
:data:`~pytensor_onnx.dispatch._loop.UNROLL_MAX`; otherwise they
run in an ONNX ``Loop`` whose iteration number is the column index.  Column (row) ``k`` is
read with ``Gather`` and written back with a ``Where`` on a one-hot mask, so every value in
the loop keeps its shape.

The step order and the pivoting rule follow LAPACK (``potrf``, ``trtrs``, ``getrf`` with
partial pivoting by largest magnitude, first index on ties, ``geqrf`` Householder
reflectors with the ``dlarfg`` sign convention), so results agree with SciPy/NumPy to
rounding error (LAPACK's blocked kernels sum in a different order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch import _blocked
from pytensor_onnx.dispatch._blocked import LUResult, permute_rows
from pytensor_onnx.dispatch._loop import Carry, ScanOut, fori_loop, while_any
from pytensor_onnx.dispatch._numerics import Num

#: Block size of the blocked Cholesky factorization.
BLOCK = 32
#: Static sizes above this are factored/solved by recursive halving
#: (:mod:`pytensor_onnx.dispatch._blocked`) down to blocks of at most this size, which take
#: the column-step algorithms.
RECURSION_BASE = 64
#: Static LU factorizations are halved recursively down to panels of at most this many
#: columns, which take one step per column.
LU_RECURSION_BASE = 64
#: Static triangular systems above this size are solved in blocks of this many rows, with
#: all diagonal blocks inverted in one loop (:mod:`pytensor_onnx.dispatch._blocked`).
SOLVE_BLOCK = 32


@dataclass(frozen=True)
class Size:
    """A matrix dimension: its 0-d int64 value, its index helpers, and its static length.

    Attributes
    ----------
    value
        The length as a 0-d int64 value.
    static
        The length if known when exporting, else ``None``.
    arange
        ``[0, 1, ..., n-1]`` (int64, shape ``(n,)``): indexes the last axis.
    rows
        The same as a column, shape ``(n, 1)``: indexes the second-to-last axis.
    """

    value: ir.Value
    static: int | None
    arange: ir.Value
    rows: ir.Value


def size_of(builder: ONNXBuilder, x: ir.Value, axis: int, static: int | None) -> Size:
    """The :class:`Size` of ``x`` along ``axis`` (``static`` if known)."""
    if static is not None:
        value = builder.scalar(static, "int64")
        arange = builder.const(np.arange(static, dtype=np.int64))
    else:
        value = builder.axis_length(x, axis)
        arange = builder.op(
            "Range", [builder.scalar(0, "int64"), value, builder.scalar(1, "int64")]
        )
    rows = builder.op("Unsqueeze", [arange, builder.int64s([1])])
    return Size(value, static, arange, rows)


def unstack_to(builder: ONNXBuilder, stacked: ir.Value, ndim: int, axis: int) -> ir.Value:
    """Move the first axis of ``stacked`` (rank ``ndim``) to position ``axis`` (negative)."""
    order = list(range(1, ndim))
    order.insert(ndim + axis, 0)
    return builder.op("Transpose", [stacked], {"perm": order})


def reverse_first(builder: ONNXBuilder, x: ir.Value) -> ir.Value:
    """``x[::-1]`` along the first axis: a ``Gather`` of ``n-1, ..., 0`` (tract cannot
    slice with a step along a dimension of unknown length).

    The indices are ``(n - 1) - arange(n)``, not a ``Range`` down to -1: ONNX Runtime
    rewrites a ``Gather`` of a ``Range`` into a ``Slice``, which reads the -1 as the last
    index and returns nothing.
    """
    length = builder.op("Squeeze", [builder.op("Shape", [x], {"end": 1}), builder.int64s([0])])
    one = builder.scalar(1, "int64")
    arange = builder.op("Range", [builder.scalar(0, "int64"), length, one])
    index = builder.op("Sub", [builder.op("Sub", [length, one]), arange])
    return builder.op("Gather", [x, index])


# ------------------------------------------------------------------------ helpers
def take(builder: ONNXBuilder, x: ir.Value, k: ir.Value, axis: int) -> ir.Value:
    """``x`` at index ``k`` (0-d) along ``axis``; the axis is removed."""
    return builder.op("Gather", [x, k], {"axis": axis})


def unsqueeze(builder: ONNXBuilder, x: ir.Value, axis: int) -> ir.Value:
    """``x`` with a new length-1 axis at ``axis``."""
    return builder.op("Unsqueeze", [x, builder.int64s([axis])])


def where(builder: ONNXBuilder, cond: ir.Value, a: ir.Value, b: ir.Value) -> ir.Value:
    """``cond ? a : b`` with NumPy broadcasting (NaN-safe masking, unlike multiplication)."""
    return builder.op("Where", [cond, a, b])


def compare(builder: ONNXBuilder, op_type: str, a: ir.Value, b: ir.Value) -> ir.Value:
    """A broadcasting comparison (``Equal``, ``Less``, ``Greater``, ...)."""
    return builder.op(op_type, [a, b])


def identity(builder: ONNXBuilder, n: Size, dtype: str) -> ir.Value:
    """The (n, n) identity matrix of ``dtype``."""
    return builder.cast(compare(builder, "Equal", n.rows, n.arange), dtype, "bool")


def identity_like(builder: ONNXBuilder, x: ir.Value, n: Size, dtype: str) -> ir.Value:
    """Identity matrices of size ``n`` with the batch dimensions of ``x``."""
    eye = identity(builder, n, dtype)
    return builder.op("Expand", [eye, broadcast_shape(builder, x, eye)])


def diagonal(builder: ONNXBuilder, x: ir.Value, n: Size, ndim: int, dtype: str) -> ir.Value:
    """The diagonals of a stack of square matrices ``x`` of rank ``ndim``, shape ``(..., n)``.

    The reduced axis is written as ``ndim - 1``: onnxruntime-node/-web return an empty input
    unchanged from a reduction over a negative axis, and inside loop bodies the optimizer
    cannot rewrite it (ranks are unknown there).
    """
    eye = compare(builder, "Equal", n.rows, n.arange)
    masked = where(builder, eye, x, builder.scalar(0, dtype))
    return builder.op("ReduceSum", [masked, builder.int64s([ndim - 1])], {"keepdims": 0})


def triangle(builder: ONNXBuilder, x: ir.Value, n: Size, lower: bool, dtype: str) -> ir.Value:
    """The lower (or upper) triangle of square matrices ``x``, the rest set to zero."""
    keep = compare(builder, "GreaterOrEqual" if lower else "LessOrEqual", n.rows, n.arange)
    return where(builder, keep, x, builder.scalar(0, dtype))


def any_true(builder: ONNXBuilder, flags: ir.Value, dtype: str) -> ir.Value:
    """Whether any of ``flags`` (bool, shape ``(..., n)``) is set, shape ``(..., 1, 1)``."""
    count = builder.op(
        "ReduceMax", [builder.cast(flags, dtype, "bool"), builder.int64s([-1])], {"keepdims": 1}
    )
    return unsqueeze(builder, compare(builder, "Greater", count, builder.scalar(0, dtype)), -1)


def nan_where(builder: ONNXBuilder, bad: ir.Value, x: ir.Value, dtype: str) -> ir.Value:
    """``x`` with every matrix whose ``bad`` flag (shape ``(..., 1, 1)``) is set filled with NaN.

    NaN or -0 (which leaves every value, signed zeros included, unchanged) is chosen per
    matrix and added to ``x``: ONNX Runtime runs that ``Add`` in half the time of a ``Where``
    broadcasting the flag over ``x``.
    """
    poison = where(builder, bad, builder.scalar(np.nan, dtype), builder.scalar(-0.0, dtype))
    return builder.op("Add", [x, poison])


def outer_product(builder: ONNXBuilder, u: ir.Value, v: ir.Value) -> ir.Value:
    """``u[..., :, None] * v[..., None, :]`` as a ``MatMul`` (a rank-1 GEMM).

    ``Mul`` would do, but ONNX's shape-inference data propagation rejects a broadcasting
    ``Mul`` of a column by a row when it knows both inputs' values (onnx 1.23).
    """
    return builder.op("MatMul", [unsqueeze(builder, u, -1), unsqueeze(builder, v, -2)])


def zeros_like(builder: ONNXBuilder, x: ir.Value, dtype: str) -> ir.Value:
    """Zeros of the shape of ``x`` (without reading ``x``'s values: NaN-safe)."""
    return builder.op("Expand", [builder.scalar(0, dtype), builder.op("Shape", [x])])


def broadcast_batch(builder: ONNXBuilder, b: ir.Value, a: ir.Value, a_core_ndim: int) -> ir.Value:
    """``b`` broadcast against the batch dimensions of ``a`` (its core dims excluded)."""
    batch = builder.op("Shape", [a], {"end": -a_core_ndim})
    ones = builder.int64s([1, 1])
    return builder.op("Expand", [b, builder.op("Concat", [batch, ones], {"axis": 0})])


def batch_shape(builder: ONNXBuilder, values: Sequence[tuple[ir.Value, int]]) -> ir.Value:
    """The broadcast batch shape (1-D int64) of ``(value, number of core axes)`` pairs: a
    scalar zero expanded to each batch shape, summed."""
    zeros = [
        builder.op("ConstantOfShape", [builder.op("Shape", [x], {"end": -core})])
        for x, core in values
    ]
    return builder.op("Shape", [builder.op("Sum", zeros)])


def expand_batch(builder: ONNXBuilder, x: ir.Value, batch: ir.Value, core: int) -> ir.Value:
    """``x`` (with ``core`` core axes) broadcast to the batch shape ``batch``."""
    shape = builder.op("Concat", [batch, builder.int64s([1] * core)], {"axis": 0})
    return builder.op("Expand", [x, shape])


def broadcast_shape(builder: ONNXBuilder, a: ir.Value, core: ir.Value) -> ir.Value:
    """The shape of ``a``'s batch dimensions followed by ``core``'s (matrix) shape."""
    batch = builder.op("Shape", [a], {"end": -2})
    return builder.op("Concat", [batch, builder.op("Shape", [core])], {"axis": 0})


def transpose_last(builder: ONNXBuilder, x: ir.Value, ndim: int) -> ir.Value:
    """Swap the last two axes of a rank-``ndim`` value."""
    perm = [*range(ndim - 2), ndim - 1, ndim - 2]
    return builder.op("Transpose", [x], {"perm": perm})


# ---------------------------------------------------------------------- Cholesky
def cholesky(builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str) -> ir.Value:
    """The lower Cholesky factor of symmetric positive-definite matrices ``a`` (rank ``ndim``).

    Only the lower triangle of ``a`` is read.  Static sizes use recursive halving
    (:func:`~pytensor_onnx.dispatch._blocked.recursive_cholesky`) down to blocks of at most
    :data:`RECURSION_BASE` that take the unblocked algorithm (:func:`cholesky_unblocked`);
    symbolic sizes use the blocked loop (:func:`cholesky_blocked`).  Matrices that are not
    positive definite come out all-NaN, as PyTensor's ``Cholesky`` returns them.
    """
    zero = builder.scalar(0, dtype)
    if n.static is not None:

        def base(b: ONNXBuilder, x: ir.Value, size: int) -> ir.Value:
            return cholesky_unblocked(b, x, size_of(b, x, -1, size), ndim, dtype)

        def solve(b: ONNXBuilder, tri: ir.Value, rhs: ir.Value, size: int) -> ir.Value:
            k = size_of(b, tri, -1, size)
            return solve_triangular(b, tri, rhs, k, ndim, dtype, lower=True, nan_if_singular=False)

        lower = _blocked.recursive_cholesky(builder, a, n.static, ndim, RECURSION_BASE, base, solve)
    else:
        lower = cholesky_blocked(builder, a, n, ndim, dtype)
    failed = builder.op(
        "Not", [compare(builder, "Greater", diagonal(builder, lower, n, ndim, dtype), zero)]
    )
    return nan_where(builder, any_true(builder, failed, dtype), lower, dtype)


def cholesky_unblocked(
    builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str, *, unroll: bool = False
) -> ir.Value:
    """Right-looking outer-product Cholesky (LAPACK ``potf2``), one column per step.

    Column ``k`` of the factor is the working matrix's column ``k`` divided by the square
    root of its diagonal entry, followed by the rank-1 update ``W -= l l^T``.  Only the
    lower triangle is read; failures show as NaN or non-positive diagonal entries.
    """
    zero = builder.scalar(0, dtype)

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (work,) = state
        column = take(b, work, k, -1)
        root = b.op("Sqrt", [unsqueeze(b, take(b, column, k, -1), -1)])
        below = where(b, compare(b, "Greater", n.arange, k), b.op("Div", [column, root]), zero)
        factor_column = where(b, compare(b, "Equal", n.arange, k), root, below)
        outer = outer_product(b, factor_column, factor_column)
        return [b.op("Sub", [work, outer]), factor_column]

    column_shape = builder.op("Shape", [a], {"end": -1})
    _, (columns,) = fori_loop(
        builder,
        n,
        [Carry(a, dtype)],
        [ScanOut(dtype, column_shape)],
        step,
        "cholesky",
        unroll=unroll,
    )
    return unstack_to(builder, columns, ndim, -1)


@dataclass(frozen=True)
class IdentityPadding:
    """Square matrices padded with an identity block to a multiple of :data:`BLOCK` rows.

    Attributes
    ----------
    matrix
        The padded matrices (..., N, N).
    value
        ``N`` as a 0-d int64 value.
    count
        The number of blocks ``N / BLOCK`` (only its ``value`` is meaningful).
    size
        ``N``'s :class:`Size` (``arange`` and ``rows`` over the padded axes).
    blocks
        The positions of each block, ``arange(N)`` as a ``(N / BLOCK, BLOCK)`` table.
    """

    matrix: ir.Value
    value: ir.Value
    count: Size
    size: Size
    blocks: ir.Value


@dataclass(frozen=True)
class Block:
    """One block of :data:`BLOCK` positions of a padded axis, read in a loop step.

    Its positions come from a table by the step number, not from ``step * BLOCK``: a
    ``Gather`` keeps every block's length static, and tract's ``Scan`` optimizer
    mis-shapes the arithmetic it moves out of the body when the step number feeds it.

    Attributes
    ----------
    index
        The block's positions, shape ``(BLOCK,)``.
    first
        Its first position, 0-d.
    start, stop
        Its first and one-past-last positions, shape ``(1,)``.
    """

    index: ir.Value
    first: ir.Value
    start: ir.Value
    stop: ir.Value

    @classmethod
    def at(cls, builder: ONNXBuilder, table: ir.Value, j: ir.Value) -> Block:
        """Row ``j`` (0-d int64) of a table of blocks (:attr:`IdentityPadding.blocks`)."""
        index = builder.op("Gather", [table, j])
        first = builder.op("Gather", [index, builder.scalar(0, "int64")])
        start = unsqueeze(builder, first, 0)
        return cls(index, first, start, builder.op("Add", [start, builder.int64s([BLOCK])]))

    def take(self, builder: ONNXBuilder, x: ir.Value, axis: int) -> ir.Value:
        """The block's entries of ``x`` along the negative ``axis``."""
        return builder.op("Gather", [x, self.index], {"axis": axis})


def place_block(
    builder: ONNXBuilder, block: ir.Value, start: ir.Value, big: Size, axis: int
) -> ir.Value:
    """``block`` (:data:`BLOCK` long along the negative ``axis``) spread over ``big``'s
    positions: position ``r`` holds the block's entry ``r - start``, clamped to the block.

    Only positions ``start .. start + BLOCK - 1`` are meaningful; callers mask the rest.
    A ``Gather``, where a ``Pad`` by ``start`` would depend on the step (tract needs
    constant pads).
    """
    offset = builder.op("Sub", [big.arange, start])
    index = builder.op(
        "Clip", [offset, builder.scalar(0, "int64"), builder.scalar(BLOCK - 1, "int64")]
    )
    return builder.op("Gather", [block, index], {"axis": axis})


def _identity_padding(
    builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str
) -> IdentityPadding:
    """``a`` padded to a multiple of :data:`BLOCK` with an identity block (see the class)."""
    nb = BLOCK
    block = builder.scalar(nb, "int64")
    # At least one block, so that every loop step has a block to read (an empty matrix is
    # factored as one identity block, then cut back to nothing).
    count = builder.op(
        "Max",
        [
            builder.op(
                "Div", [builder.op("Add", [n.value, builder.scalar(nb - 1, "int64")]), block]
            ),
            builder.scalar(1, "int64"),
        ],
    )
    padded = builder.op("Mul", [count, block])
    zero, one = builder.scalar(0, "int64"), builder.scalar(1, "int64")
    extra = builder.op("Sub", [padded, n.value])
    arange = builder.op("Range", [zero, padded, one])
    big = Size(padded, None, arange, unsqueeze(builder, arange, 1))
    # [[a, 0], [0, I]], assembled by Concat (tract mis-evaluated a Where of an identity
    # mask over the padded matrix: the padding's diagonal came out 0).
    pad = unsqueeze(builder, extra, 0)
    corner_range = builder.op("Range", [zero, extra, one])
    corner = Size(extra, None, corner_range, unsqueeze(builder, corner_range, 1))
    batch = builder.op("Shape", [a], {"end": -2})
    left = builder.op(
        "ConstantOfShape",
        [builder.op("Concat", [batch, pad, unsqueeze(builder, n.value, 0)], {"axis": 0})],
        {"value": ir.Tensor(np.zeros(1, dtype=dtype))},
    )
    right = builder.op(
        "Expand",
        [identity(builder, corner, dtype), builder.op("Concat", [batch, pad, pad], {"axis": 0})],
    )
    bottom = builder.op("Concat", [left, right], {"axis": -1})
    matrix = builder.op("Concat", [builder.append_zeros(a, pad, -1, dtype), bottom], {"axis": -2})
    # Not a Reshape of `arange`: ONNX Runtime's shape inference of a Loop body containing
    # it once refused the model ("incompatible shapes").
    firsts = builder.op("Mul", [builder.op("Range", [zero, count, one]), block])
    blocks = builder.op("Add", [unsqueeze(builder, firsts, 1), builder.int64s(list(range(nb)))])
    # Only the count's value is used by fori_loop; its index helpers are never read.
    return IdentityPadding(matrix, padded, Size(count, None, arange, big.rows), big, blocks)


def cholesky_blocked(builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str) -> ir.Value:
    """Blocked right-looking Cholesky (LAPACK ``potrf``) with :data:`BLOCK`-column panels.

    The matrix is symmetrized from its lower triangle and padded with an identity block to
    a multiple of the block size (its factor is the factor of ``a`` padded the same way).
    Each ``Scan`` step factors the diagonal block (unrolled :func:`cholesky_unblocked`),
    solves for the panel below it (unrolled :func:`solve_triangular`) and applies the
    trailing update ``W -= P P^T`` as one ``MatMul``, so the O(n³) work runs in GEMMs.
    """
    nb = BLOCK
    lower_part = compare(builder, "GreaterOrEqual", n.rows, n.arange)
    sym = where(builder, lower_part, a, transpose_last(builder, a, ndim))
    padding = _identity_padding(builder, sym, n, ndim, dtype)
    padded, big = padding.value, padding.size
    small = size_of(builder, a, -1, nb)
    zero = builder.scalar(0, dtype)

    def step(b: ONNXBuilder, j: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (work,) = state
        block = Block.at(b, padding.blocks, j)
        start, stop = block.start, block.stop
        panel = block.take(b, work, -1)
        diag_block = block.take(b, panel, -2)
        factor = cholesky_unblocked(b, diag_block, small, ndim, dtype, unroll=True)
        solved = solve_triangular(
            b,
            factor,
            transpose_last(b, panel, ndim),
            small,
            ndim,
            dtype,
            lower=True,
            nan_if_singular=False,
            unroll=True,
        )
        below = transpose_last(b, solved, ndim)
        placed = place_block(b, factor, start, big, -2)
        in_block = b.op(
            "And",
            [compare(b, "GreaterOrEqual", big.rows, start), compare(b, "Less", big.rows, stop)],
        )
        column_block = where(
            b, in_block, placed, where(b, compare(b, "Less", big.rows, start), zero, below)
        )
        update = b.op("MatMul", [column_block, transpose_last(b, column_block, ndim)])
        return [b.op("Sub", [work, update]), column_block]

    panel_shape = builder.op(
        "Concat",
        [
            builder.op("Shape", [a], {"end": -2}),
            unsqueeze(builder, padded, 0),
            builder.int64s([nb]),
        ],
        {"axis": 0},
    )
    _, (panels,) = fori_loop(
        builder,
        padding.count,
        [Carry(padding.matrix, dtype)],
        [ScanOut(dtype, panel_shape)],
        step,
        "cholesky_blocks",
        any_count=True,
        float_sizes=True,
    )
    # (blocks, ..., N, nb) -> (..., N, blocks, nb) -> (..., N, N), then drop the padding.
    order = [*range(1, ndim), 0, ndim]
    columns = builder.op("Transpose", [panels], {"perm": order})
    full_shape = builder.op(
        "Concat",
        [
            builder.op("Shape", [a], {"end": -2}),
            unsqueeze(builder, padded, 0),
            unsqueeze(builder, padded, 0),
        ],
        {"axis": 0},
    )
    lower = builder.op("Reshape", [columns, full_shape], {"allowzero": 1})
    end = unsqueeze(builder, n.value, 0)
    zero_start = builder.int64s([0, 0])
    return builder.op(
        "Slice",
        [
            lower,
            zero_start,
            builder.op("Concat", [end, end], {"axis": 0}),
            builder.int64s([-2, -1]),
        ],
    )


# ------------------------------------------------------------- triangular solve
def solve_triangular(
    builder: ONNXBuilder,
    a: ir.Value,
    b: ir.Value,
    n: Size,
    ndim: int,
    dtype: str,
    *,
    lower: bool,
    trans: bool = False,
    unit_diagonal: bool = False,
    nan_if_singular: bool = True,
    unroll: bool = False,
) -> ir.Value:
    """Solve ``op(a) @ x = b`` for triangular ``a`` (..., n, n) and ``b`` (..., n, m).

    ``op(a)`` is ``a`` or (``trans``) its transpose; only the ``lower`` (or upper) triangle
    of ``a`` is read, and its diagonal is taken as ones with ``unit_diagonal``.  ``ndim`` is
    the rank of the solution (``b`` broadcast against ``a``'s batch dimensions).  Row ``k``
    of ``x`` is the residual's row ``k`` divided by ``op(a)[k, k]``; the residual then loses
    ``op(a)[:, k] x[k]`` (a rank-1 update), forward for lower systems and backward for upper
    ones.  Unless ``unroll``, static sizes above :data:`SOLVE_BLOCK` are solved block by
    block with inverted diagonal blocks (:func:`~pytensor_onnx.dispatch._blocked.blocked_solve`)
    and symbolic sizes in blocks (:func:`_solve_triangular_blocked`).  With ``nan_if_singular``,
    systems with an exact zero on the diagonal come out all-NaN (LAPACK ``trtrs`` reports
    them to PyTensor, which fills the result with NaN).
    """
    effective_lower = lower != trans
    zero = builder.scalar(0, dtype)
    b = broadcast_batch(builder, b, a, 2)
    if not unroll and n.static is not None and n.static > SOLVE_BLOCK:
        tri, tri_lower = (transpose_last(builder, a, ndim), not lower) if trans else (a, lower)
        nb = SOLVE_BLOCK
        inverses = _blocked.diagonal_block_inverses(
            builder, tri, n.static, ndim, nb, dtype, lower=tri_lower, unit_diagonal=unit_diagonal
        )
        x = _blocked.blocked_solve(builder, tri, b, n.static, nb, inverses, lower=tri_lower)
        return (
            x
            if unit_diagonal or not nan_if_singular
            else _nan_if_zero_pivot(builder, a, x, n, ndim, dtype)
        )
    if not unroll and n.static is None:
        x = _solve_triangular_blocked(
            builder, a, b, n, ndim, dtype, lower=lower, trans=trans, unit_diagonal=unit_diagonal
        )
        return (
            x
            if unit_diagonal or not nan_if_singular
            else _nan_if_zero_pivot(builder, a, x, n, ndim, dtype)
        )
    last = builder.op("Sub", [n.value, builder.scalar(1, "int64")])

    def step(bld: ONNXBuilder, i: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (residual,) = state
        k = i if effective_lower else bld.op("Sub", [last, i])
        column = take(bld, a, k, -2 if trans else -1)
        x_k = take(bld, residual, k, -2)
        if not unit_diagonal:
            x_k = bld.op("Div", [x_k, unsqueeze(bld, take(bld, column, k, -1), -1)])
        after = compare(bld, "Greater" if effective_lower else "Less", n.arange, k)
        coeffs = where(bld, after, column, zero)
        outer = outer_product(bld, coeffs, x_k)
        return [bld.op("Sub", [residual, outer]), x_k]

    row_shape = builder.op(
        "Concat",
        [builder.op("Shape", [b], {"end": -2}), builder.op("Shape", [b], {"start": -1})],
        {"axis": 0},
    )
    _, (rows,) = fori_loop(
        builder, n, [Carry(b, dtype)], [ScanOut(dtype, row_shape)], step, "trsolve", unroll=unroll
    )
    if not effective_lower:
        rows = reverse_first(builder, rows)
    x = unstack_to(builder, rows, ndim, -2)
    return (
        x
        if unit_diagonal or not nan_if_singular
        else _nan_if_zero_pivot(builder, a, x, n, ndim, dtype)
    )


def _nan_if_zero_pivot(
    builder: ONNXBuilder, a: ir.Value, x: ir.Value, n: Size, ndim: int, dtype: str
) -> ir.Value:
    """``x`` with the solutions of systems whose matrix (rank ``ndim``) has a zero diagonal
    entry set to NaN."""
    zero = builder.scalar(0, dtype)
    singular = compare(builder, "Equal", diagonal(builder, a, n, ndim, dtype), zero)
    return nan_where(builder, any_true(builder, singular, dtype), x, dtype)


def _solve_triangular_blocked(
    builder: ONNXBuilder,
    a: ir.Value,
    b: ir.Value,
    n: Size,
    ndim: int,
    dtype: str,
    *,
    lower: bool,
    trans: bool,
    unit_diagonal: bool,
) -> ir.Value:
    """Blocked substitution (LAPACK ``trsm``) with :data:`BLOCK`-row blocks.

    ``a`` is padded with an identity block and ``b`` (already broadcast) with zero rows to a
    multiple of the block size.  Each ``Scan`` step solves one diagonal block (unrolled
    :func:`solve_triangular`) and removes its contribution from the remaining rows with one
    GEMM; blocks run forward for lower systems and backward for upper ones.
    """
    nb = BLOCK
    if trans:
        a, lower = transpose_last(builder, a, ndim), not lower
    padding = _identity_padding(builder, a, n, ndim, dtype)
    big = padding.size
    small = size_of(builder, a, -1, nb)
    zero = builder.scalar(0, dtype)
    extra_rows = unsqueeze(builder, builder.op("Sub", [padding.value, n.value]), 0)
    rhs = builder.append_zeros(b, extra_rows, -2, dtype)

    # The matrix's column panels (blocks, ..., N, nb), read by the steps as a sequence.
    split = builder.op(
        "Concat",
        [
            builder.op("Shape", [padding.matrix], {"end": -1}),
            unsqueeze(builder, padding.count.value, 0),
            builder.int64s([nb]),
        ],
        {"axis": 0},
    )
    panels = builder.op(
        "Transpose",
        [builder.op("Reshape", [padding.matrix, split], {"allowzero": 1})],
        {"perm": [ndim - 1, *range(ndim - 1), ndim]},
    )
    # Blocks run forward for lower systems and backward for upper ones.
    table = padding.blocks
    if not lower:
        table, panels = reverse_first(builder, table), reverse_first(builder, panels)

    def step(bld: ONNXBuilder, i: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        residual, columns = state
        block = Block.at(bld, table, i)
        start, stop = block.start, block.stop
        diagonal_block = block.take(bld, columns, -2)
        rows = block.take(bld, residual, -2)
        x_block = solve_triangular(
            bld,
            diagonal_block,
            rows,
            small,
            ndim,
            dtype,
            lower=lower,
            unit_diagonal=unit_diagonal,
            nan_if_singular=False,
            unroll=True,
        )
        after = (
            compare(bld, "GreaterOrEqual", big.rows, stop)
            if lower
            else compare(bld, "Less", big.rows, start)
        )
        coefficients = where(bld, after, columns, zero)
        residual = bld.op("Sub", [residual, bld.op("MatMul", [coefficients, x_block])])
        return [residual, x_block]

    batch = builder.op("Shape", [rhs], {"end": -2})
    width = builder.op("Shape", [rhs], {"start": -1})
    block_shape = builder.op("Concat", [batch, builder.int64s([nb]), width], {"axis": 0})
    _, (blocks,) = fori_loop(
        builder,
        padding.count,
        [Carry(rhs, dtype)],
        [ScanOut(dtype, block_shape)],
        step,
        "trsolve_blocks",
        any_count=True,
        float_sizes=True,
        sequences=[Carry(panels, dtype)],
    )
    if not lower:
        blocks = reverse_first(builder, blocks)
    full = builder.op("Concat", [batch, unsqueeze(builder, padding.value, 0), width], {"axis": 0})
    x = _merge_blocks(builder, blocks, [*range(1, ndim - 1), 0, ndim - 1, ndim], full)
    end = unsqueeze(builder, n.value, 0)
    return builder.op("Slice", [x, builder.int64s([0]), end, builder.int64s([-2])])


# --------------------------------------------------------------------------- LU
def swap_indices(builder: ONNXBuilder, n: Size, k: ir.Value, p: ir.Value) -> ir.Value:
    """``arange(n)`` with positions ``k`` and ``p`` (shape ``(..., 1)``) swapped."""
    keep = where(builder, compare(builder, "Equal", n.arange, p), k, n.arange)
    return where(builder, compare(builder, "Equal", n.arange, k), p, keep)


def lu_factor(builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str) -> LUResult:
    """LU factorization with partial pivoting (LAPACK ``getrf``) of ``a`` (rank ``ndim``).

    Static sizes up to :data:`LU_RECURSION_BASE` take one step per column
    (:func:`_lu_panel`); larger static sizes are halved recursively
    (:func:`~pytensor_onnx.dispatch._blocked.recursive_lu`) down to panels of at most that
    many columns, and symbolic sizes take the blocked loop (:func:`_lu_factor_blocked`).  A
    zero pivot (singular matrix) leaves zero multipliers, like LAPACK.
    """
    if n.static is None:
        return _lu_factor_blocked(builder, a, n, ndim, dtype)

    def base(b: ONNXBuilder, panel: ir.Value, rows: int, columns: int) -> LUResult:
        return _lu_panel(b, panel, rows, columns, ndim, dtype)

    def solve(b: ONNXBuilder, tri: ir.Value, rhs: ir.Value, size: int) -> ir.Value:
        k = size_of(b, tri, -1, size)
        return solve_triangular(b, tri, rhs, k, ndim, dtype, lower=True, unit_diagonal=True)

    return _blocked.recursive_lu(
        builder, a, n.static, n.static, ndim, LU_RECURSION_BASE, base, solve
    )


def _lu_panel(builder: ONNXBuilder, a: ir.Value, m: int, n: int, ndim: int, dtype: str) -> LUResult:
    """The pivoted LU factorization of static ``m``-by-``n`` panels ``a``, ``m >= n``, one
    step per column.

    Rows are never moved: ``position`` tracks where LAPACK's row interchanges would have put
    each row (see :func:`_lu_step`); the rows are put in pivot order once at the end.
    """
    rows, columns = size_of(builder, a, -2, m), size_of(builder, a, -1, n)
    beyond = builder.scalar(m + 1, "int64")
    position0 = builder.op("Expand", [rows.arange, builder.op("Shape", [a], {"end": -1})])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        work, position = state
        return list(
            _lu_step(b, work, position, k, k, rows.arange, columns.arange, beyond, ndim, dtype)
        )

    batch_shape = builder.op("Shape", [a], {"end": -2})
    (_, position), (u_rows, l_columns, positions, chosen) = fori_loop(
        builder,
        columns,
        [Carry(a, dtype), Carry(position0, "int64")],
        [
            ScanOut(dtype, builder.op("Concat", [batch_shape, builder.int64s([n])], {"axis": 0})),
            ScanOut(dtype, builder.op("Concat", [batch_shape, builder.int64s([m])], {"axis": 0})),
            ScanOut("int64", batch_shape),
            ScanOut("int64", batch_shape),
        ],
        step,
        "lu",
    )
    upper = unstack_to(builder, u_rows, ndim, -2)
    lower = unstack_to(builder, l_columns, ndim, -1)
    if m == n:
        perm = unstack_to(builder, chosen, ndim - 1, -1)
    else:  # the rows in the order of their final positions; U's rows padded to m
        upper = builder.pad_axis(upper, -2, 0, m - n, rank=ndim)
        _, perm = builder.top_k(position, builder.int64s([m]), -1, "int64", largest=False)
    pivots = unstack_to(builder, positions, ndim - 1, -1)
    return _pack_lu(builder, lower, upper, perm, pivots, rows, columns, ndim)


def _pack_lu(
    builder: ONNXBuilder,
    lower: ir.Value,
    upper: ir.Value,
    perm: ir.Value,
    pivots: ir.Value,
    rows: Size,
    columns: Size,
    ndim: int,
) -> LUResult:
    """Put ``L`` (rows in original order) in pivot order and pack it with ``U`` (as many
    rows as ``L``)."""
    ordered = permute_rows(builder, lower, perm, ndim)
    strictly_lower = compare(builder, "Greater", rows.rows, columns.arange)
    return LUResult(where(builder, strictly_lower, ordered, upper), perm, pivots)


def _lu_step(
    b: ONNXBuilder,
    work: ir.Value,
    position: ir.Value,
    column_index: ir.Value,
    step_index: ir.Value,
    rows: ir.Value,
    columns: ir.Value,
    beyond: ir.Value,
    ndim: int,
    dtype: str,
) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value, ir.Value, ir.Value]:
    """One pivoted elimination step on the columns of ``work`` (rows in original order).

    Among rows at positions ``>= step_index`` it picks the largest ``|work[r, column]|`` (on
    ties the row at the smallest position, as ``idamax`` does), swaps positions as LAPACK
    swaps rows, and subtracts the multiples of the pivot row from the remaining rows (a
    rank-1 ``MatMul``).  ``rows``/``columns`` are ``arange``s over ``work``'s last two axes
    and ``beyond`` exceeds every position.  Returns the new ``work`` and ``position``, the
    pivot row (``U``'s row, zero left of the column), the multipliers (``L``'s column, in
    original row order), the pivot's position (LAPACK's pivot) and its row index.
    """
    zero = b.scalar(0, dtype)
    column = take(b, work, column_index, -1)
    open_rows = compare(b, "GreaterOrEqual", position, step_index)
    # NaN counts as the largest magnitude so that a NaN column still picks an open row.
    magnitude = where(b, b.op("IsNaN", [column]), b.scalar(np.inf, dtype), b.op("Abs", [column]))
    magnitude = where(b, open_rows, magnitude, b.scalar(-1, dtype))
    # Non-negative axes: onnxruntime-node/-web 1.31/1.30 return an empty input (an empty
    # batch) unchanged from a reduction over a negative axis.
    last = ndim - 2  # of the column, rank ndim - 1
    best = b.op("ReduceMax", [magnitude, b.int64s([last])], {"keepdims": 1})
    ties = compare(b, "Equal", magnitude, best)
    # Compared as floats (exact below 2**24 rows): tract types these positions as
    # dimensions, and its ArgMin of dimensions returns a dimension where ONNX says int64.
    candidates = b.cast(where(b, ties, position, beyond), dtype, "int64")
    row = b.op("ArgMin", [candidates], {"axis": last, "keepdims": 1})
    row_position = unsqueeze(b, b.op("GatherND", [position, row], {"batch_dims": ndim - 2}), -1)
    # LAPACK swaps the rows at positions step_index and row_position.
    position = where(b, compare(b, "Equal", position, step_index), row_position, position)
    position = where(b, compare(b, "Equal", rows, row), step_index, position)

    pivot_row = b.op("GatherND", [work, row], {"batch_dims": ndim - 2})
    pivot = unsqueeze(b, take(b, pivot_row, column_index, -1), -1)
    safe_pivot = where(b, compare(b, "Equal", pivot, zero), b.scalar(1, dtype), pivot)
    remaining = compare(b, "Greater", position, step_index)
    multipliers = where(b, remaining, b.op("Div", [column, safe_pivot]), zero)
    u_row = where(b, compare(b, "GreaterOrEqual", columns, column_index), pivot_row, zero)
    trailing = where(b, compare(b, "Greater", columns, column_index), pivot_row, zero)
    work = b.op("Sub", [work, outer_product(b, multipliers, trailing)])
    squeeze = b.int64s([-1])
    return (
        work,
        position,
        u_row,
        multipliers,
        b.op("Squeeze", [row_position, squeeze]),
        b.op("Squeeze", [row, squeeze]),
    )


def _lu_factor_blocked(
    builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str
) -> LUResult:
    """Blocked right-looking LU (``getrf``) with :data:`BLOCK`-column panels.

    The matrix is padded with an identity block to a multiple of the block size (padded rows
    are zero in the real columns, so they never win a pivot search before the real rows
    run out).  Each ``Scan`` step factors a panel with unrolled :func:`_lu_step`s over all
    rows, computes the pivot rows' trailing part ``U12 = L11^-1 W[pivots, :]`` (unrolled
    unit-lower solve) and applies ``W -= L_panel @ U12`` as one GEMM.
    """
    nb = BLOCK
    padding = _identity_padding(builder, a, n, ndim, dtype)
    big = padding.size
    small = size_of(builder, a, -1, nb)
    beyond = builder.op("Add", [big.value, builder.scalar(1, "int64")])
    position0 = builder.op(
        "Expand", [big.arange, builder.op("Shape", [padding.matrix], {"end": -1})]
    )
    zero = builder.scalar(0, dtype)
    batch_dims = ndim - 2

    def step(b: ONNXBuilder, j: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        work, position = state
        block = Block.at(b, padding.blocks, j)
        first, start, stop = block.first, block.start, block.stop
        panel = block.take(b, work, -1)
        u11, l_block, pivots, rows = [], [], [], []
        for k in range(nb):
            local = b.scalar(k, "int64")
            panel, position, u_row, multipliers, pivot, row = _lu_step(
                b,
                panel,
                position,
                local,
                b.op("Add", [first, local]),
                big.arange,
                small.arange,
                beyond,
                ndim,
                dtype,
            )
            u11.append(unsqueeze(b, u_row, -2))
            l_block.append(unsqueeze(b, multipliers, -1))
            pivots.append(unsqueeze(b, pivot, -1))
            rows.append(unsqueeze(b, row, -1))
        u11_block = b.op("Concat", u11, {"axis": -2})
        lower = b.op("Concat", l_block, {"axis": -1})
        row_block = b.op("Concat", rows, {"axis": -1})
        pivot_rows = b.op(
            "GatherND", [work, unsqueeze(b, row_block, -1)], {"batch_dims": batch_dims}
        )
        l11 = b.op("GatherND", [lower, unsqueeze(b, row_block, -1)], {"batch_dims": batch_dims})
        u12 = solve_triangular(
            b, l11, pivot_rows, small, ndim, dtype, lower=True, unit_diagonal=True, unroll=True
        )
        u12 = where(b, compare(b, "GreaterOrEqual", big.arange, stop), u12, zero)
        work = b.op("Sub", [work, b.op("MatMul", [lower, u12])])
        placed = place_block(b, u11_block, start, big, -1)
        in_block = b.op(
            "And",
            [compare(b, "GreaterOrEqual", big.arange, start), compare(b, "Less", big.arange, stop)],
        )
        u_block = where(b, in_block, placed, u12)
        return [work, position, u_block, lower, b.op("Concat", pivots, {"axis": -1}), row_block]

    batch = builder.op("Shape", [a], {"end": -2})
    padded = unsqueeze(builder, padding.value, 0)
    width = builder.int64s([nb])
    _, (u_blocks, l_blocks, pivot_blocks, row_blocks) = fori_loop(
        builder,
        padding.count,
        [Carry(padding.matrix, dtype), Carry(position0, "int64", position=True)],
        [
            ScanOut(dtype, builder.op("Concat", [batch, width, padded], {"axis": 0})),
            ScanOut(dtype, builder.op("Concat", [batch, padded, width], {"axis": 0})),
            ScanOut("int64", builder.op("Concat", [batch, width], {"axis": 0})),
            ScanOut("int64", builder.op("Concat", [batch, width], {"axis": 0})),
        ],
        step,
        "lu_blocks",
        any_count=True,
        float_sizes=True,
    )
    square = builder.op("Concat", [batch, padded, padded], {"axis": 0})
    vector = builder.op("Concat", [batch, padded], {"axis": 0})
    # (blocks, ..., nb, N) -> (..., blocks, nb, N);  (blocks, ..., N, nb) -> (..., N, blocks, nb)
    upper = _merge_blocks(builder, u_blocks, [*range(1, ndim - 1), 0, ndim - 1, ndim], square)
    lower = _merge_blocks(builder, l_blocks, [*range(1, ndim), 0, ndim], square)
    perm = _merge_blocks(builder, row_blocks, [*range(1, ndim - 1), 0, ndim - 1], vector)
    pivots = _merge_blocks(builder, pivot_blocks, [*range(1, ndim - 1), 0, ndim - 1], vector)
    end = unsqueeze(builder, n.value, 0)
    ends = builder.op("Concat", [end, end], {"axis": 0})
    upper = builder.op("Slice", [upper, builder.int64s([0, 0]), ends, builder.int64s([-2, -1])])
    lower = builder.op("Slice", [lower, builder.int64s([0]), end, builder.int64s([-1])])
    perm = builder.op("Slice", [perm, builder.int64s([0]), end, builder.int64s([-1])])
    pivots = builder.op("Slice", [pivots, builder.int64s([0]), end, builder.int64s([-1])])
    return _pack_lu(builder, lower, upper, perm, pivots, n, n, ndim)


def _merge_blocks(
    builder: ONNXBuilder, stacked: ir.Value, order: list[int], shape: ir.Value
) -> ir.Value:
    """Per-block loop outputs transposed by ``order`` and reshaped to ``shape``."""
    return builder.op(
        "Reshape",
        [builder.op("Transpose", [stacked], {"perm": order}), shape],
        {"allowzero": 1},
    )


def pivots_to_permutation(builder: ONNXBuilder, pivots: ir.Value, n: Size, ndim: int) -> ir.Value:
    """Apply LAPACK row interchanges ``pivots`` (rank ``ndim``, (..., n)) to ``arange(n)``."""
    perm0 = builder.op("Expand", [n.arange, builder.op("Shape", [pivots])])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (perm,) = state
        p = unsqueeze(b, take(b, pivots, k, -1), -1)
        index = unsqueeze(b, swap_indices(b, n, k, p), -1)
        return [b.op("GatherND", [perm, index], {"batch_dims": ndim - 1})]

    (perm,), _ = fori_loop(builder, n, [Carry(perm0, "int64")], [], step, "pivots")
    return perm


def invert_permutation(builder: ONNXBuilder, perm: ir.Value, n: Size) -> ir.Value:
    """The inverse of permutations ``perm`` (..., n): ``inv[perm[i]] = i``.

    Found as the position of the one ``True`` in each row of ``perm == r`` (O(n²), once).
    """
    hits = builder.cast(
        compare(builder, "Equal", unsqueeze(builder, perm, -2), n.rows), "int32", "bool"
    )
    return builder.op("ArgMax", [hits], {"axis": -1, "keepdims": 0})


def lu_solve(
    builder: ONNXBuilder,
    lu: LUResult,
    b: ir.Value,
    n: Size,
    ndim: int,
    dtype: str,
    *,
    nan_if_singular: bool,
) -> ir.Value:
    """Solve ``a @ x = b`` from the factorization ``lu`` of ``a``; ``b`` is (..., n, m).

    ``ndim`` is the rank of the solution.  Exactly singular systems give NaN with
    ``nan_if_singular`` (SciPy raises, and PyTensor's ``Solve`` turns that into NaN).
    """
    b = broadcast_batch(builder, b, lu.packed, 2)
    perm = builder.op("Expand", [lu.perm, builder.op("Shape", [b], {"end": -1})])
    y = solve_triangular(
        builder,
        lu.packed,
        permute_rows(builder, b, perm, ndim),
        n,
        ndim,
        dtype,
        lower=True,
        unit_diagonal=True,
    )
    return solve_triangular(
        builder, lu.packed, y, n, ndim, dtype, lower=False, nan_if_singular=nan_if_singular
    )


def solve_by_lu(
    builder: ONNXBuilder,
    a: ir.Value,
    b: ir.Value,
    n: Size,
    ndim: int,
    dtype: str,
    *,
    solution_ndim: int | None = None,
) -> ir.Value:
    """Solve ``a @ x = b`` by the pivoted LU of ``a`` (rank ``ndim``); ``b`` is (..., n, m)
    and ``x`` has rank ``solution_ndim`` (default ``ndim``).  Exactly singular systems give
    NaN (see :func:`lu_solve`)."""
    lu = lu_factor(builder, a, n, ndim, dtype)
    rank = ndim if solution_ndim is None else solution_ndim
    return lu_solve(builder, lu, b, n, rank, dtype, nan_if_singular=True)


def singular(builder: ONNXBuilder, lu: LUResult, n: Size, ndim: int, dtype: str) -> ir.Value:
    """Whether each factored matrix (rank ``ndim``) has an exact zero pivot, shape
    ``(..., 1, 1)``."""
    zero_pivot = compare(
        builder, "Equal", diagonal(builder, lu.packed, n, ndim, dtype), builder.scalar(0, dtype)
    )
    return any_true(builder, zero_pivot, dtype)


def lu_parts(
    builder: ONNXBuilder, packed: ir.Value, n: Size, dtype: str
) -> tuple[ir.Value, ir.Value]:
    """The unit lower factor ``L`` and the upper factor ``U`` stored in ``packed``."""
    strictly_lower = compare(builder, "Greater", n.rows, n.arange)
    lower = where(builder, strictly_lower, packed, identity(builder, n, dtype))
    upper = where(builder, strictly_lower, builder.scalar(0, dtype), packed)
    return lower, upper


def slogdet(
    builder: ONNXBuilder, lu: LUResult, n: Size, ndim: int, dtype: str
) -> tuple[ir.Value, ir.Value]:
    """``(sign, log|det|)`` of the factored matrices (rank ``ndim``; shapes ``(...)``)."""
    diag = diagonal(builder, lu.packed, n, ndim, dtype)
    signs = reduce_last(builder, "ReduceProd", builder.op("Sign", [diag]))
    sign = builder.op("Mul", [permutation_sign(builder, lu, n, dtype), signs])
    logs = builder.op("Log", [builder.op("Abs", [diag])])
    return sign, reduce_last(builder, "ReduceSum", logs)


def det(builder: ONNXBuilder, lu: LUResult, n: Size, ndim: int, dtype: str) -> ir.Value:
    """The determinants of the factored matrices (rank ``ndim``): the pivots' product times
    the parity."""
    diag = diagonal(builder, lu.packed, n, ndim, dtype)
    product = reduce_last(builder, "ReduceProd", diag)
    return builder.op("Mul", [product, permutation_sign(builder, lu, n, dtype)])


def reduce_last(builder: ONNXBuilder, op_type: str, x: ir.Value) -> ir.Value:
    """``op_type`` (a Reduce* op) over the last axis, which is dropped."""
    return builder.op(op_type, [x, builder.int64s([-1])], {"keepdims": 0})


def permutation_sign(builder: ONNXBuilder, lu: LUResult, n: Size, dtype: str) -> ir.Value:
    """``(-1) ** (number of row interchanges)`` of the factorization, shape ``(...)``."""
    kept = compare(builder, "Equal", lu.pivots, n.arange)
    factors = where(builder, kept, builder.scalar(1, dtype), builder.scalar(-1, dtype))
    return reduce_last(builder, "ReduceProd", factors)


def power_of_two_scale(builder: ONNXBuilder, a: ir.Value, dtype: str) -> tuple[ir.Value, ir.Value]:
    """``a / scale`` and ``scale`` (shape ``(..., 1, 1)``): the power of two near the largest
    magnitude of each matrix (1 for a zero or non-finite matrix).

    The iterations square entries (norms, Gram products): scaled to about 1, matrices with
    entries near the overflow or underflow thresholds are decomposed as accurately as the
    others, and a power of two rescales without rounding.
    """
    num = Num(builder, dtype)
    largest = builder.op(
        "ReduceMax", [builder.op("Abs", [a]), builder.int64s([-2, -1])], {"keepdims": 1}
    )
    usable = num.both(num.gt(largest, 0), num.lt(largest, np.inf))
    exponent = num.unary(
        "Floor", num.div(num.unary("Log", num.where(usable, largest, 1)), float(np.log(2.0)))
    )
    scale = num.where(usable, num.pow(2.0, exponent), 1)
    return num.div(a, scale), scale


# --------------------------------------------------------------------------- QR
@dataclass(frozen=True)
class QRResult:
    """Householder QR of a stack of (m, n) matrices (LAPACK ``geqrf``/``geqp3``, ``orgqr``).

    Attributes
    ----------
    packed
        LAPACK's factored array (SciPy's ``mode="raw"`` ``qr``), (..., m, n): ``R`` on and
        above the diagonal, the vector ``v`` of reflector ``k`` (whose entry ``k`` is an
        implied 1) below the diagonal of column ``k``.
    r
        ``R`` (..., m, n): ``packed`` with zeros below the diagonal.
    q
        The full ``Q`` (..., m, m) if requested, else ``None``.
    tau
        The reflectors' scalars (..., min(m, n)) if requested, else ``None``.
    perm
        With column pivoting, the column order (int64, (..., n)): ``a[..., :, perm] = Q R``;
        else ``None``.
    """

    packed: ir.Value
    r: ir.Value
    q: ir.Value | None
    tau: ir.Value | None
    perm: ir.Value | None


def householder_qr(
    builder: ONNXBuilder,
    a: ir.Value,
    m: Size,
    n: Size,
    steps: Size,
    ndim: int,
    dtype: str,
    *,
    want_q: bool = True,
    want_tau: bool = False,
    pivoting: bool = False,
) -> QRResult:
    """QR of ``a`` (rank ``ndim``, (..., m, n)) by Householder reflections, one per column.

    ``m`` and ``n`` are the row and column counts, ``steps`` is ``min(m, n)``.  Step ``k``
    (:func:`_householder_step`) reflects column ``k`` onto ``beta e_k`` with LAPACK's
    ``dlarfg`` choice ``beta = -sign(alpha) ||x||`` (so the signs of ``R``'s diagonal match
    SciPy), applies the reflector to the trailing columns (a rank-1 update) and stores its
    vector below the diagonal, as ``geqrf`` does.  ``want_q`` accumulates the full ``Q``
    (``orgqr``'s result) with a second rank-1 update per step; ``want_tau`` returns the
    reflectors' scalars.  With ``pivoting`` (``geqp3``), each step first swaps into place the
    column whose part in rows ``>= k`` has the largest norm (:func:`_pivot_step`).
    """
    zero = builder.scalar(0, dtype)
    # Column norms square the entries: work on a / 2^e so that they cannot over/underflow.
    a, scale = power_of_two_scale(builder, a, dtype)
    state = [Carry(a, dtype)]
    if want_q:
        state.append(Carry(identity_like(builder, a, m, dtype), dtype))
    if pivoting:
        vector_shape = builder.op("Shape", [a], {"start": -1})
        batch_shape = builder.op("Shape", [a], {"end": -2})
        columns = builder.op("Concat", [batch_shape, vector_shape], {"axis": 0})
        state.append(Carry(builder.op("Expand", [n.arange, columns]), "int64"))
    scans = [ScanOut(dtype, builder.op("Shape", [a], {"end": -2}))] if want_tau else []

    def step(b: ONNXBuilder, k: ir.Value, values: list[ir.Value]) -> list[ir.Value]:
        # rest: Q if want_q, then the permutation if pivoting.
        packed, *rest = values
        if pivoting:
            packed, perm = _pivot_step(b, packed, rest[-1], k, m, n, ndim, dtype)
            rest[-1] = perm
        packed, v, tau = _householder_step(b, packed, k, m, n, ndim, dtype)
        if want_q:
            # Q <- Q (I - tau v v^T)
            v_row = unsqueeze(b, v, -2)
            qv = b.op("MatMul", [rest[0], unsqueeze(b, v, -1)])
            update = b.op("Mul", [unsqueeze(b, tau, -1), b.op("Mul", [qv, v_row])])
            rest[0] = b.op("Sub", [rest[0], update])
        taus = [b.op("Squeeze", [tau, b.int64s([-1])])] if want_tau else []
        return [packed, *rest, *taus]

    (packed, *rest), stacked = fori_loop(builder, steps, state, scans, step, "qr")
    upper = compare(builder, "LessOrEqual", m.rows, n.arange)
    # R carries the scale; the reflector vectors below the diagonal and tau do not.
    packed = where(builder, upper, builder.op("Mul", [packed, scale]), packed)
    return QRResult(
        packed=packed,
        r=where(builder, upper, packed, zero),
        q=rest[0] if want_q else None,
        tau=unstack_to(builder, stacked[0], ndim - 1, -1) if want_tau else None,
        perm=rest[-1] if pivoting else None,
    )


def _householder_step(
    b: ONNXBuilder, packed: ir.Value, k: ir.Value, m: Size, n: Size, ndim: int, dtype: str
) -> tuple[ir.Value, ir.Value, ir.Value]:
    """Reflector ``k`` of ``geqrf`` (``dlarfg``) applied to ``packed`` (``dlarf``, rank
    ``ndim``).

    The reflector ``I - tau v v^T`` maps column ``k``'s part ``(alpha, x)`` in rows ``>= k``
    to ``(beta, 0)``; ``tau = 0`` (no reflection, ``beta = alpha``) when ``x`` is zero.
    Returns the new ``packed`` (trailing columns reflected, column ``k`` holding ``beta`` on
    the diagonal and ``v`` below it), ``v`` (..., m) (zero above row ``k``, 1 at row ``k``)
    and ``tau`` (..., 1).
    """
    zero = b.scalar(0, dtype)
    one = b.scalar(1, dtype)
    column = take(b, packed, k, -1)
    below = compare(b, "Greater", m.arange, k)
    tail = where(b, below, column, zero)
    # Axes inside the loop are non-negative (see :func:`diagonal`).
    tail_norm = b.op("ReduceL2", [tail, b.int64s([ndim - 2])], {"keepdims": 1})
    alpha = unsqueeze(b, take(b, column, k, -1), -1)
    norm = b.op(
        "Sqrt", [b.op("Add", [b.op("Mul", [alpha, alpha]), b.op("Mul", [tail_norm, tail_norm])])]
    )
    beta = where(b, compare(b, "Less", alpha, zero), norm, b.op("Neg", [norm]))
    reflect = compare(b, "Greater", tail_norm, zero)
    tau = where(b, reflect, b.op("Div", [b.op("Sub", [beta, alpha]), beta]), zero)
    scale = where(b, reflect, b.op("Sub", [alpha, beta]), one)
    at_k = compare(b, "Equal", m.arange, k)
    v = where(b, at_k, one, b.op("Div", [tail, scale]))
    # Trailing columns: A <- (I - tau v v^T) A, a rank-1 update.
    w = b.op("MatMul", [unsqueeze(b, v, -2), packed])
    w = where(b, compare(b, "Greater", n.arange, k), w, zero)
    update = b.op("Mul", [unsqueeze(b, tau, -1), b.op("Mul", [unsqueeze(b, v, -1), w])])
    packed = b.op("Sub", [packed, update])
    diagonal_value = where(b, reflect, beta, alpha)
    stored = where(b, below, v, where(b, at_k, diagonal_value, column))
    packed = where(b, compare(b, "Equal", n.arange, k), unsqueeze(b, stored, -1), packed)
    return packed, v, tau


def _pivot_step(
    b: ONNXBuilder,
    packed: ir.Value,
    perm: ir.Value,
    k: ir.Value,
    m: Size,
    n: Size,
    ndim: int,
    dtype: str,
) -> tuple[ir.Value, ir.Value]:
    """``geqp3``'s column choice for step ``k``: swap columns ``k`` and ``p`` of ``packed``.

    ``p`` is the column ``>= k`` whose part in rows ``>= k`` has the largest norm (the first
    on ties, as ``idamax``).  LAPACK downdates these norms from step to step; they are
    recomputed here (O(mn) per step, like the update itself), which picks the same columns
    except for near-ties: downdated norms are accurate to about ``eps / sqrt(eps)``
    relative, i.e. 1e-8 in float64.  ``perm`` (..., n) gets the same swap.
    """
    zero = b.scalar(0, dtype)
    trailing = where(b, compare(b, "GreaterOrEqual", m.rows, k), packed, zero)
    # Axes inside the loop are non-negative (see :func:`diagonal`).
    rows, columns = ndim - 2, ndim - 1
    norms = b.op("ReduceL2", [trailing, b.int64s([rows])], {"keepdims": 0})
    norms = where(b, compare(b, "Less", n.arange, k), b.scalar(-1, dtype), norms)
    p = b.op("ArgMax", [norms], {"axis": rows, "keepdims": 1})
    is_p = unsqueeze(b, compare(b, "Equal", n.arange, p), -2)
    chosen = where(b, is_p, packed, zero)
    column_p = b.op("ReduceSum", [chosen, b.int64s([columns])], {"keepdims": 1})
    column_k = unsqueeze(b, take(b, packed, k, -1), -1)
    packed = where(b, is_p, column_k, packed)
    packed = where(b, compare(b, "Equal", n.arange, k), column_p, packed)
    swapped = unsqueeze(b, swap_indices(b, n, k, p), -1)
    return packed, b.op("GatherND", [perm, swapped], {"batch_dims": ndim - 2})


# ------------------------------------------------------------------ matrix exponential
#: Coefficients ``b_0 .. b_13`` of the degree-13 Padé approximant of ``exp`` (Higham 2005).
PADE13 = (
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
)
#: The largest 1-norm for which the degree-13 Padé approximant is accurate to double
#: precision (Higham 2005, Table 2.3).
THETA13 = 5.371920351148152
#: The largest number of squarings: ``2**1023`` is the largest finite power of two (float64).
MAX_SQUARINGS = 1023


def expm(builder: ONNXBuilder, a: ir.Value, n: Size, ndim: int, dtype: str) -> ir.Value:
    """The matrix exponentials of ``a`` (rank ``ndim``, (..., n, n)) by scaling and squaring.

    Higham (2005), "The scaling and squaring method for the matrix exponential revisited":
    each matrix is divided by ``2**s`` with ``s = max(0, ceil(log2(||A||_1 / THETA13)))``,
    its degree-13 Padé approximant ``R = (V - U)^-1 (V + U)`` is formed from ``A²``, ``A⁴``,
    ``A⁶`` (:func:`_pade13`) and solved with the pivoted LU, then squared ``s`` times.  The
    squarings run in one ``Loop`` of ``max(s)`` steps over the whole batch; a matrix stops
    squaring after its own ``s`` steps.  Matrices with an inf or NaN entry come out all-NaN.
    """
    zero = builder.scalar(0, dtype)
    bad_entries = builder.op("Or", [builder.op("IsNaN", [a]), builder.is_inf(a, dtype)])
    # ReduceSum, not ReduceMax: the sum over an empty matrix is 0 (and defined in ORT).
    bad_count = builder.op(
        "ReduceSum",
        [builder.cast(bad_entries, "int64", "bool"), builder.int64s([-2, -1])],
        {"keepdims": 1},
    )
    bad = compare(builder, "Greater", bad_count, builder.scalar(0, "int64"))
    clean = where(builder, bad, zero, a)
    column_sums = builder.op(
        "ReduceSum", [builder.op("Abs", [clean]), builder.int64s([-2])], {"keepdims": 1}
    )
    # A trailing 0 keeps the maximum defined for empty matrices (the norm is >= 0 anyway).
    padded_sums = builder.pad_axis(column_sums, ndim - 1, 0, 1, rank=ndim, constant=zero)
    norm = builder.op("ReduceMax", [padded_sums, builder.int64s([-1])], {"keepdims": 1})
    ratio = builder.op("Div", [norm, builder.scalar(THETA13, dtype)])
    log2 = builder.op("Div", [builder.op("Log", [ratio]), builder.scalar(np.log(2.0), dtype)])
    # log(0) = -inf for the zero matrix: Max turns it into s = 0.  A norm that overflows to
    # inf is capped at 2**MAX_SQUARINGS (finite, so that the count stays an integer); that
    # many squarings then overflow as the exponential does.
    s = builder.op(
        "Clip",
        [builder.op("Ceil", [log2]), zero, builder.scalar(MAX_SQUARINGS, dtype)],
    )
    scaled = builder.op("Div", [clean, builder.op("Pow", [builder.scalar(2.0, dtype), s])])
    u, v = _pade13(builder, scaled, n, dtype)
    denominator, numerator = builder.op("Sub", [v, u]), builder.op("Add", [v, u])
    r = solve_by_lu(builder, denominator, numerator, n, ndim, dtype)

    squarings = builder.cast(s, "int64", dtype)
    every = builder.op(
        "Concat",
        [builder.op("Reshape", [squarings, builder.int64s([-1])]), builder.int64s([0])],
        {"axis": 0},
    )
    count = builder.op("ReduceMax", [every, builder.int64s([0])], {"keepdims": 0})
    steps = builder.op("Range", [builder.scalar(0, "int64"), count, builder.scalar(1, "int64")])
    loop_size = Size(count, None, steps, unsqueeze(builder, steps, 1))

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (power,) = state
        squared = b.op("MatMul", [power, power])
        return [where(b, compare(b, "Less", k, squarings), squared, power)]

    (r,), _ = fori_loop(builder, loop_size, [Carry(r, dtype)], [], step, "expm_squarings")
    return nan_where(builder, bad, r, dtype)


def _pade13(builder: ONNXBuilder, x: ir.Value, n: Size, dtype: str) -> tuple[ir.Value, ir.Value]:
    """The odd and even parts ``U``, ``V`` of the degree-13 Padé approximant at ``x``.

    ``U = x (A6 (b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I)`` and
    ``V = A6 (b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I`` with ``A2 = x²``,
    ``A4 = A2²``, ``A6 = A4 A2`` (six matrix products in all).
    """
    b = PADE13
    eye = identity(builder, n, dtype)
    a2 = builder.op("MatMul", [x, x])
    a4 = builder.op("MatMul", [a2, a2])
    a6 = builder.op("MatMul", [a4, a2])

    def combination(c6: float, c4: float, c2: float, c0: float | None = None) -> ir.Value:
        terms = [
            builder.op("Mul", [builder.scalar(c, dtype), power])
            for c, power in ((c6, a6), (c4, a4), (c2, a2))
        ]
        if c0 is not None:
            terms.append(builder.op("Mul", [builder.scalar(c0, dtype), eye]))
        return builder.op("Sum", terms)

    odd = builder.op(
        "Add",
        [
            builder.op("MatMul", [a6, combination(b[13], b[11], b[9])]),
            combination(b[7], b[5], b[3], b[1]),
        ],
    )
    even = builder.op(
        "Add",
        [
            builder.op("MatMul", [a6, combination(b[12], b[10], b[8])]),
            combination(b[6], b[4], b[2], b[0]),
        ],
    )
    return builder.op("MatMul", [x, odd]), even


#: The most doubling steps of :func:`discrete_riccati`.  Step k works with the closed-loop
#: matrix raised to the power ``2**k``, so a problem whose stabilizing solution exists has
#: converged long before; one that has not after this many steps has none (or is too close
#: to having none) and gives NaN.
RICCATI_MAX_STEPS = 100


def discrete_riccati(
    builder: ONNXBuilder,
    matrices: Sequence[ir.Value],
    m: Size,
    ndim: int,
    dtype: str,
) -> ir.Value:
    """The stabilizing solutions X of ``AᵀXA - X - AᵀXB (R + BᵀXB)⁻¹ BᵀXA + Q = 0``.

    ``matrices`` are A, B, Q, R (shapes ``(..., m, m)``, ``(..., m, n)``, ``(..., m, m)``,
    ``(..., n, n)``, one batch shape; rank ``ndim``).  The structure-preserving doubling
    algorithm (Chu, Fan and Lin, "A structure-preserving doubling algorithm for
    continuous-time algebraic Riccati equations", 2005; its discrete form): from
    ``A₀ = A``, ``G₀ = B R⁻¹ Bᵀ``, ``H₀ = Q``, every step is

        W = I + G H,  A' = A W⁻¹ A,  G' = G + A W⁻¹ G Aᵀ,  H' = H + Aᵀ H W⁻¹ A

    (one LU of W, one solve with ``[A, G Aᵀ]``), and H converges quadratically to X.  The
    steps run in one ``Loop`` until every matrix changes by at most ``eps ‖H'‖`` (entrywise
    1-norms); matrices still changing after :data:`RICCATI_MAX_STEPS` steps, or with an
    infinite or NaN entry (a diverging iteration, an exactly singular R, an input inf or
    NaN), are all-NaN.  The result is symmetrized, ``(X + Xᵀ) / 2``, as PyTensor does.
    """
    a, b, q, r = matrices
    r_size = size_of(builder, r, -1, None)
    b_t = transpose_last(builder, b, ndim)
    g = builder.op("MatMul", [b, solve_by_lu(builder, r, b_t, r_size, ndim, dtype)])
    eps = float(np.finfo(dtype).eps)
    # 1 (pending) for every matrix, shaped (1, ..., 1) until the first step's test.
    pending = builder.const(np.ones([1] * ndim, dtype=dtype))
    m_end = builder.op("Unsqueeze", [m.value, builder.int64s([0])])
    eye = identity(builder, m, dtype)

    def norm(graph: ONNXBuilder, x: ir.Value) -> ir.Value:
        return graph.op(
            "ReduceSum", [graph.op("Abs", [x]), graph.int64s([-2, -1])], {"keepdims": 1}
        )

    def step(num: Num, state: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        inner = num.builder
        a_k, g_k, h_k, _, eye_k = state
        # The identity is carried, not read from the enclosing graph: ONNX Runtime 1.32's
        # load-time optimizer fails to fold a constant that a Loop body and an enclosing node
        # both read, and warns on every session.
        w = inner.op("Add", [eye_k, inner.op("MatMul", [g_k, h_k])])
        a_t = transpose_last(inner, a_k, ndim)
        rhs = inner.op("Concat", [a_k, inner.op("MatMul", [g_k, a_t])], {"axis": -1})
        solved = solve_by_lu(inner, w, rhs, m, ndim, dtype)
        axis = inner.int64s([-1])
        w_inv_a = inner.op("Slice", [solved, inner.int64s([0]), m_end, axis])
        w_inv_g_a_t = inner.op("Slice", [solved, m_end, inner.int64s([2**62]), axis])
        h_next = inner.op(
            "Add", [h_k, inner.op("MatMul", [inner.op("MatMul", [a_t, h_k]), w_inv_a])]
        )
        g_next = inner.op("Add", [g_k, inner.op("MatMul", [a_k, w_inv_g_a_t])])
        a_next = inner.op("MatMul", [a_k, w_inv_a])
        change = norm(inner, inner.op("Sub", [h_next, h_k]))
        tolerance = inner.op("Mul", [norm(inner, h_next), inner.scalar(eps, dtype)])
        more = inner.op("Greater", [change, tolerance])
        return [a_next, g_next, h_next, inner.cast(more, dtype, "bool"), eye_k], more

    _, _, x, still, _ = while_any(
        Num(builder, dtype), [a, g, q, pending, eye], step, RICCATI_MAX_STEPS, "riccati_doubling"
    )
    symmetric = builder.op(
        "Mul",
        [
            builder.op("Add", [x, transpose_last(builder, x, ndim)]),
            builder.scalar(0.5, dtype),
        ],
    )
    # A diverging iteration (no stabilizing solution) ends with inf or NaN entries, whose
    # change is NaN and so never "more": such matrices, like unconverged ones, are all-NaN.
    finite = compare(builder, "Less", norm(builder, x), builder.scalar(np.inf, dtype))
    converged = compare(builder, "Equal", still, builder.scalar(0.0, dtype))
    bad = builder.op("Not", [builder.op("And", [finite, converged])])
    return nan_where(builder, bad, symmetric, dtype)
