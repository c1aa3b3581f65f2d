"""The one comparison helper of the test suite.

``compare_onnx_and_py`` evaluates a PyTensor graph with PyTensor's Python linker (the
reference), exports it, checks the model (ONNX checker with ``full_check`` and strict shape
inference, done by ``export_onnx``), runs it in ONNX Runtime **and** ``onnx.reference`` and
compares every output: dtype, shape and values.
"""

from __future__ import annotations

import contextlib
import enum
import signal
import threading
import traceback
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
from onnx.reference import ReferenceEvaluator
from pytensor.compile.mode import Mode
from pytensor.graph.basic import Variable
from pytensor.graph.fg import FunctionGraph

import pytensor_onnx
from pytensor_onnx import DEFAULT_OPSET, export_onnx, newest_runtime_opset
from pytensor_onnx.builder import PORTABLE_REPLACEMENTS
from pytensor_onnx.precision import convert_fgraph_to_float32, float64_tensors

#: Opsets every comparison runs at: the default and the newest ONNX Runtime supports.
OPSETS = tuple(sorted({DEFAULT_OPSET, newest_runtime_opset()}))

#: PyTensor's own evaluation: Python implementations (``perform``) after the usual rewrites,
#: without inplace and fusion rewrites (as the export).  A fused ``Composite`` evaluates
#: scalar ops on Python scalars, where PyTensor's ``Invert`` of a bool gives ``~True == -2``,
#: i.e. True (seen in PyTensor 2.38 and 3.3).
REFERENCE_MODE = Mode(linker="py", optimizer="fast_run").excluding("inplace", "fusion")

_TOLERANCES = {
    "float64": (1e-12, 1e-14),
    "float32": (1e-5, 1e-6),
    "float16": (1e-2, 1e-3),
}


def tolerances(dtype: np.dtype[Any]) -> tuple[float, float]:
    """Default ``(rtol, atol)`` for comparing outputs of ``dtype`` (exact for non-floats)."""
    return _TOLERANCES.get(np.dtype(dtype).name, (0.0, 0.0))


def input_like(value: Any, name: str, symbolic: bool = False) -> Variable:
    """A PyTensor input matching ``value``: static shape, or unknown dims if ``symbolic``.

    Length-1 dims stay static with ``symbolic`` too: PyTensor only broadcasts dims it knows
    to be 1.
    """
    value = np.asarray(value)
    shape = tuple(1 if d == 1 else None for d in value.shape) if symbolic else value.shape
    return pt.tensor(name=name, dtype=str(value.dtype), shape=shape)


def ort_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for ``model``."""
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_onnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
    """Outputs of ``model`` from ONNX Runtime and from ``onnx.reference``."""
    runtime = ort_session(model).run(None, feeds)
    reference = ReferenceEvaluator(model).run(None, feeds)
    return runtime, reference


def assert_matches(
    actual: Any, expected: Any, rtol: float | None, atol: float | None, what: str
) -> None:
    """Assert ``actual`` equals ``expected`` in dtype, shape and (within tolerance) values."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    default_rtol, default_atol = tolerances(expected.dtype)
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        equal_nan=True,
        err_msg=what,
    )


def all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``model``: its graph, the subgraphs of ``If``/``Loop``/``Scan`` (at any
    depth) and its local functions."""
    graphs: list[Iterable[onnx.NodeProto]] = [model.graph.node, *(f.node for f in model.functions)]
    while graphs:
        for node in graphs.pop():
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attr.g.node)
                graphs.extend(g.node for g in attr.graphs)


def assert_portable(model: onnx.ModelProto) -> None:
    """Assert that ``model`` uses none of the operators some runtimes lack (the builder writes
    them as portable nodes: ``PORTABLE_REPLACEMENTS``)."""
    found = sorted({n.op_type for n in all_nodes(model) if n.op_type in PORTABLE_REPLACEMENTS})
    assert not found, f"the model uses {found}, which some runtimes lack"


def compare_onnx_and_py(
    inputs: Sequence[Variable],
    outputs: Variable | Sequence[Variable],
    test_values: Sequence[Any],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    opsets: Sequence[int] = OPSETS,
    reference: bool = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Check that the ONNX export of ``inputs -> outputs`` computes what PyTensor computes.

    Parameters
    ----------
    inputs, outputs
        The symbolic graph.
    test_values
        One value per input.
    rtol, atol
        Tolerances; by default per output dtype (see :func:`tolerances`).
    opsets
        The opsets to export at; each export is checked and run.
    reference
        Also run ``onnx.reference`` (turn off only for models it cannot run, and say why).
    export_kwargs
        Passed to :func:`pytensor_onnx.export_onnx`.

    Returns
    -------
    onnx.ModelProto
        The model exported at the last opset, for structural assertions.
    """
    outputs_list = [outputs] if isinstance(outputs, Variable) else list(outputs)
    fn = pytensor.function(
        list(inputs), outputs_list, mode=REFERENCE_MODE, on_unused_input="ignore"
    )
    values = [np.asarray(v) for v in test_values]
    expected = fn(*values)
    model: onnx.ModelProto | None = None
    for opset in opsets:
        model = export_onnx(list(inputs), outputs_list, opset=opset, **export_kwargs)
        assert_portable(model)
        feeds = {inp.name: val for inp, val in zip(model.graph.input, values, strict=False)}
        runtime = ort_session(model).run(None, feeds)
        for i, (got, want) in enumerate(zip(runtime, expected, strict=True)):
            assert_matches(got, want, rtol, atol, f"onnxruntime, opset {opset}, output {i}")
        if reference:
            ref = ReferenceEvaluator(model).run(None, feeds)
            for i, (got, want) in enumerate(zip(ref, expected, strict=True)):
                assert_matches(got, want, rtol, atol, f"onnx.reference, opset {opset}, output {i}")
    assert model is not None
    return model


class Outcome(enum.Enum):
    """How a differential check of one graph ended."""

    PASSED = "passed"
    CLEAN_REFUSAL = "clean refusal"
    PYTENSOR_RAISES = "PyTensor raises"
    WRONG_VALUES = "wrong values"
    INVALID_MODEL = "invalid model"
    RUN_FAILURE = "run-time failure"

    @property
    def failed(self) -> bool:
        """Whether the outcome is a defect of the export (not a pass, refusal or skip)."""
        return self in (Outcome.WRONG_VALUES, Outcome.INVALID_MODEL, Outcome.RUN_FAILURE)


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`differential_check`, the backend concerned and the error."""

    outcome: Outcome
    backend: str = ""
    detail: str = ""

    def __str__(self) -> str:
        return (
            f"{self.outcome.value} ({self.backend}): {self.detail}"
            if self.backend
            else (f"{self.outcome.value}: {self.detail}" if self.detail else self.outcome.value)
        )


#: Rounding-error budget per operation of a graph, in units of the output dtype's epsilon.
ULPS_PER_OPERATION = 16

_PACKAGE_DIR = Path(pytensor_onnx.__file__).parent


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"


def _is_clean_refusal(error: BaseException) -> bool:
    """An ``UnsupportedOpError``/``NotImplementedError``, or a ``TypeError``/``ValueError``
    that pytensor-onnx itself raises (the documented input checks), not one from ONNX."""
    if isinstance(error, NotImplementedError):
        return True
    if not isinstance(error, TypeError | ValueError):
        return False
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).is_relative_to(_PACKAGE_DIR)


#: Operations inside one kernel (a decomposed special function, ONNX Runtime's vectorized
#: ``Tanh``) whose underflow terms can add up in a subnormal result.
UNDERFLOW_OPERATIONS = 64


def fuzz_tolerances(
    dtype: np.dtype[Any], operations: int, scale: float, precision: Any = None
) -> tuple[float, float]:
    """``(rtol, atol)`` for an output of a graph of ``operations`` operations.

    Each operation may add a few ulps of relative error (``ULPS_PER_OPERATION``) of the
    coarser of ``dtype`` and ``precision`` (the graph's least precise float dtype: a
    float32 intermediate cast to a float64 output keeps its float32 rounding).  A
    cancellation (``a + b - a``) turns the rounding error of its operands into an absolute
    error of the operands' magnitude: ``atol`` is ``rtol`` times ``scale``, the largest
    finite magnitude among the graph's float inputs and intermediate values, and at least
    ``rtol`` times ``UNDERFLOW_OPERATIONS`` smallest normal numbers (the absolute underflow
    term of the standard error model, for subnormal results).  Integers and bools are exact.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return 0.0, 0.0
    coarsest = dtype
    if precision is not None and np.finfo(precision).eps > np.finfo(dtype).eps:
        coarsest = np.dtype(precision)
    rtol = ULPS_PER_OPERATION * max(operations, 1) * float(np.finfo(coarsest).eps)
    underflow = UNDERFLOW_OPERATIONS * float(np.finfo(coarsest).tiny)
    return rtol, rtol * max(scale, underflow)


def _precision(values: Sequence[Any]) -> np.dtype[Any] | None:
    """The least precise float dtype among ``values`` (``None`` if none is float)."""
    floats = [np.asarray(v).dtype for v in values if np.asarray(v).dtype.kind == "f"]
    return max(floats, key=lambda d: np.finfo(d).eps, default=None)


def _scale(values: Sequence[Any]) -> float:
    """The largest finite magnitude among float ``values`` (0 if none)."""
    finite = [
        np.abs(v[np.isfinite(v)]).max(initial=0.0)
        for v in map(np.asarray, values)
        if v.dtype.kind == "f" and v.size
    ]
    return float(max(finite, default=0.0))


#: Seconds PyTensor may take to compile and evaluate a generated graph.  PyTensor 2.38's
#: rewriter loops forever on some graphs (``local_log_sum_exp`` rebuilding its own output);
#: such a graph is one PyTensor cannot evaluate, not an export defect.  The limit interrupts
#: whatever runs, Numba's compiler included, which a loaded CI machine can keep busy for
#: more than 20 s: a pytest worker crashed after such an interrupt in PyTensor 3.0.7, so the
#: limit leaves ample room for a compile.
PYTENSOR_TIME_LIMIT = 90


class TimeLimitExceeded(BaseException):
    """Raised by :func:`_time_limit`; not an ``Exception``, so that PyTensor's rewriters, which
    report and skip failing rewrites, do not swallow it."""


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` in the main thread after ``seconds``, and every
    second after that until the block ends (no limit in other threads)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TimeLimitExceeded(f"did not finish in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    # Fires again every second: a raise that lands where Python ignores exceptions (a
    # ``__del__``, a weakref callback) must not leave the limit disarmed.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class _Expected:
    """PyTensor's results for one graph and the tolerances its outputs are judged with."""

    inputs: Sequence[Variable]
    outputs: Sequence[Variable]
    values: Sequence[np.ndarray]
    results: Sequence[np.ndarray]
    operations: int
    scale: float
    precision: np.dtype[Any] | None

    def differs(self, got: Sequence[Any], want: Sequence[Any]) -> str | None:
        for i, (actual, wanted) in enumerate(zip(got, want, strict=True)):
            rtol, atol = fuzz_tolerances(wanted.dtype, self.operations, self.scale, self.precision)
            try:
                assert_matches(actual, wanted, rtol, atol, f"output {i}")
            except AssertionError as error:
                return str(error).strip()
        return None

    def mismatch(self, got: Sequence[Any], backend: str) -> Verdict | None:
        if (difference := self.differs(got, self.results)) is None:
            return None
        # PyTensor's Python implementations and its default (C/Numba) backend disagree on
        # some edge values (softmax of [-inf]: 1 and nan): matching the default is a pass.
        try:
            with _time_limit(PYTENSOR_TIME_LIMIT):
                default = pytensor.function(
                    list(self.inputs), list(self.outputs), on_unused_input="ignore"
                )
                agrees = self.differs(got, [np.asarray(r) for r in default(*self.values)]) is None
        except (Exception, TimeLimitExceeded):  # no second opinion from the default mode
            agrees = False
        return None if agrees else Verdict(Outcome.WRONG_VALUES, backend, difference)

    def run_model(self, model: onnx.ModelProto, label: str = "") -> Verdict | None:
        """The first failure of ``model`` in ONNX Runtime and ``onnx.reference``, if any."""
        feeds = {inp.name: val for inp, val in zip(model.graph.input, self.values, strict=False)}
        try:
            session = ort_session(model)
        except Exception as error:
            return Verdict(Outcome.INVALID_MODEL, f"onnxruntime load{label}", _describe(error))
        for backend, run in (
            ("onnxruntime", lambda: session.run(None, feeds)),
            ("onnx.reference", lambda: ReferenceEvaluator(model).run(None, feeds)),
        ):
            try:
                got = run()
            except Exception as error:
                return Verdict(Outcome.RUN_FAILURE, backend + label, _describe(error))
            if verdict := self.mismatch(got, backend + label):
                return verdict
        return None


def _expected(
    inputs: Sequence[Variable],
    outputs: Sequence[Variable],
    values: Sequence[np.ndarray],
    operations: int,
    intermediates: Sequence[Variable] = (),
) -> _Expected:
    """PyTensor's results (``REFERENCE_MODE``, within :data:`PYTENSOR_TIME_LIMIT`) for the
    graph at ``values``; ``intermediates`` only set the absolute tolerance."""
    with _time_limit(PYTENSOR_TIME_LIMIT):
        fn = pytensor.function(
            list(inputs), [*outputs, *intermediates], mode=REFERENCE_MODE, on_unused_input="ignore"
        )
        results = [np.asarray(r) for r in fn(*values)]
    return _Expected(
        inputs,
        outputs,
        values,
        results[: len(outputs)],
        operations,
        _scale([*values, *results]),
        _precision([*values, *results]),
    )


def _float32_check(
    inputs: Sequence[Variable],
    outputs: Sequence[Variable],
    values: Sequence[np.ndarray],
    *,
    operations: int,
    intermediates: Sequence[Variable],
    opset: int,
) -> Verdict | None:
    """The first failure of the ``float32=True`` export, if any.

    Its promise: the model holds no float64 tensor (unless the export warned that some node
    keeps computing in float64) and computes what PyTensor computes for the graph converted
    to float32 (:func:`pytensor_onnx.precision.convert_fgraph_to_float32`, the conversion the
    export applies), on the inputs rounded to float32.
    """
    label = " (float32=True)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = export_onnx(list(inputs), list(outputs), opset=opset, float32=True)
        except Exception as error:
            if _is_clean_refusal(error):
                return None
            return Verdict(Outcome.INVALID_MODEL, "export_onnx" + label, _describe(error))
    kept_float64 = any("float32 conversion" in str(w.message) for w in caught)
    if not kept_float64 and (left := float64_tensors(model)):
        return Verdict(Outcome.INVALID_MODEL, "export_onnx" + label, f"float64 tensors: {left}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fgraph = convert_fgraph_to_float32(FunctionGraph(list(inputs), [*outputs, *intermediates]))
    converted = fgraph.outputs[: len(outputs)]
    values32 = [
        np.asarray(v, dtype=new.type.dtype) for v, new in zip(values, fgraph.inputs, strict=True)
    ]
    try:
        expected = _expected(
            fgraph.inputs, converted, values32, operations, fgraph.outputs[len(outputs) :]
        )
    except (Exception, TimeLimitExceeded):  # PyTensor cannot evaluate the float32 graph
        return None
    return expected.run_model(model, label)


def differential_check(
    inputs: Sequence[Variable],
    outputs: Sequence[Variable],
    values: Sequence[Any],
    *,
    operations: int,
    intermediates: Sequence[Variable] = (),
    opset: int = DEFAULT_OPSET,
) -> Verdict:
    """Run a graph in PyTensor and in every ONNX path, and classify the result.

    The paths are ``export_onnx`` + ONNX Runtime, the same model in ``onnx.reference``,
    ``pytensor.function(..., mode="ONNX")`` and, for a graph with float64 inputs or outputs,
    the ``float32=True`` export in ONNX Runtime and ``onnx.reference``, each compared with
    PyTensor's evaluation (``REFERENCE_MODE``; for ``float32=True``, of the graph converted
    to float32): dtypes and shapes exactly, integers and bools exactly, floats NaN- and
    inf-aware within :func:`fuzz_tolerances`.  A path that differs from ``REFERENCE_MODE``
    but matches PyTensor's default mode passes (the two PyTensor evaluations disagree on
    some edge values; the default mode is compiled only then).

    Parameters
    ----------
    inputs, outputs
        The symbolic graph.
    values
        One value per input.
    operations
        The number of operations in the graph (the rounding-error budget).
    intermediates
        Float intermediate variables, whose magnitudes set the absolute tolerance.
    opset
        The opset to export at.

    Returns
    -------
    Verdict
        ``PYTENSOR_RAISES`` if PyTensor cannot evaluate the graph; ``CLEAN_REFUSAL`` if the
        export refuses it with ``NotImplementedError`` or its own ``TypeError``/``ValueError``;
        otherwise the first failure (``INVALID_MODEL``: the export, checker or ONNX Runtime
        load fails, or a ``float32=True`` model holds float64 tensors; ``RUN_FAILURE``: a run
        fails; ``WRONG_VALUES``) or ``PASSED``.
    """
    values = [np.asarray(v) for v in values]
    try:
        expected = _expected(inputs, outputs, values, operations, intermediates)
    except (Exception, TimeLimitExceeded) as error:
        return Verdict(Outcome.PYTENSOR_RAISES, "pytensor", _describe(error))
    try:
        model = export_onnx(list(inputs), list(outputs), opset=opset)
    except Exception as error:
        outcome = Outcome.CLEAN_REFUSAL if _is_clean_refusal(error) else Outcome.INVALID_MODEL
        return Verdict(outcome, "export_onnx", _describe(error))
    if verdict := expected.run_model(model):
        return verdict
    try:
        onnx_fn = pytensor.function(
            list(inputs), list(outputs), mode="ONNX", on_unused_input="ignore"
        )
    except Exception as error:
        return Verdict(Outcome.INVALID_MODEL, 'mode="ONNX" compile', _describe(error))
    try:
        got = onnx_fn(*values)
    except Exception as error:
        return Verdict(Outcome.RUN_FAILURE, 'mode="ONNX"', _describe(error))
    if verdict := expected.mismatch(got, 'mode="ONNX"'):
        return verdict
    has_float64 = any(var.type.dtype == "float64" for var in [*inputs, *outputs])
    if has_float64 and (
        verdict := _float32_check(
            inputs, outputs, values, operations=operations, intermediates=intermediates, opset=opset
        )
    ):
        return verdict
    return Verdict(Outcome.PASSED)
