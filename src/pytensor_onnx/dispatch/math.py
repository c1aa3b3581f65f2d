"""Converters for ``pytensor.tensor.math`` (Dot) and the BLAS ops of ``pytensor.tensor.blas``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op
from pytensor.tensor import blas
from pytensor.tensor.math import Argmax, Dot

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import onnx_funcify, optional_classes

Values = Sequence[ir.Value]


def matmul(builder: ONNXBuilder, node: Apply, x_index: int = 0, y_index: int = 1) -> ir.Value:
    """``node.inputs[x_index] @ node.inputs[y_index]`` in the dtype of ``node``'s output."""
    dtype = variable_dtype(node.outputs[0])
    x = builder.input(node, x_index, dtype)
    y = builder.input(node, y_index, dtype)
    return builder.typed_op("MatMul", [x, y], dtype)


@onnx_funcify.register(Dot)
@onnx_funcify.register(blas.Dot22)
def _dot(op: Dot, node: Apply, builder: ONNXBuilder) -> Values:
    return [matmul(builder, node)]


def _constant_value(var: Variable) -> float | None:
    """The value of a scalar constant input, or None if it is not a constant."""
    if isinstance(var, Constant) and np.ndim(var.data) == 0:
        return float(var.data)
    return None


def _blas_update(builder: ONNXBuilder, node: Apply, product: ir.Value) -> ir.Value:
    """``beta * target + alpha * product`` for the inputs ``(target, alpha, ..., [beta])``.

    As in BLAS, ``beta == 0`` means the target is not read (it may be uninitialized memory,
    e.g. from ``AllocEmpty`` in graphs compiled with PyTensor's C backend).
    """
    dtype = variable_dtype(node.outputs[0])
    if _constant_value(node.inputs[1]) != 1.0:
        product = builder.op("Mul", [builder.input(node, 1, dtype), product])
    beta = _constant_value(node.inputs[4]) if len(node.inputs) == 5 else 1.0
    if beta == 0.0:
        return product
    target = builder.input(node, 0, dtype)
    if beta != 1.0:
        target = builder.op("Mul", [builder.input(node, 4, dtype), target])
    return builder.op("Add", [target, product])


@onnx_funcify.register(blas.Gemm)
@onnx_funcify.register(blas.Gemv)
def _gemm(op: blas.Gemm | blas.Gemv, node: Apply, builder: ONNXBuilder) -> Values:
    # gemm(z, a, x, y, b) = b * z + a * (x @ y);  gemv(y, a, A, x, b) = b * y + a * (A @ x)
    return [_blas_update(builder, node, matmul(builder, node, 2, 3))]


def _ger(op: Op, node: Apply, builder: ONNXBuilder) -> Values:
    # ger(A, alpha, x, y) = A + alpha * outer(x, y)
    dtype = variable_dtype(node.outputs[0])
    x = builder.op("Unsqueeze", [builder.input(node, 2, dtype), builder.int64s([1])])
    y = builder.op("Unsqueeze", [builder.input(node, 3, dtype), builder.int64s([0])])
    return [_blas_update(builder, node, builder.op("Mul", [x, y]))]


for _cls in optional_classes(blas, "Ger"):  # removed in PyTensor 3
    onnx_funcify.register(_cls)(_ger)


@onnx_funcify.register(Argmax)
def _argmax(op: Argmax, node: Apply, builder: ONNXBuilder) -> Values:
    # PyTensor moves the reduced axes last and flattens them (axis=None: the flat index);
    # argmin arrives as Argmax(-x).  Ties give the first index, like ONNX's ArgMax.
    dtype = variable_dtype(node.inputs[0])
    x = builder.input(node, 0)
    ndim = node.inputs[0].type.ndim
    axes = list(range(ndim)) if op.axis is None else sorted(a % ndim for a in op.axis)
    kept = [d for d in range(ndim) if d not in axes]
    if axes != list(range(len(kept), ndim)):
        x = builder.op("Transpose", [x], {"perm": [*kept, *axes]})
    if len(axes) != 1:
        # The flattened length is spelled out (not -1, which Reshape refuses next to a
        # 0-length kept dim), and allowzero keeps a 0-length product 0.
        kept_shape = builder.op("Shape", [x], {"start": 0, "end": len(kept)})
        reduced_shape = builder.op("Shape", [x], {"start": len(kept)})
        flat = builder.op("ReduceProd", [reduced_shape], {"keepdims": 1})
        target = builder.op("Concat", [kept_shape, flat], {"axis": 0})
        x = builder.op("Reshape", [x, target], {"allowzero": 1})
    attributes = {"axis": -1, "keepdims": 0}
    result = builder.typed_op("ArgMax", [x], dtype, attributes, cast_back=False)
    if np.dtype(dtype).kind == "f":
        # NumPy returns the first NaN; ONNX Runtime's ArgMax skips NaN.
        is_nan = builder.cast(builder.op("IsNaN", [x]), "int32", "bool")
        first_nan = builder.op("ArgMax", [is_nan], attributes)
        has_nan = builder.op(
            "Greater",
            [
                builder.op("ReduceMax", [is_nan, builder.int64s([-1])], {"keepdims": 0}),
                builder.scalar(0, "int32"),
            ],
        )
        result = builder.op("Where", [has_nan, first_nan, result])
    return [result]
