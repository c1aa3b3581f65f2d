"""Serve an exported model with Ray Serve over the Open Inference Protocol (KServe v2).

:func:`app` returns a Ray Serve application answering

=====================================  ==============================================
``GET  /v2/health/live``, ``/ready``   200 while the replica runs
``GET  /v2/models/{name}``             model metadata: inputs, outputs, dtypes, shapes
``GET  /v2/models/{name}/ready``       200 when the model is loaded
``POST /v2/models/{name}/infer``       inference (JSON or binary tensor data)
=====================================  ==============================================

Each replica holds one ONNX Runtime session.  Concurrent requests are stacked along the
symbolic leading dimension of the model's inputs and run as one batch (Ray Serve's
dynamic batching); requests whose other inputs (scalars, fixed-shape parameters) differ
run separately.  A model whose rows are not independent (the output of one row depends on
the others: batch statistics, random draws) would give different answers batched, so a
replica checks this at start-up on a probe batch
(:func:`pytensor_onnx.oip.rows_are_independent`) and serves such a model unbatched.

``pytensor-onnx serve MODEL.onnx`` runs :func:`app` from the command line.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from pytensor_onnx.oip import (
    HEADER_LENGTH,
    InferRequest,
    ModelSignature,
    ProtocolError,
    rows_are_independent,
)

try:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "pytensor_onnx.serve needs Ray Serve: pip install 'pytensor-onnx[serve]'"
    ) from err

#: Requests with a larger body are refused (status 400) before they are decoded.
DEFAULT_MAX_REQUEST_BYTES = 64 * 2**20

_MODEL_ROUTE = re.compile(r"^/v2/models/([^/]+)(?:/versions/1)?(/ready|/infer)?/?$")


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _group_key(request: InferRequest, batched_inputs: frozenset[str]) -> tuple[Any, ...]:
    """Requests with equal keys can be stacked: same outputs, same non-batched inputs."""
    fixed = tuple(
        (name, value.tobytes())
        for name, value in sorted(request.feeds.items())
        if name not in batched_inputs
    )
    return (tuple(request.outputs), fixed)


class ModelServer:
    """One replica: an ONNX Runtime session answering the Open Inference Protocol."""

    def __init__(
        self,
        path: str,
        name: str,
        max_batch_size: int,
        batch_wait_ms: float,
        max_request_bytes: int,
        intra_op_threads: int,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.log_severity_level = 3
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.signature = ModelSignature.from_model(onnx.load(path, load_external_data=False), name)
        self.max_request_bytes = max_request_bytes
        self.batched_inputs = self.signature.batched_inputs
        self.batching = max_batch_size > 1 and rows_are_independent(self.session, self.signature)
        batcher: Any = self._infer_batch  # Ray's batch wrapper, configured per replica
        batcher.set_max_batch_size(max_batch_size if self.batching else 1)
        batcher.set_batch_wait_timeout_s(batch_wait_ms / 1000)

    async def __call__(self, request: Request) -> Response:
        """Route one HTTP request."""
        path = request.url.path
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):  # the application's route prefix
            path = path[len(root) :]
        if path in ("/v2/health/live", "/v2/health/ready"):
            return JSONResponse({"live" if path.endswith("live") else "ready": True})
        if path in ("/v2", "/v2/"):
            return JSONResponse({"name": "pytensor-onnx", "version": "1", "extensions": []})
        match = _MODEL_ROUTE.match(path)
        if match is None:
            return _error(404, f"no route {path}")
        if match.group(1) != self.signature.name:
            return _error(404, f"unknown model {match.group(1)!r} (served: {self.signature.name})")
        action = match.group(2)
        if action is None:
            return JSONResponse(self.signature.metadata())
        if action == "/ready":
            return JSONResponse({"name": self.signature.name, "ready": True})
        if request.method != "POST":
            return _error(405, "inference needs POST")
        try:
            decoded = await self._read(request)
            outputs = await self._infer_batch(decoded)
            if isinstance(outputs, Exception):
                raise outputs
            body, headers = self.signature.encode(decoded, outputs)
        except ProtocolError as err:
            return _error(err.status, err.message)
        except Exception as err:
            return _error(400, f"the model failed on this input: {type(err).__name__}: {err}")
        return Response(body, headers=headers)

    async def _read(self, request: Request) -> InferRequest:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_request_bytes:
            raise ProtocolError(400, f"the request is larger than {self.max_request_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_request_bytes:
                raise ProtocolError(
                    400, f"the request is larger than {self.max_request_bytes} bytes"
                )
        header = request.headers.get(HEADER_LENGTH)
        if header is not None and not header.isdigit():
            raise ProtocolError(400, f"{HEADER_LENGTH} must be a number, got {header!r}")
        return self.signature.decode(bytes(body), None if header is None else int(header))

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)
    async def _infer_batch(
        self, requests: list[InferRequest]
    ) -> list[dict[str, np.ndarray] | Exception]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._run_batch, requests)

    def _run_batch(self, requests: list[InferRequest]) -> list[dict[str, np.ndarray] | Exception]:
        """Outputs per request; requests that can be stacked run as one session call."""
        results: list[dict[str, np.ndarray] | Exception] = [{} for _ in requests]
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(_group_key(request, self.batched_inputs), []).append(i)
        for members in groups.values():
            try:
                self._run_group([requests[i] for i in members], members, results)
            except Exception:
                for i in members:  # one bad request must not fail its batch neighbours
                    try:
                        self._run_group([requests[i]], [i], results)
                    except Exception as err:
                        results[i] = err
        return results

    def _run_group(
        self,
        group: Sequence[InferRequest],
        members: Sequence[int],
        results: list[dict[str, np.ndarray] | Exception],
    ) -> None:
        first = group[0]
        if len(group) == 1:
            feeds = first.feeds
        else:
            feeds = {
                name: np.concatenate([r.feeds[name] for r in group])
                if name in self.batched_inputs
                else value
                for name, value in first.feeds.items()
            }
        values = self.session.run(first.outputs, feeds)
        sizes = [next(iter(r.feeds[n] for n in self.batched_inputs)).shape[0] for r in group]
        offsets = np.cumsum([0, *sizes])
        for i, start, stop in zip(members, offsets[:-1], offsets[1:], strict=True):
            results[i] = {
                name: value[start:stop] if len(group) > 1 else value
                for name, value in zip(first.outputs, values, strict=True)
            }


def app(
    path: str | os.PathLike[str],
    *,
    name: str | None = None,
    replicas: int = 1,
    max_batch_size: int = 16,
    batch_wait_ms: float = 2.0,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    intra_op_threads: int = 1,
    ray_actor_options: dict[str, Any] | None = None,
) -> serve.Application:
    """The Ray Serve application serving the ONNX model at ``path``.

    Parameters
    ----------
    path
        The ``.onnx`` file (with its external data next to it).
    name
        The model name in the URLs; default: the file name without ``.onnx``.
    replicas
        Number of replicas, each with its own ONNX Runtime session.
    max_batch_size
        Most requests stacked into one run; 1 disables batching.
    batch_wait_ms
        How long a replica waits for more requests before running a partial batch.
    max_request_bytes
        Larger requests are refused with status 400.
    intra_op_threads
        ONNX Runtime threads per replica.
    ray_actor_options
        Passed to the Ray Serve deployment (e.g. ``{"num_cpus": 1}``).

    Returns
    -------
    ray.serve.Application
        Run it with ``ray.serve.run(application, route_prefix="/")``.
    """
    file = Path(path).resolve()
    model = onnx.load(os.fspath(file), load_external_data=False)
    model_name = name or file.name.removesuffix(".onnx")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", model_name):
        raise ValueError(f"model name {model_name!r}: use letters, digits, '_', '.', '-'")
    ModelSignature.from_model(model, model_name)  # refuse unservable models here, not in Ray
    if replicas < 1 or max_batch_size < 1 or batch_wait_ms < 0:
        raise ValueError("replicas and max_batch_size must be >= 1, batch_wait_ms >= 0")
    deployment = serve.deployment(
        name=model_name,
        num_replicas=replicas,
        max_ongoing_requests=max(4 * max_batch_size, 16),
        ray_actor_options=ray_actor_options or {"num_cpus": 0},
    )(ModelServer)
    return deployment.bind(
        os.fspath(file),
        model_name,
        max_batch_size,
        batch_wait_ms,
        max_request_bytes,
        intra_op_threads,
    )
