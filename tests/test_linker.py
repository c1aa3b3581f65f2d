"""``mode="ONNX"``: PyTensor function semantics when ONNX Runtime runs the graph."""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
import onnxruntime as ort
import pytensor
import pytensor.scalar as ps
import pytensor.tensor as pt
import pytest
from pytensor.compile import In, Out, UnusedInputError
from pytensor.compile.mode import Mode, get_mode
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.tensor.elemwise import Elemwise

import pytensor_onnx
from pytensor_onnx import ONNXLinker, ONNXMode, UnsupportedOpError
from pytensor_onnx.linker import session_run
from pytensor_onnx.rewrite import INCOMPATIBLE_REWRITES, REQUIRED_REWRITES
from tests.compare import REFERENCE_MODE, assert_matches


def both_modes(inputs: Any, outputs: Any, **kwargs: Any) -> tuple[Any, Any]:
    """The same function compiled in ``mode="ONNX"`` and with the Python reference linker."""
    return (
        pytensor.function(inputs, outputs, mode="ONNX", **kwargs),
        pytensor.function(inputs, outputs, mode=REFERENCE_MODE, **kwargs),
    )


def assert_same_results(got: Any, want: Any, what: str = "output") -> None:
    """Outputs of an ONNX-mode call equal the reference call's (lists compared item by item)."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), what
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same_results(g, w, f"{what} {i}")
        return
    assert type(got) is type(want), f"{what}: {type(got)} != {type(want)}"
    assert_matches(got, want, None, None, what)


# ---------------------------------------------------------------------------- the mode itself
def test_mode_registered_on_import() -> None:
    mode = get_mode("ONNX")
    assert isinstance(mode.linker, ONNXLinker)
    assert get_mode("onnx") is mode
    assert isinstance(Mode(linker="onnx").linker, ONNXLinker)
    assert pytensor_onnx.ONNXMode is ONNXMode


def test_mode_shares_the_export_rewrite_set() -> None:
    assert ONNXLinker.required_rewrites == REQUIRED_REWRITES
    assert ONNXLinker.incompatible_rewrites == INCOMPATIBLE_REWRITES
    query = get_mode("ONNX")._optimizer
    assert set(REQUIRED_REWRITES) <= set(query.include)
    assert set(INCOMPATIBLE_REWRITES) <= set(query.exclude)


def test_compiled_graph_has_no_backend_specific_ops() -> None:
    x = pt.matrix("x")
    y = pt.matrix("y")
    fn = pytensor.function([x, y], pt.exp(x @ y + 1.0) * 2.0, mode="ONNX")
    names = {type(node.op).__name__ for node in fn.maker.fgraph.apply_nodes}
    assert not names & {"Dot22", "Gemm", "Gemv", "Composite"}, names
    assert all(not getattr(node.op, "destroy_map", {}) for node in fn.maker.fgraph.apply_nodes)


def test_one_export_and_one_session_per_function(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {"build": 0, "session": 0}
    real_build = pytensor_onnx.linker.build_model
    real_session = ort.InferenceSession

    def counting_build(*args: Any, **kwargs: Any) -> Any:
        counts["build"] += 1
        return real_build(*args, **kwargs)

    def counting_session(*args: Any, **kwargs: Any) -> Any:
        counts["session"] += 1
        return real_session(*args, **kwargs)

    monkeypatch.setattr(pytensor_onnx.linker, "build_model", counting_build)
    monkeypatch.setattr(ort, "InferenceSession", counting_session)
    x = pt.vector("x")
    fn = pytensor.function([x], pt.exp(x), mode="ONNX")
    session = fn.maker.linker.session
    for k in range(3):
        np.testing.assert_allclose(fn(np.full(3, float(k))), np.exp(np.full(3, float(k))))
    assert counts == {"build": 1, "session": 1}
    assert fn.maker.linker.session is session


def test_onnx_mode_options() -> None:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    mode = ONNXMode(providers=["CPUExecutionProvider"], session_options=options, opset=20)
    x = pt.vector("x")
    fn = pytensor.function([x], pt.sqrt(x), mode=mode)
    linker = fn.maker.linker
    assert linker.session.get_providers() == ["CPUExecutionProvider"]
    assert linker.session.get_session_options().intra_op_num_threads == 1
    assert {o.domain: o.version for o in linker.onnx_model.opset_import}[""] == 20
    np.testing.assert_allclose(fn(np.array([4.0, 9.0])), [2.0, 3.0])
    # The mode's own linker is a template: compiling never binds it to a graph.
    assert mode.linker.fgraph is None and mode.linker.session is None


def test_constant_shared_bakes_unupdated_shared_values_and_sees_set_value() -> None:
    x = pt.vector("x")
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    u = pytensor.shared(np.array([0.0, 0.0]), name="u")
    fn = pytensor.function([x], x * w + u, updates={u: u + 1}, mode=ONNXMode(constant_shared=True))
    model = fn.maker.linker.onnx_model
    assert [i.name for i in model.graph.input] == ["x", "u"]  # u is updated: stays an input
    assert [i.name for i in model.graph.initializer] == ["w"]
    np.testing.assert_allclose(fn(np.ones(2)), [1.0, 2.0])
    session = fn.maker.linker.session
    np.testing.assert_allclose(fn(np.ones(2)), [2.0, 3.0])
    assert fn.maker.linker.session is session  # unchanged values: no new session
    w.set_value(np.array([10.0, 20.0]))
    np.testing.assert_allclose(fn(np.ones(2)), [12.0, 22.0])
    assert fn.maker.linker.session is not session
    np.testing.assert_allclose(fn(np.ones(2)), [13.0, 23.0])


def test_constant_shared_training_loop() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(16, 5))
    labels = np.eye(3)[rng.integers(0, 3, size=16)]
    step, params = _mlp_training_step(ONNXMode(constant_shared=True), seed=2)
    ref_step, ref_params = _mlp_training_step(REFERENCE_MODE, seed=2)
    for _ in range(5):
        np.testing.assert_allclose(step(data, labels), ref_step(data, labels), rtol=1e-10)
    for got, want in zip(params, ref_params, strict=True):
        np.testing.assert_allclose(got.get_value(), want.get_value(), rtol=1e-9, atol=1e-12)


def test_constant_shared_with_scalar_inputs_and_outputs() -> None:
    # ScalarType inputs/outputs take the thunk that calls the runner of jit_compile.
    s = ps.float64("s")
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    fn = pytensor.function(
        [s], ps.mul(s, pt.scalar_from_tensor(w[1])), mode=ONNXMode(constant_shared=True)
    )
    assert [i.name for i in fn.maker.linker.onnx_model.graph.initializer] == ["w"]
    assert fn(3.0) == 6.0 and isinstance(fn(3.0), np.float64)
    session = fn.maker.linker.session
    w.set_value(np.array([1.0, 5.0]))
    assert fn(3.0) == 15.0
    assert fn.maker.linker.session is not session


def test_constant_shared_zero_dimensional_value_keeps_its_shape() -> None:
    x = pt.dscalar("x")
    w = pytensor.shared(np.float64(2.0), name="w")
    fn = pytensor.function([x], x * w, mode=ONNXMode(constant_shared=True))
    got = fn(3.0)
    assert isinstance(got, np.ndarray) and got.shape == () and got == 6.0


def test_onnx_mode_rejects_bad_opset() -> None:
    with pytest.raises(ValueError, match="opset"):
        ONNXMode(opset=12)


def test_linker_reused_for_a_second_graph_keeps_its_configuration() -> None:
    linker = ONNXLinker(opset=19)
    x = pt.vector("x")
    first = pytensor.function([x], x + 1, mode=Mode(linker=linker))
    second = pytensor.function([x], x * 3, mode=Mode(linker=first.maker.linker))
    assert second.maker.linker is not first.maker.linker
    assert second.maker.linker.opset == 19
    np.testing.assert_allclose(first(np.ones(2)), [2.0, 2.0])
    np.testing.assert_allclose(second(np.ones(2)), [3.0, 3.0])


# --------------------------------------------------------------------------- the call path
def test_cpu_sessions_are_called_through_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper_calls = []
    real_run = ort.InferenceSession.run

    def counting_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        wrapper_calls.append(args)
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "run", counting_run)
    x = pt.vector("x")
    y = pt.vector("y")
    fn = pytensor.function([x, y], [x * y, x + y], mode="ONNX")
    session = fn.maker.linker.session
    assert session_run(session) == session._sess.run
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    for call in (fn, fn.copy()):
        got = call(a, b)
        np.testing.assert_allclose(got[0], a * b)
        np.testing.assert_allclose(got[1], a + b)
    assert wrapper_calls == []


def test_other_sessions_keep_the_python_wrapper() -> None:
    class GpuSession:
        """What ``session_run`` looks at of a session with a non-CPU provider."""

        def __init__(self) -> None:
            self._sess = ort.InferenceSession  # any object with a ``run``

        def get_providers(self) -> list[str]:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]

        def run(self, *args: Any) -> list[Any]:
            return []

    gpu = GpuSession()
    assert session_run(gpu) == gpu.run


@pytest.mark.parametrize("trust_input", [False, True])
def test_onnx_runtime_input_errors_stay_understandable(trust_input: bool) -> None:
    x = pt.vector("x", dtype="float64")
    fn = pytensor.function([x], pt.exp(x), mode="ONNX", trust_input=trust_input)
    if trust_input:  # PyTensor does not check: ONNX Runtime's own checks must speak
        with pytest.raises(Exception, match=r"(?s)Unexpected input data type.*double"):
            fn(np.ones(3, dtype="float32"))
        # ...re-raised by PyTensor with the node (PyTensor 2) or a hint (3) appended
        node_info = r"(Apply node|exception_verbosity)"
        with pytest.raises(Exception, match=r"(?s)Invalid rank for input: x.*" + node_info):
            fn(np.ones((2, 2)))
    else:  # PyTensor's input filter rejects the same values first
        with pytest.raises(TypeError, match="complex128"):
            fn(np.ones(3, dtype="complex128"))
        with pytest.raises(TypeError, match="number of dimensions"):
            fn(np.ones((2, 2)))
    np.testing.assert_allclose(fn(np.zeros(2)), [1.0, 1.0])  # the function still works


def test_thunk_stores_outputs_for_callers_that_read_the_cells() -> None:
    # Scan.perform runs its inner function through ``fn.vm()`` and reads the output cells.
    x = pt.matrix("x")
    outputs = pytensor.scan(
        lambda row, acc: (acc + row * row, row.sum()),
        sequences=[x],
        outputs_info=[pt.zeros(3, dtype="float64"), None],
        mode="ONNX",
        return_updates=False,
    )
    fn = pytensor.function([x], outputs, mode=REFERENCE_MODE)
    [scan] = [n for n in fn.maker.fgraph.apply_nodes if type(n.op).__name__ == "Scan"]
    assert isinstance(scan.op.fn.maker.linker, ONNXLinker)
    a = np.arange(6.0).reshape(2, 3)
    got = fn(a)
    np.testing.assert_allclose(got[0], np.cumsum(a * a, axis=0))
    np.testing.assert_allclose(got[1], a.sum(axis=1))


def test_function_without_inputs() -> None:
    fn = pytensor.function([], [pt.arange(3) * 2, pt.ones((2,)) + 1.5], mode="ONNX")
    got = fn()
    np.testing.assert_array_equal(got[0], [0, 2, 4])
    np.testing.assert_array_equal(got[1], [2.5, 2.5])


# ------------------------------------------------------------------------------ inputs
def test_positional_and_keyword_inputs() -> None:
    x = pt.vector("x")
    y = pt.vector("y")
    fn, ref = both_modes([x, y], x - 2 * y)
    a, b = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    assert_same_results(fn(a, b), ref(a, b))
    assert_same_results(fn(x=a, y=b), ref(a, b))
    assert_same_results(fn(a, y=b), ref(a, b))
    assert_same_results(fn(y=b, x=a), ref(a, b))
    with pytest.raises(TypeError):
        fn(a)


def test_in_names() -> None:
    x = pt.vector("x")
    alpha = pt.dscalar("alpha")
    fn = pytensor.function([x, In(alpha, name="scale")], alpha * x, mode="ONNX")
    np.testing.assert_allclose(fn(np.array([1.0, 3.0]), scale=0.5), [0.5, 1.5])
    np.testing.assert_allclose(fn(scale=2.0, x=np.array([1.0, 3.0])), [2.0, 6.0])


def test_in_default_values_and_implicit_state() -> None:
    x = pt.vector("x")
    alpha = pt.dscalar("alpha")
    acc = pt.dvector("acc")
    try:
        inputs = [
            x,
            In(alpha, value=2.0, name="scale"),
            In(acc, value=np.zeros(2), update=acc + x),
        ]
    except ValueError as err:  # PyTensor 3 removed default values of plain inputs
        pytest.skip(str(err))
    fn = pytensor.function(inputs, alpha * x + acc, mode="ONNX")
    a = np.array([1.0, 3.0])
    np.testing.assert_allclose(fn(a), [2.0, 6.0])  # default alpha, acc = 0
    np.testing.assert_allclose(fn(a, scale=0.5), [1.5, 4.5])  # acc = a after one update
    np.testing.assert_allclose(fn(a), [4.0, 12.0])  # acc = 2a
    np.testing.assert_allclose(fn[acc], 3 * a)


def test_in_borrow_and_mutable_inputs_are_left_untouched() -> None:
    x = pt.vector("x")
    fn = pytensor.function([In(x, borrow=True, mutable=True)], pt.exp(x) + x, mode="ONNX")
    a = np.array([0.0, 1.0])
    np.testing.assert_allclose(fn(a), np.exp(a.copy()) + np.array([0.0, 1.0]))
    np.testing.assert_array_equal(a, [0.0, 1.0])


def test_non_contiguous_and_castable_inputs() -> None:
    x = pt.matrix("x")
    v = pt.vector("v", dtype="float64")
    fn, ref = both_modes([x, v], (x * v).sum(axis=0))
    big = np.arange(24.0).reshape(4, 6)
    strided = big[::2, ::3]  # not contiguous
    transposed = big.T[:2, :3]
    for value in (strided, transposed.T, np.asfortranarray(big[:, :2])):
        vec = np.linspace(1, 2, value.shape[1])
        assert_same_results(fn(value, vec), ref(value, vec))
    # float32 and int values for float64 inputs are upcast by PyTensor's input filter.
    assert_same_results(
        fn(big.astype("float32")[:2, :2], [1, 2]), ref(big.astype("float32")[:2, :2], [1, 2])
    )


def test_givens() -> None:
    x = pt.vector("x")
    y = pt.vector("y")
    w = pytensor.shared(np.array([2.0, 3.0]), name="w")
    fn, ref = both_modes([y], x * 2 + 1, givens={x: y * w})
    a = np.array([1.0, -1.0])
    assert_same_results(fn(a), ref(a))
    np.testing.assert_allclose(fn(a), [5.0, -5.0])


def test_constant_inputs_and_constant_outputs() -> None:
    x = pt.vector("x")
    table = pt.constant(np.arange(100.0))  # large enough to be an initializer
    fn, ref = both_modes([x], [x + pt.constant(1.5), table[:2] * x, table, pt.constant(7.0)])
    a = np.array([1.0, 2.0])
    assert_same_results(fn(a), ref(a))


def test_shared_variables_and_set_value_between_calls() -> None:
    x = pt.vector("x")
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    c = pytensor.shared(np.float64(10.0), name="c")
    fn = pytensor.function([x], x * w + c, mode="ONNX")
    a = np.array([1.0, 1.0])
    np.testing.assert_allclose(fn(a), [11.0, 12.0])
    w.set_value(np.array([-1.0, 5.0]))
    np.testing.assert_allclose(fn(a), [9.0, 15.0])
    c.set_value(np.float64(0.0))
    np.testing.assert_allclose(fn(a), [-1.0, 5.0])
    w.get_value(borrow=True)[:] = [3.0, 4.0]  # in-place change of the shared storage
    np.testing.assert_allclose(fn(a), [3.0, 4.0])


def test_updates_and_outputs_after_update() -> None:
    counter = pytensor.shared(np.int64(0), name="counter")
    total = pytensor.shared(np.zeros(2), name="total")
    x = pt.vector("x")
    fn = pytensor.function(
        [x],
        [total.sum(), counter],
        updates=[(counter, counter + 1), (total, total + x)],
        mode="ONNX",
    )
    first = fn(np.array([1.0, 2.0]))
    assert_same_results(first, [np.array(0.0), np.array(0)])
    second = fn(np.array([1.0, 2.0]))
    assert_same_results(second, [np.array(3.0), np.array(1)])
    assert counter.get_value() == 2
    np.testing.assert_allclose(total.get_value(), [2.0, 4.0])
    counter.set_value(np.int64(40))
    fn(np.zeros(2))
    assert counter.get_value() == 41


def test_updates_without_outputs_and_function_without_anything() -> None:
    s = pytensor.shared(np.array([1.0, 2.0]), name="s")
    step = pytensor.function([], [], updates={s: s * 2}, mode="ONNX")
    assert step() == []
    step()
    np.testing.assert_allclose(s.get_value(), [4.0, 8.0])
    x = pt.vector("x")
    nothing = pytensor.function([x], [], on_unused_input="ignore", mode="ONNX")
    assert nothing(np.ones(3)) == []


def _mlp_training_step(mode: Any, seed: int) -> tuple[Any, list[Any]]:
    """A 5-10-3 MLP with tanh and softmax, cross-entropy loss and an SGD update."""
    rng = np.random.default_rng(seed)
    x = pt.tensor("x", dtype="float64", shape=(16, 5))
    y = pt.tensor("y", dtype="float64", shape=(16, 3))
    params = [
        pytensor.shared(rng.normal(scale=0.5, size=(5, 10)), name="W1"),
        pytensor.shared(np.zeros(10), name="b1"),
        pytensor.shared(rng.normal(scale=0.5, size=(10, 3)), name="W2"),
        pytensor.shared(np.zeros(3), name="b2"),
    ]
    hidden = pt.tanh(x @ params[0] + params[1])
    probs = pt.special.softmax(hidden @ params[2] + params[3], axis=-1)
    loss = -(y * pt.log(probs)).sum(axis=1).mean()
    grads = pytensor.grad(loss, params)
    updates = [(p, p - 0.5 * g) for p, g in zip(params, grads, strict=True)]
    return pytensor.function([x, y], loss, updates=updates, mode=mode), params


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(REFERENCE_MODE, id="python"),
        # PyTensor's default backend (C on 2.x, Numba on 3.x) compiles for seconds.
        pytest.param(None, id="default", marks=pytest.mark.slow),
    ],
)
def test_sgd_training_loop_matches_reference_modes(reference: Mode | None) -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(16, 5))
    labels = np.eye(3)[rng.integers(0, 3, size=16)]
    onnx_step, onnx_params = _mlp_training_step("ONNX", seed=2)
    ref_step, ref_params = _mlp_training_step(reference, seed=2)
    onnx_losses = [onnx_step(data, labels) for _ in range(25)]
    ref_losses = [ref_step(data, labels) for _ in range(25)]
    assert onnx_losses[-1] < 0.5 * onnx_losses[0]  # it trains
    np.testing.assert_allclose(onnx_losses, ref_losses, rtol=1e-10)
    for got, want in zip(onnx_params, ref_params, strict=True):
        np.testing.assert_allclose(got.get_value(), want.get_value(), rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- outputs
def test_multiple_and_repeated_outputs_and_outputs_that_are_inputs() -> None:
    x = pt.vector("x")
    y = pt.exp(x)
    fn, ref = both_modes([x], [y, x, y, pt.log(y)])
    a = np.array([0.5, 1.5])
    got = fn(a)
    assert_same_results(got, ref(a))
    assert got[0] is not got[2]
    assert not np.shares_memory(got[1], a)  # an input returned as output is a copy
    single = pytensor.function([x], x, mode="ONNX")
    out = single(a)
    out[0] = 99.0
    assert a[0] == 0.5


def test_shared_variable_output_is_a_copy() -> None:
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    fn = pytensor.function([], w, mode="ONNX")
    got = fn()
    got[0] = -5.0
    np.testing.assert_allclose(w.get_value(), [1.0, 2.0])


def test_out_borrow_results_stay_valid_across_calls() -> None:
    x = pt.vector("x")
    fn = pytensor.function([x], Out(pt.exp(x), borrow=True), mode="ONNX")
    first = fn(np.zeros(2))
    second = fn(np.ones(2))
    np.testing.assert_allclose(first, [1.0, 1.0])
    np.testing.assert_allclose(second, np.exp([1.0, 1.0]))


def test_scalar_outputs_have_pytensor_types() -> None:
    x = pt.vector("x")
    s = ps.float64("s")
    i = ps.int32("i")
    outputs = [
        x.sum(),  # 0-d tensor: a 0-d ndarray
        ps.mul(s, s),  # scalar type: a NumPy scalar
        ps.add(i, i),
        pt.scalar_from_tensor(x.max()),
    ]
    fn, ref = both_modes([x, s, i], outputs)
    args = (np.array([1.0, 2.0]), 1.5, 4)
    got = fn(*args)
    assert_same_results(got, ref(*args))
    assert isinstance(got[0], np.ndarray) and got[0].shape == ()
    assert isinstance(got[1], np.float64) and isinstance(got[2], np.int32)


def test_float32_graph_keeps_dtype() -> None:
    x = pt.vector("x", dtype="float32")
    fn, ref = both_modes([x], [pt.exp(x) * 2, (x > 0).sum()])
    a = np.array([-1.0, 0.5, 2.0], dtype="float32")
    assert_same_results(fn(a), ref(a))


# -------------------------------------------------------------------------- options
def test_profile_does_not_crash() -> None:
    x = pt.vector("x")
    fn = pytensor.function([x], pt.exp(x).sum(), mode="ONNX", profile=True)
    for _ in range(3):
        fn(np.ones(4))
    assert fn.profile.fct_callcount == 3
    report = io.StringIO()
    fn.profile.summary(file=report)
    assert "Function profiling" in report.getvalue()


def test_accept_inplace() -> None:
    x = pt.vector("x")
    y = pt.vector("y")
    exp_inplace = Elemwise(ps.exp, {0: 0})
    assert exp_inplace.destroy_map
    graph = exp_inplace(x + y)
    with pytest.raises(TypeError, match="inplace"):
        pytensor.function([x, y], graph, mode="ONNX")
    fn = pytensor.function([x, y], graph, mode="ONNX", accept_inplace=True)
    a, b = np.array([0.0, 1.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(fn(a, b), np.exp(a + b))
    np.testing.assert_array_equal(a, [0.0, 1.0])
    # Destroying an input is allowed, not required: ONNX Runtime leaves inputs untouched.
    on_input = pytensor.function([x], exp_inplace(x), mode="ONNX", accept_inplace=True)
    np.testing.assert_allclose(on_input(a), np.exp(a))
    np.testing.assert_array_equal(a, [0.0, 1.0])


def test_on_unused_input() -> None:
    x = pt.vector("x")
    unused = pt.matrix("unused")
    with pytest.raises(UnusedInputError):
        pytensor.function([x, unused], x * 2, mode="ONNX")
    with pytest.warns(UserWarning, match="unused"):
        pytensor.function([x, unused], x * 2, mode="ONNX", on_unused_input="warn")
    fn = pytensor.function([x, unused], x * 2, mode="ONNX", on_unused_input="ignore")
    np.testing.assert_allclose(fn(np.ones(2), np.zeros((1, 1))), [2.0, 2.0])
    np.testing.assert_allclose(fn(x=np.ones(2), unused=np.zeros((3, 3))), [2.0, 2.0])


def test_copy_of_a_compiled_function() -> None:
    w = pytensor.shared(np.array([1.0]), name="w")
    x = pt.vector("x")
    fn = pytensor.function([x], x * w, updates={w: w + 1}, mode="ONNX")
    twin = fn.copy()
    np.testing.assert_allclose(twin(np.array([2.0])), [2.0])
    np.testing.assert_allclose(fn(np.array([2.0])), [4.0])
    np.testing.assert_allclose(w.get_value(), [3.0])


def test_pickled_function_compiles_again() -> None:
    w = pytensor.shared(np.array([1.0, 2.0]), name="w")
    x = pt.vector("x")
    fn = pytensor.function([x], x * w, updates={w: w + 1}, mode="ONNX")
    fn(np.ones(2))
    clone = pickle.loads(pickle.dumps(fn))
    assert clone.maker.linker.session is not fn.maker.linker.session
    np.testing.assert_allclose(clone(np.ones(2)), [2.0, 3.0])  # the pickled shared state
    np.testing.assert_allclose(fn(np.ones(2)), [2.0, 3.0])


# --------------------------------------------------------------------------- errors
class _Twice(Op):
    """A Python-only Op without an ONNX converter."""

    __props__ = ()

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: Any, outputs: Any) -> None:
        outputs[0][0] = inputs[0] * 2


def test_unsupported_ops_fail_at_compile_time_listing_all() -> None:
    x = pt.vector("x")
    y = pt.vector("y")
    with pytest.raises(UnsupportedOpError) as info:
        pytensor.function([x, y], [_Twice()(x) + 1, pt.exp(_Twice()(y))], mode="ONNX")
    assert len(info.value.entries) == 2
    assert all(isinstance(e.op, _Twice) for e in info.value.entries)
    assert "onnx_funcify.register" in str(info.value)


def test_looped_random_variables_draw_anew_on_every_call() -> None:
    """A sampler with a data-dependent loop (hypergeometric's search) in ``mode="ONNX"``:
    values in the support, new draws per call as the generator advances."""
    rng = pytensor.shared(np.random.default_rng(0), name="rng")
    next_rng, draw = pt.random.hypergeometric(50, 30, 40, size=(200,), rng=rng).owner.outputs
    fn = pytensor.function([], draw, mode="ONNX", updates={rng: next_rng})
    first, second = fn(), fn()
    assert first.dtype == np.int64 and first.shape == (200,)
    assert np.all((first >= 10) & (first <= 40))
    assert not np.array_equal(first, second)


def test_runtime_errors_surface_as_exceptions() -> None:
    x = pt.vector("x")
    y = pt.vector("y")
    fn = pytensor.function([x, y], x + y, mode="ONNX")
    with pytest.raises(Exception, match=r"(?i)(broadcast|shape|dimension)"):
        fn(np.ones(2), np.ones(3))
