"""LU factorization and solves of tridiagonal matrices, as LAPACK ``gttrf`` / ``gttrs``.

A tridiagonal matrix of order ``n`` is given by its three diagonals ``dl`` (below, ``n - 1``),
``d`` (``n``) and ``du`` (above, ``n - 1``).  The factorization with partial pivoting
(``gttrf``) walks down the diagonal once: step ``i`` compares ``|d[i]|`` with ``|dl[i]|``,
interchanges rows ``i`` and ``i + 1`` when the entry below is strictly larger (ties keep the
row, as LAPACK), and eliminates; an interchange fills the second superdiagonal ``du2[i]``.
The solves (``gttrs``: ``L`` then ``U``, or ``U^T`` then ``L^T``) are one forward and one
backward substitution.  Each is a loop of per-matrix scalar (per-row) steps that carries
only the entries the next step changes and emits the finished ones as per-step outputs, so
the work is O(n) per matrix.  The arithmetic is LAPACK's, operation for operation.

Every function works on stacks of matrices: leading batch dimensions broadcast as in NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch._loop import Carry, ScanOut, Step, Steps, fori_loop
from pytensor_onnx.dispatch.linalg import (
    batch_shape,
    expand_batch,
    reverse_first,
    take,
    unsqueeze,
    unstack_to,
)


@dataclass(frozen=True)
class TridiagonalLU:
    """What ``gttrf`` returns, with LAPACK's 1-based pivots as ``int64``.

    Attributes
    ----------
    dl, d, du, du2
        The multipliers of ``L`` (``n - 1``), and the diagonal and the first and second
        superdiagonals of ``U`` (``n``, ``n - 1``, ``n - 2``).
    ipiv
        Row ``i`` was interchanged with row ``ipiv[i] - 1`` (``i`` itself or ``i + 1``).
    """

    dl: ir.Value
    d: ir.Value
    du: ir.Value
    du2: ir.Value
    ipiv: ir.Value


def _count(builder: ONNXBuilder, n: ir.Value, static: int | None, less: int) -> Steps:
    """``max(n - less, 0)`` as a loop count."""
    value = builder.op(
        "Max", [builder.op("Sub", [n, builder.scalar(less, "int64")]), builder.scalar(0, "int64")]
    )
    return Steps(value, None if static is None else max(static - less, 0))


def factor(
    builder: ONNXBuilder,
    dl: ir.Value,
    d: ir.Value,
    du: ir.Value,
    n: ir.Value,
    static: int | None,
    rank: int,
    dtype: str,
) -> TridiagonalLU:
    """LAPACK ``gttrf`` of the tridiagonal matrices with diagonals ``dl``, ``d``, ``du``.

    ``n`` is the order (0-d int64; ``static`` if known) and ``rank`` the rank of the
    outputs (batch axes + 1).  A zero pivot stays in ``d`` (``gttrf``'s ``info > 0``).
    """
    batch = batch_shape(builder, [(dl, 1), (d, 1), (du, 1)])
    dl, d, du = (expand_batch(builder, x, batch, 1) for x in (dl, d, du))
    zero = builder.scalar(0, dtype)
    # A zero past the end of d and du: the last step reads du[n - 1], and a matrix of
    # order 1 (no steps) still starts from d[0] and du[0].
    d, du = (builder.pad_axis(x, -1, 0, 1, rank=rank) for x in (d, du))

    def step(b: ONNXBuilder, i: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        d_i, du_i = state
        after = b.op("Add", [i, b.scalar(1, "int64")])
        dl_i, d_next, du_next = take(b, dl, i, -1), take(b, d, after, -1), take(b, du, after, -1)
        keep = b.op("GreaterOrEqual", [b.op("Abs", [d_i]), b.op("Abs", [dl_i])])
        # Rows kept: eliminate dl[i] with the pivot d[i], unless that is zero.
        nonzero = b.op("Not", [b.op("Equal", [d_i, zero])])
        fact = b.op("Div", [dl_i, d_i])
        eliminated = b.op("Sub", [d_next, b.op("Mul", [fact, du_i])])
        d_next_kept = b.op("Where", [nonzero, eliminated, d_next])
        dl_kept = b.op("Where", [nonzero, fact, dl_i])
        # Rows i and i + 1 interchanged, then dl[i] eliminated.
        fact_swap = b.op("Div", [d_i, dl_i])
        d_next_swap = b.op("Sub", [du_i, b.op("Mul", [fact_swap, d_next])])
        du_next_swap = b.op("Neg", [b.op("Mul", [fact_swap, du_next])])
        return [
            # carried: the next step's d[i] and du[i]
            b.op("Where", [keep, d_next_kept, d_next_swap]),
            b.op("Where", [keep, du_next, du_next_swap]),
            # finished: dl[i], d[i], du[i], du2[i], the 0-based pivot
            b.op("Where", [keep, dl_kept, fact_swap]),
            b.op("Where", [keep, d_i, dl_i]),
            b.op("Where", [keep, du_i, d_next]),
            b.op("Where", [keep, zero, du_next]),
            b.op("Where", [keep, i, after]),
        ]

    first = builder.scalar(0, "int64")
    (d_last, _), stacked = fori_loop(
        builder,
        _count(builder, n, static, 1),
        [Carry(take(builder, d, first, -1), dtype), Carry(take(builder, du, first, -1), dtype)],
        [ScanOut(dtype, batch)] * 4 + [ScanOut("int64", batch)],
        step,
        "gttrf",
    )
    dl_out, d_out, du_out, du2_out, pivots = (unstack_to(builder, x, rank, -1) for x in stacked)
    d_out = builder.op("Concat", [d_out, unsqueeze(builder, d_last, -1)], {"axis": -1})
    # du2 has n - 2 entries (the last step's is never set); ipiv is 1-based, ipiv[n-1] = n.
    du2_size = unsqueeze(builder, _count(builder, n, None, 2).value, 0)
    du2_out = builder.op("Slice", [du2_out, builder.int64s([0]), du2_size, builder.int64s([-1])])
    last = expand_batch(builder, unsqueeze(builder, n, 0), batch, 1)
    one_based = builder.op("Add", [pivots, builder.scalar(1, "int64")])
    ipiv = builder.op("Concat", [one_based, last], {"axis": -1})
    return TridiagonalLU(dl_out, d_out, du_out, du2_out, ipiv)


def solve(
    builder: ONNXBuilder,
    lu: TridiagonalLU,
    b: ir.Value,
    n: ir.Value,
    static: int | None,
    rank: int,
    dtype: str,
    *,
    transposed: bool,
) -> ir.Value:
    """LAPACK ``gttrs``: ``x`` with ``A x = b`` (``A^T x = b`` if ``transposed``).

    ``b`` is a stack of (n, m) matrices and ``rank`` the rank of the solution; ``lu`` is
    the factorization of ``A`` (its batch broadcasts against ``b``'s).  No pivot is checked,
    as in ``gttrs``: a zero in ``lu.d`` gives infinities or NaN.
    """
    batch = batch_shape(builder, [(b, 2), (lu.d, 1)])
    sub = _Substitution(
        builder,
        expand_batch(builder, b, batch, 2),
        n,
        rank,
        dtype,
        builder.op("Concat", [batch, builder.op("Shape", [b], {"start": -1})], {"axis": 0}),
    )
    # Per-row factor entries as columns (of the solution's rank), to broadcast over the
    # right-hand sides.
    dl, d, du, du2 = (
        unsqueeze(builder, expand_batch(builder, x, batch, 1), -1)
        for x in (lu.dl, lu.d, lu.du, lu.du2)
    )
    one = builder.scalar(1, "int64")
    positions = builder.op("Range", [one, builder.op("Add", [n, one]), one])
    swapped = builder.op("Not", [builder.op("Equal", [lu.ipiv, positions])])
    swapped = unsqueeze(builder, swapped, -1)
    lower_steps = _count(builder, n, static, 1)
    upper_steps = Steps(n, static)
    if transposed:
        # U^T forward: x[i] = (b[i] - du[i-1] x[i-1] - du2[i-2] x[i-2]) / d[i].
        du = builder.pad_axis(du, -2, 1, 0, rank=rank)
        du2 = builder.pad_axis(du2, -2, 2, 0, rank=rank)
        z = sub.upper(sub.b, d, du, du2, upper_steps, backward=False)
        return sub.lower_transposed(z, dl, swapped, lower_steps)
    y = sub.lower(dl, swapped, lower_steps)
    # U backward: x[i] = (y[i] - du[i] x[i+1] - du2[i] x[i+2]) / d[i].
    du, du2 = builder.pad_axis(du, -2, 0, 1, rank=rank), builder.pad_axis(du2, -2, 0, 2, rank=rank)
    return sub.upper(y, d, du, du2, upper_steps, backward=True)


@dataclass(frozen=True)
class _Substitution:
    """The row loops of ``gttrs`` over right-hand sides ``b`` (..., n, m) of rank ``rank``.

    Each loop emits one finished row per step (shape ``row_shape``), stacked and moved back
    into place.  Factor entries are read as ``(..., 1)`` columns at the step's row.
    """

    builder: ONNXBuilder
    b: ir.Value
    n: ir.Value
    rank: int
    dtype: str
    row_shape: ir.Value

    def _rows(self, stacked: ir.Value, *, reverse: bool) -> ir.Value:
        if reverse:
            stacked = reverse_first(self.builder, stacked)
        return unstack_to(self.builder, stacked, self.rank, -2)

    def _loop(
        self, steps: Steps, start: list[ir.Value], step: Step, name: str
    ) -> tuple[list[ir.Value], ir.Value]:
        carried, (stacked,) = fori_loop(
            self.builder,
            steps,
            [Carry(value, self.dtype) for value in start],
            [ScanOut(self.dtype, self.row_shape)],
            step,
            name,
        )
        return carried, stacked

    def _from_end(self, b: ONNXBuilder, j: ir.Value, offset: int) -> ir.Value:
        """Row ``n - offset - j``: the ``j``-th step of a backward loop."""
        return b.op("Sub", [b.op("Sub", [self.n, b.scalar(offset, "int64")]), j])

    def lower(self, dl: ir.Value, swapped: ir.Value, steps: Steps) -> ir.Value:
        """``L y = P b``: row ``i + 1`` loses ``dl[i]`` times row ``i``, after the
        interchange of rows ``i`` and ``i + 1`` where ``swapped``."""

        def step(b: ONNXBuilder, i: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
            (current,) = state
            following = take(b, self.b, b.op("Add", [i, b.scalar(1, "int64")]), -2)
            swap = take(b, swapped, i, -2)
            row = b.op("Where", [swap, following, current])
            pending = b.op("Where", [swap, current, following])
            return [b.op("Sub", [pending, b.op("Mul", [take(b, dl, i, -2), row])]), row]

        first = take(self.builder, self.b, self.builder.scalar(0, "int64"), -2)
        (last,), stacked = self._loop(steps, [first], step, "gttrs_l")
        last_row = self.builder.op("Unsqueeze", [last, self.builder.int64s([0])])
        return self._rows(
            self.builder.op("Concat", [stacked, last_row], {"axis": 0}), reverse=False
        )

    def lower_transposed(
        self, z: ir.Value, dl: ir.Value, swapped: ir.Value, steps: Steps
    ) -> ir.Value:
        """``L^T`` backward: row ``i`` loses ``dl[i]`` times row ``i + 1``, then rows ``i``
        and ``i + 1`` are interchanged where ``swapped``."""

        def step(b: ONNXBuilder, j: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
            (current,) = state  # row i + 1 as the later steps left it
            i = self._from_end(b, j, 2)
            reduced = b.op("Sub", [take(b, z, i, -2), b.op("Mul", [take(b, dl, i, -2), current])])
            swap = take(b, swapped, i, -2)
            return [
                b.op("Where", [swap, current, reduced]),
                b.op("Where", [swap, reduced, current]),
            ]

        builder = self.builder
        start = take(builder, z, builder.op("Sub", [self.n, builder.scalar(1, "int64")]), -2)
        (first,), stacked = self._loop(steps, [start], step, "gttrs_lt")
        rows = [
            builder.op("Unsqueeze", [first, builder.int64s([0])]),
            reverse_first(builder, stacked),
        ]
        return self._rows(builder.op("Concat", rows, {"axis": 0}), reverse=False)

    def upper(
        self,
        y: ir.Value,
        d: ir.Value,
        du: ir.Value,
        du2: ir.Value,
        steps: Steps,
        *,
        backward: bool,
    ) -> ir.Value:
        """``x[i] = (y[i] - du[i] x[i'] - du2[i] x[i'']) / d[i]``, with ``x[i']``, ``x[i'']``
        the one and two rows solved before (zeros at the start, where ``du``/``du2`` are
        padded with zeros)."""

        def step(b: ONNXBuilder, j: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
            previous, before = state
            i = self._from_end(b, j, 1) if backward else j
            residual = b.op("Sub", [take(b, y, i, -2), b.op("Mul", [take(b, du, i, -2), previous])])
            residual = b.op("Sub", [residual, b.op("Mul", [take(b, du2, i, -2), before])])
            row = b.op("Div", [residual, take(b, d, i, -2)])
            return [row, previous, row]

        zeros = self.builder.op("Expand", [self.builder.scalar(0, self.dtype), self.row_shape])
        _, stacked = self._loop(steps, [zeros, zeros], step, "gttrs_u")
        return self._rows(stacked, reverse=backward)
