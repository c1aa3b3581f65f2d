"""Benchmark 5: the cost of linear algebra built from ONNX operators.

ONNX has no Cholesky, LU, solve, eigen or SVD operator; pytensor-onnx builds them from
``Loop``s of vectorized column steps or Jacobi rotations (see ``docs/linalg.md``).  This
script times the exported models in ONNX Runtime against NumPy and SciPy (LAPACK) for
n = 100 and 500 (float64, one right-hand side): Cholesky, general and positive-definite
solves, the inverse and ``slogdet``; and, at n ≤ 100 only, ``eigvalsh``, ``eigh``, ``svd`` and
``pinv``.  Static
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
SPECTRAL_START, SPECTRAL_END = "<!-- spectral:start -->", "<!-- spectral:end -->"


def problems(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A general matrix, an SPD matrix (both well conditioned), a symmetric matrix and a
    right-hand side."""
    rng = np.random.default_rng(seed)
    general = rng.normal(size=(n, n)) + n**0.5 * np.eye(n)
    root = rng.normal(size=(n, n))
    spd = root @ root.T / n + np.eye(n)
    return {
        "general": general,
        "spd": spd,
        "spd_factor": np.linalg.cholesky(spd),
        "symmetric": root + root.T,
        "rhs": rng.normal(size=(n, 1)),
    }


#: Largest size the Jacobi-based (iterative, O(n³) per sweep) operations are timed at.
SPECTRAL_MAX_N = 100


#: name -> (PyTensor graph builder, NumPy/SciPy reference, which matrix it takes)
def operations() -> dict[str, tuple[Callable[..., Any], Callable[..., Any], str]]:
    """The timed operations (the last four only up to :data:`SPECTRAL_MAX_N`)."""
    import pytensor.tensor.linalg as ptla
    import scipy.linalg
    from pytensor.tensor.type_other import NoneConst

    def eigvalsh(a: Any) -> Any:
        try:
            return ptla.eigvalsh(a)
        except TypeError:  # PyTensor 2 needs the missing ``b`` spelled out
            return ptla.eigvalsh(a, NoneConst)

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
        "cho_solve": (
            lambda a, b: ptla.cho_solve((ptla.cholesky(a), True), b),
            lambda a, b: scipy.linalg.cho_solve(
                scipy.linalg.cho_factor(a, lower=True, check_finite=False), b, check_finite=False
            ),
            "spd",
        ),
        "solve_triangular": (
            lambda a, b: ptla.solve_triangular(a, b, lower=True),
            lambda a, b: scipy.linalg.solve_triangular(a, b, lower=True, check_finite=False),
            "spd_factor",
        ),
        "inv": (lambda a, b: ptla.inv(a), lambda a, b: np.linalg.inv(a), "general"),
        "slogdet": (
            lambda a, b: ptla.slogdet(a)[1],
            lambda a, b: np.linalg.slogdet(a)[1],
            "general",
        ),
        "eigvalsh": (
            lambda a, b: eigvalsh(a),
            lambda a, b: np.linalg.eigvalsh(a),
            "symmetric",
        ),
        "eigh": (lambda a, b: ptla.eigh(a), lambda a, b: np.linalg.eigh(a), "symmetric"),
        "svd": (lambda a, b: ptla.svd(a), lambda a, b: np.linalg.svd(a), "general"),
        "pinv": (lambda a, b: ptla.pinv(a), lambda a, b: np.linalg.pinv(a), "general"),
    }


SPECTRAL = ("eigvalsh", "eigh", "svd", "pinv")


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
    outputs = graph(a_var, b_var)
    model = export_onnx(
        [a_var, b_var], list(outputs) if isinstance(outputs, list | tuple) else [outputs]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    feeds = {name: value for name, value in zip(names, [a, b], strict=False)}
    return lambda: session.run(None, feeds)


def measure(sizes: list[int], names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (operation, size): reference and ONNX Runtime medians in milliseconds.

    ``names`` restricts the run to those operations (all by default).
    """
    rows = []
    for n in sizes:
        matrices = problems(n)
        rhs = matrices["rhs"]
        for name, (graph, reference, matrix) in operations().items():
            if (name in SPECTRAL and n > SPECTRAL_MAX_N) or (names and name not in names):
                continue
            a = matrices[matrix]
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


def gp_marginal_runners(n: int) -> dict[str, Callable[[], Any]]:
    """Calls of the logp and gradient of a ``pm.gp.Marginal`` (ExpQuad) model with ``n``
    observations: ONNX Runtime (one thread), PyTensor's default (C) backend and Numba."""
    import onnxruntime as ort
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    from pytensor_onnx import export_onnx

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 10.0, size=(n, 1))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)
    with pm.Model() as model:
        ls = pm.Gamma("ls", 2.0, 1.0)
        eta = pm.HalfNormal("eta", 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        gp = pm.gp.Marginal(cov_func=eta**2 * pm.gp.cov.ExpQuad(1, ls=ls))
        gp.marginal_likelihood("y", X=x, y=y, sigma=sigma)
    inputs = model.value_vars
    logp = model.logp()
    outputs = [logp, *pt.grad(logp, inputs)]
    point = model.initial_point()
    values = [np.asarray(point[v.name]) for v in inputs]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        export_onnx(inputs, outputs).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    feeds = {i.name: v for i, v in zip(session.get_inputs(), values, strict=True)}
    c_function = pytensor.function(inputs, outputs)
    numba_function = pytensor.function(inputs, outputs, mode="NUMBA")
    return {
        "pytensor_c": lambda: c_function(*values),
        "numba": lambda: numba_function(*values),
        "ort_static": lambda: session.run(None, feeds),
    }


def measure_gp(sizes: list[int]) -> list[dict[str, Any]]:
    """One row per size: GP marginal logp+grad medians (ms) of each backend."""
    rows = []
    for n in sizes:
        times = interleaved_call_times(gp_marginal_runners(n), samples=7)
        rows.append({"n": n, **{k: v * 1e3 for k, v in times.items()}})
        print(f"gp n={n:4d} " + "  ".join(f"{k} {v * 1e3:9.2f} ms" for k, v in times.items()))
    return rows


def gp_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the GP rows."""
    lines = [
        "| GP marginal logp+grad | PyTensor C (ms) | Numba (ms) | ORT (ms) | ORT / C |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = row["ort_static"] / row["pytensor_c"]
        lines.append(
            f"| n={row['n']} | {row['pytensor_c']:.2f} | {row['numba']:.2f} | "
            f"{row['ort_static']:.2f} | {ratio:.1f}x |"
        )
    return "\n".join(lines)


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


def write_doc(text: str, start: str = START, end: str = END, path: Path = DOC) -> None:
    """Replace the text between the markers ``start`` and ``end`` of ``path`` with ``text``."""
    doc = path.read_text()
    head, _, rest = doc.partition(start)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def _spectral_run(n: int, a: np.ndarray, max_sweeps: int) -> list[np.ndarray]:
    """``eigh`` and ``svd`` of ``a`` in ONNX Runtime with the sweeps capped at ``max_sweeps``."""
    import pytensor.tensor as pt
    import pytensor.tensor.linalg as ptla

    from pytensor_onnx import export_onnx
    from pytensor_onnx.dispatch import _jacobi

    saved, _jacobi.MAX_SWEEPS = _jacobi.MAX_SWEEPS, max_sweeps
    try:
        x = pt.tensor("x", dtype="float64", shape=(n, n))
        model = export_onnx([x], [*ptla.eigh(x), *ptla.svd(x)])
    finally:
        _jacobi.MAX_SWEEPS = saved
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(r) for r in session.run(None, {"x": a})]


def _sweeps(n: int, a: np.ndarray, final: list[np.ndarray], which: slice) -> int:
    """The fewest sweeps whose capped result equals the converged one (``which`` outputs)."""
    from pytensor_onnx.dispatch import _jacobi

    for sweeps in range(1, _jacobi.MAX_SWEEPS + 1):
        capped = _spectral_run(n, a, sweeps)[which]
        if all(np.array_equal(c, f) for c, f in zip(capped, final[which], strict=True)):
            return sweeps
    return _jacobi.MAX_SWEEPS


def spectral_accuracy(sizes: list[int], conditions: list[float]) -> list[dict[str, Any]]:
    """Errors of ``eigh``/``svd`` against LAPACK and the sweeps they took (float64)."""
    rows = []
    rng = np.random.default_rng(1)
    for n in sizes:
        for cond in conditions:
            q, _ = np.linalg.qr(rng.normal(size=(n, n)))
            p, _ = np.linalg.qr(rng.normal(size=(n, n)))
            values = np.logspace(0, -np.log10(cond), n) * np.where(np.arange(n) % 2, -1, 1)
            symmetric = (q * values) @ q.T
            symmetric = (symmetric + symmetric.T) / 2
            general = (q * np.abs(values)) @ p.T
            a = np.where(np.tri(n, dtype=bool), symmetric, general)  # eigh reads the lower part
            w, v, u, s, vt = final = _spectral_run(n, a, 40)
            w_ref = np.linalg.eigvalsh(symmetric)
            s_ref = np.linalg.svd(a, compute_uv=False)
            rows.append(
                {
                    "n": n,
                    "cond": cond,
                    "eigh_sweeps": _sweeps(n, a, final, slice(0, 2)),
                    "svd_sweeps": _sweeps(n, a, final, slice(2, 5)),
                    "eigenvalue_error": float(np.abs(w - w_ref).max() / np.abs(w_ref).max()),
                    "eigen_residual": float(
                        np.abs(symmetric @ v - v * w).max() / np.abs(w_ref).max()
                    ),
                    "eigen_orthogonality": float(np.abs(v.T @ v - np.eye(n)).max()),
                    "singular_value_error": float(np.abs(s - s_ref).max() / s_ref[0]),
                    "svd_residual": float(np.abs((u * s) @ vt - a).max() / s_ref[0]),
                    "svd_orthogonality": float(
                        max(np.abs(u.T @ u - np.eye(n)).max(), np.abs(vt @ vt.T - np.eye(n)).max())
                    ),
                }
            )
            print(rows[-1])
    return rows


def spectral_table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of :func:`spectral_accuracy`."""
    lines = [
        "Measured by `benchmarks/bench_linalg.py` (ONNX Runtime, float64): errors relative to "
        "the largest eigen/singular value; sweeps = the fewest that give the converged result.",
        "",
        "| n | cond | eigh sweeps | eigenvalues | ‖AV - VΛ‖ | ‖VᵀV - I‖ | SVD sweeps "
        "| singular values | ‖UΣVᵀ - A‖ | ‖UᵀU - I‖, ‖VVᵀ - I‖ |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['cond']:.0e} | {r['eigh_sweeps']} | {r['eigenvalue_error']:.1e} "
            f"| {r['eigen_residual']:.1e} | {r['eigen_orthogonality']:.1e} | {r['svd_sweeps']} "
            f"| {r['singular_value_error']:.1e} | {r['svd_residual']:.1e} "
            f"| {r['svd_orthogonality']:.1e} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument(
        "--spectral-sizes",
        type=int,
        nargs="+",
        default=[5, 32, 100],
        help="sizes of the eigh/SVD accuracy and sweep-count table",
    )
    parser.add_argument(
        "--operations",
        nargs="+",
        choices=sorted(operations()),
        help="time only these operations (the docs are then not updated)",
    )
    parser.add_argument(
        "--gp-sizes",
        type=int,
        nargs="+",
        help="time only the GP marginal logp+grad at these sizes (docs not updated)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not update docs/linalg.md")
    args = parser.parse_args()
    if args.gp_sizes:
        print(gp_table(measure_gp(args.gp_sizes)))
        return
    if args.operations:
        rows = measure(args.sizes, args.operations)
        print(table(rows, machine_info()))
        return
    info = machine_info()
    accuracy = spectral_accuracy(args.spectral_sizes, [10.0, 1e8])
    accuracy_text = spectral_table(accuracy)
    print(accuracy_text)
    rows = measure(args.sizes)
    text = table(rows, info)
    print(text)
    if not args.no_write:
        write_doc(text)
        write_doc(accuracy_text, SPECTRAL_START, SPECTRAL_END)
    emit({"benchmark": "linalg", "machine": info, "rows": rows, "spectral": accuracy})


if __name__ == "__main__":
    main()
