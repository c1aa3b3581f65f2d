"""``pytensor.tensor.fft`` (``rfft``, ``irfft``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.tensor import fourier
from pytensor.tensor.fft import irfft, irfft_op, rfft, rfft_op

from pytensor_onnx import UnsupportedOpError, export_onnx
from tests.compare import compare_onnx_and_py, input_like, ort_session

SHAPES = [(2, 8), (3, 7), (2, 4, 6), (2, 5, 3), (1, 1, 2)]


def _values(shape: tuple[int, ...], dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(31).normal(size=shape).astype(dtype)


def _atol(dtype: str) -> float:
    """Absolute tolerance: a transform's rounding error is relative to the norm of its input
    (components that are exactly 0 in NumPy's, e.g. the zero bin's imaginary part along a
    complex axis, come out as rounding noise)."""
    return 1e-12 if dtype == "float64" else 2e-5


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", [None, "ortho"])
def test_rfft(shape: tuple[int, ...], norm: str | None, floatX: str, symbolic: bool) -> None:
    value = _values(shape, floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [rfft(x, norm=norm)], [value], atol=_atol(floatX))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", [None, "ortho", "no_norm"])
def test_irfft_of_rfft(
    shape: tuple[int, ...], norm: str | None, floatX: str, symbolic: bool
) -> None:
    value = _values(shape, floatX)
    x = input_like(value, "x", symbolic)
    odd = shape[-1] % 2 == 1
    outputs = [irfft(rfft(x), norm=norm, is_odd=odd)]
    compare_onnx_and_py([x], outputs, [value], atol=_atol(floatX))


def test_irfft_of_any_spectrum(symbolic: bool) -> None:
    # Imaginary parts in the zero and Nyquist bins are ignored, as by NumPy.
    value = _values((2, 3, 5, 2))
    x = input_like(value, "x", symbolic)
    outputs = [irfft(x), irfft(x, is_odd=True)]
    compare_onnx_and_py([x], outputs, [value], atol=_atol("float64"))


def test_explicit_lengths_cut_and_pad() -> None:
    value = _values((2, 5, 6))
    x = input_like(value, "x", symbolic=True)
    spectrum = rfft_op(x, pt.as_tensor([3, 9]))
    outputs = [spectrum, irfft_op(spectrum, pt.as_tensor([4, 7]))]
    compare_onnx_and_py([x], outputs, [value], atol=_atol("float64"))


def test_nan_and_infinity_spread_over_their_whole_transform() -> None:
    # Every output of a DFT depends on every input; NumPy's real FFT keeps some components
    # exact (the zero bin's imaginary part), ONNX Runtime's DFT gives NaN there too, and an
    # infinity makes every component infinite or NaN.
    value = np.array([[1.0, np.nan, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [0.5, np.inf, -1.0, 2.0]])
    x = pt.matrix("x")
    (got,) = ort_session(export_onnx([x], [rfft(x)])).run(None, {"x": value})
    assert np.isnan(got[0]).all()
    assert not np.isfinite(got[2]).any()
    np.testing.assert_allclose(got[1], rfft(x).eval({x: value})[1], rtol=1e-14, atol=1e-14)


def test_empty_batch(symbolic: bool) -> None:
    value = np.zeros((0, 6))
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [rfft(x), irfft(rfft(x))], [value])


def test_gradients(floatX: str, symbolic: bool) -> None:
    value = _values((2, 4, 6), floatX)
    x = input_like(value, "x", symbolic)
    spectrum = rfft(x, norm="ortho")
    cost = (spectrum**2).sum() + (irfft(spectrum * 1.5, norm="ortho") * x).sum()
    outputs = [cost, pytensor.grad(cost, x)]
    compare_onnx_and_py([x], outputs, [value], atol=10 * _atol(floatX))


def test_lengths_of_unknown_count_are_refused() -> None:
    x = pt.matrix("x")
    s = pt.lvector("s")
    with pytest.raises(UnsupportedOpError, match="transform lengths s of unknown length"):
        export_onnx([x, s], [rfft_op(x, s)])


def test_complex_fourier_is_refused_with_the_real_alternative() -> None:
    x = pt.vector("x")
    with pytest.raises(UnsupportedOpError, match=r"(?s)fourier\.Fourier.*complex.*rfft"):
        export_onnx([x], [pt.abs(fourier.fft(x, 8, 0))])
