"""Run the corpus in every runtime and compare with PyTensor.

Python runtimes go through :mod:`pytensor_onnx.runtimes`; onnxruntime-node and
onnxruntime-web (in Chromium) run the whole corpus in one JavaScript process each
(``run_js.mjs``), fed and read through a manifest of base64 tensors.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytensor

from pytensor_onnx import export_onnx, runtimes
from pytensor_onnx.verify import DEFAULT_TOLERANCES, compare_arrays
from tests.compare import newest_runtime_opset
from tests.matrix.corpus import CASES, Case

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")

PYTHON_RUNTIMES = ("onnxruntime", "onnx.reference", "openvino", "tract")
JS_RUNTIMES = ("onnxruntime-node", "onnxruntime-web")
ALL_RUNTIMES = PYTHON_RUNTIMES + JS_RUNTIMES


@dataclass(frozen=True)
class Outcome:
    """One (model, runtime) pair: ``status`` is ``pass``, ``fail`` (wrong values) or
    ``error`` (did not load or run); ``detail`` says how close, or the runtime's message."""

    status: str
    detail: str


@dataclass
class Prepared:
    """An exported case with its feeds and expected outputs."""

    case: Case
    path: Path
    feeds: dict[str, np.ndarray]
    expected: list[np.ndarray]
    output_dtypes: list[str]


#: The value of a random model's seed input (the inputs after the graph's own).
SEED = np.array(20261205, dtype=np.int64)


def _as_model_dtypes(model: onnx.ModelProto, values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """``values`` in the dtypes of the model's inputs, plus :data:`SEED` for seed inputs."""
    feeds = {}
    for k, value_info in enumerate(model.graph.input):
        dtype = onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type)
        feeds[value_info.name] = np.asarray(values[k] if k < len(values) else SEED).astype(dtype)
    return feeds


def prepare(case: Case, out_dir: Path) -> Prepared:
    """Export ``case`` with default options (plus its own) and compute what it should give."""
    inputs, outputs, values = case.build()
    options = dict(case.export_options)
    if options.get("opset") == "newest":
        options["opset"] = newest_runtime_opset()
    path = out_dir / f"{case.name}.onnx"
    model = export_onnx(inputs, outputs, path, **options)
    feeds = _as_model_dtypes(model, values)
    if case.expected == "onnxruntime":
        expected = runtimes.run("onnxruntime", path, feeds)
    else:
        fn = pytensor.function(inputs, outputs, on_unused_input="ignore")
        # float32=True models see float32 inputs: PyTensor computes from the same rounded values.
        rounded = [
            np.asarray(f, dtype=np.asarray(v).dtype)
            for f, v in zip(feeds.values(), values, strict=False)
        ]
        expected = [np.asarray(out) for out in fn(*rounded)]
    dtypes = [
        str(onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type))
        for o in model.graph.output
    ]
    return Prepared(case, path, feeds, expected, dtypes)


def _compare(prepared: Prepared, outputs: list[np.ndarray], computes_as: str | None) -> Outcome:
    worst = 0.0
    for k, (got, want, dtype) in enumerate(
        zip(outputs, prepared.expected, prepared.output_dtypes, strict=True)
    ):
        precision = computes_as if computes_as and dtype == "float64" else dtype
        rtol, atol = DEFAULT_TOLERANCES.get(precision, (0.0, 0.0))
        _, rel, passed, problem = compare_arrays(np.asarray(got), want, rtol, atol)
        if not passed:
            return Outcome("fail", f"output {k}: {problem or f'max relative error {rel:.1e}'}")
        worst = max(worst, rel)
    return Outcome("pass", f"max relative error {worst:.1e}")


def run_python(prepared: Prepared, runtime: str) -> Outcome:
    """``prepared`` in one of :data:`PYTHON_RUNTIMES`: in a child process (with a time
    limit), since a runtime may abort on a model (tract panics on a negative ``GatherND``
    index) and take the whole matrix down with it."""
    try:
        outputs = runtimes.run(runtime, prepared.path, prepared.feeds, timeout=600)
    except runtimes.RuntimeFailure as err:
        return Outcome("error", str(err).removeprefix(f"{runtime}: "))
    return _compare(prepared, outputs, runtimes.COMPUTES_FLOAT64_AS.get(runtime))


# ----------------------------------------------------------------------------- JavaScript
def js_missing(runtime: str) -> str:
    """Why ``runtime`` cannot run here, or ``""``."""
    if shutil.which("node") is None:
        return "node is not installed (run scripts/setup_web.sh)"
    package = "onnxruntime-node" if runtime == "onnxruntime-node" else "onnxruntime-web"
    needed = [package] + (["playwright-core"] if runtime == "onnxruntime-web" else [])
    for name in needed:
        if not (WEB / "node_modules" / name / "package.json").exists():
            return f"web/node_modules/{name} is missing (run scripts/setup_web.sh)"
    if runtime == "onnxruntime-web" and not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (run scripts/setup_web.sh)"
    return ""


def _encode(value: np.ndarray) -> dict[str, Any]:
    value = np.asarray(value, order="C")  # np.ascontiguousarray makes 0-d arrays 1-d
    return {
        "type": "bool" if value.dtype == np.bool_ else str(value.dtype),
        "dims": list(value.shape),
        "data": base64.b64encode(value.tobytes()).decode(),
    }


def _decode(entry: dict[str, Any]) -> np.ndarray:
    dtype = np.bool_ if entry["type"] == "bool" else np.dtype(entry["type"])
    raw = base64.b64decode(entry["data"])
    return np.frombuffer(raw, dtype=dtype).reshape(entry["dims"]).copy()


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
    }

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def _serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_js(runtime: str, prepared: list[Prepared]) -> dict[str, Outcome]:
    """Every prepared case in onnxruntime-node or onnxruntime-web, in one process."""
    with tempfile.TemporaryDirectory(prefix="pytensor-onnx-matrix-") as tmp:
        root = Path(tmp)
        manifest = []
        for item in prepared:
            shutil.copy(item.path, root / item.path.name)
            manifest.append(
                {
                    "name": item.case.name,
                    "model": item.path.name,
                    "inputs": {k: _encode(v) for k, v in item.feeds.items()},
                }
            )
        (root / "manifest.json").write_text(json.dumps(manifest))
        command = ["node", str(HERE / "run_js.mjs"), runtime, str(root)]
        if runtime == "onnxruntime-web":
            shutil.copy(HERE / "tensors.mjs", root / "tensors.mjs")
            shutil.copy(HERE / "matrix.html", root / "matrix.html")
            os.symlink(WEB / "node_modules" / "onnxruntime-web" / "dist", root / "ort")
            with _serve(root) as url:
                done = subprocess.run(
                    [*command, f"{url}/matrix.html"], capture_output=True, text=True, timeout=600
                )
        else:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{runtime} runner failed: {done.stderr[-2000:]}")
    results = json.loads(done.stdout)
    outcomes = {}
    for item in prepared:
        result = results[item.case.name]
        if "error" in result:
            message = " ".join(result["error"].split())
            outcomes[item.case.name] = Outcome("error", message)
        else:
            outputs = [_decode(entry) for entry in result["outputs"]]
            outcomes[item.case.name] = _compare(item, outputs, None)
    return outcomes


# --------------------------------------------------------------------------------- matrix
def runtime_missing(runtime: str) -> str:
    """Why ``runtime`` cannot run here, or ``""``."""
    if runtime in JS_RUNTIMES:
        return js_missing(runtime)
    if not runtimes.is_available(runtime):
        return f"{runtime} is not installed (pip install 'pytensor-onnx[runtimes]')"
    return ""


def available_cases() -> list[Case]:
    """The corpus cases whose optional Python packages are installed."""
    return [c for c in CASES if c.needs is None or importlib.util.find_spec(c.needs)]


def run_matrix(out_dir: Path) -> dict[tuple[str, str], Outcome]:
    """Every available case in every available runtime."""
    prepared = [prepare(case, out_dir) for case in available_cases()]
    outcomes: dict[tuple[str, str], Outcome] = {}
    for runtime in ALL_RUNTIMES:
        missing = runtime_missing(runtime)
        if missing:
            for item in prepared:
                outcomes[item.case.name, runtime] = Outcome("unavailable", missing)
        elif runtime in JS_RUNTIMES:
            for name, outcome in run_js(runtime, prepared).items():
                outcomes[name, runtime] = outcome
        else:
            for item in prepared:
                outcomes[item.case.name, runtime] = run_python(item, runtime)
    return outcomes
