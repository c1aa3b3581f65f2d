"""Benchmark 5: the cost of linear algebra built from ONNX operators.

ONNX has no Cholesky, LU or solve operator; pytensor-onnx builds them from ``Loop``s of
vectorized column steps (see ``docs/linalg.md``).  This script times the exported models in
ONNX Runtime against NumPy and SciPy (LAPACK) for n = 100 and 500 (float64, one right-hand
side): Cholesky, general and positive-definite solves, the inverse and ``slogdet``.  Static
and symbolic (unknown) matrix sizes are exported separately, as they take different
constructions (unblocked vs blocked Cholesky).

Times are interleaved medians (``common.interleaved_call_times``) with one thread everywhere
(ONNX Runtime ``intra_op_num_threads=1``; ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` = 1,
set before NumPy is imported).  The table is printed and written between the markers of
``docs/linalg.md``.

Usage: ``python benchmarks/bench_linalg.py [--sizes 100 500] [--no-write]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, interleaved_call_times, machine_info  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "linalg.md"
START, END = "<!-- bench_linalg:start -->", "<!-- bench_linalg:end -->"


def problems(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A general matrix, an SPD matrix (both well conditioned) and a right-hand side."""
    rng = np.random.default_rng(seed)
    general = rng.normal(size=(n, n)) + n**0.5 * np.eye(n)
    root = rng.normal(size=(n, n))
    spd = root @ root.T / n + np.eye(n)
    return general, spd, rng.normal(size=(n, 1))


#: name -> (PyTensor graph builder, NumPy/SciPy reference, which matrix it takes)
def operations() -> dict[str, tuple[Callable[..., Any], Callable[..., Any], str]]:
    """The timed operations."""
    import pytensor.tensor.linalg as ptla
    import scipy.linalg

    return {
        "cholesky": (lambda a, b: ptla.cholesky(a), lambda a, b: np.linalg.cholesky(a), "spd"),
        "solve (gen)": (
            lambda a, b: ptla.solve(a, b),
            lambda a, b: scipy.linalg.solve(a, b, check_finite=False),
            "general",
        ),
        "solve (pos)": (
            lambda a, b: ptla.solve(a, b, assume_a="pos"),
            lambda a, b: scipy.linalg.solve(a, b, assume_a="pos", check_finite=False),
            "spd",
        ),
        "inv": (lambda a, b: ptla.inv(a), lambda a, b: np.linalg.inv(a), "general"),
        "slogdet": (
            lambda a, b: ptla.slogdet(a)[1],
            lambda a, b: np.linalg.slogdet(a)[1],
            "general",
        ),
    }


def ort_runner(
    graph: Callable[..., Any], n: int, symbolic: bool, a: np.ndarray, b: np.ndarray
) -> Callable[[], Any]:
    """An ONNX Runtime session (one thread) for ``graph`` and a call closure on ``(a, b)``."""
    import onnxruntime as ort
    import pytensor.tensor as pt

    from pytensor_onnx import export_onnx

    shape = (None, None) if symbolic else (n, n)
    a_var = pt.tensor("a", dtype="float64", shape=shape)
    b_var = pt.tensor("b", dtype="float64", shape=(shape[0], 1))
    model = export_onnx([a_var, b_var], [graph(a_var, b_var)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    feeds = {name: value for name, value in zip(names, [a, b], strict=False)}
    return lambda: session.run(None, feeds)


def measure(sizes: list[int]) -> list[dict[str, Any]]:
    """One row per (operation, size): reference and ONNX Runtime medians in milliseconds."""
    rows = []
    for n in sizes:
        general, spd, rhs = problems(n)
        for name, (graph, reference, matrix) in operations().items():
            a = spd if matrix == "spd" else general
            candidates = {
                "reference": lambda reference=reference, a=a, rhs=rhs: reference(a, rhs),
                "ort_static": ort_runner(graph, n, False, a, rhs),
                "ort_symbolic": ort_runner(graph, n, True, a, rhs),
            }
            times = interleaved_call_times(candidates, samples=7)
            rows.append({"op": name, "n": n, **{k: v * 1e3 for k, v in times.items()}})
            print(
                f"{name:12s} n={n:4d} "
                + "  ".join(f"{k} {v * 1e3:9.2f} ms" for k, v in times.items())
            )
    return rows


def table(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    """The markdown table of ``rows``."""
    lines = [
        f"Measured on {info.get('cpu', '?')} ({info.get('python', '?')}, onnxruntime "
        f"{info.get('packages', {}).get('onnxruntime', '?')}), one thread, float64, medians.",
        "",
        "| operation | n | NumPy/SciPy (ms) | ORT static n (ms) | ORT symbolic n (ms) "
        "| ratio (static) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = row["ort_static"] / row["reference"]
        lines.append(
            f"| {row['op']} | {row['n']} | {row['reference']:.3f} | {row['ort_static']:.2f} | "
            f"{row['ort_symbolic']:.2f} | {ratio:.0f}x |"
        )
    return "\n".join(lines)


def write_doc(text: str, path: Path = DOC) -> None:
    """Replace the text between the benchmark markers of ``path`` with ``text``."""
    doc = path.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--no-write", action="store_true", help="do not update docs/linalg.md")
    args = parser.parse_args()
    info = machine_info()
    rows = measure(args.sizes)
    text = table(rows, info)
    print(text)
    if not args.no_write:
        write_doc(text)
    emit({"benchmark": "linalg", "machine": info, "rows": rows})


if __name__ == "__main__":
    main()
