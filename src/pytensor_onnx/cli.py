"""The ``pytensor-onnx`` command: inspect, check, run and export ONNX models.

Exit status: 0 on success, 1 when a check, a verification or a run fails, 2 for usage
errors (bad arguments, missing files, inputs that do not fit the model).  Errors go to
standard error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROG = "pytensor-onnx"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_DESCRIPTION = """\
Inspect, check, run and export ONNX models made from PyTensor graphs.

exit status: 0 success, 1 a check/verification/run failed, 2 usage error.
"""


class UsageError(Exception):
    """A problem with the command line or the files it names (exit status 2)."""


# ----------------------------------------------------------------------------- commands
def _existing_file(path: str) -> Path:
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"{path}: is a directory, not a file")
    if not file.is_file():
        raise UsageError(f"{path}: no such file")
    return file


def _model_file(path: str) -> tuple[Path, Any]:
    """``path`` and the ``onnx.ModelProto`` it holds (external data not read), or a usage
    error if it holds none or one that ``storage.check_untrusted_model`` refuses."""
    import onnx
    from google.protobuf.message import DecodeError

    from pytensor_onnx.storage import check_untrusted_model

    file = _existing_file(path)
    if file.stat().st_size == 0:
        raise UsageError(f"{path}: not an ONNX model (the file is empty)")
    try:
        model = onnx.load(os.fspath(file), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as err:
        # protobuf's message says why, e.g. messages nested deeper than its parser allows
        raise UsageError(f"{path}: not an ONNX model ({type(err).__name__}: {err})") from err
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise UsageError(f"{path}: not an ONNX model (no IR version or no graph)")
    try:
        check_untrusted_model(model, file.parent)
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from err
    return file, model


def _output_file(out_dir: Path, name: str, index: int) -> Path:
    """Where ``run --output-dir`` saves an output: a plain file name inside ``out_dir``,
    whatever the (untrusted) model calls the output."""
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "_" for c in name)
    stem = stem.lstrip(".")[:200] or f"output_{index}"
    return out_dir / f"{stem}.npy"


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the model summary."""
    from pytensor_onnx.inspect import summary

    summary(_model_file(args.model)[0])
    return EXIT_OK


def _step(name: str, action: Callable[[], object]) -> bool:
    try:
        action()
    except Exception as err:
        print(f"{name}: FAILED", file=sys.stdout)
        print(f"{PROG}: {name} failed: {type(err).__name__}: {err}", file=sys.stderr)
        return False
    print(f"{name}: ok")
    return True


def cmd_check(args: argparse.Namespace) -> int:
    """Run the ONNX checker, strict shape inference and an ONNX Runtime load."""
    import onnx
    import onnxruntime as ort

    from pytensor_onnx.storage import check_model_file

    path = os.fspath(_model_file(args.model)[0])
    ok = _step("onnx checker (full_check)", lambda: onnx.checker.check_model(path, full_check=True))
    ok &= _step("strict shape inference", lambda: check_model_file(path))
    ok &= _step(
        "onnxruntime load",
        lambda: ort.InferenceSession(path, providers=["CPUExecutionProvider"]),
    )
    if ok and args.runtime:
        ok &= _check_runtimes(path, args.runtime, args.timeout)
    print("model OK" if ok else "model has problems")
    return EXIT_OK if ok else EXIT_FAILED


def _check_runtimes(path: str, names: Sequence[str], timeout: float | None) -> bool:
    """Run the model in each runtime on random inputs and compare with ``onnx.reference``;
    print one line per runtime.  Each run may take ``timeout`` seconds."""
    from pytensor_onnx.runtimes import RunTimeout, RuntimeUnavailable
    from pytensor_onnx.verify import verify

    header = "runtimes (random inputs, compared with onnx.reference):"
    try:
        report = verify(path, runtimes=names, timeout=timeout)
    except RunTimeout as err:
        print(f"{header}\n  {err}")
        print(f"{PROG}: {err}", file=sys.stderr)
        return False
    except (RuntimeUnavailable, ValueError) as err:
        raise UsageError(str(err)) from err
    print(header)
    by_runtime: dict[str, list[Any]] = {}
    for check in report.checks:
        by_runtime.setdefault(check.runtime, []).append(check)
    for runtime, checks in by_runtime.items():
        failed = [c for c in checks if not c.passed]
        worst = max((c.max_rel_error for c in checks), default=0.0)
        if failed:
            detail = failed[0].problem or f"max rel err {failed[0].max_rel_error:.3g}"
            print(f"  {runtime}: FAILED ({failed[0].name}: {detail})")
        else:
            print(f"  {runtime}: ok (max rel err {worst:.3g})")
    for runtime, message in report.failures.items():
        print(f"  {runtime}: FAILED to run: {message[:500]}")
    return report.passed


def _parse_inputs(specs: Sequence[str], option: str = "--input") -> dict[str, np.ndarray]:
    values = {}
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name or not file:
            raise UsageError(f"{option} {spec!r}: expected NAME=FILE.npy")
        path = _existing_file(file)
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise UsageError(
                    f"{option} {spec!r}: {file} is not a .npy file (write it with np.save)"
                )
        try:
            values[name] = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise UsageError(f"{option} {spec!r}: cannot read {file}: {err}") from err
    return values


def _check_feeds(model: Any, values: dict[str, np.ndarray]) -> None:
    """Name the input whose dtype or shape does not fit ``model`` (ONNX Runtime's own message
    names an internal node)."""
    import onnx

    for inp in model.graph.input:
        if inp.name not in values:
            continue
        tensor_type = inp.type.tensor_type
        expected = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
        value = values[inp.name]
        if value.dtype != expected:
            raise UsageError(
                f"input {inp.name}: the model takes {expected}, the file holds {value.dtype}"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if tensor_type.HasField("shape") and (
            len(dims) != value.ndim
            or any(d is not None and d != n for d, n in zip(dims, value.shape, strict=True))
        ):
            wanted = "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
            raise UsageError(
                f"input {inp.name}: the model takes shape {wanted}, the file holds {value.shape}"
            )


def cmd_run(args: argparse.Namespace) -> int:
    """Run the model in ONNX Runtime on ``.npy`` inputs; print and optionally save outputs."""
    from pytensor_onnx.inspect import printable
    from pytensor_onnx.runtimes import ort_session, run_session

    file, model = _model_file(args.model)
    path = os.fspath(file)
    values = _parse_inputs(args.input)
    session = ort_session(path)
    expected = {i.name: i for i in session.get_inputs()}
    unknown = sorted(set(values) - set(expected))
    missing = sorted(set(expected) - set(values))
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing --input for {', '.join(missing)}")
        if unknown:
            parts.append(f"the model has no input {', '.join(unknown)}")
        raise UsageError("; ".join(parts) + f" (model inputs: {', '.join(expected)})")
    _check_feeds(model, values)
    outputs = run_session(session, values, args.timeout)
    out_dir = Path(args.output_dir) if args.output_dir else None
    names = [meta.name for meta in session.get_outputs()]
    if out_dir is not None:
        targets = [_output_file(out_dir, name, i) for i, name in enumerate(names)]
        if len(set(targets)) < len(targets):
            raise UsageError(
                "several outputs would be saved to the same file name: "
                + ", ".join(printable(repr(name)) for name in names)
            )
        out_dir.mkdir(parents=True, exist_ok=True)
    with np.printoptions(threshold=args.max_elements, precision=args.precision):
        for i, (name, value) in enumerate(zip(names, outputs, strict=True)):
            array = np.asarray(value)
            print(f"{printable(name)}: {array.dtype} {list(array.shape)}")
            print(np.array2string(array))
            if out_dir is not None:
                np.save(targets[i], array)
    if out_dir is not None:
        print(f"saved {len(outputs)} output(s) to {out_dir}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve MODEL over the Open Inference Protocol with Ray Serve until interrupted."""
    import time

    file, _ = _model_file(args.model)
    try:
        import ray
        from ray import serve

        from pytensor_onnx.serve import app
    except ImportError as err:
        raise UsageError(f"{err} (pip install 'pytensor-onnx[serve]')") from err
    try:
        application = app(
            file,
            name=args.name,
            replicas=args.replicas,
            max_batch_size=args.max_batch_size,
            batch_wait_ms=args.batch_wait_ms,
            max_request_bytes=args.max_request_bytes,
            intra_op_threads=args.intra_op_threads,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    name = args.name or file.name.removesuffix(".onnx")
    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(application, name=name, route_prefix="/")
        print(f"serving {name} at http://{args.host}:{args.port}/v2/models/{name} (Ctrl-C stops)")
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping")
    finally:
        serve.shutdown()
        ray.shutdown()
    return EXIT_OK


def _user_code_error(module_name: str, err: BaseException) -> str:
    """An error raised while importing the user's module, with the user's code lines."""
    import traceback

    frames = [
        frame
        for frame in traceback.extract_tb(err.__traceback__)
        if "importlib" not in frame.filename and not frame.filename.endswith("cli.py")
    ]
    where = "".join(f"\n  {f.filename}:{f.lineno} in {f.name}: {f.line}" for f in frames)
    return f"importing {module_name!r} failed: {type(err).__name__}: {err}{where}"


def _load_attribute(spec: str) -> Any:
    """The object named by ``module:attr`` or ``path/to/file.py:attr`` (attr may be dotted)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"{spec!r}: expected MODULE:ATTRIBUTE or FILE.py:ATTRIBUTE")
    try:
        if module_name.endswith(".py"):
            file = _existing_file(module_name)
            module_spec = importlib.util.spec_from_file_location(file.stem, file)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise UsageError(f"cannot import {module_name!r}: {err}") from err
        raise UsageError(_user_code_error(module_name, err)) from err
    except UsageError:
        raise
    except Exception as err:
        raise UsageError(_user_code_error(module_name, err)) from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def cmd_export(args: argparse.Namespace) -> int:
    """Export a compiled function, or an ``(inputs, outputs)`` pair, from a module."""
    from pytensor.compile import Function

    from pytensor_onnx.export import export_onnx
    from pytensor_onnx.inspect import model_summary

    obj = _load_attribute(args.source)
    if isinstance(obj, Function):
        call_args: tuple[Any, ...] = (obj, args.output)
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        call_args = (obj[0], obj[1], args.output)
    else:
        raise UsageError(
            f"{args.source} is a {type(obj).__name__}; expected a compiled pytensor.function "
            "or an (inputs, outputs) pair"
        )
    external = {"auto": None, "always": True, "never": False}[args.external_data]
    verify: bool | dict[str, np.ndarray] = args.verify
    if args.verify_input:
        verify = _parse_inputs(args.verify_input, option="--verify-input")
    export_onnx(
        *call_args,
        opset=args.opset,
        float32=args.float32,
        external_data=external,
        external_data_threshold=args.external_data_threshold,
        verify=verify,
        provenance=args.provenance,
        ir_version=args.ir_version,
        portable=args.portable,
    )
    info = model_summary(args.output)
    print(
        f"wrote {args.output}: {len(info.inputs)} input(s), {len(info.outputs)} output(s), "
        f"{info.node_count} nodes, {info.initializer_bytes} initializer bytes"
    )
    return EXIT_OK


# ------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pytensor-onnx`` (every subcommand documented in ``--help``)."""
    from pytensor_onnx import __version__
    from pytensor_onnx.export import DEFAULT_OPSET
    from pytensor_onnx.storage import DEFAULT_EXTERNAL_DATA_THRESHOLD

    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "inspect",
        help="print inputs/outputs with dims, op histogram and initializer bytes",
        description="Print a summary of MODEL: producer and versions, inputs and outputs "
        "with dtypes and dims (named dims for unknown sizes), op histogram, initializer bytes "
        "(inline and in external data).",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser(
        "check",
        help="run the ONNX checker, strict shape inference and an ONNX Runtime load",
        description="Check MODEL with the ONNX checker (full_check), strict shape inference "
        "and by creating an ONNX Runtime CPU session; with --runtime, also run it on random "
        "inputs in other runtimes and compare with onnx.reference. Exit status 1 if any step "
        "fails.",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument(
        "--runtime",
        action="append",
        default=[],
        metavar="NAME",
        help="also run in this runtime: onnxruntime (ort), onnx.reference, openvino, tract, "
        "or all (repeatable; openvino and tract need pip install 'pytensor-onnx[runtimes]')",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --runtime, stop each run of the model after this many seconds (exit "
        "status 1); ONNX Runtime stops itself, the other runtimes run in a child process "
        "that is killed; default: no limit",
    )
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "run",
        help="run a model in ONNX Runtime on .npy inputs",
        description="Run MODEL in ONNX Runtime (CPU). Every model input needs one "
        "--input NAME=FILE.npy. Outputs are printed, and saved as NAME.npy with --output-dir.",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="a model input and the .npy file holding its value (repeat for each input)",
    )
    p.add_argument("--output-dir", "-o", metavar="DIR", help="save each output as DIR/NAME.npy")
    p.add_argument(
        "--max-elements", type=int, default=100, help="print arrays up to this size in full"
    )
    p.add_argument("--precision", type=int, default=8, help="digits printed for floats")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the run after this many seconds (exit status 1); default: no limit",
    )
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser(
        "export",
        help="export a compiled function or (inputs, outputs) from a Python module",
        description="Import SOURCE (MODULE:ATTRIBUTE, or FILE.py:ATTRIBUTE) and export the "
        "attribute, a compiled pytensor.function or an (inputs, outputs) pair of symbolic "
        "variables, to OUT.onnx.",
    )
    p.add_argument("source", metavar="MODULE:ATTRIBUTE")
    p.add_argument("output", metavar="OUT.onnx")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="default-domain opset")
    p.add_argument(
        "--float32", action="store_true", help="convert float64 inputs, weights and computation"
    )
    p.add_argument(
        "--external-data",
        choices=["auto", "always", "never"],
        default="auto",
        help="weights in OUT.onnx.<hash>.data: when over 1 GiB (auto), always, or never",
    )
    p.add_argument(
        "--external-data-threshold",
        type=int,
        default=DEFAULT_EXTERNAL_DATA_THRESHOLD,
        metavar="BYTES",
        help="with external data, weights of at least this size go to the data file",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare with PyTensor on random inputs before writing (unknown dims get "
        "length 3; use --verify-input when the graph needs other lengths)",
    )
    p.add_argument(
        "--verify-input",
        action="append",
        default=[],
        metavar="NAME=FILE.npy",
        help="verify with this value of input NAME (repeat for each input; implies --verify)",
    )
    p.add_argument(
        "--provenance", action="store_true", help="record PyTensor op and variable on each node"
    )
    p.add_argument(
        "--ir-version",
        type=int,
        help="ONNX IR version to write (default: the oldest that holds the model, 8 for "
        "opset 18, which every runtime knowing the opset loads)",
    )
    p.add_argument(
        "--no-portable",
        dest="portable",
        action="store_false",
        help="faster forms for ONNX Runtime that other runtimes cannot run or compute "
        "differently (see docs/deployment.md, Portable operators)",
    )
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol (KServe v2) with Ray Serve",
        description="Serve MODEL over HTTP with the Open Inference Protocol (the KServe v2 REST "
        "API that Triton and KServe clients speak): GET /v2/health/ready, GET "
        "/v2/models/NAME, POST /v2/models/NAME/infer. Requests are batched along the model's "
        "batch dimension. Needs pip install 'pytensor-onnx[serve]'.",
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--name", help="model name in the URLs (default: the file name)")
    p.add_argument("--replicas", type=int, default=1, help="replicas, one session each")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument(
        "--max-batch-size", type=int, default=16, help="most requests run as one batch (1: off)"
    )
    p.add_argument(
        "--batch-wait-ms", type=float, default=2.0, help="wait this long to fill a batch"
    )
    p.add_argument(
        "--max-request-bytes",
        type=int,
        default=64 * 2**20,
        help="refuse larger requests (status 400)",
    )
    p.add_argument(
        "--intra-op-threads", type=int, default=1, help="ONNX Runtime threads per replica"
    )
    p.add_argument(
        "--address", help="join this Ray cluster (e.g. ray://head:10001; default: local Ray)"
    )
    p.set_defaults(handler=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (``pytensor-onnx inspect m.onnx | head``): stop quietly, and keep
        # Python from reporting the pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except UsageError as err:
        print(f"{PROG} {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:
        print(f"{PROG} {args.command}: error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
