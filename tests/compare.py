"""The one comparison helper of the test suite.

``compare_onnx_and_py`` evaluates a PyTensor graph with PyTensor's Python linker (the
reference), exports it, checks the model (ONNX checker with ``full_check`` and strict shape
inference, done by ``export_onnx``), runs it in ONNX Runtime **and** ``onnx.reference`` and
compares every output: dtype, shape and values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
from onnx.reference import ReferenceEvaluator
from pytensor.compile.mode import Mode
from pytensor.graph.basic import Variable

from pytensor_onnx import DEFAULT_OPSET, export_onnx, newest_runtime_opset
from pytensor_onnx.builder import PORTABLE_REPLACEMENTS

#: Opsets every comparison runs at: the default and the newest ONNX Runtime supports.
OPSETS = tuple(sorted({DEFAULT_OPSET, newest_runtime_opset()}))

#: PyTensor's own evaluation: Python implementations (``perform``) after the usual rewrites,
#: without inplace and fusion rewrites (as the export).  A fused ``Composite`` evaluates
#: scalar ops on Python scalars, where PyTensor's ``Invert`` of a bool gives ``~True == -2``,
#: i.e. True (seen in PyTensor 2.38 and 3.3).
REFERENCE_MODE = Mode(linker="py", optimizer="fast_run").excluding("inplace", "fusion")

_TOLERANCES = {
    "float64": (1e-12, 1e-14),
    "float32": (1e-5, 1e-6),
    "float16": (1e-2, 1e-3),
}


def tolerances(dtype: np.dtype[Any]) -> tuple[float, float]:
    """Default ``(rtol, atol)`` for comparing outputs of ``dtype`` (exact for non-floats)."""
    return _TOLERANCES.get(np.dtype(dtype).name, (0.0, 0.0))


def input_like(value: Any, name: str, symbolic: bool = False) -> Variable:
    """A PyTensor input matching ``value``: static shape, or unknown dims if ``symbolic``.

    Length-1 dims stay static with ``symbolic`` too: PyTensor only broadcasts dims it knows
    to be 1.
    """
    value = np.asarray(value)
    shape = tuple(1 if d == 1 else None for d in value.shape) if symbolic else value.shape
    return pt.tensor(name=name, dtype=str(value.dtype), shape=shape)


def ort_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for ``model``."""
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def run_onnx(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> tuple[list[Any], list[Any]]:
    """Outputs of ``model`` from ONNX Runtime and from ``onnx.reference``."""
    runtime = ort_session(model).run(None, feeds)
    reference = ReferenceEvaluator(model).run(None, feeds)
    return runtime, reference


def assert_matches(
    actual: Any, expected: Any, rtol: float | None, atol: float | None, what: str
) -> None:
    """Assert ``actual`` equals ``expected`` in dtype, shape and (within tolerance) values."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    default_rtol, default_atol = tolerances(expected.dtype)
    np.testing.assert_allclose(
        actual,
        expected,
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
        equal_nan=True,
        err_msg=what,
    )


def all_nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``model``: its graph, the subgraphs of ``If``/``Loop``/``Scan`` (at any
    depth) and its local functions."""
    graphs: list[Iterable[onnx.NodeProto]] = [model.graph.node, *(f.node for f in model.functions)]
    while graphs:
        for node in graphs.pop():
            yield node
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attr.g.node)
                graphs.extend(g.node for g in attr.graphs)


def assert_portable(model: onnx.ModelProto) -> None:
    """Assert that ``model`` uses none of the operators some runtimes lack (the builder writes
    them as portable nodes: ``PORTABLE_REPLACEMENTS``)."""
    found = sorted({n.op_type for n in all_nodes(model) if n.op_type in PORTABLE_REPLACEMENTS})
    assert not found, f"the model uses {found}, which some runtimes lack"


def compare_onnx_and_py(
    inputs: Sequence[Variable],
    outputs: Variable | Sequence[Variable],
    test_values: Sequence[Any],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    opsets: Sequence[int] = OPSETS,
    reference: bool = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Check that the ONNX export of ``inputs -> outputs`` computes what PyTensor computes.

    Parameters
    ----------
    inputs, outputs
        The symbolic graph.
    test_values
        One value per input.
    rtol, atol
        Tolerances; by default per output dtype (see :func:`tolerances`).
    opsets
        The opsets to export at; each export is checked and run.
    reference
        Also run ``onnx.reference`` (turn off only for models it cannot run, and say why).
    export_kwargs
        Passed to :func:`pytensor_onnx.export_onnx`.

    Returns
    -------
    onnx.ModelProto
        The model exported at the last opset, for structural assertions.
    """
    outputs_list = [outputs] if isinstance(outputs, Variable) else list(outputs)
    fn = pytensor.function(
        list(inputs), outputs_list, mode=REFERENCE_MODE, on_unused_input="ignore"
    )
    values = [np.asarray(v) for v in test_values]
    expected = fn(*values)
    model: onnx.ModelProto | None = None
    for opset in opsets:
        model = export_onnx(list(inputs), outputs_list, opset=opset, **export_kwargs)
        assert_portable(model)
        feeds = {inp.name: val for inp, val in zip(model.graph.input, values, strict=False)}
        runtime = ort_session(model).run(None, feeds)
        for i, (got, want) in enumerate(zip(runtime, expected, strict=True)):
            assert_matches(got, want, rtol, atol, f"onnxruntime, opset {opset}, output {i}")
        if reference:
            ref = ReferenceEvaluator(model).run(None, feeds)
            for i, (got, want) in enumerate(zip(ref, expected, strict=True)):
                assert_matches(got, want, rtol, atol, f"onnx.reference, opset {opset}, output {i}")
    assert model is not None
    return model
