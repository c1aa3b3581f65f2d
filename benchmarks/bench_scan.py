"""ONNX ``Scan`` against ONNX ``Loop`` for the same PyTensor scan, in ONNX Runtime (issue #12).

A scan without ``until`` is written as an ONNX ``Scan``: with its length as the ``Scan``'s
length when that is known when exporting, and guarded (``max(n, 1)`` steps, the results of a
zero-step scan selected after it) when it is known only at run time.  A scan with ``until``
stays a ``Loop``.  This script exports each workload three times: with the sequence length
static (``Scan``), unknown (guarded ``Scan``) and unknown with an ``until`` that never holds
(``Loop``, the form unknown lengths took before), and times them in ONNX Runtime (one
intra-op thread, interleaved medians).

It then times an RNN step ``tanh(w @ h + x)`` (``--rnn-size`` units, 100 steps) whose
weight is a shared variable, which the export makes an initializer of the ``Scan`` body,
against the same model with the weight fed as an input (passed through the ``Scan`` as state,
which ONNX Runtime copies at every step) and against PyTensor's compiled function.

Usage: ``python benchmarks/bench_scan.py [--steps 1000 10000 100000] [--rnn-size 1000]``.
Not part of ``run_all.py``; the numbers are recorded in ``docs/control_flow.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
from pytensor.scan.utils import until

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, interleaved_call_times

from pytensor_onnx import export_onnx

Built = tuple[list[pt.TensorVariable], list[pt.TensorVariable]]
Workload = Callable[[int | None, bool], Built]


def _never(value: pt.TensorVariable) -> until:
    """An ``until`` that never holds on finite values: it makes the scan a ``Loop``."""
    return until(pt.isnan(value))


def ar1(length: int | None, loop: bool) -> Built:
    """``x[t] = phi * x[t-1] + eps[t]``: one scalar state, one sequence."""
    x0, phi = pt.dscalar("x0"), pt.dscalar("phi")
    eps = pt.tensor("eps", dtype="float64", shape=(length,))

    def step(e, prev, p):
        new = p * prev + e
        return (new, _never(new)) if loop else new

    xs = pytensor.scan(
        step,
        sequences=[eps],
        outputs_info=[x0],
        non_sequences=[phi],
        return_updates=False,
    )
    return [x0, phi, eps], [xs]


def local_level(length: int | None, loop: bool) -> Built:
    """A Kalman filter of a local-level model: two scalar states, two per-step outputs."""
    y = pt.tensor("y", dtype="float64", shape=(length,))
    q, r = pt.dscalar("q"), pt.dscalar("r")

    def step(obs, mean, var, q, r):
        prior_var = var + q
        gain = prior_var / (prior_var + r)
        new_mean = mean + gain * (obs - mean)
        new_var = (1 - gain) * prior_var
        loglik = -0.5 * (pt.log(2 * np.pi * (prior_var + r)) + (obs - mean) ** 2 / (prior_var + r))
        outputs = [new_mean, new_var, loglik]
        return (outputs, _never(loglik)) if loop else outputs

    (means, _, logliks) = pytensor.scan(
        step,
        sequences=[y],
        outputs_info=[pt.constant(0.0, dtype="float64"), pt.constant(1.0, dtype="float64"), None],
        non_sequences=[q, r],
        return_updates=False,
    )
    return [y, q, r], [means, logliks.sum()]


WORKLOADS: dict[str, tuple[Workload, Callable[[int, np.random.Generator], list[np.ndarray]]]] = {
    "ar1": (ar1, lambda n, rng: [np.array(0.5), np.array(0.9), rng.normal(size=n)]),
    "local_level": (
        local_level,
        lambda n, rng: [rng.normal(size=n).cumsum(), np.array(0.1), np.array(1.0)],
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--rnn-size", type=int, default=1_000)
    args = parser.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rng = np.random.default_rng(0)
    rows = []
    for name, (workload, make_values) in WORKLOADS.items():
        for steps in args.steps:
            values = make_values(steps, rng)
            calls = {}
            forms = [("Scan", steps, False), ("guarded Scan", None, False), ("Loop", None, True)]
            for form, length, loop in forms:
                inputs, outputs = workload(length, loop)
                model = export_onnx(inputs, outputs)
                ops = {node.op_type for node in model.graph.node}
                construction = form.split()[-1]
                assert construction in ops, f"{name}: expected a {construction}, got {ops}"
                session = ort.InferenceSession(
                    model.SerializeToString(), options, providers=["CPUExecutionProvider"]
                )
                feeds = {i.name: v for i, v in zip(model.graph.input, values, strict=True)}
                calls[form] = lambda s=session, f=feeds: s.run(None, f)
            results = {k: call() for k, call in calls.items()}
            for form in ("guarded Scan", "Loop"):
                for got, want in zip(results[form], results["Scan"], strict=True):
                    np.testing.assert_allclose(got, want, rtol=1e-12)
            times = interleaved_call_times(calls)
            row = {
                "workload": name,
                "steps": steps,
                "scan_ms": round(times["Scan"] * 1e3, 3),
                "guarded_scan_ms": round(times["guarded Scan"] * 1e3, 3),
                "loop_ms": round(times["Loop"] * 1e3, 3),
            }
            rows.append(row)
            print(
                f"{name:12s} {steps:7d} steps: Scan {row['scan_ms']:9.3f} ms, "
                f"guarded Scan {row['guarded_scan_ms']:9.3f} ms, Loop {row['loop_ms']:9.3f} ms"
            )
    emit({"benchmark": "scan_vs_loop", "rows": rows})
    _rnn_weights(args.rnn_size, options, rng)


def _rnn_weights(size: int, options: ort.SessionOptions, rng: np.random.Generator) -> None:
    """The RNN of the module docs with its weight in the body and passed through."""
    weight = rng.normal(size=(size, size)) / np.sqrt(size)
    h0, xs, w_input = pt.dvector("h0"), pt.dmatrix("xs"), pt.dmatrix("w")
    feeds = {"h0": rng.normal(size=size), "xs": rng.normal(size=(100, size))}
    calls = {}
    for form, w in [("in the body", pytensor.shared(weight, name="w")), ("passed on", w_input)]:
        hs = pytensor.scan(
            lambda x, h, w: pt.tanh(w @ h + x),
            sequences=[xs],
            outputs_info=[h0],
            non_sequences=[w],
            return_updates=False,
        )
        inputs = [h0, xs] if form == "in the body" else [h0, xs, w_input]
        model = export_onnx(inputs, [hs])
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        form_feeds = feeds if form == "in the body" else {**feeds, "w": weight}
        calls[form] = lambda s=session, f=form_feeds: s.run(None, f)
        if form == "in the body":
            fn = pytensor.function([h0, xs], hs)
            calls["PyTensor"] = lambda fn=fn: fn(feeds["h0"], feeds["xs"])
    times = {k: round(t * 1e3, 3) for k, t in interleaved_call_times(calls).items()}
    print(", ".join(f"RNN weight {k}: {t} ms" for k, t in times.items()))
    emit({"benchmark": "scan_rnn_weight", "size": size, "steps": 100, "ms": times})


if __name__ == "__main__":
    main()
