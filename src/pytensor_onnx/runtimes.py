"""Run an ONNX model in one of several runtimes, with named feeds.

One adapter per runtime, all with the same shape: ``run(runtime, model, feeds)`` loads the
model, runs it on ``feeds`` (model input name -> array) and returns the outputs in the
model's output order, or raises :class:`RuntimeFailure` with the runtime's own message.
The optional runtimes are imported lazily; a missing one raises
:class:`RuntimeUnavailable`, which names the extra to install.

=================  =================================================================
``onnxruntime``    ONNX Runtime's CPU execution provider (alias ``ort``)
``onnx.reference`` ``onnx.reference.ReferenceEvaluator`` (alias ``reference``)
``openvino``       OpenVINO's CPU device with ``INFERENCE_PRECISION_HINT=f32``
                   (``pip install pytensor-onnx[runtimes]``)
``tract``          tract (``pip install pytensor-onnx[runtimes]``)
=================  =================================================================

onnxruntime-node and onnxruntime-web need Node.js and a browser; the test suite runs them
(``tests/test_runtime_matrix.py``), this module does not.

A ``timeout`` stops a run that takes too long (a model from an untrusted source can loop
for hours) with :class:`RunTimeout`.  ONNX Runtime stops itself (``RunOptions.terminate``,
set from a timer; :func:`run_session`); the other runtimes cannot be interrupted from
Python, so with a timeout they load and run the model in a child process, which is killed
when the time is up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

PathLike = str | os.PathLike[str]
Model = onnx.ModelProto | PathLike

#: The runtimes :func:`run` knows, by canonical name.
RUNTIMES = ("onnxruntime", "onnx.reference", "openvino", "tract")

#: Short names accepted for the canonical ones.
ALIASES = {"ort": "onnxruntime", "reference": "onnx.reference"}

#: The dtype a runtime computes float64 models in, where it is not float64.
#: OpenVINO's CPU plugin has no float64 kernels: it converts such models to float32.
COMPUTES_FLOAT64_AS = {"openvino": "float32"}


class RuntimeUnavailable(ImportError):
    """The runtime's Python package is not installed."""


class RuntimeFailure(RuntimeError):
    """The runtime could not load or run the model; the message is the runtime's own."""


class RunTimeout(RuntimeFailure):
    """The run was stopped because it took longer than its timeout."""

    def __init__(self, runtime: str, timeout: float) -> None:
        super().__init__(f"{runtime}: the run was stopped after {timeout:g} s (timeout)")


def canonical_name(runtime: str) -> str:
    """The canonical name of ``runtime`` (``"ort"`` -> ``"onnxruntime"``).

    Raises
    ------
    ValueError
        For an unknown runtime.
    """
    name = ALIASES.get(runtime, runtime)
    if name not in RUNTIMES:
        known = ", ".join([*RUNTIMES, *ALIASES])
        raise ValueError(f"unknown runtime {runtime!r} (known: {known})")
    return name


def _import_optional(package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError as err:
        raise RuntimeUnavailable(
            f"the {package} runtime needs the Python package {package!r}: "
            "pip install 'pytensor-onnx[runtimes]'"
        ) from err


def ort_session(source: str | bytes) -> Any:
    """An ONNX Runtime CPU session of a model file or serialized model, logging errors only
    (the caller reports them; optimizer notes are not the user's concern)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_session(
    session: Any,
    feeds: Mapping[str, np.ndarray],
    timeout: float | None = None,
    output_names: Sequence[str] | None = None,
) -> list[Any]:
    """``session.run``, stopped by ONNX Runtime after ``timeout`` seconds.

    Parameters
    ----------
    session
        An ``onnxruntime.InferenceSession``.
    feeds
        Every model input by name.
    timeout
        Seconds the run may take (``None``: no limit).  A timer sets
        ``RunOptions.terminate``, which ONNX Runtime checks between kernels and loop
        iterations.
    output_names
        The outputs to compute (``None``: all of them).

    Returns
    -------
    list
        The outputs, in the order of ``output_names`` (or the model's).

    Raises
    ------
    RunTimeout
        If the run was stopped.
    """
    import onnxruntime as ort

    names = None if output_names is None else list(output_names)
    if timeout is None:
        return list(session.run(names, dict(feeds)))
    options = ort.RunOptions()
    options.log_severity_level = 4  # the stopped run is reported as RunTimeout, not logged
    timer = threading.Timer(timeout, lambda: setattr(options, "terminate", True))
    timer.start()
    try:
        return list(session.run(names, dict(feeds), options))
    except Exception as err:
        if options.terminate:
            raise RunTimeout("onnxruntime", timeout) from err
        raise
    finally:
        timer.cancel()


def _run_reference(path: str, feeds: Mapping[str, np.ndarray]) -> list[Any]:
    from onnx.reference import ReferenceEvaluator

    return list(ReferenceEvaluator(path).run(None, dict(feeds)))


def _run_openvino(path: str, feeds: Mapping[str, np.ndarray]) -> list[Any]:
    ov = _import_optional("openvino")
    core = ov.Core()
    # This CPU's default is bf16 inference: 1e-2 relative error on a plain MLP.
    compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    results = compiled(dict(feeds))
    return [results[port] for port in compiled.outputs]


def _run_tract(path: str, feeds: Mapping[str, np.ndarray]) -> list[Any]:
    tract = _import_optional("tract")
    model = tract.onnx().load(path)
    names = [model.input_name(i) for i in range(model.input_count())]
    runnable = model.into_model().into_runnable()
    # np.ascontiguousarray would turn 0-d arrays into 1-d ones.
    outputs = runnable.run([np.asarray(feeds[name], order="C") for name in names])
    # tract computes every int64 made by a Cast in its shape-dimension type (TDim), which
    # its Python API cannot turn into NumPy: convert such outputs to int64 first.
    graph_outputs = onnx.load(path, load_external_data=False).graph.output
    int64 = onnx.TensorProto.INT64
    return [
        (
            out.convert_to(tract.DatumType.I64) if info.type.tensor_type.elem_type == int64 else out
        ).to_numpy()
        for out, info in zip(outputs, graph_outputs, strict=True)
    ]


#: The runtimes other than ONNX Runtime (which :func:`run_session` runs), by name.
_ADAPTERS: dict[str, Callable[[str, Mapping[str, np.ndarray]], list[Any]]] = {
    "onnx.reference": _run_reference,
    "openvino": _run_openvino,
    "tract": _run_tract,
}


#: Exit status of the child process when the runtime's package is missing.
_EXIT_UNAVAILABLE = 3


def _run_in_child(
    runtime: str, path: str, feeds: Mapping[str, np.ndarray], timeout: float, workdir: Path
) -> list[Any]:
    """Run ``runtime`` on ``path`` in a child process that is killed after ``timeout``
    seconds; the feeds, outputs and error message pass through files in ``workdir``."""
    names = list(feeds)
    np.savez(workdir / "feeds.npz", *(np.asarray(feeds[name]) for name in names))
    (workdir / "names.json").write_text(json.dumps(names))
    # -P: the script's directory (this package, whose inspect.py would shadow the standard
    # library's) is not put on sys.path; the package itself is not imported.
    command = [sys.executable, "-P", __file__, runtime, path, os.fspath(workdir)]
    try:
        child = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise RunTimeout(runtime, timeout) from err
    error_file = workdir / "error.txt"
    message = error_file.read_text() if error_file.exists() else ""
    if child.returncode == _EXIT_UNAVAILABLE:
        raise RuntimeUnavailable(message)
    if child.returncode < 0:
        # What the runtime printed as it died (tract: the panic's place and assertion).
        said = [line for line in child.stderr.decode(errors="replace").splitlines() if line]
        detail = f": {' '.join(said[:2])}" if said else ""
        raise RuntimeError(
            f"the process running the model died from signal {-child.returncode}{detail}"
        )
    if child.returncode != 0:
        raise RuntimeError(message or f"the process running the model exited {child.returncode}")
    with np.load(workdir / "outputs.npz", allow_pickle=False) as outputs:
        return [outputs[f"arr_{i}"] for i in range(len(outputs.files))]


def _child_main(runtime: str, path: str, workdir: str) -> int:
    """The child process of :func:`_run_in_child`."""
    folder = Path(workdir)
    names = json.loads((folder / "names.json").read_text())
    with np.load(folder / "feeds.npz", allow_pickle=False) as arrays:
        feeds = {name: arrays[f"arr_{i}"] for i, name in enumerate(names)}
    try:
        outputs = _ADAPTERS[runtime](path, feeds)
    except Exception as err:  # the message goes to a file: runtimes also log to stderr
        (folder / "error.txt").write_text(str(err) or type(err).__name__)
        return _EXIT_UNAVAILABLE if isinstance(err, RuntimeUnavailable) else 1
    np.savez(folder / "outputs.npz", *(np.asarray(out) for out in outputs))
    return 0


def is_available(runtime: str) -> bool:
    """Whether the Python package of ``runtime`` can be imported."""
    import importlib.util

    package = {"openvino": "openvino", "tract": "tract"}.get(canonical_name(runtime))
    return package is None or importlib.util.find_spec(package) is not None


def run(
    runtime: str,
    model: Model,
    feeds: Mapping[str, np.ndarray],
    timeout: float | None = None,
) -> list[np.ndarray]:
    """Load ``model`` in ``runtime`` and run it on ``feeds``.

    Parameters
    ----------
    runtime
        A name from :data:`RUNTIMES` or :data:`ALIASES`.
    model
        An ONNX model or the path of a model file (external data next to it is found).
    feeds
        Every model input by name.
    timeout
        Seconds the run may take (``None``: no limit).  ONNX Runtime stops its run after
        that long (loading the model is not limited); the other runtimes then load and run
        the model in a child process, killed after that long (its start-up counts).

    Returns
    -------
    list of numpy.ndarray
        The outputs in the model's output order.

    Raises
    ------
    RuntimeUnavailable
        The runtime's package is not installed.
    RunTimeout
        The run took longer than ``timeout``.
    RuntimeFailure
        The runtime refused the model or failed to run it.
    """
    name = canonical_name(runtime)
    with tempfile.TemporaryDirectory(prefix="pytensor-onnx-") as tmp:
        if isinstance(model, onnx.ModelProto):
            path = str(Path(tmp) / "model.onnx")
            onnx.save_model(model, path)
        else:
            path = os.fspath(model)
        try:
            if name == "onnxruntime":
                outputs = run_session(ort_session(path), feeds, timeout)
            elif timeout is None:
                outputs = _ADAPTERS[name](path, feeds)
            else:
                outputs = _run_in_child(name, path, feeds, timeout, Path(tmp))
        except (RuntimeUnavailable, RunTimeout):
            raise
        except Exception as err:
            message = " ".join(str(err).split()) or type(err).__name__
            message = message.split(" Stack backtrace:")[0]  # tract appends its Rust stack
            raise RuntimeFailure(f"{name}: {message}") from err
    return [np.asarray(out) for out in outputs]


def run_all(
    runtimes: Sequence[str], model: Model, feeds: Mapping[str, np.ndarray]
) -> dict[str, list[np.ndarray] | RuntimeFailure]:
    """:func:`run` in each runtime: outputs, or the :class:`RuntimeFailure` it raised.

    A runtime whose package is missing still raises :class:`RuntimeUnavailable`.
    """
    results: dict[str, list[np.ndarray] | RuntimeFailure] = {}
    for runtime in runtimes:
        try:
            results[canonical_name(runtime)] = run(runtime, model, feeds)
        except RuntimeFailure as err:
            results[canonical_name(runtime)] = err
    return results


__all__ = [
    "ALIASES",
    "COMPUTES_FLOAT64_AS",
    "RUNTIMES",
    "RunTimeout",
    "RuntimeFailure",
    "RuntimeUnavailable",
    "canonical_name",
    "is_available",
    "ort_session",
    "run",
    "run_all",
    "run_session",
]

if __name__ == "__main__":
    sys.exit(_child_main(*sys.argv[1:]))
