"""Assert / CheckAndRaise: the value where checks hold, else NaN (-inf for PyMC logp checks)."""

from __future__ import annotations

import numpy as np
import onnx
import pytensor.tensor as pt
import pytest
from onnx.reference import ReferenceEvaluator
from pytensor.raise_op import Assert, CheckAndRaise

from pytensor_onnx import export_onnx
from tests.compare import compare_onnx_and_py, input_like, ort_session, run_onnx


def test_assert_passes_value_through(floatX: str, symbolic: bool) -> None:
    value = np.array([0.5, 1.5, 2.0], dtype=floatX)
    x = input_like(value, "x", symbolic)
    checked = Assert("positive")(x * 2, pt.all(x > 0), pt.gt(x.min(), -1))
    compare_onnx_and_py([x], [checked + 1], [value])


@pytest.mark.parametrize("ninf", [False, True])
def test_failed_check_gives_nan_or_minus_inf(ninf: bool) -> None:
    class Check(CheckAndRaise):
        __props__ = ("msg", "exc_type", "can_be_replaced_by_ninf")

        def __init__(self, can_be_replaced_by_ninf: bool):
            super().__init__(ValueError, "check")
            self.can_be_replaced_by_ninf = can_be_replaced_by_ninf

    x = pt.vector("x")
    out = Check(ninf)(x.sum(), pt.all(x > 0))
    model = export_onnx([x], [out])
    expected = -np.inf if ninf else np.nan
    for values in run_onnx(model, {"x": np.array([1.0, -2.0])}):
        np.testing.assert_equal(values[0], expected)
    for values in run_onnx(model, {"x": np.array([1.0, 2.0])}):
        np.testing.assert_equal(values[0], 3.0)
    onnx.checker.check_model(model)


def test_failed_integer_check_fails_the_run() -> None:
    x = pt.vector("x", dtype="int64")
    model = export_onnx([x], [Assert()(x * 2, pt.all(x > 0))])
    session = ort_session(model)
    np.testing.assert_array_equal(session.run(None, {"x": np.array([1, 2])})[0], [2, 4])
    with pytest.raises(Exception, match=r"out of|indices|bounds"):
        session.run(None, {"x": np.array([1, -2])})
    with pytest.raises(IndexError):
        ReferenceEvaluator(model).run(None, {"x": np.array([1, -2])})
