"""Indexing (``pytensor.tensor.subtensor``) against ONNX Runtime and onnx.reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator

from pytensor_onnx import export_onnx, runtimes
from tests.compare import all_nodes, compare_onnx_and_py, input_like, ort_session

RNG = np.random.default_rng(42)


def _data(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return RNG.normal(size=shape).astype(dtype)


BASIC: dict[str, Callable[[pt.TensorVariable], pt.TensorVariable]] = {
    "int": lambda x: x[1],
    "negative_int": lambda x: x[-1, -2],
    "slice": lambda x: x[1:3],
    "negative_slice": lambda x: x[-3:-1, 1:],
    "step": lambda x: x[::2, 1::3],
    "reversed": lambda x: x[::-1],
    "reversed_bounds": lambda x: x[3:0:-2, ::-3],
    "reversed_start_before_first": lambda x: x[-10::-1],
    "reversed_stop_before_first": lambda x: x[2:-10:-1],
    "clamped": lambda x: x[-100:100, 7:100],
    "empty": lambda x: x[3:1],
    "mixed": lambda x: x[1:, -1, ::-1],
    "ellipsis_like": lambda x: x[:, :, 2],
}


@pytest.mark.parametrize("name", sorted(BASIC))
def test_basic_subtensor(name: str, floatX: str, symbolic: bool) -> None:
    value = _data((5, 4, 3), floatX)
    x = input_like(value, "x", symbolic)
    compare_onnx_and_py([x], [BASIC[name](x)], [value])


@pytest.mark.parametrize(
    ("start", "stop", "step"),
    [
        (1, 4, 1),
        (-2, None, 1),
        (None, None, -1),
        (4, 0, -1),
        (-1, -7, -2),
        (-9, None, -1),  # before the first element: empty in Python, not in raw ONNX Slice
        (-9, 3, 1),
        (9, None, -2),
        (2, 2, 3),
    ],
)
def test_symbolic_slice_bounds(start: int | None, stop: int | None, step: int) -> None:
    value = np.arange(6.0)
    x = input_like(value, "x", symbolic=True)
    a, b, c = pt.lscalar("a"), pt.lscalar("b"), pt.lscalar("c")
    start_v = a if start is not None else None
    stop_v = b if stop is not None else None
    inputs = [x, a, b, c]
    values = [value, np.int64(start or 0), np.int64(stop or 0), np.int64(step)]
    compare_onnx_and_py(inputs, [x[start_v:stop_v:c]], values)


def _strided_slices(model: onnx.ModelProto) -> list[str]:
    return [
        node.name for node in all_nodes(model) if node.op_type == "Slice" and len(node.input) == 5
    ]


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "tract"])
def test_steps_along_unknown_sizes_are_gathers(runtime: str, tmp_path: Path) -> None:
    """tract slices an axis of unknown size with step 1 only: other steps gather their
    positions (computed as Python's ``slice.indices`` does), unless ``portable=False``."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    x, k = pt.matrix("x"), pt.lscalar("k")
    outs = [x[::-1], x[1:-1:2, ::-2], x[-100::3], x[k::-1], x[:, ::k]]
    path = tmp_path / "strided.onnx"
    model = export_onnx([x, k], outs, path)
    assert not _strided_slices(model)
    assert _strided_slices(export_onnx([x, k], outs, portable=False))
    fn = pytensor.function([x, k], outs)
    for n, k_value in [(0, -1), (1, 2), (7, -3), (7, 4)]:
        values = [_data((n, 5), "float64"), np.array(k_value)]
        got = runtimes.run(runtime, path, {"x": values[0], "k": values[1]})
        for g, w in zip(got, fn(*values), strict=True):
            assert g.shape == w.shape
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "tract"])
def test_negative_indices_of_several_arrays_and_updates(runtime: str, tmp_path: Path) -> None:
    """``GatherND``/``ScatterND`` get their indices counted from the start in portable
    exports (tract aborts on negative ones, which ONNX allows)."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    x, idx = pt.matrix("x"), pt.lvector("idx")
    outs = [
        x[idx, idx],
        x[idx, -1:],
        pt.inc_subtensor(x[idx], 1.0),
        pt.set_subtensor(x[idx, idx], -5.0),
        pt.inc_subtensor(x[idx, 0], 2.0, ignore_duplicates=True),
    ]
    path = tmp_path / "negative.onnx"
    export_onnx([x, idx], outs, path)
    fn = pytensor.function([x, idx], outs)
    for n, index in [(4, [0, -1, 2, -4]), (1, [-1, -1]), (3, [])]:
        values = [_data((n, n), "float64"), np.array(index, dtype="int64")]
        got = runtimes.run(runtime, path, {"x": values[0], "idx": values[1]})
        for g, w in zip(got, fn(*values), strict=True):
            assert g.shape == w.shape
            np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino", "tract"])
def test_arrays_indexing_a_short_static_vector_are_gather_elements(
    runtime: str, tmp_path: Path
) -> None:
    """Entries of a vector of known length of at most 32 (``onnx.reference``'s limit) are
    taken with ``GatherElements`` (10x faster than ``Gather`` in ONNX Runtime): negative,
    repeated, 2-D, empty index arrays and their gradient (increments)."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    theta, idx, rows = pt.vector("theta", shape=(8,)), pt.lvector("idx"), pt.lmatrix("rows")
    outs = [theta[idx], theta[rows], pt.grad((theta[idx] ** 2).sum(), theta)]
    path = tmp_path / "take.onnx"
    model = export_onnx([theta, idx, rows], outs, path)
    assert [n.op_type for n in all_nodes(model)].count("GatherElements") >= 2
    fn = pytensor.function([theta, idx, rows], outs)
    cases = [([0, -1, 7, 3, 3, -8], [[1, -2], [0, 0], [5, 6]]), ([], np.zeros((0, 2)))]
    for index, matrix in cases:
        values = [_data((8,), "float64"), np.array(index, "int64"), np.array(matrix, "int64")]
        got = runtimes.run(runtime, path, dict(zip(["theta", "idx", "rows"], values, strict=True)))
        for g, w in zip(got, fn(*values), strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("runtime", ["onnxruntime", "onnx.reference", "openvino", "tract"])
def test_increments_of_a_vector_are_scatter_elements(runtime: str, tmp_path: Path) -> None:
    """``inc_subtensor`` of a vector of unknown length (the gradient of ``theta[group]``) is
    one ``ScatterElements`` with ``reduction="add"``: negative, repeated, 2-D and no
    indices, in every runtime, without counting the indices from the start."""
    if not runtimes.is_available(runtime):
        pytest.skip(f"{runtime} is not installed")
    x, idx, rows = pt.vector("x"), pt.lvector("idx"), pt.lmatrix("rows")
    outs = [
        pt.inc_subtensor(x[idx], pt.arange(idx.shape[0], dtype="float64") + 1.0),
        pt.inc_subtensor(x[rows], 2.0),
        pt.grad((x[idx] ** 2).sum(), x),
    ]
    path = tmp_path / "inc.onnx"
    model = export_onnx([x, idx, rows], outs, path)
    ops = [n.op_type for n in all_nodes(model)]
    assert ops.count("ScatterElements") == 3 and "ScatterND" not in ops and "Range" in ops
    fn = pytensor.function([x, idx, rows], outs)
    cases = [(5, [0, -1, 4, 4, -5, 2], [[1, -2], [1, 1]]), (3, [], np.zeros((0, 2)))]
    for n, index, matrix in cases:
        values = [_data((n,), "float64"), np.array(index, "int64"), np.array(matrix, "int64")]
        got = runtimes.run(runtime, path, dict(zip(["x", "idx", "rows"], values, strict=True)))
        for g, w in zip(got, fn(*values), strict=True):
            assert g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-6)


def test_static_length_from_pytensor_chooses_gather_elements() -> None:
    """A vector whose length PyTensor knows statically (a slice of PyMC's raveled parameter
    vector) is taken from with ``GatherElements`` too."""
    x, idx = pt.vector("x"), pt.lvector("idx")
    theta = pt.specify_shape(x[2:10], (8,))
    value = [_data((12,), "float64"), np.array([0, -1, 7, 7, 3])]
    model = compare_onnx_and_py([x, idx], [theta[idx], pt.grad(theta[idx].sum(), x)], value)
    assert "GatherElements" in {n.op_type for n in all_nodes(model)}


def test_arrays_indexing_a_vector_of_any_length_without_portable() -> None:
    """With ``portable=False`` every vector is taken from with ``GatherElements`` (which
    ``onnx.reference`` cannot run beyond 64 entries, so only ONNX Runtime runs this)."""
    x, idx, rows = pt.vector("x"), pt.lvector("idx"), pt.lmatrix("rows")
    outs = [x[idx], x[rows], x[idx[0]], pt.inc_subtensor(x[idx], 1.0)]
    portable = export_onnx([x, idx, rows], outs)
    fast = export_onnx([x, idx, rows], outs, portable=False)
    assert "GatherElements" not in {n.op_type for n in all_nodes(portable)}
    assert "GatherElements" in {n.op_type for n in all_nodes(fast)}
    fn = pytensor.function([x, idx, rows], outs)
    values = [_data((100,), "float64"), np.array([99, -100, 5, 5]), np.array([[-1], [64]])]
    for model in (portable, fast):
        got = ort_session(model).run(None, dict(zip(["x", "idx", "rows"], values, strict=True)))
        for g, w in zip(got, fn(*values), strict=True):
            np.testing.assert_array_equal(g, w)


def test_zero_step_along_unknown_size_is_an_error() -> None:
    x, k = pt.vector("x"), pt.lscalar("k")
    model = export_onnx([x, k], [x[::k]])
    feeds = {"x": np.arange(3.0), "k": np.array(0)}
    with pytest.raises(Exception, match="delta in Range operator can not be zero"):
        ort_session(model).run(None, feeds)
    with pytest.raises(ZeroDivisionError):
        ReferenceEvaluator(model).run(None, feeds)


def test_symbolic_bounds_from_shape_run_at_several_sizes() -> None:
    x = pt.matrix("x", dtype="float64", shape=(None, None))
    y = x[: x.shape[0] // 2, ::-1]
    model = export_onnx([x], [y])
    session = ort_session(model)
    fn = pytensor.function([x], y)
    for n in (1, 4, 7):
        value = _data((n, 3), "float64")
        np.testing.assert_array_equal(session.run(None, {"x": value})[0], fn(value))


def test_integer_index_dtypes() -> None:
    value = _data((6, 2), "float64")
    x = input_like(value, "x", symbolic=True)
    i8 = pt.scalar("i8", dtype="int8")
    u32 = pt.scalar("u32", dtype="uint32")
    idx = pt.vector("idx", dtype="int32")
    compare_onnx_and_py(
        [x, i8, u32, idx],
        [x[i8], x[u32:], x[idx]],
        [value, np.int8(-2), np.uint32(4), np.array([0, -1, 5], dtype="int32")],
    )


ADVANCED: dict[str, tuple[Callable[..., pt.TensorVariable], list[np.ndarray]]] = {
    "vector": (lambda x, i: x[i], [np.array([0, 4, -1, 2, 2])]),
    "vector_axis1": (lambda x, i: x[:, i], [np.array([3, -4, 0])]),
    "vector_axis2": (lambda x, i: x[..., i], [np.array([2, 0])]),
    "matrix": (lambda x, i: x[i], [np.array([[0, 1], [-1, 3]])]),
    "matrix_axis1": (lambda x, i: x[1:, i], [np.array([[0, 1, 1], [-1, 3, 2]])]),
    "two_arrays": (lambda x, i, j: x[i, j], [np.array([0, 4, -1]), np.array([1, 1, -4])]),
    "broadcast": (
        lambda x, i, j: x[i, :, j],
        [np.array([[0], [4], [-1]]), np.array([1, 0, 2, -1])],
    ),
    "consecutive_after_slice": (
        lambda x, i, j: x[1:, i, j],
        [np.array([[0], [3]]), np.array([1, 2])],
    ),
    "separated_by_slice": (
        lambda x, i, j: x[i, 1:3, j],
        [np.array([0, 1, -1]), np.array([2, 0, 1])],
    ),
    "int_and_array": (lambda x, i: x[2, :, i], [np.array([[0, 1], [2, 0]])]),
    "int_next_to_array": (lambda x, i: x[:, 1, i], [np.array([0, 2, 1])]),
    "empty_index": (lambda x, i: x[i], [np.zeros(0, dtype="int64")]),
}


@pytest.mark.parametrize("name", sorted(ADVANCED))
def test_advanced_subtensor(name: str, floatX: str, symbolic: bool) -> None:
    fn, index_values = ADVANCED[name]
    value = _data((5, 4, 3), floatX)
    x = input_like(value, "x", symbolic)
    indices = [input_like(v, f"i{k}", symbolic) for k, v in enumerate(index_values)]
    compare_onnx_and_py([x, *indices], [fn(x, *indices)], [value, *index_values])


def test_batched_advanced_indexing_with_two_index_arrays(floatX: str, symbolic: bool) -> None:
    # A Blockwise of x[i, j], as vectorizing a PyMC mixture over draws builds: each batch
    # entry picks its own elements (negative indices included), in a loop over the batch.
    from pytensor.graph.replace import vectorize_graph
    from pytensor.tensor.blockwise import Blockwise

    core_x, core_i, core_j = pt.matrix("cx", dtype=floatX), pt.lvector("ci"), pt.lvector("cj")
    rng = np.random.default_rng(2)
    values = [
        rng.normal(size=(4, 3, 5)).astype(floatX),
        np.array([[0, 2, -1], [1, 1, 0], [2, -3, 1], [0, 0, 0]]),
        np.array([[4, 0, -5], [3, 2, 1], [0, -1, 2], [1, 1, 1]]),
    ]
    x, i, j = (input_like(v, name, symbolic) for v, name in zip(values, "xij", strict=True))
    out = vectorize_graph(core_x[core_i, core_j], {core_x: x, core_i: i, core_j: j})
    assert isinstance(out.owner.op, Blockwise)
    compare_onnx_and_py([x, i, j], [out], values)


def test_newaxis_with_array() -> None:
    value = _data((5, 4), "float64")
    x = input_like(value, "x", symbolic=True)
    i = pt.lvector("i")
    compare_onnx_and_py([x, i], [x[None, i], x[i, None, 1:]], [value, np.array([1, -1])])


@pytest.mark.parametrize("mask_ndim", [1, 2])
def test_boolean_mask(floatX: str, symbolic: bool, mask_ndim: int) -> None:
    value = _data((4, 3, 2), floatX)
    mask = value[(slice(None),) * mask_ndim + (0,) * (3 - mask_ndim)] > 0
    x = input_like(value, "x", symbolic)
    m = input_like(mask, "m", symbolic)
    compare_onnx_and_py([x, m], [x[m], x[m] * 2], [value, mask])


def test_boolean_mask_after_slice_and_all_false() -> None:
    value = _data((4, 3), "float64")
    x = input_like(value, "x", symbolic=True)
    m = pt.vector("m", dtype="bool")
    compare_onnx_and_py([x, m], [x[:, m]], [value, np.array([True, False, True])])
    compare_onnx_and_py([x, m], [x[m]], [value, np.zeros(4, dtype=bool)])


def test_integer_data() -> None:
    value = np.arange(24, dtype="int16").reshape(4, 6)
    x = input_like(value, "x", symbolic=True)
    i = pt.lvector("i")
    compare_onnx_and_py([x, i], [x[i, ::-2], x[1]], [value, np.array([3, 0, -1])])


INC: dict[str, tuple[Callable[..., pt.TensorVariable], list[np.ndarray], tuple[int, ...]]] = {
    "basic_slice": (lambda x, y: x[1:3], [], (2, 4, 3)),
    "basic_reversed": (lambda x, y: x[::-2, 1], [], (3, 3)),
    "basic_int": (lambda x, y: x[-1, :, 0], [], (4,)),
    "broadcast_y": (lambda x, y: x[1:3, 2], [], (3,)),
    "vector_repeated": (lambda x, y, i: x[i], [np.array([0, 2, 2, -3, 4])], (5, 4, 3)),
    "axis1_repeated": (lambda x, y, i: x[:, i], [np.array([1, 1, -1])], (5, 3, 3)),
    "axis2_repeated_negative": (lambda x, y, i: x[:, :, i], [np.array([0, -3, 2, -1])], (4,)),
    "two_arrays_repeated": (
        lambda x, y, i, j: x[i, :, j],
        [np.array([0, 0, 4]), np.array([2, 2, 1])],
        (3, 4),
    ),
    "separated": (
        lambda x, y, i, j: x[i, 1:, j],
        [np.array([1, 1]), np.array([0, 0])],
        (2, 3),
    ),
    "matrix_index": (lambda x, y, i: x[2, i], [np.array([[0, 3], [3, -1]])], (2, 2, 3)),
    "empty_index": (lambda x, y, i: x[i], [np.zeros(0, dtype="int64")], (0, 4, 3)),
    "empty_index_two_arrays": (
        lambda x, y, i, j: x[i, :, j],
        [np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")],
        (0, 4),
    ),
}


@pytest.mark.parametrize("mode", ["inc", "set"])
@pytest.mark.parametrize("name", sorted(INC))
def test_inc_set_subtensor(name: str, mode: str, floatX: str, symbolic: bool) -> None:
    fn, index_values, y_shape = INC[name]
    value = _data((5, 4, 3), floatX)
    y_value = _data(y_shape, floatX)
    x = input_like(value, "x", symbolic)
    y = input_like(y_value, "y", symbolic)
    indices = [input_like(v, f"i{k}", symbolic) for k, v in enumerate(index_values)]
    target = fn(x, y, *indices)
    out = pt.inc_subtensor(target, y) if mode == "inc" else pt.set_subtensor(target, y)
    compare_onnx_and_py([x, y, *indices], [out], [value, y_value, *index_values])


def test_set_repeated_last_wins() -> None:
    value = np.zeros(4)
    x = input_like(value, "x", symbolic=True)
    i = pt.lvector("i")
    y = pt.dvector("y")
    compare_onnx_and_py(
        [x, y, i],
        [pt.set_subtensor(x[i], y)],
        [value, np.arange(1.0, 7.0), np.array([1, 3, 1, -3, 0, 3])],
    )


def test_inc_repeated_accumulates_like_add_at() -> None:
    value = np.zeros(3)
    i_value = np.array([0, 1, 1, 1, -1, 2, 0])
    x = input_like(value, "x")
    i = pt.lvector("i")
    out = pt.inc_subtensor(x[i], 1.0)
    compare_onnx_and_py([x, i], [out], [value, i_value])
    expected = np.zeros(3)
    np.add.at(expected, i_value, 1.0)
    model = export_onnx([x, i], [out])
    np.testing.assert_array_equal(
        ort_session(model).run(None, {"x": value, "i": i_value})[0], expected
    )


def test_inc_ignore_duplicates() -> None:
    value = np.ones(4)
    x = input_like(value, "x")
    i = pt.lvector("i")
    y = pt.dvector("y")
    out = pt.inc_subtensor(x[i], y, ignore_duplicates=True)
    compare_onnx_and_py([x, y, i], [out], [value, np.array([1.0, 2.0, 3.0]), np.array([2, 0, 2])])


def test_inc_boolean_mask_and_int_dtype() -> None:
    value = np.arange(12, dtype="int32").reshape(3, 4)
    x = input_like(value, "x", symbolic=True)
    m = pt.matrix("m", dtype="bool")
    out = pt.inc_subtensor(x[m], np.int32(100))
    mask = value % 3 == 0
    compare_onnx_and_py([x, m], [out, pt.set_subtensor(x[m], np.int32(-1))], [value, mask])


def test_out_of_range_index_raises() -> None:
    value = np.arange(4.0)
    x = input_like(value, "x", symbolic=True)
    i = pt.lvector("i")
    session = ort_session(export_onnx([x, i], [x[i], pt.inc_subtensor(x[i], 1.0)]))
    with pytest.raises(Exception, match=r"out of|invalid"):
        session.run(None, {"x": value, "i": np.array([4])})
    with pytest.raises(Exception, match=r"out of|invalid"):
        session.run(None, {"x": value, "i": np.array([-5])})


@pytest.mark.parametrize("mask_shape", [(3,), (5,), (1,), (4, 2)])
def test_mismatched_boolean_mask_raises(mask_shape: tuple[int, ...]) -> None:
    value = np.arange(12.0).reshape(4, 3)
    x = input_like(value, "x", symbolic=True)
    m = pt.tensor("m", dtype="bool", shape=(None,) * len(mask_shape))
    session = ort_session(export_onnx([x, m], [x[m], pt.set_subtensor(x[m], 0.0)]))
    mask = np.ones(mask_shape, dtype=bool)
    with pytest.raises(Exception, match=r"out of|invalid"):
        session.run(None, {"x": value, "m": mask})
    good = np.ones(value.shape[: len(mask_shape)], dtype=bool)
    session.run(None, {"x": value, "m": good})


def test_gradient_through_indexing(floatX: str, symbolic: bool) -> None:
    value = _data((5, 4), floatX)
    x = input_like(value, "x", symbolic)
    i = pt.lvector("i")
    j = pt.lvector("j")
    cost = (x[i, j] ** 2).sum() + (x[1:, ::-2] * 3).sum() + x[i].sum() + x[-1, 2]
    grad = pytensor.grad(cost, x)
    compare_onnx_and_py(
        [x, i, j], [grad], [value, np.array([0, 2, 2, -1, 0]), np.array([1, 3, 3, 0, 1])]
    )


def test_gradient_separated_advanced_indices() -> None:
    value = _data((3, 4, 5), "float64")
    x = input_like(value, "x", symbolic=True)
    i = pt.lvector("i")
    grad = pytensor.grad((x[i, 1:3, i] ** 2).sum(), x)
    compare_onnx_and_py([x, i], [grad], [value, np.array([0, 2, 0])])


@pytest.mark.parametrize("set_instead_of_inc", [True, False])
@pytest.mark.parametrize(
    ("shape", "index"),
    [((0, 3), lambda x: x[1:]), ((2, 0), lambda x: x[:, 1:]), ((0, 3), lambda x: x[:, [0, 2]])],
    ids=["rows", "columns", "advanced"],
)
def test_set_and_inc_subtensor_of_empty_arrays(shape, index, set_instead_of_inc: bool) -> None:
    value = np.zeros(shape)
    x = input_like(value, "x", symbolic=True)
    target = index(x)
    out = pt.set_subtensor(target, 1.0) if set_instead_of_inc else pt.inc_subtensor(target, 1.0)
    compare_onnx_and_py([x], [out], [value])


@pytest.mark.parametrize("set_instead_of_inc", [True, False])
@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_advanced_update_with_a_statically_empty_index(
    set_instead_of_inc: bool, symbolic: bool
) -> None:
    # Found by fuzzing on PyTensor 2.38 (AdvancedIncSubtensor1 of a (1, 0) matrix): with
    # static shapes, ONNX Runtime's ExpandElimination dropped the broadcast of y to the
    # empty selection and the scatter failed.
    value = np.zeros((0, 1), dtype="int64")
    x = input_like(value, "x", symbolic)
    i = input_like(np.zeros(0, dtype="int64"), "i", symbolic)
    y = pt.scalar("y", dtype="int64")
    update = pt.set_subtensor if set_instead_of_inc else pt.inc_subtensor
    out = update(x[:, i], y)
    compare_onnx_and_py([x, i, y], [out], [value, np.zeros(0, dtype="int64"), np.array(7)])
