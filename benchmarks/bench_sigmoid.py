"""Sigmoid constructions in ONNX Runtime: speed and accuracy (issue #20).

ONNX Runtime's ``Sigmoid`` loses the negative tail (float64 and float32), so ``pt.sigmoid``
exports as a decomposition.  This script times the candidates on a vector of ``--size``
values (N(0, 20^2), one intra-op thread, interleaved medians) and measures their largest
error over [-800, 800] and the special values, in ulps of the output dtype against the value
computed in extended precision (``numpy.longdouble``):

- ``native``: ONNX ``Sigmoid``;
- ``exported``: what ``export_onnx`` emits for ``pt.sigmoid`` (``e = exp(-|x|)``,
  ``exp(min(x, 0)) / (1 + e)``);
- ``where_numerator``: ``where(x < 0, e, 1) / (1 + e)`` (exported until 2026-12);
- ``two_divisions``: ``where(x < 0, e / (1 + e), 1 / (1 + e))``;
- ``reciprocal``: ``r = 1 / (1 + e)``, ``where(x < 0, e * r, r)``;
- ``two_exps``: ``where(x < 0, exp(x) / (1 + exp(x)), 1 / (1 + exp(-x)))``.

Usage: ``python benchmarks/bench_sigmoid.py [--size 1000000]``.  Not part of ``run_all.py``;
the numbers are recorded in ``docs/ops/special_functions.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, interleaved_call_times

#: ``e = exp(-|x|)`` and ``d = 1 + e``, which the ``exp(-|x|)`` candidates share.
_DENOMINATOR: list[tuple[str, list[str], str]] = [
    ("Abs", ["x"], "a"),
    ("Neg", ["a"], "na"),
    ("Exp", ["na"], "e"),
    ("Add", ["e", "one"], "d"),
]

#: Hand-built candidates: ONNX nodes from input ``x`` to output ``y``, with the scalar
#: constants ``one`` and ``zero``.
CANDIDATES: dict[str, list[tuple[str, list[str], str]]] = {
    "native": [("Sigmoid", ["x"], "y")],
    "where_numerator": [
        *_DENOMINATOR,
        ("Less", ["x", "zero"], "negative"),
        ("Where", ["negative", "e", "one"], "numerator"),
        ("Div", ["numerator", "d"], "y"),
    ],
    "two_divisions": [
        *_DENOMINATOR,
        ("Div", ["e", "d"], "low"),
        ("Div", ["one", "d"], "high"),
        ("Less", ["x", "zero"], "negative"),
        ("Where", ["negative", "low", "high"], "y"),
    ],
    "reciprocal": [
        *_DENOMINATOR,
        ("Reciprocal", ["d"], "r"),
        ("Mul", ["e", "r"], "low"),
        ("Less", ["x", "zero"], "negative"),
        ("Where", ["negative", "low", "r"], "y"),
    ],
    "two_exps": [
        ("Exp", ["x"], "e"),
        ("Neg", ["x"], "nx"),
        ("Exp", ["nx"], "f"),
        ("Add", ["e", "one"], "d1"),
        ("Div", ["e", "d1"], "low"),
        ("Add", ["f", "one"], "d2"),
        ("Div", ["one", "d2"], "high"),
        ("Less", ["x", "zero"], "negative"),
        ("Where", ["negative", "low", "high"], "y"),
    ],
}


def hand_built(nodes: list[tuple[str, list[str], str]], dtype: str) -> onnx.ModelProto:
    """A model of ``nodes`` on a float vector of ``dtype``."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    used = {name for _, inputs, _ in nodes for name in inputs}
    constants = [
        helper.make_tensor(name, elem, [], [value])
        for name, value in [("one", 1.0), ("zero", 0.0)]
        if name in used
    ]
    graph = helper.make_graph(
        [helper.make_node(op, inputs, [output]) for op, inputs, output in nodes],
        "sigmoid",
        [helper.make_tensor_value_info("x", elem, [None])],
        [helper.make_tensor_value_info("y", elem, [None])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    return model


def exported(dtype: str) -> onnx.ModelProto:
    """``pt.sigmoid`` as ``export_onnx`` writes it, input renamed to ``x``."""
    import pytensor.tensor as pt

    from pytensor_onnx import export_onnx

    x = pt.vector("x", dtype=dtype)
    return export_onnx([x], [pt.sigmoid(x)])


def max_ulps(got: np.ndarray, x: np.ndarray) -> float:
    """Largest error of ``got`` in ulps of its dtype, against extended precision."""
    wide = x.astype(np.longdouble)
    e = np.exp(-np.abs(wide))
    exact = np.where(wide < 0, e, 1) / (1 + e)
    rounded = exact.astype(got.dtype)
    # Flush-to-zero and gradual underflow both count, relative to the smallest subnormal.
    spacing = np.spacing(np.abs(rounded)).astype(np.longdouble)
    same = (got == rounded) | (np.isnan(got) & np.isnan(rounded))
    error = np.where(same, 0, np.abs(got.astype(np.longdouble) - exact) / spacing)
    return float(np.max(error))


def measure(dtype: str, size: int) -> list[dict[str, Any]]:
    """Time and accuracy of every candidate for ``dtype``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    models = {"exported": exported(dtype)}
    models |= {name: hand_built(nodes, dtype) for name, nodes in CANDIDATES.items()}
    sessions = {
        name: ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for name, model in models.items()
    }
    feed_name = {name: s.get_inputs()[0].name for name, s in sessions.items()}
    values = (np.random.default_rng(0).standard_normal(size) * 20).astype(dtype)
    with np.errstate(over="ignore"):
        grid = np.concatenate(
            [np.linspace(-800, 800, 400001), [-np.inf, np.inf, np.nan, -0.0, 0.0, 5e-324, -1e300]]
        ).astype(dtype)
    times = interleaved_call_times(
        {
            name: (lambda s=s, n=feed_name[name]: s.run(None, {n: values}))
            for name, s in sessions.items()
        }
    )
    rows = []
    for name, session in sessions.items():
        got = session.run(None, {feed_name[name]: grid})[0]
        rows.append(
            {
                "dtype": dtype,
                "candidate": name,
                "nodes": sum(n.op_type != "Constant" for n in models[name].graph.node),
                "ms": times[name] * 1e3,
                "max_ulps": max_ulps(got, grid),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = [row for dtype in ("float64", "float32") for row in measure(dtype, args.size)]
    for row in rows:
        print(
            f"{row['dtype']:8s} {row['candidate']:14s} {row['nodes']:2d} ops "
            f"{row['ms']:7.2f} ms   max {row['max_ulps']:.3g} ulps"
        )
    emit({"benchmark": "sigmoid", "size": args.size, "rows": rows})


if __name__ == "__main__":
    main()
