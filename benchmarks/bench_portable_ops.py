"""The cost of the portable operator replacements in ONNX Runtime (issue #12).

``ONNXBuilder.op`` writes ``IsNaN``, ``IsInf``, ``GreaterOrEqual`` and ``LessOrEqual`` as
other nodes (``builder.PORTABLE_REPLACEMENTS``) because tract has no float64 ``IsNaN``/
``IsInf`` and onnx2torch no ``GreaterOrEqual``/``LessOrEqual``.  This script times each
operator and its replacement, exported by the builder itself, on ``--size`` float64 values
(one intra-op thread, interleaved medians) and prints the difference per million values.

It also times the portable forms chosen per converter against ``portable=False`` exports:
slices with a step along an axis of unknown size are a ``Gather`` of their positions (tract
slices such an axis with step 1 only), ``GatherND``/``ScatterND`` indices are counted
from the start (tract aborts on negative ones), and entries of a vector of unknown length are
a ``Gather`` rather than a ``GatherElements`` (``onnx.reference`` fails on the latter beyond
64 entries).

Usage: ``python benchmarks/bench_portable_ops.py [--size 1000000]``.  Not part of
``run_all.py``; the numbers are recorded in ``docs/deployment.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytensor.tensor as pt
from onnx import TensorProto, helper
from pytensor.graph.traversal import graph_inputs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import emit, interleaved_call_times

from pytensor_onnx import export_onnx
from pytensor_onnx.builder import PORTABLE_REPLACEMENTS, ONNXBuilder

#: Operator -> (attributes, number of inputs).
CASES: dict[str, tuple[dict[str, int], int]] = {
    "IsNaN": ({}, 1),
    "IsInf": ({}, 1),
    "GreaterOrEqual": ({}, 2),
    "LessOrEqual": ({}, 2),
}


def native(op_type: str, attributes: dict[str, int], n_inputs: int) -> onnx.ModelProto:
    """A one-node model of the original operator."""
    names = [f"x{i}" for i in range(n_inputs)]
    graph = helper.make_graph(
        [helper.make_node(op_type, names, ["y"], **attributes)],
        op_type,
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None]) for n in names],
        [helper.make_tensor_value_info("y", TensorProto.BOOL, [None])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def portable(op_type: str, attributes: dict[str, int], n_inputs: int) -> onnx.ModelProto:
    """The same operator as the builder writes it."""
    builder = ONNXBuilder(18, op_type)
    inputs = [
        ir.Value(name=f"x{i}", type=ir.TensorType(ir.DataType.DOUBLE), shape=ir.Shape([None]))
        for i in range(n_inputs)
    ]
    builder.graph.inputs.extend(inputs)
    out = builder.add_output(builder.op(op_type, inputs, attributes))
    out.name, out.dtype, out.shape = "y", ir.DataType.BOOL, ir.Shape([None])
    builder.graph.opset_imports[""] = 18
    return ir.serde.serialize_model(ir.Model(builder.graph, ir_version=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    assert set(CASES) == set(PORTABLE_REPLACEMENTS)
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2, args.size)) * 100
    values[0, ::97] = np.nan
    values[1, ::89] = np.inf
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    rows = []
    for op_type, (attributes, n_inputs) in CASES.items():
        feeds = {f"x{i}": values[i] for i in range(n_inputs)}
        models = {
            kind: build(op_type, attributes, n_inputs)
            for kind, build in [("native", native), ("portable", portable)]
        }
        rows.append(_time_pair(op_type, models, feeds, args.size, options))
    rows.extend(_time_exports(values[0], options))
    emit({"benchmark": "portable_ops", "size": args.size, "rows": rows})


def _time_exports(values: np.ndarray, options: ort.SessionOptions) -> list[dict[str, object]]:
    """Graphs whose converters choose a portable form, exported both ways, timed per 10**6
    entries of the matrix they read."""
    x, idx = pt.matrix("x"), pt.lvector("idx")
    width = 1000
    matrix = values[: values.size // width * width].reshape(-1, width)
    bound = min(matrix.shape)  # valid along both axes, counted from either end
    positions = np.random.default_rng(1).integers(-bound, bound, size=1000)
    graphs = {
        "reversed rows": x[::-1],
        "every other column": x[:, ::2],
        "x[-2::-3]": x[-2::-3],
        # Negative indices of GatherND/ScatterND counted from the start (Gather of a Range).
        "x[idx, idx]": x[idx, idx],
        "inc_subtensor(x[idx], 1)": pt.inc_subtensor(x[idx], 1.0),
    }
    rows = []
    for name, out in graphs.items():
        inputs = [x, idx] if idx in graph_inputs([out]) else [x]
        feeds = {"x": matrix, "idx": positions} if len(inputs) == 2 else {"x": matrix}
        rows.append(_time_export_pair(name, inputs, out, feeds, matrix.size, options))
    # Entries of a vector of unknown length (GatherElements without portable, else Gather),
    # timed per 10**6 indices, e.g. group effects taken per observation.
    v = pt.vector("v")
    groups = np.random.default_rng(2).integers(-1000, 1000, size=values.size)
    feeds = {"v": values[:1000], "idx": groups}
    rows.append(_time_export_pair("v[idx]", [v, idx], v[idx], feeds, groups.size, options))
    return rows


def _time_export_pair(
    name: str,
    inputs: list[pt.TensorVariable],
    out: pt.TensorVariable,
    feeds: dict[str, np.ndarray],
    size: int,
    options: ort.SessionOptions,
) -> dict[str, object]:
    """Time the ``portable=False`` and default exports of ``inputs -> out``."""
    models = {
        kind: export_onnx(inputs, [out], portable=flag)
        for kind, flag in [("native", False), ("portable", True)]
    }
    return _time_pair(name, models, feeds, size, options)


def _time_pair(
    name: str,
    models: dict[str, onnx.ModelProto],
    feeds: dict[str, np.ndarray],
    size: int,
    options: ort.SessionOptions,
) -> dict[str, object]:
    """Time the ``"native"`` and ``"portable"`` models interleaved; print and return their
    times per 10**6 of ``size`` values."""
    calls = {}
    for kind, model in models.items():
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        calls[kind] = lambda s=session: s.run(None, feeds)
    per_million = {k: t * 1e9 / size for k, t in interleaved_call_times(calls).items()}
    print(
        f"{name:25s} native {per_million['native']:6.2f} ms, "
        f"portable {per_million['portable']:6.2f} ms per 1e6 float64 values"
    )
    return {
        "op": name,
        "native_ms_per_1e6": round(per_million["native"], 3),
        "portable_ms_per_1e6": round(per_million["portable"], 3),
    }


if __name__ == "__main__":
    main()
