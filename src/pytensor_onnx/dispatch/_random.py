"""The counter-based random generator that every RandomVariable converter draws from.

ONNX has no generator state, and its ``RandomNormal``/``RandomUniform`` take their seed as a
fixed attribute and differ between runtimes.  Draws are therefore computed from a seed that
is a graph input: a random generator becomes one int64 scalar, and the bits are
Threefry-2x32-20 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
built from ONNX integer ops on uint32 (``Add``, ``BitShift``, ``BitwiseOr``, ``BitwiseXor``,
which ONNX Runtime's CPU provider and ``onnx.reference`` both run, opset 18 on).  The bits
are a pure function of (seed, stream, word, element index), so a seed gives the same bits in
every runtime.

* The 64-bit seed is the base key ``(low word, high word)``.
* Every RandomVariable node gets a stream number (:meth:`ONNXBuilder.next_stream`, in
  conversion order) and its own key ``threefry(base key, (stream, 0))``, one scalar
  computation per node.
* Draw ``word`` of an element whose flat (C-order) index in the draw's shape is ``i`` is the
  counter ``(i mod 2**32, (i >> 32) * 2**24 + word)`` under the node's key: one Threefry call
  gives two uint32 words per element.  Counters are distinct for words below ``2**24`` and
  fewer than ``2**40`` elements per node (far beyond what a rejection loop draws or a
  runtime allocates).

A node that needs several random numbers per element (Box-Muller pairs, rejection rounds)
uses distinct words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch._loop import LoopBody, any_true
from pytensor_onnx.dispatch._numerics import Num

#: The rotation constants of Threefry-2x32 (Random123's ``R_32x2``).
THREEFRY_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
#: The key-schedule parity constant of Threefry-32 (Random123's ``SKEIN_KS_PARITY32``).
THREEFRY_PARITY = 0x1BD11BDA
#: Rounds of the Threefry-2x32 variant used (the recommended, crush-resistant 20).
THREEFRY_ROUNDS = 20

Words = tuple[ir.Value, ir.Value]


def shift_right(builder: ONNXBuilder, x: ir.Value, bits: int) -> ir.Value:
    """The uint32 ``x`` shifted right by ``bits`` (``0 < bits < 32``), zero-filled.

    Unless the export option ``portable`` is off, the shift is built so that OpenVINO's CPU
    plugin computes it exactly too.  It computes uint32 as int32 and a right shift as a
    float32 division, exact only for dividends of at most 24 significant bits, and
    sign-extends.  So the bits that are shifted out are cleared first (of ``x & ~(2**8 - 1)``
    and shorter masks, at most 24 bits remain), the low byte is shifted on its own where
    ``bits < 8``, and the sign extension is masked off.  ``~mask`` is a ``BitwiseNot`` node:
    OpenVINO misreads uint32 constants of ``2**31`` and more.  The values are the same in
    every runtime that computes uint32 as ONNX specifies.
    """
    b = builder

    def right(value: ir.Value) -> ir.Value:
        return b.op("BitShift", [value, b.scalar(bits, "uint32")], {"direction": "RIGHT"})

    if not b.portable:
        return right(x)
    low = b.scalar(2 ** max(bits, 8) - 1, "uint32")
    shifted = right(b.op("BitwiseAnd", [x, b.op("BitwiseNot", [low])]))
    if bits < 8:
        shifted = b.op("BitwiseOr", [shifted, right(b.op("BitwiseAnd", [x, low]))])
    return b.op("BitwiseAnd", [shifted, b.scalar(2 ** (32 - bits) - 1, "uint32")])


def threefry2x32(
    builder: ONNXBuilder, key: Words, counter: Words, offset: ir.Value | None = None
) -> Words:
    """Threefry-2x32-20 of ``counter`` under ``key``: two uint32 words.

    Every input is a uint32 value; keys and counters broadcast against each other.  The
    0-d ``offset`` is added (modulo ``2**32``) to the counter's second word; it is added to
    the key word first, so that it costs no elementwise operation.
    """

    def u32(value: int) -> ir.Value:
        return builder.scalar(value, "uint32")

    def add(a: ir.Value, b: ir.Value) -> ir.Value:
        return builder.op("Add", [a, b])

    def rotate_left(x: ir.Value, r: int) -> ir.Value:
        left = builder.op("BitShift", [x, u32(r)], {"direction": "LEFT"})
        return builder.op("BitwiseOr", [left, shift_right(builder, x, 32 - r)])

    k0, k1 = key
    schedule = (
        k0,
        k1,
        builder.op("BitwiseXor", [builder.op("BitwiseXor", [k0, k1]), u32(THREEFRY_PARITY)]),
    )
    x0 = add(counter[0], k0)
    x1 = add(counter[1], k1 if offset is None else add(k1, offset))
    for i in range(THREEFRY_ROUNDS):
        x0 = add(x0, x1)
        x1 = builder.op("BitwiseXor", [rotate_left(x1, THREEFRY_ROTATIONS[i % 8]), x0])
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = add(x0, schedule[s % 3])
            # The key words are 0-d wherever this is used: add them first (one elementwise Add).
            x1 = add(x1, add(schedule[(s + 1) % 3], u32(s)))
    return x0, x1


def split_words(builder: ONNXBuilder, value: ir.Value) -> Words:
    """The low and high uint32 words of an int64 value (two's complement).

    The low word is subtracted before the shift (unless the export option ``portable`` is
    off): OpenVINO reads int64 as int32, and the float32 division it makes of a right shift
    would round values of ``[2**31 - 64, 2**31)`` up to a high word of 1.
    """
    b = builder
    low = b.op("Cast", [value], {"to": ir.DataType.UINT32})
    wide = b.op("Cast", [value], {"to": ir.DataType.UINT64})
    if b.portable:
        wide = b.op("Sub", [wide, b.op("Cast", [low], {"to": ir.DataType.UINT64})])
    shifted = b.op("BitShift", [wide, b.scalar(32, "uint64")], {"direction": "RIGHT"})
    return low, b.op("Cast", [shifted], {"to": ir.DataType.UINT32})


#: Bits of a counter's second word below an element index's high word: the word of a draw.
WORD_BITS = 24


def _flat_index(builder: ONNXBuilder, count: ir.Value) -> Words:
    """The counters of the flat indices ``i = 0 .. count - 1`` (``count`` 0-d int64):
    ``i mod 2**32`` and ``(i >> 32) * 2**WORD_BITS``, to which a word is added."""
    index = builder.op("Range", [builder.scalar(0, "int64"), count, builder.scalar(1, "int64")])
    low, high = split_words(builder, index)
    shift = builder.scalar(WORD_BITS, "uint32")
    return low, builder.op("BitShift", [high, shift], {"direction": "LEFT"})


@dataclass(frozen=True)
class RandomStream:
    """The random bits of one RandomVariable node, for every element of a draw shape.

    Make one with :meth:`create`; :meth:`lane` and :meth:`within` give views of it.

    Attributes
    ----------
    builder
        The builder of the graph that draws (a loop body's inside a loop).
    key
        The node's key: Threefry of its stream number under the seed's two words.
    counter
        The counter of each element's flat index before the word is added (1-D uint32).
    lanes, lane_index
        Word ``w`` of this view is word ``w * lanes + lane_index`` of the node's stream, so
        that the lanes of one node (e.g. the two gamma variates of a beta draw) never share
        a word, however many rejection rounds each runs.
    count
        The number of elements (0-d int64) when the counter is every element's flat index
        ``0 .. count - 1`` (a view of some elements only has ``None``): :meth:`pairs` needs it.
    dtype
        The dtype of the uniforms (:meth:`uniform`) and of the draws made from them:
        ``float64``, or ``float32`` for samplers that compute in float32 (in float32-only
        exports).
    """

    builder: ONNXBuilder
    key: Words
    counter: Words
    lanes: int = 1
    lane_index: int = 0
    count: ir.Value | None = None
    dtype: str = "float64"

    @classmethod
    def create(
        cls, builder: ONNXBuilder, seed: ir.Value, count: ir.Value, dtype: str = "float64"
    ) -> RandomStream:
        """The stream of a new node drawing ``count`` (0-d int64) elements from ``seed``
        (0-d int64) in ``dtype``; its stream number is the next of the model."""
        stream = (builder.scalar(builder.next_stream(), "uint32"), builder.scalar(0, "uint32"))
        key = threefry2x32(builder, split_words(builder, seed), stream)
        return cls(builder, key, _flat_index(builder, count), count=count, dtype=dtype)

    def pairs(self) -> RandomStream:
        """The view whose element ``j`` is the pair of elements ``2 j`` and ``2 j + 1`` of
        this one (``ceil(count / 2)`` elements, same words), for draws made two at a time,
        such as Box-Muller's.  Only a view of every element (``count`` known) has pairs."""
        if self.count is None:
            raise ValueError("RandomStream.pairs: a view of some elements only has no pairs")
        b = self.builder
        half = b.op("Div", [b.op("Add", [self.count, b.scalar(1, "int64")]), b.scalar(2, "int64")])
        return replace(self, counter=_flat_index(b, half), count=half)

    def lane(self, index: int, lanes: int) -> RandomStream:
        """Lane ``index`` of ``lanes`` disjoint sub-streams of this view: its word ``w`` is
        this view's word ``w * lanes + index``."""
        return replace(
            self, lanes=self.lanes * lanes, lane_index=self.lane_index + index * self.lanes
        )

    def word(self, w: int) -> int:
        """The word of the node's stream that word ``w`` of this view draws from."""
        return w * self.lanes + self.lane_index

    def within(self, builder: ONNXBuilder) -> RandomStream:
        """This view drawing in ``builder``'s graph (a loop body of the original graph)."""
        return replace(self, builder=builder)

    def bits(self, word: int | ir.Value) -> Words:
        """Two uint32 words per element (1-D), from draw ``word`` (an int or 0-d int64)."""
        b = self.builder
        if isinstance(word, int):
            word_value = b.scalar(self.word(word) % 2**32, "uint32")
        else:
            scaled = b.op("Mul", [word, b.scalar(self.lanes, "int64")])
            word_value = b.op(
                "Cast",
                [b.op("Add", [scaled, b.scalar(self.lane_index, "int64")])],
                {"to": ir.DataType.UINT32},
            )
        return threefry2x32(b, self.key, self.counter, word_value)

    def uniform(self, word: int | ir.Value, *, open_interval: bool = False) -> ir.Value:
        """Uniforms per element (1-D, in the stream's dtype) from draw ``word``.

        ``open_interval=False``: ``k / 2**53`` for a 53-bit ``k``, in ``[0, 1)`` (NumPy's
        interval).  ``open_interval=True``: ``(2 k + 1) / 2**53`` for a 52-bit ``k``, in
        ``[2**-53, 1 - 2**-53]``, never 0 or 1 (for transforms that take a logarithm);
        ``1 - u`` is exact then.  Both are exact in float64 (no rounding).  In float32 the
        same with 24 bits (``k / 2**24``, or ``(2 k + 1) / 2**24`` for a 23-bit ``k``), from
        the first word of the Threefry pair, as NumPy's float32 ``random``.
        """
        b = self.builder
        high, low = self.bits(word)
        if self.dtype == "float32":
            return _float32_uniform(b, high, open_interval)
        high_bits = 27 if not open_interval else 26
        top = shift_right(b, high, 32 - high_bits)
        bottom = shift_right(b, low, 6)
        k = b.op(
            "Add",
            [
                b.op("Mul", [b.cast(top, "float64", "uint32"), b.scalar(2.0**26, "float64")]),
                b.cast(bottom, "float64", "uint32"),
            ],
        )
        if open_interval:
            k = b.op("Add", [b.op("Mul", [k, b.scalar(2.0, "float64")]), b.scalar(1.0, "float64")])
        return b.op("Mul", [k, b.scalar(2.0**-53, "float64")])

    def uniform_pair(self, word: int | ir.Value) -> tuple[ir.Value, ir.Value]:
        """Two float32 uniforms per element from the two words of one call of draw ``word``:
        the first in the open interval, the second in ``[0, 1)`` (see :meth:`uniform`), for
        the pairs that Box-Muller takes (half the Threefry calls of two :meth:`uniform`)."""
        if self.dtype != "float32":
            raise ValueError("RandomStream.uniform_pair: only float32 streams draw pairs")
        high, low = self.bits(word)
        b = self.builder
        return _float32_uniform(b, high, open_interval=True), _float32_uniform(b, low, False)


def _float32_uniform(builder: ONNXBuilder, bits: ir.Value, open_interval: bool) -> ir.Value:
    """A float32 uniform from the top 24 bits of the uint32 ``bits`` (``k / 2**24``), or
    strictly inside ``(0, 1)`` from the top 23 (``(2 k + 1) / 2**24``); exact."""
    b = builder
    kept = 23 if open_interval else 24
    shifted = shift_right(b, bits, 32 - kept)
    k = b.cast(shifted, "float32", "uint32")
    if open_interval:
        k = b.op("Add", [b.op("Mul", [k, b.scalar(2.0, "float32")]), b.scalar(1.0, "float32")])
    return b.op("Mul", [k, b.scalar(2.0**-24, "float32")])


def compute_where(
    builder: ONNXBuilder,
    where: ir.Value,
    values: list[ir.Value],
    compute: Callable[[list[ir.Value]], ir.Value],
    fill: bool | float = 0.0,
    dtype: str = "float64",
) -> ir.Value:
    """``compute`` (1-D, of ``dtype`` or, with a bool ``fill``, bool) of the entries of the
    1-D ``values`` where the 1-D bool ``where`` holds, ``fill`` elsewhere.  Only those
    entries are gathered and computed: an expensive term that few elements need (a slow
    acceptance test) costs little."""
    b = builder
    index = b.op("Reshape", [b.op("NonZero", [where]), b.int64s([-1])])
    result = compute([b.op("Gather", [value, index]) for value in values])
    filled = np.array([fill], dtype=bool if isinstance(fill, bool) else dtype)
    base = b.op("ConstantOfShape", [b.shape(where)], {"value": ir.tensor(filled)})
    return b.op("ScatterElements", [base, index, result])


def draw_where(
    stream: RandomStream,
    where: ir.Value,
    params: list[ir.Value],
    draw: Callable[[RandomStream, list[ir.Value]], ir.Value],
) -> ir.Value:
    """``draw`` (in the stream's dtype) for the elements where the 1-D bool ``where`` holds,
    0 elsewhere (:func:`compute_where`); an element's draw is the one it would have on the
    whole stream."""

    def subset(values: list[ir.Value]) -> ir.Value:
        low, high, *gathered = values
        return draw(replace(stream, counter=(low, high), count=None), gathered)

    return compute_where(
        stream.builder, where, [*stream.counter, *params], subset, dtype=stream.dtype
    )


#: One rejection round: the loop body's ``Num`` (of the stream's dtype), the stream drawing in
#: the body for the pending elements only, the 0-d int64 round number and the parameters of
#: the pending elements give the candidates and where they are accepted (bool), one per
#: pending element.
Proposal = Callable[[Num, RandomStream, ir.Value, list[ir.Value]], tuple[ir.Value, ir.Value]]


def round_words(
    builder: ONNXBuilder, round_: ir.Value, per_round: int, offset: int = 0
) -> list[ir.Value]:
    """The words ``per_round * r + offset + i`` (``i < per_round``) of rejection round ``r``:
    every round draws words of its own."""
    start = builder.op("Mul", [round_, builder.scalar(per_round, "int64")])
    if offset:
        start = builder.op("Add", [start, builder.scalar(offset, "int64")])
    return [start] + [
        builder.op("Add", [start, builder.scalar(i, "int64")]) for i in range(1, per_round)
    ]


def rejection_sample(
    stream: RandomStream,
    params: list[ir.Value],
    propose: Proposal,
    name: str,
    *,
    where: ir.Value | None = None,
) -> ir.Value:
    """Exact rejection sampling: rounds of ``propose`` until every element has accepted.

    One ONNX ``Loop`` (:class:`~pytensor_onnx.dispatch._loop.LoopBody`) without a trip
    count.  Each round proposes for the pending elements only (their counters and parameters
    gathered), scatters the accepted candidates into the draws and stops once none is
    pending, however many rounds that takes; the work is about one round over all elements
    plus the rejected fraction.  Rounds must draw from words that depend on the round
    number, so that every round is new; an element's draws depend only on its own counter,
    so they do not depend on which other elements are pending.

    Without ``where``, round 0 proposes for every element before the loop, on ``stream``
    itself: no gathers, and a proposal's normal deviates come in Box-Muller pairs
    (:func:`~pytensor_onnx.dispatch.random.standard_normal`); the loop starts at round 1
    with the rejected elements.

    Parameters
    ----------
    stream
        The node's stream (or a lane of it), drawing in the graph that holds the loop.
    params
        1-D parameters of the stream's dtype, one entry per element (at least one).
    propose
        One round (see :data:`Proposal`).
    name
        The loop body's name.
    where
        1-D bool: the elements to sample (default: all); the others are 0 and cost nothing
        (e.g. the elements that another algorithm of the same distribution draws).
    """
    b = stream.builder
    dtype = stream.dtype
    body = LoopBody(b, name)
    inner = body.inner
    if where is None:
        first, accepted = propose(Num(b, dtype), stream, b.scalar(0, "int64"), params)
        initial = b.op("Where", [accepted, first, b.scalar(0.0, dtype)])
        where = b.op("Not", [accepted])
        round_ = inner.op("Add", [body.iteration, inner.scalar(1, "int64")])
    else:
        shape = b.shape(params[0])
        zero = ir.tensor(np.zeros(1, dtype=dtype))
        initial = b.op("ConstantOfShape", [shape], {"value": zero})
        round_ = body.iteration
    result = body.carry(initial, f"{name}_draws", dtype, params[0].shape)
    pending = body.carry(where, f"{name}_pending", "bool", params[0].shape)
    index = inner.op("Reshape", [inner.op("NonZero", [pending]), inner.int64s([-1])])

    def gather(value: ir.Value) -> ir.Value:
        return inner.op("Gather", [value, index])

    counter = (gather(stream.counter[0]), gather(stream.counter[1]))
    pending_stream = replace(stream, builder=inner, counter=counter, count=None)
    candidate, accepted = propose(
        Num(inner, dtype), pending_stream, round_, [gather(p) for p in params]
    )
    taken = inner.op("Compress", [index, accepted], {"axis": 0})
    body.carry_out(
        inner.op(
            "ScatterElements",
            [result, taken, inner.op("Compress", [candidate, accepted], {"axis": 0})],
        )
    )
    done = inner.op("Expand", [inner.const(np.array(False)), inner.shape(taken)])
    still = inner.op("ScatterElements", [pending, taken, done])
    body.carry_out(still)
    body.continue_while(any_true(inner, still))
    return body.build(None)[0]
