"""The ONNX-level optimization stage (``pytensor_onnx.optimize``): node counts and ONNX Runtime
latency of the same export without and with it (issue #15), and for the PyMC models the
latency of PyTensor's default backend on the same logp and gradient.

Workloads: the benchmark MLP (784-512-512-10, ReLU, softmax, float32 and float64) at batch 1,
64 and 1024, and (when PyMC is installed) the logp+gradient exports of the PyMC models of
tests/test_pymc.py at their initial point.  Both models of a pair come from the same capture
(``export.capture`` and ``export.build_model``); the optimized one then goes through
:func:`optimize`, as ``export_onnx`` does.  ONNX Runtime runs both with one intra-op thread,
interleaved medians; node counts include subgraphs, and the stage's own time is reported.

Usage: ``python benchmarks/bench_optimize.py``.  Not part of ``run_all.py``; the numbers are
recorded in ``docs/optimization.md``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import MLP_SIZES, emit, interleaved_call_times, pytensor_mlp

import pytensor_onnx.export
from pytensor_onnx.export import build_model, capture
from pytensor_onnx.optimize import optimize
from tests.compare import all_nodes

BATCHES = (1, 64, 1024)


def models(dtype: str) -> dict[str, ir.Model]:
    """The MLP exported without and with the optimization stage."""
    x, probabilities, _ = pytensor_mlp(dtype)
    built = {}
    for kind in ("unoptimized", "optimized"):
        model = build_model(capture([x], [probabilities]))
        if kind == "optimized":
            optimize(model)
        built[kind] = model
    return built


@contextlib.contextmanager
def stage_switched_off() -> Iterator[None]:
    """``export_onnx`` without the optimization stage (for the comparison only)."""
    saved = pytensor_onnx.export.optimize
    pytensor_onnx.export.optimize = lambda model: None
    try:
        yield
    finally:
        pytensor_onnx.export.optimize = saved


def default_backend_call(model: Any) -> Callable[[], Any]:
    """A call of ``model``'s logp and gradient compiled in PyTensor's default mode (C on
    PyTensor 2, Numba on 3) at the initial point."""
    import pytensor
    import pytensor.tensor as pt

    logp = model.logp()
    inputs = model.value_vars
    function = pytensor.function(inputs, [logp, *pt.grad(logp, inputs)])
    point = model.initial_point()
    values = [point[v.name] for v in inputs]
    return lambda: function(*values)


def pymc_rows(options: ort.SessionOptions) -> list[dict[str, object]]:
    """Node counts and latency of the PyMC logp+gradient exports without and with the stage."""
    try:
        from tests import test_pymc
    except ImportError as error:  # PyMC missing: pytest skips the module's import
        print(f"PyMC models skipped: {error}")
        return []
    from pytensor_onnx.pymc import export_logp_dlogp

    rows: list[dict[str, object]] = []
    for name, build in sorted(test_pymc.MODELS.items()):
        model = build()
        with stage_switched_off():
            unoptimized = export_logp_dlogp(model)
        ir_model = ir.serde.deserialize_model(unoptimized)
        start = time.process_time()
        optimize(ir_model)
        seconds = time.process_time() - start
        optimized = ir.serde.serialize_model(ir_model)
        x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
        sessions = {
            kind: ort.InferenceSession(
                proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            for kind, proto in (("unoptimized", unoptimized), ("optimized", optimized))
        }
        feeds = {"x": x.astype(np.float64)}
        calls: dict[str, Callable[[], Any]] = {
            kind: (lambda s=s, f=feeds: s.run(None, f)) for kind, s in sessions.items()
        }
        calls["default"] = default_backend_call(model)
        times = interleaved_call_times(calls)
        counts = {
            kind: (
                sum(1 for _ in all_nodes(proto)),
                sum(node.op_type == "Constant" for node in all_nodes(proto)),
            )
            for kind, proto in (("unoptimized", unoptimized), ("optimized", optimized))
        }
        row = {
            "model": name,
            "nodes": counts["unoptimized"][0],
            "constants": counts["unoptimized"][1],
            "optimized_nodes": counts["optimized"][0],
            "optimized_constants": counts["optimized"][1],
            "optimize_ms": round(seconds * 1e3, 2),
            "unoptimized_us": round(times["unoptimized"] * 1e6, 1),
            "optimized_us": round(times["optimized"] * 1e6, 1),
            "default_backend_us": round(times["default"] * 1e6, 1),
        }
        print(row)
        rows.append(row)
    return rows


def main() -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rows = []
    for dtype in ("float32", "float64"):
        built = models(dtype)
        sessions = {
            kind: ort.InferenceSession(
                ir.serde.serialize_model(model).SerializeToString(),
                options,
                providers=["CPUExecutionProvider"],
            )
            for kind, model in built.items()
        }
        ops = {
            kind: dict(Counter(node.op_type for node in model.graph))
            for kind, model in built.items()
        }
        rng = np.random.default_rng(0)
        for batch in BATCHES:
            feeds = {"x": rng.normal(size=(batch, MLP_SIZES[0])).astype(dtype)}
            outputs = {kind: s.run(None, feeds)[0] for kind, s in sessions.items()}
            calls = {kind: (lambda s=s, f=feeds: s.run(None, f)) for kind, s in sessions.items()}
            times = interleaved_call_times(calls)
            difference = float(np.max(np.abs(outputs["optimized"] - outputs["unoptimized"])))
            row = {
                "dtype": dtype,
                "batch": batch,
                "unoptimized_ms": round(times["unoptimized"] * 1e3, 4),
                "optimized_ms": round(times["optimized"] * 1e3, 4),
                "max_abs_difference": difference,
            }
            rows.append(row)
            print(
                f"{dtype} batch {batch:5d}: unoptimized {row['unoptimized_ms']:8.3f} ms, "
                f"optimized {row['optimized_ms']:8.3f} ms "
                f"({times['optimized'] / times['unoptimized']:.2f}x), "
                f"max |difference| {difference:.1e}"
            )
        for kind, counts in ops.items():
            print(f"{dtype} {kind}: {sum(counts.values())} nodes {counts}")
        rows.append({"dtype": dtype, "nodes": ops})
    emit({"benchmark": "optimize", "rows": rows, "pymc": pymc_rows(options)})


if __name__ == "__main__":
    main()
