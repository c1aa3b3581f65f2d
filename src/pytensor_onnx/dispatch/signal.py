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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.tensor.signal.conv import Convolve1d

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError
from pytensor_onnx.dispatch.slinalg import register_core_and_batched

Values = Sequence[ir.Value]


def _last_dim(builder: ONNXBuilder, value: ir.Value) -> ir.Value:
    """The length of the last axis of ``value`` as a 1-element int64 tensor."""
    return builder.op("Shape", [value], {"start": -1})


def _pad_last(
    builder: ONNXBuilder, value: ir.Value, before: ir.Value, after: ir.Value, rank: int
) -> ir.Value:
    """``value`` (of rank ``rank``) with ``before``/``after`` (1-element int64) zeros around
    its last axis."""
    none = builder.int64s([0] * (rank - 1))
    pads = builder.op("Concat", [none, before, none, after], {"axis": 0})
    return builder.op("Pad", [value, pads])


@register_core_and_batched(Convolve1d)
def _convolve1d(op: Convolve1d, node: Apply, builder: ONNXBuilder) -> Values:
    # Blockwise gives the mode the batch rank with broadcastable (length-1) dimensions.
    if any(dim != 1 for dim in node.inputs[2].type.shape):
        raise UnsupportedOpError.for_node(node, "a convolution mode varying over the batch")
    dtype = variable_dtype(node.outputs[0])
    work = dtype if np.dtype(dtype).kind == "f" else "int64"
    a = builder.input(node, 0, work)
    b = builder.input(node, 1, work)
    full = builder.op("Reshape", [builder.input(node, 2, "bool"), builder.int64s([])])
    rank_a, rank_b = (len(var.type.shape) for var in node.inputs[:2])
    n = _last_dim(builder, a)
    k = _last_dim(builder, b)
    m = builder.op("Min", [n, k])
    longest = builder.op("Max", [n, k])
    a_shorter = builder.op(
        "Squeeze", [builder.op("Not", [builder.op("Greater", [n, k])]), builder.int64s([0])]
    )
    zero = builder.int64s([0])
    last = builder.int64s([-1])
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
            _pad_last(builder, b, zero, builder.op("Sub", [longest, k]), rank_b),
            _pad_last(builder, a, zero, builder.op("Sub", [longest, n]), rank_a),
        ],
    )
    one = builder.int64s([1])
    m_minus_1 = builder.op("Sub", [m, one])
    length = builder.op("Add", [m_minus_1, longest])
    # l padded with m - 1 zeros on each side; out[t] reads l_pad[t - j + m - 1] for j < m.
    long_pad = _pad_last(builder, long, m_minus_1, m_minus_1, max(rank_a, rank_b))
    step = builder.scalar(1, "int64")
    origin = builder.scalar(0, "int64")
    t = builder.op(
        "Unsqueeze",
        [builder.op("Range", [origin, builder.op("Squeeze", [length]), step]), one],
    )
    j = builder.op("Range", [origin, builder.op("Squeeze", [m]), step])
    index = builder.op("Add", [builder.op("Sub", [t, j]), m_minus_1])
    gathered = builder.op("Gather", [long_pad, index], {"axis": -1})
    # A MatMul sums exactly in int64 (wrapping); ONNX Runtime's int64 ReduceSum saturates.
    column = builder.op("Unsqueeze", [short, last])
    out = builder.op("Squeeze", [builder.op("MatMul", [gathered, column]), last])
    # valid: [m - 1, max(n, k)); full: [0, n + k - 1).
    begin = builder.op("Where", [full, zero, m_minus_1])
    end = builder.op("Where", [full, length, longest])
    out = builder.op("Slice", [out, begin, end, last])
    return [builder.cast(out, dtype, work)]
