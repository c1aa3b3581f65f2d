"""Converters for ``pytensor.tensor.signal``.

* ``Convolve1d`` (``convolve1d``, batched through ``Blockwise``): the full convolution
  ``out[t] = sum_j a[j] * b[t - j]`` as a ``MatMul`` of a ``Gather`` of the zero-padded ``b`` at
  ``t - j`` (an ``(n + k - 1) x n`` index matrix) with ``a``; mode ``valid`` is
  the slice ``[min(n, k) - 1, max(n, k))`` of it.  The mode may be symbolic (gradients compute
  it from the shapes).  ONNX Runtime has no float64 ``Conv`` kernel, and ``Conv`` takes no
  integers, so this one construction serves every dtype: floats in their own dtype, integers
  in int64 (wrapping like NumPy's fixed-width sums once cast back).
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
    n = _last_dim(builder, a)
    k = _last_dim(builder, b)
    one = builder.int64s([1])
    n_minus_1 = builder.op("Sub", [n, one])
    length = builder.op("Add", [n_minus_1, k])
    # b padded with n - 1 zeros on each side; out[t] reads b_pad[t - j + n - 1] for j < n.
    pads = builder.op(
        "Concat",
        [builder.int64s([0] * (len(node.inputs[1].type.shape) - 1)), n_minus_1] * 2,
        {"axis": 0},
    )
    b_pad = builder.op("Pad", [b, pads])
    zero = builder.scalar(0, "int64")
    t = builder.op(
        "Unsqueeze",
        [
            builder.op(
                "Range", [zero, builder.op("Squeeze", [length]), builder.scalar(1, "int64")]
            ),
            builder.int64s([1]),
        ],
    )
    j = builder.op("Range", [zero, builder.op("Squeeze", [n]), builder.scalar(1, "int64")])
    index = builder.op("Add", [builder.op("Sub", [t, j]), n_minus_1])
    gathered = builder.op("Gather", [b_pad, index], {"axis": -1})
    # A MatMul sums exactly in int64 (wrapping); ONNX Runtime's int64 ReduceSum saturates.
    column = builder.op("Unsqueeze", [a, builder.int64s([-1])])
    out = builder.op("Squeeze", [builder.op("MatMul", [gathered, column]), builder.int64s([-1])])
    # valid: [min(n, k) - 1, max(n, k)); full: [0, n + k - 1).
    start = builder.op(
        "Where", [full, builder.int64s([0]), builder.op("Sub", [builder.op("Min", [n, k]), one])]
    )
    end = builder.op("Where", [full, length, builder.op("Max", [n, k])])
    out = builder.op("Slice", [out, start, end, builder.int64s([-1])])
    return [builder.cast(out, dtype, work)]
