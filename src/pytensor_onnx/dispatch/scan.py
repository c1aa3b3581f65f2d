"""Converters for ``pytensor.scan``: the Scan Op becomes one ONNX ``Scan`` or ``Loop``.

A scan without ``until`` is an ONNX ``Scan`` (its body outputs need known ranks), with a
guard for lengths known only at run time (:class:`~pytensor_onnx.dispatch._loop.LoopBody`,
``any_count``); a scan with ``until`` is a ``Loop``.  PyTensor's Scan has while-loop
conditions, a symbolic number of steps independent of the sequence lengths, recurrences over
several past steps (mit-sot) and the read-modify-write buffers of gradients (mit-mot); the
mapping below is written for ``Loop`` (trip count ``M``, condition, loop-carried values),
and ``LoopBody`` turns it into a ``Scan`` (carried values become state, sequences scan
inputs).

The mapping (``k`` is the number of past steps an output reads, ``-min(taps)``):

* sequences: the body reads ``Gather(seq, iteration)`` from the enclosing scope;
* non-sequences (shared variables, constants, tensors): read from the enclosing scope;
* sit-sot / mit-sot: the ``k`` most recent values are loop-carried (a shift register), and
  each step's new value is a scan output.  After the loop the history (the ``k`` initial
  values followed by the new ones) is cut to the buffer PyTensor asked for: the last
  ``len(buffer)`` entries, in time order, exactly what PyTensor's (possibly circular,
  after ``scan_save_mem``) storage holds after its final reordering.  When the buffer is
  statically not longer than ``k``, no scan output is emitted at all;
* nit-sot: a scan output, cut the same way to the requested length;
* mit-mot (gradients of scans): the whole buffer is loop-carried; taps are ``Gather``
  reads and the outputs ``ScatterND`` writes at the step's position;
* untraced sit-sot: plain loop-carried values;
* ``until``: the loop condition is the negated inner condition, and a loop-carried counter
  gives the number of steps actually run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx_ir as ir
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.scan.op import Scan
from pytensor.tensor.basic import get_scalar_constant_value
from pytensor.tensor.exceptions import NotScalarConstantError

from pytensor_onnx.builder import ONNXBuilder, onnx_dtype, variable_dtype, variable_shape
from pytensor_onnx.dispatch._loop import LoopBody, as_1d, unstack
from pytensor_onnx.dispatch.basic import UnsupportedOpError, convert_nodes, onnx_funcify, thaw
from pytensor_onnx.rewrite import rewrite_for_onnx

Values = Sequence[ir.Value]


def rewritten_inner_graph(inner: Any) -> FunctionGraph:
    """A rewritten copy of an Op's inner graph (frozen in PyTensor 3), ready for conversion."""
    fgraph = thaw(inner)
    # Rewriting changes the graph in place: never rewrite the Op's own graph.
    fgraph = fgraph.clone() if fgraph is inner else fgraph
    rewrite_for_onnx(fgraph)
    return fgraph


@dataclass
class _Tapped:
    """A sit-sot/mit-sot/mit-mot output: its outer buffer and the taps it reads."""

    buffer: Variable
    taps: tuple[int, ...]
    inner_inputs: list[Variable]

    @property
    def depth(self) -> int:
        """How many past steps the output keeps (``-min(taps)``)."""
        return -min(self.taps)


def _check_same_shape(node: Apply, inner_in: Variable, inner_out: Variable, what: str) -> None:
    """Refuse a carried value whose static shape changes from one step to the next."""
    in_shape, out_shape = variable_shape(inner_in), variable_shape(inner_out)
    if len(in_shape) != len(out_shape) or any(
        a is not None and b is not None and a != b for a, b in zip(in_shape, out_shape, strict=True)
    ):
        raise UnsupportedOpError.for_node(
            node,
            f"the {what} state changes shape from {in_shape} to {out_shape} between steps; "
            "ONNX Loop needs every step's value to have one shape",
        )


def _scalar_at(builder: ONNXBuilder, value: ir.Value, index: ir.Value | int) -> ir.Value:
    """``value[index]`` along axis 0 (the axis is dropped)."""
    idx = builder.scalar(index, "int64") if isinstance(index, int) else index
    return builder.op("Gather", [value, idx], {"axis": 0})


def _length(builder: ONNXBuilder, value: ir.Value) -> ir.Value:
    """The length of axis 0 as an int64 scalar."""
    return _scalar_at(builder, builder.shape(value), 0)


def _cut_history(
    builder: ONNXBuilder,
    history: ir.Value,
    store: ir.Value,
    n_steps: ir.Value,
    steps_run: ir.Value | None,
    dtype: str,
) -> ir.Value:
    """What PyTensor's output buffer of length ``store`` holds after the loop.

    ``history`` is every value in time order (initial ones first).  The buffer keeps the
    last ``store`` of them; a buffer longer than the history is zero-padded, and when a
    while-loop stopped early (``steps_run < n_steps``) it is shortened by the missing steps.
    """
    length = _length(builder, history)
    zero = builder.scalar(0, "int64")
    pad = builder.op("Max", [builder.op("Sub", [store, length]), zero])
    padded = builder.append_zeros(history, as_1d(builder, pad), 0, dtype)
    start = builder.op("Max", [builder.op("Sub", [length, store]), zero])
    if steps_run is None:
        end = builder.op("Add", [start, store])
    else:
        missing = builder.op("Sub", [n_steps, steps_run])
        end = builder.op(
            "Where",
            [
                builder.op("Greater", [store, length]),
                builder.op("Sub", [store, missing]),
                length,
            ],
        )
    return builder.op(
        "Slice", [padded, as_1d(builder, start), as_1d(builder, end), builder.int64s([0])]
    )


def _static_shape(shape: tuple[int | None, ...]) -> list[int] | None:
    """``shape`` if every dimension is known, else ``None``."""
    return None if None in shape else [d for d in shape if d is not None]


def _static_length(buffer: Variable) -> int | None:
    """The static length of axis 0 of an outer ``buffer``, if known."""
    if isinstance(buffer, Constant):
        return int(np.shape(buffer.data)[0])
    shape = variable_shape(buffer)
    return shape[0] if shape else None


def _trip_count(builder: ONNXBuilder, node: Apply) -> ir.Value:
    """The scan's number of steps: a constant when PyTensor knows it (a literal, or a static
    shape after the gradient's shape arithmetic), so that :class:`LoopBody` can make it an
    ONNX ``Scan``; else the computed value."""
    try:
        known = get_scalar_constant_value(node.inputs[0])
    except NotScalarConstantError:
        return builder.input(node, 0, "int64")
    return builder.scalar(int(known), "int64")


@onnx_funcify.register(Scan)
def _scan(op: Scan, node: Apply, builder: ONNXBuilder) -> Values:
    info = op.info
    fgraph = rewritten_inner_graph(op.fgraph)
    inner_in = list(fgraph.inputs)
    inner_out = list(fgraph.outputs)
    outer_in = list(node.inputs)

    # Split the outer inputs and the inner inputs by kind.
    outer_in = outer_in[1:]
    seqs, outer_in = outer_in[: info.n_seqs], outer_in[info.n_seqs :]
    seq_inner, inner_in = inner_in[: info.n_seqs], inner_in[info.n_seqs :]
    tapped: list[_Tapped] = []
    for taps in (*info.mit_mot_in_slices, *info.mit_sot_in_slices, *info.sit_sot_in_slices):
        tapped.append(_Tapped(outer_in.pop(0), tuple(taps), inner_in[: len(taps)]))
        inner_in = inner_in[len(taps) :]
    mit_mot, window_outs = tapped[: info.n_mit_mot], tapped[info.n_mit_mot :]
    nit_sizes, outer_in = outer_in[: info.n_nit_sot], outer_in[info.n_nit_sot :]
    untraced = outer_in[: info.n_untraced_sit_sot]
    untraced_inner = inner_in[: info.n_untraced_sit_sot]
    non_seqs = outer_in[info.n_untraced_sit_sot :]
    non_seq_inner = inner_in[info.n_untraced_sit_sot :]

    n_mit_mot_outs = info.n_mit_mot_outs
    mit_mot_new, rest = inner_out[:n_mit_mot_outs], inner_out[n_mit_mot_outs:]
    window_new, rest = rest[: len(window_outs)], rest[len(window_outs) :]
    nit_new, rest = rest[: info.n_nit_sot], rest[info.n_nit_sot :]
    untraced_new = rest[: info.n_untraced_sit_sot]
    until = rest[info.n_untraced_sit_sot] if info.as_while else None

    for out, new in zip(window_outs, window_new, strict=True):
        for tap_var in out.inner_inputs:
            _check_same_shape(node, tap_var, new, "recurrent")
    for old, new in zip(untraced_inner, untraced_new, strict=True):
        _check_same_shape(node, old, new, "loop-carried")

    n_steps = _trip_count(builder, node)
    scan = not info.as_while
    body = LoopBody(
        builder, f"{op.name or 'scan'}_body", scan=scan, any_count=scan, float_sizes=True
    )
    sub = body.inner
    step = body.iteration

    counter = None
    if info.as_while:
        counter = body.carry(builder.scalar(0, "int64"), "steps_run", "int64", ())
        body.carry_out(sub.op("Add", [counter, sub.scalar(1, "int64")]))

    for var, inner in zip(seqs, seq_inner, strict=True):
        sub.bind(inner, body.sequence(builder.value(var), inner))
    for var, inner in zip(non_seqs, non_seq_inner, strict=True):
        sub.bind(inner, builder.value(var))

    # mit-mot: carried buffers read at (pos + tap) % len and written at (pos + out_tap) % len
    # (the writes stay in range on a guarded Scan's extra step, whose result is dropped,
    # when there are no steps and the buffer holds none).
    mit_mot_state: list[tuple[ir.Value, ir.Value, ir.Value]] = []
    for out in mit_mot:
        buffer = body.carry_like(builder.value(out.buffer), "mit_mot_buffer", out.buffer)
        store = _length(builder, builder.value(out.buffer))
        pos = sub.op("Mod", [sub.op("Add", [step, sub.scalar(out.depth, "int64")]), store])
        for tap, inner in zip(out.taps, out.inner_inputs, strict=True):
            index = sub.op("Mod", [sub.op("Add", [pos, sub.scalar(tap, "int64")]), store])
            sub.bind(inner, _scalar_at(sub, buffer, index))
        mit_mot_state.append((buffer, pos, store))

    # sit-sot / mit-sot: a shift register of the `depth` most recent values.
    windows: list[list[ir.Value]] = []
    for out in window_outs:
        initial = builder.value(out.buffer)
        window = [
            body.carry_like(_scalar_at(builder, initial, j), "state", out.inner_inputs[0])
            for j in range(out.depth)
        ]
        for tap, inner in zip(out.taps, out.inner_inputs, strict=True):
            sub.bind(inner, window[out.depth + tap])
        windows.append(window)

    untraced_carried = [
        body.carry_like(builder.value(var), "carried", inner)
        for var, inner in zip(untraced, untraced_inner, strict=True)
    ]
    for inner, value in zip(untraced_inner, untraced_carried, strict=True):
        sub.bind(inner, value)
    # The step shape of each nit-sot, to undo the flattening of scan outputs: static, or the
    # last step's, carried (OpenVINO and tract fail on a carried empty shape of 0-d steps).
    nit_static = [_static_shape(variable_shape(new)) for new in nit_new]
    for new, known in zip(nit_new, nit_static, strict=True):
        if known is None:
            ndim = len(variable_shape(new))
            zeros = builder.const(np.zeros(ndim, dtype=np.int64))
            body.carry(zeros, "step_shape", "int64", (ndim,), position=True)

    convert_nodes(fgraph.toposort(), sub)

    # Next carried values, in the order they were added.
    mit_mot_iter = iter(mit_mot_new)
    for group, (buffer, pos, store) in zip(info.mit_mot_out_slices, mit_mot_state, strict=True):
        for out_tap in group:
            value = sub.value(next(mit_mot_iter))
            written = sub.op("Mod", [sub.op("Add", [pos, sub.scalar(out_tap, "int64")]), store])
            index = sub.op("Reshape", [written, sub.int64s([1, 1])])
            update = sub.op("Unsqueeze", [value, sub.int64s([0])])
            buffer = sub.op("ScatterND", [buffer, index, update])
        body.carry_out(buffer)
    keeps_history: list[bool] = []
    for out, window, new in zip(window_outs, windows, window_new, strict=True):
        for value in [*window[1:], sub.value(new)]:
            body.carry_out(value)
        static = _static_length(out.buffer)
        keeps_history.append(static is None or not 1 <= static <= out.depth)
        if keeps_history[-1]:
            body.scan_out(sub.value(new), variable_dtype(new))
    for new in untraced_new:
        body.carry_out(sub.value(new))
    for new, known in zip(nit_new, nit_static, strict=True):
        if known is None:
            body.carry_out(sub.shape(sub.value(new)))
        body.scan_out(sub.value(new), variable_dtype(new))
    if until is not None:
        stop = sub.cast(sub.value(until), "bool", variable_dtype(until))
        body.continue_while(sub.op("Not", [stop]))

    results = iter(body.build(n_steps))
    steps_run = next(results) if info.as_while else None
    count = steps_run if steps_run is not None else n_steps
    outputs: list[ir.Value] = [next(results) for _ in mit_mot]
    finals = [[next(results) for _ in range(out.depth)] for out in window_outs]
    untraced_final = [next(results) for _ in untraced]
    nit_shapes = [next(results) if known is None else builder.int64s(known) for known in nit_static]
    histories = [next(results) if keep else None for keep in keeps_history]
    nit_histories = [next(results) for _ in nit_new]

    dtypes = iter([variable_dtype(var) for var in node.outputs[len(mit_mot) :]])
    for out, final, history in zip(window_outs, finals, histories, strict=True):
        dtype = next(dtypes)
        buffer = builder.value(out.buffer)
        if history is None:
            # The buffer is no longer than the window: it holds the window's newest values.
            size = _static_length(out.buffer)
            assert size is not None
            kept = [
                builder.op("Unsqueeze", [v, builder.int64s([0])]) for v in final[out.depth - size :]
            ]
            outputs.append(builder.op("Concat", kept, {"axis": 0}) if len(kept) > 1 else kept[0])
            continue
        elem_shape = builder.op("Shape", [buffer], {"start": 1})
        initial = builder.op(
            "Slice", [buffer, builder.int64s([0]), builder.int64s([out.depth]), builder.int64s([0])]
        )
        new_values = unstack(builder, history, count, elem_shape)
        full = builder.op("Concat", [initial, new_values], {"axis": 0})
        store = _length(builder, buffer)
        outputs.append(_cut_history(builder, full, store, n_steps, steps_run, dtype))
    for size_var, step_shape, history in zip(nit_sizes, nit_shapes, nit_histories, strict=True):
        store = builder.cast(builder.value(size_var), "int64", variable_dtype(size_var))
        new_values = unstack(builder, history, count, step_shape)
        outputs.append(_cut_history(builder, new_values, store, n_steps, steps_run, next(dtypes)))
    outputs.extend(untraced_final)

    for var, value in zip(node.outputs, outputs, strict=True):
        value.dtype = onnx_dtype(variable_dtype(var))
    return outputs


def _batch_shape(builder: ONNXBuilder, node: Apply, batch_ndim: int) -> ir.Value:
    """The broadcast batch shape of a Blockwise ``node``'s inputs (1-D int64)."""
    op = node.op
    broadcast = builder.scalar(False, "bool")
    for i, sig in enumerate(op.inputs_sig):
        value = builder.input(node, i)
        own = len(variable_shape(node.inputs[i])) - len(sig)
        if own == 0:
            continue
        shape = builder.op("Shape", [value], {"start": 0, "end": own})
        # Expand broadcasts both ways: expanding into each batch shape in turn broadcasts them.
        broadcast = builder.op("Expand", [broadcast, shape])
    if len(variable_shape(node.outputs[0])) - len(op.outputs_sig[0]) != batch_ndim:
        raise RuntimeError("inconsistent Blockwise batch dimensions")
    return builder.op("Shape", [broadcast])


def blockwise_loop(node: Apply, builder: ONNXBuilder) -> list[ir.Value]:
    """Convert a Blockwise ``node`` by looping its core Op's converter over the batch.

    The inputs are broadcast to the common batch shape and flattened to one batch axis; a
    loop over that axis (an ONNX ``Scan`` for a static batch shape, else a ``Loop``) applies
    the core Op's converter to one batch entry per step, and the stacked results are
    reshaped to ``(*batch_shape, *core_shape)``.  Used for core Ops without a batched
    converter (see ``onnx_funcify_blockwise``).
    """
    op = node.op
    batch_ndim = op.batch_ndim(node)
    core_node = op._create_dummy_core_node(node.inputs)
    batch_shape = _batch_shape(builder, node, batch_ndim)
    static_batch = [d for d in variable_shape(node.outputs[0])[:batch_ndim] if d is not None]
    if len(static_batch) == batch_ndim:  # a known count makes it an ONNX Scan
        count = builder.scalar(math.prod(static_batch), "int64")
    else:
        count = builder.op("ReduceProd", [batch_shape], {"keepdims": 0})
    body = LoopBody(builder, f"{type(op.core_op).__name__}_batch_body", scan=True)
    sub = body.inner
    for i, core_var in enumerate(core_node.inputs):
        value = builder.input(node, i)
        core_shape = builder.op(
            "Shape", [value], {"start": len(variable_shape(node.inputs[i])) - len(op.inputs_sig[i])}
        )
        full = builder.op("Concat", [batch_shape, core_shape], {"axis": 0})
        flat_shape = builder.op("Concat", [as_1d(builder, count), core_shape], {"axis": 0})
        flat = builder.op(
            "Reshape", [builder.op("Expand", [value, full]), flat_shape], {"allowzero": 1}
        )
        sub.bind(core_var, body.sequence(flat, core_var))
    for out in core_node.outputs:
        ndim = len(variable_shape(out))
        body.carry(builder.const(np.zeros(ndim, dtype=np.int64)), "core_shape", "int64", (ndim,))
    convert_nodes([core_node], sub)
    for out in core_node.outputs:
        body.carry_out(sub.shape(sub.value(out)))
    for out in core_node.outputs:
        body.scan_out(sub.value(out), variable_dtype(out))
    results = body.build(count)
    n_out = len(core_node.outputs)
    outputs = []
    for var, core_shape, stacked in zip(
        node.outputs, results[:n_out], results[n_out:], strict=True
    ):
        shape = builder.op("Concat", [batch_shape, core_shape], {"axis": 0})
        value = builder.op("Reshape", [stacked, shape], {"allowzero": 1})
        value.dtype = onnx_dtype(variable_dtype(var))
        outputs.append(value)
    return outputs
