"""Shared pieces of the benchmark scripts: timing, machine description, the benchmark graphs.

Every ``bench_*.py`` script prints its result as one JSON line after the marker
:data:`RESULT_MARKER` on stdout (other lines, e.g. exporter logs, are ignored); ``run_all.py``
runs them, possibly under several Python interpreters, and writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np

#: Prefix of the stdout line that carries a script's JSON result.
RESULT_MARKER = "BENCHMARK-RESULT "

#: The MLP of the benchmarks: input, two hidden layers (ReLU), output (softmax).
MLP_SIZES = (784, 512, 512, 10)


def interleaved_call_times(
    candidates: dict[str, Callable[[], Any]],
    samples: int = 15,
    min_sample_time: float = 0.02,
    setups: dict[str, Callable[[], Any]] | None = None,
) -> dict[str, float]:
    """Median time of one call of each candidate, the candidates' samples taken in turn.

    Interleaving makes slow drifts of a shared machine's load hit every candidate alike, so
    that ratios between candidates are more trustworthy than from separate measurements.
    Each sample runs a candidate enough times to last ``min_sample_time`` (calibrated once);
    candidates slower than 0.1 s per call limit the run to 5 samples.  ``setups`` may give,
    per candidate, an untimed function called before each of its samples (e.g. to switch a
    flag of an object that several candidates share).
    """
    setups = setups or {}

    def prepare(name: str) -> None:
        if name in setups:
            setups[name]()

    numbers = {}
    slowest = 0.0
    for name, fn in candidates.items():
        prepare(name)
        fn()  # warm-up (lazy initialization, caches)
        start = time.perf_counter()
        fn()
        once = max(time.perf_counter() - start, 1e-7)
        slowest = max(slowest, once)
        numbers[name] = max(1, int(min_sample_time / once))
    if slowest > 0.1:
        samples = min(samples, 5)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(samples):
        for name, fn in candidates.items():
            prepare(name)
            calls = range(numbers[name])
            start = time.perf_counter()
            for _ in calls:
                fn()
            times[name].append((time.perf_counter() - start) / numbers[name])
    return {name: statistics.median(values) for name, values in times.items()}


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, core count, OS, Python and the versions of the packages that are measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    packages = ["numpy", "pytensor", "onnx", "onnxruntime", "onnx-ir", "numba", "torch"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {p: v for p in packages if (v := package_version(p)) is not None},
    }


def mlp_weights(dtype: str = "float32", seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deterministic ``(W, b)`` pairs of the benchmark MLP (``W`` is ``(in, out)``)."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in itertools.pairwise(MLP_SIZES):
        w = rng.normal(scale=np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)).astype(dtype)
        b = rng.normal(scale=0.1, size=fan_out).astype(dtype)
        layers.append((w, b))
    return layers


def pytensor_mlp(dtype: str = "float32") -> tuple[Any, Any, list[Any]]:
    """The benchmark MLP in PyTensor: ``(x, probabilities, shared parameters)``.

    ``x`` has an unknown batch dimension; the weights are shared variables.
    """
    import pytensor
    import pytensor.tensor as pt

    x = pt.tensor("x", dtype=dtype, shape=(None, MLP_SIZES[0]))
    h = x
    params = []
    layers = mlp_weights(dtype)
    for i, (w_value, b_value) in enumerate(layers):
        w = pytensor.shared(w_value, name=f"W{i}")
        b = pytensor.shared(b_value, name=f"b{i}")
        params += [w, b]
        h = h @ w + b
        if i < len(layers) - 1:
            h = pt.maximum(h, 0)
    return x, pt.special.softmax(h, axis=-1), params


def emit(result: dict[str, Any]) -> None:
    """Print a benchmark result as a JSON line after :data:`RESULT_MARKER`."""
    result.setdefault("machine", machine_info())
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
