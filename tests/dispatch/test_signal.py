"""``pytensor.tensor.signal`` against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.tensor.signal import convolve1d

from tests.compare import compare_onnx_and_py, input_like

RNG = np.random.default_rng(23)


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize(("n", "k"), [(7, 3), (3, 7), (5, 5), (1, 4), (6, 1)])
def test_convolve1d(mode: str, n: int, k: int, floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=n).astype(floatX)
    b_value = RNG.normal(size=k).astype(floatX)
    a = input_like(a_value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    compare_onnx_and_py([a, b], [convolve1d(a, b, mode=mode)], [a_value, b_value])


@pytest.mark.parametrize("mode", ["full", "valid"])
def test_convolve1d_batched_broadcast(mode: str, floatX: str, symbolic: bool) -> None:
    a_value = RNG.normal(size=(2, 1, 9)).astype(floatX)
    b_value = RNG.normal(size=(3, 4)).astype(floatX)
    a = input_like(a_value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    compare_onnx_and_py([a, b], [convolve1d(a, b, mode=mode)], [a_value, b_value])


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
