"""Input dimensions that the graph requires to be equal share a name (or take a size)."""

from __future__ import annotations

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from tests.compare import compare_onnx_and_py


def _input_dims(model: onnx.ModelProto) -> dict[str, list[str | int]]:
    return {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }


def test_elementwise_inputs_share_names() -> None:
    x, y, z = pt.vector("x"), pt.vector("y"), pt.matrix("z")
    model = export_onnx([x, y, z], [pt.exp(x) * y, x + z])
    # z's columns broadcast against x; its rows are free.
    assert _input_dims(model) == {"x": ["x_dim0"], "y": ["x_dim0"], "z": ["z_dim0", "x_dim0"]}


def test_broadcastable_dims_stay_free() -> None:
    x = pt.vector("x")
    y = pt.tensor("y", shape=(1,))
    z = pt.matrix("z")
    model = export_onnx([x, y, z], [x + y, z[:1] * x])
    dims = _input_dims(model)
    assert dims["y"] == [1]
    assert dims["z"] == ["z_dim0", "x_dim0"]


def test_matrix_products_and_joins() -> None:
    a, b = pt.tensor3("a"), pt.tensor3("b")
    x, y = pt.matrix("x"), pt.matrix("y")
    outs = [a @ b, pt.concatenate([x, y], axis=0), pt.dot(x.T, a[0])]
    model = export_onnx([a, b, x, y], outs)
    assert _input_dims(model) == {
        "a": ["a_dim0", "a_dim1", "a_dim2"],
        "b": ["a_dim0", "a_dim2", "b_dim2"],
        "x": ["a_dim1", "x_dim1"],  # x.T @ a[0]: x's rows are a's rows
        "y": ["y_dim0", "x_dim1"],  # stacked under x: its columns are x's
    }


def test_blockwise_signature_ties_core_dims() -> None:
    a, b = pt.tensor3("a"), pt.matrix("b")
    model = export_onnx([a, b], [pt.linalg.solve(a, b[None], b_ndim=2)])
    dims = _input_dims(model)
    # "(m,m),(m,n)->(m,n)": a is square and b has a's rows.
    assert dims["a"] == ["a_dim0", "a_dim1", "a_dim1"]
    assert dims["b"] == ["a_dim1", "b_dim1"]


def test_core_op_signature_ties_core_dims() -> None:
    # A core op applied to values of its signature's ranks ("(m,m),(m,n)->(m,n)").
    a, b = pt.matrix("a"), pt.matrix("b")
    model = export_onnx([a, b], [pt.linalg.cholesky(a), pt.linalg.solve(a, b)])
    assert _input_dims(model) == {"a": ["a_dim0", "a_dim0"], "b": ["a_dim0", "b_dim1"]}


def test_initializer_shapes_fix_sizes() -> None:
    x = pt.matrix("x")
    w = pytensor.shared(np.ones((4, 3)), name="w")  # type shape (None, None)
    model = export_onnx([x], [pt.tanh(x @ w)])
    assert _input_dims(model) == {"x": ["x_dim0", 4]}


def test_independent_dims_keep_their_names() -> None:
    x, y = pt.matrix("x"), pt.matrix("y")
    model = export_onnx([x, y], [x[::2].sum() + y.sum(), pt.outer(x[0], y[:, 0])])
    assert _input_dims(model) == {"x": ["x_dim0", "x_dim1"], "y": ["y_dim0", "y_dim1"]}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shared_names_run(dtype: str) -> None:
    a = pt.tensor3("a", dtype=dtype)
    b = pt.tensor3("b", dtype=dtype)
    y = pt.matrix("y", dtype=dtype)
    rng = np.random.default_rng(0)
    values = [
        rng.normal(size=(2, 3, 4)).astype(dtype),
        rng.normal(size=(2, 4, 5)).astype(dtype),
        rng.normal(size=(0, 5)).astype(dtype),
    ]
    compare_onnx_and_py([a, b, y], [pt.concatenate([(a @ b)[0], y]), pt.stack([a, a * 2])], values)


def test_reductions_and_shape_preserving_ops_carry_dims() -> None:
    x, y, z, w = pt.matrix("x"), pt.vector("y"), pt.matrix("z"), pt.vector("w")
    outs = [x.sum(axis=1) + y, pt.special.softmax(x, axis=-1) * z, pt.argmax(z, axis=0) + w]
    model = export_onnx([x, y, z, w], outs)
    assert _input_dims(model) == {
        "x": ["x_dim0", "x_dim1"],
        "y": ["x_dim0"],
        "z": ["x_dim0", "x_dim1"],
        "w": ["x_dim1"],
    }


def test_scan_steps_tie_outer_and_inner_dims() -> None:
    # An RNN: the rows of xs, the state and W's rows are one size, through the inner graph.
    w, h0, xs = pt.matrix("w"), pt.vector("h0"), pt.matrix("xs")
    v, ys = pt.matrix("v"), pt.matrix("ys")
    hs = pytensor.scan(
        lambda x, h, w: pt.tanh(w @ h + x),
        sequences=[xs],
        outputs_info=[h0],
        non_sequences=[w],
        return_updates=False,
    )
    # A two-tap state (mit-sot) and a per-step output (nit-sot) of a free length.
    pairs, sums = pytensor.scan(
        lambda y, a, b: [a + b * y, y.sum() + a.sum()],
        sequences=[ys],
        outputs_info=[{"initial": v, "taps": [-2, -1]}, None],
        return_updates=False,
    )
    model = export_onnx([w, h0, xs, v, ys], [hs, pairs, sums])
    assert _input_dims(model) == {
        "w": ["w_dim0", "w_dim0"],
        "h0": ["w_dim0"],
        "xs": ["xs_dim0", "w_dim0"],
        "v": ["v_dim0", "v_dim1"],
        "ys": ["ys_dim0", "v_dim1"],
    }


def test_scans_with_one_inner_graph_tie_apart() -> None:
    # Two equal scans of unrelated inputs (PyTensor 3 shares their frozen inner graph's
    # variables): their sizes stay free of each other.
    x, y = pt.vector("x"), pt.vector("y")
    h0, g0 = pt.vector("h0"), pt.vector("g0")

    def cumulative(seq, start):
        return pytensor.scan(
            lambda s, h: h + s, sequences=[seq], outputs_info=[start], return_updates=False
        )

    model = export_onnx(
        [x, h0, y, g0], [cumulative(x[:, None] * h0, h0), cumulative(y[:, None] * g0, g0)]
    )
    assert _input_dims(model) == {
        "x": ["x_dim0"],
        "h0": ["h0_dim0"],
        "y": ["y_dim0"],
        "g0": ["g0_dim0"],
    }


def test_nested_scan_states_tie_to_weights() -> None:
    # The inner scan keeps only its last state (PyTensor 3 makes it an untraced state): its
    # initial value, the outer state, still has the weight's size, as do the sequences' rows.
    w = pytensor.shared(np.ones((40, 40)), name="w")
    xs, h0 = pt.tensor3("xs"), pt.vector("h0")

    def block(x_block, h):
        inner = pytensor.scan(
            lambda x, g, w: pt.tanh(w @ g + x),
            sequences=[x_block],
            outputs_info=[h],
            non_sequences=[w],
            return_updates=False,
        )
        return inner[-1]

    hs = pytensor.scan(block, sequences=[xs], outputs_info=[h0], return_updates=False)
    model = export_onnx([h0, xs], [hs])
    assert _input_dims(model) == {"h0": [40], "xs": ["xs_dim0", "xs_dim1", 40]}
