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
"""

from __future__ import annotations

import os
import tempfile
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


def _run_onnxruntime(path: str, feeds: Mapping[str, np.ndarray]) -> list[Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return list(session.run(None, dict(feeds)))


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


_ADAPTERS: dict[str, Callable[[str, Mapping[str, np.ndarray]], list[Any]]] = {
    "onnxruntime": _run_onnxruntime,
    "onnx.reference": _run_reference,
    "openvino": _run_openvino,
    "tract": _run_tract,
}


def is_available(runtime: str) -> bool:
    """Whether the Python package of ``runtime`` can be imported."""
    import importlib.util

    package = {"openvino": "openvino", "tract": "tract"}.get(canonical_name(runtime))
    return package is None or importlib.util.find_spec(package) is not None


def run(runtime: str, model: Model, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Load ``model`` in ``runtime`` and run it on ``feeds``.

    Parameters
    ----------
    runtime
        A name from :data:`RUNTIMES` or :data:`ALIASES`.
    model
        An ONNX model or the path of a model file (external data next to it is found).
    feeds
        Every model input by name.

    Returns
    -------
    list of numpy.ndarray
        The outputs in the model's output order.

    Raises
    ------
    RuntimeUnavailable
        The runtime's package is not installed.
    RuntimeFailure
        The runtime refused the model or failed to run it.
    """
    adapter = _ADAPTERS[canonical_name(runtime)]
    with tempfile.TemporaryDirectory(prefix="pytensor-onnx-") as tmp:
        if isinstance(model, onnx.ModelProto):
            path = str(Path(tmp) / "model.onnx")
            onnx.save_model(model, path)
        else:
            path = os.fspath(model)
        try:
            outputs = adapter(path, feeds)
        except RuntimeUnavailable:
            raise
        except Exception as err:
            message = " ".join(str(err).split()) or type(err).__name__
            message = message.split(" Stack backtrace:")[0]  # tract appends its Rust stack
            raise RuntimeFailure(f"{canonical_name(runtime)}: {message}") from err
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
    "RuntimeFailure",
    "RuntimeUnavailable",
    "canonical_name",
    "is_available",
    "run",
    "run_all",
]
