"""ONNX ``Scan`` against ONNX ``Loop`` for the same PyTensor scan, in ONNX Runtime (issue #12).

A scan without ``until`` is written as an ONNX ``Scan``: with its length as the ``Scan``'s
length when that is known when exporting, and guarded (``max(n, 1)`` steps, the results of a
zero-step scan selected after it) when it is known only at run time.  A scan with ``until``
stays a ``Loop``.  This script exports each workload three times: with the sequence length
static (``Scan``), unknown (guarded ``Scan``) and unknown with an ``until`` that never holds
(``Loop``, the form unknown lengths took before), and times them in ONNX Runtime (one
intra-op thread, interleaved medians).

Usage: ``python benchmarks/bench_scan.py [--steps 1000 10000 100000]``.  Not part of
``run_all.py``; the numbers are recorded in ``docs/control_flow.md``.
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


if __name__ == "__main__":
    main()
