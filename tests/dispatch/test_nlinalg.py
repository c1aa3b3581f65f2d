"""Inverse, determinants, products and norms (``pytensor.tensor.nlinalg``) against PyTensor.

``inv``/``det``/``slogdet`` run on the pivoted LU of :mod:`pytensor_onnx.dispatch.linalg`;
``kron``, ``trace``, norms, ``matrix_power``, ``einsum``, ``tensordot`` and ``outer`` are
rewritten by PyTensor into ``Dot``/``BatchedDot``/``Blockwise``/reductions before export.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytensor.tensor.linalg as ptla
import pytest

from pytensor_onnx import export_onnx
from pytensor_onnx.dispatch import UnsupportedOpError
from tests.compare import compare_onnx_and_py, input_like
from tests.dispatch.test_slinalg import CONDITIONS, FLOAT_CASES, SIZES, general_matrix, tolerance


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
def test_inverse(n: int, dtype: str, condition: str, symbolic: bool) -> None:
    rng = np.random.default_rng(20 + n)
    cond = CONDITIONS[condition]
    value = general_matrix(rng, (n, n), cond, dtype)
    a = input_like(value, "a", symbolic)
    out = ptla.inv(a)
    # Entries of the inverse grow like cond: compare relative to their scale.
    tol = tolerance(dtype, cond, n)
    scale = float(np.max(np.abs(np.linalg.inv(value.astype("float64")))))
    compare_onnx_and_py([a], [out], [value], rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
def test_det_and_slogdet(n: int, dtype: str, condition: str, symbolic: bool) -> None:
    rng = np.random.default_rng(30 + n)
    value = general_matrix(rng, (n, n), CONDITIONS[condition], dtype) * 1.5
    a = input_like(value, "a", symbolic)
    sign, logabsdet = ptla.slogdet(a)
    # Relative error of a determinant is about n * eps (a product of n pivots).
    tol = 2e-13 * n if dtype == "float64" else 1e-5 * n
    compare_onnx_and_py([a], [ptla.det(a), sign, logabsdet], [value], rtol=tol, atol=tol)


def test_det_signs_and_singular(symbolic: bool) -> None:
    values = np.array(
        [
            [[0.0, 1.0], [1.0, 0.0]],  # one row swap: det -1
            [[2.0, 0.0], [0.0, -3.0]],  # negative pivot
            [[1.0, 2.0], [2.0, 4.0]],  # singular: det 0, slogdet (0, -inf)
            [[0.0, 0.0], [0.0, 0.0]],
        ]
    )
    a = input_like(values, "a", symbolic)
    sign, logabsdet = ptla.slogdet(a)
    compare_onnx_and_py([a], [ptla.det(a), sign, logabsdet], [values])


def test_inverse_singular_gives_nan() -> None:
    # NumPy (and so PyTensor) raises LinAlgError here; ONNX cannot raise, it returns NaN.
    value = np.array([[1.0, 2.0], [2.0, 4.0]])
    a = input_like(value, "a")
    model = export_onnx([a], [ptla.inv(a)])
    from tests.compare import run_onnx

    for result in run_onnx(model, {"a": value}):
        assert np.isnan(result[0]).all()
    with pytest.raises(np.linalg.LinAlgError):
        pytensor.function([a], ptla.inv(a))(value)


def test_batched_inverse_and_det(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(40)
    value = general_matrix(rng, (2, 3, 6, 6), 10.0, floatX)
    a = input_like(value, "a", symbolic)
    tol = tolerance(floatX, 10.0, 6)
    compare_onnx_and_py(
        [a], [ptla.inv(a), ptla.det(a), *ptla.slogdet(a)], [value], rtol=tol, atol=tol
    )


GRADIENTS = {
    "inv": lambda a: pt.sum(ptla.inv(a) * np.arange(16.0).reshape(4, 4)),
    "det": lambda a: ptla.det(a),
    "slogdet": lambda a: ptla.slogdet(a)[1],
    "logdet_pos": lambda a: pt.log(ptla.det(a)),
}


@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_gradients(name: str, symbolic: bool) -> None:
    rng = np.random.default_rng(41)
    value = general_matrix(rng, (4, 4), 10.0, "float64") + 2 * np.eye(4)
    if name == "logdet_pos":
        value = value @ value.T
    a = input_like(value, "a", symbolic)
    cost = GRADIENTS[name](a)
    compare_onnx_and_py([a], [cost, pytensor.grad(cost, a)], [value], rtol=1e-11, atol=1e-11)


# ------------------------------------------------------- products and helpers
def test_batched_dot(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(42)
    x_value = rng.normal(size=(3, 4, 5)).astype(floatX)
    y_value = rng.normal(size=(3, 5, 2)).astype(floatX)
    x, y = input_like(x_value, "x", symbolic), input_like(y_value, "y", symbolic)
    product = pt.batched_dot(x, y) if hasattr(pt, "batched_dot") else pt.matmul(x, y)
    einsum = pt.einsum("bij,bjk->bik", x, y)
    compare_onnx_and_py([x, y], [product, einsum], [x_value, y_value], rtol=1e-5, atol=1e-5)


def test_matrix_power_outer_tensordot(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(43)
    a_value = (rng.normal(size=(4, 4)) / 2).astype(floatX)
    v_value = rng.normal(size=4).astype(floatX)
    t_value = rng.normal(size=(4, 3, 2)).astype(floatX)
    a, v, t = (
        input_like(x, name, symbolic)
        for x, name in [(a_value, "a"), (v_value, "v"), (t_value, "t")]
    )
    outs = [
        ptla.matrix_power(a, 3),
        ptla.matrix_power(a, 0),
        pt.outer(v, v),
        pt.tensordot(a, t, axes=[[1], [0]]),
        pt.einsum("ij,jk->ik", a, a),
    ]
    compare_onnx_and_py([a, v, t], outs, [a_value, v_value, t_value], rtol=1e-5, atol=1e-5)


def test_kron_trace_diag(floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(44)
    a_value = rng.normal(size=(3, 3)).astype(floatX)
    b_value = rng.normal(size=(2, 4)).astype(floatX)
    v_value = rng.normal(size=3).astype(floatX)
    a, b, v = (
        input_like(x, name, symbolic)
        for x, name in [(a_value, "a"), (b_value, "b"), (v_value, "v")]
    )
    trace = pt.trace(a) if hasattr(pt, "trace") else ptla.trace(a)
    outs = [ptla.kron(a, b), trace, pt.diag(v), pt.diag(a), pt.diagonal(a, 1)]
    compare_onnx_and_py([a, b, v], outs, [a_value, b_value, v_value], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ord_", [None, "fro", 1, -1, np.inf, -np.inf])
def test_matrix_norms(ord_: object, floatX: str, symbolic: bool) -> None:
    value = np.random.default_rng(45).normal(size=(4, 3)).astype(floatX)
    a = input_like(value, "a", symbolic)
    compare_onnx_and_py([a], [ptla.norm(a, ord_)], [value], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ord_", [None, 1, 2, 3, 0, np.inf, -np.inf])
def test_vector_norms(ord_: object, floatX: str, symbolic: bool) -> None:
    value = np.random.default_rng(46).normal(size=6).astype(floatX)
    v = input_like(value, "v", symbolic)
    compare_onnx_and_py([v], [ptla.norm(v, ord_)], [value], rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------- refused
REFUSED = {
    "eigh": (lambda a: ptla.eigh(a)[0], "Eigh"),
    "svd": (lambda a: ptla.svd(a, compute_uv=False), "SVD"),
    "norm_2": (lambda a: ptla.norm(a, 2), "SVD"),
    "pinv": (lambda a: ptla.pinv(a), "MatrixPinv"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_spectral_ops_are_refused_with_a_reason(name: str) -> None:
    build, op_name = REFUSED[name]
    a = pt.matrix("a", dtype="float64")
    with pytest.raises(UnsupportedOpError, match=f"{op_name}.*no ONNX construction"):
        export_onnx([a], [build(a)])
