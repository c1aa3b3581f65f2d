"""Converter for ``pytensor.scalar.loop.ScalarLoop``: an elementwise loop as one ONNX ``Loop``.

PyTensor builds ``ScalarLoop`` for the gradients of ``gammainc``/``gammaincc`` with respect
to ``a``, of ``betainc`` and of ``hyp2f1``.  Its inputs are ``(n_steps, *init, *constant)``;
the inner scalar graph maps ``(*carry, *constant)`` to ``(*next carry[, until])``, and the
outputs are the final carry values (and, for a while loop, the last ``until`` flag).  Every
element loops on its own: it takes ``n_steps`` steps of its own, or fewer if its ``until``
becomes true (the step that sets it is kept).

In ONNX, one ``Loop`` steps all elements together.  The carried values are broadcast to the
elements' common shape; at step ``i`` an element is *active* while ``i < n_steps`` and its
``until`` has not fired, and inactive elements keep their values (``Where``).  The loop has no
trip count: it stops once no element will be active at the next step.  The inner graph is
converted by the registered scalar converters into the ``Loop`` body.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx_ir as ir
from pytensor.graph.basic import Apply
from pytensor.scalar.loop import ScalarLoop

from pytensor_onnx.builder import ONNXBuilder, variable_dtype
from pytensor_onnx.dispatch._loop import LoopBody, any_true
from pytensor_onnx.dispatch.basic import convert_nodes, onnx_funcify, thaw

Values = Sequence[ir.Value]


def _broadcast_false(builder: ONNXBuilder, values: Sequence[ir.Value]) -> ir.Value:
    """An all-false bool tensor of the broadcast shape of ``values`` (``Expand`` broadcasts
    both ways, so chaining it over the inputs' shapes gives their common shape)."""
    template = builder.scalar(False, "bool")
    for value in values:
        if value.shape is not None and value.shape.rank() == 0:
            continue  # 0-d values do not change the broadcast shape
        template = builder.op("Expand", [template, builder.shape(value)])
    return template


@onnx_funcify.register(ScalarLoop)
def _scalar_loop(op: ScalarLoop, node: Apply, builder: ONNXBuilder) -> Values:
    fgraph = thaw(op.fgraph)
    n_update = len(fgraph.outputs) - int(op.is_while)
    inputs = builder.inputs(node)
    # Step counts are compared with the int64 iteration number of the ``Loop``.
    n_steps = builder.cast(inputs[0], "int64", variable_dtype(node.inputs[0]))
    done = _broadcast_false(builder, inputs)
    shape = builder.shape(done)

    body = LoopBody(builder, f"{op.name or 'scalar_loop'}_body")
    inner = body.inner
    carried = [
        body.carry_like(builder.op("Expand", [initial, shape]), f"carry_{i}", like)
        for i, (initial, like) in enumerate(
            zip(inputs[1 : 1 + n_update], node.outputs[:n_update], strict=True)
        )
    ]
    active = inner.op("Less", [body.iteration, n_steps])
    if op.is_while:
        done_in = body.carry_like(done, "done", node.outputs[-1])
        active = inner.op("And", [active, inner.op("Not", [done_in])])

    for inner_input, value in zip(fgraph.inputs, [*carried, *inputs[1 + n_update :]], strict=True):
        inner.bind(inner_input, value)
    convert_nodes(fgraph.toposort(), inner)
    for old, new_var in zip(carried, fgraph.outputs[:n_update], strict=True):
        dtype = variable_dtype(new_var)
        update = inner.typed_op("Where", [active, inner.value(new_var), old], dtype, data=[1, 2])
        body.carry_out(update)

    next_step = inner.op("Add", [body.iteration, inner.scalar(1, "int64")])
    next_active = inner.op("Less", [next_step, n_steps])
    if op.is_while:
        until = inner.value(fgraph.outputs[-1])
        done_out = inner.op("Or", [done_in, inner.op("And", [active, until])])
        body.carry_out(done_out)
        next_active = inner.op("And", [next_active, inner.op("Not", [done_out])])
    else:
        # At the elements' shape: a broadcast ``n_steps`` must not loop over no elements.
        next_active = inner.op("Expand", [next_active, shape])
    body.continue_while(any_true(inner, next_active))
    return body.build(None)
