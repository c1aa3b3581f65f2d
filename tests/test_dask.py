"""Mapping an exported model over Dask arrays (threaded scheduler and a LocalCluster)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx

da = pytest.importorskip("dask.array")
xr = pytest.importorskip("xarray")
distributed = pytest.importorskip("distributed")

from pytensor_onnx.dask import apply_model  # noqa: E402

W = np.random.default_rng(0).normal(size=(4, 3))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dask")
    x = pt.matrix("x", shape=(None, 4))
    scale = pt.scalar("scale")
    logits = pt.tanh(x @ W) * scale
    v = pt.matrix("v")
    paths = {
        "mlp": root / "mlp.onnx",
        "repeat": root / "repeat.onnx",
        "centred": root / "centred.onnx",
    }
    export_onnx([x, scale], [logits.sum(axis=1), pt.special.softmax(logits, axis=-1)], paths["mlp"])
    export_onnx([v], [pt.concatenate([v, v], axis=1)], paths["repeat"])
    export_onnx([v], [v - v.mean(axis=0)], paths["centred"])
    return paths


def _expected(path: Path, *values: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, values, strict=True)))


def test_matches_one_session_run_over_chunks(models: dict[str, Path]) -> None:
    x = np.random.default_rng(1).normal(size=(1000, 4))
    total, probs = apply_model(models["mlp"], da.from_array(x, chunks=(128, 4)), np.array(2.0))
    assert total.chunks == (tuple([128] * 7 + [104]),)
    assert probs.shape == (1000, 3)
    want = _expected(models["mlp"], x, np.array(2.0))
    np.testing.assert_allclose(total.compute(), want[0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(probs.compute(), want[1], rtol=1e-14, atol=1e-15)


def test_numpy_input_chunk_rows_and_output_selection(models: dict[str, Path]) -> None:
    x = np.random.default_rng(2).normal(size=(10, 4))
    (probs,) = apply_model(models["mlp"], x, np.array(1.0), outputs=["output_1"], chunk_rows=3)
    assert probs.chunks[0] == (3, 3, 3, 1)
    np.testing.assert_allclose(
        probs.compute(), _expected(models["mlp"], x, np.array(1.0))[1], rtol=1e-14
    )


def test_trailing_dims_not_static_are_found_from_the_first_row(models: dict[str, Path]) -> None:
    v = np.arange(12.0).reshape(6, 2)
    (out,) = apply_model(models["repeat"], da.from_array(v, chunks=(4, 2)))
    assert out.shape == (6, 4)
    np.testing.assert_array_equal(out.compute(), np.concatenate([v, v], axis=1))


def test_empty_input(models: dict[str, Path]) -> None:
    total, probs = apply_model(models["mlp"], np.zeros((0, 4)), np.array(1.0))
    assert total.compute().shape == (0,)
    assert probs.compute().shape == (0, 3)


def test_xarray_posterior_draws_keep_their_dims(models: dict[str, Path]) -> None:
    x = np.random.default_rng(3).normal(size=(2, 50, 4))
    draws = xr.DataArray(x, dims=("chain", "draw", "feature"), coords={"chain": [0, 1]})
    total, probs = apply_model(
        models["mlp"], draws.chunk({"draw": 20}), np.array(1.0), batch_dims=("chain", "draw")
    )
    assert total.dims == ("chain", "draw")
    assert probs.dims == ("chain", "draw", "output_1_dim_0")
    assert list(probs.coords["chain"].values) == [0, 1]
    want = _expected(models["mlp"], x.reshape(100, 4), np.array(1.0))[1].reshape(2, 50, 3)
    np.testing.assert_allclose(probs.values, want, rtol=1e-14, atol=1e-15)


def test_bad_arguments_are_named(models: dict[str, Path]) -> None:
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"takes 2 input\(s\) \(x, scale\), got 1"):
        apply_model(models["mlp"], x)
    with pytest.raises(ValueError, match="input x: the model takes float64, got float32"):
        apply_model(models["mlp"], x.astype("float32"), np.array(1.0))
    with pytest.raises(ValueError, match="no output"):
        apply_model(models["mlp"], x, np.array(1.0), outputs=["nope"])
    with pytest.raises(ValueError, match="cannot be split into chunks"):
        apply_model(models["centred"], np.zeros((3, 2)))
    draws = xr.DataArray(np.zeros((2, 3, 4)), dims=("chain", "draw", "f"))
    with pytest.raises(ValueError, match=r"has no dim\(s\) \['sample'\]"):
        apply_model(models["mlp"], draws, np.array(1.0), batch_dims=["sample"])


async def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_local_cluster_survives_a_killed_worker(models: dict[str, Path]) -> None:
    """A worker killed mid-computation: Dask reruns its chunks elsewhere; same result."""
    x = np.random.default_rng(4).normal(size=(4000, 4))
    want = _expected(models["mlp"], x, np.array(1.0))[1]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        slow = da.from_array(x, chunks=(100, 4)).map_blocks(_slow_identity, dtype=x.dtype)
        (probs,) = apply_model(models["mlp"], slow, np.array(1.0), outputs=["output_1"])
        future = client.compute(probs)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(client.processing().values()):
            time.sleep(0.05)
        time.sleep(0.3)
        victim = sorted(client.scheduler_info()["workers"])[0]
        client.run(_kill_self, workers=[victim], wait=False)
        got = future.result(timeout=120)
        assert victim not in client.scheduler_info()["workers"]  # it did die mid-run
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-15)


def _slow_identity(block: np.ndarray) -> np.ndarray:
    time.sleep(0.05)
    return block
