"""Serving over the Open Inference Protocol with Ray Serve, driven by Triton's own client.

One local Ray instance for the module (``xdist_group`` keeps these tests in one worker),
HTTP on 127.0.0.1 only, a bounded number of requests.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from pytensor_onnx.cli import main

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")
triton = pytest.importorskip("tritonclient.http")

from pytensor_onnx.oip import ModelSignature, rows_are_independent  # noqa: E402
from pytensor_onnx.serve import app  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")

W = np.random.default_rng(0).normal(size=(4, 3))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve")
    x = pt.matrix("x", shape=(None, 4))
    scale = pt.scalar("scale")
    logits = pt.tanh(x @ W) * scale
    centred = x - x.mean(axis=0)
    paths = {"mlp": root / "mlp.onnx", "centred": root / "centred.onnx"}
    export_onnx([x, scale], [logits, pt.special.softmax(logits, axis=-1)], paths["mlp"])
    export_onnx([x], [centred], paths["centred"])
    return paths


@pytest.fixture(scope="module")
def server(models: dict[str, Path]) -> Iterator[str]:
    port = _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=2**28)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(
            app(models["mlp"], replicas=2, max_batch_size=8, max_request_bytes=2**20),
            name="mlp",
            route_prefix="/",
        )
        serve.run(app(models["centred"], max_batch_size=8), name="centred", route_prefix="/c")
        yield f"127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def test_command_line_serves_until_interrupted(models: dict[str, Path]) -> None:
    """``pytensor-onnx serve`` (first in the module: its own local Ray instance)."""
    port = _free_port()
    command = [sys.executable, "-m", "pytensor_onnx", "serve", str(models["mlp"])]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--name", "digits", "--max-batch-size", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving digits at http://127.0.0.1:{port}/v2/models/digits")
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        x = np.ones((2, 4))
        got = _infer(client, x, 1.0, model="digits").as_numpy("output_0")
        np.testing.assert_array_equal(
            got, _expected(models["mlp"], {"x": x, "scale": np.array(1.0)})[0]
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.onnx"], "missing.onnx: no such file"),
        (["{mlp}", "--name", "a/b"], "model name 'a/b'"),
        (["{mlp}", "--replicas", "0"], "replicas and max_batch_size must be >= 1"),
    ],
)
def test_command_line_usage_errors(
    models: dict[str, Path], arguments: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    status = main(["serve", *(a.format(mlp=models["mlp"]) for a in arguments)])
    assert status == 2
    assert message in capsys.readouterr().err


def _expected(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _infer(
    client: Any, x: np.ndarray, scale: float, binary: bool = True, model: str = "mlp"
) -> Any:
    inputs = [triton.InferInput("x", list(x.shape), "FP64"), triton.InferInput("scale", [], "FP64")]
    inputs[0].set_data_from_numpy(x, binary_data=binary)
    inputs[1].set_data_from_numpy(np.array(scale), binary_data=binary)
    return client.infer(model, inputs)


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_triton_client_health_metadata_and_inference(server: str, models: dict[str, Path]) -> None:
    client = triton.InferenceServerClient(server)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("mlp")
    meta = client.get_model_metadata("mlp")
    assert meta["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1, 4]},
        {"name": "scale", "datatype": "FP64", "shape": []},
    ]
    x = np.random.default_rng(1).normal(size=(5, 4))
    want = _expected(models["mlp"], {"x": x, "scale": np.array(2.0)})
    for binary in (True, False):
        result = _infer(client, x, 2.0, binary=binary)
        for output, expected in zip(meta["outputs"], want, strict=True):
            np.testing.assert_array_equal(result.as_numpy(output["name"]), expected)


def test_concurrent_requests_are_batched_correctly(server: str, models: dict[str, Path]) -> None:
    """64 requests from 16 clients, with two different scales (never stacked together)."""
    rng = np.random.default_rng(2)
    cases = [(rng.normal(size=(int(rng.integers(1, 5)), 4)), float(i % 2 + 1)) for i in range(64)]

    def call(case: tuple[np.ndarray, float]) -> np.ndarray:
        client = triton.InferenceServerClient(server)
        return _infer(client, *case).as_numpy("output_1")

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, cases))
    for (x, scale), got in zip(cases, results, strict=True):
        want = _expected(models["mlp"], {"x": x, "scale": np.array(scale)})[1]
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


def test_model_with_dependent_rows_is_served_unbatched(
    server: str, models: dict[str, Path]
) -> None:
    rng = np.random.default_rng(3)
    cases = [rng.normal(size=(3, 4)) for _ in range(16)]

    def call(x: np.ndarray) -> np.ndarray:
        body = {
            "inputs": [
                {"name": "x", "datatype": "FP64", "shape": [3, 4], "data": x.ravel().tolist()}
            ]
        }
        status, response = _post(
            f"http://{server}/c/v2/models/centred/infer", json.dumps(body).encode()
        )
        assert status == 200, response
        return np.array(response["outputs"][0]["data"]).reshape(3, 4)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, cases))
    for x, got in zip(cases, results, strict=True):
        np.testing.assert_allclose(got, x - x.mean(axis=0), rtol=1e-12, atol=1e-15)


def test_rows_are_independent_probe(models: dict[str, Path]) -> None:
    for name, independent in (("mlp", True), ("centred", False)):
        path = str(models[name])
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        signature = ModelSignature.from_model(onnx.load(path), name)
        assert rows_are_independent(session, signature) is independent


@pytest.mark.parametrize(
    ("route", "body", "status", "message"),
    [
        ("/v2/models/nope/infer", b"{}", 404, "unknown model 'nope'"),
        ("/v2/models/mlp/infer", b"{not json", 400, "not valid JSON"),
        ("/v2/models/mlp/infer", b'{"inputs": []}', 400, "missing input(s) 'x', 'scale'"),
        (
            "/v2/models/mlp/infer",
            b'{"inputs": [{"name": "X", "datatype": "FP64", "shape": [], "data": [1]}]}',
            400,
            "the model has no input 'X'",
        ),
        (
            "/v2/models/mlp/infer",
            b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1,2,3,4]},'
            b'{"name": "scale", "datatype": "FP64", "shape": [], "data": [1]}]}',
            400,
            "the model takes FP64",
        ),
        (
            "/v2/models/mlp/infer",
            b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1,2,3]},'
            b'{"name": "scale", "datatype": "FP64", "shape": [], "data": [1]}]}',
            400,
            "the model takes shape [-1, 4]",
        ),
        ("/v2/models/mlp/infer", b" " * (2**20 + 1), 400, "larger than 1048576 bytes"),
    ],
)
def test_bad_requests_are_answered(
    server: str, route: str, body: bytes, status: int, message: str
) -> None:
    got, response = _post(f"http://{server}{route}", body)
    assert got == status
    assert message in response["error"]
    assert triton.InferenceServerClient(server).is_model_ready("mlp")


def _replicas(app_name: str) -> dict[str, Any]:
    """The application's replica actors by name."""
    return {
        actor["name"]: ray.get_actor(actor["name"], namespace=actor["namespace"])
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::{app_name}#")
    }


def _running_replicas(app_name: str) -> int:
    deployments = serve.status().applications[app_name].deployments
    return int(deployments[app_name].replica_states.get("RUNNING", 0))


def test_killed_replica_under_load_loses_no_request(server: str, models: dict[str, Path]) -> None:
    """A replica killed mid-load is restarted by Ray; clients retry refused/failed calls
    (the documented client behaviour), and every request gets its correct answer."""
    x = np.random.default_rng(4).normal(size=(2, 4))
    want = _expected(models["mlp"], {"x": x, "scale": np.array(1.0)})[1]
    stop = threading.Event()
    answers: list[np.ndarray] = []
    lost: list[BaseException] = []

    def client_loop() -> None:
        client = triton.InferenceServerClient(server, network_timeout=30)
        while not stop.is_set():
            for attempt in range(50):
                try:
                    answers.append(_infer(client, x, 1.0).as_numpy("output_1"))
                    break
                except Exception as err:  # a 5xx or a dropped connection: retry
                    if attempt == 49:
                        lost.append(err)
                    client = triton.InferenceServerClient(server, network_timeout=30)
                    time.sleep(0.1)

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    before = len(answers)
    original = _replicas("mlp")
    assert len(original) == 2
    victim = sorted(original)[0]
    ray.kill(original[victim], no_restart=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(_replicas("mlp")) - set(original):
        time.sleep(0.5)
    while time.monotonic() < deadline and _running_replicas("mlp") < 2:
        time.sleep(0.5)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not lost
    assert len(answers) > before
    for got in answers:
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)
    assert _running_replicas("mlp") == 2
    assert len(set(_replicas("mlp")) - set(original)) == 1  # Ray started a new replica
