"""The runtime matrix corpus: one small model per dispatch area, exported with default options.

Each :class:`Case` builds symbolic inputs and outputs and the values to feed.  The expected
outputs come from PyTensor (``expected="pytensor"``), except for models with random draws,
whose stream is this package's own: their runtimes are compared with ONNX Runtime in Python
(``expected="onnxruntime"``), which the random-variable tests compare with SciPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.ifelse import ifelse
from pytensor.scan.utils import until
from pytensor.tensor import slinalg

Built = tuple[list[Any], list[Any], list[np.ndarray]]


@dataclass(frozen=True)
class Case:
    """One model of the matrix."""

    name: str
    area: str
    build: Callable[[], Built]
    export_options: dict[str, Any] = field(default_factory=dict)
    expected: str = "pytensor"
    needs: str | None = None  # an optional Python package the case needs


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _mlp(dtype: str) -> Callable[[], Built]:
    def build() -> Built:
        rng = _rng(1)
        x = pt.matrix("x", dtype=dtype, shape=(None, 8))
        w1 = rng.normal(size=(8, 16)).astype(dtype) / 3
        w2 = rng.normal(size=(16, 4)).astype(dtype) / 4
        hidden = pt.maximum(x @ w1 + rng.normal(size=16).astype(dtype), 0)
        probs = pt.special.softmax(hidden @ w2, axis=-1)
        return [x], [probs], [rng.normal(size=(5, 8)).astype(dtype)]

    return build


def _elementwise(dtype: str) -> Callable[[], Built]:
    def build() -> Built:
        x = pt.vector("x", dtype=dtype)
        y = pt.vector("y", dtype=dtype)
        outs = [
            pt.exp(x) - pt.log1p(pt.abs(y)),
            pt.expm1(x) * pt.sqrt(pt.abs(y)),
            pt.round(x * 3),  # half to even
            pt.floor(x) + pt.ceil(y) + pt.sign(x),
            pt.clip(x, -0.5, 0.5) * pt.maximum(x, y),
            pt.switch(pt.isnan(y) | pt.isinf(x), 0.0, x / y),
            pt.tanh(x) + pt.arctan2(x, y) + pt.cos(y),
            x**2 + pt.sigmoid(y),
        ]
        values = [
            np.array([-2.5, -0.5, 0.5, 1.5, np.inf, 0.3, -1e-3], dtype=dtype),
            np.array([1.0, -2.0, np.nan, 0.25, 3.0, -7.5, 2.0], dtype=dtype),
        ]
        return [x, y], outs, values

    return build


def _special(dtype: str) -> Callable[[], Built]:
    def build() -> Built:
        x = pt.vector("x", dtype=dtype)
        outs = [
            pt.gammaln(x),
            pt.psi(x),
            pt.erf(x - 2) + pt.erfc(x),
            pt.softplus(x - 3),
            pt.special.log_softmax(x),
            pt.log1mexp(-x),
            pt.special.betaln(x, x + 1),
        ]
        return [x], outs, [np.array([0.1, 0.5, 1.0, 2.5, 7.0, 30.0], dtype=dtype)]

    return build


def _special_series() -> Built:
    # Special functions computed by series and continued fractions in ONNX Loops, with
    # constant orders and shapes as PyMC writes them (HSGP spectral densities, censored
    # models), on a static size (an HSGP's basis) and an unknown one.  Not betainc on the
    # static size: OpenVINO 2026.4 does not finish compiling that (docs/deployment.md).
    x = pt.vector("x", shape=(5,))
    y = pt.vector("y")
    outs = [
        pt.kve(0.3, x),
        pt.kv(2.5, x),
        pt.gammainc(2.5, x),
        pt.gammaincc(x, 3.0),
        pt.betainc(2.0, 3.0, y),
    ]
    values = [np.array([0.5, 1.5, 3.0, 7.0, 25.0]), np.array([0.02, 0.3, 0.9])]
    return [x, y], outs, values


def _empty() -> Built:
    # Empty tensors through the reductions the converters emit themselves (the special
    # functions' recurrences; PyTensor 2.38's own softmax fails on them).
    x = pt.vector("x")
    m = pt.matrix("m")
    outs = [
        pt.gammaln(x),
        pt.psi(x),
        pt.tri_gamma(x),
        pt.logsumexp(m, axis=1),
        m.sum(axis=0),
    ]
    return [x, m], outs, [np.zeros(0), np.zeros((0, 3))]


def _empty_batch() -> Built:
    # A batch of no matrices through the pivoted LU of unknown size (blocked, a Scan).
    a = pt.tensor3("a")
    sign, logdet = pt.linalg.slogdet(a)
    return [a], [pt.linalg.det(a), sign, logdet], [np.zeros((0, 3, 3))]


def _empty_batch_spectral() -> Built:
    # A batch of no matrices through the Jacobi eigen- and singular-value iterations and the
    # pivoted QR (loops of unknown length).  PyTensor 2.38 cannot compute these on an empty
    # batch: the case is compared with ONNX Runtime in Python, which
    # tests/dispatch/test_nlinalg.py::test_empty_batches checks against PyTensor.
    a = pt.tensor3("a")
    outs = [
        *pt.vectorize(pt.linalg.eigh, signature="(m,m)->(m),(m,m)")(a + a.mT),
        *pt.linalg.svd(a),
        pt.linalg.pinv(a),
        pt.linalg.norm(a, 2, axis=(-2, -1)),
        *pt.linalg.qr(a, pivoting=True),
    ]
    return [a], outs, [np.zeros((0, 3, 3))]


def _reductions() -> Built:
    x = pt.tensor3("x")
    outs = [
        x.sum(axis=(0, 2)),
        x.prod(axis=1),
        x.max(axis=-1),
        pt.argmax(x, axis=1),
        x.mean(axis=0),
        x.var(axis=2),
        pt.logsumexp(x, axis=1),
        pt.cumsum(x, axis=1),
        pt.cumprod(x, axis=-1),
    ]
    return [x], outs, [_rng(2).normal(size=(2, 3, 4))]


def _integers() -> Built:
    a = pt.lvector("a")
    b = pt.lvector("b")
    outs = [a // b, a % b, a * b - 3, a**2, pt.abs(a), pt.minimum(a, b), pt.cumsum(a)]
    values = [np.array([7, -7, 12, 5], dtype="int64"), np.array([2, 3, -5, 1], dtype="int64")]
    return [a, b], outs, values


def _booleans() -> Built:
    x = pt.vector("x")
    y = pt.vector("y")
    outs = [
        (x > y) & (x >= 0),
        (x <= y) | pt.eq(x, 0),
        pt.xor(x < 0, y < 0),
        pt.any(x > 1),
        pt.all(y < 5),
        pt.invert(x >= y),
    ]
    values = [np.array([0.0, 1.5, -2.0, 3.0]), np.array([0.0, 2.0, -3.0, 4.0])]
    return [x, y], outs, values


def _indexing() -> Built:
    x = pt.matrix("x")
    idx = pt.lvector("idx")
    # Vectors: GatherElements from one of known length, Gather from one of unknown length,
    # and ScatterElements for the increments of both.
    v = pt.vector("v", shape=(8,))
    w = pt.vector("w")
    outs = [
        x[1:-1:2],
        x[idx],
        x[:, -1],
        x[idx, idx],
        pt.set_subtensor(x[0, 1:], 0.0),
        pt.inc_subtensor(x[idx], 1.0),
        v[idx],
        w[idx],
        pt.inc_subtensor(v[idx], 1.0),
        pt.inc_subtensor(w[idx], w[idx]),
    ]
    rng = _rng(3)
    values = [rng.normal(size=(6, 3)), np.array([0, -1, 2, 2], dtype="int64")]
    return [x, idx, v, w], outs, [*values, rng.normal(size=8), rng.normal(size=5)]


def _shapes() -> Built:
    x = pt.matrix("x")
    y = pt.matrix("y")
    outs = [
        x.reshape((-1,)),
        x.T,
        pt.concatenate([x, y], axis=0),
        pt.stack([x, y], axis=-1),
        pt.repeat(x, 2, axis=1),
        pt.tile(x, (2, 1)),
        x.dimshuffle("x", 1, 0),
        pt.zeros_like(x) + x.shape[0],
    ]
    return [x, y], outs, [_rng(4).normal(size=(2, 3)), _rng(5).normal(size=(2, 3))]


def _sorting() -> Built:
    x = pt.vector("x")
    m = pt.matrix("m")  # sorted along its rows, of which there are none
    outs = [pt.sort(x), pt.argsort(x), pt.sort(x)[::-1][:3], pt.sort(m, axis=1), pt.argsort(m)]
    return [x, m], outs, [np.array([3.0, -1.0, 2.5, 0.0, 7.0, -4.0]), np.zeros((0, 3))]


def _matmul() -> Built:
    a = pt.tensor3("a")
    b = pt.tensor3("b")
    outs = [a @ b, pt.dot(a[0], b[0]), pt.outer(a[0, 0], b[0, :, 0])]
    rng = _rng(6)
    return [a, b], outs, [rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 5))]


def _scan(length: int | None) -> Callable[[], Built]:
    def build() -> Built:
        x0 = pt.scalar("x0")
        phi = pt.scalar("phi")
        eps = pt.tensor("eps", shape=(length,))
        xs, _ = pytensor.scan(
            lambda e, prev, p: p * prev + e,
            sequences=[eps],
            outputs_info=[x0],
            non_sequences=[phi],
        )
        return [x0, phi, eps], [xs], [np.array(0.5), np.array(0.9), _rng(7).normal(size=20)]

    return build


def _scan_rnn() -> Built:
    w, h0, xs = pt.matrix("w"), pt.vector("h0"), pt.matrix("xs")
    hs, _ = pytensor.scan(
        lambda x, h, w: pt.tanh(w @ h + x),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[w],
    )
    rng = _rng(11)
    values = [rng.normal(size=(6, 6)) / 3, rng.normal(size=6), rng.normal(size=(9, 6))]
    return [w, h0, xs], [hs], values


def _scan_rnn_weights() -> Built:
    rng = _rng(12)
    w = pytensor.shared(rng.normal(size=(6, 6)) / 3, name="w")
    h0, xs = pt.vector("h0"), pt.matrix("xs")
    hs, _ = pytensor.scan(
        lambda x, h, w: pt.tanh(w @ h + x),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[w],
    )
    return [h0, xs], [hs], [rng.normal(size=6), rng.normal(size=(9, 6))]


def _scan_until() -> Built:
    x = pt.scalar("x")
    values, _ = pytensor.scan(
        lambda v: (v * 2, until(v * 2 > 100)),
        outputs_info=[x],
        n_steps=50,
    )
    return [x], [values[-1], values.shape[0]], [np.array(1.5)]


def _ifelse() -> Built:
    x = pt.vector("x")
    flag = pt.scalar("flag")
    out = ifelse(flag > 0, x * 2, pt.exp(x))
    return [x, flag], [out], [np.array([0.5, -1.0, 2.0]), np.array(1.0)]


def _op_from_graph() -> Built:
    a = pt.vector("a")
    b = pt.vector("b")
    inner = OpFromGraph([a, b], [a * b + pt.exp(a)])
    x = pt.vector("x")
    y = pt.vector("y")
    return [x, y], [inner(x, y) + inner(y, x)], [np.array([0.5, 1.0]), np.array([2.0, -1.0])]


def _cholesky_solve() -> Built:
    a = pt.matrix("a")
    b = pt.matrix("b")
    chol = slinalg.cholesky(a)
    outs = [chol, slinalg.solve_triangular(chol, b, lower=True), slinalg.solve(a, b)]
    rng = _rng(8)
    m = rng.normal(size=(5, 5))
    return [a, b], outs, [m @ m.T + 5 * np.eye(5), rng.normal(size=(5, 2))]


def _det_inv() -> Built:
    a = pt.matrix("a")
    sign, logdet = pt.linalg.slogdet(a)
    outs = [pt.linalg.det(a), pt.linalg.inv(a), sign, logdet]
    rng = _rng(9)
    return [a], outs, [rng.normal(size=(4, 4)) + 3 * np.eye(4)]


def _random() -> Built:
    rng = pytensor.shared(np.random.default_rng(0), name="rng")
    mu = pt.vector("mu")
    draws = pt.random.normal(mu, 1.0, rng=rng)
    counts = pt.random.poisson(pt.exp(mu), rng=rng)
    return [mu], [draws, counts], [np.array([0.0, 1.0, -2.0, 3.0])]


def _eight_schools() -> Built:
    import pymc as pm

    y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
    sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
    with pm.Model() as model:
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        theta = pm.Normal("theta", mu, tau, shape=8)
        pm.Normal("obs", theta, sigma, observed=y)
    value_vars = model.value_vars
    logp = model.logp()
    grads = pytensor.grad(logp, value_vars)
    point = model.initial_point()
    values = [np.asarray(point[v.name], dtype=v.dtype) + 0.3 for v in value_vars]
    return value_vars, [logp, *grads], values


CASES: tuple[Case, ...] = (
    Case("mlp_float64", "elemwise, math (MLP)", _mlp("float64")),
    Case("mlp_float32", "elemwise, math (MLP)", _mlp("float32")),
    Case("mlp_float32_conversion", "float32=True", _mlp("float64"), {"float32": True}),
    Case("mlp_newest_opset", "newest opset", _mlp("float64"), {"opset": "newest"}),
    Case("elementwise_float64", "scalar, elemwise", _elementwise("float64")),
    Case("elementwise_float32", "scalar, elemwise", _elementwise("float32")),
    Case("special_float64", "special functions", _special("float64")),
    Case("special_float32", "special functions", _special("float32")),
    Case("special_float32_conversion", "float32=True", _special("float64"), {"float32": True}),
    Case("special_series", "special functions (series loops)", _special_series),
    Case("reductions", "math, extra_ops", _reductions),
    Case("empty", "empty tensors", _empty),
    Case("empty_batch", "nlinalg, empty batch", _empty_batch),
    Case(
        "empty_batch_spectral",
        "nlinalg, empty batch (Jacobi, QR)",
        _empty_batch_spectral,
        expected="onnxruntime",
    ),
    Case("integers", "scalar, extra_ops (int64)", _integers),
    Case("booleans", "scalar, math (bool)", _booleans),
    Case("indexing", "subtensor", _indexing),
    Case("shapes", "shape, basic", _shapes),
    Case("sorting", "sort", _sorting),
    Case("matmul", "math, blockwise", _matmul),
    Case("scan_ar1", "scan, unknown length (guarded Scan)", _scan(None)),
    Case("scan_ar1_fixed_length", "scan, known length (Scan)", _scan(20)),
    Case("scan_rnn", "scan, recurrence of unknown sizes (Scan)", _scan_rnn),
    Case("scan_rnn_weights", "scan, weights in the body (Scan)", _scan_rnn_weights),
    Case("scan_until", "scan with until (Loop)", _scan_until),
    Case("ifelse", "ifelse (If)", _ifelse),
    Case("op_from_graph", "builders (inlined)", _op_from_graph),
    Case("cholesky_solve", "slinalg", _cholesky_solve),
    Case("det_inv", "nlinalg", _det_inv),
    Case("random", "random (Threefry)", _random, expected="onnxruntime"),
    Case("eight_schools_logp_grad", "PyMC logp + gradient", _eight_schools, needs="pymc"),
)

_TRACT_LOOP = (
    r"Unimplemented\(Loop\)",
    "tract has no ONNX `Loop`; scans with `until`, the special functions' series and "
    "continued fractions, the Jacobi eigen- and singular-value sweeps and the random "
    "generator's rejection loops need it (scans without `until`, the blocked factorizations "
    "and solves and cumulative products are ONNX `Scan`s, which tract runs)",
)
_TRACT_ROUND = (
    r"RoundHalfToEven does not support F64",
    "tract has no float64 `Round` kernel; the model's own `round` (half to even) is exported "
    "as `Round`, since an exact replacement measured 40x slower in ONNX Runtime",
)

_NEWER_THAN_RUNTIME = (
    r"Unsupported model IR version: \d+, max supported IR version: \d+",
    "the newest opset needs an IR version newer than the npm packages of ONNX Runtime read; "
    "the default export (opset 18, IR version 8) loads",
)

#: onnx.reference's GatherND (the pivot bookkeeping of LU and pivoted QR) on an empty batch.
_REFERENCE_GATHER_ND = (
    r"cannot reshape array of size 0",
    "`onnx.reference`'s `GatherND` with batch dimensions reshapes its indices with a -1, "
    "which NumPy cannot resolve for an empty batch",
)

#: Pairs that fail for a limit of the runtime, with the pattern of the runtime's message and
#: the explanation docs/runtimes.md gives.  The matrix test fails when a pair outside this
#: table fails, and when a pair in it passes (so the table never goes stale).
KNOWN_LIMITS: dict[tuple[str, str], tuple[str, str]] = {
    ("special_series", "tract"): _TRACT_LOOP,
    ("scan_until", "tract"): _TRACT_LOOP,
    ("random", "tract"): _TRACT_LOOP,
    ("empty_batch", "onnx.reference"): _REFERENCE_GATHER_ND,
    ("empty_batch_spectral", "tract"): _TRACT_LOOP,
    ("empty_batch_spectral", "onnx.reference"): _REFERENCE_GATHER_ND,
    ("elementwise_float64", "tract"): _TRACT_ROUND,
    ("elementwise_float32", "tract"): (
        r"output 4: max relative error nan",
        "tract's `Max` does not propagate NaN (`maximum(x, nan)` gives `x`)",
    ),
    ("elementwise_float64", "openvino"): (
        r"output 0: max relative error nan",
        "OpenVINO's `Exp` returns the largest float32 (3.4e38) for `exp(inf)`, not inf",
    ),
    ("elementwise_float32", "openvino"): (
        r"output 7: max relative error nan",
        "OpenVINO gives 0 for the exported `sigmoid(nan)` (NaN is not propagated)",
    ),
    ("mlp_newest_opset", "onnxruntime-node"): _NEWER_THAN_RUNTIME,
    ("mlp_newest_opset", "onnxruntime-web"): _NEWER_THAN_RUNTIME,
}
