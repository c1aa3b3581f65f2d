"""Train a small MLP on scikit-learn's digits with PyTensor, export it to ONNX, check it.

Run with ``python examples/export_mlp.py [--output mlp.onnx]``.  The script trains a
64-32-10 network (float64) with plain gradient descent written in PyTensor, exports the
compiled prediction function with :func:`pytensor_onnx.export_onnx`, runs the file in ONNX
Runtime at batch sizes 1 and 1000 and prints the largest difference to PyTensor together
with what the file contains.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
from sklearn.datasets import load_digits

from pytensor_onnx import export_onnx


def train_mlp(
    steps: int = 300, hidden: int = 32, seed: int = 0
) -> tuple[pytensor.compile.Function, float]:
    """Train a 64-``hidden``-10 softmax MLP on digits; return ``predict`` and test accuracy."""
    digits = load_digits()
    features = digits.data / 16.0
    labels = digits.target
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    train, test = order[:1400], order[1400:]

    x = pt.matrix("x")
    y = pt.ivector("y")
    w1 = pytensor.shared(rng.normal(scale=0.3, size=(64, hidden)), name="W1")
    b1 = pytensor.shared(np.zeros(hidden), name="b1")
    w2 = pytensor.shared(rng.normal(scale=0.3, size=(hidden, 10)), name="W2")
    b2 = pytensor.shared(np.zeros(10), name="b2")
    params = [w1, b1, w2, b2]

    hidden_layer = pt.tanh(x @ w1 + b1)
    probs = pt.special.softmax(hidden_layer @ w2 + b2, axis=-1)
    probs.name = "probabilities"
    loss = -pt.mean(pt.log(probs[pt.arange(y.shape[0]), y]))
    grads = pytensor.grad(loss, params)
    step = pytensor.function(
        [x, y], loss, updates=[(p, p - 0.5 * g) for p, g in zip(params, grads, strict=True)]
    )
    for _ in range(steps):
        step(features[train], labels[train].astype("int32"))

    predict = pytensor.function([x], probs)
    accuracy = float(np.mean(predict(features[test]).argmax(axis=1) == labels[test]))
    return predict, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=Path("mlp.onnx"), help="where to write the model"
    )
    args = parser.parse_args()

    predict, accuracy = train_mlp()
    print(f"trained a 64-32-10 MLP on digits with PyTensor: test accuracy {accuracy:.3f}")

    model = export_onnx(predict, args.output)
    session = ort.InferenceSession(str(args.output), providers=["CPUExecutionProvider"])
    features = load_digits().data / 16.0
    for batch in (1, 1000):
        batch_x = features[:batch]
        (onnx_probs,) = session.run(None, {"x": batch_x})
        difference = float(np.max(np.abs(onnx_probs - predict(batch_x))))
        print(f"batch {batch:4d}: max |ONNX Runtime - PyTensor| = {difference:.3e}", end=" ")
        print(f"({onnx_probs.dtype})")
        if difference > 1e-6:
            raise SystemExit("ONNX Runtime disagrees with PyTensor")

    ops = collections.Counter(node.op_type for node in model.graph.node)
    weights = {init.name: tuple(init.dims) for init in model.graph.initializer}
    print(f"wrote {args.output}: {len(model.graph.node)} nodes {dict(ops)}")
    print(f"initializers: {weights}")
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    print(f"inputs: {dims}")


if __name__ == "__main__":
    main()
