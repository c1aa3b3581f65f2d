"""Random draws per second: exported RandomVariables in ONNX Runtime against NumPy (issue #14).

Each case exports one RandomVariable of ``--draws`` elements (its generator becomes the int64
seed input, see docs/random.md) and times it in ONNX Runtime (one intra-op thread) against
the same distribution from NumPy's ``Generator`` in the same process, interleaved medians.
Each ONNX call gets a new seed, as a deployed model would.  The target of issue #14 is
within 3x of NumPy.  The ratio is for ``portable=False`` exports (what ``mode="ONNX"`` runs);
the default ``portable=True`` exports are timed too.

Usage: ``python benchmarks/bench_random.py [--draws 1000000]``.  Not part of ``run_all.py``;
the numbers are recorded in ``docs/random.md``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, interleaved_call_times

from pytensor_onnx import export_onnx

#: name -> (PyTensor draw of ``size`` from ``rng``, NumPy draw of ``size`` from ``gen``).
CASES: dict[str, tuple[Callable[[Any, int], Any], Callable[[np.random.Generator, int], Any]]] = {
    "normal(0, 1)": (
        lambda rng, n: pt.random.normal(0.0, 1.0, size=(n,), rng=rng),
        lambda gen, n: gen.normal(0.0, 1.0, size=n),
    ),
    "gamma(2, 1)": (
        lambda rng, n: pt.random.gamma(2.0, 1.0, size=(n,), rng=rng),
        lambda gen, n: gen.gamma(2.0, 1.0, size=n),
    ),
    "gamma(0.5, 1)": (
        lambda rng, n: pt.random.gamma(0.5, 1.0, size=(n,), rng=rng),
        lambda gen, n: gen.gamma(0.5, 1.0, size=n),
    ),
    "poisson(4)": (
        lambda rng, n: pt.random.poisson(4.0, size=(n,), rng=rng),
        lambda gen, n: gen.poisson(4.0, size=n),
    ),
    "poisson(1000)": (
        lambda rng, n: pt.random.poisson(1000.0, size=(n,), rng=rng),
        lambda gen, n: gen.poisson(1000.0, size=n),
    ),
    "binomial(10, 0.3)": (
        lambda rng, n: pt.random.binomial(10, 0.3, size=(n,), rng=rng),
        lambda gen, n: gen.binomial(10, 0.3, size=n),
    ),
    "binomial(10**6, 0.3)": (
        lambda rng, n: pt.random.binomial(10**6, 0.3, size=(n,), rng=rng),
        lambda gen, n: gen.binomial(10**6, 0.3, size=n),
    ),
    "categorical(10 classes)": (
        lambda rng, n: pt.random.categorical(np.full(10, 0.1), size=(n,), rng=rng),
        lambda gen, n: gen.choice(10, p=np.full(10, 0.1), size=n),
    ),
}


def _onnx_call(session: ort.InferenceSession) -> Callable[[], Any]:
    """One run of ``session`` per call, each with the next seed."""
    seeds = itertools.count()
    return lambda: session.run(None, {"rng": np.array(next(seeds), np.int64)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.draws
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rows = []
    for name, (draw, numpy_draw) in CASES.items():
        rng = pytensor.shared(np.random.default_rng(0), name="rng")
        calls: dict[str, Callable[[], Any]] = {
            "numpy": partial(numpy_draw, np.random.default_rng(0), n)
        }
        for key, portable in (("onnx", False), ("portable", True)):
            model = export_onnx([], [draw(rng, n)], portable=portable)
            session = ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            calls[key] = _onnx_call(session)
        times = interleaved_call_times(calls, samples=7)
        ratio = times["onnx"] / times["numpy"]
        rows.append(
            {
                "distribution": name,
                "onnx_draws_per_s": round(n / times["onnx"]),
                "portable_draws_per_s": round(n / times["portable"]),
                "numpy_draws_per_s": round(n / times["numpy"]),
                "onnx_over_numpy": round(ratio, 2),
            }
        )
        print(
            f"{name:24s} ONNX Runtime {n / times['onnx'] / 1e6:7.1f} M/s "
            f"(portable: {n / times['portable'] / 1e6:5.1f}), "
            f"NumPy {n / times['numpy'] / 1e6:7.1f} M/s ({ratio:.2f}x NumPy's time)"
        )
    emit({"benchmark": "random_draws", "draws": n, "rows": rows})


if __name__ == "__main__":
    main()
