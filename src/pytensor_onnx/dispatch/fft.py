"""Converters for ``pytensor.tensor.fft``: ``rfft`` and ``irfft`` through ONNX ``DFT``.

PyTensor's ``RFFTOp(a, s)`` is NumPy's ``rfftn(a, s)`` over every axis but the first (the
batch), with the complex result stored as a trailing axis of 2 (real, imaginary); ONNX
``DFT`` uses the same layout.  ``IRFFTOp(a, s)`` is ``irfftn(a, s)`` times ``prod(s)`` (no
normalization).  Both are built from one-axis ``DFT`` nodes, which ONNX Runtime and
``onnx.reference`` run in float32 and float64:

* each transformed axis is first cut or zero-padded to its length in ``s``;
* ``rfft``: a one-sided real ``DFT`` along the last axis (``n // 2 + 1`` bins), then a complex
  ``DFT`` along each other axis;
* ``irfft``: the unnormalized inverse transform is ``conj(F(conj(X)))`` with the forward
  ``F``, so the spectrum is conjugated once and transformed forward along every axis: a
  complex ``DFT`` along each axis but the last; along the last, the ``n // 2 + 1`` bins are
  first completed to the Hermitian spectrum of length ``n`` (``X[n - k] = conj(X[k])``,
  unchanged by the conjugation).  The real part is the result (the final conjugation does
  not change it, and the imaginary parts of the zero and Nyquist bins drop out, as in
  NumPy); no scaling is needed, as ``IRFFTOp`` does not normalize.  ONNX Runtime's inverse
  ``DFT`` is not used: for lengths that are not powers of two it is off by 4e-8 relative in
  float64 (its ``1/n`` is rounded to float32).

``pytensor.tensor.fourier``'s ``Fourier`` (a complex ``fft``) is refused with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.tensor.fft import IRFFTOp, RFFTOp
from pytensor.tensor.fourier import Fourier

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import Refusal, UnsupportedOpError, onnx_funcify

Values = Sequence[ir.Value]

#: The first opset whose ``DFT`` takes the axis as an input instead of an attribute.
_DFT_AXIS_INPUT_OPSET = 20


def _dft(builder: ONNXBuilder, x: ir.Value, axis: int, *, onesided: bool = False) -> ir.Value:
    """One forward ``DFT`` of ``x`` (complex layout: trailing axis of 1 or 2) along ``axis``
    (>= 0)."""
    attributes = {"onesided": int(onesided)}
    if builder.opset >= _DFT_AXIS_INPUT_OPSET:
        return builder.op("DFT", [x, None, builder.scalar(axis, "int64")], attributes)
    return builder.op("DFT", [x], {**attributes, "axis": axis})


def _fit(builder: ONNXBuilder, x: ir.Value, rank: int, axis: int, length: ir.Value) -> ir.Value:
    """``x`` (of rank ``rank``) cut or zero-padded along ``axis`` (>= 0) to ``length``
    (1-element int64)."""
    cut = builder.op("Slice", [x, builder.int64s([0]), length, builder.int64s([axis])])
    missing = builder.op(
        "Max", [builder.op("Sub", [length, builder.dim(cut, axis)]), builder.int64s([0])]
    )
    return builder.pad_axis(cut, axis, 0, missing, rank=rank)


def _lengths(builder: ONNXBuilder, node: Apply) -> list[ir.Value]:
    """The transform lengths ``s`` (one 1-element int64 value per transformed axis)."""
    count = node.inputs[1].type.shape[0]
    if count is None:
        # NumPy transforms the last len(s) axes: how many must be known to build the graph.
        raise UnsupportedOpError.for_node(
            node, "transform lengths s of unknown length (the number of transformed axes)"
        )
    s = builder.input(node, 1, "int64")
    return [
        builder.op("Slice", [s, builder.int64s([i]), builder.int64s([i + 1])]) for i in range(count)
    ]


@onnx_funcify.register(RFFTOp)
def _rfft(op: RFFTOp, node: Apply, builder: ONNXBuilder) -> Values:
    x = builder.input(node, 0)
    rank = len(node.inputs[0].type.shape)
    lengths = _lengths(builder, node)
    axes = range(rank - len(lengths), rank)
    for axis, length in zip(axes, lengths, strict=True):
        x = _fit(builder, x, rank, axis, length)
    x = builder.op("Unsqueeze", [x, builder.int64s([-1])])  # real input: trailing axis of 1
    x = _dft(builder, x, rank - 1, onesided=True)
    for axis in axes[:-1]:
        x = _dft(builder, x, axis)
    return [x]


@onnx_funcify.register(IRFFTOp)
def _irfft(op: IRFFTOp, node: Apply, builder: ONNXBuilder) -> Values:
    dtype = variable_dtype(node.outputs[0])
    conjugate = builder.const(np.array([1.0, -1.0], dtype=dtype))
    x = builder.op("Mul", [builder.input(node, 0), conjugate])
    rank = len(node.inputs[0].type.shape)  # including the trailing (real, imaginary) axis
    lengths = _lengths(builder, node)
    axes = range(rank - 1 - len(lengths), rank - 1)
    for axis, length in zip(axes[:-1], lengths[:-1], strict=True):
        x = _dft(builder, _fit(builder, x, rank, axis, length), axis)
    # The last axis: the n // 2 + 1 bins, completed by X[n - k] = conj(X[k]) for k > n // 2.
    last, n = axes[-1], lengths[-1]
    one = builder.int64s([1])
    half = builder.op("Add", [builder.op("Div", [n, builder.int64s([2])]), one])
    x = _fit(builder, x, rank, last, half)
    first_mirrored = builder.op("Squeeze", [builder.op("Sub", [n, half])])
    mirrored = builder.op(  # n - k for k = n // 2 + 1, ..., n - 1
        "Range", [first_mirrored, builder.scalar(0, "int64"), builder.scalar(-1, "int64")]
    )
    upper = builder.op("Mul", [builder.op("Gather", [x, mirrored], {"axis": last}), conjugate])
    signal = _dft(builder, builder.op("Concat", [x, upper], {"axis": last}), last)
    real_part = builder.op("Slice", [signal, builder.int64s([0]), one, builder.int64s([-1])])
    return [builder.op("Squeeze", [real_part, builder.int64s([-1])])]


onnx_funcify.register(Fourier)(
    Refusal(
        "pytensor.tensor.fourier.fft returns complex values, which the export does not "
        "represent; for real input use pytensor.tensor.fft.rfft (converted, its spectrum "
        "as a trailing axis of 2: real, imaginary)"
    )
)
