"""DimShuffle, Elemwise broadcasting and the basic reductions."""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest

from tests.compare import compare_onnx_and_py, input_like


@pytest.mark.parametrize(
    "pattern",
    [(1, 0), (1, "x", 0), ("x", 0, 1), (0, 1, "x"), (2, 0, 1), ("x", 1, "x", 0)],
    ids=str,
)
def test_dimshuffle(pattern: tuple, floatX: str, symbolic: bool) -> None:
    ndim = max(p for p in pattern if p != "x") + 1
    value = np.arange(np.prod(range(2, 2 + ndim)), dtype=floatX).reshape(tuple(range(2, 2 + ndim)))
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [x.dimshuffle(pattern)], [value])


def test_dimshuffle_drop_broadcastable_dims(floatX: str) -> None:
    value = np.arange(6, dtype=floatX).reshape(1, 3, 1, 2)
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py(
        [x],
        [x.dimshuffle(3, 1), x.dimshuffle(1, "x", 3), x.dimshuffle(()) if False else x.squeeze()],
        [value],
    )


def test_elemwise_broadcasting_rules(floatX: str, symbolic: bool) -> None:
    a = np.arange(6, dtype=floatX).reshape(2, 3)
    b = np.array([10.0, 20.0, 30.0], dtype=floatX)
    c = np.array([[1.0], [-1.0]], dtype=floatX)
    s = np.array(2.5, dtype=floatX)
    x, y, z, w = (input_like(v, n, symbolic) for v, n in [(a, "a"), (b, "b"), (c, "c"), (s, "s")])
    compare_onnx_and_py([x, y, z, w], [x * y + z / w, pt.maximum(z, y) - x], [a, b, c, s])


def test_empty_arrays(floatX: str, symbolic: bool) -> None:
    value = np.zeros((0, 3), dtype=floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.exp(x) + 1, x.T, x.sum(axis=0), x.sum(axis=1)], [value])


REDUCTIONS = {
    "sum": pt.sum,
    "max": pt.max,
    "min": pt.min,
    "prod": pt.prod,
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
def test_reductions(name: str, axis, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(1)
    value = rng.normal(size=(2, 3, 4)).astype(floatX)
    x = input_like(value, "x", symbolic)
    reduce = REDUCTIONS[name]
    compare_onnx_and_py([x], [reduce(x, axis=axis), reduce(x, axis=axis, keepdims=True)], [value])


def test_max_min_propagate_nan(floatX: str) -> None:
    value = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, -np.inf]], dtype=floatX)
    x = input_like(value, "x")
    compare_onnx_and_py([x], [x.max(axis=1), x.min(axis=1), x.max(), x.sum(axis=0)], [value])


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "bool"])
def test_integer_reductions_accumulate(dtype: str) -> None:
    value = (np.arange(12).reshape(3, 4) % 5 * 37).astype(dtype)
    x = input_like(value, "x")
    outputs = [x.sum(axis=0), x.sum(), x.prod(axis=1), x.max(axis=0), x.min()]
    compare_onnx_and_py([x], outputs, [value])


def test_all_any_including_empty() -> None:
    value = np.array([[True, False], [True, True]])
    empty = np.zeros((0, 2), dtype=bool)
    x, e = input_like(value, "x"), input_like(empty, "e", symbolic=True)
    outputs = [
        pt.all(x, axis=0),
        pt.any(x, axis=1),
        pt.all(x),
        pt.all(e, axis=0),
        pt.any(e, axis=0),
    ]
    compare_onnx_and_py([x, e], outputs, [value, empty])


@pytest.mark.parametrize(
    "fn",
    [lambda b: b * b, pt.sqr, lambda b: b // b, lambda b: b % b, pt.abs, lambda b: b**b],
    ids=["mul", "sqr", "floor_div", "mod", "abs", "pow"],
)
def test_bool_arithmetic(fn, symbolic: bool) -> None:
    # ONNX arithmetic has no bool kernels: the converters compute on 0/1 and cast back.
    a = np.array([True, False, True, False])
    b = input_like(a, "b", symbolic)
    compare_onnx_and_py([b], [fn(b)], [a])
