"""Map an exported model over Dask arrays chunked along the batch axis.

:func:`apply_model` builds a lazy Dask graph with one model run per chunk of the leading
(batch) axis.  Each worker process opens the model once and keeps the ONNX Runtime session
(cached by path and file modification time), so a cluster scores data that does not fit
one machine.  It works with any Dask scheduler: the local threaded one, a
``distributed.LocalCluster`` or an existing scheduler (``distributed.Client(address)``);
the model file must be readable at the same path on every worker.

xarray ``DataArray`` inputs (e.g. posterior draws from ArviZ, dims ``chain, draw, ...``)
are stacked along ``batch_dims`` into the batch axis and the outputs come back as
``DataArray`` objects with those dims restored.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from pytensor_onnx.oip import ModelSignature, rows_are_independent

try:
    import dask
    import dask.array as da
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError("pytensor_onnx.dask needs Dask: pip install 'pytensor-onnx[dask]'") from err


@functools.lru_cache(maxsize=8)
def _session(path: str, mtime_ns: int, size: int, threads: int) -> Any:
    """The ONNX Runtime session of a model file, once per process and file version."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _run_chunk(
    path: str, threads: int, names: tuple[str, ...], outputs: tuple[str, ...], *values: Any
) -> tuple[np.ndarray, ...]:
    """Run the model on one chunk (called on the workers)."""
    stat = os.stat(path)
    session = _session(path, stat.st_mtime_ns, stat.st_size, threads)
    feeds = {name: np.asarray(value) for name, value in zip(names, values, strict=True)}
    return tuple(session.run(list(outputs), feeds))


def _as_dask(value: Any, batch_dims: Sequence[str] | None) -> tuple[Any, Any]:
    """``value`` as a Dask array with the batch dims stacked first, and, for a
    ``DataArray``, the ``(dims, sizes, coords)`` of those batch dims."""
    if hasattr(value, "dims") and hasattr(value, "transpose"):  # xarray.DataArray
        dims = list(batch_dims) if batch_dims is not None else list(value.dims[:1])
        missing = [d for d in dims if d not in value.dims]
        if missing:
            raise ValueError(f"DataArray {value.name!r} has no dim(s) {missing}")
        value = value.transpose(*dims, ...)
        sizes = [value.sizes[d] for d in dims]
        coords = {d: value.coords[d] for d in dims if d in value.coords}
        array = da.asarray(value.data)
        array = array.reshape((math.prod(sizes), *array.shape[len(dims) :]))
        return array, (dims, sizes, coords)
    return da.asarray(value), None


def apply_model(
    path: str | os.PathLike[str],
    *arrays: Any,
    outputs: Sequence[str] | None = None,
    batch_dims: Sequence[str] | None = None,
    chunk_rows: int | None = None,
    intra_op_threads: int = 1,
) -> list[Any]:
    """Lazily run the ONNX model at ``path`` over ``arrays``, one run per batch chunk.

    Parameters
    ----------
    path
        The ``.onnx`` file; workers open it at this path.
    *arrays
        One value per model input, in the model's input order: Dask or NumPy arrays or
        xarray ``DataArray`` objects.  Inputs with a symbolic leading dimension are split
        along it; the others (scalars, fixed-shape parameters) go whole to every run.
    outputs
        Model output names to compute; default all.
    batch_dims
        For ``DataArray`` inputs, the dims stacked into the batch axis (default: each
        array's first dim).
    chunk_rows
        Rows per chunk; default: the chunks of the first batched input along its leading
        axis.
    intra_op_threads
        ONNX Runtime threads per run (per worker thread).

    Returns
    -------
    list
        One lazy Dask array per output (``DataArray`` when an input was one), in order.

    Raises
    ------
    ValueError
        When the arrays do not fit the model, or the model does not map rows to rows
        (checked on a probe batch with :func:`pytensor_onnx.oip.rows_are_independent`).
    """
    file = Path(path).resolve()
    model = onnx.load(os.fspath(file), load_external_data=False)
    signature = ModelSignature.from_model(model, file.stem)
    if len(arrays) != len(signature.inputs):
        raise ValueError(
            f"the model takes {len(signature.inputs)} input(s) "
            f"({', '.join(s.name for s in signature.inputs)}), got {len(arrays)}"
        )
    stat = file.stat()
    session = _session(os.fspath(file), stat.st_mtime_ns, stat.st_size, intra_op_threads)
    if not rows_are_independent(session, signature):
        raise ValueError(
            "the model cannot be split into chunks: on a probe batch its outputs are not the "
            "rows' outputs stacked (an input needs a symbolic leading dimension, every output "
            "one row per input row, and no row may depend on the others)"
        )
    names = tuple(spec.name for spec in signature.inputs)
    wanted = tuple(outputs) if outputs is not None else tuple(s.name for s in signature.outputs)
    out_specs = {spec.name: spec for spec in signature.outputs}
    unknown = [name for name in wanted if name not in out_specs]
    if unknown:
        raise ValueError(f"the model has no output(s) {unknown}")

    values, batch_info = [], None
    for spec, value in zip(signature.inputs, arrays, strict=True):
        array, info = _as_dask(value, batch_dims)
        if array.dtype != spec.dtype:
            raise ValueError(f"input {spec.name}: the model takes {spec.dtype}, got {array.dtype}")
        if array.ndim != len(spec.shape):
            raise ValueError(
                f"input {spec.name}: the model takes {len(spec.shape)} dims, got {array.ndim}"
            )
        batch_info = batch_info or info
        values.append(array)
    batched = [
        i for i, spec in enumerate(signature.inputs) if spec.name in signature.batched_inputs
    ]
    rows = {values[i].shape[0] for i in batched}
    if len(rows) != 1:
        raise ValueError(f"the batched inputs have different numbers of rows: {sorted(rows)}")
    (n_rows,) = rows
    chunks = (
        values[batched[0]].chunks[0]
        if chunk_rows is None
        else da.core.normalize_chunks(chunk_rows, (n_rows,))[0]
    )
    for i in batched:
        values[i] = values[i].rechunk({0: chunks, **{k: -1 for k in range(1, values[i].ndim)}})
    fixed = {
        i: values[i].rechunk(-1).to_delayed().ravel()[0]
        for i in range(len(values))
        if i not in batched
    }

    run = dask.delayed(_run_chunk, nout=len(wanted), pure=True)
    blocks = []
    for k, n in enumerate(chunks):
        args = [
            values[i].blocks[k].to_delayed().ravel()[0] if i in batched else fixed[i]
            for i in range(len(values))
        ]
        blocks.append((n, run(os.fspath(file), intra_op_threads, names, wanted, *args)))

    trailing = _trailing_shapes(file, intra_op_threads, names, wanted, signature, values, batched)
    results = []
    for j, name in enumerate(wanted):
        parts = [
            da.from_delayed(result[j], shape=(n, *trailing[j]), dtype=out_specs[name].dtype)
            for n, result in blocks
        ]
        result = (
            da.concatenate(parts)
            if parts
            else da.empty((0, *trailing[j]), dtype=out_specs[name].dtype)
        )
        results.append(_restore(result, name, batch_info))
    return results


def _trailing_shapes(
    file: Path,
    threads: int,
    names: tuple[str, ...],
    wanted: tuple[str, ...],
    signature: ModelSignature,
    values: list[Any],
    batched: list[int],
) -> list[tuple[int, ...]]:
    """The non-batch dims of each output: from the model where static, else from running
    the model on the first row."""
    specs = {spec.name: spec for spec in signature.outputs}
    static = [specs[name].shape[1:] for name in wanted]
    if all(d is not None for shape in static for d in shape):
        return [tuple(int(d) for d in shape if d is not None) for shape in static]
    if values[batched[0]].shape[0] == 0:
        raise ValueError("no rows, and the model's output shapes are not static")
    probe = [v[:1] if i in batched else v for i, v in enumerate(values)]
    first = _run_chunk(os.fspath(file), threads, names, wanted, *dask.compute(*probe))
    return [tuple(value.shape[1:]) for value in first]


def _restore(result: Any, name: str, batch_info: Any) -> Any:
    """An output with the DataArray batch dims restored, when the inputs had them."""
    if batch_info is None:
        return result
    import xarray as xr

    dims, sizes, coords = batch_info
    array = result.reshape((*sizes, *result.shape[1:]))
    trailing = [f"{name}_dim_{i}" for i in range(result.ndim - 1)]
    return xr.DataArray(array, dims=[*dims, *trailing], coords=coords, name=name)


__all__ = ["apply_model"]
