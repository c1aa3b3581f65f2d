"""``pytensor.tensor.signal`` against ONNX Runtime and onnx.reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.tensor.signal import convolve1d, convolve2d

from tests.compare import compare_onnx_and_py, input_like

RNG = np.random.default_rng(23)


def _check(
    convolve: Callable[..., pt.TensorVariable],
    a_value: np.ndarray,
    b_value: np.ndarray,
    symbolic: bool,
    **options: str,
) -> None:
    """Compare ``convolve(a, b, **options)`` with PyTensor, static or symbolic shapes."""
    a = input_like(a_value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    compare_onnx_and_py([a, b], [convolve(a, b, **options)], [a_value, b_value])


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize(("n", "k"), [(7, 3), (3, 7), (5, 5), (1, 4), (6, 1)])
def test_convolve1d(mode: str, n: int, k: int, floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=n).astype(floatX)
    b_value = RNG.normal(size=k).astype(floatX)
    _check(convolve1d, a_value, b_value, symbolic, mode=mode)


@pytest.mark.parametrize("mode", ["full", "valid"])
def test_convolve1d_batched_broadcast(mode: str, floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(2, 1, 9)).astype(floatX)
    b_value = RNG.normal(size=(3, 4)).astype(floatX)
    _check(convolve1d, a_value, b_value, symbolic, mode=mode)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8"])
def test_convolve1d_integers(dtype: str) -> None:
    info = np.iinfo(dtype)
    a_value = RNG.integers(info.min // 2, info.max // 2, size=6).astype(dtype)
    b_value = RNG.integers(-9, 10, size=4).astype(dtype)
    a = input_like(a_value, "a", symbolic=True)
    b = input_like(b_value, "b", symbolic=True)
    outs = [convolve1d(a, b, mode="full"), convolve1d(a, b, mode="valid")]
    compare_onnx_and_py([a, b], outs, [a_value, b_value])


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize(("n", "k"), [(7, 3), (3, 7)])
def test_convolve1d_gradient(mode: str, n: int, k: int, floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(2, n)).astype(floatX)
    b_value = RNG.normal(size=k).astype(floatX)
    a = input_like(a_value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    weights = pytensor.shared(RNG.normal(size=(2, n + k - 1)).astype(floatX))
    out = convolve1d(a, b, mode=mode)
    cost = (out * weights[:, : out.shape[-1]]).sum()
    compare_onnx_and_py([a, b], pt.grad(cost, [a, b]), [a_value, b_value])


@pytest.mark.parametrize("kernel_first", [False, True])
def test_convolve1d_of_a_long_signal_scales_with_the_kernel(kernel_first: bool) -> None:
    # The gathered matrix is (n + k - 1) x min(n, k): a 10^5-sample signal with a 7-tap
    # kernel needs 5.6 MB, where an (n + k - 1) x n matrix would need 80 GB.
    signal = RNG.normal(size=100_000)
    kernel = RNG.normal(size=7)
    x = pt.vector("x")
    h = pt.vector("h")
    values = [kernel, signal] if kernel_first else [signal, kernel]
    inputs = [h, x] if kernel_first else [x, h]
    outputs = [convolve1d(*inputs, mode="valid"), convolve1d(*inputs, mode="full")]
    compare_onnx_and_py(inputs, outputs, values)


SHAPES_2D = [
    ((5, 6), (2, 3)),
    ((2, 3), (5, 6)),
    ((4, 7), (3, 2)),
    ((1, 9), (1, 4)),
    ((9, 1), (4, 1)),
]


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize(("shape_a", "shape_b"), SHAPES_2D)
def test_convolve2d(
    mode: str, shape_a: tuple[int, int], shape_b: tuple[int, int], floatX: str, symbolic: bool
) -> None:
    if mode == "valid" and (shape_a[0] - shape_b[0]) * (shape_a[1] - shape_b[1]) < 0:
        pytest.skip("valid needs one input at least as large as the other in every dimension")
    a_value = RNG.normal(size=shape_a).astype(floatX)
    b_value = RNG.normal(size=shape_b).astype(floatX)
    _check(convolve2d, a_value, b_value, symbolic, mode=mode)


@pytest.mark.parametrize("boundary", ["wrap", "symm"])
def test_convolve2d_same_with_boundaries(boundary: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(6, 5))
    b_value = RNG.normal(size=(3, 2))
    _check(convolve2d, a_value, b_value, symbolic, mode="same", boundary=boundary)


def test_convolve2d_batched_broadcast(floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(2, 1, 6, 5)).astype(floatX)
    b_value = RNG.normal(size=(3, 2, 3)).astype(floatX)
    _check(convolve2d, a_value, b_value, symbolic, mode="valid")


@pytest.mark.parametrize("dtype", ["int64", "int16"])
def test_convolve2d_integers(dtype: str) -> None:
    a_value = RNG.integers(-1000, 1000, size=(5, 4)).astype(dtype)
    b_value = RNG.integers(-9, 10, size=(2, 3)).astype(dtype)
    a = input_like(a_value, "a", symbolic=True)
    b = input_like(b_value, "b", symbolic=True)
    compare_onnx_and_py([a, b], [convolve2d(a, b)], [a_value, b_value])


def test_convolve2d_gradient(floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(5, 6)).astype(floatX)
    b_value = RNG.normal(size=(2, 3)).astype(floatX)
    a = input_like(a_value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    cost = (convolve2d(a, b, mode="valid") ** 2).sum() + convolve2d(a, b).sum()
    # The kernel's gradient sums about 20 products of size 10 that can cancel to 1e-3: in
    # float32 the summation order (which differs between CPUs' MatMul kernels) moves such an
    # element by a few ulp of the terms, so the absolute tolerance is scaled to the terms.
    atol = 1e-4 if floatX == "float32" else None
    compare_onnx_and_py([a, b], [cost, *pytensor.grad(cost, [a, b])], [a_value, b_value], atol=atol)


@pytest.mark.parametrize("transposed", [False, True])
def test_convolve2d_of_a_long_row_or_column_scales_with_the_kernel(transposed: bool) -> None:
    # Summing over the image's rows would gather (T, N, L) = 1e5 x 1e5 x 1 for a column of
    # 1e5 samples: the cheaper operand order is chosen (here at run time, by an If).
    image = RNG.normal(size=(1, 100_000))
    kernel = RNG.normal(size=(1, 5))
    values = [image.T, kernel.T] if transposed else [image, kernel]
    a = pt.matrix("a")
    b = pt.matrix("b")
    compare_onnx_and_py([a, b], [convolve2d(a, b, mode="valid")], values)
