"""Symmetric eigen- and singular-value decompositions by Jacobi rotations in ONNX.

ONNX has no eigen or SVD operator, and the algorithms LAPACK uses (tridiagonal or bidiagonal
reduction followed by QR iterations, divide and conquer or MRRR) are long chains of scalar
decisions.  Jacobi methods instead repeat one vectorizable step: rotate pairs of rows and
columns so that one off-diagonal entry (two-sided, for ``eigh``) or one column inner product
(one-sided, for the SVD) becomes zero.

Rotations run in *parallel order* (a round-robin tournament): a sweep is ``n - 1`` rounds (``n``
if ``n`` is odd), and in each round the indices form ``n // 2`` disjoint pairs that are rotated
at the same time.  Round ``r`` pairs ``j`` with ``(2r - j) mod (n' - 1)`` and ``r`` with
``n' - 1``, where ``n'`` is ``n`` rounded up to even (an index paired with ``n'-1 = n`` when
``n`` is odd sits the round out).  One round is a few ``Gather``/``Mul``/``Add`` nodes on whole
matrices, O(n²) work, and a sweep touches every pair once; sweeps repeat in an ONNX ``Loop``
until the matrices are diagonal (orthogonal) to working precision, at most :data:`MAX_SWEEPS`
times.  Jacobi methods converge quadratically once the off-diagonal part is small; 4 to 13
sweeps were measured in float64 for n = 5 to 100 (``benchmarks/bench_linalg.py``).

The rotation for a pair ``p < q`` is the one of Golub & Van Loan's ``sym.schur2``:
``tau = (a_qq - a_pp) / (2 a_pq)``, ``t = sign(tau) / (|tau| + sqrt(1 + tau²))``,
``c = 1 / sqrt(1 + t²)``, ``s = t c``; row (column) ``p`` becomes ``c x_p - s x_q`` and row
(column) ``q`` becomes ``s x_p + c x_q``.  The one-sided method uses the same rotation on the
Gram entries ``(|x_p|², |x_q|², x_p·x_q)`` of the columns (Hestenes' method).

Every function works on stacks of matrices (leading batch dimensions) in one dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch import linalg as la
from pytensor_onnx.dispatch._loop import Carry, Step, fori_loop, while_any
from pytensor_onnx.dispatch._numerics import Num

#: Upper bound on the number of sweeps (float64 took 4-13 in measurements up to n = 100).
MAX_SWEEPS = 40


@dataclass(frozen=True)
class Tournament:
    """The round-robin pairing of ``n`` indices, as a table computed once, outside the loops.

    Round ``r`` pairs ``j`` with ``(2r - j) mod (n' - 1)`` and ``r`` with ``n' - 1``, where
    ``n'`` is ``n`` rounded up to even; with ``n`` odd, index ``n' - 1 = n`` is a phantom and
    meeting it means sitting the round out (being one's own partner).

    Attributes
    ----------
    rounds
        The number of rounds of a sweep, ``n' - 1`` (0 for no indices).
    table
        ``table[r, j]``: the partner of index ``j`` in round ``r`` (int64, (rounds, n)).
    """

    rounds: la.Size
    table: ir.Value

    @classmethod
    def of(cls, builder: ONNXBuilder, n: la.Size) -> Tournament:
        """The tournament of ``n`` indices."""
        one = builder.scalar(1, "int64")
        even = builder.op(
            "Add", [n.value, builder.op("Mod", [n.value, builder.scalar(2, "int64")])]
        )
        last = builder.op("Sub", [even, one])
        modulus = builder.op("Max", [last, one])
        if n.static is not None:
            rounds = la.size_of(builder, n.value, 0, max(n.static + n.static % 2 - 1, 0))
        else:
            count = builder.op("Max", [last, builder.scalar(0, "int64")])
            arange = builder.op("Range", [builder.scalar(0, "int64"), count, one])
            rounds = la.Size(count, None, arange, la.unsqueeze(builder, arange, 1))
        r, j = rounds.rows, n.arange
        # (2r - j) mod (n' - 1), shifted to be non-negative before the Mod.
        shifted = builder.op(
            "Add",
            [
                builder.op("Sub", [builder.op("Add", [r, r]), j]),
                builder.op("Add", [modulus, modulus]),
            ],
        )
        partner = builder.op("Mod", [shifted, modulus])
        partner = la.where(builder, la.compare(builder, "Equal", partner, j), last, partner)
        partner = la.where(builder, la.compare(builder, "Equal", j, last), r, partner)
        outside = la.compare(builder, "GreaterOrEqual", partner, n.value)
        return cls(rounds, la.where(builder, outside, j, partner))

    def partners(self, builder: ONNXBuilder, r: ir.Value) -> ir.Value:
        """The partner of each index in round ``r`` (itself when it sits out)."""
        return builder.op("Gather", [self.table, r], {"axis": 0})


@dataclass(frozen=True)
class Rotation:
    """The rotations of one round, as per-index coefficients.

    After the rotation, index ``j`` holds ``c[j] * x[j] + sigma[j] * x[partner[j]]`` (rows or
    columns): ``sigma`` is ``-s`` for the lower index of a pair, ``+s`` for the upper one and 0
    for an index that sits the round out.
    """

    partner: ir.Value
    c: ir.Value
    sigma: ir.Value

    def apply(
        self, builder: ONNXBuilder, x: ir.Value, axis: int, swapped: ir.Value | None = None
    ) -> ir.Value:
        """Rotate the rows (``axis=-2``) or columns (``axis=-1``) of ``x``.

        ``swapped`` is ``x`` with its rows (columns) gathered by partner, if already at hand.
        """
        c, sigma = self.c, self.sigma
        if axis == -2:
            c, sigma = la.unsqueeze(builder, c, -1), la.unsqueeze(builder, sigma, -1)
        else:
            c, sigma = la.unsqueeze(builder, c, -2), la.unsqueeze(builder, sigma, -2)
        if swapped is None:
            swapped = builder.op("Gather", [x, self.partner], {"axis": axis})
        return builder.op("Add", [builder.op("Mul", [x, c]), builder.op("Mul", [swapped, sigma])])


def rotation(
    num: Num, n: la.Size, partner: ir.Value, diagonal: ir.Value, off: ir.Value
) -> Rotation:
    """The rotations that zero ``off`` between each pair.

    ``diagonal[..., j]`` is the diagonal entry (squared column norm) of index ``j`` and
    ``off[..., j]`` the entry (inner product) between ``j`` and its partner; both members of a
    pair compute the same ``c`` and ``s``.
    """
    b = num.builder
    j = n.arange
    other = b.op("Gather", [diagonal, partner], {"axis": -1})
    lower = la.compare(b, "Less", j, partner)
    alone = la.compare(b, "Equal", j, partner)
    gap = num.where(lower, num.sub(other, diagonal), num.sub(diagonal, other))
    # Pairs with nothing to remove (or sitting out) get t = 0; their divisor is made 1 so
    # that no inf/NaN is formed on the way.
    skip = num.either(alone, num.eq(off, 0))
    tau = num.div(gap, num.mul(num.where(skip, 1, off), 2))
    magnitude = num.unary("Abs", tau)
    # sign(tau) with sign(0) = +1 (a 45 degree rotation for equal diagonal entries); for
    # |tau| beyond sqrt(max) the denominator is inf and t = 0, a negligible rotation.
    t = num.div(
        num.where(num.lt(tau, 0), -1, 1),
        num.add(magnitude, num.unary("Sqrt", num.add(num.mul(tau, tau), 1))),
    )
    t = num.where(skip, 0, t)
    c = num.div(1, num.unary("Sqrt", num.add(num.mul(t, t), 1)))
    s = num.mul(t, c)
    sigma = num.where(lower, num.unary("Neg", s), s)
    return Rotation(partner, c, sigma)


def _sweeps(
    num: Num,
    state: list[ir.Value],
    one_round: Step,
    rounds: la.Size,
    converged: Callable[[Num, list[ir.Value]], ir.Value],
    name: str,
) -> list[ir.Value]:
    """Repeat sweeps of ``one_round`` until ``converged(state)`` (a per-matrix mask) holds."""

    def sweep(body: Num, values: list[ir.Value]) -> tuple[list[ir.Value], ir.Value]:
        carries = [Carry(v, num.dtype) for v in values]
        new, _ = fori_loop(body.builder, rounds, carries, [], one_round, f"{name}_round")
        return new, body.builder.op("Not", [converged(body, new)])

    return while_any(num, state, sweep, MAX_SWEEPS, name)


def _eps(dtype: str) -> float:
    return float(np.finfo(dtype).eps)


def symmetric_eigen(
    builder: ONNXBuilder, a: ir.Value, n: la.Size, ndim: int, dtype: str, vectors: bool
) -> tuple[ir.Value, ir.Value | None]:
    """Eigenvalues (ascending) and, if ``vectors``, eigenvectors of symmetric matrices ``a``.

    Two-sided cyclic Jacobi: each round applies the rotations to the rows and the columns of
    the working matrix, sets the zeroed pair entries to exactly 0 and accumulates the
    rotations into the eigenvector matrix.  A sweep ends the iteration when the Frobenius
    norm of the off-diagonal part is at most ``eps * ||a||_F``.
    """
    num = Num(builder, dtype)
    a, scale = la.power_of_two_scale(builder, a, dtype)
    on_diagonal = la.compare(builder, "Equal", n.rows, n.arange)
    # Reductions name their axes non-negatively: onnxruntime-node/-web return an empty
    # input unchanged from a reduction over a negative axis, and the optimizer cannot
    # rewrite the ones inside (or after) the loops, where ranks are unknown.
    matrix_axes = builder.int64s([ndim - 2, ndim - 1])
    norm = builder.op("ReduceL2", [a, matrix_axes], {"keepdims": 1})
    tolerance = num.mul(norm, _eps(dtype))
    tournament = Tournament.of(builder, n)

    # Entries are read from the matrices flattened to (..., n*n): O(n) gathers.  The length
    # is spelled out: a -1 cannot be resolved for an empty batch.
    entries = builder.op("Unsqueeze", [builder.op("Mul", [n.value, n.value]), builder.int64s([0])])
    flat_shape = builder.op("Concat", [builder.op("Shape", [a], {"end": -2}), entries], {"axis": 0})
    diagonal_at = builder.op(
        "Mul", [n.arange, builder.op("Add", [n.value, builder.scalar(1, "int64")])]
    )

    def one_round(b: ONNXBuilder, r: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        w = state[0]
        partner = tournament.partners(b, r)
        flat = b.op("Reshape", [w, flat_shape])
        # w[p, q] for the pair p < q of j: the entry the rotation removes.  Both members of a
        # pair read the same entry (rounding leaves w[q, p] slightly different), so that
        # they compute the same rotation and the accumulated vectors stay orthogonal.
        first = b.op("Min", [partner, n.arange])
        second = b.op("Max", [partner, n.arange])
        off_at = b.op("Add", [b.op("Mul", [first, n.value]), second])
        off = b.op("Gather", [flat, off_at], {"axis": -1})
        diagonal = b.op("Gather", [flat, diagonal_at], {"axis": -1})
        rot = rotation(Num(b, dtype), n, partner, diagonal, off)
        w = rot.apply(b, rot.apply(b, w, -2), -1)
        pair = b.op(
            "And",
            [
                la.compare(b, "Equal", n.arange, la.unsqueeze(b, partner, -1)),
                la.unsqueeze(b, b.op("Not", [la.compare(b, "Equal", partner, n.arange)]), -1),
            ],
        )
        w = la.where(b, pair, b.scalar(0, dtype), w)
        return [w, *(rot.apply(b, v, -1) for v in state[1:])]

    def converged(body: Num, state: list[ir.Value]) -> ir.Value:
        b = body.builder
        masked = la.where(b, on_diagonal, b.scalar(0, dtype), state[0])
        off_norm = b.op("ReduceL2", [masked, matrix_axes], {"keepdims": 1})
        return b.op("Not", [body.gt(off_norm, tolerance)])

    start = [a] + ([la.identity_like(builder, a, n, dtype)] if vectors else [])
    final = _sweeps(num, start, one_round, tournament.rounds, converged, "eigh")
    diagonal = la.diagonal(builder, final[0], n, ndim, dtype)
    values, order = builder.top_k(diagonal, builder.dim(a, -1), -1, dtype, largest=False)
    values = num.mul(values, builder.op("Squeeze", [scale, builder.int64s([-1])]))
    if not vectors:
        return values, None
    return values, permute_columns(builder, final[1], order, ndim)


def permute_columns(builder: ONNXBuilder, x: ir.Value, order: ir.Value, ndim: int) -> ir.Value:
    """Columns of ``x`` (rank ``ndim``) reordered: ``out[..., :, i] = x[..., :, order[..., i]]``."""
    flipped = la.transpose_last(builder, x, ndim)
    return la.transpose_last(builder, la.permute_rows(builder, flipped, order, ndim), ndim)


@dataclass(frozen=True)
class Orthogonalized:
    """The result of one-sided Jacobi on ``a`` (..., m, n): ``a @ v = x``.

    The columns of ``x`` are mutually orthogonal; their norms ``s`` are the singular values
    (in column order, not sorted) and ``v`` (``None`` unless asked for) is orthogonal.
    """

    x: ir.Value
    s: ir.Value
    v: ir.Value | None


def orthogonalize_columns(
    builder: ONNXBuilder,
    a: ir.Value,
    sizes: tuple[la.Size, la.Size],
    ndim: int,
    dtype: str,
    vectors: bool,
) -> Orthogonalized:
    """One-sided (Hestenes) Jacobi: rotate the columns of ``a`` until they are orthogonal.

    ``sizes`` are the row and column counts.  Each round rotates column pairs by the angle
    that makes them orthogonal (computed from their Gram entries); a sweep ends the
    iteration when every pair ``i != j`` of columns satisfies
    ``|x_i · x_j| <= tol * |x_i| |x_j|`` with ``tol = max(m, n) * eps``.  Columns whose norm
    is below ``max(m, n) * eps * ||a||_F`` are left out of that test: a wide (or rank
    deficient) matrix has more columns than its rank, and those columns shrink to rounding
    noise, which cannot be made mutually orthogonal.
    """
    rows, cols = sizes
    num = Num(builder, dtype)
    a, scale = la.power_of_two_scale(builder, a, dtype)
    eps = _eps(dtype)
    largest = builder.cast(builder.op("Max", [rows.value, cols.value]), dtype, "int64")
    tol = num.mul(largest, eps)
    # Non-negative axes, as in symmetric_eigen.
    matrix_axes = builder.int64s([ndim - 2, ndim - 1])
    norm = builder.op("ReduceL2", [a, matrix_axes], {"keepdims": 1})
    negligible = num.mul(num.mul(norm, tol), num.mul(norm, tol))
    on_diagonal = la.compare(builder, "Equal", cols.rows, cols.arange)
    tournament = Tournament.of(builder, cols)
    along_rows = builder.int64s([ndim - 2])

    def one_round(b: ONNXBuilder, r: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        x = state[0]
        partner = tournament.partners(b, r)
        swapped = b.op("Gather", [x, partner], {"axis": -1})
        squares = b.op("ReduceSumSquare", [x, along_rows], {"keepdims": 0})
        inner = b.op("ReduceSum", [b.op("Mul", [x, swapped]), along_rows], {"keepdims": 0})
        rot = rotation(Num(b, dtype), cols, partner, squares, inner)
        return [rot.apply(b, x, -1, swapped), *(rot.apply(b, v, -1) for v in state[1:])]

    def converged(body: Num, state: list[ir.Value]) -> ir.Value:
        b = body.builder
        x = state[0]
        gram = b.op("MatMul", [la.transpose_last(b, x, ndim), x])
        squares = la.diagonal(b, gram, cols, ndim, dtype)
        significant = body.gt(squares, b.op("Squeeze", [negligible, b.int64s([-1])]))
        norms = body.unary(
            "Sqrt",
            body.mul(la.unsqueeze(b, squares, -1), la.unsqueeze(b, squares, -2)),
        )
        apart = body.gt(body.unary("Abs", gram), body.mul(norms, tol))
        both = b.op("And", [la.unsqueeze(b, significant, -1), la.unsqueeze(b, significant, -2)])
        bad = b.op("And", [b.op("And", [apart, both]), b.op("Not", [on_diagonal])])
        count = b.op("ReduceSum", [b.cast(bad, "int64", "bool"), matrix_axes], {"keepdims": 0})
        return la.compare(b, "Equal", count, b.scalar(0, "int64"))

    start = [a] + ([la.identity_like(builder, a, cols, dtype)] if vectors else [])
    final = _sweeps(num, start, one_round, tournament.rounds, converged, "svd")
    x = num.mul(final[0], scale)
    s = builder.op("ReduceL2", [final[0], along_rows], {"keepdims": 0})
    s = num.mul(s, builder.op("Squeeze", [scale, builder.int64s([-1])]))
    return Orthogonalized(x, s, final[1] if vectors else None)
