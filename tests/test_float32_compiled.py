"""``float32=True`` exports of functions compiled in PyTensor's default mode.

Default-mode graphs hold what the user's mode made of them (``Composite`` fusions, fused
reductions, ``FusedElemwise`` on PyTensor 3, BLAS and inplace ops on PyTensor 2), unlike the
graphs of ``tests/test_precision.py``.  Every export must convert without a warning, contain no
float64 tensor (:func:`~pytensor_onnx.precision.float64_tensors`), and match PyTensor's float64
results within float32 tolerance in ONNX Runtime and ``onnx.reference``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special as sp
from pytensor.compile import Function
from pytensor.ifelse import ifelse

from pytensor_onnx import export_onnx, verify
from pytensor_onnx.dispatch._numerics import FEW_ELEMENTS
from pytensor_onnx.precision import float64_tensors
from tests.compare import run_onnx

#: Float32 results against PyTensor's float64 ones: a few float32 roundings of values of
#: order one, amplified by at most a few operations.
RTOL = 2e-5
ATOL = 1e-6

#: The start of the warning that names nodes left in float64 (none may be).
FLOAT32_WARNING = "float32 conversion"

RNG = np.random.default_rng(7)
MATRIX = RNG.normal(size=(4, 5))
POSITIVE = np.abs(MATRIX) + 0.1


def _export_float32(fn: Function) -> onnx.ModelProto:
    """``export_onnx(fn, float32=True)``, failing if the conversion leaves nodes in float64."""
    with warnings.catch_warnings():
        warnings.filterwarnings("error", FLOAT32_WARNING)
        return export_onnx(fn, float32=True)


def _check(
    fn: Function, values: list[np.ndarray], rtol: float = RTOL, atol: float = ATOL
) -> onnx.ModelProto:
    """Export ``fn`` in float32; check types and values against ``fn`` in float64."""
    model = _export_float32(fn)
    assert float64_tensors(model) == []
    # The float64 reference gets the float32 inputs too: only the computation is compared.
    values = [
        np.asarray(v).astype(np.float32) if np.asarray(v).dtype == np.float64 else v for v in values
    ]
    feeds = {i.name: v for i, v in zip(model.graph.input, values, strict=True)}
    expected = fn(
        *(np.asarray(v).astype(np.float64) if v.dtype == np.float32 else v for v in values)
    )
    expected = expected if isinstance(expected, list) else [expected]
    for results in run_onnx(model, feeds):
        for got, want in zip(results, expected, strict=True):
            want = np.asarray(want)
            if want.dtype == np.float64:
                assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return model


def _matrix_fn(build: Callable[[pt.TensorVariable], Any]) -> Function:
    x = pt.matrix("x")
    return pytensor.function([x], build(x))


#: ``name: (graph builder on a float64 matrix, input matrix)``; the compiled graphs contain
#: fused reductions (``CAReduce`` over ``Composite``, ``FusedElemwise``), the crash of issue 19.
FUSED: dict[str, tuple[Callable[[pt.TensorVariable], Any], np.ndarray]] = {
    "log1p_sum": (lambda x: pt.log1p(x**2).sum(axis=1), MATRIX),
    "gammaln_sum": (lambda x: pt.special.gammaln(pt.exp(x)).sum(axis=1), MATRIX),
    "tanh_mean": (lambda x: pt.tanh(x).mean(axis=0), MATRIX),
    "exp_max": (lambda x: pt.exp(x * 0.5 + 1).max(axis=0), MATRIX),
    "prod_all": (lambda x: (x * 0.25 + 1).prod(), MATRIX),
    "softmax": (lambda x: pt.special.softmax(x * 2.0, axis=-1), MATRIX),
    "log_softmax": (lambda x: pt.special.log_softmax(x, axis=0), MATRIX),
    "logsumexp": (lambda x: pt.logsumexp(x * 3.0, axis=1), MATRIX),
    "var": (lambda x: pt.var(x, axis=1) + pt.std(x), MATRIX),
}


@pytest.mark.parametrize("name", sorted(FUSED))
def test_fused_reductions(name: str) -> None:
    build, value = FUSED[name]
    _check(_matrix_fn(build), [value])


#: Special functions of float64 values; the float32 export computes them in float32.
SPECIAL: dict[str, tuple[Callable[[pt.TensorVariable], Any], np.ndarray]] = {
    "gammaln": (pt.gammaln, np.array([[-3.5, -0.5, 1e-3, 0.5, 1.0, 2.0, 7.5, 1e4]])),
    "gamma": (pt.gamma, np.array([[-3.5, -0.5, 1e-3, 0.5, 1.0, 2.0, 7.5, 30.0]])),
    "psi": (pt.psi, np.array([[-3.5, -0.5, 1e-3, 0.5, 1.4616, 2.0, 7.5, 1e4]])),
    # PyTensor 2's tri_gamma is 0 for negative arguments (SciPy's is not).
    "tri_gamma": (pt.tri_gamma, np.array([[1e-3, 0.5, 1.0, 2.0, 7.5, 33.3, 1e3, 1e4]])),
    "bessel_j": (
        lambda x: pt.j0(x * 3.0) + pt.j1(x * 5.0),
        np.array([[-30.0, -3, -0.1, 0, 0.1, 3, 8.5, 30]]),
    ),
    "betainc": (
        lambda x: pt.betainc(pt.exp(x), pt.exp(x[:, ::-1]), pt.sigmoid(x)),
        np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0]]),
    ),
    "erf": (pt.erf, np.array([[-5.0, -0.3, 0.0, 1e-8, 0.4, 1.0, 3.0, np.inf]])),
    "erfc": (pt.erfc, np.array([[-5.0, -0.3, 0.0, 0.4, 1.0, 3.0, 9.0, np.inf]])),
    "erfcx": (pt.erfcx, np.array([[-5.0, -0.3, 0.0, 0.4, 1.0, 3.0, 9.0, 1e5]])),
    "erfinv": (pt.erfinv, np.array([[-0.999, -0.3, 0.0, 0.4, 0.9, 0.99999, 1.0, -1.0]])),
    "erfcinv": (pt.erfcinv, np.array([[1e-30, 1e-5, 0.3, 1.0, 1.5, 1.999, 2.0, 0.0]])),
    "i0_i1": (lambda x: pt.i0(x) + pt.i1(x), np.array([[-30.0, -3, -0.1, 0, 0.1, 3, 8.5, 30]])),
    "gammainc": (
        lambda x: pt.gammainc(x[:, ::-1] + 1.0, x) + pt.gammaincc(pt.exp(x), x * 2),
        np.array([[0.01, 0.3, 1.0, 2.5, 7.0, 15.0, 40.0, 100.0]]),
    ),
    "arctan2": (
        lambda x: pt.arctan2(x, x[:, ::-1] - 1),
        np.array([[-5.0, -0.3, 0, 1, 2, 3, 9, 1e3]]),
    ),
    "softplus_log1mexp": (
        lambda x: pt.softplus(x) + pt.log1mexp(-pt.abs(x) - 1e-3) + pt.sigmoid(x),
        np.array([[-40.0, -5, -0.3, 0, 0.4, 3, 20, 40]]),
    ),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_functions(name: str) -> None:
    build, value = SPECIAL[name]
    # Each element in float32 to a few units in the last place (docs/deployment.md).
    _check(_matrix_fn(lambda x: build(x).sum(axis=0) * 1.0 + build(x)), [value], rtol=5e-6)


def test_indexing_and_increments() -> None:
    x = pt.matrix("x")
    idx = pt.lvector("idx")
    out = [
        x[idx, -1] * 2.0,
        pt.inc_subtensor(x[idx], pt.exp(x[0])).sum(axis=0),
        pt.set_subtensor(x[1:, -2], 0.5)[::-1],
        (x[x > 0] ** 2).sum(),
    ]
    _check(pytensor.function([x, idx], out), [MATRIX, np.array([0, -1, 2, 2])])


def test_doubling_scans_of_symbolic_length() -> None:
    # cumprod and searchsorted take ceil(log2(n + 1)) rounds, computed in float32 here:
    # lengths next to powers of two.
    x = pt.vector("x")
    fn = pytensor.function([x], [pt.cumprod(x * 0.1 + 1.0), pt.searchsorted(pt.sort(x), x)])
    model = _export_float32(fn)
    assert float64_tensors(model) == []
    for n in (1, 7, 8, 9, 16, 17):
        value = RNG.normal(size=n).astype(np.float32)
        for got_prod, got_index in run_onnx(model, {"x": value}):
            want_prod, want_index = fn(value.astype(np.float64))
            np.testing.assert_allclose(got_prod, want_prod, rtol=1e-5)
            np.testing.assert_array_equal(got_index, want_index)


def test_mlp_with_cross_entropy_loss_and_gradients() -> None:
    # The README's MLP plus a cross-entropy loss over integer targets (issue 19).
    x = pt.matrix("x", shape=(6, 5))
    t = pt.lvector("t")
    w1 = pytensor.shared(RNG.normal(size=(5, 8)), name="w1")
    b1 = pytensor.shared(np.zeros(8), name="b1")
    w2 = pytensor.shared(RNG.normal(size=(8, 3)), name="w2")
    y = pt.special.softmax(pt.tanh(x @ w1 + b1) @ w2, axis=-1)
    loss = -pt.mean(pt.log(y[pt.arange(t.shape[0]), t]))
    fn = pytensor.function([x, t], [y, loss, *pytensor.grad(loss, [w1, w2])])
    model = _check(fn, [RNG.normal(size=(6, 5)), np.array([0, 2, 1, 1, 0, 2])])
    assert {init.data_type for init in model.graph.initializer} <= {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.INT64,
    }


def test_scan_and_ifelse() -> None:
    x = pt.vector("x")
    c = pt.scalar("c")
    ys = pytensor.scan(
        lambda a, acc: acc * 0.9 + pt.erf(a),
        sequences=[x],
        outputs_info=[pt.zeros(())],
        return_updates=False,
    )
    branch = ifelse(pt.gt(c, 0), pt.gammaln(ys + 2.0), pt.exp(-ys))
    fn = pytensor.function([x, c], [ys, branch])
    value = np.linspace(-2.0, 2.0, 7)
    for sign in (1.0, -1.0):
        _check(fn, [value, np.array(sign)])


def test_cholesky_and_solve() -> None:
    a = pt.matrix("a")
    b = pt.matrix("b")
    spd = a @ a.T + 3.0 * pt.eye(a.shape[0])
    chol = pt.linalg.cholesky(spd)
    out = [chol, pt.linalg.solve(spd, b), pt.linalg.solve_triangular(chol, b, lower=True)]
    # Ill-conditioning amplifies float32 rounding: a condition number of about 10 here.
    _check(pytensor.function([a, b], out), [MATRIX, RNG.normal(size=(4, 2))], rtol=1e-4)


def test_linear_algebra_decompositions() -> None:
    # The spectral decompositions (Jacobi eigh/svd) and expm compute in float32 too.  A wide
    # matrix of symbolic shape: pinv must discard the extra Jacobi column, rounding noise
    # in float32 (pinv was off by 3e9 before).
    a = pt.matrix("a")
    spd = a @ a.T + 3.0 * pt.eye(a.shape[0])
    linalg = pt.linalg
    out = [
        linalg.eigh(spd)[0],
        pt.abs(linalg.eigh(spd)[1]),
        linalg.svd(a, compute_uv=False),
        linalg.pinv(a),
        linalg.pinv(a.T),
        linalg.expm(spd * 0.1),
        linalg.det(spd),
        linalg.inv(spd),
        pt.abs(linalg.qr(a)[1]),
    ]
    # Condition numbers of about 10: a few float32 roundings times that.
    _check(pytensor.function([a], out), [MATRIX], rtol=1e-5, atol=1e-5)


def test_verify_with_float32_on_a_compiled_function() -> None:
    fn = _matrix_fn(lambda x: pt.special.gammaln(pt.exp(x)).sum(axis=1))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", FLOAT32_WARNING)
        report = verify(fn, [MATRIX], float32=True)
    assert report.passed, str(report)


def _pymc_model(name: str) -> Any:
    pm = pytest.importorskip("pymc")
    with pm.Model() as model:
        if name == "special_functions":
            mu = pm.Normal("mu", 0, 1)
            sigma = pm.HalfNormal("sigma", 1)
            nu = pm.Gamma("nu", 2, 0.1)
            p = pm.Beta("p", 2, 3)
            pm.StudentT("y", nu=nu, mu=mu, sigma=sigma, observed=RNG.normal(size=20))
            pm.Binomial("k", n=10, p=p, observed=[3, 4, 7])
        else:  # Cholesky factor of a covariance: batched AllocDiag (Blockwise of an OpFromGraph)
            chol, _, _ = pm.LKJCholeskyCov(
                "c", n=3, eta=2.0, sd_dist=pm.Exponential.dist(1.0), compute_corr=True
            )
            pm.MvNormal("obs", mu=np.zeros(3), chol=chol, observed=RNG.normal(size=(10, 3)))
    return model


@pytest.mark.parametrize(
    "name", ["special_functions", pytest.param("lkj_mvnormal", marks=pytest.mark.slow)]
)
def test_pymc_logp_and_gradient(name: str) -> None:
    model = _pymc_model(name)  # skips without PyMC
    from pytensor_onnx.pymc import export_logp_dlogp

    with warnings.catch_warnings():
        warnings.filterwarnings("error", FLOAT32_WARNING)
        onnx_model = export_logp_dlogp(model, float32=True)
    assert float64_tensors(onnx_model) == []
    logp = model.logp()
    values = model.continuous_value_vars
    fn = pytensor.function(
        values, [logp, pt.concatenate([g.ravel() for g in pytensor.grad(logp, values)])]
    )
    point = model.initial_point()
    x = np.concatenate([np.ravel(point[v.name]) + 0.1 for v in values]).astype(np.float32)
    split = np.cumsum([np.size(point[v.name]) for v in values])[:-1]
    args = [
        part.reshape(np.shape(point[v.name])).astype(np.float64)
        for part, v in zip(np.split(x, split), values, strict=True)
    ]
    want_logp, want_grad = fn(*args)
    for logp_got, dlogp_got in run_onnx(onnx_model, {"x": x}):
        np.testing.assert_allclose(logp_got, want_logp, rtol=1e-5)
        np.testing.assert_allclose(dlogp_got, want_grad, rtol=1e-4, atol=1e-4)


def test_float64_tensors_finds_every_kind() -> None:
    # The checker itself: values, initializers, casts, constants, subgraphs and functions.
    helper = onnx.helper
    double, float_ = onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT
    then = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["inner"], to=double)],
        "then",
        [],
        [helper.make_tensor_value_info("inner", double, [2])],
    )
    nodes = [
        helper.make_node("Cast", ["x"], ["wide"], to=double),
        helper.make_node("Add", ["wide", "w"], ["sum"]),
        helper.make_node("Cast", ["sum"], ["narrow"], to=float_),
        helper.make_node("If", ["flag"], ["branch"], then_branch=then, else_branch=then),
        helper.make_node("Twice", ["x"], ["twice"], domain="local"),
    ]
    twice = helper.make_function(
        "local",
        "Twice",
        ["a"],
        ["b"],
        [
            helper.make_node("Cast", ["a"], ["a64"], to=double),
            helper.make_node("Add", ["a64", "a64"], ["b64"]),
            helper.make_node("Cast", ["b64"], ["b"], to=float_),
        ],
        [helper.make_opsetid("", 18)],
    )
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", float_, [2]),
            helper.make_tensor_value_info("flag", onnx.TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("narrow", float_, [2]),
            helper.make_tensor_value_info("branch", double, [2]),
            helper.make_tensor_value_info("twice", float_, [2]),
        ],
        [helper.make_tensor("w", double, [2], [1.0, 2.0])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)],
        functions=[twice],
    )
    found = "\n".join(float64_tensors(model))
    for expected in [
        "graph: output 'branch'",
        "graph: initializer 'w'",
        "graph: value 'wide'",
        "graph: value 'sum'",
        "graph: value 'a64",  # inside the inlined function (renamed by inlining)
        "graph/If.then_branch: output 'inner'",
        "makes float64 (to=DOUBLE)",
        "function local.Twice: Cast node",
    ]:
        assert expected in found, found
    v = pt.vector("v", dtype="float32")
    # A float32 graph exported as is computes erf in float64 and rounds once; float32=True
    # computes it in float32.
    assert any("Cast" in entry for entry in float64_tensors(export_onnx([v], [pt.erf(v)])))
    assert float64_tensors(export_onnx([v], [pt.erf(v)], float32=True)) == []


def test_float32_graph_with_a_fused_reduction_accumulating_in_float64() -> None:
    # PyTensor 2 fuses tanh into the float64-accumulated sum of a float32 mean: its
    # Composite takes a float64 accumulator and a float32 element (a converter bug before).
    x = pt.matrix("x", dtype="float32")
    fn = pytensor.function([x], [pt.tanh(x).mean(axis=0), pt.exp(x).sum(axis=1)])
    value = MATRIX.astype(np.float32)
    model = export_onnx(fn)
    for results in run_onnx(model, {"x": value}):
        for got, want in zip(results, fn(value), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6)


_EPS32 = float(np.finfo(np.float32).eps)
_LOG = np.logspace
_POS = np.concatenate([_LOG(-30, 1.5, 1500), np.linspace(0.01, 40, 3000), 1 + _LOG(-8, -3, 50)])
_NEG = -np.linspace(0.001, 30, 3000) + 1e-3 * np.sin(np.arange(3000))
_A = np.repeat(np.exp([-6.0, -3, -1, 0, 0.5, 1, 2, 4, 7]).astype(np.float32), 100)
_X = np.tile(np.logspace(-20, 3.5, 100), 9)

#: ``name: (function, SciPy reference, float64 grid, bound in float32 epsilons, relative)``:
#: the float32 paths' accuracy table of docs/deployment.md (measured maxima, with margin).
#: Relative bounds hold where the result is a normal float32; the absolute ones (scaled by
#: ``max(1, |f|)``) apply next to the zeros of gammaln and psi on the negative axis.
FLOAT32_ACCURACY: dict[str, tuple[Callable[..., Any], Callable[..., Any], np.ndarray, float, bool]]
FLOAT32_ACCURACY = {
    "erf": (pt.erf, sp.erf, np.concatenate([np.linspace(-6, 6, 3000), _LOG(-30, 0, 300)]), 4, True),
    "erfc": (pt.erfc, sp.erfc, np.linspace(-6, 10, 3000), 5, True),
    "erfcx": (
        pt.erfcx,
        sp.erfcx,
        np.concatenate([np.linspace(-9, 30, 3000), _LOG(1, 9, 200)]),
        6,
        True,
    ),
    "erfinv": (
        pt.erfinv,
        sp.erfinv,
        np.concatenate([np.linspace(-1, 1, 3001), 1 - _LOG(-7, -1, 200)]),
        3,
        True,
    ),
    "erfcinv": (
        pt.erfcinv,
        sp.erfcinv,
        np.concatenate([np.linspace(0, 2, 3001), _LOG(-37, 0, 300)]),
        3,
        True,
    ),
    "gammaln": (pt.gammaln, sp.gammaln, np.concatenate([_POS, _LOG(1.6, 30, 300)]), 8, True),
    "gammaln_negative": (pt.gammaln, sp.gammaln, _NEG, 10, False),
    "gamma": (
        pt.gamma,
        sp.gamma,
        np.concatenate([np.linspace(-30, -1e-3, 2000), np.linspace(1e-3, 35, 2000)]),
        5,
        True,
    ),
    "psi": (
        pt.psi,
        sp.psi,
        np.concatenate([_POS, 1.4616321 + np.linspace(-1e-4, 1e-4, 101)]),
        3,
        True,
    ),
    "psi_negative": (pt.psi, sp.psi, _NEG, 10, False),
    "tri_gamma": (pt.tri_gamma, lambda x: sp.polygamma(1, x), _POS[500:], 5, True),
    "i0": (pt.i0, sp.i0, np.linspace(-88, 88, 3000), 5, True),
    # Absolute (|J| <= 1): beyond 8 the zeros are not factored out.
    "j0": (pt.j0, sp.j0, np.linspace(-100, 100, 4001), 4, False),
    "j1": (pt.j1, sp.j1, np.linspace(-100, 100, 4001), 4, False),
    "i1": (pt.i1, sp.i1, np.linspace(-88, 88, 3000), 14, True),
    "arctan2": (
        lambda x: pt.arctan2(x, 1 - x),
        lambda x: np.arctan2(x, 1 - x),
        np.linspace(-1e3, 1e3, 3000),
        2,
        True,
    ),
}


def _run_in_chunks(model: onnx.ModelProto, value: np.ndarray, elements: int) -> list[np.ndarray]:
    """The outputs of ``run_onnx`` for a model of a static input length ``elements``, over
    ``value`` in chunks (the last one padded)."""
    padded = np.resize(value, -(-len(value) // elements) * elements)
    runs = [
        run_onnx(model, {"x": padded[i : i + elements]}) for i in range(0, len(value), elements)
    ]
    return [np.concatenate([run[k][0] for run in runs])[: len(value)] for k in range(2)]


@pytest.mark.parametrize("elements", [None, FEW_ELEMENTS], ids=["many", "few"])
@pytest.mark.parametrize("name", sorted(FLOAT32_ACCURACY))
def test_float32_accuracy_against_scipy(name: str, elements: int | None) -> None:
    fn, reference, grid, bound, relative = FLOAT32_ACCURACY[name]
    x = pt.tensor("x", dtype=pytensor.config.floatX, shape=(elements,))
    model = _export_float32(pytensor.function([x], fn(x)))
    value = grid.astype(np.float32)
    want = reference(value.astype(np.float64))
    if elements is None:
        outputs = [got for got, *_ in run_onnx(model, {"x": value})]
    else:
        outputs = _run_in_chunks(model, value, elements)
    for got in outputs:
        normal = (np.abs(want) > np.finfo(np.float32).tiny) & (
            np.abs(want) < np.finfo(np.float32).max
        )
        error = np.abs(got[normal] - want[normal])
        scale = np.abs(want[normal]) if relative else np.maximum(np.abs(want[normal]), 1.0)
        assert np.max(error / scale) < bound * _EPS32
        # Infinities, NaN and results beyond float32's range as SciPy has them.
        np.testing.assert_array_equal(
            got[~normal & ~np.isfinite(want)], want[~normal & ~np.isfinite(want)]
        )


def test_float32_betainc_accuracy_against_scipy() -> None:
    # The bounds of docs/deployment.md: few ulp where the result is at least 1/2; below,
    # the complement 1 - I_(1-x)(b, a) of a value near 1 and the far tails' exp(-E).
    a, b, x = pt.vectors("a", "b", "x")
    model = _export_float32(pytensor.function([a, b, x], pt.betainc(a, b, x)))
    shapes = np.exp(RNG.uniform(np.log(1e-2), np.log(1e3), (2, 10000))).astype(np.float32)
    point = RNG.uniform(size=10000).astype(np.float32)
    want = sp.betainc(*(v.astype(np.float64) for v in (shapes[0], shapes[1], point)))
    for (got,) in run_onnx(model, {"a": shapes[0], "b": shapes[1], "x": point}):
        error = np.abs(got - want) / np.where(want > 0, want, 1.0) / _EPS32
        assert np.max(error[want >= 0.5]) < 100
        assert np.max(error[(want >= 1e-6) & (want < 0.5)]) < 2500
        assert np.max(error[(want > np.finfo(np.float32).tiny) & (want < 1e-6)]) < 600
