"""``pytensor.tensor.extra_ops`` against ONNX Runtime and onnx.reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator
from pytensor.tensor import extra_ops

from pytensor_onnx import UnsupportedOpError, export_onnx
from tests.compare import all_nodes, compare_onnx_and_py, input_like, ort_session

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_cumsum_cumprod(axis: int | None, floatX: str, symbolic: bool) -> None:
    value = RNG.uniform(-1.5, 1.5, size=(5, 7)).astype(floatX)
    value[2, 3] = 0.0
    value[4, 1] = -np.inf
    value[1, 6] = np.nan
    x = input_like(value, "x", symbolic)
    outs = [pt.cumsum(x, axis=axis), pt.cumprod(x, axis=axis)]
    rtol = 1e-5 if floatX == "float32" else 1e-13
    compare_onnx_and_py([x], outs, [value], rtol=rtol)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 16, 17, 100])
def test_cumprod_lengths(length: int, symbolic: bool) -> None:
    value = RNG.uniform(0.5, 1.5, size=(2, length)) * RNG.choice([-1.0, 1.0], size=(2, length))
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.cumprod(x, axis=1)], [value], rtol=1e-13)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cumprod_of_unknown_length_portable_and_fast(axis: int) -> None:
    # The default (portable) shift is a Gather of rows along the axis moved to the front
    # (tract runs it); portable=False pads with ones and slices (faster in ONNX Runtime).
    value = RNG.uniform(0.5, 1.5, size=(3, 37, 4)) * RNG.choice([-1.0, 1.0], size=(3, 37, 4))
    x = input_like(value, "x", symbolic=True)
    out = pt.cumprod(x, axis=axis)
    compare_onnx_and_py([x], [out], [value], rtol=1e-13)
    compare_onnx_and_py([x], [out], [value], rtol=1e-13, portable=False)
    portable, fast = export_onnx([x], [out]), export_onnx([x], [out], portable=False)
    assert not _pads(portable.graph) and _pads(fast.graph)
    for model in (portable, fast):
        assert "Loop" not in {node.op_type for node in all_nodes(model)}


def test_cumulative_int64() -> None:
    value = RNG.integers(-3, 4, size=(3, 9))
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pt.cumsum(x, axis=1), pt.cumprod(x, axis=1)], [value])


def _pads(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    found = [node for node in graph.node if node.op_type == "Pad"]
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                found += _pads(attr.g)
    return found


def test_cumulative_products_pad_every_axis() -> None:
    # ONNX Runtime 1.32's transpose optimizer permutes a Pad's pads as if they covered every
    # axis: a Pad with an axes input made the session fail with an out-of-bounds Gather (the
    # int64 prod of a (0, 0, 0) tensor indexed along its last axis, found by the fuzzer).
    x = pt.tensor("x", dtype="int64", shape=(0, 0, 0))
    i = pt.tensor("i", dtype="int64", shape=(0,))
    y = pt.prod(x, axis=-1, keepdims=True)[:, :, i]
    c = pt.matrix("c")
    outputs = [y, pt.cumprod(pt.cast(x, "float64"), axis=1), pt.linalg.expm(c)]
    model = export_onnx([x, i, c], outputs)
    assert all(len(node.input) <= 3 for node in _pads(model.graph))
    feeds = {
        "x": np.zeros((0, 0, 0), np.int64),
        "i": np.zeros(0, np.int64),
        "c": np.eye(2) * 0.5,
    }
    got = ort_session(model).run(None, feeds)
    assert got[0].shape == (0, 0, 0) and got[1].shape == (0, 0, 0)
    np.testing.assert_allclose(got[2], np.eye(2) * np.exp(0.5), rtol=1e-14)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "uint8", "uint32"])
@pytest.mark.parametrize("mode", ["cumsum", "cumprod"])
def test_cumulative_of_bool_and_small_integers_is_refused(dtype: str, mode: str) -> None:
    # PyTensor declares the input's dtype; its C backend computes in it (wrapping; bools stay
    # bool), its Python and Numba backends return NumPy's 64-bit accumulation: ambiguous.
    x = pt.matrix("x", dtype=dtype)
    out = getattr(pt, mode)(x, axis=1)
    with pytest.raises(UnsupportedOpError, match=rf"{mode} of {dtype} is declared {dtype}.*astype"):
        export_onnx([x], [out])
    counts = getattr(pt, mode)(x.astype("int64"), axis=1)  # the suggested fix exports
    value = np.ones((2, 3), dtype=dtype)
    (got,) = ort_session(export_onnx([x], [counts])).run(None, {"x": value})
    np.testing.assert_array_equal(got, getattr(np, mode)(value.astype("int64"), axis=1))


def test_cumulative_gradients(floatX: str, symbolic: bool) -> None:
    value = RNG.uniform(0.5, 2.0, size=(4, 5)).astype(floatX)
    x = input_like(value, "x", symbolic)
    cost = (pt.cumsum(x, axis=1) ** 2).sum() + pt.cumprod(x, axis=0).sum() + pt.cumsum(x).sum()
    rtol = 1e-4 if floatX == "float32" else 1e-12
    compare_onnx_and_py([x], [pytensor.grad(cost, x)], [value], rtol=rtol)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(side: str, floatX: str, symbolic: bool) -> None:
    sorted_value = np.array([-np.inf, -1.0, 0.0, 0.0, 0.0, 2.5, 7.0, np.nan, np.nan], dtype=floatX)
    values = np.array(
        [[-5.0, 0.0, 2.5, np.nan], [np.inf, -np.inf, 7.0, 100.0], [-1.0, 0.5, 1.0, -0.0]],
        dtype=floatX,
    )
    a = input_like(sorted_value, "a", symbolic)
    v = input_like(values, "v", symbolic)
    compare_onnx_and_py([a, v], [pt.searchsorted(a, v, side=side)], [sorted_value, values])


@pytest.mark.parametrize("n", [0, 1, 1000, 5000])
def test_searchsorted_lengths(n: int, symbolic: bool) -> None:
    sorted_value = np.sort(RNG.integers(0, 50, size=n).astype("float64"))
    values = RNG.integers(-5, 55, size=(3, 40)).astype("float64")
    a = input_like(sorted_value, "a", symbolic)
    v = input_like(values, "v", symbolic)
    outs = [pt.searchsorted(a, v, side="left"), pt.searchsorted(a, v, side="right")]
    compare_onnx_and_py([a, v], outs, [sorted_value, values])


def test_searchsorted_sorter_and_ints() -> None:
    a_value = np.array([5, 1, 3, 3, 9], dtype="int32")
    v_value = np.array([0, 3, 4, 10, 9], dtype="int64")
    sorter_value = np.argsort(a_value, kind="stable")
    a = input_like(a_value, "a", symbolic=True)
    v = input_like(v_value, "v", symbolic=True)
    s = input_like(sorter_value, "s", symbolic=True)
    outs = [
        pt.searchsorted(a, v, side="left", sorter=s),
        pt.searchsorted(a, v, side="right", sorter=s),
    ]
    compare_onnx_and_py([a, v, s], outs, [a_value, v_value, sorter_value])


def _unique_all(x: pt.TensorVariable, axis: int | None = None) -> list[pt.TensorVariable]:
    return list(pt.unique(x, return_index=True, return_inverse=True, return_counts=True, axis=axis))


def test_unique_float_with_nan(floatX: str, symbolic: bool) -> None:
    value = np.array([[3.0, np.nan, 1.0], [1.0, -0.0, np.nan], [0.0, 3.0, -np.inf]], dtype=floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.unique(x), *_unique_all(x)], [value])


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint64"])
def test_unique_discrete(dtype: str) -> None:
    value = (
        RNG.integers(0, 4, size=(4, 5)) if dtype != "bool" else RNG.random((4, 5)) > 0.5
    ).astype(dtype)
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], _unique_all(x), [value])


def test_unique_empty_and_axis() -> None:
    empty = np.zeros(0)
    e = input_like(empty, "e", symbolic=True)
    compare_onnx_and_py([e], _unique_all(e), [empty])
    rows = np.array([[1, 2], [0, 5], [1, 2], [0, 5], [-3, 0]], dtype="int32")
    r = input_like(rows, "r", symbolic=True)
    compare_onnx_and_py([r], [*_unique_all(r, axis=0), pt.unique(r, axis=1)], [rows])


def test_unique_float_axis_is_refused() -> None:
    x = pt.matrix("x", dtype="float64")
    with pytest.raises(UnsupportedOpError, match="unique along an axis"):
        export_onnx([x], [pt.unique(x, axis=0)])


def test_bincount(symbolic: bool) -> None:
    value = np.array([0, 3, 3, 1, 7, 3, 0])
    weights = RNG.normal(size=7)
    x = input_like(value, "x", symbolic)
    w = input_like(weights, "w", symbolic)
    outs = [pt.bincount(x), pt.bincount(x, weights=w), pt.bincount(x, minlength=12)]
    compare_onnx_and_py([x, w], outs, [value, weights])


@pytest.mark.parametrize("order", ["C", "F"])
def test_ravel_unravel(order: str) -> None:
    flat = np.array([[0, 5, 11], [7, 3, 2]])
    x = input_like(flat, "x", symbolic=True)
    n = pt.lscalar("n")
    coords = pt.unravel_index(x, (3, n), order=order)
    back = pt.ravel_multi_index(coords, (3, n), order=order)
    compare_onnx_and_py([x, n], [*coords, back], [flat, np.int64(4)])


@pytest.mark.parametrize("mode", ["wrap", "clip"])
def test_ravel_modes(mode: str) -> None:
    i_value = np.array([-1, 0, 2, 5])
    j_value = np.array([3, -7, 1, 9])
    i = input_like(i_value, "i", symbolic=True)
    j = input_like(j_value, "j", symbolic=True)
    out = pt.ravel_multi_index((i, j), (3, 4), mode=mode)
    compare_onnx_and_py([i, j], [out], [i_value, j_value])


@pytest.mark.parametrize("order", ["C", "F"])
def test_ravel_mode_raise(order: str) -> None:
    i = pt.vector("i", dtype="int64")
    j = pt.vector("j", dtype="int32")
    model = export_onnx([i, j], [pt.ravel_multi_index((i, j), (3, 4), mode="raise", order=order)])
    good = {"i": np.array([0, 2, 1]), "j": np.array([3, 0, 1], dtype="int32")}
    expected = np.ravel_multi_index((good["i"], good["j"]), (3, 4), order=order)
    compare_onnx_and_py(
        [i, j], [pt.ravel_multi_index((i, j), (3, 4), order=order)], list(good.values())
    )
    empty = {"i": np.array([], dtype="int64"), "j": np.array([], dtype="int32")}
    np.testing.assert_array_equal(ort_session(model).run(None, good)[0], expected)
    assert ort_session(model).run(None, empty)[0].shape == (0,)
    for bad in ({"i": np.array([0, 3, 1])}, {"j": np.array([3, -1, 1], dtype="int32")}):
        feeds = {**good, **bad}
        with pytest.raises(Exception, match=r"out of|indices|bounds"):
            ort_session(model).run(None, feeds)
        with pytest.raises(IndexError):
            ReferenceEvaluator(model).run(None, feeds)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8"])
def test_bartlett(dtype: str) -> None:
    m = pt.scalar("m", dtype=dtype)
    window = pt.bartlett(m)
    for value in [-3, 0, 1, 2, 3, 8, 51]:
        compare_onnx_and_py([m], [window], [np.array(value, dtype=dtype)])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_diff(n: int, floatX: str, symbolic: bool) -> None:
    value = RNG.normal(size=(5, 4)).astype(floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.diff(x, n=n, axis=0), pt.diff(x, n=n, axis=-1)], [value])


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_fill_diagonal(shape: tuple[int, int], floatX: str, symbolic: bool) -> None:
    value = RNG.normal(size=shape).astype(floatX)
    x = input_like(value, "x", symbolic)
    k = pt.lscalar("k")
    outs = [pt.fill_diagonal(x, 7.0), pt.fill_diagonal_offset(x, np.asarray(-2.0, floatX), k)]
    for offset in (0, 2, -1, -6):
        compare_onnx_and_py([x, k], outs, [value, np.int64(offset)])


def test_fill_diagonal_3d() -> None:
    value = RNG.normal(size=(3, 3, 3))
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pt.fill_diagonal(x, 1.5)], [value])


def test_cpu_contiguous_is_its_input(symbolic: bool) -> None:
    value = np.arange(12.0).reshape(3, 4)[:, ::2]
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [extra_ops.cpu_contiguous(x.T) * 2.0], [value])
