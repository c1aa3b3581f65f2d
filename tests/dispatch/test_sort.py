"""Sorting (``pytensor.tensor.sort``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx, runtimes
from tests.compare import all_nodes, compare_onnx_and_py, input_like

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_sort_argsort(axis: int | None, floatX: str, symbolic: bool) -> None:
    value = RNG.integers(-4, 4, size=(5, 6)).astype(floatX)  # many ties
    value[1, 2] = np.nan
    value[3, 2] = np.nan
    value[0, 0] = -np.inf
    value[4, 5] = np.inf
    x = input_like(value, "x", symbolic)
    outs = [pt.sort(x, axis=axis), pt.argsort(x, axis=axis, kind="stable")]
    compare_onnx_and_py([x], outs, [value])


def test_descending_and_empty() -> None:
    value = RNG.normal(size=(3, 4))
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pt.sort(x, axis=1)[:, ::-1], pt.argsort(-x, axis=0)], [value])
    empty = np.zeros((0, 3))
    e = input_like(empty, "e", symbolic=True)
    compare_onnx_and_py([e], [pt.sort(e, axis=0), pt.argsort(e, axis=1)], [empty])


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3)])
def test_sort_of_empty_tensors_along_each_axis(shape: tuple[int, ...]) -> None:
    # An If gives an input with an empty axis besides the sorted one its empty results
    # (onnxruntime-web 1.30 traps on such a TopK; tests/matrix runs it there).
    empty = np.zeros(shape)
    e = input_like(empty, "e", symbolic=True)
    outs = [pt.sort(e, axis=axis) for axis in range(len(shape))]
    outs += [pt.argsort(e, axis=axis) for axis in range(len(shape))]
    compare_onnx_and_py([e], outs, [empty])


def test_sort_of_a_static_non_empty_shape_is_one_top_k() -> None:
    x = pt.matrix("x", shape=(4, 5))
    model = export_onnx([x], [pt.sort(x, axis=1)])
    # The axis length and the TopK; no guard for empty inputs.
    assert [node.op_type for node in all_nodes(model)] == ["Shape", "TopK"]


@pytest.mark.parametrize(
    "dtype", ["bool", "int8", "int16", "int64", "uint8", "uint16", "uint32", "uint64"]
)
def test_sort_discrete(dtype: str) -> None:
    if dtype == "bool":
        value = RNG.random((4, 7)) > 0.5
    else:
        info = np.iinfo(dtype)
        value = RNG.integers(max(info.min, -50), min(info.max, 50), size=(4, 7)).astype(dtype)
        value[0, :2] = [info.max, info.min]
        if dtype == "uint64":
            value[1, :3] = [2**63, 2**63 - 1, 2**64 - 1]
    x = input_like(value, "x", symbolic=True)
    compare_onnx_and_py([x], [pt.sort(x, axis=1), pt.argsort(x, axis=1, kind="stable")], [value])


def test_sort_gradient(floatX: str, symbolic: bool) -> None:
    value = RNG.normal(size=(4, 5)).astype(floatX)
    x = input_like(value, "x", symbolic)
    weights = np.arange(5, dtype=floatX)
    grad = pytensor.grad((pt.sort(x, axis=1) * weights).sum() + pt.sort(x, axis=0)[0].sum(), x)
    compare_onnx_and_py([x], [grad], [value])


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino", "tract"])
def test_sorts_of_unknown_length_run_everywhere(runtime: str, tmp_path: Path) -> None:
    """Vectors and batches of unknown size: tract evaluates neither a ``TopK`` whose ``k`` is
    a dimension of unknown length nor the empty-batch ``If`` with an int64 ``Cast`` in one
    branch, nor types that ``If`` unless both branches' results have the same length.  No
    NaN and no ties: tract and OpenVINO do not sort NaN last, OpenVINO does not keep ties in
    index order (docs/deployment.md)."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    x = pt.vector("x")
    m = pt.tensor("m", shape=(None, 4))
    u = pt.matrix("u")
    # One If-guarded sort per model: tract 0.23 names every If node "If" and fails on a
    # second one, and OpenVINO 2026.4 returns garbage for one of two such sorts of batches of
    # different widths (docs/deployment.md).
    graphs = [
        ([x, m], [pt.sort(x), pt.argsort(x), x - pt.sort(x)[::-1], pt.sort(m, 1), pt.argsort(m)]),
        ([u], [pt.sort(u, axis=0), pt.argsort(u, axis=0)]),
    ]
    for k, (inputs, outs) in enumerate(graphs):
        path = tmp_path / f"sort{k}.onnx"
        export_onnx(inputs, outs, path)
        fn = pytensor.function(inputs, outs)
        for n, rows in [(6, 3), (0, 0), (1, 1)]:
            every = {
                "x": RNG.permutation(n) - n / 2,
                "m": RNG.normal(size=(rows, 4)),
                "u": RNG.normal(size=(rows, n)),
            }
            values = [every[v.name] for v in inputs]
            got = runtimes.run(runtime, path, {v.name: every[v.name] for v in inputs})
            for g, want in zip(got, fn(*values), strict=True):
                assert g.shape == want.shape
                np.testing.assert_allclose(g, want, rtol=1e-6)


def test_sorts_without_portable_skip_the_tract_forms() -> None:
    """``portable=False``: ``k`` is the axis length itself and the sorted rows are not
    sliced to it (a copy of the results)."""
    m = pt.matrix("m")
    for portable in (True, False):
        ops = [n.op_type for n in all_nodes(export_onnx([m], [pt.sort(m)], portable=portable))]
        assert ops.count("Slice") == (3 if portable else 1)
        assert ("Cast" in ops) == portable
