"""Recursive (divide-and-conquer) factorizations for matrices of static size.

A matrix of static size ``n`` above a base size is split into ``n1 = n // 2`` and
``n - n1`` rows and columns; the two diagonal halves are handled recursively and the
off-diagonal coupling is one ``MatMul``, so almost all of the O(n³) flops run in ONNX
Runtime's GEMM instead of in per-column ``Loop`` steps.  Triangular solves invert all
diagonal blocks at once (recursive doubling, no ``Loop``) and substitute block by block
with ``MatMul`` nodes.  The
column-step base cases are supplied by the caller (:mod:`pytensor_onnx.dispatch.linalg`),
which keeps those algorithms in one place.

Every function works on stacks of matrices (leading batch dimensions broadcast as in
NumPy); ``ndim`` is the rank of the values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder

#: ``base(builder, a, n)``: the lower Cholesky factor of ``a`` (..., n, n), static ``n``.
CholeskyBase = Callable[[ONNXBuilder, ir.Value, int], ir.Value]
#: ``base(builder, a, m, n)``: the pivoted LU factorization of the panels ``a`` (..., m, n),
#: static ``m >= n``.
LUBase = Callable[[ONNXBuilder, ir.Value, int, int], "LUResult"]
#: ``solve(builder, l, b, n)``: the solution of ``l x = b`` for a lower-triangular ``l`` of
#: static size ``n``.
LowerSolve = Callable[[ONNXBuilder, ir.Value, ir.Value, int], ir.Value]


def _block(
    builder: ONNXBuilder, x: ir.Value, rows: tuple[int, int], columns: tuple[int, int]
) -> ir.Value:
    """``x[..., rows[0]:rows[1], columns[0]:columns[1]]``."""
    return builder.op(
        "Slice",
        [
            x,
            builder.int64s([rows[0], columns[0]]),
            builder.int64s([rows[1], columns[1]]),
            builder.int64s([-2, -1]),
        ],
    )


def _rows(builder: ONNXBuilder, x: ir.Value, start: int, stop: int) -> ir.Value:
    """``x[..., start:stop, :]``."""
    return builder.op(
        "Slice",
        [x, builder.int64s([start]), builder.int64s([stop]), builder.int64s([-2])],
    )


def _transpose(builder: ONNXBuilder, x: ir.Value, ndim: int) -> ir.Value:
    """``x`` with its last two axes swapped."""
    return builder.op("Transpose", [x], {"perm": [*range(ndim - 2), ndim - 1, ndim - 2]})


def permute_rows(builder: ONNXBuilder, x: ir.Value, perm: ir.Value, ndim: int) -> ir.Value:
    """Rows of ``x`` (rank ``ndim``) reordered: ``out[..., i, :] = x[..., perm[i], :]``.

    ``perm`` has exactly ``x``'s batch dimensions.  ``GatherND`` with batch dimensions is
    used rather than ``GatherElements``, which ``onnx.reference`` mishandles for negative
    axes and for more than 32 rows (``np.choose``).
    """
    index = builder.op("Unsqueeze", [perm, builder.int64s([-1])])
    return builder.op("GatherND", [x, index], {"batch_dims": ndim - 2})


def recursive_cholesky(
    builder: ONNXBuilder,
    a: ir.Value,
    n: int,
    ndim: int,
    base_max: int,
    base: CholeskyBase,
    solve: LowerSolve,
) -> ir.Value:
    """The lower Cholesky factor of ``a`` (..., n, n) by recursive halving.

    With ``A = [[A11, .], [A21, A22]]``: ``L11 = chol(A11)``, ``L21 = A21 L11^-T`` (a
    triangular ``solve``),
    ``L22 = chol(A22 - L21 L21^T)``.  Only the lower triangle of
    ``a`` is read; a matrix that is not positive definite leaves NaN (or a non-positive
    diagonal entry) in the factor, as the base case does.
    """
    if n <= base_max:
        return base(builder, a, n)
    n1 = n // 2

    def half(block: ir.Value, size: int) -> ir.Value:
        return recursive_cholesky(builder, block, size, ndim, base_max, base, solve)

    l11 = half(_block(builder, a, (0, n1), (0, n1)), n1)

    l21_t = solve(builder, l11, _transpose(builder, _block(builder, a, (n1, n), (0, n1)), ndim), n1)
    l21 = _transpose(builder, l21_t, ndim)
    schur = builder.op(
        "Sub", [_block(builder, a, (n1, n), (n1, n)), builder.op("MatMul", [l21, l21_t])]
    )
    l22 = half(schur, n - n1)
    pads = [0] * (2 * ndim)
    pads[2 * ndim - 1] = n - n1
    top = builder.op("Pad", [l11, builder.int64s(pads)])
    bottom = builder.op("Concat", [l21, l22], {"axis": -1})
    return builder.op("Concat", [top, bottom], {"axis": -2})


@dataclass(frozen=True)
class LUResult:
    """LU factorization with partial pivoting (LAPACK ``getrf``) of a stack of ``m``-by-``n``
    matrices, ``m >= n`` (square for the factorization of a matrix, taller for a panel).

    Attributes
    ----------
    packed
        (..., m, n): the unit lower factor strictly below the diagonal, the upper factor on
        and above it, rows in pivot order.
    perm
        (..., m) int64: the row permutation, ``(P @ a)[i] = a[perm[i]]`` with
        ``P @ a = L @ U``.
    pivots
        (..., n) int64: LAPACK's 0-based row interchanges (row ``k`` was swapped with row
        ``pivots[k]``).
    """

    packed: ir.Value
    perm: ir.Value
    pivots: ir.Value


def recursive_lu(
    builder: ONNXBuilder,
    a: ir.Value,
    m: int,
    n: int,
    ndim: int,
    base_max: int,
    base: LUBase,
    solve: LowerSolve,
) -> LUResult:
    """The pivoted LU factorization of the panels ``a`` (..., m, n), ``m >= n``, by
    recursive halving of the columns (LAPACK's ``getrf2`` order).

    The left ``n1 = n // 2`` columns are factored first; their row interchanges are applied
    to the right columns, whose top rows become ``U12 = L11^-1 A12`` (a unit-lower
    ``solve``) and whose other rows the Schur complement ``A22 - L21 U12`` (one
    ``MatMul``), factored in turn; its interchanges are applied to ``L21``.  Panels of at
    most ``base_max`` columns take the column-step ``base``.  The pivots are those of the
    column-by-column algorithm, up to the rounding of the updates.
    """
    if n <= base_max:
        return base(builder, a, m, n)
    n1 = n // 2
    left = recursive_lu(
        builder, _block(builder, a, (0, m), (0, n1)), m, n1, ndim, base_max, base, solve
    )
    right = permute_rows(builder, _block(builder, a, (0, m), (n1, n)), left.perm, ndim)
    u12 = solve(
        builder, _block(builder, left.packed, (0, n1), (0, n1)), _rows(builder, right, 0, n1), n1
    )
    l21 = _rows(builder, left.packed, n1, m)
    schur = builder.op("Sub", [_rows(builder, right, n1, m), builder.op("MatMul", [l21, u12])])
    bottom = recursive_lu(builder, schur, m - n1, n - n1, ndim, base_max, base, solve)
    top = builder.op("Concat", [_rows(builder, left.packed, 0, n1), u12], {"axis": -1})
    lower = builder.op(
        "Concat", [permute_rows(builder, l21, bottom.perm, ndim), bottom.packed], {"axis": -1}
    )
    rest = builder.op(
        "Slice", [left.perm, builder.int64s([n1]), builder.int64s([m]), builder.int64s([-1])]
    )
    first = builder.op(
        "Slice", [left.perm, builder.int64s([0]), builder.int64s([n1]), builder.int64s([-1])]
    )
    moved = builder.op(
        "GatherND",
        [rest, builder.op("Unsqueeze", [bottom.perm, builder.int64s([-1])])],
        {"batch_dims": ndim - 2},
    )
    return LUResult(
        builder.op("Concat", [top, lower], {"axis": -2}),
        builder.op("Concat", [first, moved], {"axis": -1}),
        builder.op(
            "Concat",
            [left.pivots, builder.op("Add", [bottom.pivots, builder.scalar(n1, "int64")])],
            {"axis": -1},
        ),
    )


def _within_blocks(
    builder: ONNXBuilder, flat: ir.Value, nb: int, size: int, rows: int, columns: int
) -> ir.Value:
    """The ``size``-by-``size`` sub-blocks at offset ``(rows, columns)`` inside each
    ``2 size``-block of the diagonal of the ``nb``-by-``nb`` matrices ``flat`` (..., nb * nb).

    One ``Gather`` of the flattened matrices; the result is (..., nb / (2 size), size, size).
    """
    starts = np.arange(0, nb, 2 * size)[:, None, None]
    row = starts + rows + np.arange(size)[None, :, None]
    column = starts + columns + np.arange(size)[None, None, :]
    return builder.op("Gather", [flat, builder.const(row * nb + column, "int64")], {"axis": -1})


def triangular_inverse(
    builder: ONNXBuilder,
    blocks: ir.Value,
    nb: int,
    rank: int,
    dtype: str,
    *,
    lower: bool,
    unit_diagonal: bool,
) -> ir.Value:
    """The inverses of the triangular ``nb``-by-``nb`` matrices ``blocks`` (rank ``rank``).

    Recursive doubling, unrolled without a ``Loop``: the inverses of the ``s``-by-``s``
    diagonal sub-blocks of all matrices are known (first the reciprocals of the diagonal),
    and those of the ``2s``-by-``2s`` sub-blocks follow from
    ``[[A, 0], [C, D]]^-1 = [[A^-1, 0], [-D^-1 C A^-1, D^-1]]`` (upper:
    ``[[A, B], [0, D]]^-1 = [[A^-1, -A^-1 B D^-1], [0, D^-1]]``), two batched ``MatMul``
    nodes per doubling.  ``nb`` must be a power of two.  Only the ``lower`` (upper) triangle
    is read; with ``unit_diagonal`` the diagonal is taken as ones.  A zero on the diagonal
    gives infinities or NaN in that matrix's inverse.
    """
    if nb & (nb - 1):
        raise ValueError(f"the block size must be a power of two, not {nb}")
    flat = builder.op("Reshape", [blocks, builder.int64s([0] * (rank - 2) + [nb * nb])])
    diagonal = builder.op(
        "Gather", [flat, builder.const(np.arange(nb) * (nb + 1), "int64")], {"axis": -1}
    )
    inverse = builder.op("Reshape", [diagonal, builder.int64s([0] * (rank - 2) + [nb, 1, 1])])
    if unit_diagonal:
        inverse = builder.op("Expand", [builder.scalar(1, dtype), builder.op("Shape", [inverse])])
    else:
        inverse = builder.op("Div", [builder.scalar(1, dtype), inverse])
    size = 1
    while size < nb:
        first, second = (
            builder.op(
                "Slice",
                [
                    inverse,
                    builder.int64s([start]),
                    builder.int64s([nb]),
                    builder.int64s([-3]),
                    builder.int64s([2]),
                ],
            )
            for start in (0, 1)
        )
        coupling = _within_blocks(builder, flat, nb, size, *((size, 0) if lower else (0, size)))
        if lower:
            product = builder.op("MatMul", [second, builder.op("MatMul", [coupling, first])])
        else:
            product = builder.op("MatMul", [first, builder.op("MatMul", [coupling, second])])
        off = builder.op("Neg", [product])
        # The zero block is padded in (not computed from ``off``, which may hold inf).
        pads = [0] * (2 * (rank + 1))
        pads[-1 if lower else rank] = size
        zero_padded = builder.op("Pad", [first if lower else second, builder.int64s(pads)])
        top = zero_padded if lower else builder.op("Concat", [first, off], {"axis": -1})
        bottom = builder.op("Concat", [off, second], {"axis": -1}) if lower else zero_padded
        inverse = builder.op("Concat", [top, bottom], {"axis": -2})
        size *= 2
    return builder.op("Reshape", [inverse, builder.int64s([0] * (rank - 2) + [nb, nb])])


def diagonal_block_inverses(
    builder: ONNXBuilder,
    a: ir.Value,
    n: int,
    ndim: int,
    nb: int,
    dtype: str,
    *,
    lower: bool,
    unit_diagonal: bool,
) -> list[ir.Value]:
    """The inverses of the ``nb``-by-``nb`` diagonal blocks of triangular ``a`` (..., n, n).

    All blocks are inverted together (stacked on a new axis, one
    :func:`triangular_inverse`).  A last block smaller than ``nb`` is completed with an
    identity corner, whose inverse is itself, and its inverse is cut back.
    """
    blocks = []
    for start in range(0, n, nb):
        stop = min(start + nb, n)
        block = _block(builder, a, (start, stop), (start, stop))
        extra = nb - (stop - start)
        if extra:
            pads = [0] * (2 * ndim)
            pads[2 * ndim - 2] = pads[2 * ndim - 1] = extra
            corner = np.diag(np.arange(nb) >= stop - start).astype(dtype)
            block = builder.op(
                "Add", [builder.op("Pad", [block, builder.int64s(pads)]), builder.const(corner)]
            )
        blocks.append(builder.op("Unsqueeze", [block, builder.int64s([-3])]))
    stacked = blocks[0] if len(blocks) == 1 else builder.op("Concat", blocks, {"axis": -3})
    inverses = triangular_inverse(
        builder, stacked, nb, ndim + 1, dtype, lower=lower, unit_diagonal=unit_diagonal
    )
    result = []
    for index, start in enumerate(range(0, n, nb)):
        size = min(nb, n - start)
        one = builder.op(
            "Slice",
            [inverses, builder.int64s([index]), builder.int64s([index + 1]), builder.int64s([-3])],
        )
        one = builder.op("Squeeze", [one, builder.int64s([-3])])
        result.append(_block(builder, one, (0, size), (0, size)) if size < nb else one)
    return result


def blocked_solve(
    builder: ONNXBuilder,
    a: ir.Value,
    b: ir.Value,
    n: int,
    nb: int,
    inverses: list[ir.Value],
    *,
    lower: bool,
) -> ir.Value:
    """Solve ``a x = b`` for triangular ``a`` (..., n, n) given its diagonal block inverses.

    Block substitution with ``nb``-row blocks, unrolled (``n`` is static): block ``i`` of
    ``x`` is ``inverse_i (b_i - a[i, done] x[done])``, with ``done`` the blocks solved
    before (above for ``lower``, below otherwise); every step is two ``MatMul`` nodes.
    """
    starts = list(range(0, n, nb))
    order = range(len(starts)) if lower else reversed(range(len(starts)))
    solved: list[ir.Value] = []
    for index in order:
        start, stop = starts[index], min(starts[index] + nb, n)
        residual = _rows(builder, b, start, stop)
        if solved:
            done = solved[0] if len(solved) == 1 else builder.op("Concat", solved, {"axis": -2})
            columns = (0, start) if lower else (stop, n)
            coupling = builder.op("MatMul", [_block(builder, a, (start, stop), columns), done])
            residual = builder.op("Sub", [residual, coupling])
        x = builder.op("MatMul", [inverses[index], residual])
        solved = [*solved, x] if lower else [x, *solved]
    return solved[0] if len(solved) == 1 else builder.op("Concat", solved, {"axis": -2})
