"""Reductions (CAReduce family, Argmax/Argmin, mean/var/std, logsumexp) against ONNX."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
import scipy.special
from pytensor.tensor.elemwise import CAReduce

from pytensor_onnx import export_onnx
from tests.compare import assert_matches, compare_onnx_and_py, input_like, run_onnx

RNG = np.random.default_rng(7)

AXES = [None, 0, -1, (2, 0), (0, 1, 2)]


def _data(dtype: str, shape: tuple[int, ...] = (3, 4, 2)) -> np.ndarray:
    return RNG.normal(size=shape).astype(dtype)


REDUCTIONS: dict[str, Callable[..., pt.TensorVariable]] = {
    "sum": pt.sum,
    "prod": pt.prod,
    "max": pt.max,
    "min": pt.min,
    "mean": pt.mean,
    "var": pt.var,
    "std": pt.std,
    "logsumexp": pt.logsumexp,
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_float_reductions(
    axis: int | tuple[int, ...] | None, keepdims: bool, floatX: str, symbolic: bool
) -> None:
    value = _data(floatX)
    x = input_like(value, "x", symbolic)
    outs = [REDUCTIONS[name](x, axis=axis, keepdims=keepdims) for name in sorted(REDUCTIONS)]
    rtol = 1e-5 if floatX == "float32" else 1e-12
    compare_onnx_and_py([x], outs, [value], rtol=rtol, atol=1e-6 if floatX == "float32" else 0)


@pytest.mark.parametrize("name", ["max", "min", "sum", "prod", "logsumexp"])
def test_nan_and_inf(name: str, floatX: str) -> None:
    value = np.array(
        [[1.0, np.nan, 3.0], [-np.inf, 2.0, 0.5], [np.inf, np.inf, 1.0], [-np.inf, -np.inf, 0.0]],
        dtype=floatX,
    )
    x = input_like(value, "x", symbolic=True)
    fn = REDUCTIONS[name]
    compare_onnx_and_py([x], [fn(x, axis=1), fn(x, axis=0)], [value])


@pytest.mark.parametrize("name", ["sum", "prod", "any", "all"])
def test_empty_reductions(name: str) -> None:
    value = np.zeros((0, 3))
    x = input_like(value, "x", symbolic=True)
    fn = getattr(pt, name)
    compare_onnx_and_py([x], [fn(x, axis=0), fn(x)], [value])


def test_empty_max_min_with_initial() -> None:
    if "initial" not in pt.max.__code__.co_varnames:
        pytest.skip("this PyTensor has no `initial` for max/min")
    values = [np.zeros((0, 3)), np.zeros((0, 2), dtype="int16"), np.zeros((2, 0), dtype="uint8")]
    inputs = [input_like(v, f"x{i}", symbolic=True) for i, v in enumerate(values)]
    outs = []
    for x in inputs:
        outs += [pt.max(x, axis=0, initial=-np.inf), pt.min(x, axis=0, initial=np.inf)]
    compare_onnx_and_py(inputs, outs, values)
    value = np.array([[-np.inf, -np.inf], [1.0, 2.0]])
    x = input_like(value, "x")
    compare_onnx_and_py([x], [pt.logsumexp(x, axis=1)], [value])


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
@pytest.mark.parametrize("dtype", ["int8", "int64", "uint8"])
def test_logsumexp_of_integers(dtype: str, symbolic: bool) -> None:
    """Exported, and in ``mode="ONNX"``, where PyTensor 2.38's and 3.0's own rewriter never
    finishes compiling it (so the reference is SciPy)."""
    info = np.iinfo(dtype)
    value = np.array([[info.min, info.max, 0], [1, 2, 3]], dtype=dtype)
    x = input_like(value, "x", symbolic=symbolic)
    outputs = [pt.logsumexp(x, axis=1), pt.logsumexp(x[:0], axis=0), pt.logsumexp(x)]
    wanted_dtype = pt.exp(x).dtype
    wanted = [
        scipy.special.logsumexp(v.astype(wanted_dtype), axis=axis).astype(wanted_dtype)
        for v, axis in [(value, 1), (value[:0], 0), (value, None)]
    ]
    runtime, reference = run_onnx(export_onnx([x], outputs), {"x": value})
    compiled = pytensor.function([x], outputs, mode="ONNX")(value)
    for path, results in [("ORT", runtime), ("reference", reference), ("mode", compiled)]:
        for i, (got, want) in enumerate(zip(results, wanted, strict=True)):
            assert_matches(got, want, None, None, f"{path} output {i}")


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"]
)
def test_discrete_reductions(dtype: str) -> None:
    if dtype == "bool":
        value = RNG.random((3, 5)) > 0.5
        value[0] = True
    else:
        info = np.iinfo(dtype)
        value = RNG.integers(max(info.min, -100), min(info.max, 100), size=(3, 5)).astype(dtype)
        value[0, 0] = info.max
        value[1, 0] = info.min
    x = input_like(value, "x", symbolic=True)
    outs = [
        pt.sum(x, axis=0),
        pt.sum(x),
        pt.prod(x, axis=1),
        pt.max(x, axis=1),
        pt.min(x, axis=0),
        pt.max(x),
        pt.all(x, axis=1),
        pt.any(x, axis=0),
        pt.mean(x, axis=1),
        pt.argmax(x, axis=1),
        pt.argmin(x),
    ]
    compare_onnx_and_py([x], outs, [value])


@pytest.mark.parametrize("symbolic_dims", [False, True])
def test_int64_sum_prod_are_exact(symbolic_dims: bool) -> None:
    # ONNX Runtime's int64 ReduceSum/ReduceProd round through floating point.
    value = np.array(
        [[2**60 + 1, 2**60, -(2**60), 3], [2**31 + 1, 2**31 + 1, 1, 1], [-7, 0, 5, 9]],
        dtype="int64",
    )
    long = RNG.integers(-3, 4, size=(3, 50)).astype("uint64")
    x = input_like(value, "x", symbolic_dims)
    y = input_like(long, "y", symbolic_dims)
    outs = [pt.sum(x, axis=1), pt.prod(x, axis=1), pt.prod(x, axis=0), pt.prod(y, axis=1)]
    compare_onnx_and_py([x, y], [*outs, pt.sum(y, axis=0), pt.prod(x)], [value, long])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_argmax_argmin(
    axis: int | tuple[int, ...] | None, keepdims: bool, floatX: str, symbolic: bool
) -> None:
    value = RNG.integers(-3, 3, size=(3, 4, 2)).astype(floatX)  # many ties
    x = input_like(value, "x", symbolic)
    outs = [pt.argmax(x, axis=axis, keepdims=keepdims), pt.argmin(x, axis=axis, keepdims=keepdims)]
    compare_onnx_and_py([x], outs, [value])


@pytest.mark.parametrize(("shape", "axis"), [((1, 0, 1), (0, 2)), ((0, 2, 3), (1, 2))])
@pytest.mark.parametrize("symbolic", [True, False])
def test_argmax_over_several_axes_of_an_empty_tensor(shape, axis, symbolic: bool) -> None:
    """The kept axes are empty: the result is empty (the export wrote a ``Reshape`` to
    ``(0, -1)``, which ONNX Runtime refuses to load; found by the fuzzer)."""
    value = np.zeros(shape, dtype="float32")
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.argmax(x, axis=axis), pt.argmin(x, axis=axis)], [value])


def test_argmax_nan_is_first_nan() -> None:
    value = np.array([[1.0, np.nan, 5.0, np.nan], [np.inf, 2.0, np.inf, 0.0], [np.nan] * 4])
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py(
        [x], [pt.argmax(x, axis=1), pt.argmin(x, axis=1), pt.argmax(x), pt.argmin(x)], [value]
    )


def test_argmax_scalar_and_max_and_argmax() -> None:
    value = np.array(3.0)
    x = input_like(value, "x")
    compare_onnx_and_py([x], [pt.argmax(x), pt.max(x)], [value])
    m_value = _data("float64", (4, 3))
    m = input_like(m_value, "m", symbolic=True)
    compare_onnx_and_py([m], list(pt.max_and_argmax(m, axis=0)), [m_value])


def _composite_reduce(axis: tuple[int, ...] | None) -> CAReduce:
    a, b = ps.float64(), ps.float64()
    # A non-standard binary op: no ONNX Reduce* can express it.
    composite = ps.Composite([a, b], [a * 0.5 + b])
    # PyTensor's Python implementation (the reference) builds a ufunc that needs this.
    composite.identity = None
    return CAReduce(composite, axis=axis)


@pytest.mark.parametrize("axis", [None, (0,), (1,), (0, 2)], ids=str)
def test_careduce_composite(axis: tuple[int, ...] | None, symbolic: bool) -> None:
    value = _data("float64")
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [_composite_reduce(axis)(x)], [value])


def test_careduce_composite_long_axis() -> None:
    value = _data("float64", (40, 3))
    x = input_like(value, "x")  # static length above the unrolling limit: an ONNX Loop
    compare_onnx_and_py([x], [_composite_reduce((0,))(x)], [value])


def test_careduce_bitwise_on_integers() -> None:
    value = RNG.integers(0, 256, size=(5, 3)).astype("int32")
    x = input_like(value, "x", symbolic=True)
    outs = [CAReduce(ps.and_, axis=(0,))(x), CAReduce(ps.or_, axis=(1,))(x), CAReduce(ps.xor)(x)]
    compare_onnx_and_py([x], outs, [value])


def test_reduction_gradients(floatX: str, symbolic: bool) -> None:
    value = _data(floatX, (4, 3))
    value[1, 2] = value[1, 0]  # a tie for max
    x = input_like(value, "x", symbolic)
    cost = pt.max(x, axis=0).sum() + pt.logsumexp(x, axis=1).sum() + pt.std(x) + pt.min(x)
    rtol = 1e-4 if floatX == "float32" else 1e-11
    compare_onnx_and_py([x], [pytensor.grad(cost, x)], [value], rtol=rtol, atol=1e-6)


def test_prod_gradient_with_zeros() -> None:
    value = np.array([[1.5, 0.0, -2.0], [0.0, 0.0, 3.0], [1.0, 2.0, 4.0]])
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pytensor.grad(pt.prod(x, axis=1).sum(), x)], [value])


@pytest.mark.parametrize("name", ["sum", "prod", "mean", "max", "all"])
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
@pytest.mark.parametrize(
    ("shape", "axis"), [((0, 3), 1), ((3, 0), 0), ((0, 3), 0), ((3, 0), 1), ((0, 0), 1)]
)
@pytest.mark.parametrize("symbolic", [True, False])
def test_discrete_reductions_of_empty_arrays(
    name: str, dtype: str, shape, axis, symbolic: bool
) -> None:
    """Static 0-length axes included: ONNX Runtime's optimizer broke the exact int64
    product there (found by the fuzzer)."""
    if name == "max" and shape[axis] == 0:
        pytest.skip("max of an empty axis raises in PyTensor")
    value = np.zeros(shape, dtype=dtype)
    x = input_like(value, "x", symbolic=symbolic)
    compare_onnx_and_py([x], [getattr(x, name)(axis=axis)], [value])
