"""Converters for ``pytensor.tensor.signal``.

* ``Convolve1d`` (``convolve1d``, batched through ``Blockwise``): the full convolution
  ``out[t] = sum_j s[j] * l[t - j]`` of the shorter operand ``s`` (length ``m``) with the
  longer ``l`` (the convolution is symmetric), as a ``MatMul`` of a ``Gather`` of the
  zero-padded ``l`` at ``t - j`` (an ``(n + k - 1) x m`` index matrix) with ``s``: time and
  memory grow like the product of the two lengths, not like the square of the longer one.
  Which operand is shorter is decided at run time (lengths may be symbolic): ``s`` is the
  first ``m`` elements of either, ``l`` either zero-padded to the longer length, both selected
  with ``Where``.  Mode ``valid`` is the slice ``[m - 1, max(n, k))`` of the full result.
  The mode may be symbolic (gradients compute it from the shapes).  ONNX Runtime has no
  float64 ``Conv`` kernel, and ``Conv`` takes no integers, so this one construction serves
  every dtype: floats in their own dtype, integers in int64 (wrapping like NumPy's
  fixed-width sums once cast back).
* ``Convolve2d`` (``convolve2d``; its ``same`` mode and boundary handling are PyTensor's
  padding around the ``valid`` convolution): ``out[t, u] = sum_{j, l} b[t - j, l] a[j, u - l]``
  (sum over ``a``'s rows and ``b``'s columns; each index substitution of the convolution sum is
  exact) is one ``MatMul`` of ``G1[t, (j, l)] = b[t - j, l]`` (``b`` zero-padded and gathered
  along its rows) with ``G2[(j, l), u] = a[j, u - l]`` (``a`` gathered along its columns):
  memory ``(T + U) N L`` for an ``N x M`` ``a``, a ``K x L`` ``b`` and the ``T x U`` full
  result, and the flops in ONNX Runtime's GEMM.  Where ``K M < N L`` the same construction runs
  with the operands swapped, decided at export time for static shapes and otherwise by an
  ONNX ``If``, so that neither a tall nor a wide operand makes the gathered matrices
  quadratic in its length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.tensor.signal.conv import Convolve1d, Convolve2d
from pytensor.tensor.type import tensor

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError
from pytensor_onnx.dispatch.ifelse import if_then_else
from pytensor_onnx.dispatch.slinalg import register_core_and_batched

Values = Sequence[ir.Value]

INT64_MAX = int(np.iinfo(np.int64).max)


def _shifted_gather(
    builder: ONNXBuilder, x: ir.Value, rank: int, axis: int, inner: ir.Value, outer: ir.Value
) -> ir.Value:
    """``g[..., t, j, ...] = x[..., t - j, ...]`` along ``axis`` (negative) of ``x``, zero
    outside ``x``, for ``t < inner + outer - 1`` and ``j < inner`` (1-element int64 values;
    ``outer`` is the length of that axis): a convolution operand as a matrix."""
    before = builder.op("Sub", [inner, builder.int64s([1])])
    padded = builder.pad_axis(x, axis, before, before, rank=rank)
    origin, step = builder.scalar(0, "int64"), builder.scalar(1, "int64")
    length = builder.op("Squeeze", [builder.op("Add", [before, outer])])
    t = builder.op("Unsqueeze", [builder.op("Range", [origin, length, step]), builder.int64s([1])])
    j = builder.op("Range", [origin, builder.op("Squeeze", [inner]), step])
    index = builder.op("Add", [builder.op("Sub", [t, j]), before])
    return builder.op("Gather", [padded, index], {"axis": rank + axis})


def _keep_mode(
    builder: ONNXBuilder, out: ir.Value, full: ir.Value, lengths: list[tuple[ir.Value, ir.Value]]
) -> ir.Value:
    """The full convolution ``out`` if ``full`` (0-d bool), else its ``valid`` part: along the
    last ``len(lengths)`` axes, where the operands have lengths ``(n, k)``, the slice
    ``[min(n, k) - 1, max(n, k))``."""
    one = builder.int64s([1])
    lows = [builder.op("Sub", [builder.op("Min", [n, k]), one]) for n, k in lengths]
    highs = [builder.op("Max", [n, k]) for n, k in lengths]
    count = len(lengths)
    begin = builder.op(
        "Where", [full, builder.int64s([0] * count), builder.op("Concat", lows, {"axis": 0})]
    )
    end = builder.op(
        "Where",
        [full, builder.int64s([INT64_MAX] * count), builder.op("Concat", highs, {"axis": 0})],
    )
    return builder.op("Slice", [out, begin, end, builder.int64s(list(range(-count, 0)))])


def _operands(
    node: Apply, builder: ONNXBuilder
) -> tuple[str, ir.Value, ir.Value, ir.Value, int, int]:
    """``(work dtype, a, b, full, rank of a, rank of b)`` of a convolution node."""
    # Blockwise gives the mode the batch rank with broadcastable (length-1) dimensions.
    if any(dim != 1 for dim in node.inputs[2].type.shape):
        raise UnsupportedOpError.for_node(node, "a convolution mode varying over the batch")
    dtype = variable_dtype(node.outputs[0])
    work = dtype if np.dtype(dtype).kind == "f" else "int64"
    full = builder.op("Reshape", [builder.input(node, 2, "bool"), builder.int64s([])])
    rank_a, rank_b = (len(var.type.shape) for var in node.inputs[:2])
    a, b = builder.input(node, 0, work), builder.input(node, 1, work)
    return work, a, b, full, rank_a, rank_b


@register_core_and_batched(Convolve1d)
def _convolve1d(op: Convolve1d, node: Apply, builder: ONNXBuilder) -> Values:
    work, a, b, full, rank_a, rank_b = _operands(node, builder)
    n, k = builder.dim(a, -1), builder.dim(b, -1)
    m = builder.op("Min", [n, k])
    longest = builder.op("Max", [n, k])
    a_shorter = builder.op(
        "Squeeze", [builder.op("Not", [builder.op("Greater", [n, k])]), builder.int64s([0])]
    )
    zero, last = builder.int64s([0]), builder.int64s([-1])
    short = builder.op(
        "Where",
        [
            a_shorter,
            builder.op("Slice", [a, zero, m, last]),
            builder.op("Slice", [b, zero, m, last]),
        ],
    )
    long = builder.op(
        "Where",
        [
            a_shorter,
            builder.pad_axis(b, -1, 0, builder.op("Sub", [longest, k]), rank=rank_b),
            builder.pad_axis(a, -1, 0, builder.op("Sub", [longest, n]), rank=rank_a),
        ],
    )
    # out[t] = sum_{j < m} short[j] long[t - j], one MatMul: it sums exactly in int64
    # (wrapping), where ONNX Runtime's int64 ReduceSum saturates.
    gathered = _shifted_gather(builder, long, max(rank_a, rank_b), -1, m, longest)
    column = builder.op("Unsqueeze", [short, last])
    out = builder.op("Squeeze", [builder.op("MatMul", [gathered, column]), last])
    out = _keep_mode(builder, out, full, [(n, k)])
    return [builder.cast(out, variable_dtype(node.outputs[0]), work)]


def _full_convolve2d(
    builder: ONNXBuilder, a: ir.Value, b: ir.Value, rank_a: int, rank_b: int
) -> ir.Value:
    """The full 2-D convolution of ``a`` and ``b`` (batched, NumPy broadcasting) as one
    ``MatMul``, summing over ``a``'s rows and ``b``'s columns (see the module docs)."""
    rows_a, cols_a = builder.dim(a, -2), builder.dim(a, -1)
    rows_b, cols_b = builder.dim(b, -2), builder.dim(b, -1)
    inner = builder.op("Mul", [rows_a, cols_b])
    # (..., T, N, L) -> (..., T, N L)
    g1 = _shifted_gather(builder, b, rank_b, -2, rows_a, rows_b)
    g1_shape = builder.op("Concat", [builder.op("Shape", [g1], {"end": -2}), inner], {"axis": 0})
    g1 = builder.op("Reshape", [g1, g1_shape], {"allowzero": 1})
    # (..., N, U, L) -> (..., N, L, U) -> (..., N L, U)
    g2 = _shifted_gather(builder, a, rank_a, -1, cols_b, cols_a)
    batch = list(range(rank_a - 2))
    g2 = builder.op("Transpose", [g2], {"perm": [*batch, rank_a - 2, rank_a, rank_a - 1]})
    g2_shape = builder.op(
        "Concat",
        [builder.op("Shape", [g2], {"end": -3}), inner, builder.op("Shape", [g2], {"start": -1})],
        {"axis": 0},
    )
    g2 = builder.op("Reshape", [g2, g2_shape], {"allowzero": 1})
    return builder.op("MatMul", [g1, g2])


@register_core_and_batched(Convolve2d)
def _convolve2d(op: Convolve2d, node: Apply, builder: ONNXBuilder) -> Values:
    work, a, b, full, rank_a, rank_b = _operands(node, builder)
    (rows_a, cols_a), (rows_b, cols_b) = (var.type.shape[-2:] for var in node.inputs[:2])
    if None not in (rows_a, cols_a, rows_b, cols_b):
        swap = rows_b * cols_a < rows_a * cols_b
        pair = (b, a, rank_b, rank_a) if swap else (a, b, rank_a, rank_b)
        out = _full_convolve2d(builder, *pair)
    else:
        cost_ab = builder.op("Mul", [builder.dim(a, -2), builder.dim(b, -1)])
        cost_ba = builder.op("Mul", [builder.dim(b, -2), builder.dim(a, -1)])
        cheaper = builder.op(
            "Squeeze", [builder.op("Not", [builder.op("Greater", [cost_ab, cost_ba])])]
        )
        full_type = tensor(dtype=work, shape=(None,) * max(rank_a, rank_b))
        (out,) = if_then_else(
            builder,
            cheaper,
            [full_type],
            lambda branch: [_full_convolve2d(branch, a, b, rank_a, rank_b)],
            lambda branch: [_full_convolve2d(branch, b, a, rank_b, rank_a)],
        )
    lengths = [(builder.dim(a, axis), builder.dim(b, axis)) for axis in (-2, -1)]
    out = _keep_mode(builder, out, full, lengths)
    return [builder.cast(out, variable_dtype(node.outputs[0]), work)]
