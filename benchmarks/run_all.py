"""Run every benchmark and write the results as markdown tables into ``docs/benchmarks.md``.

Each benchmark runs in a subprocess (``bench_export.py``, ``bench_torch.py``,
``bench_backends.py``), with BLAS/OpenMP/Numba thread counts and ONNX Runtime's intra-op
threads set to ``--threads`` (default 1), so that every backend gets the same cores.

Usage::

    python benchmarks/run_all.py                       # everything in this interpreter
    python benchmarks/run_all.py --python /path/to/venv-a/bin/python \\
        --python /path/to/venv-b/bin/python --torch-python /path/to/bench/bin/python

``--python`` (repeatable) chooses the interpreters for the backend comparison (e.g. one with
PyTensor 2.x and one with 3.x); the export benchmark runs in the first one; the torch
comparison runs in ``--torch-python`` and is skipped if torch is not installed there.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULT_MARKER  # noqa: E402

DEFAULT_OUTPUT = HERE.parent / "docs" / "benchmarks.md"


def run_script(python: str, script: str, args: list[str], threads: int) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` under ``python`` and return its JSON result."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    command = [python, str(HERE / script), "--threads", str(threads), *args]
    print(f"running {' '.join(command)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    print(f"  {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(f"{script} under {python} failed:\n{done.stderr[-3000:]}")


def has_torch(python: str) -> bool:
    """Whether ``python`` can import torch."""
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True, check=False)
    return probe.returncode == 0


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant digits."""
    return f"{seconds * 1e3:.3g}"


def us(seconds: float) -> str:
    """Seconds as microseconds with three significant digits."""
    return f"{seconds * 1e6:.3g}"


def ratio(numerator: float, denominator: float) -> str:
    """``numerator / denominator`` as ``1.23x``."""
    return f"{numerator / denominator:.2f}x"


def machine_section(results: list[dict[str, Any]], threads: int, load: list[str]) -> list[str]:
    """The machine and the package versions of every interpreter used."""
    machine = results[0]["machine"]
    lines = [
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} logical cores; {machine['os']}",
        f"- threads: {threads} (ONNX Runtime intra-op, OpenMP/BLAS, Numba)",
        f"- load average (1 min) at start and end: {load[0]} / {load[1]}",
        "",
    ]
    seen = set()
    for result in results:
        info = result["machine"]
        key = json.dumps(info, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
        lines.append(f"- Python {info['python']}: {packages}")
    return [*lines, ""]


def per_node(row: dict[str, Any]) -> float:
    """Export seconds per node of one row of the export benchmark."""
    stages = ("rewrite", "convert", "optimize", "serialize", "check")
    return sum(row[stage] for stage in stages) / row["n"]


def export_section(result: dict[str, Any]) -> list[str]:
    """Benchmark 1 as a table, with the per-node cost trend."""
    rows = []
    for row in result["rows"]:
        n = row["n"]
        total = per_node(row) * n
        rows.append(
            [
                f"{n:,}",
                f"{1e3 * row['rewrite'] / n:.3f}",
                f"{1e3 * row['convert'] / n:.3f}",
                f"{1e3 * row['optimize'] / n:.4f}",
                f"{1e3 * row['serialize'] / n:.4f}",
                f"{1e3 * row['check'] / n:.4f}",
                f"{1e3 * total / n:.3f}",
                f"{total:.2f}",
                f"{row['ort_session']:.3f}",
                ratio(total, row["ort_session"]),
            ]
        )
    first = next((r for r in result["rows"] if r["n"] >= 1000), result["rows"][0])
    last = result["rows"][-1]
    python = result["machine"]["python"]
    pytensor = result["machine"]["packages"].get("pytensor", "?")
    return [
        "## 1. Export time against graph size",
        "",
        "A chain of n elementwise nodes (`tanh`/`exp` alternating on a 16-vector). CPU time of",
        f"the exporting process (`time.process_time`), Python {python}, PyTensor {pytensor}.",
        "Stages: PyTensor rewrites, conversion to onnx-ir (with ONNX shape inference), the",
        "optimization stage (docs/optimization.md), serialization, the ONNX checker; then ONNX",
        "Runtime session creation for the same model.",
        "Rewrites, conversion and optimization run with Python's cyclic garbage collector",
        "paused, as `export_onnx` runs them: the collector's passes over the growing heap",
        "made the per-node cost rise with the graph's size.",
        "",
        *table(
            [
                "nodes",
                "rewrite ms/node",
                "convert ms/node",
                "optimize ms/node",
                "serialize ms/node",
                "check ms/node",
                "export ms/node",
                "export s",
                "ORT session s",
                "export / ORT session",
            ],
            rows,
        ),
        "",
        f"Per-node export cost at {last['n']:,} nodes relative to {first['n']:,} nodes: "
        f"{per_node(last) / per_node(first):.2f} (1.00 = exactly linear).",
        "",
    ]


def torch_section(result: dict[str, Any] | None, reason: str) -> list[str]:
    """Benchmark 2 as a table."""
    lines = ["## 2. The MLP exported by pytensor-onnx and by torch.onnx.export", ""]
    if result is None:
        return [*lines, f"Skipped: {reason}", ""]
    rows = []
    ours, theirs = result["rows"]
    for row in result["rows"]:
        rows.append(
            [
                row["exporter"],
                str(row["opset"]),
                str(row["nodes"]),
                ", ".join(row["ops"]),
                ms(row["batch_1"]),
                ms(row["batch_256"]),
            ]
        )
    return [
        *lines,
        "784-512-512-10, ReLU, softmax, float32, the same weights, dynamic batch; both models in",
        f"ONNX Runtime with {result['threads']} intra-op thread(s), median latency in ms.",
        "",
        *table(["exporter", "opset", "nodes", "ONNX ops", "batch 1 ms", "batch 256 ms"], rows),
        "",
        f"Latency ratio pytensor-onnx / torch: batch 1 {ratio(ours['batch_1'], theirs['batch_1'])}"
        f", batch 256 {ratio(ours['batch_256'], theirs['batch_256'])}. Largest difference "
        f"between the two models' outputs: {result['max_abs_diff']:.2g}.",
        "",
    ]


def backends_section(results: list[dict[str, Any]]) -> list[str]:
    """Benchmark 3: one table per interpreter."""
    lines = [
        '## 3. `mode="ONNX"` against PyTensor\'s backends',
        "",
        "Median call latency in ms of the same `pytensor.function` compiled in each mode, and",
        'the ratio mode / ONNX (above 1: `mode="ONNX"` is faster). "ONNX constant_shared" is',
        "`ONNXMode(constant_shared=True)`: shared values the function does not update are",
        "initializers of the model (the default mode feeds them as inputs on every call).",
        "Python = the `py` linker with `fast_run` rewrites minus elementwise fusion. Compile",
        'times in s. For the MLP, "ORT, exported model" runs `export_onnx`\'s model directly.',
        "",
    ]
    for result in results:
        backends = [b for b in result["backends"][0]["compile"] if b != "ONNX"]
        header = ["workload", "ONNX ms"]
        for name in backends:
            header += [f"{name} ms", f"{name} / ONNX"]
        header += ["ORT, exported model ms", "compile s (" + ", ".join(["ONNX", *backends]) + ")"]
        rows = []
        for row in result["backends"]:
            latency = row["latency"]
            cells = [row["workload"], ms(latency["ONNX"])]
            for name in backends:
                cells += [ms(latency[name]), ratio(latency[name], latency["ONNX"])]
            exported = latency.get("ORT, exported model")
            cells.append(ms(exported) if exported is not None else "")
            cells.append(", ".join(f"{row['compile'][b]:.2f}" for b in ["ONNX", *backends]))
            rows.append(cells)
        lines += [f"### PyTensor {result['pytensor']}", "", *table(header, rows), ""]
    return lines


def overhead_section(results: list[dict[str, Any]]) -> list[str]:
    """Benchmark 4: one table for all interpreters, each time also as % over ``session.run``."""
    columns = {
        "binding": "C++ binding",
        "thunk": "thunk",
        "mode_trust_input": "fn() trust_input",
        "mode": "fn()",
    }
    rows = []
    for result in results:
        for row in result["overhead"]:
            cells = [result["pytensor"], row["graph"], us(row["raw"])]
            for key in columns:
                cells += [us(row[key]), f"{100 * (row[key] / row['raw'] - 1):+.0f} %"]
            rows.append(cells)
    header = ["PyTensor", "graph", "session.run µs"]
    for label in columns.values():
        header += [f"{label} µs", "vs run"]
    return [
        '## 4. Call overhead of `mode="ONNX"` over `InferenceSession.run`',
        "",
        "One compiled function, and its own session for every column (the same model, session",
        "options and inputs); median µs per call of interleaved samples, and the difference",
        'to `session.run(output_names, feeds)`. "C++ binding" is `session._sess.run(...)`,',
        "ONNX Runtime's Python API without its per-call checks; \"thunk\" is the linker's",
        "share alone (`fn.vm()`, input storage already filled), which calls that binding;",
        '"fn() trust_input" is the function with `fn.trust_input = True` (no input',
        'validation by PyTensor), "fn()" the default call.',
        "",
        *table(header, rows),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="interpreter(s) for the backends")
    parser.add_argument("--torch-python", default=sys.executable, help="interpreter with torch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 30000])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    pythons = args.python or [sys.executable]
    start = time.perf_counter()
    load = [f"{os.getloadavg()[0]:.1f}"]

    export = run_script(pythons[0], "bench_export.py", ["--sizes", *map(str, args.sizes)], 1)
    torch_result = None
    reason = f"torch is not importable by {args.torch_python}"
    if has_torch(args.torch_python):
        torch_result = run_script(args.torch_python, "bench_torch.py", [], args.threads)
    backends = [run_script(p, "bench_backends.py", [], args.threads) for p in pythons]
    load.append(f"{os.getloadavg()[0]:.1f}")
    elapsed = time.perf_counter() - start

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/run_all.py` on {stamp} in {elapsed:.0f} s (see",
        "`benchmarks/README.md`). Medians over repeated, interleaved samples. The machine was",
        "shared with other jobs (load average below): differences up to ~20 % are noise.",
        "",
        *machine_section(
            [export, *backends, *([torch_result] if torch_result else [])], args.threads, load
        ),
        *export_section(export),
        *torch_section(torch_result, reason),
        *backends_section(backends),
        *overhead_section(backends),
    ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output} ({elapsed:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
