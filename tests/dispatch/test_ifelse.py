"""IfElse -> ONNX If: lazy branches, several outputs, nesting, inside loops."""

from __future__ import annotations

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt

from tests.dispatch.test_scan import compare_at_lengths

try:
    from pytensor.conditional import ifelse
except ImportError:  # PyTensor 2
    from pytensor.ifelse import ifelse  # type: ignore[no-redef]


def _node_types(graph: onnx.GraphProto) -> list[str]:
    return [node.op_type for node in graph.node]


def _branches(model: onnx.ModelProto) -> dict[str, onnx.GraphProto]:
    [node] = [n for n in model.graph.node if n.op_type == "If"]
    return {attr.name: attr.g for attr in node.attribute}


def test_ifelse_several_outputs_lazy(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    flag = pt.scalar("flag", dtype="bool")
    then_a, then_b = pt.exp(x).sum(), pt.sqrt(pt.abs(x))
    else_a, else_b = pt.log1p(x**2).max(), x[::-1] * 2
    a, b = ifelse(flag, [then_a, then_b], [else_a, else_b])
    values = [
        [np.linspace(-1, 1, n).astype(floatX), np.array(cond)]
        for n, cond in ((4, True), (7, False), (3, False), (6, True))
    ]
    model = compare_at_lengths([x, flag], [a, b], values)
    branches = _branches(model)
    # Lazy: the work of each branch is inside it, not in the main graph.
    assert "Exp" in _node_types(branches["then_branch"])
    assert "Log" not in _node_types(branches["then_branch"])
    assert "Exp" not in _node_types(model.graph)
    assert "Sqrt" not in _node_types(model.graph)


def test_ifelse_condition_from_data_and_shared_work(floatX: str) -> None:
    x = pt.vector("x", dtype=floatX)
    shared_work = pt.tanh(x)
    out = ifelse(x.sum() > 0, shared_work * 2, shared_work - 1)
    values = [[np.linspace(-1, 3, n).astype(floatX)] for n in (3, 8)]
    values.append([np.linspace(-3, 1, 5).astype(floatX)])
    model = compare_at_lengths(
        [
            x,
        ],
        [out, shared_work],
        values,
    )
    # tanh feeds both branches and an output: it stays in the main graph.
    assert "Tanh" in _node_types(model.graph)


def test_nested_ifelse(floatX: str) -> None:
    x = pt.scalar("x", dtype=floatX)
    y = pt.vector("y", dtype=floatX)
    inner = ifelse(x > 1, y * x, y + x)
    out = ifelse(x > 0, inner, -y)
    values = [[np.asarray(v, floatX), np.arange(4, dtype=floatX)] for v in (-1.0, 0.5, 2.0)]
    compare_at_lengths([x, y], [out], values)


def test_ifelse_inside_scan(floatX: str) -> None:
    xs = pt.vector("xs", dtype=floatX)
    clipped = pytensor.scan(
        lambda v, acc: ifelse(acc > 2, acc * 0.5 + v, acc + v),
        sequences=[xs],
        outputs_info=[pt.zeros((), dtype=floatX)],
        return_updates=False,
    )
    values = [[np.linspace(0, 1, n).astype(floatX)] for n in (6, 11)]
    compare_at_lengths([xs], [clipped], values)
