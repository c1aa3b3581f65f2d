"""Construction, join/split and diagonal Ops (``pytensor.tensor.basic``) against ONNX Runtime
and onnx.reference, with static and symbolic dims."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator
from pytensor.graph.basic import Variable
from pytensor.tensor.basic import permute_row_elements

from pytensor_onnx import UnsupportedOpError, export_onnx
from tests.compare import (
    REFERENCE_MODE,
    assert_matches,
    compare_onnx_and_py,
    input_like,
    ort_session,
    run_onnx,
)


def _int(value: int, name: str, dtype: str = "int64") -> tuple[Variable, np.ndarray]:
    """A 0-d integer input and its test value."""
    return pt.scalar(name, dtype=dtype), np.array(value, dtype=dtype)


def _check_at_sizes(inputs: list[Variable], outputs: list[Variable], cases: list[list]) -> None:
    """Export once, then run the same model for each list of input values."""
    fn = pytensor.function(inputs, outputs, mode=REFERENCE_MODE)
    model = export_onnx(inputs, outputs)
    for values in cases:
        arrays = [np.asarray(v) for v in values]
        feeds = {i.name: v for i, v in zip(model.graph.input, arrays, strict=True)}
        expected = fn(*arrays)
        for results in run_onnx(model, feeds):
            for k, (got, want) in enumerate(zip(results, expected, strict=True)):
                assert_matches(got, want, None, None, f"output {k} for {[a.shape for a in arrays]}")


# ------------------------------------------------------------------------- construction
def test_make_vector(floatX: str) -> None:
    a = pt.scalar("a", dtype=floatX)
    n = pt.scalar("n", dtype="int8")
    vec = pt.stack([a, pt.cast(n, floatX), a * 2])
    ints = pt.stack([n, n + 1])
    compare_onnx_and_py([a, n], [vec, ints], [np.array(1.5, dtype=floatX), np.array(-3, "int8")])


def test_scalar_tensor_conversions(floatX: str) -> None:
    s = ps.get_scalar_type(floatX)("s")
    x = pt.scalar("x", dtype=floatX)
    from_scalar = pt.tensor_from_scalar(ps.exp(s)) * pt.ones(2, dtype=floatX)
    from_tensor = pt.tensor_from_scalar(ps.neg(pt.scalar_from_tensor(x)))
    values = [np.array(0.5, dtype=floatX), np.array(-1.25, dtype=floatX)]
    compare_onnx_and_py([s, x], [from_scalar, from_tensor], values)


def test_shape_vector_of_symbolic_dims(symbolic: bool) -> None:
    value = np.ones((2, 5, 3))
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.stack([x.shape[2], x.shape[0]]), x.shape[1:]], [value])


def test_alloc(floatX: str) -> None:
    n, n_value = _int(3, "n")
    m, m_value = _int(0, "m", "int32")
    value = np.array([1.0, -2.0], dtype=floatX)
    v = input_like(value, "v", symbolic=True)
    outs = [
        pt.alloc(v, n, v.shape[0]),
        pt.alloc(v, 2, n, 2),
        pt.alloc(v[0], n, m),
        pt.zeros((n, 4), dtype=floatX),
        pt.ones((n,), dtype="int16"),
        pt.full((2, n), 7, dtype="uint8"),
        pt.full((n, 2), np.array(True)),
    ]
    compare_onnx_and_py([v, n, m], outs, [value, n_value, m_value])


def test_fill_zeros_ones_like(floatX: str, symbolic: bool) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 3)
    x = input_like(value, "x", symbolic)
    r = pt.vector("r", dtype=floatX, shape=(3,))
    outs = [
        pt.zeros_like(x),
        pt.ones_like(x, dtype="int32"),
        pt.fill(x, r),
        pt.fill(x, 3.5),
        pt.second(x, r) + x,
    ]
    compare_onnx_and_py([x, r], outs, [value, np.array([1, 2, 3], dtype=floatX)])


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool"])
def test_alloc_empty(dtype: str) -> None:
    # The values of empty() are undefined: only the shape and dtype are compared.
    n = pt.lscalar("n")
    out = pt.empty((n, 3, 2), dtype=dtype)
    model = export_onnx([n], [out])
    for size in (0, 4):
        for (result,) in run_onnx(model, {"n": np.array(size)}):
            assert result.dtype == np.dtype(dtype)
            assert result.shape == (size, 3, 2)


# ------------------------------------------------------------------------------ arange
ARANGE_CASES = [
    (0, 5, 1),
    (5, 0, -1),
    (2, 3, 5),
    (-7, 8, 3),
    (10, -10, -4),
    (3, 3, 1),
    (4, 1, 1),
    (0.5, 3.0, 0.3),
    (-1.0, 1.0, 0.1),
    (1.0, 0.0, -0.1),
    (0.1, 0.7, 0.1),
    (1e8, 1e8 + 100.0, 0.7),
    (0.0, 1.0, 1e-3),
    (2.0, 2.0, 0.5),
    (0.0, -1.0, 0.25),
]


@pytest.mark.parametrize(("start", "stop", "step"), ARANGE_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32", "int8"])
def test_arange_symbolic_bounds(start: float, stop: float, step: float, dtype: str) -> None:
    is_int = isinstance(start, int)
    in_dtype = "int64" if is_int else "float64"
    if not is_int and dtype == "int8" and max(abs(start), abs(stop)) > 127:
        pytest.skip("float to int8 casts of out-of-range values differ between NumPy and ONNX")
    a, b, c = (pt.scalar(name, dtype=in_dtype) for name in "abc")
    out = pt.arange(a, b, c, dtype=dtype)
    values = [np.array(v, dtype=in_dtype) for v in (start, stop, step)]
    # The length must be NumPy's ceil((stop - start) / step), elements within rounding.
    assert len(np.arange(start, stop, step)) == max(math.ceil((stop - start) / step), 0)
    compare_onnx_and_py([a, b, c], [out], values)


@pytest.mark.parametrize("in_dtype", ["float32", "float64"])
def test_arange_float_length_matches_numpy(in_dtype: str) -> None:
    # Random bounds whose float32 length ceil((stop - start) / step) differs from the
    # float64 one in about a fifth of the cases; NumPy (and PyTensor) use float64.
    rng = np.random.default_rng(42)
    a, b, c = (pt.scalar(name, dtype=in_dtype) for name in "abc")
    fn = pytensor.function([a, b, c], pt.arange(a, b, c, dtype="float32"), mode=REFERENCE_MODE)
    model = export_onnx([a, b, c], [pt.arange(a, b, c, dtype="float32")])
    cases = [
        (start, start + step * rng.integers(0, 40) * (1 + rng.normal() * 1e-7), step)
        for start, step in rng.normal(size=(60, 2)) * [100, 0.1]
    ]
    # float32(start) + 1 * (float32(start + step) - float32(start)) != float32(start + step):
    # NumPy stores the second element directly.
    cases.append((-0.000588197407589542, 0.0005, 0.00044356956945239636))
    for bounds in cases:
        values = [np.array(v, dtype=in_dtype) for v in bounds]
        expected = fn(*values)
        for (got,) in run_onnx(model, dict(zip("abc", values, strict=True))):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "bounds", [(0.0, 1.0, 0.0), (np.nan, 1.0, 0.5), (0.0, np.inf, 1.0)], ids=str
)
def test_arange_invalid_bounds_fail(bounds: tuple[float, float, float]) -> None:
    # NumPy (and PyTensor) raise; the export must fail too instead of allocating a range
    # whose length is a cast of inf or NaN.
    a, b, c = (pt.scalar(name, dtype="float64") for name in "abc")
    values = [np.array(v) for v in bounds]
    with pytest.raises((ValueError, ZeroDivisionError)), np.errstate(all="ignore"):
        np.arange(*bounds)
    model = export_onnx([a, b, c], [pt.arange(a, b, c)])
    with pytest.raises(Exception, match="Range"):
        ort_session(model).run(None, dict(zip("abc", values, strict=True)))
    with pytest.raises(ZeroDivisionError), np.errstate(all="ignore"):
        ReferenceEvaluator(model).run(None, dict(zip("abc", values, strict=True)))


def test_arange_constant_and_mixed() -> None:
    n, n_value = _int(6, "n", "int32")
    outs = [
        pt.arange(n),
        pt.arange(2, n, 2),
        pt.arange(n, -1, -1),
        pt.arange(0.5, n),
        pt.arange(7),
        pt.arange(1.0, 0.0, -0.125),
        pt.arange(n, dtype="float32") / 3,
        pt.arange(n, dtype="uint8"),
    ]
    compare_onnx_and_py([n], outs, [n_value])


def test_arange_at_several_sizes() -> None:
    n = pt.lscalar("n")
    x = pt.scalar("x", dtype="float64")
    outs = [pt.arange(n), pt.arange(x, n, 0.5), pt.zeros((n, n + 1))]
    _check_at_sizes([n, x], outs, [[0, 0.0], [1, 0.25], [5, -2.0], [3, 4.0]])


# -------------------------------------------------------------------------- eye and tri
@pytest.mark.parametrize(
    ("n", "m", "k"), [(3, 3, 0), (3, 5, 1), (5, 3, -2), (4, 2, 3), (0, 3, 0), (2, 4, -5)]
)
def test_eye(n: int, m: int, k: int, floatX: str) -> None:
    n_var, n_value = _int(n, "n")
    m_var, m_value = _int(m, "m", "int32")
    k_var, k_value = _int(k, "k", "int8")
    outs = [pt.eye(n_var, m_var, k_var, dtype=floatX), pt.eye(n, m, k, dtype="int32")]
    compare_onnx_and_py([n_var, m_var, k_var], outs, [n_value, m_value, k_value])


@pytest.mark.parametrize("k", [-2, 0, 1, 4])
def test_tri_tril_triu(k: int, floatX: str, symbolic: bool) -> None:
    value = np.arange(1, 13, dtype=floatX).reshape(3, 4)
    x = input_like(value, "x", symbolic)
    n, n_value = _int(3, "n")
    outs = [pt.tril(x, k), pt.triu(x, k), pt.tri(n, n + 2, k, dtype=floatX), pt.tril(x.T, -k)]
    compare_onnx_and_py([x, n], outs, [value, n_value])


def test_tril_batched(floatX: str) -> None:
    value = np.arange(24, dtype=floatX).reshape(2, 3, 4)
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pt.tril(x), pt.triu(x, 1)], [value])


# ---------------------------------------------------------------- broadcast, tile, repeat
def test_broadcast_to(floatX: str, symbolic: bool) -> None:
    value = np.array([[1.0], [2.0]], dtype=floatX)
    x = input_like(value, "x", symbolic)
    n, n_value = _int(3, "n")
    outs = [
        pt.broadcast_to(x, (2, 4)),
        pt.broadcast_to(x, (n, 2, n)),
        pt.broadcast_to(x, (2, 0)),
        pt.broadcast_arrays(x, pt.zeros((n, 1, 5)))[0],
    ]
    compare_onnx_and_py([x, n], outs, [value, n_value])


def test_tile(floatX: str, symbolic: bool) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 3)
    x = input_like(value, "x", symbolic)
    n, n_value = _int(2, "n")
    outs = [pt.tile(x, (2, 3)), pt.tile(x, (n, 1)), pt.tile(x, (2, 1, 2)), pt.tile(x, (0, 2))]
    compare_onnx_and_py([x, n], outs, [value, n_value])


def test_repeat_scalar(floatX: str, symbolic: bool) -> None:
    value = np.arange(6, dtype=floatX).reshape(2, 3)
    x = input_like(value, "x", symbolic)
    n, n_value = _int(3, "n")
    outs = [pt.repeat(x, 2, axis=0), pt.repeat(x, n, axis=-1), pt.repeat(x, 2), pt.repeat(x, 0, 1)]
    compare_onnx_and_py([x, n], outs, [value, n_value])


@pytest.mark.parametrize(
    "repeats",
    [[2, 0, 3], [1, 1, 1], [0, 0, 0], [4], [0, 5, 0]],
    ids=lambda r: "_".join(map(str, r)),
)
def test_repeat_vector(repeats: list[int], floatX: str, symbolic: bool) -> None:
    value = np.arange(9, dtype=floatX).reshape(3, 3)
    x = input_like(value, "x", symbolic)
    r = pt.lvector("r")
    outs = [pt.repeat(x, r, axis=0), pt.repeat(x, r, axis=-1), pt.repeat(x[0], r)]
    compare_onnx_and_py([x, r], outs, [value, np.array(repeats)])


def test_repeat_vector_empty_axis() -> None:
    x = pt.tensor("x", dtype="float64", shape=(2, None))
    r = pt.lvector("r")
    compare_onnx_and_py([x, r], [pt.repeat(x, r, axis=1)], [np.zeros((2, 0)), np.zeros(0, "int64")])
    compare_onnx_and_py([x, r], [pt.repeat(x, r, axis=1)], [np.zeros((2, 0)), np.array([3])])


# ------------------------------------------------------------------------ join and split
def test_join_concatenate_stack(floatX: str, symbolic: bool) -> None:
    xv = np.arange(6, dtype=floatX).reshape(2, 3)
    yv = -np.arange(9, dtype=floatX).reshape(3, 3)
    zv = np.zeros((0, 3), dtype=floatX)
    x, y, z = (input_like(v, n, symbolic) for v, n in ((xv, "x"), (yv, "y"), (zv, "z")))
    outs = [
        pt.concatenate([x, y, z], axis=0),
        pt.concatenate([x.T, y.T], axis=-1),
        pt.stack([x[0], y[1]], axis=-1),
        pt.stack([x, x + 1]),
        pt.join(0, x),
        pt.horizontal_stack(x[:, :1], x),
    ]
    compare_onnx_and_py([x, y, z], outs, [xv, yv, zv])


def test_join_mixed_dtypes() -> None:
    a = pt.vector("a", dtype="int8")
    b = pt.vector("b", dtype="float32")
    c = pt.vector("c", dtype="int32")
    outs = [pt.concatenate([a, b]), pt.concatenate([a, c])]
    values = [np.array([1, -2], "int8"), np.array([0.5], "float32"), np.array([7], "int32")]
    compare_onnx_and_py([a, b, c], outs, values)


def test_join_symbolic_axis_is_refused() -> None:
    a = pt.lscalar("a")
    x = pt.matrix("x")
    try:
        out = pt.join(a, x, x + 1)
    except TypeError:
        pytest.skip("this PyTensor only builds joins on a constant axis")
    with pytest.raises(UnsupportedOpError, match="axis is computed in the graph"):
        export_onnx([a, x], [out])


SPLITS = {
    "equal": [2, 2, 2],
    "unequal": [1, 4, 1],
    "zero_sized": [0, 6, 0],
    "single": [6],
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_split_constant_sizes(name: str, floatX: str, symbolic: bool) -> None:
    value = np.arange(18, dtype=floatX).reshape(3, 6)
    x = input_like(value, "x", symbolic)
    sizes = SPLITS[name]
    outs = [
        *np.atleast_1d(pt.split(x, sizes, n_splits=len(sizes), axis=1)),
        *np.atleast_1d(pt.split(x.T, sizes, n_splits=len(sizes), axis=-2)),
    ]
    compare_onnx_and_py([x], outs, [value])


def test_split_symbolic_sizes(floatX: str) -> None:
    x = pt.tensor("x", dtype=floatX, shape=(None, 2))
    sizes = pt.lvector("sizes")
    outs = pt.split(x, sizes, n_splits=3, axis=0)
    value = np.arange(14, dtype=floatX).reshape(7, 2)
    compare_onnx_and_py([x, sizes], outs, [value, np.array([3, 0, 4])])
    _check_at_sizes(
        [x, sizes],
        outs,
        [[value, [1, 2, 4]], [value[:2], [0, 2, 0]], [value[:0], [0, 0, 0]]],
    )


def test_joins_at_several_sizes() -> None:
    x = pt.matrix("x", dtype="float64")
    y = pt.matrix("y", dtype="float64")
    half = x.shape[0] // 2
    outs = [
        pt.concatenate([x, y], axis=0),
        pt.stack([x, x * 2], axis=1),
        *pt.split(x, pt.stack([half, x.shape[0] - half]), n_splits=2, axis=0),
    ]
    rng = np.random.default_rng(0)
    cases = [
        [rng.normal(size=(r, c)), rng.normal(size=(s, c))]
        for r, s, c in [(2, 3, 4), (5, 0, 1), (0, 2, 3)]
    ]
    _check_at_sizes([x, y], outs, cases)


# ---------------------------------------------------------------------------- diagonals
@pytest.mark.parametrize("offset", [0, 1, -1, 3, -4])
def test_diagonal(offset: int, floatX: str, symbolic: bool) -> None:
    value = np.arange(60, dtype=floatX).reshape(3, 4, 5)
    x = input_like(value, "x", symbolic)
    outs = [
        pt.diagonal(x, offset),
        pt.diagonal(x, offset, axis1=2, axis2=0),
        pt.diagonal(x, offset, axis1=-1, axis2=-2),
        pt.diag(x[0], offset),
    ]
    compare_onnx_and_py([x], outs, [value])


def test_diagonal_empty(symbolic: bool) -> None:
    value = np.zeros((0, 3, 2), dtype="float32")
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [pt.diagonal(x, 0, 1, 2), pt.diagonal(x, 1)], [value])


@pytest.mark.parametrize("offset", [0, 2, -1])
def test_alloc_diag(offset: int, floatX: str, symbolic: bool) -> None:
    pytest.importorskip("pytensor_onnx.dispatch.subtensor")  # AllocDiag rewrites to IncSubtensor
    value = np.array([1.0, -2.0, 3.0], dtype=floatX)
    v = input_like(value, "v", symbolic)
    compare_onnx_and_py([v], [pt.diag(v, offset)], [value])


# ---------------------------------------------------------------------- nonzero, choose
@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "int16", "uint32", "bool"])
def test_nonzero(dtype: str) -> None:
    value = np.array([[0, 1, 0], [2, 0, -1 if dtype[0] in "if" else 3]]).astype(dtype)
    x = input_like(value, "x", symbolic=True)
    outs = [*pt.nonzero(x), pt.flatnonzero(x), pt.nonzero_values(x)]
    compare_onnx_and_py([x], outs, [value])


def test_nonzero_nan_and_empty() -> None:
    value = np.array([0.0, np.nan, -0.0, np.inf, 0.0])
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [*pt.nonzero(x), pt.flatnonzero(x)], [value])
    compare_onnx_and_py([x], [*pt.nonzero(x)], [np.zeros(0)])
    compare_onnx_and_py([x], [*pt.nonzero(x)], [np.zeros(4)])


@pytest.mark.parametrize("mode", ["raise", "wrap", "clip"])
def test_choose(mode: str, floatX: str) -> None:
    choices_value = np.arange(12, dtype=floatX).reshape(3, 4)
    a_value = (
        np.array([[0, 2, 1, 0], [2, 2, 0, 1]]) if mode == "raise" else np.array([[-1, 4, 1, 3]])
    )
    a = input_like(a_value, "a", symbolic=True)
    choices = input_like(choices_value, "choices", symbolic=True)
    compare_onnx_and_py([a, choices], [pt.choose(a, choices, mode=mode)], [a_value, choices_value])


# -------------------------------------------------------------------------- gradients
def test_gradients(floatX: str) -> None:
    rng = np.random.default_rng(1)
    value = rng.normal(size=(3, 4)).astype(floatX)
    vvalue = rng.normal(size=4).astype(floatX)
    x = input_like(value, "x", symbolic=True)
    v = input_like(vvalue, "v", symbolic=True)
    a, b = pt.split(x, [1, 2], n_splits=2, axis=0)
    joined = pt.concatenate([x, pt.exp(x)], axis=1)
    cost = (
        (a**2).sum()
        + (pt.sin(b) * 3).sum()
        + (joined * pt.arange(joined.shape[1])).sum()
        + (pt.broadcast_to(v, (5, v.shape[0])) * pt.arange(5)[:, None]).sum()
        + (pt.alloc(v, 2, v.shape[0]) ** 3).sum()
        + (pt.tile(x, (2, 1)) * pt.arange(6)[:, None]).sum()
        + (pt.repeat(v, 3) ** 2).sum()
        + (pt.repeat(x, pt.as_tensor([2, 0, 1]), axis=0) * pt.arange(4)).sum()
        + pt.stack([x.sum(), v[0]]).prod()
        + pt.diagonal(x, 1).sum() * 2
    )
    grads = pytensor.grad(cost, [x, v])
    compare_onnx_and_py(
        [x, v], [cost, *grads], [value, vvalue], rtol=1e-4 if floatX == "float32" else None
    )


@pytest.mark.parametrize("inverse", [False, True])
def test_permute_row_elements(inverse: bool, floatX: str) -> None:
    xv = np.arange(12, dtype=floatX).reshape(3, 4)
    rows = np.array([[2, 0, 3, 1], [3, 2, 1, 0], [0, 1, 3, 2]])
    x = input_like(xv, "x", symbolic=True)
    p_one = pt.lvector("p_one")
    p_rows = pt.lmatrix("p_rows")
    outs = [
        permute_row_elements(x, p_one, inverse),  # one permutation for every row
        permute_row_elements(x, p_rows, inverse),  # one per row
        permute_row_elements(x[0], p_rows, inverse),  # every permutation of one vector
    ]
    model = compare_onnx_and_py([x, p_one, p_rows], outs, [xv, rows[0], rows])
    used = {n.op_type for n in model.graph.node}
    assert ("ScatterElements" if inverse else "GatherElements") in used
