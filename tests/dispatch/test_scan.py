"""Scan -> ONNX Scan or Loop: recurrences, sequences, while-loops, gradients, nested scans.

Every model is exported once with a symbolic sequence length and run at two lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator
from pytensor.graph.basic import Variable
from pytensor.scan.op import Scan
from pytensor.scan.utils import until

import pytensor_onnx
from pytensor_onnx import UnsupportedOpError, export_onnx, runtimes
from tests.compare import OPSETS, REFERENCE_MODE, assert_matches, ort_session, run_onnx


def compare_at_lengths(
    inputs: Sequence[Variable],
    outputs: Variable | Sequence[Variable],
    value_sets: Sequence[Sequence[Any]],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export ``inputs -> outputs`` once per opset and compare it with PyTensor on every
    set of input values (e.g. two sequence lengths), in ONNX Runtime and onnx.reference."""
    outputs_list = [outputs] if isinstance(outputs, Variable) else list(outputs)
    fn = pytensor.function(
        list(inputs), outputs_list, mode=REFERENCE_MODE, on_unused_input="ignore"
    )
    model: onnx.ModelProto | None = None
    for opset in OPSETS:
        model = export_onnx(list(inputs), outputs_list, opset=opset, **export_kwargs)
        for values in value_sets:
            arrays = [np.asarray(v) for v in values]
            expected = fn(*arrays)
            feeds = {inp.name: val for inp, val in zip(model.graph.input, arrays, strict=True)}
            runtime, reference = run_onnx(model, feeds)
            for name, got_all in (("onnxruntime", runtime), ("onnx.reference", reference)):
                for i, (got, want) in enumerate(zip(got_all, expected, strict=True)):
                    what = f"{name}, opset {opset}, shapes {[a.shape for a in arrays]}, output {i}"
                    assert_matches(got, want, rtol, atol, what)
    assert model is not None
    return model


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


LENGTHS = (5, 9)


def test_cumsum_and_cumprod(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    zero = pt.zeros((), dtype=floatX)
    one = pt.ones((), dtype=floatX)
    [sums, prods] = pytensor.scan(
        lambda xt, s, p: [s + xt, p * xt],
        sequences=[x],
        outputs_info=[zero, one],
        return_updates=False,
    )
    values = [[_rng(n).uniform(0.5, 1.5, n).astype(floatX)] for n in LENGTHS]
    model = compare_at_lengths([x], [sums, prods, sums[-1]], values)
    assert iteration_ops(model) == ["Scan"]


def test_ar1_last_value_only(floatX: str) -> None:
    # Only the last state is used: PyTensor's scan_save_mem shrinks the buffer.
    x = pt.vector("x", dtype=floatX)
    rho = pt.scalar("rho", dtype=floatX)
    states = pytensor.scan(
        lambda eps, prev, r: r * prev + eps,
        sequences=[x],
        outputs_info=[pt.zeros((), dtype=floatX)],
        non_sequences=[rho],
        return_updates=False,
    )
    values = [[_rng(n).normal(size=n).astype(floatX), np.asarray(0.7, floatX)] for n in LENGTHS]
    compare_at_lengths([x, rho], [states[-1]], values)


def test_ar2_mit_sot(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    init = pt.vector("init", dtype=floatX, shape=(2,))
    phi = pt.vector("phi", dtype=floatX, shape=(2,))
    ar = pytensor.scan(
        lambda eps, y2, y1, p: p[0] * y1 + p[1] * y2 + eps,
        sequences=[x],
        outputs_info=[{"initial": init, "taps": [-2, -1]}],
        non_sequences=[phi],
        return_updates=False,
    )
    values = [
        [
            _rng(n).normal(size=n).astype(floatX),
            np.array([0.3, -0.2], floatX),
            np.array([0.5, 0.3], floatX),
        ]
        for n in LENGTHS
    ]
    compare_at_lengths([x, init, phi], [ar, ar[-1]], values)


def test_sequence_taps_and_go_backwards(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    diffs = pytensor.scan(
        lambda a, b, c: c - 2 * b + a,
        sequences=[{"input": x, "taps": [-1, 0, 2]}],
        return_updates=False,
    )
    backwards = pytensor.scan(
        lambda xt, acc: acc * 0.5 + xt,
        sequences=[x],
        outputs_info=[pt.zeros((), dtype=floatX)],
        go_backwards=True,
        return_updates=False,
    )
    values = [[_rng(n).normal(size=n).astype(floatX)] for n in LENGTHS]
    compare_at_lengths([x], [diffs, backwards], values)


def test_kalman_filter_local_level(floatX: str) -> None:
    """Local-level model written with matrix ops: state (1,), covariance (1, 1)."""
    y = pt.matrix("y", dtype=floatX, shape=(None, 1))
    q = pt.scalar("q", dtype=floatX)
    r = pt.scalar("r", dtype=floatX)
    T = pt.eye(1, dtype=floatX)
    Z = pt.eye(1, dtype=floatX)

    def step(obs, a, P, q, r):
        a_pred = T.dot(a)
        P_pred = T.dot(P).dot(T.T) + q * pt.eye(1, dtype=floatX)
        v = obs - Z.dot(a_pred)
        F = Z.dot(P_pred).dot(Z.T) + r * pt.eye(1, dtype=floatX)
        K = P_pred.dot(Z.T) / F[0, 0]
        a_new = a_pred + K.dot(v)
        P_new = P_pred - K.dot(Z).dot(P_pred)
        loglike = -0.5 * (pt.log(2 * np.pi * F[0, 0]) + v[0] ** 2 / F[0, 0])
        return a_new, P_new, loglike.astype(floatX)

    a0 = pt.zeros((1,), dtype=floatX)
    P0 = pt.eye(1, dtype=floatX) * 10
    [states, covs, loglikes] = pytensor.scan(
        step,
        sequences=[y],
        outputs_info=[a0, P0, None],
        non_sequences=[q, r],
        return_updates=False,
    )
    total = loglikes.sum()
    values = [
        [
            np.cumsum(_rng(n).normal(size=(n, 1)), axis=0).astype(floatX),
            np.asarray(0.3, floatX),
            np.asarray(0.8, floatX),
        ]
        for n in LENGTHS
    ]
    tol = {"rtol": 1e-4, "atol": 1e-5} if floatX == "float32" else {}
    grads = pytensor.grad(total, [q, r])
    compare_at_lengths([y, q, r], [states, covs, total, *grads], values, **tol)


def test_rnn_symbolic_steps(floatX: str) -> None:
    xs = pt.matrix("xs", dtype=floatX)
    h0 = pt.vector("h0", dtype=floatX)
    W = pt.matrix("W", dtype=floatX)
    U = pt.matrix("U", dtype=floatX)
    n = pt.scalar("n", dtype="int64")
    hs = pytensor.scan(
        lambda x, h, W, U: pt.tanh(W.dot(h) + U.dot(x)),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[W, U],
        n_steps=n,
        return_updates=False,
    )
    rng = _rng()
    W_val = rng.normal(size=(4, 4)).astype(floatX) * 0.5
    U_val = rng.normal(size=(4, 3)).astype(floatX) * 0.5
    values = [
        [
            rng.normal(size=(steps + 2, 3)).astype(floatX),
            rng.normal(size=4).astype(floatX),
            W_val,
            U_val,
            np.int64(steps),
        ]
        for steps in LENGTHS
    ]
    tol = {"rtol": 1e-4, "atol": 1e-5} if floatX == "float32" else {}
    grads = pytensor.grad((hs**2).sum(), [W, U, h0])
    compare_at_lengths([xs, h0, W, U, n], [hs, *grads], values, **tol)


def test_ar_gradients(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    rho = pt.scalar("rho", dtype=floatX)
    init = pt.vector("init", dtype=floatX, shape=(2,))
    ar1 = pytensor.scan(
        lambda eps, prev, r: r * prev + eps,
        sequences=[x],
        outputs_info=[init[0]],
        non_sequences=[rho],
        return_updates=False,
    )
    ar2 = pytensor.scan(
        lambda eps, y2, y1, r: r * y1 - 0.25 * y2 + eps,
        sequences=[x],
        outputs_info=[{"initial": init, "taps": [-2, -1]}],
        non_sequences=[rho],
        return_updates=False,
    )
    cumsum = pytensor.scan(
        lambda xt, acc: acc + xt, sequences=[x], outputs_info=[init[1]], return_updates=False
    )
    loss = (ar1**2).sum() + (ar2**2).sum() + (cumsum * x).sum()
    grads = pytensor.grad(loss, [x, rho, init])
    values = [
        [
            _rng(n).normal(size=n).astype(floatX),
            np.asarray(0.6, floatX),
            np.array([0.2, -0.4], floatX),
        ]
        for n in LENGTHS
    ]
    tol = {"rtol": 1e-4, "atol": 1e-5} if floatX == "float32" else {}
    compare_at_lengths([x, rho, init], grads, values, **tol)


def test_while_loop_until(floatX: str) -> None:
    x0 = pt.scalar("x0", dtype=floatX)
    limit = pt.scalar("limit", dtype=floatX)

    def step(acc, limit):
        new = acc * 2
        return new, until(new > limit)

    values = pytensor.scan(
        step, outputs_info=[x0], non_sequences=[limit], n_steps=20, return_updates=False
    )
    cases = [
        [np.asarray(1.0, floatX), np.asarray(limit_val, floatX)] for limit_val in (10.0, 300.0, 1e9)
    ]
    # compare_at_lengths labels a case by its first input's length; scalars have none.
    fn = pytensor.function([x0, limit], [values, values[-1]], mode=REFERENCE_MODE)
    for opset in OPSETS:
        model = export_onnx([x0, limit], [values, values[-1]], opset=opset)
        for case in cases:
            expected = fn(*case)
            runtime, reference = run_onnx(model, {"x0": case[0], "limit": case[1]})
            for got_all in (runtime, reference):
                for got, want in zip(got_all, expected, strict=True):
                    assert_matches(got, want, None, None, f"opset {opset}, limit {case[1]}")


def nested_scan(xs: Variable) -> Variable:
    """Per row of ``xs``: the outer product of the row with its running sums (a scan)."""

    def outer_step(row):
        inner = pytensor.scan(
            lambda v, acc: acc + v,
            sequences=[row],
            outputs_info=[pt.zeros((), dtype=xs.dtype)],
            return_updates=False,
        )
        return pt.outer(row, inner)

    return pytensor.scan(outer_step, sequences=[xs], return_updates=False)


def test_nit_sot_matrices_and_nested_scan(floatX: str) -> None:
    xs = pt.matrix("xs", dtype=floatX)
    outers = nested_scan(xs)
    values = [[_rng(n).normal(size=(n, 3)).astype(floatX)] for n in LENGTHS]
    tol = {"rtol": 1e-5, "atol": 1e-5} if floatX == "float32" else {}
    compare_at_lengths([xs], [outers, pytensor.grad((outers**2).sum(), xs)], values, **tol)


def _raw_scan_node(fn_out: Sequence[Variable]) -> Scan:
    node = fn_out[0].owner
    assert isinstance(node.op, Scan)
    return node.op


def test_circular_buffers_match_scan_perform() -> None:
    """Buffers shorter than the history (as scan_save_mem makes them) keep the last values in
    time order; longer buffers are zero-padded.  The Scan Op is applied directly to buffers."""
    x = pt.vector("x")
    init = pt.vector("init")
    ar = pytensor.scan(
        lambda eps, y2, y1: 0.5 * y1 - 0.3 * y2 + eps,
        sequences=[x],
        outputs_info=[{"initial": init, "taps": [-2, -1]}],
        return_updates=False,
    )
    op = _raw_scan_node([ar.owner.inputs[0]])
    n_steps = pt.scalar("n_steps", dtype="int64")
    buffer = pt.vector("buffer")
    out = op(n_steps, x, buffer)
    fn = pytensor.function([n_steps, x, buffer], out, mode=REFERENCE_MODE)
    model = export_onnx([n_steps, x, buffer], [out])
    for steps, size in [(6, 2), (6, 3), (7, 5), (6, 8), (6, 12), (0, 4)]:
        buf = np.zeros(size)
        buf[:2] = [1.0, -2.0]
        feeds = {"n_steps": np.array(steps), "x": np.linspace(0, 1, 8), "buffer": buf}
        expected = fn(*feeds.values())
        runtime = ort_session(model).run(None, feeds)
        assert_matches(
            runtime[0], expected, None, None, f"onnxruntime, {steps} steps, buffer {size}"
        )
        if steps:  # onnx.reference's Loop stacks zero steps with np.vstack([]), which raises
            reference = ReferenceEvaluator(model).run(None, feeds)
            assert_matches(
                reference[0], expected, None, None, f"reference, {steps} steps, buffer {size}"
            )


def test_changing_state_shape_is_refused() -> None:
    x = pt.vector("x", shape=(3,))
    grow = pt.vector("grow", shape=(6,))
    body_in = x.type()
    body_out = pt.concatenate([body_in, body_in])
    op = Scan([body_in], [body_out], _info_sit_sot())
    out = op(pt.constant(2, dtype="int64"), pt.stack([x, x, x]))
    with pytest.raises(UnsupportedOpError, match="changes shape"):
        export_onnx([x, grow], [out])


def _info_sit_sot() -> Any:
    from pytensor.scan.op import ScanInfo

    return ScanInfo(
        n_seqs=0,
        mit_mot_in_slices=(),
        mit_mot_out_slices=(),
        mit_sot_in_slices=(),
        sit_sot_in_slices=((-1,),),
        n_nit_sot=0,
        n_untraced_sit_sot=0,
        n_non_seqs=0,
        as_while=False,
    )


def test_shared_and_constant_non_sequences(floatX: str) -> None:
    W = pytensor.shared(np.array([[0.5, -0.2], [0.1, 0.3]], dtype=floatX), name="W")
    offset = pt.constant(np.array([0.1, -0.1], dtype=floatX))
    xs = pt.matrix("xs", dtype=floatX)
    hs = pytensor.scan(
        lambda x, h, W, c: pt.tanh(W.dot(h) + x + c),
        sequences=[xs],
        outputs_info=[pt.zeros((2,), dtype=floatX)],
        non_sequences=[W, offset],
        return_updates=False,
    )
    values = [[_rng(n).normal(size=(n, 2)).astype(floatX)] for n in LENGTHS]
    tol = {"rtol": 1e-5, "atol": 1e-6} if floatX == "float32" else {}
    model = compare_at_lengths([xs], [hs, pytensor.grad(hs.sum(), W)], values, **tol)
    assert [init.name for init in model.graph.initializer] == ["W"]


def test_while_loop_with_traced_outputs(floatX: str) -> None:
    """An `until` loop with a sit-sot and a nit-sot output, stopped at different steps."""
    xs = pt.vector("xs", dtype=floatX)
    threshold = pt.scalar("threshold", dtype=floatX)

    def step(x, acc, threshold):
        new = acc + x
        return [new, new * x], until(new > threshold)

    [sums, products] = pytensor.scan(
        step,
        sequences=[xs],
        outputs_info=[pt.zeros((), dtype=floatX), None],
        non_sequences=[threshold],
        return_updates=False,
    )
    values = [
        [np.linspace(0.5, 1.5, n).astype(floatX), np.asarray(limit, floatX)]
        for n, limit in ((6, 2.0), (9, 100.0), (4, -1.0))
    ]
    compare_at_lengths([xs, threshold], [sums, products, sums[-1]], values)


def test_shared_variable_updates_in_scan() -> None:
    """Shared-variable updates made inside a scan (PyTensor turns them into a recurrence)."""
    state = pytensor.shared(np.float64(1.5), name="state")
    xs = pt.vector("xs")
    out, updates = pytensor.scan(
        lambda x: (x * state, {state: state * 0.5 + x}), sequences=[xs], return_updates=True
    )
    fn = pytensor.function([xs], out, updates=updates, mode=REFERENCE_MODE)
    model = export_onnx(fn, include_updates=True)
    feeds = {"xs": np.array([1.0, -2.0, 0.5, 3.0]), "state": np.array(1.5)}
    expected = fn(feeds["xs"])
    for got in run_onnx(model, feeds):
        assert_matches(got[0], expected, None, None, "scan output")
        assert_matches(got[1], state.get_value(), None, None, "updated state")


# --- Known length: ONNX Scan ----------------------------------------------------------------


def iteration_ops(model: onnx.ModelProto) -> list[str]:
    """The ``Loop`` and ``Scan`` nodes of the model, at any depth, in graph order."""
    found = []

    def visit(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type in ("Loop", "Scan"):
                found.append(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    visit(attribute.g)

    visit(model.graph)
    return found


def assert_scan_bodies_self_contained(model: onnx.ModelProto) -> None:
    """Every ``Scan`` body reads only its own inputs and values (OpenVINO's import of a
    ``Scan`` whose body reads enclosing graphs miscounts its inputs)."""

    def visit(graph: onnx.GraphProto, scan_body: bool) -> None:
        defined = {v.name for v in graph.input} | {t.name for t in graph.initializer}
        for node in graph.node:
            if scan_body:
                outside = [i for i in node.input if i and i not in defined]
                assert not outside, f"{graph.name}: {node.op_type} reads {outside} from outside"
            defined.update(node.output)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    visit(attribute.g, node.op_type == "Scan")

    visit(model.graph, False)


def test_known_length_scan_is_an_onnx_scan(floatX: str) -> None:
    """Static sequence shapes: the recurrence, its taps, a large captured constant (carried
    into the body) and a small one (copied) and the gradient, all as ONNX ``Scan``."""
    n = 7
    x = pt.tensor("x", dtype=floatX, shape=(n,))
    init = pt.tensor("init", dtype=floatX, shape=(2,))
    big = pt.constant(_rng(1).normal(size=2000).astype(floatX))
    small = pt.constant(np.array([0.5, 0.3], dtype=floatX))
    ar = pytensor.scan(
        lambda eps, y2, y1: small[0] * y1 + small[1] * y2 + eps + big.mean(),
        sequences=[x],
        outputs_info=[{"initial": init, "taps": [-2, -1]}],
        return_updates=False,
    )
    values = [[_rng(2).normal(size=n).astype(floatX), np.array([0.3, -0.2], floatX)]]
    tol = {"rtol": 1e-5, "atol": 1e-5} if floatX == "float32" else {}
    outputs = [ar, pytensor.grad((ar**2).sum(), x)]
    model = compare_at_lengths([x, init], outputs, values, **tol)
    assert "Loop" not in iteration_ops(model)
    assert "Scan" in iteration_ops(model)
    assert_scan_bodies_self_contained(model)


def test_known_length_nested_scan(floatX: str) -> None:
    xs = pt.tensor("xs", dtype=floatX, shape=(4, 3))
    values = [[_rng(3).normal(size=(4, 3)).astype(floatX)]]
    model = compare_at_lengths([xs], [nested_scan(xs)], values)
    assert iteration_ops(model) == ["Scan", "Scan"]
    assert_scan_bodies_self_contained(model)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino"])
def test_scan_bodies_that_read_no_scan_input_run_every_step(runtime: str, tmp_path: Path) -> None:
    """A constant ``n_steps`` without sequences, and a static cumulative product long enough
    for a ``Scan`` of halving rounds: OpenVINO dropped the unread step number and ran one
    step (a silent wrong value); every body output now reads it."""
    if runtime == "openvino":
        pytest.importorskip("openvino")
    x0 = pt.dvector("x0")
    steps = pytensor.scan(
        lambda x: x * 0.9 + 1.0, outputs_info=[x0], n_steps=20, return_updates=False
    )
    long = pt.dvector("long", shape=(5000,))
    outputs = [steps[-1], steps.sum(0), pt.cumprod(long)]
    path = tmp_path / "steps.onnx"
    model = export_onnx([x0, long], outputs, path)
    assert iteration_ops(model) == ["Scan", "Scan"]
    for node in model.graph.node:
        if node.op_type == "Scan":
            attributes = {a.name: a for a in node.attribute}
            body, n_scan_inputs = attributes["body"].g, attributes["num_scan_inputs"].i
            read = {name for n in body.node for name in n.input}
            assert any(v.name in read for v in body.input[-n_scan_inputs:])
    values = [np.array([1.0, -2.0]), _rng(4).uniform(0.9995, 1.0005, 5000)]
    want = pytensor.function([x0, long], outputs, mode=REFERENCE_MODE)(*values)
    got = runtimes.run(runtime, path, dict(zip(["x0", "long"], values, strict=True)))
    # OpenVINO computes in float32: verify's float32 tolerance.
    rtol = 1e-4 if runtime == "openvino" else 1e-12
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=rtol)


def test_known_length_of_zero_is_a_guarded_scan(floatX: str) -> None:
    """ONNX Runtime fails a ``Scan`` of zero steps: an empty known-length sequence runs one
    step whose results are not kept."""
    x = pt.tensor("x", dtype=floatX, shape=(0,))
    sums = pytensor.scan(
        lambda xt, s: s + xt,
        sequences=[x],
        outputs_info=[pt.ones((), dtype=floatX)],
        return_updates=False,
    )
    model = compare_at_lengths([x], [sums, sums.sum()], [[np.zeros(0, floatX)]])
    assert iteration_ops(model) == ["Scan"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino", "tract"])
def test_unknown_length_is_a_guarded_scan(runtime: str, tmp_path: Path) -> None:
    """A length known only at run time, including 0 and 1: a ``Scan`` of ``max(n, 1)``
    steps whose extra step is not kept, in every runtime (tract has no ``Loop``)."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    x, s0 = pt.dvector("x"), pt.dvector("s0", shape=(2,))
    sums, doubled = pytensor.scan(
        lambda xt, s: [s + xt, 2.0 * xt],
        sequences=[x],
        outputs_info=[s0, None],
        return_updates=False,
    )
    # tract 0.23 runs each of these alone but does not return from a Scan that gives both
    # a sit-sot history and a nit-sot (its limit; docs/deployment.md).
    outputs = [sums] if runtime == "tract" else [sums, doubled, sums.sum(0)]
    path = tmp_path / "unknown_length.onnx"
    model = export_onnx([x, s0], outputs, path)
    assert iteration_ops(model) == ["Scan"]
    fn = pytensor.function([x, s0], outputs, mode=REFERENCE_MODE)
    rtol = 1e-5 if runtime == "openvino" else 1e-12
    for n in (0, 1, 7):
        values = [_rng(n).normal(size=n), np.array([0.5, -1.0])]
        got = runtimes.run(runtime, path, {"x": values[0], "s0": values[1]})
        for g, w in zip(got, fn(*values), strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=rtol)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino", "tract"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_recurrence_of_unknown_sizes_runs_everywhere(
    runtime: str, dtype: str, tmp_path: Path
) -> None:
    """An RNN step ``tanh(w @ h + x)`` with every size unknown, and its gradient (a reverse
    scan over the reversed sequences): tract needs the state, the rows of ``xs`` and ``w``'s
    rows to share one name to type the inner graph, and the gradient's sizes as float64."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    w, h0 = pt.matrix("w", dtype=dtype), pt.vector("h0", dtype=dtype)
    xs = pt.matrix("xs", dtype=dtype)
    hs = pytensor.scan(
        lambda x, h, w: pt.tanh(w @ h + x),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[w],
        return_updates=False,
    )
    outputs = [hs]
    # tract cannot type the gradient scan of a float32 model (which holds no float64 tensor
    # to pass sizes in), nor size the reversed sequences of PyTensor 2's gradient, which are
    # sliced by bounds computed at run time.
    if runtime != "tract" or (dtype == "float64" and not pytensor.__version__.startswith("2.")):
        outputs += pytensor.grad((hs**2).sum(), [w, h0])
    path = tmp_path / "rnn.onnx"
    export_onnx([w, h0, xs], outputs, path)
    fn = pytensor.function([w, h0, xs], outputs, mode=REFERENCE_MODE)
    tolerance = 1e-4 if runtime == "openvino" or dtype == "float32" else 1e-12
    for n, steps in [(3, 0), (1, 1), (4, 6)]:
        rng = _rng(n)
        values = [
            (rng.normal(size=(n, n)) / n).astype(dtype),
            rng.normal(size=n).astype(dtype),
            rng.normal(size=(steps, n)).astype(dtype),
        ]
        got = runtimes.run(runtime, path, dict(zip(["w", "h0", "xs"], values, strict=True)))
        # No steps: no states and zero gradients (PyTensor 2.38's gradient scan fails then).
        no_steps = [np.zeros_like(values[k]) for k in (2, 0, 1)][: len(outputs)]
        wanted = fn(*values) if steps else no_steps
        for g, want in zip(got, wanted, strict=True):
            assert g.shape == want.shape
            np.testing.assert_allclose(g, want, rtol=tolerance, atol=tolerance)


def _body_initializers(model: onnx.ModelProto) -> list[str]:
    return [
        tensor.name
        for node in model.graph.node
        if node.op_type == "Scan"
        for attr in node.attribute
        if attr.name == "body"
        for tensor in attr.g.initializer
    ]


@pytest.mark.parametrize("external_data", [False, True])
def test_weights_only_a_scan_reads_live_in_its_body(tmp_path: Path, external_data: bool) -> None:
    """A weight passed through a ``Scan`` is copied at every step by ONNX Runtime; one that
    nothing else reads becomes an initializer of the body (once in the file, also in the
    external data file), one read outside too stays in the main graph."""
    rng = _rng(5)
    w = pytensor.shared(rng.normal(size=(40, 40)) / 8, name="w")
    u = pytensor.shared(rng.normal(size=(40, 40)) / 8, name="u")
    h0, xs = pt.dvector("h0"), pt.dmatrix("xs")
    hs = pytensor.scan(
        lambda x, h, w, u: pt.tanh(w @ h + u @ x),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[w, u],
        return_updates=False,
    )
    outputs = [hs, (hs @ u).sum()]
    path = tmp_path / "rnn.onnx"
    options = {"external_data": True, "external_data_threshold": 1024} if external_data else {}
    model = export_onnx([h0, xs], outputs, path, **options)
    assert [t.name for t in model.graph.initializer] == ["u"]
    assert _body_initializers(model) == ["w"]
    summary = pytensor_onnx.model_summary(path)
    assert sorted(i.name for i in summary.initializers) == ["u", "w"]
    if external_data:
        assert all(i.external for i in summary.initializers)
    fn = pytensor.function([h0, xs], outputs, mode=REFERENCE_MODE)
    values = [rng.normal(size=40), rng.normal(size=(6, 40))]
    feeds = {"h0": values[0], "xs": values[1]}
    for runtime in ("onnxruntime", "onnx.reference"):
        got = runtimes.run(runtime, path, feeds)
        for g, want in zip(got, fn(*values), strict=True):
            assert_matches(g, want, None, None, runtime)


def test_until_stays_a_loop() -> None:
    start = pt.dscalar("start")
    doubled = pytensor.scan(
        lambda v: (v * 2, until(v * 2 > 100)),
        outputs_info=[start],
        n_steps=50,
        return_updates=False,
    )
    assert iteration_ops(export_onnx([start], [doubled])) == ["Loop"]
