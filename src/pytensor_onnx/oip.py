"""The Open Inference Protocol (KServe v2 REST) for one ONNX model, without a server.

This module turns the bytes of an inference request into ONNX Runtime feeds and model
outputs into response bytes, checking everything a client can get wrong against the
model's own signature.  :mod:`pytensor_onnx.serve` puts it behind Ray Serve; nothing here
depends on Ray.

Supported: the JSON tensor representation (``data`` flat or nested, row-major) and the
binary tensor data extension that Triton clients use by default (``binary_data_size``
input parameters, ``binary_data`` output parameters, the
``Inference-Header-Content-Length`` header).  ``BYTES`` tensors are refused: exported
models have numeric inputs only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

#: The HTTP header that separates the JSON part of a request or response from its binary part.
HEADER_LENGTH = "inference-header-content-length"

#: Open Inference Protocol datatype names, by NumPy dtype.
DATATYPES: dict[np.dtype, str] = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}
_DTYPES = {name: dtype for dtype, name in DATATYPES.items()}


class ProtocolError(Exception):
    """A request the protocol answers with an error status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: name, dtype and shape (``None`` for a symbolic dim)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]
    dim_params: tuple[str | None, ...]

    @property
    def datatype(self) -> str:
        """The protocol's datatype name."""
        return DATATYPES[self.dtype]

    def metadata(self) -> dict[str, Any]:
        """The tensor's entry in the model metadata response (``-1`` for symbolic dims)."""
        return {
            "name": self.name,
            "datatype": self.datatype,
            "shape": [-1 if d is None else d for d in self.shape],
        }


def _tensor_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    tensor_type = value.type.tensor_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    if dtype not in DATATYPES:
        raise ValueError(f"{value.name}: the protocol has no datatype for {dtype}")
    dims = tensor_type.shape.dim
    return TensorSpec(
        value.name,
        dtype,
        tuple(d.dim_value if d.HasField("dim_value") else None for d in dims),
        tuple(d.dim_param if d.HasField("dim_param") else None for d in dims),
    )


@dataclass
class InferRequest:
    """A decoded inference request."""

    id: str | None
    feeds: dict[str, np.ndarray]
    outputs: list[str]
    binary_outputs: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ModelSignature:
    """What the protocol needs to know of a model: its name, inputs and outputs."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_model(cls, model: onnx.ModelProto, name: str) -> ModelSignature:
        """The signature of ``model`` (tensor inputs and outputs only)."""
        for value in [*model.graph.input, *model.graph.output]:
            if not value.type.HasField("tensor_type"):
                raise ValueError(f"{value.name}: only tensor inputs and outputs can be served")
        return cls(
            name,
            tuple(_tensor_spec(v) for v in model.graph.input),
            tuple(_tensor_spec(v) for v in model.graph.output),
        )

    @property
    def batched_inputs(self) -> frozenset[str]:
        """The inputs with a symbolic leading dimension, along which requests or chunks
        are stacked (see :func:`rows_are_independent`)."""
        return frozenset(spec.name for spec in self.inputs if spec.shape and spec.shape[0] is None)

    def metadata(self) -> dict[str, Any]:
        """The model metadata response (``GET /v2/models/{name}``)."""
        return {
            "name": self.name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [spec.metadata() for spec in self.inputs],
            "outputs": [spec.metadata() for spec in self.outputs],
        }

    # ------------------------------------------------------------------------ requests
    def decode(self, body: bytes, header_length: int | None = None) -> InferRequest:
        """Check and decode the body of ``POST /v2/models/{name}/infer``.

        Parameters
        ----------
        body
            The request body.
        header_length
            The ``Inference-Header-Content-Length`` header: the length of the JSON part
            when binary tensor data follows it, else ``None``.

        Raises
        ------
        ProtocolError
            (status 400) naming what does not fit the model.
        """
        if header_length is not None and not 0 <= header_length <= len(body):
            raise ProtocolError(
                400, f"Inference-Header-Content-Length {header_length} does not fit the body"
            )
        split = len(body) if header_length is None else header_length
        try:
            request = json.loads(body[:split])
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ProtocolError(400, f"the request is not valid JSON: {err}") from err
        if not isinstance(request, dict):
            raise ProtocolError(400, "the request must be a JSON object")
        inputs = request.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ProtocolError(400, "the request needs 'inputs', a list of tensor objects")
        request_id = request.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise ProtocolError(400, "'id' must be a string")
        binary = memoryview(body)[split:]
        feeds: dict[str, np.ndarray] = {}
        specs = {spec.name: spec for spec in self.inputs}
        for entry in inputs:
            name = entry.get("name")
            if not isinstance(name, str):
                raise ProtocolError(400, "every input needs a 'name'")
            if name in feeds:
                raise ProtocolError(400, f"input {name!r} is given twice")
            if name not in specs:
                raise ProtocolError(
                    400, f"the model has no input {name!r} (inputs: {_names(self.inputs)})"
                )
            feeds[name], binary = _decode_tensor(specs[name], entry, binary)
        if len(binary):
            raise ProtocolError(400, f"{len(binary)} bytes of binary data belong to no input")
        missing = [spec.name for spec in self.inputs if spec.name not in feeds]
        if missing:
            raise ProtocolError(400, f"missing input(s) {', '.join(map(repr, missing))}")
        outputs, binary_outputs = self._requested_outputs(request)
        return InferRequest(request_id, feeds, outputs, binary_outputs)

    def _requested_outputs(self, request: dict[str, Any]) -> tuple[list[str], set[str]]:
        parameters = request.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ProtocolError(400, "'parameters' must be an object")
        binary_default = parameters.get("binary_data_output", False) is True
        requested = request.get("outputs")
        if requested is None:
            names = [spec.name for spec in self.outputs]
            return names, set(names) if binary_default else set()
        if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
            raise ProtocolError(400, "'outputs' must be a list of objects")
        known = {spec.name for spec in self.outputs}
        names, binary = [], set()
        for entry in requested:
            name = entry.get("name")
            if name not in known:
                raise ProtocolError(
                    400, f"the model has no output {name!r} (outputs: {_names(self.outputs)})"
                )
            names.append(name)
            options = entry.get("parameters") or {}
            if options.get("binary_data", binary_default) is True:
                binary.add(name)
        return names, binary

    # ----------------------------------------------------------------------- responses
    def encode(
        self, request: InferRequest, outputs: Mapping[str, np.ndarray]
    ) -> tuple[bytes, dict[str, str]]:
        """The response body and headers for ``outputs`` (model output name -> array)."""
        specs = {spec.name: spec for spec in self.outputs}
        entries, chunks = [], []
        for name in request.outputs:
            value = np.asarray(outputs[name], dtype=specs[name].dtype, order="C")
            entry: dict[str, Any] = {
                "name": name,
                "datatype": specs[name].datatype,
                "shape": list(value.shape),
            }
            if name in request.binary_outputs:
                raw = value.tobytes()
                entry["parameters"] = {"binary_data_size": len(raw)}
                chunks.append(raw)
            else:
                entry["data"] = _json_data(value)
            entries.append(entry)
        response: dict[str, Any] = {"model_name": self.name, "model_version": "1"}
        if request.id is not None:
            response["id"] = request.id
        response["outputs"] = entries
        head = json.dumps(response, allow_nan=True).encode()
        if not chunks:
            return head, {"content-type": "application/json"}
        headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
        return head + b"".join(chunks), headers


def _names(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(spec.name for spec in specs)


def _json_data(value: np.ndarray) -> list[Any]:
    """Flat row-major data; non-finite floats as the JSON extensions NaN/Infinity."""
    return list(value.reshape(-1).tolist())


def _decode_tensor(
    spec: TensorSpec, entry: dict[str, Any], binary: memoryview
) -> tuple[np.ndarray, memoryview]:
    """The array an input entry holds (checked against ``spec``) and the binary data left."""
    name = spec.name
    datatype = entry.get("datatype")
    if datatype != spec.datatype:
        known = "" if datatype in _DTYPES else " (not a numeric protocol datatype)"
        raise ProtocolError(
            400,
            f"input {name!r}: the model takes {spec.datatype}, the request has {datatype!r}"
            + known,
        )
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise ProtocolError(400, f"input {name!r}: 'shape' must be a list of non-negative ints")
    if len(shape) != len(spec.shape) or any(
        d is not None and d != n for d, n in zip(spec.shape, shape, strict=True)
    ):
        wanted = "[" + ", ".join("-1" if d is None else str(d) for d in spec.shape) + "]"
        raise ProtocolError(400, f"input {name!r}: the model takes shape {wanted}, got {shape}")
    count = math.prod(shape)
    parameters = entry.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if "data" in entry:
            raise ProtocolError(400, f"input {name!r}: both 'data' and binary data given")
        expected = count * spec.dtype.itemsize
        if size != expected:
            raise ProtocolError(
                400, f"input {name!r}: binary_data_size {size}, the shape needs {expected} bytes"
            )
        if size > len(binary):
            raise ProtocolError(400, f"input {name!r}: the body ends inside its binary data")
        array = np.frombuffer(binary[:size], dtype=spec.dtype).reshape(shape).copy()
        return array, binary[size:]
    if "data" not in entry:
        raise ProtocolError(400, f"input {name!r}: no 'data' and no binary data")
    try:
        array = np.asarray(entry["data"], dtype=spec.dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise ProtocolError(400, f"input {name!r}: 'data' is not {spec.datatype}: {err}") from err
    if array.dtype == np.object_ or array.size != count:
        raise ProtocolError(
            400, f"input {name!r}: 'data' holds {array.size} values, shape {shape} needs {count}"
        )
    _check_exact(spec, entry["data"], array)
    return array.reshape(shape), binary


def _check_exact(spec: TensorSpec, data: Any, array: np.ndarray) -> None:
    """Refuse JSON values that a cast would silently change (1.5 for INT64, 2 for BOOL)."""
    if spec.dtype.kind in "iub":
        flat = np.asarray(data, dtype=object).reshape(-1)
        if spec.dtype.kind == "b":
            bad = [v for v in flat if not isinstance(v, bool)]
        else:
            bad = [v for v in flat if isinstance(v, bool) or not isinstance(v, int)]
            if not bad and flat.size:
                info = np.iinfo(spec.dtype)
                bad = [v for v in flat if not info.min <= v <= info.max]
        if bad:
            raise ProtocolError(
                400, f"input {spec.name!r}: {bad[0]!r} is not a {spec.datatype} value"
            )


# -------------------------------------------------------------------------------- batching
def probe_feeds(signature: ModelSignature, rows: int) -> dict[str, np.ndarray]:
    """Deterministic inputs with ``rows`` rows in the batched inputs (other symbolic
    dimensions 1): floats in [0.5, 1.5), integers 0, booleans False."""
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in signature.inputs:
        shape = [
            rows if i == 0 and spec.name in signature.batched_inputs else (d or 1)
            for i, d in enumerate(spec.shape)
        ]
        if spec.dtype.kind == "f":
            feeds[spec.name] = np.asarray(rng.random(shape) + 0.5, dtype=spec.dtype)
        else:
            feeds[spec.name] = np.zeros(shape, spec.dtype)
    return feeds


def rows_are_independent(session: Any, signature: ModelSignature) -> bool:
    """Whether the model maps rows to rows: run on a 3-row probe batch, each output equals
    the stacked outputs of the rows run one at a time.

    Stacking requests (serving) or splitting data into chunks (Dask) is only correct for
    such models; batch statistics or random draws make it false.

    Parameters
    ----------
    session
        An ``onnxruntime.InferenceSession`` of the model.
    signature
        The model's signature.
    """
    if not signature.batched_inputs:
        return False
    feeds = probe_feeds(signature, 3)
    batched = signature.batched_inputs
    try:
        together = session.run(None, feeds)
        alone = [
            session.run(None, {k: v[i : i + 1] if k in batched else v for k, v in feeds.items()})
            for i in range(3)
        ]
    except Exception:
        return False
    for k, value in enumerate(together):
        if np.ndim(value) == 0:
            return False
        stacked = np.concatenate([row[k] for row in alone])
        if stacked.shape != value.shape or not np.allclose(
            stacked, value, rtol=1e-6, atol=0, equal_nan=True
        ):
            return False
    return True
