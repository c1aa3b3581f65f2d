"""Benchmark 2: the benchmark MLP exported by pytensor-onnx vs by ``torch.onnx.export``.

The same architecture (784-512-512-10, ReLU, softmax) and the same float32 weights are exported
from PyTensor (``pytensor_onnx.export_onnx``) and from PyTorch (``torch.onnx.export``, its
default exporter), both with a dynamic batch dimension.  Both models run in ONNX Runtime with
the same session options, timed in turn; reported: node counts, median latency at batch 1 and
256, and the
largest difference between the two models' outputs.

Needs ``torch`` (a benchmark-only dependency, see ``benchmarks/README.md``).
Usage: ``python benchmarks/bench_torch.py``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    MLP_SIZES,
    emit,
    interleaved_call_times,
    mlp_weights,
    pytensor_mlp,
)

BATCHES = (1, 256)


def torch_model() -> Any:
    """The benchmark MLP in PyTorch, with the weights of :func:`common.mlp_weights`."""
    import torch

    layers: list[Any] = []
    weights = mlp_weights("float32")
    for i, (w, b) in enumerate(weights):
        linear = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(weights) - 1:
            layers.append(torch.nn.ReLU())
    layers.append(torch.nn.Softmax(dim=-1))
    return torch.nn.Sequential(*layers).eval()


def export_torch() -> bytes:
    """``torch.onnx.export`` of the MLP with a dynamic batch dimension, serialized."""
    import torch

    example = torch.zeros(2, MLP_SIZES[0])
    program = torch.onnx.export(
        torch_model(),
        (example,),
        input_names=["x"],
        output_names=["probabilities"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        dynamo=True,
    )
    return program.model_proto.SerializeToString()


def export_pytensor() -> bytes:
    """``pytensor_onnx.export_onnx`` of the same MLP (weights as initializers)."""
    from pytensor_onnx import export_onnx

    x, probabilities, _ = pytensor_mlp("float32")
    return export_onnx([x], [probabilities]).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="ORT intra-op threads")
    args = parser.parse_args()
    import onnx
    import onnxruntime as ort

    models = {"pytensor-onnx": export_pytensor(), "torch.onnx.export": export_torch()}
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {
        name: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        for name, data in models.items()
    }
    rng = np.random.default_rng(1)
    rows = []
    for name, data in models.items():
        proto = onnx.load_from_string(data)
        row: dict[str, Any] = {
            "exporter": name,
            "nodes": len(proto.graph.node),
            "ops": sorted({n.op_type for n in proto.graph.node}),
            "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        }
        rows.append(row)
    max_diff = 0.0
    for batch in BATCHES:
        x = rng.normal(size=(batch, MLP_SIZES[0])).astype("float32")
        calls = {}
        outputs = []
        for row in rows:
            session = sessions[row["exporter"]]
            feeds = {session.get_inputs()[0].name: x}
            outputs.append(session.run(None, feeds)[0])
            calls[row["exporter"]] = lambda s=session, f=feeds: s.run(None, f)
        times = interleaved_call_times(calls, samples=21)
        for row in rows:
            row[f"batch_{batch}"] = times[row["exporter"]]
        max_diff = max(max_diff, float(np.max(np.abs(outputs[0] - outputs[1]))))
    emit({"benchmark": "torch", "threads": args.threads, "rows": rows, "max_abs_diff": max_diff})


if __name__ == "__main__":
    main()
