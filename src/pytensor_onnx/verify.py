"""Check an exported model against PyTensor: per-output errors, timings, first diverging node.

:func:`verify` runs the ONNX model in ONNX Runtime and ``onnx.reference``, evaluates the
PyTensor graph on the same inputs, and compares every output.  The returned
:class:`VerificationReport` prints as a table and renders as Markdown.  With
``intermediates=True`` every intermediate PyTensor variable that has an ONNX value is
compared too, and the first node whose value diverges is reported.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import pytensor
from pytensor.compile import Function
from pytensor.compile.mode import Mode
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import graph_inputs
from pytensor.scan.op import Scan
from pytensor.tensor.basic import AllocEmpty

from pytensor_onnx import runtimes as runtime_adapters
from pytensor_onnx.builder import is_random_generator
from pytensor_onnx.storage import check_untrusted_model

PathLike = str | os.PathLike[str]
Source = Function | tuple[Sequence[Variable], Variable | Sequence[Variable]]
Tolerance = float | Mapping[str, float] | None

#: Default ``(rtol, atol)`` by the dtype the model computes in.  They are looser than the
#: converter tests' because PyTensor and ONNX Runtime sum and fuse in different orders, and
#: a float32 model is compared with a float64 PyTensor graph.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-10),
    "float32": (1e-4, 1e-6),
    "float16": (1e-2, 1e-3),
}

RUNTIMES = ("onnxruntime", "onnx.reference")


class VerificationError(AssertionError):
    """Raised by ``export_onnx(..., verify=...)`` when the model disagrees with PyTensor.

    Attributes
    ----------
    report
        The :class:`VerificationReport` that failed.
    """

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        super().__init__(f"the exported model does not match PyTensor:\n{report}")


@dataclass(frozen=True)
class OutputCheck:
    """The comparison of one model output, from one runtime, with the reference."""

    name: str
    runtime: str
    dtype: str
    reference_dtype: str
    shape: tuple[int, ...]
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    passed: bool
    problem: str = ""


@dataclass(frozen=True)
class Divergence:
    """The first PyTensor variable whose ONNX value disagrees with PyTensor's."""

    index: int
    node: str
    op: str
    variable: str
    onnx_value: str
    max_abs_error: float
    max_rel_error: float
    problem: str = ""


@dataclass
class VerificationReport:
    """What :func:`verify` found.

    Attributes
    ----------
    checks
        One :class:`OutputCheck` per output and runtime.
    timings
        Wall-clock seconds per step (``export``, ``pytensor run``, ``onnxruntime load``,
        ``onnxruntime run``, ``onnx.reference run`` (``onnx.reference load+run`` with a
        timeout), ``intermediates``); runs are timed after a warm-up call (see ``repeat``).
    reference
        What the outputs were compared with (``"pytensor"``, or ``"onnx.reference"``
        when only a model was given).
    first_divergence
        With ``intermediates=True``: the first diverging intermediate value, if any.
    intermediates_checked
        How many intermediate values were compared (0 when not requested).
    failures
        Runtimes (asked for with ``runtimes=``) that could not load or run the model, with
        the runtime's message.
    """

    checks: list[OutputCheck]
    timings: dict[str, float] = field(default_factory=dict)
    reference: str = "pytensor"
    first_divergence: Divergence | None = None
    intermediates_checked: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether every runtime ran the model and every output matched within its
        tolerances (and nothing diverged)."""
        return (
            all(c.passed for c in self.checks)
            and self.first_divergence is None
            and not self.failures
        )

    def _failure_lines(self) -> list[str]:
        return [
            f"{name} did not run the model: {message}" for name, message in self.failures.items()
        ]

    def _rows(self) -> list[list[str]]:
        rows = []
        for c in self.checks:
            dtype = c.dtype if c.dtype == c.reference_dtype else f"{c.reference_dtype}->{c.dtype}"
            rows.append(
                [
                    c.name,
                    c.runtime,
                    dtype,
                    "x".join(map(str, c.shape)) or "()",
                    f"{c.max_abs_error:.3g}",
                    f"{c.max_rel_error:.3g}",
                    f"{c.rtol:.0e}/{c.atol:.0e}",
                    "pass" if c.passed else f"FAIL {c.problem}".strip(),
                ]
            )
        return rows

    _HEADER = ("output", "runtime", "dtype", "shape", "max abs err", "max rel err",
               "rtol/atol", "result")  # fmt: skip

    def _divergence_lines(self) -> list[str]:
        if not self.intermediates_checked:
            return []
        d = self.first_divergence
        if d is None:
            return [f"{self.intermediates_checked} intermediate values match."]
        detail = (
            d.problem or f"max abs err {d.max_abs_error:.3g}, max rel err {d.max_rel_error:.3g}"
        )
        return [
            f"First diverging node ({d.index + 1} of {self.intermediates_checked} intermediate "
            f"values): {d.op} computing `{d.variable}` (ONNX value `{d.onnx_value}`): {detail}"
        ]

    def _timing_text(self) -> str:
        return ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in self.timings.items())

    def __str__(self) -> str:
        rows = [list(self._HEADER), *self._rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self._HEADER))]
        lines = [f"Verification against {self.reference}: {'PASSED' if self.passed else 'FAILED'}"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
        lines += self._failure_lines()
        lines += self._divergence_lines()
        if self.timings:
            lines.append(f"Timings: {self._timing_text()}")
        return "\n".join(line.rstrip() for line in lines)

    def to_markdown(self) -> str:
        """The report as a Markdown section (a table of outputs, divergence and timings)."""
        lines = [
            f"**Verification against {self.reference}: {'passed' if self.passed else 'FAILED'}**",
            "",
            "| " + " | ".join(self._HEADER) + " |",
            "|" + "---|" * len(self._HEADER),
        ]
        lines += ["| " + " | ".join(r) + " |" for r in self._rows()]
        extra = self._failure_lines() + self._divergence_lines()
        if extra:
            lines += ["", *extra]
        if self.timings:
            lines += ["", f"Timings: {self._timing_text()}"]
        return "\n".join(lines) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# ----------------------------------------------------------------------------- comparison
def _tolerance(value: Tolerance, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, Mapping):
        return float(value.get(name, default))
    return float(value)


def _errors(actual: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise absolute and relative errors; matching NaNs/infinities count as exact."""
    if actual.dtype == bool or expected.dtype == bool:
        actual, expected = actual.astype(np.int8), expected.astype(np.int8)
    a = actual.astype(np.float64)
    b = expected.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        abs_err = np.where(same, 0.0, np.abs(a - b))
        abs_err = np.where(np.isnan(abs_err), np.inf, abs_err)
        rel_err = np.where(b != 0, abs_err / np.abs(np.where(b != 0, b, 1.0)), 0.0)
    return abs_err, rel_err


def compare_arrays(
    actual: Any, expected: Any, rtol: float, atol: float
) -> tuple[float, float, bool, str]:
    """Compare one output with its reference.

    Returns
    -------
    max_abs_error, max_rel_error, passed, problem
        ``problem`` explains a shape mismatch; relative errors ignore reference zeros.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return np.inf, np.inf, False, f"shape {actual.shape} != {expected.shape}"
    if actual.size == 0:
        return 0.0, 0.0, True, ""
    abs_err, rel_err = _errors(actual, expected)
    reference = expected.astype(np.float64)
    # A non-finite reference must be matched exactly (inf vs -inf is not "close").
    bound = np.where(np.isfinite(reference), atol + rtol * np.abs(reference), 0.0)
    passed = bool(np.all((abs_err == 0) | (abs_err <= bound)))
    return float(abs_err.max()), float(rel_err.max()), passed, ""


def _default_tolerances(dtype: str) -> tuple[float, float]:
    return DEFAULT_TOLERANCES.get(dtype, (0.0, 0.0))


# ------------------------------------------------------------------------------- running
class _Clock:
    """Wall-clock timings of the verification steps."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def run(self, what: str, fn: Callable[[], Any], repeat: int = 0) -> Any:
        """Call ``fn`` and time it; with ``repeat`` > 0, the first call is a warm-up (JIT
        compilation, allocations) and the timing is the best of ``repeat`` more calls."""
        start = time.perf_counter()
        result = fn()
        best = time.perf_counter() - start
        if repeat > 0:
            best = np.inf
            for _ in range(repeat):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
        self.timings[what] = best
        return result


def _model_proto(model: onnx.ModelProto | PathLike) -> onnx.ModelProto:
    """The model proto, without external data; a model file is checked first
    (:func:`~pytensor_onnx.storage.check_untrusted_model`)."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = os.fspath(model)
    proto = onnx.load(path, load_external_data=False)
    check_untrusted_model(proto, Path(path).parent)
    return proto


def _reference_evaluator(model: onnx.ModelProto | PathLike) -> Any:
    from onnx.reference import ReferenceEvaluator

    if isinstance(model, onnx.ModelProto):
        return ReferenceEvaluator(model)
    return ReferenceEvaluator(os.fspath(model))


def _onnx_dtype_name(elem_type: int) -> str:
    return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))


def _source_graph(source: Source) -> tuple[list[Variable], list[Variable], Mode | None]:
    """User inputs, outputs and compile mode of a function or an (inputs, outputs) pair."""
    if isinstance(source, Function):
        maker = source.maker
        inputs = [i.variable for i in maker.inputs if not isinstance(i.variable, SharedVariable)]
        return inputs, [o.variable for o in maker.outputs], maker.mode
    src_inputs, src_outputs = source
    outs = [src_outputs] if isinstance(src_outputs, Variable) else list(src_outputs)
    return list(src_inputs), outs, None


def _feeds(
    proto: onnx.ModelProto,
    values: Sequence[Any] | Mapping[str, Any],
    shared: Mapping[str, SharedVariable],
) -> dict[str, np.ndarray]:
    """Model inputs: ``values`` by position or name, the others from shared variables."""
    from pytensor_onnx.export import feeds_by_name

    model_inputs = list(proto.graph.input)
    if isinstance(values, Mapping):
        given = feeds_by_name(proto, values)
    else:
        if len(values) > len(model_inputs):
            raise ValueError(
                f"{len(values)} input values for a model with {len(model_inputs)} inputs"
            )
        given = {inp.name: val for inp, val in zip(model_inputs, values, strict=False)}
    feeds = {}
    for inp in model_inputs:
        if inp.name in given:
            value = given[inp.name]
        elif inp.name in shared:
            value = shared[inp.name].get_value(borrow=True)
        else:
            raise ValueError(f"no value given for model input {inp.name!r}")
        dtype = _onnx_dtype_name(inp.type.tensor_type.elem_type)
        feeds[inp.name] = np.asarray(value).astype(dtype, copy=False)
    return feeds


def random_inputs(
    proto: onnx.ModelProto, *, seed: int = 0, unknown_dim: int = 3
) -> dict[str, np.ndarray]:
    """Random values for every input of ``proto`` (standard normal floats, small integers).

    Unknown (symbolic) dims get length ``unknown_dim``; dims sharing a name share a length.
    """
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in proto.graph.input:
        dtype = np.dtype(_onnx_dtype_name(inp.type.tensor_type.elem_type))
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else unknown_dim
            for d in inp.type.tensor_type.shape.dim
        )
        if dtype.kind == "f":
            feeds[inp.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[inp.name] = rng.random(shape) < 0.5
        else:
            feeds[inp.name] = rng.integers(0, 5, size=shape).astype(dtype)
    return feeds


def _compare_outputs(
    proto: onnx.ModelProto,
    results: Mapping[str, Sequence[Any]],
    expected: Sequence[Any],
    rtol: Tolerance,
    atol: Tolerance,
) -> list[OutputCheck]:
    checks = []
    for runtime, outputs in results.items():
        computes_as = runtime_adapters.COMPUTES_FLOAT64_AS.get(runtime)
        for out, got, want in zip(proto.graph.output, outputs, expected, strict=True):
            dtype = _onnx_dtype_name(out.type.tensor_type.elem_type)
            # A runtime that computes float64 in float32 (OpenVINO) gets float32 tolerances.
            precision = computes_as if computes_as and dtype == "float64" else dtype
            default_rtol, default_atol = _default_tolerances(precision)
            r = _tolerance(rtol, out.name, default_rtol)
            a = _tolerance(atol, out.name, default_atol)
            got = np.asarray(got)
            want = np.asarray(want)
            problem = ""
            if got.dtype not in (np.dtype(dtype), np.dtype(precision)):
                problem = f"{runtime} returned {got.dtype}, model declares {dtype}"
            max_abs, max_rel, ok, shape_problem = compare_arrays(got, want, r, a)
            checks.append(
                OutputCheck(
                    name=out.name,
                    runtime=runtime,
                    dtype=dtype,
                    reference_dtype=str(want.dtype),
                    shape=tuple(got.shape),
                    max_abs_error=max_abs,
                    max_rel_error=max_rel,
                    rtol=r,
                    atol=a,
                    passed=ok and not problem,
                    problem=problem or shape_problem,
                )
            )
    return checks


def _run_runtimes(
    model: onnx.ModelProto | PathLike,
    feeds: Mapping[str, np.ndarray],
    clock: _Clock,
    reference: bool,
    repeat: int,
    others: Sequence[str] = (),
    timeout: float | None = None,
) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """Outputs of ONNX Runtime, ``onnx.reference`` (with ``reference``) and the ``others``
    (see :mod:`pytensor_onnx.runtimes`), and the messages of those that failed.

    Each run may take ``timeout`` seconds; ONNX Runtime or ``onnx.reference`` taking longer
    raises :class:`~pytensor_onnx.runtimes.RunTimeout`, another runtime fails the report.
    """
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else os.fspath(model)
    session = clock.run("onnxruntime load", lambda: runtime_adapters.ort_session(source))
    results = {
        "onnxruntime": clock.run(
            "onnxruntime run",
            lambda: runtime_adapters.run_session(session, feeds, timeout),
            repeat,
        )
    }
    if reference and timeout is None:
        evaluator = _reference_evaluator(model)
        results["onnx.reference"] = clock.run(
            "onnx.reference run", lambda: evaluator.run(None, dict(feeds))
        )
    elif reference:  # in a child process that can be stopped
        results["onnx.reference"] = clock.run(
            "onnx.reference load+run",
            functools.partial(runtime_adapters.run, "onnx.reference", model, feeds, timeout),
        )
    failures = {}
    for name in others:
        if name in results:
            continue
        try:
            results[name] = clock.run(
                f"{name} load+run",
                functools.partial(runtime_adapters.run, name, model, feeds, timeout),
            )
        except runtime_adapters.RuntimeFailure as err:
            failures[name] = str(err).removeprefix(f"{name}: ")
    return results, failures


def _runtime_names(runtimes: Sequence[str]) -> list[str]:
    """Canonical names, ``"all"`` expanded; a missing optional runtime raises here, before
    any work, naming the extra to install."""
    names = runtime_adapters.RUNTIMES if "all" in runtimes else runtimes
    canonical = [runtime_adapters.canonical_name(name) for name in names]
    for name in canonical:
        if not runtime_adapters.is_available(name):
            raise runtime_adapters.RuntimeUnavailable(
                f"the {name} runtime is not installed: pip install 'pytensor-onnx[runtimes]'"
            )
    return list(dict.fromkeys(canonical))


# ------------------------------------------------------------------------- intermediates
def _first_divergence(
    source: Source,
    feeds: Mapping[str, np.ndarray],
    export_kwargs: Mapping[str, Any],
    rtol: Tolerance,
    atol: Tolerance,
    timeout: float | None,
) -> tuple[Divergence | None, int]:
    """Compare every intermediate value of the converted graph with PyTensor's."""
    from pytensor_onnx.export import DEFAULT_OPSET, build_model, capture

    fn_or_inputs, outputs = (source, None) if isinstance(source, Function) else source
    captured = capture(
        fn_or_inputs,
        outputs,
        shared_inputs=export_kwargs.get("shared_inputs", ()),
        include_updates=export_kwargs.get("include_updates", False),
        float32=export_kwargs.get("float32", False),
    )
    value_map: dict[Variable, ir.Value] = {}
    model = build_model(
        captured,
        opset=export_kwargs.get("opset", DEFAULT_OPSET),
        value_map=value_map,
        portable=export_kwargs.get("portable", True),
    )
    fgraph = captured.fgraph
    graph_input_names = {str(v.name) for v in model.graph.inputs}
    candidates: list[tuple[Variable, ir.Value]] = []
    # Values holding uninitialized memory (AllocEmpty buffers, partly filled copies) differ
    # between runtimes by nature; Scan fills its output buffers, so they stop the taint.
    undefined: set[Variable] = set()
    for node in fgraph.toposort():
        if isinstance(node.op, AllocEmpty) or (
            not isinstance(node.op, Scan) and any(i in undefined for i in node.inputs)
        ):
            undefined.update(node.outputs)
            continue
        for var in node.outputs:
            value = value_map.get(var)
            if value is None or getattr(var.type, "ndim", None) is None:
                continue
            producer = value.producer()
            if producer is None or producer.graph is not model.graph:
                continue
            if not value.is_graph_output():
                model.graph.outputs.append(value)
            candidates.append((var, value))
    if not candidates:
        return None, 0
    proto = ir.serde.serialize_model(model)
    session = runtime_adapters.ort_session(proto.SerializeToString())
    run_feeds = {name: feeds[name] for name in graph_input_names}
    names = [str(value.name) for _, value in candidates]
    onnx_values = runtime_adapters.run_session(session, run_feeds, timeout, names)

    n_inputs = len(captured.input_names)
    input_values = [run_feeds[str(v.name)] for v in model.graph.inputs][:n_inputs]
    input_values += [array for _, array in captured.initializers]
    # Fresh inputs stand for the graph's inputs, some of which are shared-variable clones.
    fresh = [var.type() for var in fgraph.inputs]
    fn = pytensor.function(
        fresh,
        [var for var, _ in candidates],
        givens=list(zip(fgraph.inputs, fresh, strict=True)),
        mode=Mode(linker="py", optimizer="None"),
        on_unused_input="ignore",
        accept_inplace=True,
    )
    pytensor_values = fn(*input_values)
    for index, ((var, value), got, want) in enumerate(
        zip(candidates, onnx_values, pytensor_values, strict=True)
    ):
        dtype = str(var.type.dtype)
        default_rtol, default_atol = _default_tolerances(dtype)
        r = _tolerance(rtol, value.name or "", default_rtol)
        a = _tolerance(atol, value.name or "", default_atol)
        max_abs, max_rel, ok, problem = compare_arrays(got, want, r, a)
        if not ok:
            node = var.owner
            return (
                Divergence(
                    index=index,
                    node=str(node),
                    op=str(node.op) if node is not None else "",
                    variable=var.name or str(var),
                    onnx_value=value.name or "",
                    max_abs_error=max_abs,
                    max_rel_error=max_rel,
                    problem=problem,
                ),
                len(candidates),
            )
    return None, len(candidates)


# ------------------------------------------------------------------------------ public API
def verify(
    source: Source | onnx.ModelProto | PathLike,
    values: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    model: onnx.ModelProto | PathLike | None = None,
    rtol: Tolerance = None,
    atol: Tolerance = None,
    reference: bool = True,
    intermediates: bool = False,
    repeat: int = 1,
    seed: int = 0,
    mode: Mode | str | None = None,
    runtimes: Sequence[str] = (),
    timeout: float | None = None,
    **export_kwargs: Any,
) -> VerificationReport:
    """Run an exported model in ONNX Runtime and ``onnx.reference`` and compare with PyTensor.

    Parameters
    ----------
    source
        A compiled ``pytensor.function``, an ``(inputs, outputs)`` pair of symbolic
        variables, or an ONNX model (``ModelProto`` or path) alone, in which case ONNX
        Runtime is compared with ``onnx.reference``.
    values
        Input values, by position (the function's input order) or by name: the model's
        input name or the original PyTensor/PyMC name (see
        :func:`~pytensor_onnx.feeds_by_name`).  ``None`` draws random values from the
        model's input types (see :func:`random_inputs`).
        Values are cast to the model's input dtypes (e.g. float32 for ``float32=True``).
        Model inputs made from shared variables (``shared_inputs``) take the variables'
        current values unless given.
    model
        An already exported model to check against ``source``; by default ``source`` is
        exported with ``export_kwargs``.
    rtol, atol
        Tolerances: one number for all outputs, or a mapping from output name to number.
        Defaults depend on the model output dtype (:data:`DEFAULT_TOLERANCES`).
    reference
        Also run ``onnx.reference``.
    intermediates
        Also compare every intermediate value and report the first diverging node.
        Needs a PyTensor source (the model is rebuilt to expose the intermediate values).
    repeat
        Time PyTensor's and ONNX Runtime's runs as the best of this many calls after a
        warm-up call (0: time the single call that computes the results).
    seed
        Seed for random input values.
    mode
        The PyTensor mode computing the reference values; by default the function's own
        mode, or PyTensor's default mode for ``(inputs, outputs)``.
    runtimes
        More runtimes to run the model in and compare (:data:`pytensor_onnx.runtimes.RUNTIMES`
        or their aliases: ``"openvino"``, ``"tract"``...; ``"all"`` for every one).  A
        runtime that cannot load or run the model fails the report, with its message in
        ``failures``; one that is not installed raises
        :class:`~pytensor_onnx.runtimes.RuntimeUnavailable`.  OpenVINO computes float64
        models in float32 and gets float32 default tolerances.
    timeout
        Seconds each run of the model may take (``None``: no limit), for models that may
        run for hours.  ONNX Runtime stops its runs itself (``RunOptions.terminate``); with
        a timeout, ``onnx.reference`` and the other runtimes load and run the model in a
        child process that is killed after that long.  A timed-out ONNX Runtime or
        ``onnx.reference`` run raises :class:`~pytensor_onnx.runtimes.RunTimeout`
        (naming the runtime and the time); another runtime that times out fails the report
        with that message in ``failures``.  Not limited: the export, PyTensor's run and
        creating the ONNX Runtime session.
    export_kwargs
        Passed to :func:`~pytensor_onnx.export_onnx` (``opset``, ``float32``,
        ``shared_inputs``...).

    Returns
    -------
    VerificationReport
        Per-output errors for each runtime, pass/fail, timings.

    Raises
    ------
    pytensor_onnx.runtimes.RunTimeout
        If ONNX Runtime or ``onnx.reference`` ran longer than ``timeout``.
    ValueError
        For a model file that :func:`~pytensor_onnx.storage.check_untrusted_model`
        refuses, and for inputs that do not fit the model.
    """
    clock = _Clock()
    others = _runtime_names(runtimes)
    if isinstance(source, (onnx.ModelProto, str, os.PathLike)):
        if intermediates:
            raise ValueError("intermediates=True needs a PyTensor function or (inputs, outputs)")
        proto = _model_proto(source)
        feeds = random_inputs(proto, seed=seed) if values is None else _feeds(proto, values, {})
        results, failures = _run_runtimes(source, feeds, clock, True, repeat, others, timeout)
        want = results.pop("onnx.reference")
        checks = _compare_outputs(proto, results, want, rtol, atol)
        return VerificationReport(
            checks, clock.timings, reference="onnx.reference", failures=failures
        )

    inputs, outputs, source_mode = _source_graph(source)
    generators = [var for var in graph_inputs(outputs) if is_random_generator(var)]
    if generators:
        raise ValueError(
            f"the graph draws random values from {generators}: ONNX draws are not NumPy's "
            "stream, so they cannot be compared with PyTensor's value by value; verify the "
            "exported model alone (ONNX Runtime against onnx.reference) or compare in "
            "distribution (see docs/random.md)"
        )
    if model is None:
        from pytensor_onnx.export import export_onnx

        fn_or_inputs, outs = (source, None) if isinstance(source, Function) else source
        export_args = (fn_or_inputs,) if outs is None else (fn_or_inputs, outs)
        model = clock.run("export", lambda: export_onnx(*export_args, **export_kwargs))
    assert model is not None
    proto = _model_proto(model)
    shared = {v.name: v for v in graph_inputs(outputs) if isinstance(v, SharedVariable) and v.name}
    feeds = random_inputs(proto, seed=seed) if values is None else _feeds(proto, values, shared)

    n_user = len(inputs)
    user_values = [feeds[inp.name] for inp in proto.graph.input[:n_user]]
    reference_fn = pytensor.function(
        inputs,
        outputs,
        mode=source_mode if mode is None else mode,
        on_unused_input="ignore",
        accept_inplace=True,
    )
    args = [
        np.asarray(val).astype(inp.type.dtype) for val, inp in zip(user_values, inputs, strict=True)
    ]
    try:
        computed = clock.run("pytensor run", lambda: reference_fn(*args), repeat)
    except Exception as err:
        if values is not None:
            raise
        raise ValueError(
            "PyTensor could not evaluate the graph on random inputs (unknown dims were given "
            f"length 3): pass input values instead ({type(err).__name__}: {err})"
        ) from err
    pytensor_values = [np.asarray(v) for v in computed]
    results, failures = _run_runtimes(model, feeds, clock, reference, repeat, others, timeout)
    if len(proto.graph.output) != len(pytensor_values):
        raise ValueError(
            f"the model has {len(proto.graph.output)} outputs, PyTensor computes "
            f"{len(pytensor_values)} (models exported with include_updates cannot be verified)"
        )
    checks = _compare_outputs(proto, results, pytensor_values, rtol, atol)
    report = VerificationReport(checks, clock.timings, failures=failures)
    if intermediates:
        start = time.perf_counter()
        report.first_divergence, report.intermediates_checked = _first_divergence(
            source, feeds, export_kwargs, rtol, atol, timeout
        )
        report.timings["intermediates"] = time.perf_counter() - start
    return report


def verify_export(
    fn_or_inputs: Function | Sequence[Variable],
    outputs: Any,
    values: Sequence[Any] | Mapping[str, Any] | bool,
    model: onnx.ModelProto | Path,
) -> VerificationReport:
    """The check behind ``export_onnx(..., verify=...)``: raise if ``model`` fails.

    ``fn_or_inputs`` and ``outputs`` are what ``export_onnx`` was given; ``values`` is
    ``True`` for random inputs, or the input values.
    """
    source = fn_or_inputs if outputs is None else (fn_or_inputs, outputs)
    report = verify(source, None if values is True else values, model=model)  # type: ignore[arg-type]
    if not report.passed:
        raise VerificationError(report)
    return report


__all__ = [
    "DEFAULT_TOLERANCES",
    "Divergence",
    "OutputCheck",
    "VerificationError",
    "VerificationReport",
    "compare_arrays",
    "random_inputs",
    "verify",
    "verify_export",
]
