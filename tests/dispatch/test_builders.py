"""OpFromGraph -> ONNX local functions or inlined graphs, with and without custom grads."""

from __future__ import annotations

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph
from pytensor.tensor.blockwise import Blockwise

from pytensor_onnx import export_onnx
from pytensor_onnx.dispatch.builders import FUNCTION_DOMAIN
from tests.dispatch.test_scan import compare_at_lengths

MODES = ("function", "inline")


def _calls(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node if node.domain == FUNCTION_DOMAIN]


def _softplus_ofg(dtype: str) -> OpFromGraph:
    x = pt.vector("x", dtype=dtype)
    big = np.linspace(0, 1, 100).astype(dtype)  # large enough to be an initializer elsewhere
    out = pt.log1p(pt.exp(x)) + pt.sum(pt.as_tensor(big)) * np.asarray(0.01, dtype)
    return OpFromGraph([x], [out], name="soft_plus")


@pytest.mark.parametrize("mode", MODES)
def test_op_from_graph_used_twice(mode: str, floatX: str) -> None:
    op = _softplus_ofg(floatX)
    x = pt.vector("x", dtype=floatX)
    out = op(op(x) - np.asarray(2.0, floatX)) * np.asarray(3.0, floatX)
    values = [[np.linspace(-3, 3, n).astype(floatX)] for n in (4, 9)]
    model = compare_at_lengths([x], [out], values, op_from_graph=mode)
    if mode == "function":
        assert _calls(model) == ["soft_plus", "soft_plus"]
        assert [f.name for f in model.functions] == ["soft_plus"]
        assert not any(node.op_type == "Log" for node in model.graph.node)
    else:
        assert not _calls(model) and not model.functions


def test_op_from_graph_is_inlined_by_default() -> None:
    # OpenVINO, tract and onnx2torch refuse local functions; every runtime runs inlined graphs.
    op = _softplus_ofg("float64")
    x = pt.vector("x")
    model = export_onnx([x], [op(op(x))])
    assert not _calls(model) and not model.functions
    assert model.ir_version == 8


@pytest.mark.parametrize("mode", MODES)
def test_op_from_graph_several_outputs_and_nested(mode: str, floatX: str) -> None:
    a = pt.matrix("a", dtype=floatX)
    b = pt.matrix("b", dtype=floatX)
    inner = OpFromGraph([a, b], [a.dot(b), a + b], name="mat_ops")
    c = pt.matrix("c", dtype=floatX)
    d = pt.matrix("d", dtype=floatX)
    prod, total = inner(c, d)
    outer = OpFromGraph([c, d], [pt.tanh(prod) + total, prod.sum()], name="outer_ops")
    x = pt.matrix("x", dtype=floatX)
    y = pt.matrix("y", dtype=floatX)
    out1, out2 = outer(x, y)
    rng = np.random.default_rng(1)
    values = [
        [rng.normal(size=(n, n)).astype(floatX), rng.normal(size=(n, n)).astype(floatX)]
        for n in (2, 5)
    ]
    model = compare_at_lengths([x, y], [out1, out2], values, op_from_graph=mode, rtol=1e-5)
    if mode == "function":
        assert sorted(f.name for f in model.functions) == ["mat_ops", "outer_ops"]


@pytest.mark.parametrize("mode", MODES)
def test_op_from_graph_gradients(mode: str, floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    w = pt.scalar("w", dtype=floatX)
    plain = OpFromGraph([x, w], [pt.sin(x) * w], name="plain")

    def custom_grad(inputs, outputs, output_grads):
        # A deliberately different gradient, so that a test would notice if it were ignored.
        xi = inputs[0]
        return [output_grads[0] * 2.0, (output_grads[0] * xi).sum()]

    custom = OpFromGraph([x, w], [pt.sin(x) * w], lop_overrides=custom_grad, name="custom")
    xv = pt.vector("xv", dtype=floatX)
    wv = pt.scalar("wv", dtype=floatX)
    loss = plain(xv, wv).sum() + (custom(xv, wv) ** 2).sum()
    grads = pytensor.grad(loss, [xv, wv])
    values = [[np.linspace(-1, 1, n).astype(floatX), np.asarray(0.7, floatX)] for n in (3, 6)]
    compare_at_lengths([xv, wv], grads, values, op_from_graph=mode)


def test_op_from_graph_inside_scan(floatX: str) -> None:
    op = _softplus_ofg(floatX)
    xs = pt.matrix("xs", dtype=floatX)
    out = pytensor.scan(lambda row: op(row), sequences=[xs], return_updates=False)
    values = [[np.linspace(-2, 2, 3 * n).reshape(n, 3).astype(floatX)] for n in (2, 5)]
    model = compare_at_lengths([xs], [out], values, op_from_graph="function")
    assert [f.name for f in model.functions] == ["soft_plus"]


def test_unknown_mode_is_refused() -> None:
    op = _softplus_ofg("float64")
    x = pt.vector("x")
    with pytest.raises(ValueError, match="op_from_graph"):
        export_onnx([x], [op(x)], op_from_graph="flatten")


@pytest.mark.parametrize("mode", MODES)
def test_blockwise_over_op_from_graph_loops_over_batch(mode: str, floatX: str) -> None:
    """A core Op without a batched converter runs in a Loop over the broadcast batch."""
    a = pt.matrix("a", dtype=floatX)
    b = pt.vector("b", dtype=floatX)
    core = OpFromGraph([a, b], [pt.tanh(a.dot(b)), a.sum()], name="core")
    batched = Blockwise(core, signature="(m,n),(n)->(m),()")
    A = pt.tensor("A", dtype=floatX, shape=(None, None, None, None))
    B = pt.tensor("B", dtype=floatX, shape=(1, None, None))
    out1, out2 = batched(A, B)
    rng = np.random.default_rng(2)
    values = [
        [rng.normal(size=(2, n, 3, 4)).astype(floatX), rng.normal(size=(1, n, 4)).astype(floatX)]
        for n in (1, 3)
    ]
    model = compare_at_lengths([A, B], [out1, out2], values, op_from_graph=mode, rtol=1e-5)
    assert sum(node.op_type == "Loop" for node in model.graph.node) == 1
