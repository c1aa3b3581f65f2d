"""The converter test suite again, run through ``pytensor.function(..., mode="ONNX")``.

Every test of ``tests/dispatch`` that checks a graph with ``compare_onnx_and_py`` (directly or
through a helper of its module) is collected here a second time, under the name
``test_<module>__<test>`` and marked ``slow`` (together they take minutes), with
``compare_onnx_and_py`` replaced by :func:`compare_in_onnx_mode`: the graph is compiled with
``mode=ONNXMode(opset=...)`` and compared, output by output (dtype, shape, values, same
tolerances), with PyTensor's Python linker.  Case tables added to ``tests/dispatch`` later are
picked up without changes here.  A few representative graphs per area (elementwise,
dimshuffle, dot, softmax, reductions, and whole models with gradients) are also checked here
directly.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.op import Op

import tests.dispatch
from pytensor_onnx import DEFAULT_OPSET, ONNXMode, onnx_funcify
from tests.compare import REFERENCE_MODE, assert_matches, input_like
from tests.dispatch.test_scalar import BINARY, UNARY

COMPARE = "compare_onnx_and_py"


def compare_in_onnx_mode(
    inputs: Sequence[Variable],
    outputs: Variable | Sequence[Variable],
    test_values: Sequence[Any],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    opsets: Sequence[int] | None = None,
    reference: bool = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Drop-in for ``compare_onnx_and_py``: run the graph in ``mode="ONNX"`` instead.

    ``opsets`` defaults to the mode's default opset; ``reference`` and export options do not
    apply to the mode (it runs ONNX Runtime only, with every shared variable as an input).
    Returns the model the mode compiled (at the last opset), for structural assertions.
    """
    outputs_list = [outputs] if isinstance(outputs, Variable) else list(outputs)
    values = [np.asarray(v) for v in test_values]
    reference_fn = pytensor.function(
        list(inputs), outputs_list, mode=REFERENCE_MODE, on_unused_input="ignore"
    )
    expected = reference_fn(*values)
    model: onnx.ModelProto | None = None
    for opset in opsets if opsets is not None else (DEFAULT_OPSET,):
        fn = pytensor.function(
            list(inputs), outputs_list, mode=ONNXMode(opset=opset), on_unused_input="ignore"
        )
        got = fn(*values)
        for i, (g, w) in enumerate(zip(got, expected, strict=True)):
            assert_matches(g, w, rtol, atol, f"mode=ONNX, opset {opset}, output {i}")
        model = fn.maker.linker.onnx_model
    assert model is not None
    return model


# --------------------------------------------------------- re-collected dispatch tests
def _import_dispatch_modules() -> tuple[list[ModuleType], dict[str, str]]:
    modules: list[ModuleType] = []
    failures: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(tests.dispatch.__path__), key=lambda i: i.name):
        if not info.name.startswith("test_"):
            continue
        try:
            modules.append(importlib.import_module(f"{tests.dispatch.__name__}.{info.name}"))
        except Exception as err:  # reported by test_every_dispatch_module_imports
            failures[info.name] = f"{type(err).__name__}: {err}"
    return modules, failures


def _calls(func: Callable[..., Any], names: set[str]) -> bool:
    source = inspect.getsource(func)
    return any(re.search(rf"\b{re.escape(name)}\(", source) for name in names)


def _comparing_functions(module: ModuleType) -> set[str]:
    """``compare_onnx_and_py`` and the module's helpers that call it (transitively)."""
    own = {
        name: obj
        for name, obj in vars(module).items()
        if inspect.isfunction(obj) and obj.__module__ == module.__name__
    }
    names = {COMPARE}
    grew = True
    while grew:
        found = {n for n, f in own.items() if n not in names and _calls(f, names)}
        names |= found
        grew = bool(found)
    return names


def _is_fixture(obj: Any) -> bool:
    return type(obj).__name__ == "FixtureFunctionDefinition" or hasattr(
        obj, "_pytestfixturefunction"
    )


def _marked_slow(test: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``test`` with the ``slow`` mark added (the original stays unmarked)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    run.pytestmark = [*getattr(test, "pytestmark", []), pytest.mark.slow]  # type: ignore[attr-defined]
    return run


def _collect() -> tuple[dict[str, Callable[..., Any]], dict[str, Any], dict[str, str]]:
    """Tests to run in ONNX mode, fixtures they need, and modules that failed to import."""
    modules, failures = _import_dispatch_modules()
    collected: dict[str, Callable[..., Any]] = {}
    fixtures: dict[str, Any] = {}
    clashing: set[str] = set()
    for module in modules:
        for name, obj in vars(module).items():
            if _is_fixture(obj):
                if name in fixtures and fixtures[name] is not obj:
                    clashing.add(name)
                fixtures[name] = obj
    for module in modules:
        if not hasattr(module, COMPARE):
            continue
        comparers = _comparing_functions(module)
        short = module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
        for name, obj in vars(module).items():
            if not (name.startswith("test_") and inspect.isfunction(obj)):
                continue
            if obj.__module__ != module.__name__ or not _calls(obj, comparers):
                continue
            if clashing & set(inspect.signature(obj).parameters):
                continue  # a same-named fixture of another module would be injected
            collected[f"test_{short}__{name.removeprefix('test_')}"] = _marked_slow(obj)
    for name in clashing:
        fixtures.pop(name)
    return collected, fixtures, failures


@pytest.fixture(params=[True], ids=["symbolic"])
def symbolic(request: pytest.FixtureRequest) -> bool:
    """Unknown dims only: static-shape variants exercise nothing the mode does differently,
    and halving the cases keeps this second pass over the converter suite affordable."""
    return bool(request.param)


_COLLECTED, _FIXTURES, _IMPORT_FAILURES = _collect()
globals().update(_FIXTURES)
globals().update(_COLLECTED)


@pytest.fixture(autouse=True)
def _in_onnx_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make re-collected dispatch tests compare through ``mode="ONNX"``."""
    module = sys.modules[request.function.__module__]
    if module.__name__ != __name__ and hasattr(module, COMPARE):
        monkeypatch.setattr(module, COMPARE, compare_in_onnx_mode)


def test_every_dispatch_module_imports() -> None:
    assert not _IMPORT_FAILURES, _IMPORT_FAILURES


def test_dispatch_cases_are_collected() -> None:
    areas = {name.split("__")[0] for name in _COLLECTED}
    assert {"test_scalar", "test_elemwise", "test_math", "test_special"} <= areas, areas
    assert sum(name.startswith("test_scalar__") for name in _COLLECTED) >= 3


class _Double(Op):
    """Doubles its input; its ONNX converter (below) is wrong on purpose."""

    __props__ = ()

    def make_node(self, x: Any) -> Apply:
        x = pt.as_tensor_variable(x)
        return Apply(self, [x], [x.type()])

    def perform(self, node: Apply, inputs: Any, outputs: Any) -> None:
        outputs[0][0] = inputs[0] * 2


@onnx_funcify.register(_Double)
def _wrong_double(op: _Double, node: Apply, builder: Any) -> list[Any]:
    x = builder.input(node, 0)
    return [builder.op("Add", [x, x]) if node.inputs[0].ndim == 0 else builder.op("Neg", [x])]


def test_replacement_catches_wrong_results() -> None:
    x = pt.vector("x")
    s = pt.dscalar("s")
    compare_in_onnx_mode([s], [_Double()(s)], [1.5])  # the right half of the converter
    with pytest.raises(AssertionError, match="mode=ONNX"):
        compare_in_onnx_mode([x], [_Double()(x)], [np.array([0.1, 0.2])])


# ------------------------------------------------------- representative graphs per area
EDGE = np.array([-np.inf, -2.5, -1.0, -1e-8, 0.0, 0.5, 1.0, 3.0, np.inf, np.nan])


@pytest.mark.parametrize("name", ["exp", "log1p", "tanh", "sigmoid", "softplus", "abs"])
def test_unary_table(name: str, floatX: str) -> None:
    fn, _ = UNARY[name]
    value = EDGE.astype(floatX)
    x = input_like(value, "x", symbolic=True)
    compare_in_onnx_mode([x], [fn(x)], [value])


@pytest.mark.parametrize("name", ["add", "true_div", "pow", "maximum", "lt", "mod"])
def test_binary_table_broadcasting(name: str, floatX: str) -> None:
    a = np.abs(EDGE).astype(floatX).reshape(-1, 1)
    b = np.array([-1.5, 0.0, 2.0, np.nan], dtype=floatX)
    x = input_like(a, "x", symbolic=True)
    y = input_like(b, "y", symbolic=True)
    compare_in_onnx_mode([x, y], [BINARY[name](x, y)], [a, b])


def test_dimshuffle(floatX: str) -> None:
    value = np.arange(24, dtype=floatX).reshape(2, 1, 3, 4)
    x = input_like(value, "x", symbolic=True)
    outs = [x.dimshuffle(3, 0, 2), x.T, x[None], x.dimshuffle("x", 0, 2, "x", 3, 1)]
    compare_in_onnx_mode([x], outs, [value])


def test_dot_variants(floatX: str) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype(floatX)
    b = rng.normal(size=(4, 5)).astype(floatX)
    v = rng.normal(size=4).astype(floatX)
    x, y, z = input_like(a, "x", True), input_like(b, "y", True), input_like(v, "z", True)
    outs = [x @ y, x @ z, z @ y, z @ z, pt.dot(x, y) * 2.0 + 1.0]
    compare_in_onnx_mode([x, y, z], outs, [a, b, v], rtol=1e-5 if floatX == "float32" else None)


def test_softmax_and_log_softmax(floatX: str) -> None:
    value = np.array([[1.0, 2.0, 3.0], [-1e3, 0.0, 1e3]], dtype=floatX)
    x = input_like(value, "x")
    outs = [
        pt.special.softmax(x, axis=-1),
        pt.special.softmax(x, axis=0),
        pt.special.log_softmax(x, axis=-1),
    ]
    compare_in_onnx_mode([x], outs, [value])


def test_reductions(floatX: str) -> None:
    value = np.array([[1.0, -2.0, 3.5], [0.25, 4.0, -1.0]], dtype=floatX)
    x = input_like(value, "x")
    outs = [x.sum(), x.sum(axis=0), x.prod(axis=1), x.max(axis=0), x.min(), x.mean(axis=1)]
    compare_in_onnx_mode([x], outs, [value])


def test_mlp_forward_and_gradient_graph() -> None:
    rng = np.random.default_rng(3)
    values = [rng.normal(size=(8, 6)), rng.normal(size=(6, 5)), rng.normal(size=5)]
    x, w, b = (input_like(v, n) for v, n in zip(values, ["x", "w", "b"], strict=True))
    probs = pt.special.softmax(pt.tanh(x @ w + b), axis=-1)
    loss = -pt.log(probs[:, 0]).sum()
    compare_in_onnx_mode([x, w, b], [probs, loss, *pytensor.grad(loss, [w, b])], values)


def test_logistic_regression_logp_and_gradient() -> None:
    rng = np.random.default_rng(4)
    data = rng.normal(size=(50, 3))
    labels = (rng.random(50) < 0.5).astype("float64")
    beta_value = np.array([0.5, -1.0, 2.0])
    x, y, beta = input_like(data, "x"), input_like(labels, "y"), input_like(beta_value, "beta")
    eta = x @ beta
    logp = (y * eta - pt.softplus(eta)).sum() - 0.5 * (beta**2).sum()
    compare_in_onnx_mode(
        [x, y, beta], [logp, pytensor.grad(logp, beta)], [data, labels, beta_value]
    )
