"""Converters for ``pytensor.tensor.math`` (Dot) and the BLAS ops of ``pytensor.tensor.blas``."""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor import blas
from pytensor.tensor.math import Dot

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


def _blas_update(builder: ONNXBuilder, node: Apply, product: ir.Value) -> ir.Value:
    """``beta * target + alpha * product`` for the inputs ``(target, alpha, ..., [beta])``."""
    dtype = variable_dtype(node.outputs[0])
    target = builder.input(node, 0, dtype)
    if len(node.inputs) == 5:
        target = builder.op("Mul", [builder.input(node, 4, dtype), target])
    scaled = builder.op("Mul", [builder.input(node, 1, dtype), product])
    return builder.op("Add", [target, scaled])


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
