"""Converters for ``pytensor.raise_op``: Assert and CheckAndRaise (incl. PyMC's parameter checks).

ONNX has no way to raise an error, so a failed check cannot stop the computation. The policy:

- checks that PyMC marks ``can_be_replaced_by_ninf`` (logp support checks) give ``-inf``, which
  is what PyMC's own ``local_check_parameter_to_ninf_switch`` rewrite does;
- every other check gives NaN where PyTensor would raise, so a failure is visible in the
  result instead of silently passing;
- checks on other values (integer shape checks, ...) cannot hold NaN; a failure there makes the
  run fail: the value is read through a ``Gather`` whose index is out of range exactly when
  the check fails, which ONNX Runtime reports as an error (and ``onnx.reference`` as an
  ``IndexError``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.raise_op import CheckAndRaise

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch.basic import onnx_funcify


def fail_unless(builder: ONNXBuilder, ok: ir.Value, value: ir.Value) -> ir.Value:
    """``value``, read so that the run fails (an out-of-range ``Gather``) where ``ok`` is false.

    Parameters
    ----------
    builder : ONNXBuilder
        The graph being built.
    ok : ir.Value
        A 0-d bool: the check.
    value : ir.Value
        The value to pass through.

    Returns
    -------
    ir.Value
        ``value`` itself when ``ok`` holds; the run is an error otherwise.
    """
    position = builder.op("Where", [ok, builder.int64s([0]), builder.int64s([1])])
    stacked = builder.op("Unsqueeze", [value, builder.int64s([0])])
    gathered = builder.op("Gather", [stacked, position], {"axis": 0})
    return builder.op("Squeeze", [gathered, builder.int64s([0])])


@onnx_funcify.register(CheckAndRaise)
def _check_and_raise(op: CheckAndRaise, node: Apply, builder: ONNXBuilder) -> Sequence[ir.Value]:
    dtype = variable_dtype(node.outputs[0])
    value = builder.input(node, 0)
    if len(node.inputs) == 1:
        return [value]
    # CheckAndRaise conditions are scalars.
    ok = builder.input(node, 1, "bool")
    for index in range(2, len(node.inputs)):
        ok = builder.op("And", [ok, builder.input(node, index, "bool")])
    if np.dtype(dtype).kind != "f":
        return [fail_unless(builder, ok, value)]
    fill = -np.inf if getattr(op, "can_be_replaced_by_ninf", False) else np.nan
    return [builder.op("Where", [ok, value, builder.scalar(fill, dtype)])]
