"""Softmax, LogSoftmax and the softmax gradient."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special
from pytensor.tensor.special import log_softmax, softmax

from pytensor_onnx import UnsupportedOpError, export_onnx
from tests.compare import (
    assert_matches,
    assert_portable,
    compare_onnx_and_py,
    input_like,
    run_onnx,
)


@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
@pytest.mark.parametrize("fn", [softmax, log_softmax], ids=["softmax", "log_softmax"])
def test_softmax(fn, axis, floatX: str, symbolic: bool) -> None:
    value = np.array([[1.0, 2.0, 3.0], [-1e3, 0.0, 1e3], [-np.inf, 0.0, 1.0]], dtype=floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [fn(x, axis=axis)], [value])


@pytest.mark.parametrize("axis", [0, -1], ids=str)
def test_softmax_gradient(axis: int, floatX: str) -> None:
    rng = np.random.default_rng(3)
    value = rng.normal(size=(4, 5)).astype(floatX)
    weights = rng.normal(size=(4, 5)).astype(floatX)
    x = input_like(value, "x")
    cost = (softmax(x, axis=axis) * weights).sum() + (log_softmax(x, axis=axis) * weights).sum()
    compare_onnx_and_py([x], [pytensor.grad(cost, x)], [value])


def test_softmax_nan_propagates(floatX: str) -> None:
    value = np.array([[1.0, np.nan, 3.0], [0.0, 1.0, 2.0]], dtype=floatX)
    x = input_like(value, "x")
    compare_onnx_and_py([x], [softmax(x, axis=-1), softmax(x, axis=None)], [value])


def test_mlp_forward(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(4)
    value = rng.normal(size=(5, 4)).astype(floatX)
    w1 = rng.normal(size=(4, 8)).astype(floatX)
    w2 = rng.normal(size=(8, 3)).astype(floatX)
    x = input_like(value, "x", symbolic)
    h = pt.maximum(x @ w1 + 0.1, 0)
    compare_onnx_and_py([x], [softmax(h @ w2, axis=-1), pt.tanh(h).mean()], [value])


@pytest.mark.parametrize("fn", [softmax, log_softmax])
@pytest.mark.parametrize("dtype", ["int64", "int8"])
def test_softmax_of_integers(fn, dtype: str) -> None:
    value = np.array([[1, 0, 3], [2, 2, 0]]).astype(dtype)
    x = input_like(value, "x")
    out = fn(x, axis=-1)
    if not out.dtype.startswith("float"):  # PyTensor 2: typed as integers, cannot run
        with pytest.raises(UnsupportedOpError, match="cast the input to a float dtype"):
            export_onnx([x], [out])
        return
    # The oracle is SciPy, not PyTensor: PyTensor 3.0's own rewrites never terminate on an integer
    # LogSoftmax (local_log_sum_exp keeps rebuilding the graph), so the py-mode reference hangs.
    scipy_fn = scipy.special.softmax if fn is softmax else scipy.special.log_softmax
    expected = scipy_fn(value.astype(out.dtype), axis=-1)
    model = export_onnx([x], [out])
    assert_portable(model)
    runs = run_onnx(model, {"x": value})
    for name, got in zip(("onnxruntime", "onnx.reference"), runs, strict=True):
        assert_matches(got[0], expected, None, None, name)
