"""Dense linear-algebra algorithms built from plain ONNX operators.

ONNX has no Cholesky, triangular solve, LU or QR operator, so these functions build them
from ``Gather``/``MatMul``/``Where`` steps, one step per column (or row).  Every function
works on stacks of matrices: the leading (batch) dimensions of the inputs broadcast as in
NumPy, so the same construction serves a core Op and its ``Blockwise``.

Each step touches O(n²) elements with a few vectorized nodes (a matrix-vector ``MatMul`` or
a broadcast rank-1 update), so an n×n factorization costs O(n³) flops in n steps.  The steps
are *unrolled* when the matrix size is static and at most :data:`UNROLL_MAX`; otherwise they
run in an ONNX ``Loop`` whose iteration number is the column index.  Column (row) ``k`` is
read with ``Gather`` and written back with a ``Where`` on a one-hot mask, so every value in
the loop keeps its shape.

The step order and the pivoting rule follow LAPACK (``potrf``, ``trtrs``, ``getrf`` with
partial pivoting by largest magnitude, first index on ties, ``geqrf`` Householder
reflectors with the ``dlarfg`` sign convention), so results agree with SciPy/NumPy to
rounding error (LAPACK's blocked kernels sum in a different order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder, onnx_dtype

#: Largest static matrix size whose column steps are unrolled instead of run in a ``Loop``.
UNROLL_MAX = 12

#: One loop step: ``(builder, k, state) -> new state``; ``k`` is a 0-d int64 value.
Step = Callable[[ONNXBuilder, ir.Value, list[ir.Value]], list[ir.Value]]


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
        value = builder.op("Squeeze", [builder.dim(x, axis), builder.int64s([0])])
        arange = builder.op(
            "Range", [builder.scalar(0, "int64"), value, builder.scalar(1, "int64")]
        )
    rows = builder.op("Unsqueeze", [arange, builder.int64s([1])])
    return Size(value, static, arange, rows)


# ------------------------------------------------------------------------------ loops
def fori_loop(
    builder: ONNXBuilder,
    count: Size,
    state: Sequence[ir.Value],
    dtypes: Sequence[str],
    step: Step,
    name: str,
) -> list[ir.Value]:
    """Run ``step`` for ``k = 0 .. count-1`` on ``state`` (of ``dtypes``), return the final state.

    Unrolled into ``builder``'s graph when ``count`` is static and at most
    :data:`UNROLL_MAX`, else an ONNX ``Loop`` whose body is built by ``step``.
    """
    if count.static is not None and count.static <= UNROLL_MAX:
        values = list(state)
        for k in range(count.static):
            values = step(builder, builder.scalar(k, "int64"), values)
        return values

    for value, dtype in zip(state, dtypes, strict=True):
        value.dtype = onnx_dtype(dtype)
    body = ONNXBuilder(builder.opset, builder.names.claim(name), parent=builder, names=builder.names)
    k = ir.Value(
        name=builder.names.claim(f"{name}_k"), type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([])
    )
    cond = ir.Value(
        name=builder.names.claim(f"{name}_cond"), type=ir.TensorType(ir.DataType.BOOL), shape=ir.Shape([])
    )
    carried = [
        ir.Value(name=builder.names.claim(f"{name}_state"), type=ir.TensorType(v.dtype), shape=v.shape)
        for v in state
    ]
    body.graph.inputs.extend([k, cond, *carried])
    new_state = step(body, k, list(carried))
    outputs = [body.op("Identity", [cond])]
    for old, new in zip(carried, new_state, strict=True):
        # Body outputs must be produced in the body, even when a step leaves a value alone.
        producer = new.producer()
        inside = producer is not None and producer.graph is body.graph
        out = new if inside and not new.is_graph_output() else body.op("Identity", [new])
        out.dtype = old.dtype
        outputs.append(out)
    body.graph.outputs.extend(outputs)
    # The body's tape numbers its values like the main graph's: rename them apart (SSA).
    for body_node in body.graph:
        for value in body_node.outputs:
            value.name = builder.names.claim(f"{name}_v")
    node = ir.Node(
        "",
        "Loop",
        [count.value, builder.const(np.array(True)), *state],
        attributes=[ir.AttrGraph("body", body.graph)],
        num_outputs=len(state),
    )
    builder.add_node(node)
    for out, init in zip(node.outputs, state, strict=True):
        out.dtype = init.dtype
        out.shape = init.shape
    return list(node.outputs)


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


def diagonal(builder: ONNXBuilder, x: ir.Value, n: Size, dtype: str) -> ir.Value:
    """The diagonals of a stack of square matrices, shape ``(..., n)``."""
    eye = compare(builder, "Equal", n.rows, n.arange)
    masked = where(builder, eye, x, builder.scalar(0, dtype))
    return builder.op("ReduceSum", [masked, builder.int64s([-1])], {"keepdims": 0})


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
    """``x`` with every matrix whose ``bad`` flag (shape ``(..., 1, 1)``) is set filled with NaN."""
    return where(builder, bad, builder.scalar(np.nan, dtype), x)


def zeros_like(builder: ONNXBuilder, x: ir.Value, dtype: str) -> ir.Value:
    """Zeros of the shape of ``x`` (without reading ``x``'s values: NaN-safe)."""
    return builder.op("Expand", [builder.scalar(0, dtype), builder.op("Shape", [x])])


def broadcast_batch(builder: ONNXBuilder, b: ir.Value, a: ir.Value, a_core_ndim: int) -> ir.Value:
    """``b`` broadcast against the batch dimensions of ``a`` (its core dims excluded)."""
    batch = builder.op("Shape", [a], {"end": -a_core_ndim})
    ones = builder.int64s([1, 1])
    return builder.op("Expand", [b, builder.op("Concat", [batch, ones], {"axis": 0})])


def broadcast_shape(builder: ONNXBuilder, a: ir.Value, core: ir.Value) -> ir.Value:
    """The shape of ``a``'s batch dimensions followed by ``core``'s (matrix) shape."""
    batch = builder.op("Shape", [a], {"end": -2})
    return builder.op("Concat", [batch, builder.op("Shape", [core])], {"axis": 0})


def transpose_last(builder: ONNXBuilder, x: ir.Value, ndim: int) -> ir.Value:
    """Swap the last two axes of a rank-``ndim`` value."""
    perm = [*range(ndim - 2), ndim - 1, ndim - 2]
    return builder.op("Transpose", [x], {"perm": perm})


# ---------------------------------------------------------------------- Cholesky
def cholesky(builder: ONNXBuilder, a: ir.Value, n: Size, dtype: str) -> ir.Value:
    """The lower Cholesky factor of symmetric positive-definite matrices ``a`` (..., n, n).

    Only the lower triangle of ``a`` is read.  Left-looking (``potrf``): column ``k`` is
    ``a[:, k] - L @ L[k, :]`` divided by the square root of its diagonal entry.  Matrices
    that are not positive definite come out all-NaN, as PyTensor's ``Cholesky`` does.
    """
    zero = builder.scalar(0, dtype)
    lower0 = zeros_like(builder, a, dtype)

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (lower,) = state
        column = take(b, a, k, -1)
        row_k = unsqueeze(b, take(b, lower, k, -2), -1)
        v = b.op("Sub", [column, b.op("Squeeze", [b.op("MatMul", [lower, row_k]), b.int64s([-1])])])
        root = b.op("Sqrt", [unsqueeze(b, take(b, v, k, -1), -1)])
        below = where(b, compare(b, "Greater", n.arange, k), b.op("Div", [v, root]), zero)
        new_col = where(b, compare(b, "Equal", n.arange, k), root, below)
        return [where(b, compare(b, "Equal", n.arange, k), unsqueeze(b, new_col, -1), lower)]

    (lower,) = fori_loop(builder, n, [lower0], [dtype], step, "cholesky")
    failed = builder.op("Not", [compare(builder, "Greater", diagonal(builder, lower, n, dtype), zero)])
    return nan_where(builder, any_true(builder, failed, dtype), lower, dtype)


# ------------------------------------------------------------- triangular solve
def solve_triangular(
    builder: ONNXBuilder,
    a: ir.Value,
    b: ir.Value,
    n: Size,
    dtype: str,
    *,
    lower: bool,
    trans: bool = False,
    unit_diagonal: bool = False,
    nan_if_singular: bool = True,
) -> ir.Value:
    """Solve ``op(a) @ x = b`` for triangular ``a`` (..., n, n) and ``b`` (..., n, m).

    ``op(a)`` is ``a`` or (``trans``) its transpose; only the ``lower`` (or upper) triangle
    of ``a`` is read, and its diagonal is taken as ones with ``unit_diagonal``.  Row ``k``
    of ``x`` is ``(b[k] - op(a)[k, :] @ x) / op(a)[k, k]``, forward for lower systems and
    backward for upper ones.  With ``nan_if_singular``, systems with an exact zero on the
    diagonal come out all-NaN (as LAPACK ``trtrs`` reports them to PyTensor).
    """
    effective_lower = lower != trans
    zero = builder.scalar(0, dtype)
    # The solution starts as zeros of the broadcast shape of b against a's batch dims.
    b = broadcast_batch(builder, b, a, 2)
    x0 = zeros_like(builder, b, dtype)
    last = builder.op("Sub", [n.value, builder.scalar(1, "int64")])

    def step(bld: ONNXBuilder, i: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (x,) = state
        k = i if effective_lower else bld.op("Sub", [last, i])
        row = take(bld, a, k, -1 if trans else -2)
        strictly = compare(bld, "Less" if effective_lower else "Greater", n.arange, k)
        coeffs = unsqueeze(bld, where(bld, strictly, row, zero), -2)
        rhs = bld.op("Sub", [unsqueeze(bld, take(bld, b, k, -2), -2), bld.op("MatMul", [coeffs, x])])
        if not unit_diagonal:
            pivot = unsqueeze(bld, unsqueeze(bld, take(bld, row, k, -1), -1), -1)
            rhs = bld.op("Div", [rhs, pivot])
        return [where(bld, compare(bld, "Equal", n.rows, k), rhs, x)]

    (x,) = fori_loop(builder, n, [x0], [dtype], step, "trsolve")
    if unit_diagonal or not nan_if_singular:
        return x
    singular = compare(builder, "Equal", diagonal(builder, a, n, dtype), zero)
    return nan_where(builder, any_true(builder, singular, dtype), x, dtype)


# --------------------------------------------------------------------------- LU
@dataclass(frozen=True)
class LUResult:
    """``getrf``'s output for a stack of square matrices.

    Attributes
    ----------
    packed
        ``L`` (strictly below the diagonal, unit diagonal implied) and ``U`` in one matrix.
    pivots
        LAPACK's 0-based row interchanges: row ``k`` was swapped with ``pivots[k]``.
    perm
        The row permutation: ``(P @ a)[i] = a[perm[i]]`` with ``P @ a = L @ U``.
    """

    packed: ir.Value
    pivots: ir.Value
    perm: ir.Value


def swap_indices(builder: ONNXBuilder, n: Size, k: ir.Value, p: ir.Value) -> ir.Value:
    """The index vector ``arange(n)`` with positions ``k`` and ``p`` (shape ``(..., 1)``) swapped."""
    keep = where(builder, compare(builder, "Equal", n.arange, p), k, n.arange)
    return where(builder, compare(builder, "Equal", n.arange, k), p, keep)


def lu_factor(builder: ONNXBuilder, a: ir.Value, n: Size, dtype: str) -> LUResult:
    """LU factorization with partial pivoting (LAPACK ``getrf``) of ``a`` (..., n, n).

    Step ``k`` picks the largest ``|a[i, k]|`` for ``i >= k`` as pivot (the first one on ties),
    swaps the rows with ``GatherElements``, stores the multipliers below the pivot and applies
    the rank-1 update to the trailing rows.  A zero pivot (singular matrix) leaves the column
    as is, like LAPACK: the factorization is still returned.
    """
    zero = builder.scalar(0, dtype)
    perm0 = builder.op("Expand", [n.arange, builder.op("Shape", [a], {"end": -1})])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        packed, pivots, perm = state
        magnitude = b.op("Abs", [take(b, packed, k, -1)])
        candidates = where(b, compare(b, "GreaterOrEqual", n.arange, k), magnitude, b.scalar(-1, dtype))
        p = b.op("ArgMax", [candidates], {"axis": -1, "keepdims": 1})
        index = swap_indices(b, n, k, p)
        gather_rows = b.op("Expand", [unsqueeze(b, index, -1), b.op("Shape", [packed])])
        packed = b.op("GatherElements", [packed, gather_rows], {"axis": -2})
        perm = b.op("GatherElements", [perm, index], {"axis": -1})
        pivots = where(b, compare(b, "Equal", n.arange, k), p, pivots)

        pivot_row = take(b, packed, k, -2)
        pivot = unsqueeze(b, take(b, pivot_row, k, -1), -1)
        safe_pivot = where(b, compare(b, "Equal", pivot, zero), b.scalar(1, dtype), pivot)
        below = compare(b, "Greater", n.arange, k)
        multipliers = where(b, below, b.op("Div", [take(b, packed, k, -1), safe_pivot]), zero)
        trailing = where(b, below, pivot_row, zero)
        update = b.op("Mul", [unsqueeze(b, multipliers, -1), unsqueeze(b, trailing, -2)])
        packed = b.op("Sub", [packed, update])
        in_column = b.op("And", [compare(b, "Greater", n.rows, k), compare(b, "Equal", n.arange, k)])
        packed = where(b, in_column, unsqueeze(b, multipliers, -1), packed)
        return [packed, pivots, perm]

    packed, pivots, perm = fori_loop(builder, n, [a, perm0, perm0], [dtype, "int64", "int64"], step, "lu")
    return LUResult(packed, pivots, perm)


def pivots_to_permutation(builder: ONNXBuilder, pivots: ir.Value, n: Size) -> ir.Value:
    """Apply LAPACK row interchanges ``pivots`` (..., n) to ``arange(n)`` in order."""
    perm0 = builder.op("Expand", [n.arange, builder.op("Shape", [pivots])])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        (perm,) = state
        p = unsqueeze(b, take(b, pivots, k, -1), -1)
        return [b.op("GatherElements", [perm, swap_indices(b, n, k, p)], {"axis": -1})]

    (perm,) = fori_loop(builder, n, [perm0], ["int64"], step, "pivots")
    return perm


def invert_permutation(builder: ONNXBuilder, perm: ir.Value, n: Size) -> ir.Value:
    """The inverse of permutations ``perm`` (..., n): ``inv[perm[i]] = i``."""
    aranges = builder.op("Expand", [n.arange, builder.op("Shape", [perm])])
    return builder.op("ScatterElements", [aranges, perm, aranges], {"axis": -1})


def permute_rows(builder: ONNXBuilder, x: ir.Value, perm: ir.Value) -> ir.Value:
    """Rows of ``x`` (..., n, m) reordered: ``out[..., i, :] = x[..., perm[i], :]``."""
    index = builder.op("Expand", [unsqueeze(builder, perm, -1), builder.op("Shape", [x])])
    return builder.op("GatherElements", [x, index], {"axis": -2})


def lu_solve(
    builder: ONNXBuilder, lu: LUResult, b: ir.Value, n: Size, dtype: str, *, nan_if_singular: bool
) -> ir.Value:
    """Solve ``a @ x = b`` from the factorization ``lu`` of ``a``; ``b`` is (..., n, m)."""
    b = broadcast_batch(builder, b, lu.packed, 2)
    perm = builder.op("Expand", [lu.perm, builder.op("Shape", [b], {"end": -1})])
    y = solve_triangular(
        builder, lu.packed, permute_rows(builder, b, perm), n, dtype, lower=True, unit_diagonal=True
    )
    return solve_triangular(
        builder, lu.packed, y, n, dtype, lower=False, nan_if_singular=nan_if_singular
    )


def lu_parts(builder: ONNXBuilder, packed: ir.Value, n: Size, dtype: str) -> tuple[ir.Value, ir.Value]:
    """The unit lower factor ``L`` and the upper factor ``U`` stored in ``packed``."""
    strictly_lower = compare(builder, "Greater", n.rows, n.arange)
    eye = builder.cast(compare(builder, "Equal", n.rows, n.arange), dtype, "bool")
    lower = where(builder, strictly_lower, packed, eye)
    upper = where(builder, strictly_lower, builder.scalar(0, dtype), packed)
    return lower, upper


def slogdet(builder: ONNXBuilder, lu: LUResult, n: Size, dtype: str) -> tuple[ir.Value, ir.Value]:
    """``(sign, log|det|)`` of the factored matrices (shapes ``(...)``)."""
    diag = diagonal(builder, lu.packed, n, dtype)
    signs = reduce_last(builder, "ReduceProd", builder.op("Sign", [diag]))
    sign = builder.op("Mul", [permutation_sign(builder, lu, n, dtype), signs])
    logs = builder.op("Log", [builder.op("Abs", [diag])])
    return sign, reduce_last(builder, "ReduceSum", logs)


def det(builder: ONNXBuilder, lu: LUResult, n: Size, dtype: str) -> ir.Value:
    """The determinants of the factored matrices: the pivots' product times the parity."""
    product = reduce_last(builder, "ReduceProd", diagonal(builder, lu.packed, n, dtype))
    return builder.op("Mul", [product, permutation_sign(builder, lu, n, dtype)])


def reduce_last(builder: ONNXBuilder, op_type: str, x: ir.Value) -> ir.Value:
    """``op_type`` (a Reduce* op) over the last axis, which is dropped."""
    return builder.op(op_type, [x, builder.int64s([-1])], {"keepdims": 0})


def permutation_sign(builder: ONNXBuilder, lu: LUResult, n: Size, dtype: str) -> ir.Value:
    """``(-1) ** (number of row interchanges)`` of the factorization, shape ``(...)``."""
    kept = compare(builder, "Equal", lu.pivots, n.arange)
    factors = where(builder, kept, builder.scalar(1, dtype), builder.scalar(-1, dtype))
    return reduce_last(builder, "ReduceProd", factors)


# --------------------------------------------------------------------------- QR
def householder_qr(
    builder: ONNXBuilder, a: ir.Value, m: Size, n: Size, steps: Size, dtype: str
) -> tuple[ir.Value, ir.Value]:
    """``(Q, R)`` of ``a`` (..., m, n) by Householder reflections (LAPACK ``geqrf``/``orgqr``).

    ``m`` and ``n`` are the row and column counts, ``steps`` is ``min(m, n)``.  Reflector ``k`` is ``I - tau v v^T`` with LAPACK's ``dlarfg``
    choice ``beta = -sign(alpha) * ||x||``, so the signs of ``R``'s diagonal match SciPy.
    ``Q`` is full (m, m) and ``R`` is (m, n) with zeros below the diagonal.
    """
    zero = builder.scalar(0, dtype)
    one = builder.scalar(1, dtype)
    eye = builder.cast(compare(builder, "Equal", m.rows, m.arange), dtype, "bool")
    q0 = builder.op("Expand", [eye, broadcast_shape(builder, a, eye)])

    def step(b: ONNXBuilder, k: ir.Value, state: list[ir.Value]) -> list[ir.Value]:
        q, r = state
        column = take(b, r, k, -1)
        below = compare(b, "Greater", m.arange, k)
        tail = where(b, below, column, zero)
        tail_norm = b.op("ReduceL2", [tail, b.int64s([-1])], {"keepdims": 1})
        alpha = unsqueeze(b, take(b, column, k, -1), -1)
        norm = b.op("Sqrt", [b.op("Add", [b.op("Mul", [alpha, alpha]), b.op("Mul", [tail_norm, tail_norm])])])
        negative = compare(b, "Less", alpha, zero)
        beta = where(b, negative, norm, b.op("Neg", [norm]))
        reflect = compare(b, "Greater", tail_norm, zero)
        tau = where(b, reflect, b.op("Div", [b.op("Sub", [beta, alpha]), beta]), zero)
        scale = where(b, reflect, b.op("Sub", [alpha, beta]), one)
        v = where(b, compare(b, "Equal", m.arange, k), one, b.op("Div", [tail, scale]))
        v_col = unsqueeze(b, v, -1)
        tau_mat = unsqueeze(b, tau, -1)
        # R <- (I - tau v v^T) R and Q <- Q (I - tau v v^T): two rank-1 updates.
        w = b.op("MatMul", [unsqueeze(b, v, -2), r])
        r = b.op("Sub", [r, b.op("Mul", [tau_mat, b.op("Mul", [v_col, w])])])
        qv = b.op("MatMul", [q, v_col])
        q = b.op("Sub", [q, b.op("Mul", [tau_mat, b.op("Mul", [qv, unsqueeze(b, v, -2)])])])
        return [q, r]

    q, r = fori_loop(builder, steps, [q0, a], [dtype, dtype], step, "qr")
    upper = compare(builder, "LessOrEqual", m.rows, n.arange)
    return q, where(builder, upper, r, zero)
