"""Serving and Dask scaling of an exported model.

Serving: the browser demo's digits MLP (web/model.onnx, 64-32-10, float32) behind
``pytensor_onnx.serve.app`` on a local Ray instance, driven by ``tritonclient.http`` with
binary tensor data. Reported: the per-request latency of one client against calling ONNX
Runtime in-process (the serving overhead), and a load test (``--requests`` requests of
batch 1 from ``--clients`` concurrent clients) with 1 replica unbatched, 1 replica batched
and 2 replicas batched: throughput, p50 and p99 latency.

Dask: ``pytensor_onnx.dask.apply_model`` over ``--dask-rows`` rows of the digits MLP with a
``distributed.LocalCluster`` of 1 and 2 single-threaded worker processes.

Run alone (it starts Ray and Dask processes): ``python benchmarks/bench_serve.py``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from common import emit, machine_info

MODEL = Path(__file__).resolve().parent.parent / "web" / "model.onnx"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def _client_call(client: Any, x: np.ndarray) -> np.ndarray:
    import tritonclient.http as triton

    inp = triton.InferInput("pixels", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer("digits", [inp]).as_numpy("probabilities")


def _load_test(address: str, requests: int, clients: int) -> dict[str, float]:
    import tritonclient.http as triton

    x = np.random.default_rng(0).random((1, 64), dtype=np.float32)
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients

    def run() -> None:
        client = triton.InferenceServerClient(address, connection_timeout=30)
        mine = []
        for _ in range(per_client):
            start = time.perf_counter()
            _client_call(client, x)
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    _client_call(triton.InferenceServerClient(address), x)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(run) for _ in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "throughput_per_s": len(latencies) / elapsed,
        "p50_ms": 1e3 * _percentile(latencies, 50),
        "p99_ms": 1e3 * _percentile(latencies, 99),
    }


def _single_client_ms(address: str, repeat: int) -> float:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(address)
    x = np.random.default_rng(1).random((1, 64), dtype=np.float32)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _client_call(client, x)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[repeat // 10 :])


def _in_process_ms(repeat: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((1, 64), dtype=np.float32)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, {"pixels": x})
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times[repeat // 10 :])


def bench_serving(requests: int, clients: int) -> dict[str, Any]:
    import ray
    from ray import serve

    from pytensor_onnx.serve import app

    port = _free_port()
    address = f"127.0.0.1:{port}"
    ray.init(include_dashboard=False, log_to_driver=False)
    results: dict[str, Any] = {"in_process_ms": _in_process_ms(2000)}
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        configs = {
            "1 replica, unbatched": {"replicas": 1, "max_batch_size": 1},
            "1 replica, batched (16)": {"replicas": 1, "max_batch_size": 16},
            "2 replicas, batched (16)": {"replicas": 2, "max_batch_size": 16},
        }
        for label, config in configs.items():
            serve.run(app(MODEL, name="digits", **config), name="digits", route_prefix="/")
            row: dict[str, Any] = {"single_client_ms": _single_client_ms(address, 300)}
            row.update(_load_test(address, requests, clients))
            results[label] = row
            serve.delete("digits")
    finally:
        serve.shutdown()
        ray.shutdown()
    return results


def bench_dask(rows: int) -> dict[str, float]:
    import dask.array as da
    from distributed import Client, LocalCluster

    from pytensor_onnx.dask import apply_model

    x = da.random.default_rng(0).random((rows, 64), chunks=(rows // 32, 64)).astype(np.float32)
    timings = {}
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            (probs,) = apply_model(MODEL, x)
            probs.sum().compute()  # warm-up: sessions opened on the workers
            start = time.perf_counter()
            probs.sum().compute()
            timings[f"{workers} worker(s) s"] = time.perf_counter() - start
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--dask-rows", type=int, default=4_000_000)
    args = parser.parse_args()
    emit(
        {
            "benchmark": "serve",
            "machine": machine_info(),
            "serving": bench_serving(args.requests, args.clients),
            "dask": {"rows": args.dask_rows, **bench_dask(args.dask_rows)},
        }
    )


if __name__ == "__main__":
    main()
