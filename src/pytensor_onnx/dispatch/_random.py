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
  conversion order); draw ``word`` of a stream uses the key
  ``threefry(base key, (stream, word))``, a scalar computation.
* The counter of an element is its flat (C-order) index in the draw's shape, as two words;
  one Threefry call gives two uint32 words per element.

A node that needs several random numbers per element (Box-Muller pairs, rejection rounds)
uses distinct words.
"""

from __future__ import annotations

import onnx_ir as ir

from pytensor_onnx.builder import ONNXBuilder

#: The rotation constants of Threefry-2x32 (Random123's ``R_32x2``).
THREEFRY_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
#: The key-schedule parity constant of Threefry-32 (Random123's ``SKEIN_KS_PARITY32``).
THREEFRY_PARITY = 0x1BD11BDA
#: Rounds of the Threefry-2x32 variant used (the recommended, crush-resistant 20).
THREEFRY_ROUNDS = 20

Words = tuple[ir.Value, ir.Value]


def threefry2x32(builder: ONNXBuilder, key: Words, counter: Words) -> Words:
    """Threefry-2x32-20 of ``counter`` under ``key``: two uint32 words.

    Every input is a uint32 value; keys and counters broadcast against each other.
    """

    def u32(value: int) -> ir.Value:
        return builder.scalar(value, "uint32")

    def add(a: ir.Value, b: ir.Value) -> ir.Value:
        return builder.op("Add", [a, b])

    def rotate_left(x: ir.Value, r: int) -> ir.Value:
        left = builder.op("BitShift", [x, u32(r)], {"direction": "LEFT"})
        right = builder.op("BitShift", [x, u32(32 - r)], {"direction": "RIGHT"})
        return builder.op("BitwiseOr", [left, right])

    k0, k1 = key
    schedule = (
        k0,
        k1,
        builder.op("BitwiseXor", [builder.op("BitwiseXor", [k0, k1]), u32(THREEFRY_PARITY)]),
    )
    x0, x1 = add(counter[0], k0), add(counter[1], k1)
    for i in range(THREEFRY_ROUNDS):
        x0 = add(x0, x1)
        x1 = builder.op("BitwiseXor", [rotate_left(x1, THREEFRY_ROTATIONS[i % 8]), x0])
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = add(x0, schedule[s % 3])
            x1 = add(add(x1, schedule[(s + 1) % 3]), u32(s))
    return x0, x1


def split_words(builder: ONNXBuilder, value: ir.Value) -> Words:
    """The low and high uint32 words of an int64 value (two's complement)."""
    low = builder.op("Cast", [value], {"to": ir.DataType.UINT32})
    wide = builder.op("Cast", [value], {"to": ir.DataType.UINT64})
    shifted = builder.op("BitShift", [wide, builder.scalar(32, "uint64")], {"direction": "RIGHT"})
    return low, builder.op("Cast", [shifted], {"to": ir.DataType.UINT32})


class RandomStream:
    """The random bits of one RandomVariable node, for every element of a draw shape.

    Parameters
    ----------
    builder
        The builder of the graph that draws.
    seed
        The 0-d int64 seed (the generator's value).
    count
        The 0-d int64 number of elements drawn.
    """

    def __init__(self, builder: ONNXBuilder, seed: ir.Value, count: ir.Value) -> None:
        self.builder = builder
        self.key = split_words(builder, seed)
        self.stream = builder.scalar(builder.next_stream(), "uint32")
        index = builder.op("Range", [builder.scalar(0, "int64"), count, builder.scalar(1, "int64")])
        self.counter = split_words(builder, index)

    def bits(self, word: int) -> Words:
        """Two uint32 words per element (1-D), from draw ``word`` of this stream."""
        word_key = threefry2x32(
            self.builder, self.key, (self.stream, self.builder.scalar(word, "uint32"))
        )
        return threefry2x32(self.builder, word_key, self.counter)

    def uniform(self, word: int, *, open_interval: bool = False) -> ir.Value:
        """Float64 uniforms per element (1-D) from draw ``word``.

        ``open_interval=False``: ``k / 2**53`` for a 53-bit ``k``, in ``[0, 1)`` (NumPy's
        interval).  ``open_interval=True``: ``(2 k + 1) / 2**53`` for a 52-bit ``k``, in
        ``[2**-53, 1 - 2**-53]``, never 0 or 1 (for transforms that take a logarithm);
        ``1 - u`` is exact then.  Both are exact in float64 (no rounding).
        """
        b = self.builder
        high, low = self.bits(word)
        high_bits = 27 if not open_interval else 26
        top = b.op("BitShift", [high, b.scalar(32 - high_bits, "uint32")], {"direction": "RIGHT"})
        bottom = b.op("BitShift", [low, b.scalar(6, "uint32")], {"direction": "RIGHT"})
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
