"""Inverse, determinants, products and norms (``pytensor.tensor.nlinalg``) against PyTensor.

``inv``/``det``/``slogdet`` run on the pivoted LU of :mod:`pytensor_onnx.dispatch.linalg`;
``kron``, ``trace``, norms, ``matrix_power``, ``einsum``, ``tensordot`` and ``outer`` are
rewritten by PyTensor into ``Dot``/``BatchedDot``/``Blockwise``/reductions before export.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytensor.tensor.blockwise
import pytensor.tensor.linalg as ptla
import pytest

from pytensor_onnx import export_onnx
from pytensor_onnx.dispatch import UnsupportedOpError
from tests.compare import (
    REFERENCE_MODE,
    assert_matches,
    compare_onnx_and_py,
    input_like,
    ort_session,
    run_onnx,
)
from tests.dispatch.test_slinalg import (
    CONDITIONS,
    FLOAT_CASES,
    SIZES,
    general_matrix,
    orthogonal,
    spd_matrix,
    spectrum,
    tolerance,
)


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


@pytest.mark.parametrize("ord_", [None, "fro", 1, -1, np.inf, -np.inf])
def test_batched_matrix_norms(ord_: object, floatX: str, symbolic: bool) -> None:
    # Over the last two axes of a stack (PyTensor 3 writes the Frobenius norm with Real).
    value = np.random.default_rng(47).normal(size=(2, 4, 3)).astype(floatX)
    value[1, 0, 0] = np.inf
    a = input_like(value, "a", symbolic)
    compare_onnx_and_py([a], [ptla.norm(a, ord_, axis=(-2, -1))], [value], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ord_", [None, 1, 2, 3, 0, np.inf, -np.inf])
def test_vector_norms(ord_: object, floatX: str, symbolic: bool) -> None:
    value = np.random.default_rng(46).normal(size=6).astype(floatX)
    v = input_like(value, "v", symbolic)
    compare_onnx_and_py([v], [ptla.norm(v, ord_)], [value], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- symmetric eigen
LEGACY = pytensor.__version__.startswith("2.")


def canonical_columns(v: pt.TensorVariable, like: pt.TensorVariable | None = None):
    """``v`` with each column's sign fixed by the sign of its sum of cubes (computed from
    ``like``'s columns when given, so that pairs such as ``U``/``Vᵀ`` flip together).

    Eigen- and singular vectors are defined up to sign; this makes the comparison with
    LAPACK's choice meaningful.
    """
    source = v if like is None else like
    return v * pt.sign(pt.sum(source**3, axis=-2, keepdims=True))


def symmetric_matrix(
    rng: np.random.Generator, shape: tuple[int, ...], cond: float, dtype: str
) -> np.ndarray:
    """Random symmetric matrices with eigenvalues of both signs, magnitudes in [1/cond, 1]."""
    q = orthogonal(rng, shape)
    values = spectrum(shape[-1], cond) * np.where(np.arange(shape[-1]) % 2, -1.0, 1.0)
    a = (q * values) @ np.swapaxes(q, -1, -2)
    return ((a + np.swapaxes(a, -1, -2)) / 2).astype(dtype)


def eigenvector_tolerance(value: np.ndarray, dtype: str) -> float:
    """Eigenvectors move by about eps * ||a|| / gap (the smallest eigenvalue gap)."""
    w = np.linalg.eigvalsh(value.astype("float64"))
    gap = float(np.min(np.diff(w))) if w.shape[-1] > 1 else 1.0
    eps = 1e-7 if dtype == "float32" else 1e-15
    return 50 * eps * value.shape[-1] * max(float(np.abs(w).max()), 1e-300) / gap


def batched(build, *inputs: pt.TensorVariable, signature: str):
    """``build(*inputs)`` on stacks of matrices: PyTensor 3 functions batch by themselves,
    PyTensor 2 needs the core Op wrapped in a ``Blockwise``."""
    if not LEGACY:
        return build(*inputs)
    core = build(*(pt.matrix(dtype=x.dtype) for x in inputs))
    op = (core[0] if isinstance(core, list | tuple) else core).owner.op
    if isinstance(op, pytensor.tensor.blockwise.Blockwise):  # e.g. svd, pinv
        return build(*inputs)
    return pytensor.tensor.blockwise.Blockwise(op, signature=signature)(*inputs)


def eigh(a: pt.TensorVariable, lower: bool = True) -> list[pt.TensorVariable]:
    """``eigh`` with the triangle argument of the installed PyTensor."""
    if LEGACY:
        return ptla.eigh(a, "L" if lower else "U")
    return ptla.eigh(a, lower=lower)


def eigvalsh(
    a: pt.TensorVariable, b: pt.TensorVariable | None = None, lower: bool = True
) -> pt.TensorVariable:
    """``eigvalsh`` (PyTensor 2 takes ``NoneConst`` for a missing ``b``)."""
    if LEGACY:
        from pytensor.tensor.type_other import NoneConst

        return ptla.eigvalsh(a, NoneConst if b is None else b, lower)
    return ptla.eigvalsh(a, b, lower)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
@pytest.mark.parametrize("lower", [True, False], ids=["lower", "upper"])
def test_eigh(n: int, dtype: str, condition: str, lower: bool, symbolic: bool) -> None:
    rng = np.random.default_rng(50 + n)
    value = symmetric_matrix(rng, (n, n), CONDITIONS[condition], dtype)
    vector_tol = eigenvector_tolerance(value, dtype)
    # The triangle that is not read may hold anything (finite: SciPy checks).
    value[np.triu_indices(n, 1) if lower else np.tril_indices(n, -1)] = 1e3
    a = input_like(value, "a", symbolic)
    w, v = eigh(a, lower)
    value_tol = 1e-5 if dtype == "float32" else 5e-15 * n
    compare_onnx_and_py(
        [a], [w, eigvalsh(pt.where(pt.isnan(a), a.T, a))], [value], rtol=value_tol, atol=value_tol
    )
    compare_onnx_and_py([a], [canonical_columns(v)], [value], rtol=vector_tol, atol=vector_tol)


def assert_orthonormal_columns(v: np.ndarray, atol: float) -> None:
    """``vᵀ v == I`` for each matrix of ``v`` (checked in NumPy: PyTensor rewrites ``vᵀ v``
    of an ``eigh``/``svd`` output to the identity, so it cannot be a graph output)."""
    eye = np.eye(v.shape[-1])
    np.testing.assert_allclose(
        np.swapaxes(v, -1, -2) @ v,
        np.broadcast_to(eye, v.shape[:-2] + eye.shape),
        rtol=0,
        atol=atol,
    )


def test_eigh_batched_and_special_matrices(symbolic: bool) -> None:
    rng = np.random.default_rng(60)
    values = np.stack(
        [
            symmetric_matrix(rng, (5, 5), 10.0, "float64"),
            np.diag([3.0, -1.0, 2.0, 0.5, -4.0]),  # already diagonal: no rotation
            np.zeros((5, 5)),  # everything zero
            np.eye(5) * 2,  # one repeated eigenvalue
        ]
    )
    a = input_like(values, "a", symbolic)
    w, v = batched(eigh, a, signature="(m,m)->(m),(m,m)")
    # Repeated eigenvalues make the vectors arbitrary: compare what is unique (values,
    # reconstruction) and check orthogonality.
    rebuilt = (v * w[..., None, :]) @ pt.swapaxes(v, -1, -2)
    compare_onnx_and_py([a], [w, rebuilt], [values], rtol=1e-14, atol=1e-14)
    model = export_onnx([a], [v])
    for (vectors,) in run_onnx(model, {"a": values}):
        assert_orthonormal_columns(vectors, 5e-15)


def test_eigh_stays_orthogonal_for_clustered_eigenvalues(symbolic: bool) -> None:
    # Eigenvalues down to 1e-8 of the largest: the rotations of the tiny ones are computed
    # from entries at rounding level, where both members of a pair must agree exactly.
    value = symmetric_matrix(np.random.default_rng(64), (32, 32), 1e8, "float64")
    a = input_like(value, "a", symbolic)
    w, v = eigh(a)
    model = export_onnx([a], [w, v])
    for w_value, v_value in run_onnx(model, {"a": value}):
        assert_orthonormal_columns(v_value, 3e-14)
        np.testing.assert_allclose(value @ v_value, v_value * w_value, rtol=0, atol=3e-14)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
def test_spectral_decompositions_of_extreme_magnitudes(scale: float, symbolic: bool) -> None:
    # Norms and Gram products square the entries: without rescaling they overflow (or
    # underflow) and the iteration stops early with wrong results.
    value = symmetric_matrix(np.random.default_rng(65), (6, 6), 10.0, "float64") * scale
    a = input_like(value, "a", symbolic)
    u, s, vt = ptla.svd(a)
    outputs = [eigh(a)[0], s, (u * s) @ vt]
    compare_onnx_and_py([a], outputs, [value], rtol=1e-14, atol=1e-14 * scale)


def test_eigh_of_nan_is_nan() -> None:
    # LAPACK gives NaN (or NumPy raises); the Jacobi sweeps stop at once on NaN.
    value = np.array([[1.0, np.nan], [np.nan, 2.0]])
    a = input_like(value, "a")
    model = export_onnx([a], eigh(a))
    for results in run_onnx(model, {"a": value}):
        assert all(np.isnan(r).all() for r in results)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_generalized_eigenvalues(n: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(61 + n)
    a_value = symmetric_matrix(rng, (n, n), 10.0, floatX)
    b_value = spd_matrix(rng, (n, n), 10.0, floatX)
    a, b = input_like(a_value, "a", symbolic), input_like(b_value, "b", symbolic)
    tol = 1e-5 if floatX == "float32" else 1e-13
    outputs = [eigvalsh(a, b)]
    if not LEGACY:  # PyTensor 2's eigh has no generalized form
        w, v = ptla.eigh(a, b)
        outputs += [w, canonical_columns(v)]
    compare_onnx_and_py([a, b], outputs, [a_value, b_value], rtol=tol, atol=tol)


def test_batched_generalized_eigenvalues(symbolic: bool) -> None:
    rng = np.random.default_rng(62)
    a_value = symmetric_matrix(rng, (3, 6, 6), 10.0, "float64")
    b_value = spd_matrix(rng, (6, 6), 10.0, "float64")
    a, b = input_like(a_value, "a", symbolic), input_like(b_value, "b", symbolic)
    compare_onnx_and_py(
        [a, b],
        [batched(eigvalsh, a, b, signature="(m,m),(m,m)->(m)")],
        [a_value, b_value],
        rtol=1e-13,
        atol=1e-13,
    )


EIGEN_GRADIENTS = {
    "values": lambda a: pt.sum(eigh(a)[0] * np.arange(1.0, 6.0)),
    "vectors": lambda a: pt.sum(eigh(a)[1][:, :2] ** 2 * np.arange(10.0).reshape(5, 2)),
    "upper": lambda a: pt.sum(eigh(a, lower=False)[0] ** 3),
    "generalized": lambda a: pt.sum(eigvalsh(a, a @ a.T + 5 * pt.eye(5)) * np.arange(5.0)),
}


@pytest.mark.parametrize("name", sorted(EIGEN_GRADIENTS))
def test_eigen_gradients(name: str, symbolic: bool) -> None:
    value = symmetric_matrix(np.random.default_rng(63), (5, 5), 10.0, "float64")
    a = input_like(value, "a", symbolic)
    cost = EIGEN_GRADIENTS[name](a)
    compare_onnx_and_py([a], [cost, pytensor.grad(cost, a)], [value], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- singular values
SVD_SHAPES = [
    (1, 1),
    (2, 2),
    (5, 5),
    (7, 4),
    (4, 7),
    (32, 32),
    pytest.param((100, 100), marks=pytest.mark.slow),
]


def svd_outputs(a: pt.TensorVariable, full: bool) -> list[pt.TensorVariable]:
    """What of an SVD is unique: the values, sign-fixed leading vectors, and (``full``) the
    projectors onto the completed parts of the bases."""
    u, s, vt = ptla.svd(a, full_matrices=full)
    k = s.shape[-1]
    lead_u, lead_vt = u[..., :, :k], vt[..., :k, :]
    outputs = [
        s,
        canonical_columns(lead_u),
        pt.swapaxes(canonical_columns(pt.swapaxes(lead_vt, -1, -2), lead_u), -1, -2),
    ]
    if full:
        rest_u, rest_v = u[..., :, k:], pt.swapaxes(vt[..., k:, :], -1, -2)
        outputs += [rest_u @ pt.swapaxes(rest_u, -1, -2), rest_v @ pt.swapaxes(rest_v, -1, -2)]
    return outputs


@pytest.mark.parametrize("shape", SVD_SHAPES, ids=str)
@pytest.mark.parametrize(("dtype", "condition"), FLOAT_CASES)
@pytest.mark.parametrize("full", [True, False], ids=["full", "thin"])
def test_svd(
    shape: tuple[int, int], dtype: str, condition: str, full: bool, symbolic: bool
) -> None:
    rng = np.random.default_rng(70 + shape[0] * shape[1])
    m, n = shape
    cond = CONDITIONS[condition]
    k = min(m, n)
    value = (orthogonal(rng, (m, m))[:, :k] * spectrum(k, cond)) @ orthogonal(rng, (n, n))[:k]
    value = value.astype(dtype)
    s = np.linalg.svd(value.astype("float64"), compute_uv=False)
    gap = float(np.min(-np.diff(s))) if k > 1 else 1.0
    eps = 1e-7 if dtype == "float32" else 1e-15
    value_tol = 50 * eps * max(m, n)
    vector_tol = value_tol * s[0] / min(gap, s[-1])
    a = input_like(value, "a", symbolic)
    compare_onnx_and_py(
        [a], [ptla.svd(a, compute_uv=False)], [value], rtol=value_tol, atol=value_tol
    )
    compare_onnx_and_py([a], svd_outputs(a, full), [value], rtol=vector_tol, atol=vector_tol)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)], ids=str)
def test_svd_rank_deficient_and_zero(shape: tuple[int, int], symbolic: bool) -> None:
    rng = np.random.default_rng(71)
    m, n = shape
    values = np.stack([rng.normal(size=(m, 2)) @ rng.normal(size=(2, n)), np.zeros(shape)])
    a = input_like(values, "a", symbolic)
    u, s, vt = batched(ptla.svd, a, signature="(m,n)->(m,m),(k),(n,n)")
    k = min(m, n)
    rebuilt = (u[..., :, :k] * s[..., None, :]) @ vt[..., :k, :]
    compare_onnx_and_py([a], [s, rebuilt], [values], rtol=1e-14, atol=2e-14)
    # The bases stay orthogonal although the singular vectors of zero values are arbitrary.
    for u_value, vt_value in run_onnx(export_onnx([a], [u, vt]), {"a": values}):
        assert_orthonormal_columns(u_value, 1e-14)
        assert_orthonormal_columns(np.swapaxes(vt_value, -1, -2), 1e-14)


@pytest.mark.parametrize("ord_", [2, -2, "nuc"])
def test_spectral_norms(ord_: object, floatX: str, symbolic: bool) -> None:
    value = np.random.default_rng(72).normal(size=(2, 4, 6)).astype(floatX)
    a = input_like(value, "a", symbolic)
    tol = 1e-5 if floatX == "float32" else 1e-14
    compare_onnx_and_py([a], [ptla.norm(a, ord_, axis=(-2, -1))], [value], rtol=tol, atol=tol)


SVD_GRADIENTS = {
    "values": lambda a: pt.sum(ptla.svd(a, compute_uv=False) * np.arange(1.0, 4.0)),
    "vectors": lambda a: pt.sum(
        (lambda u, s, vt: (u * s) @ vt * np.arange(12.0).reshape(4, 3))(
            *ptla.svd(a, full_matrices=False)
        )
    ),
    "nuclear_norm": lambda a: ptla.norm(a, "nuc"),
}


@pytest.mark.parametrize("name", sorted(SVD_GRADIENTS))
def test_svd_gradients(name: str, symbolic: bool) -> None:
    value = np.random.default_rng(73).normal(size=(4, 3))
    a = input_like(value, "a", symbolic)
    cost = SVD_GRADIENTS[name](a)
    compare_onnx_and_py([a], [cost, pytensor.grad(cost, a)], [value], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "hermitian"),
    [
        ((1, 1), False),
        ((5, 5), False),
        ((7, 4), False),
        ((4, 7), False),
        ((1, 1), True),
        ((5, 5), True),
    ],
    ids=str,
)
def test_pinv(shape: tuple[int, int], hermitian: bool, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(74)
    value = rng.normal(size=shape).astype(floatX)
    if hermitian:
        # Not read: NumPy's hermitian path (eigh) reads the lower triangle.
        value[np.triu_indices(shape[0], 1)] = 99.0
    a = input_like(value, "a", symbolic)
    scale = float(np.abs(np.linalg.pinv(value.astype("float64"))).max())
    tol = (1e-4 if floatX == "float32" else 1e-13) * scale
    out = ptla.pinv(a, hermitian=hermitian)
    compare_onnx_and_py([a], [out], [value], rtol=tol, atol=tol)


def test_pinv_rank_deficient_batched(symbolic: bool) -> None:
    rng = np.random.default_rng(75)
    values = np.stack([rng.normal(size=(6, 2)) @ rng.normal(size=(2, 4)), np.zeros((6, 4))])
    a = input_like(values, "a", symbolic)
    compare_onnx_and_py([a], [ptla.pinv(a)], [values], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("shape", "rank", "rcond"),
    [
        ((6, 3), 3, -1.0),
        ((3, 6), 3, -1.0),
        ((5, 5), 5, 1e-15),
        ((6, 4), 2, 1e-10),
        ((6, 4), 4, 2.0),
    ],
    ids=["tall", "wide", "square", "rank_deficient", "rcond_out_of_range"],
)
def test_lstsq(shape: tuple[int, int], rank: int, rcond: float, floatX: str) -> None:
    rng = np.random.default_rng(76)
    m, n = shape
    a_value = (rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))).astype(floatX)
    b_value = rng.normal(size=(m, 2)).astype(floatX)
    a, b = pt.matrix("a", dtype=floatX), pt.matrix("b", dtype=floatX)
    r = pt.scalar("r", dtype="float64")
    outputs = ptla.lstsq(a, b, r)
    values = [a_value, b_value, np.array(rcond)]
    if floatX == "float64":
        compare_onnx_and_py([a, b, r], outputs, values, rtol=1e-12, atol=1e-12)
        return
    # Lstsq declares float64 outputs, but PyTensor's perform hands back NumPy's float32
    # arrays unconverted: compare the values with NumPy instead.
    model = export_onnx([a, b, r], outputs)
    expected = np.linalg.lstsq(a_value, b_value, rcond)
    for results in run_onnx(model, dict(zip("abr", values, strict=True))):
        assert [np.asarray(x).dtype for x in results] == [
            np.float64,
            np.float64,
            np.int32,
            np.float64,
        ]
        assert int(results[2]) == expected[2]
        for got, want in zip(
            [results[0], results[1], results[3]],
            [expected[0], expected[1], expected[3]],
            strict=True,
        ):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_general_eig_is_refused() -> None:
    a = pt.matrix("a", dtype="float64")
    for output in (pt.real(ptla.eig(a)[0]), ptla.eig(a)[0]):
        with pytest.raises(UnsupportedOpError, match=r"(?s)Eig\(a\).*complex"):
            export_onnx([a], [output])


EMPTY = {
    "cholesky": lambda a, b: [ptla.cholesky(a)],
    "solve": lambda a, b: [ptla.solve(a, b)],
    "inv_det": lambda a, b: [ptla.inv(a), ptla.det(a)],
    "qr": lambda a, b: list(ptla.qr(a)),
    "lu": lambda a, b: list(ptla.lu(a)),
    "eigh": lambda a, b: list(eigh(a)),
    "svd_pinv": lambda a, b: [*ptla.svd(a), ptla.pinv(a)],
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_matrices(name: str, symbolic: bool) -> None:
    a_value, b_value = np.zeros((0, 0)), np.zeros((0, 2))
    a, b = input_like(a_value, "a", symbolic), input_like(b_value, "b", symbolic)
    outputs = EMPTY[name](a, b)
    # onnx.reference cannot run a Loop of zero iterations with scan outputs (it stacks an
    # empty list); with symbolic sizes the loops are not unrolled, so only ORT runs those.
    compare_onnx_and_py([a, b], outputs, [a_value, b_value], reference=not symbolic)


EMPTY_BATCH = {
    **EMPTY,
    # PyTensor 2.38's eigh takes matrices only.
    "eigh": lambda a, b: list(pt.vectorize(eigh, signature="(m,m)->(m),(m,m)")(a)),
    "qr_pivoting": lambda a, b: list(ptla.qr(a, pivoting=True)),
    "slogdet": lambda a, b: list(ptla.slogdet(a)),
    "norms": lambda a, b: [ptla.norm(a, ord_, axis=(-2, -1)) for ord_ in (2, -2, "nuc", "fro")],
}


def _compiles_slogdet_of_stacks() -> bool:
    """Whether PyTensor itself compiles ``slogdet`` of a stack (2.38 and 3.0 fail: their
    ``slogdet_specialization`` rewrite builds a matrix-only ``SLogDet`` of it)."""
    a = pt.tensor3("a")
    try:
        pytensor.function([a], ptla.slogdet(a))
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize(
    ("name", "shape"),
    [(name, (0, 3, 3)) for name in sorted(EMPTY_BATCH)]
    # NumPy and PyTensor refuse the 2-norm of an empty matrix (a maximum of nothing).
    + [(name, (2, 0, 0)) for name in sorted(EMPTY_BATCH) if name != "norms"],
)
def test_empty_batches(name: str, shape: tuple[int, ...]) -> None:
    # Stacks of unknown size through the loops of the factorizations; the iterations'
    # reductions name non-negative axes (onnxruntime-node/-web return an empty input
    # unchanged from a reduction over a negative axis; tests/matrix runs them there).
    # PyTensor's Python Blockwise refuses empty batches: the expected stacks are built
    # from the results of one matrix.
    a, b = pt.tensor3("a"), pt.tensor3("b")
    if name == "slogdet" and not _compiles_slogdet_of_stacks():
        pytest.skip("this PyTensor's slogdet_specialization rewrite makes a matrix-only SLogDet")
    count, n = shape[0], shape[1]
    core_a, core_b = pt.matrix("a"), pt.matrix("b")
    # PyTensor's Python implementations (NumPy/SciPy): its Numba eigh of a 0 x 0 matrix
    # fails at random ("negative dimensions not allowed").
    core = pytensor.function(
        [core_a, core_b],
        EMPTY_BATCH[name](core_a, core_b),
        mode=REFERENCE_MODE,
        on_unused_input="ignore",
    )
    one = core(np.eye(n), np.ones((n, 2)))
    expected = [
        np.stack([np.asarray(o)] * count)
        if count
        else np.zeros((0, *np.shape(o)), np.asarray(o).dtype)
        for o in one
    ]
    model = export_onnx([a, b], EMPTY_BATCH[name](a, b))
    feeds = {"a": np.tile(np.eye(n), (count, 1, 1)), "b": np.ones((count, n, 2))}
    got = ort_session(model).run(None, feeds)
    for k, (value, want) in enumerate(zip(got, expected, strict=True)):
        assert_matches(value, want, 1e-12, 1e-14, f"output {k}")


# ------------------------------------------------------------- tensorinv / tensorsolve
def static_type_contradicts(var: pt.TensorVariable, actual: tuple[int, ...]) -> bool:
    """Whether ``var``'s static shape disagrees with the shape NumPy computes."""
    return any(d is not None and d != a for d, a in zip(var.type.shape, actual, strict=True))


@pytest.mark.parametrize(
    ("shape", "ind"),
    [((2, 3, 6), 2), ((6, 2, 3), 1), ((2, 2, 2, 2), 2), ((4, 4), 1), ((3, 2, 3, 2), 2)],
    ids=str,
)
def test_tensorinv(shape: tuple[int, ...], ind: int, floatX: str, symbolic: bool) -> None:
    rng = np.random.default_rng(sum(shape))
    size = int(np.prod(shape[ind:]))
    value = general_matrix(rng, (size, size), 10.0, floatX).reshape(shape)
    a = input_like(value, "a", symbolic)
    out = ptla.tensorinv(a, ind=ind)
    if static_type_contradicts(out, shape[ind:] + shape[:ind]):
        # PyTensor 2.38 gives the result the input's static shape.
        with pytest.raises(UnsupportedOpError, match="PyTensor types the result"):
            export_onnx([a], [out])
        return
    tol = tolerance(floatX, 10.0, size)
    compare_onnx_and_py([a], [out], [value], rtol=tol, atol=tol)


def test_tensorinv_singular_gives_nan(symbolic: bool) -> None:
    value = np.ones((2, 2, 2, 2))
    a = input_like(value, "a", symbolic)
    model = export_onnx([a], [ptla.tensorinv(a)])
    for (result,) in run_onnx(model, {"a": value}):
        assert result.shape == (2, 2, 2, 2) and np.isnan(result).all()


TENSORSOLVE_CASES = {
    # (a shape, b shape, axes)
    "vector_rhs": ((6, 2, 3), (6,), None),
    "matrix_rhs": ((2, 3, 3, 2), (2, 3), None),
    "axes": ((2, 3, 6), (6,), (0, 1)),
    "axes_reordered": ((3, 2, 6, 4), (2, 6), (3, 0)),
}


@pytest.mark.parametrize("case", TENSORSOLVE_CASES)
def test_tensorsolve(case: str, floatX: str, symbolic: bool) -> None:
    a_shape, b_shape, axes = TENSORSOLVE_CASES[case]
    rng = np.random.default_rng(len(case))
    size = int(np.prod(b_shape))
    matrix = general_matrix(rng, (size, size), 10.0, floatX)
    # Build a so that moving `axes` to the end gives the matrix reshaped.
    order = list(range(len(a_shape)))
    for axis in axes or ():
        order.remove(axis)
        order.append(axis)
    moved_shape = tuple(a_shape[i] for i in order)
    a_value = np.transpose(matrix.reshape(moved_shape), np.argsort(order))
    assert a_value.shape == a_shape
    b_value = rng.normal(size=b_shape).astype(floatX)
    a, b = input_like(a_value, "a", symbolic), input_like(b_value, "b", symbolic)
    tol = tolerance(floatX, 10.0, size)
    compare_onnx_and_py(
        [a, b], [ptla.tensorsolve(a, b, axes=axes)], [a_value, b_value], rtol=tol, atol=tol
    )


def test_tensorsolve_mixed_dtypes_and_singular() -> None:
    rng = np.random.default_rng(8)
    a_value = general_matrix(rng, (6, 6), 10.0, "float32").reshape(6, 2, 3)
    b_value = rng.normal(size=6)
    a, b = input_like(a_value, "a"), input_like(b_value, "b")
    out = ptla.tensorsolve(a, b)
    assert out.dtype == "float64"
    compare_onnx_and_py([a, b], [out], [a_value, b_value], rtol=1e-12, atol=1e-12)
    model = export_onnx([a, b], [out])
    singular_a = np.zeros((6, 2, 3), dtype="float32")
    for (result,) in run_onnx(model, {"a": singular_a, "b": b_value}):
        assert result.shape == (2, 3) and np.isnan(result).all()


def test_tensorsolve_non_matrix_solution_is_refused() -> None:
    # PyTensor types every tensorsolve result as a matrix; a 1-d or 3-d solution is refused.
    a, b = pt.tensor3("a"), pt.matrix("b")
    with pytest.raises(UnsupportedOpError, match="always types it as a matrix"):
        export_onnx([a, b], [ptla.tensorsolve(a, b)])


# ------------------------------------------------------------------------ Schur, QZ
def test_schur_and_qz_are_refused() -> None:
    a, b = pt.matrix("a", dtype="float64"), pt.matrix("b", dtype="float64")
    with pytest.raises(UnsupportedOpError, match=r"(?s)Schur.*QR algorithm"):
        export_onnx([a], list(ptla.schur(a)))
    with pytest.raises(UnsupportedOpError, match=r"(?s)QZ.*QZ iteration"):
        export_onnx([a, b], list(ptla.qz(a, b)))
