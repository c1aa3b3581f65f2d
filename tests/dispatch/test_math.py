"""Dot and matrix products (including batched matmul through Blockwise)."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from tests.compare import compare_onnx_and_py, input_like


@pytest.mark.parametrize(
    "shapes",
    [((3, 4), (4, 5)), ((3, 4), (4,)), ((4,), (4, 5)), ((4,), (4,)), ((0, 4), (4, 2))],
    ids=str,
)
def test_dot(shapes, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.normal(size=s).astype(floatX) for s in shapes)
    x, y = input_like(a, "x", symbolic), input_like(b, "y", symbolic)
    compare_onnx_and_py([x, y], [pt.dot(x, y), x @ y], [a, b])


@pytest.mark.parametrize(
    "shapes", [((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((6, 3, 4), (4, 2))], ids=str
)
def test_batched_matmul(shapes, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(1)
    a, b = (rng.normal(size=s).astype(floatX) for s in shapes)
    x, y = input_like(a, "x", symbolic), input_like(b, "y", symbolic)
    compare_onnx_and_py([x, y], [pt.matmul(x, y)], [a, b])


def test_mixed_dtype_dot() -> None:
    a = np.arange(12, dtype="int32").reshape(3, 4)
    b = np.linspace(-1, 1, 8).reshape(4, 2)
    x, y = input_like(a, "x"), input_like(b, "y")
    compare_onnx_and_py([x, y], [pt.dot(x, y)], [a, b])


@pytest.mark.parametrize("dtype", ["int64", "int8"])
def test_integer_dot(dtype: str) -> None:
    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    x = input_like(a, "x")
    compare_onnx_and_py([x], [pt.dot(x, x.T)], [a])


def test_blas_ops_convert(floatX: str) -> None:
    from pytensor.tensor import blas

    rng = np.random.default_rng(2)
    z, a, b = (rng.normal(size=s).astype(floatX) for s in [(3, 2), (3, 4), (4, 2)])
    vz, va, vb = input_like(z, "z"), input_like(a, "a"), input_like(b, "b")
    alpha, beta = pt.constant(np.asarray(0.5, floatX)), pt.constant(np.asarray(-2.0, floatX))
    gemm = blas.gemm_no_inplace(vz, alpha, va, vb, beta)
    dot22 = blas._dot22(va, vb)
    compare_onnx_and_py([vz, va, vb], [gemm, dot22], [z, a, b])


def test_compiled_default_mode_blas_graph() -> None:
    """A function compiled in the user's default mode (C BLAS ops in PyTensor 2, fused
    Numba wrappers in PyTensor 3) exports; ``Gemv`` with ``beta=0`` over ``AllocEmpty``
    must not read the uninitialized buffer."""
    import pytensor

    from pytensor_onnx import export_onnx
    from tests.compare import ort_session

    x, y = pt.matrix("x"), pt.vector("y")
    w = pytensor.shared(np.linspace(-1, 1, 4), name="w")
    p = pt.sigmoid(x @ w)
    logp = (y * pt.log(p) + (1 - y) * pt.log1p(-p)).sum() - (w**2).sum()
    outputs = [logp, pytensor.grad(logp, w), pt.outer(y, y) + x.T @ x]
    fn = pytensor.function([x, y], outputs)
    model = export_onnx(fn)
    rng = np.random.default_rng(5)
    xv, yv = rng.normal(size=(4, 4)), (rng.random(4) > 0.5).astype("float64")
    for got, want in zip(ort_session(model).run(None, {"x": xv, "y": yv}), fn(xv, yv), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
