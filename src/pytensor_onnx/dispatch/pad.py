"""Converter for ``pytensor.tensor.pad.Pad`` (``pt.pad``).

``Pad`` is an ``OpFromGraph`` whose inner graph depends on the mode (in PyTensor 2 the
``reflect`` and ``symmetric`` graphs hold a ``Scan``).  The modes with a direct ONNX
construction are converted here:

- ``constant``: ONNX ``Pad`` (one per axis and side when the values differ per axis/side,
  NumPy's later axes overwriting the corners);
- ``edge``: ONNX ``Pad`` with ``mode="edge"``;
- ``wrap``, ``reflect``, ``symmetric``: a ``Gather`` per axis with the periodic index map of
  NumPy's padding, so any pad width works (ONNX's ``reflect`` allows widths below the dim
  only, and ONNX has no ``symmetric``; ``wrap`` needs opset 19).

``linear_ramp``, ``maximum``, ``minimum`` and ``mean`` inline the inner graph.  Pad widths may
be computed in the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.compile.builders import OpFromGraph
from pytensor.graph.basic import Apply, Constant
from pytensor.tensor.pad import Pad

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import UnsupportedOpError, onnx_funcify
from pytensor_onnx.dispatch.shape import scalar_from_vector
from pytensor_onnx.dispatch.tensor_basic import int64_range

Values = Sequence[ir.Value]

_GATHER_MODES = ("wrap", "reflect", "symmetric")


class _Widths:
    """The ``(ndim, 2)`` pad widths of a Pad node, as Python ints when known at export time."""

    def __init__(self, op: Pad, node: Apply, builder: ONNXBuilder) -> None:
        self.builder = builder
        self.ndim = node.inputs[0].type.ndim
        static = getattr(op, "static_pad_width", None)
        if static is None and isinstance(node.inputs[1], Constant):
            static = np.asarray(node.inputs[1].data)
        self.static = (
            None if static is None else np.broadcast_to(np.asarray(static), (self.ndim, 2))
        )
        self.table = (
            builder.const(self.static.astype(np.int64))
            if self.static is not None
            else builder.op(
                "Expand", [builder.input(node, 1, "int64"), builder.int64s([self.ndim, 2])]
            )
        )

    def zero(self, axis: int) -> bool:
        """Whether ``axis`` is known to get no padding."""
        return self.static is not None and not self.static[axis].any()

    def width(self, axis: int, side: int) -> ir.Value:
        """The 0-d int64 width before (``side=0``) or after (``side=1``) ``axis``."""
        if self.static is not None:
            return self.builder.scalar(int(self.static[axis, side]), "int64")
        row = self.builder.op("Gather", [self.table, self.builder.scalar(axis, "int64")])
        return self.builder.op("Gather", [row, self.builder.scalar(side, "int64")])

    def onnx_pads(self) -> ir.Value:
        """ONNX ``Pad``'s layout: all befores, then all afters."""
        transposed = self.builder.op("Transpose", [self.table], {"perm": [1, 0]})
        return self.builder.op("Reshape", [transposed, self.builder.int64s([-1])])


def _pad(
    builder: ONNXBuilder, x: ir.Value, pads: ir.Value, dtype: str, value: ir.Value | None = None
) -> ir.Value:
    """ONNX ``Pad`` of ``x`` (of ``dtype``): with the constant ``value``, or ``edge`` mode."""
    mode = "constant" if value is not None else "edge"
    return builder.typed_op("Pad", [x, pads, value], dtype, {"mode": mode}, data=[0, 2])


def _constant_pad(
    builder: ONNXBuilder, node: Apply, x: ir.Value, widths: _Widths, dtype: str
) -> ir.Value:
    values_var = node.inputs[2]
    if values_var.type.ndim == 0:
        return _pad(builder, x, widths.onnx_pads(), dtype, value=builder.input(node, 2, dtype))
    values = builder.op("Expand", [builder.input(node, 2, dtype), builder.int64s([widths.ndim, 2])])
    zero = builder.scalar(0, "int64")
    for axis in range(widths.ndim):
        for side in (0, 1):
            if widths.static is not None and widths.static[axis, side] == 0:
                continue
            pads = [zero] * (2 * widths.ndim)
            pads[side * widths.ndim + axis] = widths.width(axis, side)
            pad_vector = builder.op(
                "Concat",
                [builder.op("Unsqueeze", [p, builder.int64s([0])]) for p in pads],
                {"axis": 0},
            )
            value = builder.op(
                "Gather",
                [
                    builder.op("Gather", [values, builder.scalar(axis, "int64")]),
                    builder.scalar(side, "int64"),
                ],
            )
            x = _pad(builder, x, pad_vector, dtype, value=value)
    return x


def _gather_indices(
    builder: ONNXBuilder, mode: str, size: ir.Value, before: ir.Value, after: ir.Value
) -> ir.Value:
    """The source index of every output position along one axis (all values 0-d int64).

    ``wrap`` has period ``size``, ``symmetric`` period ``2 * size`` (edge values repeated)
    and ``reflect`` period ``2 * size - 2`` (clamped to 1 for a length-1 axis).
    """
    start = builder.op("Neg", [before])
    offsets = int64_range(builder, start, builder.op("Add", [size, after]))
    if mode == "wrap":
        return builder.op("Mod", [offsets, size])
    two = builder.scalar(2, "int64")
    if mode == "symmetric":
        period = builder.op("Mul", [size, two])
        mirror = builder.op("Sub", [period, builder.scalar(1, "int64")])
    else:
        period = builder.op(
            "Max",
            [builder.op("Sub", [builder.op("Mul", [size, two]), two]), builder.scalar(1, "int64")],
        )
        mirror = period
    folded = builder.op("Mod", [offsets, period])
    inside = builder.op("Less", [folded, size])
    return builder.op("Where", [inside, folded, builder.op("Sub", [mirror, folded])])


@onnx_funcify.register(Pad)
def _pad_op(op: Pad, node: Apply, builder: ONNXBuilder) -> Values:
    mode = op.pad_mode
    if mode in ("reflect", "symmetric") and op.reflect_type not in (None, "even"):
        raise UnsupportedOpError.for_node(
            node, f"{mode} padding with reflect_type={op.reflect_type!r}"
        )
    if mode not in ("constant", "edge", *_GATHER_MODES):
        # linear_ramp and the statistics modes: their inner graph has no Scan.
        return onnx_funcify.dispatch(OpFromGraph)(op, node, builder)
    dtype = variable_dtype(node.outputs[0])
    x = builder.input(node, 0, dtype)
    widths = _Widths(op, node, builder)
    if mode == "constant":
        return [_constant_pad(builder, node, x, widths, dtype)]
    if mode == "edge":
        return [_pad(builder, x, widths.onnx_pads(), dtype)]
    for axis in range(widths.ndim):
        if widths.zero(axis):
            continue
        size = scalar_from_vector(builder, builder.dim(x, axis))
        indices = _gather_indices(builder, mode, size, widths.width(axis, 0), widths.width(axis, 1))
        x = builder.op("Gather", [x, indices], {"axis": axis})
    return [x]
