"""Benchmark 1: export time against graph size, and ONNX Runtime session creation.

A chain of ``n`` elementwise nodes (alternating ``tanh`` and ``exp`` on a 16-vector, which no
rewrite simplifies) is exported stage by stage: PyTensor rewrites (``capture``), conversion to
onnx-ir (``build_model``, which includes ONNX shape inference for output dims) and the
optimization stage (``optimize``), all three with Python's cyclic garbage collector paused
as ``export_onnx`` runs them, serialization, the ONNX checker (``check_model``), and ONNX
Runtime session creation for the same model.
Times are CPU seconds of this process (``time.process_time``), so that other load on a shared
machine inflates them less than wall-clock time; medians over repeats for small sizes.

Usage: ``python benchmarks/bench_export.py [--sizes 100 1000 10000 30000]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit

STAGES = (
    "rewrite",
    "convert",
    "optimize",
    "serialize",
    "check",
    "ort_session",
)


def chain_graph(n: int) -> tuple[Any, Any]:
    """``n`` elementwise nodes in a chain: ``(input, output)``."""
    import pytensor.tensor as pt

    x = pt.tensor("x", dtype="float64", shape=(16,))
    y = x
    for i in range(n):
        y = pt.tanh(y) if i % 2 == 0 else pt.exp(y)
    return x, y


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.process_time()
    result = fn()
    return result, time.process_time() - start


def export_stages(n: int, threads: int) -> dict[str, Any]:
    """Time every export stage once for a chain of ``n`` nodes."""
    import onnx_ir as ir
    import onnxruntime as ort

    from pytensor_onnx.export import _gc_paused, build_model, capture, check_model
    from pytensor_onnx.optimize import optimize

    x, y = chain_graph(n)
    with _gc_paused():
        captured, t_rewrite = _timed(lambda: capture([x], [y]))
        model, t_convert = _timed(lambda: build_model(captured))
        _, t_optimize = _timed(lambda: optimize(model))
    data, t_serialize = _timed(lambda: ir.serde.serialize_model(model).SerializeToString())
    proto = ir.serde.serialize_model(model)
    _, t_check = _timed(lambda: check_model(proto))
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    _, t_session = _timed(
        lambda: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    )
    return {
        "pytensor_nodes": len(captured.fgraph.apply_nodes),
        "onnx_nodes": len(proto.graph.node),
        "rewrite": t_rewrite,
        "convert": t_convert,
        "optimize": t_optimize,
        "serialize": t_serialize,
        "check": t_check,
        "ort_session": t_session,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 30000])
    parser.add_argument("--repeats", type=int, default=3, help="repeats for sizes <= 1000")
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    args = parser.parse_args()
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * max(args.sizes)))
    rows = []
    for n in args.sizes:
        runs = [export_stages(n, args.threads) for _ in range(args.repeats if n <= 1000 else 1)]
        row: dict[str, Any] = {"n": n, "repeats": len(runs)}
        row["pytensor_nodes"] = runs[0]["pytensor_nodes"]
        row["onnx_nodes"] = runs[0]["onnx_nodes"]
        for stage in STAGES:
            row[stage] = statistics.median(run[stage] for run in runs)
        rows.append(row)
    emit({"benchmark": "export", "clock": "process_time", "rows": rows})


if __name__ == "__main__":
    main()
