"""Benchmarks 3 and 4: ``mode="ONNX"`` against PyTensor's own backends, and its call overhead.

3. Median call latency of the same compiled graph in ``mode="ONNX"``, in PyTensor's default
   backend (C VM on PyTensor 2.x, Numba on 3.x) and with the Python linker (``fast_run``
   rewrites without elementwise fusion), for: the MLP
   forward pass (batch 1 and 256, float32), an elementwise-heavy float64 graph, a
   PyMC-style logistic-regression log-density with its gradient (N=10,000 observations),
   and, where PyMC is installed, the log-density and gradient of two PyMC models (an
   eight-schools-like hierarchical model, 1,000 observations; a linear regression, 10,000).
   For the MLP, the model from ``export_onnx`` (weights as initializers) is timed too.
4. Per-call overhead of ``mode="ONNX"`` over ``InferenceSession.run`` on the very session the
   mode compiled: the linker's thunk alone, and ``fn(...)`` with and without ``trust_input``.

All ONNX Runtime sessions use ``--threads`` intra-op threads (default 1); run with
``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` set to the same number for a fair comparison
(``run_all.py`` does).  Usage: ``python benchmarks/bench_backends.py``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MLP_SIZES, emit, interleaved_call_times, pytensor_mlp

LOGREG_N = 10_000
LOGREG_D = 10
ELEMWISE_SIZE = 100_000
HIER_N = 1_000
HIER_GROUPS = 8
LINREG_N = 10_000
LINREG_D = 5

#: A benchmark graph: inputs, outputs, and one value per input.
Graph = tuple[list[Any], list[Any], list[np.ndarray]]


def session_options(threads: int) -> Any:
    """``onnxruntime.SessionOptions`` with ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return options


def modes(threads: int) -> dict[str, Any]:
    """The modes compared: ONNX (shared values as inputs, and baked in with
    ``constant_shared``), PyTensor's default backend, and the Python linker."""
    import pytensor
    from pytensor.compile.mode import Mode, get_mode

    from pytensor_onnx import ONNXMode

    default = get_mode("FAST_RUN")
    linker = type(default.linker).__name__
    default_name = {"NumbaLinker": "Numba", "CVM": "C (CVM)", "VMLinker": "C (CVM)"}.get(
        linker, linker
    )
    if pytensor.config.cxx == "" and default_name.startswith("C"):
        default_name = "Python VM (no C compiler)"
    return {
        "ONNX": ONNXMode(session_options=session_options(threads)),
        "ONNX constant_shared": ONNXMode(
            session_options=session_options(threads), constant_shared=True
        ),
        default_name: default,
        # Without fusion: the Python implementation of a fused ``Composite`` loops over
        # elements in Python (seconds per call here), which says nothing about the linker.
        "Python": Mode(linker="py", optimizer="fast_run").excluding("fusion"),
    }


def elementwise_graph() -> Graph:
    """About twenty elementwise float64 operations on a 100,000-vector."""
    import pytensor.tensor as pt

    x = pt.tensor("x", dtype="float64", shape=(None,))
    y = pt.exp(-(x**2)) * pt.sin(3.0 * x) + pt.log1p(pt.abs(x)) * pt.tanh(x)
    y = y - pt.sqrt(x**2 + 1.0) / (1.0 + pt.exp(-x)) + pt.cos(x) ** 2
    value = np.random.default_rng(0).normal(size=ELEMWISE_SIZE)
    return [x], [y], [value]


def logistic_regression_graph() -> Graph:
    """Log-density (Bernoulli-logit likelihood, normal prior) and its gradient in ``beta``.

    The data are shared variables (as ``pm.Data`` would be); ``beta`` is the input.
    """
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    data = rng.normal(size=(LOGREG_N, LOGREG_D))
    true_beta = rng.normal(size=LOGREG_D)
    labels = (rng.random(LOGREG_N) < 1 / (1 + np.exp(-data @ true_beta))).astype("float64")
    x = pytensor.shared(data, name="X")
    y = pytensor.shared(labels, name="y")
    beta = pt.tensor("beta", dtype="float64", shape=(LOGREG_D,))
    eta = x @ beta
    logp = (y * eta - pt.softplus(eta)).sum() - 0.5 * (beta**2).sum()
    return [beta], [logp, pytensor.grad(logp, beta)], [rng.normal(size=LOGREG_D)]


def _pymc_logp_grad(model: Any) -> Graph:
    """A PyMC model's joint log-density and its gradient in every value variable (what a
    sampler such as nutpie evaluates), at the model's initial point."""
    import pytensor

    values = model.value_vars
    logp = model.logp()
    point = model.initial_point()
    return values, [logp, *pytensor.grad(logp, values)], [point[v.name] for v in values]


def hierarchical_graph() -> Graph:
    """An eight-schools-like hierarchical normal model with 1,000 observations in 8 groups
    (non-centered group effects indexed by an integer group vector)."""
    import pymc as pm

    rng = np.random.default_rng(2)
    group = rng.integers(0, HIER_GROUPS, HIER_N)
    sigma = rng.uniform(5.0, 20.0, HIER_N)
    y = rng.normal(5.0 + rng.normal(0.0, 3.0, HIER_GROUPS)[group], sigma)
    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta = pm.Normal("theta", 0.0, 1.0, shape=HIER_GROUPS)
        pm.Normal("obs", mu + tau * theta[group], sigma, observed=y)
    return _pymc_logp_grad(model)


def linear_regression_graph() -> Graph:
    """A PyMC linear regression (5 predictors, intercept, half-normal noise scale) on
    10,000 observations."""
    import pymc as pm

    rng = np.random.default_rng(3)
    data = rng.normal(size=(LINREG_N, LINREG_D))
    y = data @ rng.normal(size=LINREG_D) + rng.normal(size=LINREG_N)
    with pm.Model() as model:
        beta = pm.Normal("beta", 0.0, 1.0, shape=LINREG_D)
        alpha = pm.Normal("alpha", 0.0, 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("y", alpha + pm.math.dot(data, beta), sigma, observed=y)
    return _pymc_logp_grad(model)


def mlp_graph(batch: int) -> Graph:
    """The MLP forward pass on a float32 batch."""
    x, probabilities, _ = pytensor_mlp("float32")
    value = np.random.default_rng(batch).normal(size=(batch, MLP_SIZES[0])).astype("float32")
    return [x], [probabilities], [value]


WORKLOADS: dict[str, Callable[[], Graph]] = {
    "MLP forward, batch 1": lambda: mlp_graph(1),
    "MLP forward, batch 256": lambda: mlp_graph(256),
    f"elementwise, {ELEMWISE_SIZE:,} float64": elementwise_graph,
    f"logistic regression logp+grad, N={LOGREG_N:,}": logistic_regression_graph,
    f"PyMC hierarchical logp+grad, {HIER_N:,} obs": hierarchical_graph,
    f"PyMC linear regression logp+grad, {LINREG_N:,} obs": linear_regression_graph,
}


def compare_backends(threads: int) -> list[dict[str, Any]]:
    """Benchmark 3: compile time and median latency of every workload in every mode."""
    import onnxruntime as ort
    import pytensor

    from pytensor_onnx import export_onnx

    rows = []
    for workload, make in WORKLOADS.items():
        if workload.startswith("PyMC") and importlib.util.find_spec("pymc") is None:
            continue
        inputs, outputs, values = make()
        row: dict[str, Any] = {"workload": workload, "compile": {}}
        calls: dict[str, Callable[[], Any]] = {}
        expected = None
        for name, mode in modes(threads).items():
            start = time.perf_counter()
            fn = pytensor.function(inputs, outputs, mode=mode)
            row["compile"][name] = time.perf_counter() - start
            result = fn(*values)
            if expected is None:
                expected = result
            for got, want in zip(result, expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
            calls[name] = lambda fn=fn, values=values: fn(*values)
        if workload.startswith("MLP"):
            model = export_onnx(inputs, outputs).SerializeToString()
            session = ort.InferenceSession(
                model, session_options(threads), providers=["CPUExecutionProvider"]
            )
            feeds = {session.get_inputs()[0].name: values[0]}
            calls["ORT, exported model"] = lambda s=session, f=feeds: s.run(None, f)
        row["latency"] = interleaved_call_times(calls)
        rows.append(row)
    return rows


def small_graph() -> Graph:
    """A tiny graph, where per-call overhead matters most."""
    import pytensor.tensor as pt

    x = pt.tensor("x", dtype="float64", shape=(None,))
    return [x], [pt.exp(x) * 2.0 + 1.0], [np.linspace(0.0, 1.0, 10)]


def overhead_row(name: str, graph: Graph, threads: int) -> dict[str, Any]:
    """Median call time of one graph along the call path of ``mode="ONNX"``.

    Every candidate uses the one session of one compiled function (separate sessions of the
    same model differ by a few percent), with the feeds the mode passes (the user's inputs,
    then the shared variables' values):

    - ``raw``: ``InferenceSession.run(output_names, feeds)``, ONNX Runtime's Python API;
    - ``binding``: ``session._sess.run(output_names, feeds, None)``, its C++ binding, without
      the Python wrapper's per-call checks;
    - ``thunk``: the linker's thunk alone (``fn.vm()``, the input storage already filled);
    - ``mode``: ``fn(...)``; ``mode_trust_input``: the same with ``fn.trust_input = True``.
    """
    import pytensor

    from pytensor_onnx import ONNXMode

    inputs, outputs, values = graph
    fn = pytensor.function(inputs, outputs, mode=ONNXMode(session_options=session_options(threads)))
    session = fn.maker.linker.session
    feed_values = [*values, *(c.storage[0] for c in fn.input_storage[len(values) :])]
    feeds = {i.name: v for i, v in zip(session.get_inputs(), feed_values, strict=True)}
    output_names = [o.name for o in session.get_outputs()]
    binding = session._sess

    def trusting(flag: bool) -> Callable[[], None]:
        def switch() -> None:
            fn.trust_input = flag

        return switch

    def fill_input_storage() -> None:
        for container, value in zip(fn.input_storage, feed_values, strict=True):
            container.storage[0] = value

    times = interleaved_call_times(
        {
            "raw": lambda: session.run(output_names, feeds),
            "binding": lambda: binding.run(output_names, feeds, None),
            "thunk": fn.vm,
            "mode": lambda: fn(*values),
            "mode_trust_input": lambda: fn(*values),
        },
        samples=101,
        min_sample_time=0.01,
        setups={
            "thunk": fill_input_storage,
            "mode": trusting(False),
            "mode_trust_input": trusting(True),
        },
    )
    return {"graph": name, **times}


def call_overhead(threads: int) -> list[dict[str, Any]]:
    """Benchmark 4: ``fn(...)`` in mode ONNX vs ``InferenceSession.run`` on its model."""
    return [
        overhead_row("exp(x)*2+1, 10 float64", small_graph(), threads),
        overhead_row("MLP forward, batch 1", mlp_graph(1), threads),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    args = parser.parse_args()
    import pytensor

    emit(
        {
            "benchmark": "backends",
            "pytensor": pytensor.__version__,
            "threads": args.threads,
            "backends": compare_backends(args.threads),
            "overhead": call_overhead(args.threads),
        }
    )


if __name__ == "__main__":
    main()
