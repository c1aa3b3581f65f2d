"""Train the browser demo's digit classifier with PyTensor and export it as float32 ONNX.

Writes ``web/model.onnx`` (input ``pixels``: float32 ``[batch, 64]``, an 8x8 image with ink
from 0 to 1; output ``probabilities``: float32 ``[batch, 10]``) and ``web/samples.json`` (one
held-out image per digit, for the page's sample buttons).  Needs scikit-learn, whose
``load_digits`` ships the UCI optical-digits images (8x8, ink counts 0..16)::

    pip install -e ".[demo]" && python web/build_model.py

The network is a 64-32-10 tanh/softmax MLP trained in float64 by full-batch gradient
descent on gradients from ``pytensor.grad``; the export converts it to float32 (what
onnxruntime-web runs fastest) and verifies it against the float64 PyTensor graph.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
from sklearn.datasets import load_digits

from pytensor_onnx import export_onnx, verify

WEB = Path(__file__).resolve().parent
N_TRAIN = 1400


def train(steps: int, hidden: int, seed: int) -> tuple[pt.TensorVariable, pt.TensorVariable, dict]:
    """Fit the MLP; return the symbolic input, the probabilities and the held-out data."""
    digits = load_digits()
    images = digits.data / 16.0
    labels = digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train_idx, test_idx = order[:N_TRAIN], order[N_TRAIN:]

    pixels = pt.matrix("pixels", shape=(None, 64))
    onehot = pt.matrix("onehot", shape=(None, 10))
    w1 = pytensor.shared(rng.normal(scale=0.25, size=(64, hidden)), name="w1")
    b1 = pytensor.shared(np.zeros(hidden), name="b1")
    w2 = pytensor.shared(rng.normal(scale=0.25, size=(hidden, 10)), name="w2")
    b2 = pytensor.shared(np.zeros(10), name="b2")
    params = [w1, b1, w2, b2]
    logits = pt.tanh(pixels @ w1 + b1) @ w2 + b2
    probabilities = pt.special.softmax(logits, axis=-1)
    probabilities.name = "probabilities"
    loss = -pt.mean(pt.sum(onehot * pt.special.log_softmax(logits, axis=-1), axis=-1))
    grads = pytensor.grad(loss, params)
    learning_rate = 0.5
    step = pytensor.function(
        [pixels, onehot],
        loss,
        updates=[(p, p - learning_rate * g) for p, g in zip(params, grads, strict=True)],
    )
    targets = np.eye(10)[labels]
    for _ in range(steps):
        step(images[train_idx], targets[train_idx])
    held_out = {"images": images[test_idx], "labels": labels[test_idx]}
    return pixels, probabilities, held_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=WEB / "model.onnx")
    args = parser.parse_args()

    pixels, probabilities, held_out = train(args.steps, args.hidden, args.seed)
    images, labels = held_out["images"], held_out["labels"]
    predict = pytensor.function([pixels], probabilities)
    accuracy = float(np.mean(predict(images).argmax(axis=1) == labels))
    print(f"held-out accuracy (PyTensor, float64): {accuracy:.3f} on {len(labels)} images")

    export_onnx(
        [pixels],
        [probabilities],
        args.output,
        float32=True,
        graph_name="digits_mlp",
    )
    report = verify(([pixels], [probabilities]), [images], model=args.output)
    print(report)
    if not report.passed:
        raise SystemExit("the float32 model disagrees with PyTensor")

    samples = []
    for digit in range(10):
        index = int(np.flatnonzero(labels == digit)[0])
        image = images[index].astype(np.float32)
        samples.append({"label": digit, "pixels": [float(v) for v in image]})
    lines = ",\n".join(json.dumps(sample) for sample in samples)
    (WEB / "samples.json").write_text(f"[\n{lines}\n]\n")
    print(f"wrote {args.output} and {WEB / 'samples.json'}")


if __name__ == "__main__":
    main()
