"""Cholesky, triangular/general/Cholesky solves, LU and QR against PyTensor (SciPy/LAPACK).

Matrices are random with a chosen condition number.  Two backward-stable algorithms agree to
about ``eps * cond`` (relative), so float64 tolerances are ``TIGHT * cond`` with ``TIGHT`` a
small multiple of machine epsilon; float32 runs on well-conditioned matrices only.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytensor.tensor.linalg as ptla
import pytest
import scipy.linalg
from pytensor.tensor.blockwise import Blockwise

from pytensor_onnx import export_onnx, runtimes
from pytensor_onnx.dispatch import UnsupportedOpError
from pytensor_onnx.export import capture
from pytensor_onnx.precision import float64_tensors
from tests.compare import all_nodes, compare_onnx_and_py, input_like, ort_session, run_onnx

SIZES = [1, 2, 5, 32, pytest.param(100, marks=pytest.mark.slow)]
#: Relative agreement per unit of condition number (float64), a few hundred ulps.
TIGHT = 5e-14
CONDITIONS = {"well": 10.0, "ill": 1e6}


def tolerance(dtype: str, cond: float, n: int = 1) -> float:
    """Tolerance for comparing two stable algorithms on a matrix of condition ``cond``."""
    if dtype == "float32":
        return 2e-5 * cond * max(1.0, np.sqrt(n))
    return max(1e-12, TIGHT * cond * max(1.0, np.sqrt(n)))


def orthogonal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random orthogonal matrices of ``shape`` (..., n, n)."""
    q, r = np.linalg.qr(rng.normal(size=shape))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def spectrum(n: int, cond: float) -> np.ndarray:
    """``n`` values from 1 down to ``1/cond``, log-spaced."""
    return np.logspace(0.0, -np.log10(cond), n) if n > 1 else np.ones(1)


def general_matrix(
    rng: np.random.Generator, shape: tuple[int, ...], cond: float, dtype: str
) -> np.ndarray:
    """Random square matrices with singular values between 1 and ``1/cond``."""
    u, v = orthogonal(rng, shape), orthogonal(rng, shape)
    return ((u * spectrum(shape[-1], cond)) @ np.swapaxes(v, -1, -2)).astype(dtype)


def spd_matrix(
    rng: np.random.Generator, shape: tuple[int, ...], cond: float, dtype: str
) -> np.ndarray:
    """Random symmetric positive-definite matrices with eigenvalues in ``[1/cond, 1]``."""
    q = orthogonal(rng, shape)
    a = (q * spectrum(shape[-1], cond)) @ np.swapaxes(q, -1, -2)
    return ((a + np.swapaxes(a, -1, -2)) / 2).astype(dtype)


#: The (dtype, condition) pairs tested: ill-conditioned matrices in float64 only.
FLOAT_CASES = [("float64", "well"), ("float64", "ill"), ("float32", "well")]


# -------------------------------------------------------------------- Cholesky
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
def test_cholesky(n: int, dtype: str, condition: str, lower: bool, symbolic: bool) -> None:
    rng = np.random.default_rng(n)
    cond = CONDITIONS[condition]
    value = spd_matrix(rng, (n, n), cond, dtype)
    # Garbage in the triangle that is not referenced must not leak into the result.
    value[np.triu_indices(n, 1) if lower else np.tril_indices(n, -1)] = np.nan
    a = input_like(value, "a", symbolic)
    tol = tolerance(dtype, np.sqrt(cond), n)
    compare_onnx_and_py([a], [ptla.cholesky(a, lower=lower)], [value], rtol=tol, atol=tol)


@pytest.mark.parametrize("symbolic_dims", [False, True], ids=["static", "symbolic"])
def test_cholesky_not_positive_definite_gives_nan(symbolic_dims: bool) -> None:
    value = np.array([[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    a = input_like(value, "a", symbolic_dims)
    model = compare_onnx_and_py([a], [ptla.cholesky(a)], [value])
    assert model is not None


def test_cholesky_batched_nan_only_where_it_fails(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(1)
    value = spd_matrix(rng, (2, 3, 20, 20), 10.0, floatX)
    value[1, 2, 5, 5] = -3.0  # not positive definite
    a = input_like(value, "a", symbolic)
    out = ptla.cholesky(a)
    assert isinstance(out.owner.op, Blockwise)
    tol = tolerance(floatX, 10.0, 20)
    compare_onnx_and_py([a], [out], [value], rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [64, 65, 129])
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
def test_cholesky_around_recursion_base(n: int, dtype: str, condition: str) -> None:
    # Static sizes above RECURSION_BASE (64) are factored by recursive halving.
    rng = np.random.default_rng(n)
    cond = CONDITIONS[condition]
    value = spd_matrix(rng, (2, n, n), cond, dtype)
    value[1][np.triu_indices(n, 1)] = np.nan
    value[0, n - 1, n - 1] = -1.0  # not positive definite in the last leaf
    a = input_like(value, "a")
    tol = tolerance(dtype, np.sqrt(cond), n)
    compare_onnx_and_py([a], [ptla.cholesky(a)], [value], rtol=tol, atol=tol)


# ------------------------------------------------------------ triangular solve
@pytest.mark.parametrize("n", [1, 32])
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("trans", [0, 1], ids=["N", "T"])
@pytest.mark.parametrize("unit_diagonal", [False, True], ids=["diag", "unit"])
@pytest.mark.parametrize("b_ndim", [1, 2])
def test_solve_triangular(
    n: int, lower: bool, trans: int, unit_diagonal: bool, b_ndim: int, symbolic: bool
) -> None:
    rng = np.random.default_rng(n)
    # Triangles of a well-conditioned matrix: the Cholesky factor of an SPD one.
    factor = np.linalg.cholesky(spd_matrix(rng, (n, n), 100.0, "float64"))
    value = factor if lower else factor.T.copy()
    value[np.triu_indices(n, 1) if lower else np.tril_indices(n, -1)] = np.nan
    if unit_diagonal:
        value[np.diag_indices(n)] = np.inf  # never read
    b_value = rng.normal(size=(n,) if b_ndim == 1 else (n, 3))
    a = input_like(value, "a", symbolic)
    b = input_like(b_value, "b", symbolic)
    out = ptla.solve_triangular(
        a, b, lower=lower, trans=trans, unit_diagonal=unit_diagonal, b_ndim=b_ndim
    )
    # Unit-diagonal systems of these triangles are badly conditioned; compare relatively.
    scale = float(np.max(np.abs(pytensor.function([a, b], out)(value, b_value))))
    tol = 1e-12 * max(scale, 1.0)
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=1e-11, atol=tol)


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
def test_solve_triangular_size_100(lower: bool, symbolic: bool) -> None:
    rng = np.random.default_rng(100)
    factor = np.linalg.cholesky(spd_matrix(rng, (100, 100), 100.0, "float64"))
    value = factor if lower else factor.T.copy()
    b_value = rng.normal(size=(100, 4))
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve_triangular(a, b, lower=lower)
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("n", [65, 129])
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("trans", [0, 1], ids=["N", "T"])
@pytest.mark.parametrize("unit_diagonal", [False, True], ids=["diag", "unit"])
def test_solve_triangular_around_recursion_base(
    n: int, lower: bool, trans: int, unit_diagonal: bool, floatX: str
) -> None:
    rng = np.random.default_rng(n)
    factor = np.linalg.cholesky(spd_matrix(rng, (n, n), 10.0, "float64"))
    value = (factor if lower else factor.T.copy()).astype(floatX)
    value[np.triu_indices(n, 1) if lower else np.tril_indices(n, -1)] = np.nan
    if unit_diagonal:
        value[np.diag_indices(n)] = np.inf  # never read
        value[~np.isnan(value) & ~np.isinf(value)] /= n  # keep the unit-diagonal system tame
    b_value = rng.normal(size=(n, 3)).astype(floatX)
    a, b = input_like(value, "a"), input_like(b_value, "b")
    out = ptla.solve_triangular(a, b, lower=lower, trans=trans, unit_diagonal=unit_diagonal)
    tol = 1e-11 if floatX == "float64" else 2e-4
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=tol, atol=tol)


def test_solve_triangular_singular_recursive_gives_nan() -> None:
    rng = np.random.default_rng(5)
    value = np.linalg.cholesky(spd_matrix(rng, (100, 100), 10.0, "float64"))
    value[80, 80] = 0.0
    b_value = rng.normal(size=(100, 2))
    a, b = input_like(value, "a"), input_like(b_value, "b")
    compare_onnx_and_py([a, b], [ptla.solve_triangular(a, b, lower=True)], [value, b_value])


def test_solve_triangular_float32(floatX: str) -> None:
    rng = np.random.default_rng(3)
    value = np.linalg.cholesky(spd_matrix(rng, (8, 8), 10.0, "float64")).astype(floatX)
    b_value = rng.normal(size=(8, 2)).astype(floatX)
    a, b = input_like(value, "a"), input_like(b_value, "b")
    out = ptla.solve_triangular(a, b, lower=True)
    compare_onnx_and_py(
        [a, b], [out], [value, b_value], rtol=tolerance(floatX, 30.0), atol=tolerance(floatX, 30.0)
    )


def test_solve_triangular_singular_gives_nan(symbolic: bool) -> None:
    value = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 1.0, 3.0]])
    b_value = np.ones((3, 2))
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    compare_onnx_and_py([a, b], [ptla.solve_triangular(a, b, lower=True)], [value, b_value])


def test_solve_triangular_batched_broadcasting(symbolic: bool) -> None:
    rng = np.random.default_rng(4)
    value = np.linalg.cholesky(spd_matrix(rng, (2, 1, 6, 6), 10.0, "float64"))
    b_value = rng.normal(size=(3, 6))
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve_triangular(a, b, lower=True, b_ndim=1)
    assert out.type.ndim == 3
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("unit_diagonal", [False, True], ids=["diag", "unit"])
def test_solve_triangular_batched_blocks_singular_only_where_zero(
    lower: bool, unit_diagonal: bool, floatX: str
) -> None:
    # Static n > 32: the 32 x 32 diagonal blocks of all matrices of the batch are inverted
    # together by recursive doubling.  A zero on the diagonal of one matrix (in its second
    # block) makes that solution NaN and leaves the other exact; with unit_diagonal the
    # zero is never read.
    rng = np.random.default_rng(47)
    n = 47
    factor = np.linalg.cholesky(spd_matrix(rng, (3, n, n), 10.0, "float64"))
    value = (factor if lower else np.swapaxes(factor, -1, -2).copy()).astype(floatX)
    value[..., *(np.triu_indices(n, 1) if lower else np.tril_indices(n, -1))] = np.nan
    value[1, 40, 40] = 0.0
    if unit_diagonal:
        value[~np.isnan(value)] /= n  # keep the unit-diagonal systems tame
    b_value = rng.normal(size=(n, 2)).astype(floatX)
    a, b = input_like(value, "a"), input_like(b_value, "b")
    out = ptla.solve_triangular(a, b, lower=lower, unit_diagonal=unit_diagonal)
    expected = pytensor.function([a, b], out)(value, b_value)
    assert np.isnan(expected[1]).all() != unit_diagonal
    tol = 1e-11 if floatX == "float64" else 2e-4
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=tol, atol=tol)


# ----------------------------------------------------------------------- solve
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
@pytest.mark.parametrize("assume_a", ["gen", "sym", "pos"])
def test_solve(n: int, dtype: str, condition: str, assume_a: str, symbolic: bool) -> None:
    rng = np.random.default_rng(10 + n)
    cond = CONDITIONS[condition]
    if assume_a == "gen":
        value = general_matrix(rng, (n, n), cond, dtype)
    else:
        value = spd_matrix(rng, (n, n), cond, dtype)
        if assume_a == "sym" and n > 1:
            value[0, 0] = -value[0, 0]  # symmetric, indefinite
    b_value = rng.normal(size=(n, 2)).astype(dtype)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve(a, b, assume_a=assume_a)
    # The solution's size grows like cond: compare relative to its scale.
    tol = tolerance(dtype, cond, n)
    scale = float(np.max(np.abs(pytensor.function([a, b], out)(value, b_value))))
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("assume_a", ["sym", "pos"])
def test_solve_reads_one_triangle(lower: bool, assume_a: str) -> None:
    rng = np.random.default_rng(5)
    value = spd_matrix(rng, (6, 6), 10.0, "float64")
    value[np.triu_indices(6, 1) if lower else np.tril_indices(6, -1)] = 1e3  # ignored
    b_value = rng.normal(size=6)
    a, b = input_like(value, "a"), input_like(b_value, "b")
    out = ptla.solve(a, b, assume_a=assume_a, lower=lower, b_ndim=1)
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=1e-12, atol=1e-12)


def test_solve_pivoting_and_ties(symbolic: bool) -> None:
    # Zero leading entry (needs a row swap) and equal-magnitude pivot candidates.
    value = np.array(
        [[0.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0], [-1.0, 3.0, 0.0, 2.0], [1.0, 0.0, 2.0, 1.0]]
    )
    b_value = np.arange(8.0).reshape(4, 2)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    outs = [ptla.solve(a, b), *ptla.lu_factor(a)]
    compare_onnx_and_py([a, b], outs, [value, b_value], rtol=1e-13, atol=1e-13)


def test_solve_singular_gives_nan(symbolic: bool) -> None:
    value = np.array([[1.0, 2.0], [2.0, 4.0]])
    # PyTensor's Solve returns NaN of a's shape here (ONNX: b's shape); a square b agrees.
    b_value = np.ones((2, 2))
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    compare_onnx_and_py([a, b], [ptla.solve(a, b)], [value, b_value])


def test_solve_batched_broadcasting(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(6)
    value = general_matrix(rng, (3, 1, 7, 7), 10.0, floatX)
    b_value = rng.normal(size=(4, 7, 2)).astype(floatX)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve(a, b, b_ndim=2)
    assert out.type.ndim == 4
    tol = tolerance(floatX, 10.0, 7)
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=tol, atol=tol)


def test_least_squares_via_solve(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(7)
    design = rng.normal(size=(40, 4)).astype(floatX)
    target = (design @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=40)).astype(floatX)
    x, y = input_like(design, "x", symbolic), input_like(target, "y", symbolic)
    beta = ptla.solve(x.T @ x, x.T @ y, assume_a="pos", b_ndim=1)
    residual = pt.sum((y - x @ beta) ** 2)
    tol = tolerance(floatX, 10.0, 4)
    compare_onnx_and_py([x, y], [beta, residual], [design, target], rtol=tol, atol=tol)


# ---------------------------------------------------------------- tridiagonal
def tridiagonal_matrix(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Random tridiagonal matrices whose subdiagonal is often the larger entry (so rows get
    interchanged), with the rest of the matrix NaN: only the three diagonals may be read."""
    n = shape[-1]
    value = np.full(shape, np.nan)
    rows = np.arange(n)
    value[..., rows, rows] = rng.normal(size=(*shape[:-2], n))
    value[..., rows[1:], rows[:-1]] = 2.0 * rng.normal(size=(*shape[:-2], n - 1))
    value[..., rows[:-1], rows[1:]] = rng.normal(size=(*shape[:-2], n - 1))
    return value.astype(dtype)


def tridiagonal_tolerance(dtype: str) -> float:
    return 1e-10 if dtype == "float64" else 2e-3


@pytest.mark.parametrize("n", [2, 3, 7, 40])
@pytest.mark.parametrize("b_ndim", [1, 2])
def test_solve_tridiagonal(n: int, b_ndim: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(n)
    value = tridiagonal_matrix(rng, (n, n), floatX)
    b_value = rng.normal(size=(n,) if b_ndim == 1 else (n, 3)).astype(floatX)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve(a, b, assume_a="tridiagonal", b_ndim=b_ndim)
    tol = tridiagonal_tolerance(floatX)
    compare_onnx_and_py([a, b], [out], [value, b_value], rtol=tol, atol=tol)


def test_solve_tridiagonal_singular_gives_nan(symbolic: bool) -> None:
    # The first two rows are equal: gttrf ends with a zero pivot (info > 0).
    value = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    b_value = np.ones((3, 3))  # PyTensor's NaN has a's shape (ours b's): a square b agrees
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.solve(a, b, assume_a="tridiagonal")
    assert np.isnan(pytensor.function([a, b], out)(value, b_value)).all()
    compare_onnx_and_py([a, b], [out], [value, b_value])


def test_solve_tridiagonal_gradient(floatX: str, symbolic: bool) -> None:
    # PyTensor 3 writes this gradient with LUFactorTridiagonal / SolveLUFactorTridiagonal
    # (a transposed solve); PyTensor 2 with Solve.
    rng = np.random.default_rng(11)
    value = tridiagonal_matrix(rng, (6, 6), floatX)
    value[np.isnan(value)] = 0.0
    b_value = rng.normal(size=6).astype(floatX)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    cost = (ptla.solve(a, b, assume_a="tridiagonal", b_ndim=1) ** 2).sum()
    tol = tridiagonal_tolerance(floatX)
    compare_onnx_and_py(
        [a, b], [cost, *pytensor.grad(cost, [a, b])], [value, b_value], rtol=tol, atol=tol
    )


def tridiagonal_ops() -> tuple[Any, Any]:
    """PyTensor's ``tridiagonal_lu_factor`` and ``tridiagonal_lu_solve`` (3.x, then 2.38)."""
    for name in (
        "pytensor.tensor.linalg.solvers.tridiagonal",
        "pytensor.tensor._linalg.solve.tridiagonal",
    ):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.tridiagonal_lu_factor, module.tridiagonal_lu_solve
    pytest.skip("this PyTensor has no tridiagonal LU Ops")


@pytest.mark.parametrize("n", [3, 9, 40])  # SciPy's float32 gttrf fails for n = 2
@pytest.mark.parametrize("transposed", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("b_ndim", [1, 2])
def test_tridiagonal_lu_factor_and_solve(
    n: int, transposed: bool, b_ndim: int, floatX: str, symbolic: bool
) -> None:
    lu_factor, lu_solve = tridiagonal_ops()
    rng = np.random.default_rng(100 + n)
    value = tridiagonal_matrix(rng, (n, n), floatX)
    b_value = rng.normal(size=(n,) if b_ndim == 1 else (n, 2)).astype(floatX)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    factors = lu_factor(a)
    x = lu_solve(factors, b, b_ndim=b_ndim, transposed=transposed)
    tol = tridiagonal_tolerance(floatX)
    # The pivots (int32, 1-based as LAPACK's) are compared exactly.
    compare_onnx_and_py([a, b], [*factors, x], [value, b_value], rtol=tol, atol=tol)


def test_tridiagonal_lu_ties_zeros_and_nan() -> None:
    # Ties |d[i]| == |dl[i]| keep the row (no interchange), as LAPACK's .GE.; a zero pivot
    # with a zero below it is skipped (d stays 0: the solve gives inf / NaN, unchecked, as
    # gttrs); a NaN compares false and interchanges.
    lu_factor, lu_solve = tridiagonal_ops()
    d = np.array([2.0, 1.0, 0.0, 3.0, np.nan, 1.0, 4.0])
    dl = np.array([-2.0, 0.5, 0.0, 1.0, 1.0, -4.0])
    du = np.array([1.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    value = np.diag(d) + np.diag(dl, -1) + np.diag(du, 1)
    b_value = np.arange(7.0)
    a, b = input_like(value, "a", symbolic=True), input_like(b_value, "b", symbolic=True)
    factors = lu_factor(a)
    outputs = [
        *factors,
        lu_solve(factors, b, b_ndim=1),
        lu_solve(factors, b, b_ndim=1, transposed=True),
    ]
    compare_onnx_and_py([a, b], outputs, [value, b_value])


def test_tridiagonal_lu_batched_broadcasting(floatX: str, symbolic: bool) -> None:
    lu_factor, lu_solve = tridiagonal_ops()
    rng = np.random.default_rng(7)
    value = tridiagonal_matrix(rng, (2, 1, 5, 5), floatX)
    b_value = rng.normal(size=(3, 5, 2)).astype(floatX)
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    factors = lu_factor(a)
    outputs = [*factors, lu_solve(factors, b, b_ndim=2, transposed=True)]
    tol = tridiagonal_tolerance(floatX)
    compare_onnx_and_py([a, b], outputs, [value, b_value], rtol=tol, atol=tol)


# -------------------------------------------------------------------- cho_solve
@pytest.mark.parametrize("n", [1, 32])
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
@pytest.mark.parametrize("b_ndim", [1, 2])
def test_cho_solve(n: int, lower: bool, b_ndim: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(n)
    factor = np.linalg.cholesky(spd_matrix(rng, (n, n), 10.0, "float64"))
    value = (factor if lower else factor.T).astype(floatX)
    b_value = rng.normal(size=(n,) if b_ndim == 1 else (n, 2)).astype(floatX)
    c, b = input_like(value, "c", symbolic), input_like(b_value, "b", symbolic)
    out = ptla.cho_solve((c, lower), b, b_ndim=b_ndim)
    tol = tolerance(floatX, 10.0, n)
    compare_onnx_and_py([c, b], [out], [value, b_value], rtol=tol, atol=tol)


# --------------------------------------------------------------------------- LU
@pytest.mark.parametrize("n", [1, 2, 5, 32])
def test_lu_factor(n: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(n)
    value = general_matrix(rng, (n, n), 10.0, floatX)
    a = input_like(value, "a", symbolic)
    packed, pivots = ptla.lu_factor(a)
    tol = tolerance(floatX, 10.0, n)
    compare_onnx_and_py([a], [packed, pivots], [value], rtol=tol, atol=tol)


@pytest.mark.parametrize("mode", ["p", "p_indices", "permute_l"])
def test_lu(mode: str, symbolic: bool) -> None:
    value = np.array(
        [[1.0, 2.0, 0.0, 3.0], [4.0, -1.0, 2.0, 0.0], [-4.0, 0.0, 1.0, 1.0], [2.0, 2.0, 2.0, 5.0]]
    )
    a = input_like(value, "a", symbolic)
    outs = ptla.lu(a, permute_l=mode == "permute_l", p_indices=mode == "p_indices")
    compare_onnx_and_py([a], list(outs), [value], rtol=1e-14, atol=1e-14)


def test_lu_factor_singular() -> None:
    # LAPACK returns the factorization of a singular matrix (a zero pivot, no NaN).
    value = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
    a = input_like(value, "a")
    compare_onnx_and_py([a], list(ptla.lu_factor(a)), [value])


def test_lu_batched(symbolic: bool) -> None:
    rng = np.random.default_rng(8)
    value = general_matrix(rng, (3, 6, 6), 10.0, "float64")
    a = input_like(value, "a", symbolic)
    packed, pivots = ptla.lu_factor(a)
    p, lower, upper = ptla.lu(a)
    compare_onnx_and_py([a], [packed, pivots, p, lower, upper], [value], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [64, 65, 129])
def test_lu_around_recursion_base(n: int, floatX: str) -> None:
    # Static sizes above LU_RECURSION_BASE (64) are factored by recursive halving: the
    # pivots, the packed factors and what is built on them match LAPACK's getrf.  The
    # second matrix has a zero column in the second half (an exact zero pivot there, with
    # zero multipliers).  (SciPy refuses NaN.)
    rng = np.random.default_rng(n)
    value = general_matrix(rng, (2, n, n), 10.0, floatX)
    value[1, :, n - 2] = 0.0
    a = input_like(value, "a")
    packed, pivots = ptla.lu_factor(a)
    p, lower, upper = ptla.lu(a)
    sign, logdet = ptla.slogdet(a)
    outs = [packed, pivots, p, lower, upper, sign, logdet]
    tol = tolerance(floatX, 10.0, n)
    compare_onnx_and_py([a], outs, [value], rtol=tol, atol=tol)


# --------------------------------------------------------------------------- QR
QR_MODES = ["full", "economic", "r", "raw"]
QR_SHAPES = [(1, 1), (2, 2), (5, 5), (7, 4), (4, 7), (32, 32)]


def qr_outputs(a: pt.TensorVariable, mode: str, pivoting: bool) -> list[pt.TensorVariable]:
    """The outputs of ``pt.linalg.qr`` as a list (one for ``mode="r"`` without pivoting)."""
    outs = ptla.qr(a, mode=mode, pivoting=pivoting)
    return list(outs) if isinstance(outs, list | tuple) else [outs]


def raw_is_refused(a: pt.TensorVariable, mode: str) -> bool:
    """Whether the export refuses ``mode="raw"`` on ``a``: PyTensor's static output types are
    wrong when the row count is static and the matrix not statically square."""
    rows, columns = a.type.shape[-2:]
    return mode == "raw" and rows is not None and rows != columns


def check_qr(value: np.ndarray, mode: str, pivoting: bool, symbolic: bool, tol: float) -> None:
    """Compare every output of ``qr(value, mode, pivoting)`` (pivots exactly), or the refusal."""
    a = input_like(value, "a", symbolic)
    outs = qr_outputs(a, mode, pivoting)
    if raw_is_refused(a, mode):
        with pytest.raises(UnsupportedOpError, match="mode='raw'"):
            export_onnx([a], outs)
        return
    # Integer pivots are compared exactly: the tolerances are far below 1.
    compare_onnx_and_py([a], outs, [value], rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", QR_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("mode", QR_MODES)
@pytest.mark.parametrize("pivoting", [False, True], ids=["", "pivoting"])
def test_qr(shape: tuple[int, int], mode: str, pivoting: bool, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(sum(shape))
    value = rng.normal(size=shape).astype(floatX)
    check_qr(value, mode, pivoting, symbolic, tolerance(floatX, 10.0, max(shape)))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "raw"])
def test_qr_pivoting_100(mode: str, symbolic: bool) -> None:
    value = np.random.default_rng(100).normal(size=(100, 100))
    check_qr(value, mode, True, symbolic, tolerance("float64", 10.0, 100))


@pytest.mark.parametrize("shape", [(3, 5, 5), (2, 6, 4), (2, 4, 6)], ids=str)
@pytest.mark.parametrize("mode", QR_MODES)
@pytest.mark.parametrize("pivoting", [False, True], ids=["", "pivoting"])
def test_qr_batched(shape: tuple[int, ...], mode: str, pivoting: bool, symbolic: bool) -> None:
    value = np.random.default_rng(9).normal(size=shape)
    check_qr(value, mode, pivoting, symbolic, 1e-12)


def test_qr_vectorized_pivoting(symbolic: bool) -> None:
    # A Blockwise with two batch dimensions, built by pt.vectorize.
    value = np.random.default_rng(4).normal(size=(2, 3, 6, 6))
    a = input_like(value, "a", symbolic)
    outs = pt.vectorize(
        lambda x: ptla.qr(x, mode="raw", pivoting=True), "(m,n)->(m,n),(k),(k,n),(n)"
    )
    compare_onnx_and_py([a], list(outs(a)), [value], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", QR_MODES)
@pytest.mark.parametrize("pivoting", [False, True], ids=["", "pivoting"])
def test_qr_zero_columns(mode: str, pivoting: bool, symbolic: bool) -> None:
    rng = np.random.default_rng(9)
    value = rng.normal(size=(3, 5, 5))
    value[0, 2:, 1] = 0.0  # a column already reduced below the diagonal: LAPACK takes tau = 0
    value[1, :, [1, 3]] = 0.0  # zero columns: pivoting leaves them last, in LAPACK's order
    value[2] = 0.0  # all zero: ties everywhere, the identity permutation, tau = 0, Q = I
    check_qr(value, mode, pivoting, symbolic, 1e-12)


@pytest.mark.parametrize("scale", [1e-300, 1e200])
@pytest.mark.parametrize("mode", ["full", "raw"])
@pytest.mark.parametrize("pivoting", [False, True], ids=["", "pivoting"])
def test_qr_extreme_magnitudes(scale: float, mode: str, pivoting: bool) -> None:
    # Column norms square the entries; LAPACK's dnrm2 avoids the over/underflow, and so must
    # we (the matrix is scaled by a power of two first).
    value = np.random.default_rng(6).normal(size=(5, 5)) * scale
    a = input_like(value, "a", symbolic=True)
    outs = qr_outputs(a, mode, pivoting)
    # Compared at unit scale: R (and the R part of the raw array) divided by the scale.
    if mode == "full":
        outs[1] = outs[1] / scale
    else:
        outs[0] = pt.triu(outs[0]) / scale + pt.tril(outs[0], -1)
        outs[2] = outs[2] / scale
    compare_onnx_and_py([a], outs, [value], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", QR_MODES)
def test_qr_pivoting_rank_deficient(mode: str, symbolic: bool) -> None:
    # Rank 4 of 5: the pivoted R ends with a rounding-size diagonal entry.  The last step has
    # one row and one column left, so no choice or reflector depends on that rounding.
    rng = np.random.default_rng(5)
    value = rng.normal(size=(5, 5))
    value[:, 3] = value[:, 0] - 2.0 * value[:, 4]
    check_qr(value, mode, True, symbolic, 1e-12)


# --------------------------------------------------------------------- gradients
GRADIENT_CASES = {
    "cholesky": lambda a, b: ptla.cholesky(a),
    "solve_triangular": lambda a, b: ptla.solve_triangular(a, b, lower=True),
    "solve": lambda a, b: ptla.solve(a, b),
    "solve_pos": lambda a, b: ptla.solve(a, b, assume_a="pos"),
    "cho_solve": lambda a, b: ptla.cho_solve((ptla.cholesky(a), True), b),
}


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_gradients(name: str, symbolic: bool) -> None:
    rng = np.random.default_rng(11)
    value = spd_matrix(rng, (6, 6), 10.0, "float64")
    b_value = rng.normal(size=(6, 2))
    weights = rng.normal(size=(6, 6 if name == "cholesky" else 2))
    a, b = input_like(value, "a", symbolic), input_like(b_value, "b", symbolic)
    cost = pt.sum(GRADIENT_CASES[name](a, b) * weights)
    try:
        grads = pytensor.grad(cost, [a] if name == "cholesky" else [a, b])
    except NotImplementedError:
        pytest.skip(f"this PyTensor ({pytensor.__version__}) has no gradient for {name}")
    compare_onnx_and_py([a, b], [cost, *grads], [value, b_value], rtol=1e-11, atol=1e-11)


# --------------------------------------------------------------- model graphs
def _gp_logp(
    x: pt.TensorVariable, y: pt.TensorVariable, ls: pt.TensorVariable, noise: pt.TensorVariable
) -> pt.TensorVariable:
    """The GP marginal log-likelihood with an ExpQuad kernel plus noise."""
    sq_dist = pt.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    cov = pt.exp(-0.5 * sq_dist / ls**2) + noise * pt.eye(x.shape[0])
    chol = ptla.cholesky(cov)
    alpha = ptla.solve_triangular(chol, y, lower=True, b_ndim=1)
    logdet = 2.0 * pt.sum(pt.log(pt.diagonal(chol)))
    n = pt.cast(y.shape[0], x.dtype)
    return -0.5 * pt.dot(alpha, alpha) - 0.5 * logdet - 0.5 * n * np.log(2.0 * np.pi)


def test_gp_marginal_likelihood_and_gradient(floatX: str, symbolic: bool) -> None:
    # With symbolic sizes the gradient holds PyTensor shape Asserts on int64 values between x
    # and y: converted as checks that fail the run (dispatch/raise_op.py).
    rng = np.random.default_rng(12)
    x_value = rng.uniform(0, 5, size=(30, 2)).astype(floatX)
    y_value = np.sin(x_value.sum(axis=1)).astype(floatX)
    # Symbolic: an unknown number of points (the input dimension stays static, as in
    # models; unknown dims on both sides of a broadcast add shape Asserts on integers).
    x = pt.tensor("x", dtype=floatX, shape=(None, 2) if symbolic else x_value.shape)
    y = input_like(y_value, "y", symbolic)
    ls, noise = pt.scalar("ls", dtype=floatX), pt.scalar("noise", dtype=floatX)
    logp = _gp_logp(x, y, ls, noise)
    grads = pytensor.grad(logp, [ls, noise, x])
    values = [x_value, y_value, np.asarray(1.3, floatX), np.asarray(0.1, floatX)]
    tol = 1e-10 if floatX == "float64" else 2e-3
    compare_onnx_and_py([x, y, ls, noise], [logp, *grads], values, rtol=tol, atol=tol)


def test_mvnormal_logp_dense_covariance(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(13)
    cov_value = (spd_matrix(rng, (5, 5), 50.0, "float64") * 2.0).astype(floatX)
    draws = rng.normal(size=(10, 5)).astype(floatX)
    mu_value = rng.normal(size=5).astype(floatX)
    # Symbolic: unknown number of draws and covariance size (mu fixes the event size).
    cov = input_like(cov_value, "cov", symbolic)
    value = pt.tensor("value", dtype=floatX, shape=(None, 5) if symbolic else draws.shape)
    mu = input_like(mu_value, "mu")
    chol = ptla.cholesky(cov)
    z = ptla.solve_triangular(chol, (value - mu).T, lower=True)
    k = pt.cast(value.shape[-1], floatX)
    logp = (
        -0.5 * pt.sum(z**2, axis=0)
        - pt.sum(pt.log(pt.diagonal(chol)))
        - 0.5 * k * np.log(2.0 * np.pi)
    )
    total = pt.sum(logp)
    grads = pytensor.grad(total, [cov, mu])
    tol = 1e-11 if floatX == "float64" else 2e-4
    compare_onnx_and_py(
        [cov, value, mu], [logp, *grads], [cov_value, draws, mu_value], rtol=tol, atol=tol
    )


def test_large_sizes_use_loops() -> None:
    a = pt.matrix("a", dtype="float64", shape=(64, 64))
    b = pt.matrix("b", dtype="float64", shape=(64, 3))
    model = export_onnx([a, b], [ptla.solve(a, b), ptla.cholesky(a)])
    ops = [node.op_type for node in model.graph.node]
    # LU and Cholesky are loops (a loop of static length is an ONNX Scan); the two
    # triangular solves invert their two diagonal blocks without a loop (5 doublings).
    assert ops.count("Loop") + ops.count("Scan") >= 2
    assert len(ops) < 300  # not unrolled
    fgraph = capture([a, b], [ptla.solve(a, b)]).fgraph
    assert any(type(node.op).__name__ == "Solve" for node in fgraph.toposort())


# ---------------------------------------------------------------- block_diag
BLOCK_DIAG_CASES = {
    # (shape, dtype) of each block; the output dtype is their common upcast.
    "float64": [((2, 3), "float64"), ((1, 1), "float64"), ((3, 2), "float64")],
    "float32_float64": [((2, 2), "float32"), ((3, 4), "float64")],
    "int_float32": [((2, 3), "int32"), ((2, 1), "float32")],
    "int8": [((2, 2), "int8"), ((1, 3), "int8")],
    "bool": [((2, 2), "bool"), ((1, 3), "bool")],
    "empty_block": [((0, 2), "float64"), ((2, 0), "float64"), ((1, 1), "float64")],
}


@pytest.mark.parametrize("case", BLOCK_DIAG_CASES)
def test_block_diag(case: str, symbolic: bool) -> None:
    rng = np.random.default_rng(3)
    values = [
        (10 * rng.normal(size=shape)).astype(dtype) for shape, dtype in BLOCK_DIAG_CASES[case]
    ]
    inputs = [input_like(v, f"x{i}", symbolic) for i, v in enumerate(values)]
    out = ptla.block_diag(*inputs)
    compare_onnx_and_py(inputs, [out], values)


@pytest.mark.parametrize(
    "shapes",
    [[(3, 2, 2), (3, 1, 3)], [(2, 1, 2, 3), (4, 1, 1), (1, 2, 2)]],
    ids=["same_batch", "broadcast"],
)
def test_block_diag_batched(shapes: list[tuple[int, ...]], floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(4)
    values = [rng.normal(size=shape).astype(floatX) for shape in shapes]
    inputs = [input_like(v, f"x{i}", symbolic) for i, v in enumerate(values)]
    out = ptla.block_diag(*inputs)
    assert out.ndim == max(len(shape) for shape in shapes)
    compare_onnx_and_py(inputs, [out], values)


def test_block_diag_grad(symbolic: bool) -> None:
    # PyTensor slices the output gradient back into blocks (advanced indexing with ix_).
    rng = np.random.default_rng(9)
    values = [rng.normal(size=(2, 3)), rng.normal(size=(3, 2))]
    weights = rng.normal(size=(5, 5))
    inputs = [input_like(v, f"x{i}", symbolic) for i, v in enumerate(values)]
    cost = (ptla.block_diag(*inputs) * weights).sum()
    compare_onnx_and_py(inputs, pytensor.grad(cost, inputs), values)


# ---------------------------------------------------------------------- expm
def expm_matrix(rng: np.random.Generator, shape: tuple[int, ...], norm: float) -> np.ndarray:
    """Random (..., n, n) matrices of 1-norm about ``norm`` whose exponential stays moderate.

    A skew-symmetric part of 1-norm ``norm`` (eigenvalues on the imaginary axis) plus a
    symmetric part of 1-norm ``min(norm, 1)``: real parts of the eigenvalues stay within 1,
    so ``expm`` neither overflows nor underflows, while the scaling takes ``log2(norm)``
    squarings.
    """
    g = rng.normal(size=shape)
    skew = (g - np.swapaxes(g, -1, -2)) / 2
    sym = (g + np.swapaxes(g, -1, -2)) / 2

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.abs(x).sum(axis=-2).max(axis=-1)[..., None, None]
        return x / np.where(norms > 0, norms, 1.0)

    return norm * unit(skew) + min(norm, 1.0) * unit(sym)


def expm_tolerance(dtype: str, norm: float, n: int) -> float:
    """Agreement with SciPy relative to the result's largest entry.

    Rounding errors of scaling and squaring grow with ``||A||`` (the squarings), so the
    tolerance does too.  SciPy computes float32 in float32 (measured 4e-5 relative error at
    ``||A|| = 1e3``), the export in float64, hence the float32 margin.
    """
    unit = 2e-14 if dtype == "float64" else 3e-7
    return unit * max(1.0, norm) * max(1.0, np.sqrt(n))


EXPM_NORMS = [1e-3, 1.0, 30.0, 1e3]


@pytest.mark.parametrize("n", [1, 2, 5, 32])
@pytest.mark.parametrize("norm", EXPM_NORMS)
def test_expm(n: int, norm: float, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(n)
    value = expm_matrix(rng, (n, n), norm).astype(floatX)
    a = input_like(value, "a", symbolic)
    out = ptla.expm(a)
    tol = expm_tolerance(floatX, norm, n)
    scale = float(np.abs(scipy.linalg.expm(value)).max())
    compare_onnx_and_py([a], [out], [value], rtol=tol, atol=tol * scale)


def test_expm_batched(floatX: str, symbolic: bool) -> None:
    # Norms from 1e-3 to 1e3 in one batch: each matrix is squared its own number of times.
    rng = np.random.default_rng(5)
    norms = np.logspace(-3, 3, 6)
    value = np.stack([expm_matrix(rng, (4, 4), norm) for norm in norms]).reshape(2, 3, 4, 4)
    value = value.astype(floatX)
    a = input_like(value, "a", symbolic)
    tol = expm_tolerance(floatX, 1e3, 4)
    compare_onnx_and_py([a], [ptla.expm(a)], [value], rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("n", [0, 3])
def test_expm_zero_and_empty(n: int, floatX: str, symbolic: bool) -> None:
    value = np.zeros((2, n, n), dtype=floatX)
    a = input_like(value, "a", symbolic)
    # onnx.reference cannot run a Loop of zero iterations with scan outputs (the LU's, not
    # unrolled for symbolic sizes).
    compare_onnx_and_py([a], [ptla.expm(a)], [value], reference=not (symbolic and n == 0))


def test_expm_non_finite_gives_nan(symbolic: bool) -> None:
    # Only the matrices holding inf or NaN are NaN (SciPy gives all-NaN for dense matrices).
    rng = np.random.default_rng(6)
    value = rng.normal(size=(3, 4, 4))
    value[0, 1, 2] = np.nan
    value[2, 3, 0] = -np.inf
    a = input_like(value, "a", symbolic)
    model = compare_onnx_and_py([a], [ptla.expm(a)], [value])
    runtime, reference = run_onnx(model, {"a": value})
    for (result,) in (runtime, reference):
        assert np.isnan(result[[0, 2]]).all() and np.isfinite(result[1]).all()


IS_PYTENSOR_2 = not hasattr(ptla, "Expm") or "slinalg" in ptla.Expm.__module__


@pytest.mark.skipif(IS_PYTENSOR_2, reason="PyTensor 2's Expm gradient uses complex Eig")
@pytest.mark.parametrize("n", [1, 3, 6])
def test_expm_grad(n: int, symbolic: bool) -> None:
    # PyTensor 3 differentiates through the exponential of [[Aᵀ, G], [0, Aᵀ]].
    rng = np.random.default_rng(7)
    value = expm_matrix(rng, (n, n), 3.0)
    weights = rng.normal(size=(n, n))
    a = input_like(value, "a", symbolic)
    cost = (ptla.expm(a) * weights).sum()
    compare_onnx_and_py([a], [pytensor.grad(cost, a)], [value], rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not IS_PYTENSOR_2, reason="PyTensor 3's Expm gradient is an Expm")
def test_expm_grad_pytensor2_is_refused() -> None:
    a = pt.matrix("a", dtype="float64")
    grad = pytensor.grad(ptla.expm(a).sum(), a)
    # The refusal of Eig is what is reported, not the complex nodes that follow it.
    with pytest.raises(UnsupportedOpError, match=r"(?s)Eig.*complex"):
        export_onnx([a], [grad])


# ------------------------------------------------- Sylvester and Lyapunov equations
def near_multiple_of_identity(
    rng: np.random.Generator, shape: tuple[int, ...], center: float, dtype: str
) -> np.ndarray:
    """Random matrices whose eigenvalues lie within about 0.5 of ``center``."""
    n = shape[-1]
    noise = rng.normal(size=shape) * 0.5 / np.sqrt(max(n, 1))
    return (noise + center * np.eye(n)).astype(dtype)


#: Sylvester equations with the spectra of A and -B about 3 apart are well conditioned.
SYLVESTER_SIZES = [(1, 1), (2, 3), (5, 4), (7, 7)]


def sylvester_problem(rng: np.random.Generator, m: int, n: int, dtype: str) -> list[np.ndarray]:
    """A (m, m), B (n, n), Q (m, n) of a well-conditioned ``A X + X B = Q``."""
    return [
        near_multiple_of_identity(rng, (m, m), 1.0, dtype),
        near_multiple_of_identity(rng, (n, n), 2.0, dtype),
        rng.normal(size=(m, n)).astype(dtype),
    ]


@pytest.mark.parametrize(("m", "n"), SYLVESTER_SIZES)
def test_solve_sylvester(m: int, n: int, floatX: str, symbolic: bool) -> None:
    values = sylvester_problem(np.random.default_rng(20 + m * n), m, n, floatX)
    a, b, q = (input_like(v, name, symbolic) for v, name in zip(values, "abq", strict=True))
    tol = tolerance(floatX, 10.0, m * n)
    compare_onnx_and_py([a, b, q], [ptla.solve_sylvester(a, b, q)], values, rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1, 3, 6])
@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_solve_lyapunov(n: int, kind: str, floatX: str, symbolic: bool) -> None:
    # The continuous solver is a Sylvester equation with B = A^T; the discrete one's default
    # (bilinear) method maps it to a continuous one inside PyTensor's graph.
    rng = np.random.default_rng(30 + n)
    if kind == "continuous":
        a_value = near_multiple_of_identity(rng, (n, n), -1.5, floatX)  # stable
        solver = ptla.solve_continuous_lyapunov
    else:
        a_value = near_multiple_of_identity(rng, (n, n), 0.2, floatX)  # spectral radius < 1
        solver = ptla.solve_discrete_lyapunov
    half = rng.normal(size=(n, n))
    q_value = (half @ half.T).astype(floatX)
    a, q = input_like(a_value, "a", symbolic), input_like(q_value, "q", symbolic)
    tol = tolerance(floatX, 10.0, n * n)
    compare_onnx_and_py([a, q], [solver(a, q)], [a_value, q_value], rtol=tol, atol=tol)


def test_solve_sylvester_batched_broadcasting(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(40)
    values = [
        near_multiple_of_identity(rng, (3, 1, 2, 2), 1.0, floatX),
        near_multiple_of_identity(rng, (4, 3, 3), 2.0, floatX),
        rng.normal(size=(2, 3)).astype(floatX),
    ]
    a, b, q = (input_like(v, name, symbolic) for v, name in zip(values, "abq", strict=True))
    out = ptla.solve_sylvester(a, b, q)
    assert out.type.ndim == 4
    # Against SciPy per matrix: PyTensor 3.0's batched Schur fails to compile in Numba.
    stacks = [np.broadcast_to(v, (3, 4, *v.shape[-2:])).reshape(12, *v.shape[-2:]) for v in values]
    expected = np.array([scipy.linalg.solve_sylvester(*abq) for abq in zip(*stacks, strict=True)])
    model = export_onnx([a, b, q], [out])
    tol = tolerance(floatX, 10.0, 6)
    for (result,) in run_onnx(model, dict(zip("abq", values, strict=True))):
        assert result.dtype == floatX and result.shape == (3, 4, 2, 3)
        np.testing.assert_allclose(result.reshape(-1, 2, 3), expected, rtol=tol, atol=tol)


def test_sylvester_and_lyapunov_gradients(symbolic: bool) -> None:
    # The gradients are Sylvester equations with transposed coefficients (and the discrete
    # Lyapunov solver's is its own inner graph differentiated).
    rng = np.random.default_rng(41)
    values = [
        *sylvester_problem(rng, 3, 2, "float64"),
        near_multiple_of_identity(rng, (3, 3), 0.2, "float64"),
    ]
    a, b, q, t = (input_like(v, name, symbolic) for v, name in zip(values, "abqt", strict=True))
    weights = rng.normal(size=(3, 2))
    cost = (ptla.solve_sylvester(a, b, q) * weights).sum() + (
        ptla.solve_discrete_lyapunov(t, a @ a.T) ** 2
    ).sum()
    grads = pytensor.grad(cost, [a, b, q, t])
    compare_onnx_and_py([a, b, q, t], [cost, *grads], values, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize(("m", "n"), [(0, 3), (2, 0), (0, 0)])
def test_solve_sylvester_empty(m: int, n: int, symbolic: bool) -> None:
    # PyTensor 2.38's TRSYL fails on empty matrices; the export gives the empty solution.
    values = [np.eye(m), np.eye(n), np.zeros((m, n))]
    a, b, q = (input_like(v, name, symbolic) for v, name in zip(values, "abq", strict=True))
    model = export_onnx([a, b, q], [ptla.solve_sylvester(a, b, q)])
    feeds = dict(zip("abq", values, strict=True))
    # onnx.reference cannot run a Loop of zero iterations with scan outputs (the LU's, which
    # is not unrolled for symbolic sizes).
    results = run_onnx(model, feeds) if not symbolic else (ort_session(model).run(None, feeds),)
    for (result,) in results:
        assert result.shape == (m, n) and result.dtype == np.float64


def test_solve_sylvester_non_finite_input_gives_nan(symbolic: bool) -> None:
    values = sylvester_problem(np.random.default_rng(42), 3, 2, "float64")
    values[2][1, 0] = np.inf
    a, b, q = (input_like(v, name, symbolic) for v, name in zip(values, "abq", strict=True))
    model = export_onnx([a, b, q], [ptla.solve_sylvester(a, b, q)])
    for (result,) in run_onnx(model, dict(zip("abq", values, strict=True))):
        assert not np.isfinite(result).all()


# --------------------------------------------------- discrete algebraic Riccati equations
def riccati_problem(
    rng: np.random.Generator, m: int, n: int, dtype: str, batch: tuple[int, ...] = ()
) -> list[np.ndarray]:
    """A, B, Q, R of a stabilizable, detectable DARE with positive-definite Q and R."""
    a = rng.normal(size=(*batch, m, m)) / np.sqrt(max(m, 1))
    b = rng.normal(size=(*batch, m, n))
    q_half, r_half = rng.normal(size=(*batch, m, m)), rng.normal(size=(*batch, n, n))
    q = q_half @ np.swapaxes(q_half, -1, -2) / max(m, 1) + np.eye(m)
    r = r_half @ np.swapaxes(r_half, -1, -2) / max(n, 1) + np.eye(n)
    return [x.astype(dtype) for x in (a, b, q, r)]


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 1), (4, 2), (6, 6)])
def test_solve_discrete_are(m: int, n: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(50 + m + n)
    values = riccati_problem(rng, m, n, floatX)
    ins = [input_like(v, name, symbolic) for v, name in zip(values, "abqr", strict=True)]
    tol = tolerance(floatX, 10.0, m)
    compare_onnx_and_py(ins, [ptla.solve_discrete_are(*ins)], values, rtol=tol, atol=tol)


def test_solve_discrete_are_batched_broadcasting(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(51)
    a, b, q, r = riccati_problem(rng, 3, 2, floatX, batch=(2, 1))
    values = [a, b[0, 0], q, np.broadcast_to(r[:1], (1, 4, 2, 2)).copy()]
    values[3] = values[3] + np.arange(4, dtype=floatX)[:, None, None]  # distinct R per column
    ins = [input_like(v, name, symbolic) for v, name in zip(values, "abqr", strict=True)]
    out = ptla.solve_discrete_are(*ins)
    assert out.type.ndim == 4
    # Against SciPy per problem: PyTensor 3.0's batched QZ fails to compile in Numba.
    stacks = [np.broadcast_to(v, (2, 4, *v.shape[-2:])).reshape(8, *v.shape[-2:]) for v in values]
    expected = np.array([scipy.linalg.solve_discrete_are(*p) for p in zip(*stacks, strict=True)])
    tol = tolerance(floatX, 10.0, 3)
    for (result,) in run_onnx(export_onnx(ins, [out]), dict(zip("abqr", values, strict=True))):
        # (PyTensor's graph types the solution float64 for float32 inputs too.)
        assert result.dtype == out.type.dtype and result.shape == (2, 4, 3, 3)
        np.testing.assert_allclose(result.reshape(8, 3, 3), expected, rtol=tol, atol=tol)


def test_solve_discrete_are_gradient(symbolic: bool) -> None:
    # PyTensor's gradient solves another DARE and a discrete Lyapunov equation.
    rng = np.random.default_rng(52)
    values = riccati_problem(rng, 3, 2, "float64")
    ins = [input_like(v, name, symbolic) for v, name in zip(values, "abqr", strict=True)]
    weights = rng.normal(size=(3, 3))
    cost = (ptla.solve_discrete_are(*ins) * weights).sum()
    outs = [cost, *pytensor.grad(cost, ins)]
    compare_onnx_and_py(ins, outs, values, rtol=1e-10, atol=1e-10)


def test_solve_discrete_are_slow_convergence() -> None:
    # A closed loop with spectral radius 1 - 1e-4 (an uncontrollable, barely stable mode):
    # the doubling needs about twenty steps; X[0, 0] = 1 / (1 - 0.9999**2), about 5000.
    values = [np.diag([0.9999, 0.5]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1)]
    ins = [input_like(v, name) for v, name in zip(values, "abqr", strict=True)]
    expected = scipy.linalg.solve_discrete_are(*values)
    for (result,) in run_onnx(
        export_onnx(ins, [ptla.solve_discrete_are(*ins)]), dict(zip("abqr", values, strict=True))
    ):
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12 * 5000)


@pytest.mark.parametrize("case", ["unstabilizable", "nan"])
def test_solve_discrete_are_without_solution_gives_nan(case: str, symbolic: bool) -> None:
    # An unstable mode that B cannot reach has no stabilizing solution: the doubling diverges
    # (SciPy raises LinAlgError); an input NaN propagates.
    values = [np.diag([2.0, 0.5]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1)]
    if case == "nan":
        values[0] = np.diag([0.3, 0.5])
        values[2] = np.array([[1.0, np.nan], [np.nan, 1.0]])
    ins = [input_like(v, name, symbolic) for v, name in zip(values, "abqr", strict=True)]
    model = export_onnx(ins, [ptla.solve_discrete_are(*ins)])
    for (result,) in run_onnx(model, dict(zip("abqr", values, strict=True))):
        assert np.isnan(result).all()


def test_solve_discrete_are_empty(symbolic: bool) -> None:
    values = [np.zeros((0, 0)), np.zeros((0, 2)), np.zeros((0, 0)), np.eye(2)]
    ins = [input_like(v, name, symbolic) for v, name in zip(values, "abqr", strict=True)]
    model = export_onnx(ins, [ptla.solve_discrete_are(*ins)])
    feeds = dict(zip("abqr", values, strict=True))
    # onnx.reference cannot run a Loop of zero iterations with scan outputs (the LU's).
    results = run_onnx(model, feeds) if not symbolic else (ort_session(model).run(None, feeds),)
    for (result,) in results:
        assert result.shape == (0, 0)


def test_linear_control_solvers_in_float32_models() -> None:
    # float32=True re-makes the solvers' symbolic ops in float32 (inlined, their graphs would
    # bring Schur and QZ back): no float64 tensor, float32 accuracy.
    rng = np.random.default_rng(53)
    a, b, q, r = riccati_problem(rng, 3, 2, "float64")
    ins = [pt.matrix(name, dtype="float64") for name in "abqr"]
    outs = [
        ptla.solve_discrete_are(*ins),
        ptla.solve_discrete_lyapunov(0.5 * ins[0], ins[2]),
        ptla.solve_sylvester(ins[0] + 2 * pt.eye(3), ins[3] + 2 * pt.eye(2), ins[1]),
    ]
    cost = sum(out.sum() for out in outs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = export_onnx(ins, [*outs, pytensor.grad(cost, ins[0])], float32=True)
    assert not [w for w in caught if "float32 conversion" in str(w.message)]
    assert not float64_tensors(model)
    values = [v.astype(np.float32) for v in (a, b, q, r)]
    got = ort_session(model).run(None, dict(zip("abqr", values, strict=True)))
    exact = [v.astype(np.float64) for v in values]
    want = [
        scipy.linalg.solve_discrete_are(*exact),
        scipy.linalg.solve_discrete_lyapunov(0.5 * exact[0], exact[2]),
        scipy.linalg.solve_sylvester(exact[0] + 2 * np.eye(3), exact[3] + 2 * np.eye(2), exact[1]),
    ]
    for result, expected in zip(got[:3], want, strict=True):
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert got[3].dtype == np.float32 and np.all(np.isfinite(got[3]))


@pytest.mark.parametrize("n", [0, 1, 5, 40, 70])
def test_blocked_algorithms_of_unknown_size_are_scans(n: int, floatX: str) -> None:
    # Factorizations and solves of unknown size loop over blocks in ONNX Scans (no Loop),
    # so that tract runs them; an empty matrix is factored as one identity block and cut.
    rng = np.random.default_rng(60 + n)
    m = rng.normal(size=(n, n))
    a_value = (m @ m.T + n * np.eye(n) + np.eye(n)).astype(floatX)
    b_value = rng.normal(size=(n, 3)).astype(floatX)
    a, b = pt.matrix("a", dtype=floatX), pt.matrix("b", dtype=floatX)
    outs = [
        ptla.cholesky(a),
        ptla.solve_triangular(a, b, lower=True),
        ptla.solve_triangular(a, b, lower=False),
        ptla.solve(a, b),
        ptla.det(a),
        ptla.inv(a),
        pt.cumprod(pt.tanh(a), axis=0),
    ]
    tol = 1e-10 if floatX == "float64" else 2e-3
    model = compare_onnx_and_py([a, b], outs, [a_value, b_value], rtol=tol, atol=tol)
    ops = [node.op_type for node in all_nodes(model)]
    assert "Scan" in ops and "Loop" not in ops
    # The two inputs share their size (Cholesky's signature), named once.
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim] == [
        "a_dim0",
        "a_dim0",
    ]
    # In tract: float64 graphs only (the loops pass sizes into their bodies as float64,
    # which float32 models do not hold); one size, as tract optimizes these models slowly
    # (it aborts on 0x0 matrices).
    if floatX == "float64" and n == 40 and runtimes.is_available("tract"):
        expected = pytensor.function([a, b], outs)(a_value, b_value)
        # The default export: under tests/test_mode_onnx_suite.py `model` is the mode's.
        exported = export_onnx([a, b], outs)
        got = runtimes.run("tract", exported, {"a": a_value, "b": b_value}, timeout=600)
        for result, want in zip(got, expected, strict=True):
            np.testing.assert_allclose(result, want, rtol=tol, atol=tol)
