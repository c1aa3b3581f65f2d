"""RandomVariables: the Threefry generator, the seed input, distributions and mode="ONNX".

Draws are not NumPy's stream, so distributions are checked by goodness of fit against SciPy
(Kolmogorov-Smirnov for continuous, chi-square for discrete ones) with fixed seeds, which
makes every test deterministic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.stats as st
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from pytensor.graph.replace import vectorize_graph

from pytensor_onnx import export_onnx, verify
from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch._random import (
    THREEFRY_PARITY,
    THREEFRY_ROTATIONS,
    RandomStream,
    split_words,
    threefry2x32,
)
from pytensor_onnx.dispatch.random import generator_from_seed, seed_from_generator
from pytensor_onnx.precision import float64_tensors
from tests.compare import OPSETS, ort_session

#: onnx.reference evaluates both sides of every ``Where`` with NumPy, which warns about the
#: logarithms of the unused side (e.g. a rejection sampler's excluded candidates).
pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

#: The p-value below which a goodness-of-fit test fails (the seeds are fixed, so a pass is
#: reproducible; a wrong sampler gives p-values many orders of magnitude lower at these sizes).
P_MIN = 1e-4
#: Draws per goodness-of-fit test in ONNX Runtime.
N_DRAWS = 20_000


# ------------------------------------------------------------------------------ generator
def threefry_numpy(key: tuple[int, int], counter: tuple[np.ndarray, np.ndarray]) -> tuple[Any, Any]:
    """Threefry-2x32-20 in NumPy, written from the Random123 specification."""
    mask = np.uint64(0xFFFFFFFF)

    def rotl(x: np.ndarray, r: int) -> np.ndarray:
        return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & mask

    ks = [np.uint64(key[0]), np.uint64(key[1]), np.uint64(THREEFRY_PARITY ^ key[0] ^ key[1])]
    x0 = (counter[0].astype(np.uint64) + ks[0]) & mask
    x1 = (counter[1].astype(np.uint64) + ks[1]) & mask
    for i in range(20):
        x0 = (x0 + x1) & mask
        x1 = rotl(x1, THREEFRY_ROTATIONS[i % 8]) ^ x0
        if i % 4 == 3:
            s = (i + 1) // 4
            x0 = (x0 + ks[s % 3]) & mask
            x1 = (x1 + ks[(s + 1) % 3] + np.uint64(s)) & mask
    return x0.astype(np.uint32), x1.astype(np.uint32)


#: Known-answer vectors of Threefry-2x32-20 (Random123 ``kat_vectors``): key, counter, output.
THREEFRY_KAT = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _threefry_model(
    key: tuple[int, int], offset: int | None = None, *, portable: bool = True
) -> Any:
    builder = ONNXBuilder(OPSETS[0], options={"portable": portable})
    counters = []
    for name in ("c0", "c1"):
        value = ir.Value(name=name, type=ir.TensorType(ir.DataType.UINT32), shape=ir.Shape([None]))
        builder.graph.inputs.append(value)
        counters.append(value)
    words = threefry2x32(
        builder,
        (builder.scalar(key[0], "uint32"), builder.scalar(key[1], "uint32")),
        (counters[0], counters[1]),
        None if offset is None else builder.scalar(offset, "uint32"),
    )
    for word in words:
        builder.add_output(word)
    return ir.serde.serialize_model(ir.Model(builder.graph, ir_version=10))


@pytest.mark.parametrize(("key", "counter", "expected"), THREEFRY_KAT)
def test_threefry_known_answers(
    key: tuple[int, int], counter: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert threefry_numpy(key, (np.array([counter[0]]), np.array([counter[1]]))) == (
        np.array([expected[0]], np.uint32),
        np.array([expected[1]], np.uint32),
    )
    model = _threefry_model(key)
    feeds = {"c0": np.array([counter[0]], np.uint32), "c1": np.array([counter[1]], np.uint32)}
    for outputs in (
        ort_session(model).run(None, feeds),
        ReferenceEvaluator(model).run(None, feeds),
    ):
        assert [int(o[0]) for o in outputs] == list(expected)


def test_threefry_matches_numpy_reference_on_many_counters() -> None:
    key = (0xDEADBEEF, 0x01234567)
    rng = np.random.default_rng(0)
    c0, c1 = (rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32) for _ in range(2))
    want = threefry_numpy(key, (c0, c1))
    model = _threefry_model(key)
    for got in (
        ort_session(model).run(None, {"c0": c0, "c1": c1}),
        ReferenceEvaluator(model).run(None, {"c0": c0, "c1": c1}),
    ):
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_threefry_offset_adds_to_the_second_counter_word() -> None:
    key, offset = (0x01234567, 0x89ABCDEF), 0xFFFFFFF0
    c0, c1 = np.arange(40, dtype=np.uint32), np.arange(40, dtype=np.uint32)
    want = threefry_numpy(key, (c0, c1 + np.uint32(offset)))
    got = ort_session(_threefry_model(key, offset)).run(None, {"c0": c0, "c1": c1})
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


class BitShift(OpRun):
    """``BitShift`` as OpenVINO's CPU plugin computes it on uint32 (measured with OpenVINO
    2026.4): the words as int32, a right shift as a float32 division rounded toward zero.
    Other dtypes shift exactly."""

    op_domain = ""

    def _run(self, x: np.ndarray, y: np.ndarray, direction: str | None = None) -> tuple[Any]:
        if x.dtype != np.uint32 or direction == "LEFT":
            return ((np.left_shift if direction == "LEFT" else np.right_shift)(x, y),)
        quotient = x.view(np.int32).astype(np.float32) / np.exp2(y).astype(np.float32)
        return (np.trunc(quotient).astype(np.int32).view(np.uint32),)


@pytest.mark.parametrize("portable", [True, False])
def test_portable_right_shifts_survive_float32_division(portable: bool) -> None:
    # The portable form is exact where a runtime computes right shifts as float32 divisions
    # of int32 (OpenVINO); the plain form is not, which shows that the emulation tells them
    # apart.  In ONNX Runtime and onnx.reference both forms give Threefry's bits.
    key = (0x01234567, 0x09ABCDEF)
    rng = np.random.default_rng(1)
    c0, c1 = (rng.integers(0, 2**32, 300, dtype=np.uint64).astype(np.uint32) for _ in range(2))
    feeds = {"c0": c0, "c1": c1}
    want = threefry_numpy(key, (c0, c1))
    model = _threefry_model(key, portable=portable)
    for got in (ort_session(model).run(None, feeds), ReferenceEvaluator(model).run(None, feeds)):
        np.testing.assert_array_equal(got, want)
    emulated = ReferenceEvaluator(model, new_ops=[BitShift]).run(None, feeds)
    assert np.array_equal(emulated, want) == portable


def test_portable_option_keeps_the_draws() -> None:
    rng = pytensor.shared(np.random.default_rng(0))
    draws = [pt.random.normal(size=(3, 50), rng=rng), pt.random.uniform(size=7, rng=rng)]
    models = [export_onnx([], draws, portable=portable) for portable in (True, False)]
    assert len(models[0].graph.node) > len(models[1].graph.node)
    seed = {models[0].graph.input[0].name: np.array(2**40 + 3, np.int64)}
    portable, plain = (ort_session(m).run(None, seed) for m in models)
    for a, b in zip(portable, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    exact, emulated = (
        ReferenceEvaluator(models[0], new_ops=new_ops).run(None, seed)
        for new_ops in ([], [BitShift])
    )
    for a, b in zip(emulated, exact, strict=True):
        np.testing.assert_array_equal(a, b)


def test_uniform_draws_follow_the_documented_counter_layout() -> None:
    # docs/random.md: the node's key is Threefry of (stream, 0) under the seed's words;
    # element i's word w is the counter (i mod 2**32, (i >> 32) * 2**24 + w) under it, and a
    # uniform is k / 2**53 with k the top 27 bits of the first and 26 of the second word.
    seed = -(2**40) - 12345
    count = 7
    x = pt.random.uniform(size=count, rng=_rng())
    (got,) = ort_session(export_onnx([], [x])).run(None, {"seed": np.array(seed, np.int64)})
    words = (seed % 2**64 % 2**32, seed % 2**64 >> 32)  # two's complement: low, high
    key = threefry_numpy(words, (np.zeros(1, np.uint32),) * 2)
    high, low = threefry_numpy(
        (int(key[0][0]), int(key[1][0])),
        (np.arange(count, dtype=np.uint32), np.zeros(count, np.uint32)),
    )
    k = (high >> np.uint32(5)).astype(np.float64) * 2.0**26 + (low >> np.uint32(6))
    np.testing.assert_array_equal(got, k * 2.0**-53)


def test_seed_splits_into_twos_complement_words() -> None:
    builder = ONNXBuilder(OPSETS[0])
    seed = ir.Value(name="seed", type=ir.TensorType(ir.DataType.INT64), shape=ir.Shape([3]))
    builder.graph.inputs.append(seed)
    for word in split_words(builder, seed):
        builder.add_output(word)
    model = ir.serde.serialize_model(ir.Model(builder.graph, ir_version=10))
    seeds = np.array([-1, 2**40 + 7, -(2**63)], np.int64)
    as_unsigned = seeds.astype(np.uint64)
    low = (as_unsigned & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    high = (as_unsigned >> np.uint64(32)).astype(np.uint32)
    for got in (
        ort_session(model).run(None, {"seed": seeds}),
        ReferenceEvaluator(model).run(None, {"seed": seeds}),
    ):
        np.testing.assert_array_equal(got[0], low)
        np.testing.assert_array_equal(got[1], high)


def test_nested_lanes_draw_from_disjoint_words() -> None:
    builder = ONNXBuilder(OPSETS[0])
    seed = builder.scalar(0, "int64")
    stream = RandomStream.create(builder, seed, builder.scalar(1, "int64"))
    # As a negative binomial draw nests them: gamma in lane 0 of 2, Poisson in lane 1 of 2,
    # whose inversion and rejection parts are lanes 0 and 1 of 2 of that.
    leaves = [stream.lane(0, 2), stream.lane(1, 2).lane(0, 2), stream.lane(1, 2).lane(1, 2)]
    words = [{leaf.word(w) for w in range(100)} for leaf in leaves]
    parent = {stream.lane(1, 2).word(w) for w in range(200)}
    assert words[1] | words[2] <= parent
    for i in range(3):
        for j in range(i):
            assert not words[i] & words[j]


# --------------------------------------------------------------------------- seed input
def _rng(name: str | None = None) -> Any:
    return pytensor.shared(np.random.default_rng(0), name=name)


def test_generator_becomes_one_int64_seed_input_named_after_it() -> None:
    model = export_onnx([], [pt.random.normal(size=3, rng=_rng())])
    (seed,) = model.graph.input
    assert seed.name == "seed"
    assert seed.type.tensor_type.elem_type == ir.DataType.INT64
    assert len(seed.type.tensor_type.shape.dim) == 0
    model = export_onnx([], [pt.random.normal(size=3, rng=_rng("noise_rng"))])
    assert [i.name for i in model.graph.input] == ["noise_rng"]


def test_next_generator_output_is_seed_plus_one() -> None:
    rng = _rng()
    next_rng, x = pt.random.normal(size=2, rng=rng).owner.outputs
    fn = pytensor.function([], x, updates={rng: next_rng})
    model = export_onnx(fn, include_updates=True)
    assert [o.name for o in model.graph.output] == ["output_0", "seed_updated"]
    _, updated = ort_session(model).run(None, {"seed": np.array(41)})
    assert updated == 42


def test_symbolic_generator_input_is_named_seed() -> None:
    rng = pt.random.type.random_generator_type()
    x = pt.random.uniform(size=4, rng=rng)
    model = export_onnx([rng], [x])
    assert [i.name for i in model.graph.input] == ["seed"]


def _draw(
    outputs: list[Any],
    seed: int,
    feeds: dict[str, Any] | None = None,
    *,
    runtime: str = "ort",
    inputs: list[Any] | None = None,
) -> list[np.ndarray]:
    model = export_onnx(inputs or [], outputs)
    all_feeds = {"seed": np.array(seed, np.int64), **(feeds or {})}
    if runtime == "ort":
        return list(ort_session(model).run(None, all_feeds))
    return list(ReferenceEvaluator(model).run(None, all_feeds))


# ------------------------------------------------------------------------- distributions
#: (name, PyTensor draw from (rng, dtype, size), frozen SciPy distribution).
Case = tuple[str, Callable[[Any, str, Any], Any], Any]

CONTINUOUS: list[Case] = [
    (
        "uniform",
        lambda r, d, s: pt.random.uniform(-2, 3, size=s, rng=r, dtype=d),
        st.uniform(-2, 5),
    ),
    ("normal", lambda r, d, s: pt.random.normal(1, 2, size=s, rng=r, dtype=d), st.norm(1, 2)),
    (
        "normal_far_location",
        lambda r, d, s: pt.random.normal(-1e6, 1e3, size=s, rng=r, dtype=d),
        st.norm(-1e6, 1e3),
    ),
    (
        "halfnormal",
        lambda r, d, s: pt.random.halfnormal(0.5, 3, size=s, rng=r, dtype=d),
        st.halfnorm(0.5, 3),
    ),
    (
        "lognormal",
        lambda r, d, s: pt.random.lognormal(0.3, 0.7, size=s, rng=r, dtype=d),
        st.lognorm(0.7, scale=np.exp(0.3)),
    ),
    (
        "exponential",
        lambda r, d, s: pt.random.exponential(2.5, size=s, rng=r, dtype=d),
        st.expon(scale=2.5),
    ),
    (
        "exponential_small",
        lambda r, d, s: pt.random.exponential(1e-8, size=s, rng=r, dtype=d),
        st.expon(scale=1e-8),
    ),
    (
        "cauchy",
        lambda r, d, s: pt.random.cauchy(-1, 0.5, size=s, rng=r, dtype=d),
        st.cauchy(-1, 0.5),
    ),
    (
        "halfcauchy",
        lambda r, d, s: pt.random.halfcauchy(0, 2, size=s, rng=r, dtype=d),
        st.halfcauchy(0, 2),
    ),
    (
        "laplace",
        lambda r, d, s: pt.random.laplace(2, 0.5, size=s, rng=r, dtype=d),
        st.laplace(2, 0.5),
    ),
    (
        "logistic",
        lambda r, d, s: pt.random.logistic(-3, 1.5, size=s, rng=r, dtype=d),
        st.logistic(-3, 1.5),
    ),
    ("gumbel", lambda r, d, s: pt.random.gumbel(1, 2, size=s, rng=r, dtype=d), st.gumbel_r(1, 2)),
    (
        "weibull",
        lambda r, d, s: pt.random.weibull(1.7, size=s, rng=r, dtype=d),
        st.weibull_min(1.7),
    ),
    (
        "weibull_small_shape",
        lambda r, d, s: pt.random.weibull(0.3, size=s, rng=r, dtype=d),
        st.weibull_min(0.3),
    ),
    (
        "gamma",
        lambda r, d, s: pt.random.gamma(4.5, scale=2.0, size=s, rng=r, dtype=d),
        st.gamma(4.5, scale=2.0),
    ),
    (
        "gamma_small_shape",
        lambda r, d, s: pt.random.gamma(0.3, scale=1.0, size=s, rng=r, dtype=d),
        st.gamma(0.3),
    ),
    (
        "gamma_huge_shape",
        lambda r, d, s: pt.random.gamma(1e6, scale=1e-6, size=s, rng=r, dtype=d),
        st.gamma(1e6, scale=1e-6),
    ),
    ("chisquare", lambda r, d, s: pt.random.chisquare(3.0, size=s, rng=r).astype(d), st.chi2(3.0)),
    (
        "gengamma",
        lambda r, d, s: pt.random.gengamma(3.0, 1.5, 2.0, size=s, rng=r, dtype=d),
        st.gengamma(2.0, 1.5, scale=2.0),
    ),
    (
        "invgamma",
        lambda r, d, s: pt.random.invgamma(3.0, 2.0, size=s, rng=r, dtype=d),
        st.invgamma(3.0, scale=2.0),
    ),
    ("beta", lambda r, d, s: pt.random.beta(2.0, 5.0, size=s, rng=r, dtype=d), st.beta(2.0, 5.0)),
    (
        "beta_u_shaped",
        lambda r, d, s: pt.random.beta(0.2, 0.5, size=s, rng=r, dtype=d),
        st.beta(0.2, 0.5),
    ),
    (
        "student_t",
        lambda r, d, s: pt.random.t(3.0, -1.0, 2.0, size=s, rng=r, dtype=d),
        st.t(3.0, -1.0, 2.0),
    ),
    (
        "vonmises",
        lambda r, d, s: pt.random.vonmises(1.0, 4.0, size=s, rng=r, dtype=d),
        st.vonmises(4.0, loc=1.0),
    ),
    (
        "vonmises_concentrated",
        lambda r, d, s: pt.random.vonmises(2.0, 1e7, size=s, rng=r, dtype=d),
        st.norm(2.0, 1 / np.sqrt(1e7)),
    ),
    (
        "vonmises_flat",
        lambda r, d, s: pt.random.vonmises(0.0, 1e-9, size=s, rng=r, dtype=d),
        st.uniform(-np.pi, 2 * np.pi),
    ),
    (
        "pareto",
        lambda r, d, s: pt.random.pareto(2.5, 1.5, size=s, rng=r, dtype=d),
        st.pareto(2.5, scale=1.5),
    ),
    (
        "triangular",
        lambda r, d, s: pt.random.triangular(-1.0, 0.5, 3.0, size=s, rng=r, dtype=d),
        st.triang(1.5 / 4.0, loc=-1.0, scale=4.0),
    ),
    (
        "truncexpon",
        lambda r, d, s: pt.random.truncexpon(2.0, 1.0, 0.5, size=s, rng=r, dtype=d),
        st.truncexpon(2.0, loc=1.0, scale=0.5),
    ),
    (
        "truncexpon_tiny_b",
        lambda r, d, s: pt.random.truncexpon(1e-10, 0.0, 1.0, size=s, rng=r, dtype=d),
        st.uniform(0.0, 1e-10),
    ),
    (
        "wald",
        lambda r, d, s: pt.random.wald(1.5, 2.0, size=s, rng=r, dtype=d),
        st.invgauss(1.5 / 2.0, scale=2.0),
    ),
    (
        "student_t_large_df",
        lambda r, d, s: pt.random.t(1e5, 0.0, 1.0, size=s, rng=r, dtype=d),
        st.t(1e5),
    ),
]

DISCRETE: list[Case] = [
    ("bernoulli", lambda r, d, s: pt.random.bernoulli(0.3, size=s, rng=r), st.bernoulli(0.3)),
    (
        "hypergeometric_small",
        lambda r, d, s: pt.random.hypergeometric(5, 7, 4, size=s, rng=r),
        st.hypergeom(12, 5, 4),
    ),
    (
        "hypergeometric",
        lambda r, d, s: pt.random.hypergeometric(300, 200, 120, size=s, rng=r),
        st.hypergeom(500, 300, 120),
    ),
    (
        "hypergeometric_large",
        lambda r, d, s: pt.random.hypergeometric(10**6, 3 * 10**6, 5000, size=s, rng=r),
        st.hypergeom(4 * 10**6, 10**6, 5000),
    ),
    ("integers", lambda r, d, s: pt.random.integers(-3, 7, size=s, rng=r), st.randint(-3, 7)),
    ("geometric", lambda r, d, s: pt.random.geometric(0.2, size=s, rng=r), st.geom(0.2)),
    ("poisson_small", lambda r, d, s: pt.random.poisson(0.5, size=s, rng=r), st.poisson(0.5)),
    ("poisson", lambda r, d, s: pt.random.poisson(3.5, size=s, rng=r), st.poisson(3.5)),
    ("poisson_ptrs", lambda r, d, s: pt.random.poisson(50.0, size=s, rng=r), st.poisson(50.0)),
    ("poisson_large", lambda r, d, s: pt.random.poisson(1e4, size=s, rng=r), st.poisson(1e4)),
    (
        "negative_binomial",
        lambda r, d, s: pt.random.negative_binomial(3, 0.3, size=s, rng=r),
        st.nbinom(3, 0.3),
    ),
    (
        "binomial_inversion",
        lambda r, d, s: pt.random.binomial(10, 0.3, size=s, rng=r),
        st.binom(10, 0.3),
    ),
    (
        "binomial_btrs",
        lambda r, d, s: pt.random.binomial(1000, 0.4, size=s, rng=r),
        st.binom(1000, 0.4),
    ),
    (
        "binomial_flipped",
        lambda r, d, s: pt.random.binomial(200, 0.97, size=s, rng=r),
        st.binom(200, 0.97),
    ),
    (
        "betabinomial",
        lambda r, d, s: pt.random.betabinom(30, 2.0, 3.5, size=s, rng=r),
        st.betabinom(30, 2.0, 3.5),
    ),
    ("geometric_rare", lambda r, d, s: pt.random.geometric(1e-6, size=s, rng=r), None),
    (
        "categorical",
        lambda r, d, s: pt.random.categorical(np.array([0.1, 0.0, 0.6, 0.3]), size=s, rng=r),
        st.rv_discrete(values=([0, 1, 2, 3], [0.1, 0.0, 0.6, 0.3])),
    ),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("name", "make", "dist"), CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_goodness_of_fit(
    name: str, make: Callable[..., Any], dist: Any, dtype: str
) -> None:
    (draws,) = _draw([make(_rng(), dtype, (N_DRAWS,))], seed=12345)
    assert draws.dtype == dtype and draws.shape == (N_DRAWS,)
    assert np.all(np.isfinite(draws))
    assert st.kstest(draws.astype(np.float64), dist.cdf).pvalue > P_MIN
    support_low, support_high = dist.support()
    assert np.all(draws >= np.asarray(support_low, dtype)) and np.all(
        draws <= np.asarray(support_high, dtype)
    )


@pytest.mark.parametrize(("name", "make", "dist"), CONTINUOUS, ids=[c[0] for c in CONTINUOUS])
def test_continuous_goodness_of_fit_in_float32_only_exports(
    name: str, make: Callable[..., Any], dist: Any
) -> None:
    # float32=True: a float64 graph's draws are computed in float32 (24-bit uniforms): the
    # model holds no float64 tensor, and the conversion has nothing to warn about.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = export_onnx([], [make(_rng(), "float64", (N_DRAWS,))], float32=True)
    assert not [w for w in caught if "float32 conversion" in str(w.message)]
    assert not float64_tensors(model)
    (draws,) = ort_session(model).run(None, {"seed": np.array(12345, np.int64)})
    assert draws.dtype == np.float32 and np.all(np.isfinite(draws))
    assert st.kstest(draws.astype(np.float64), dist.cdf).pvalue > P_MIN
    support_low, support_high = dist.support()
    assert np.all(draws >= np.float32(support_low)) and np.all(draws <= np.float32(support_high))


def test_float32_uniforms_have_24_bits() -> None:
    # In float32-only exports a uniform is k / 2**24 with k the top 24 bits of the first
    # word (the counter layout of the float64 test above).
    seed, count = 987654321, 300
    x = pt.random.uniform(size=count, rng=_rng())
    model = export_onnx([], [x], float32=True)
    (got,) = ort_session(model).run(None, {"seed": np.array(seed, np.int64)})
    key = threefry_numpy((seed, 0), (np.zeros(1, np.uint32),) * 2)
    high, _ = threefry_numpy(
        (int(key[0][0]), int(key[1][0])),
        (np.arange(count, dtype=np.uint32), np.zeros(count, np.uint32)),
    )
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, (high >> np.uint32(8)).astype(np.float32) * 2.0**-24)


def _chi_square_p(draws: np.ndarray, dist: Any) -> float:
    values, counts = np.unique(draws, return_counts=True)
    assert np.all(dist.pmf(values) > 0), f"draws outside the support: {values}"
    low, high = values.min(), values.max()
    support = np.arange(low, high + 1)
    expected = dist.pmf(support) * draws.size
    observed = np.zeros(support.size)
    observed[values - low] = counts
    # Pool the tail cells with few expected counts into their neighbours.
    keep = expected >= 5
    pooled_obs = np.append(observed[keep], observed[~keep].sum())
    pooled_exp = np.append(expected[keep], expected[~keep].sum() + draws.size - expected.sum())
    if pooled_exp[-1] < 5:
        pooled_obs[-2] += pooled_obs[-1]
        pooled_exp[-2] += pooled_exp[-1]
        pooled_obs, pooled_exp = pooled_obs[:-1], pooled_exp[:-1]
    return float(st.chisquare(pooled_obs, pooled_exp).pvalue)


@pytest.mark.parametrize(("name", "make", "dist"), DISCRETE, ids=[c[0] for c in DISCRETE])
def test_discrete_goodness_of_fit(name: str, make: Callable[..., Any], dist: Any) -> None:
    (draws,) = _draw([make(_rng(), "int64", (N_DRAWS,))], seed=777)
    assert draws.dtype == np.int64 and draws.shape == (N_DRAWS,)
    if dist is None:  # geometric with p = 1e-6: compare in distribution through its CDF
        dist = st.geom(1e-6)
        assert st.kstest(draws, dist.cdf).pvalue > P_MIN
        return
    assert _chi_square_p(draws, dist) > P_MIN


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda r: pt.random.bernoulli(0.0, size=50, rng=r), 0),
        (lambda r: pt.random.bernoulli(1.0, size=50, rng=r), 1),
        (lambda r: pt.random.geometric(1.0, size=50, rng=r), 1),
        (lambda r: pt.random.integers(5, 6, size=50, rng=r), 5),
        (lambda r: pt.random.categorical(np.array([0.0, 0.0, 2.0]), size=50, rng=r), 2),
        (lambda r: pt.random.uniform(4.0, 4.0, size=50, rng=r), 4.0),
    ],
)
def test_support_edges(make: Callable[[Any], Any], expected: float) -> None:
    (draws,) = _draw([make(_rng())], seed=3)
    assert np.all(draws == expected)


def test_gamma_with_tiny_shape_keeps_its_mass_near_zero() -> None:
    # Half of gamma(1e-3) lies below 1e-300: compare the CDF at points spanning that range.
    shape = 1e-3
    (draws,) = _draw([pt.random.gamma(shape, scale=1.0, size=N_DRAWS, rng=_rng())], seed=4)
    assert np.all(draws >= 0) and np.all(np.isfinite(draws))
    for point in [1e-300, 1e-100, 1e-10, 1e-3, 1.0]:
        expected = st.gamma(shape).cdf(point)
        observed = np.mean(draws <= point)
        assert abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / draws.size)


def test_beta_with_tiny_shapes_is_bernoulli_like() -> None:
    # beta(a, a) for tiny a puts half its mass at each end; X / (X + Y) of underflowing
    # gamma draws would be 0/0 without the log-space ratio.
    (draws,) = _draw([pt.random.beta(1e-3, 1e-3, size=N_DRAWS, rng=_rng())], seed=6)
    assert np.all((draws >= 0) & (draws <= 1))
    assert abs(np.mean(draws > 0.5) - 0.5) < 5 * np.sqrt(0.25 / draws.size)
    assert np.mean((draws > 1e-6) & (draws < 1 - 1e-6)) < 0.05


def test_poisson_at_extreme_rates() -> None:
    rate = pt.dscalar("rate")
    model = export_onnx([rate], [pt.random.poisson(rate, size=N_DRAWS, rng=_rng())])
    session = ort_session(model)

    def draw(value: float) -> np.ndarray:
        return session.run(None, {"rate": np.array(value), "seed": np.array(8)})[0]

    assert np.all(draw(1e-8) == 0)  # P(X > 0) = 1e-8
    huge = draw(1e9)
    assert abs(huge.mean() - 1e9) < 5 * np.sqrt(1e9 / N_DRAWS)
    assert abs(huge.var() / 1e9 - 1) < 5 * np.sqrt(2 / N_DRAWS)
    # Mixed rates in one draw: each element takes its own branch (inversion or PTRS).
    rates = pt.dvector("rates")
    mixed = export_onnx([rates], [pt.random.poisson(rates, size=(4000, 3), rng=_rng())])
    values = np.array([0.2, 9.5, 12.0])
    (draws,) = ort_session(mixed).run(None, {"rates": values, "seed": np.array(1)})
    np.testing.assert_allclose(draws.mean(axis=0), values, atol=5 * np.sqrt(12.0 / 4000))


def test_binomial_at_extreme_parameters() -> None:
    n = pt.lscalar("n")
    p = pt.dscalar("p")
    model = export_onnx([n, p], [pt.random.binomial(n, p, size=N_DRAWS, rng=_rng())])
    session = ort_session(model)

    def draw(trials: int, prob: float) -> np.ndarray:
        return session.run(None, {"n": np.array(trials), "p": np.array(prob), "seed": np.array(2)})[
            0
        ]

    assert np.all(draw(50, 0.0) == 0) and np.all(draw(50, 1.0) == 50) and np.all(draw(0, 0.5) == 0)
    for trials, prob in [(10**9, 0.3), (10**9, 1e-9)]:
        draws = draw(trials, prob)
        mean, var = trials * prob, trials * prob * (1 - prob)
        assert abs(draws.mean() - mean) < 5 * np.sqrt(var / N_DRAWS)
        assert abs(draws.var() / var - 1) < 5 * np.sqrt(2 / N_DRAWS)
        assert draws.min() >= 0 and draws.max() <= trials


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dirichlet_marginals_and_batches(dtype: str) -> None:
    alpha = pt.dmatrix("alpha")
    x = pt.random.dirichlet(alpha, size=(5000, 2), rng=_rng()).astype(dtype)
    values = np.array([[0.5, 2.0, 4.0], [1e-3, 1.0, 1e-3]])
    (draws,) = _draw([x], 3, {"alpha": values}, inputs=[alpha])
    assert draws.dtype == dtype and draws.shape == (5000, 2, 3)
    np.testing.assert_allclose(draws.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(draws)) and np.all(draws >= 0)
    # Each component of Dirichlet(alpha) is Beta(alpha_i, sum(alpha) - alpha_i).
    for i, a in enumerate(values[0]):
        marginal = st.beta(a, values[0].sum() - a)
        assert st.kstest(draws[:, 0, i].astype(np.float64), marginal.cdf).pvalue > P_MIN
    # With tiny components (whose gamma draws underflow) the marginals stay exact: the middle
    # one is Beta(1, 0.002), above 0.99 with probability 0.01**0.002.
    expected = 0.01**0.002
    observed = np.mean(draws[:, 1, 1] > 0.99)
    assert abs(observed - expected) < 5 * np.sqrt(expected * (1 - expected) / 5000)
    (reference,) = _draw([x[:3]], 3, {"alpha": values}, inputs=[alpha], runtime="reference")
    np.testing.assert_allclose(reference, draws[:3], rtol=1e-6, atol=1e-300)


@pytest.mark.parametrize("symbolic", [False, True])
def test_multivariate_normal_moments(symbolic: bool) -> None:
    cov_value = np.array([[[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]], np.eye(3) * 1e-4])
    mean_value = np.array([1.0, -2.0, 3.0])
    mean = pt.tensor("mean", shape=(None,) if symbolic else (3,), dtype="float64")
    cov = pt.tensor("cov", shape=(None, None, None) if symbolic else (2, 3, 3), dtype="float64")
    x = pt.random.multivariate_normal(mean, cov, size=(20_000, 2), rng=_rng())
    feeds = {"mean": mean_value, "cov": cov_value}
    (draws,) = _draw([x], 4, feeds, inputs=[mean, cov])
    assert draws.shape == (20_000, 2, 3)
    for b in range(2):
        np.testing.assert_allclose(draws[:, b].mean(axis=0), mean_value, atol=0.05)
        np.testing.assert_allclose(
            np.cov(draws[:, b].T), cov_value[b], atol=0.05 * cov_value[b].max()
        )
    # Each projection is normal with the projected variance.
    direction = np.array([1.0, 2.0, -1.0])
    projected = (draws[:, 0] - mean_value) @ direction
    sd = np.sqrt(direction @ cov_value[0] @ direction)
    assert st.kstest(projected / sd, "norm").pvalue > P_MIN
    (reference,) = _draw([x[:2]], 4, feeds, inputs=[mean, cov], runtime="reference")
    np.testing.assert_allclose(reference, draws[:2], rtol=1e-10)


def test_multivariate_normal_with_a_non_positive_definite_covariance_gives_nan() -> None:
    x = pt.random.multivariate_normal(
        np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), size=4, rng=_rng()
    )
    (draws,) = _draw([x], 0)
    assert np.all(np.isnan(draws))


def test_vonmises_wraps_to_minus_pi_pi() -> None:
    # SciPy's von Mises is not wrapped (support loc +- pi): compare the angle from loc.
    (draws,) = _draw([pt.random.vonmises(-3.0, 0.5, size=N_DRAWS, rng=_rng())], seed=5)
    assert np.all(np.abs(draws) <= np.pi)
    offset = np.angle(np.exp(1j * (draws + 3.0)))
    assert st.kstest(offset, st.vonmises(0.5).cdf).pvalue > P_MIN


def test_multinomial_moments_and_edges() -> None:
    n = pt.lvector("n")
    p = pt.dmatrix("p")
    x = pt.random.multinomial(n, p, size=(N_DRAWS, 2), rng=_rng())
    trials = np.array([10, 1000])
    probs = np.array([[0.2, 0.0, 0.5, 0.3], [0.25, 0.25, 0.25, 0.25]])
    (draws,) = _draw([x], 3, {"n": trials, "p": probs}, inputs=[n, p])
    assert draws.dtype == np.int64 and draws.shape == (N_DRAWS, 2, 4)
    np.testing.assert_array_equal(draws.sum(axis=-1), np.broadcast_to(trials, (N_DRAWS, 2)))
    assert np.all(draws[:, 0, 1] == 0)
    expected_var = trials[:, None] * probs * (1 - probs)
    bound = 5 * np.sqrt(expected_var / N_DRAWS) + 1e-12
    assert np.all(np.abs(draws.mean(axis=0) - trials[:, None] * probs) <= bound)
    np.testing.assert_allclose(draws.var(axis=0), expected_var, rtol=0.05)
    # Each category is binomial; two categories are negatively correlated (-1/3 here).
    assert _chi_square_p(draws[:, 0, 2], st.binom(10, 0.5)) > P_MIN
    assert abs(np.corrcoef(draws[:, 1, 0], draws[:, 1, 1])[0, 1] + 1 / 3) < 0.03
    (reference,) = _draw([x[:3]], 3, {"n": trials, "p": probs}, inputs=[n, p], runtime="reference")
    np.testing.assert_array_equal(reference, draws[:3])


def test_uniform_is_in_the_half_open_interval_and_moments_match() -> None:
    (draws,) = _draw([pt.random.uniform(size=200_000, rng=_rng())], seed=9)
    assert draws.min() >= 0.0 and draws.max() < 1.0
    assert abs(draws.mean() - 0.5) < 4 * np.sqrt(1 / 12 / draws.size)
    assert abs(draws.var() - 1 / 12) < 1e-3


def test_normal_moments() -> None:
    (draws,) = _draw([pt.random.normal(size=200_000, rng=_rng())], seed=10)
    n = draws.size
    assert abs(draws.mean()) < 4 / np.sqrt(n)
    assert abs(draws.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(st.skew(draws)) < 4 * np.sqrt(6 / n)
    assert abs(st.kurtosis(draws)) < 4 * np.sqrt(24 / n)


def test_normal_pairs_are_independent_and_prefix_stable() -> None:
    """Box-Muller's two deviates of a pair go to elements 2j and 2j+1: both halves are
    standard normal and uncorrelated (also in their squares, which a shared radius would
    correlate if only one angle were used), and an element's draw depends only on its flat
    index, at odd, even, 0 and symbolic sizes, in both runtimes."""
    (draws,) = _draw([pt.random.normal(size=200_000, rng=_rng())], seed=11)
    even, odd = draws[0::2], draws[1::2]
    for half in (even, odd):
        assert st.kstest(half, "norm").pvalue > P_MIN
    bound = 4 / np.sqrt(even.size)
    assert abs(np.corrcoef(even, odd)[0, 1]) < bound
    assert abs(np.corrcoef(even**2, odd**2)[0, 1]) < bound
    n = pt.lscalar("n")
    symbolic = pt.random.normal(size=(n,), rng=_rng())
    longest = None
    for size in (9, 8, 1, 0):
        for runtime in ("ort", "reference"):
            (static,) = _draw([pt.random.normal(size=size, rng=_rng())], 3, runtime=runtime)
            (dynamic,) = _draw([symbolic], 3, {"n": np.array(size)}, inputs=[n], runtime=runtime)
            assert static.shape == dynamic.shape == (size,)
            longest = static if longest is None else longest
            np.testing.assert_allclose(static, longest[:size], rtol=1e-15)
            np.testing.assert_allclose(dynamic, longest[:size], rtol=1e-15)


def test_float32_normal_pairs_are_independent() -> None:
    # A float32 stream takes both uniforms of a Box-Muller pair from one Threefry call.
    model = export_onnx([], [pt.random.normal(size=200_000, rng=_rng())], float32=True)
    (draws,) = ort_session(model).run(None, {"seed": np.array(11, np.int64)})
    assert draws.dtype == np.float32
    even, odd = draws[0::2].astype(np.float64), draws[1::2].astype(np.float64)
    for half in (even, odd):
        assert st.kstest(half, "norm").pvalue > P_MIN
    bound = 4 / np.sqrt(even.size)
    assert abs(np.corrcoef(even, odd)[0, 1]) < bound
    assert abs(np.corrcoef(even**2, odd**2)[0, 1]) < bound


# --------------------------------------------------------------- shapes and broadcasting
def test_parameters_broadcast_without_size() -> None:
    loc = pt.dmatrix("loc")
    scale = pt.dvector("scale")
    x = pt.random.normal(loc, scale, rng=_rng())
    loc_value = np.array([[0.0], [100.0]])
    scale_value = np.array([1.0, 1e-3, 10.0])
    (draws,) = _draw([x], 5, {"loc": loc_value, "scale": scale_value}, inputs=[loc, scale])
    assert draws.shape == (2, 3)
    many = export_onnx([loc, scale], [pt.random.normal(loc, scale, size=(4000, 2, 3), rng=_rng())])
    (many_draws,) = ort_session(many).run(
        None, {"seed": np.array(5), "loc": loc_value, "scale": scale_value}
    )
    np.testing.assert_allclose(
        many_draws.mean(axis=0), np.broadcast_to(loc_value, (2, 3)), atol=0.7
    )
    np.testing.assert_allclose(
        many_draws.std(axis=0), np.broadcast_to(scale_value, (2, 3)), rtol=0.1
    )


def test_symbolic_size() -> None:
    n = pt.lscalar("n")
    m = pt.lscalar("m")
    x = pt.random.exponential(2.0, size=(n, m), rng=_rng())
    for shape in [(3, 5), (0, 4), (4, 0), (1, 1)]:
        feeds = {"n": np.array(shape[0]), "m": np.array(shape[1])}
        for runtime in ("ort", "reference"):
            (draws,) = _draw([x], 1, feeds, inputs=[n, m], runtime=runtime)
            assert draws.shape == shape and np.all(draws > 0)


def test_categorical_batched_probabilities() -> None:
    p = pt.dmatrix("p")
    x = pt.random.categorical(p, size=(3000, 2), rng=_rng())
    probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
    (draws,) = _draw([x], 2, {"p": probs}, inputs=[p])
    assert np.all(draws[:, 0] == 0)
    assert _chi_square_p(draws[:, 1], st.rv_discrete(values=([0, 1, 2], probs[1]))) > P_MIN


# ----------------------------------------------------------------------- reproducibility
def test_same_seed_gives_identical_draws_in_both_runtimes() -> None:
    rng = _rng()
    outputs = [
        pt.random.uniform(size=300, rng=rng),
        pt.random.integers(0, 1000, size=300, rng=rng),
        pt.random.normal(size=300, rng=rng),
        pt.random.gumbel(0.0, 1.0, size=300, rng=rng, dtype="float32"),
    ]
    ort_first = _draw(outputs, 2024)
    ort_again = _draw(outputs, 2024)
    reference = _draw(outputs, 2024, runtime="reference")
    for first, again in zip(ort_first, ort_again, strict=True):
        assert first.tobytes() == again.tobytes()
    # Uniforms and integers are integer arithmetic and exact scalings: identical bytes.
    assert ort_first[0].tobytes() == reference[0].tobytes()
    assert ort_first[1].tobytes() == reference[1].tobytes()
    # Transforms through Log/Cos may differ in the last bits between the runtimes' libm.
    np.testing.assert_allclose(ort_first[2], reference[2], rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ort_first[3], reference[3], rtol=1e-6)


@pytest.mark.parametrize(
    ("name", "make", "dist"), CONTINUOUS + DISCRETE, ids=[c[0] for c in CONTINUOUS + DISCRETE]
)
def test_reference_evaluator_draws_what_onnxruntime_draws(
    name: str, make: Callable[..., Any], dist: Any
) -> None:
    dtype = "float64" if (name, make, dist) in CONTINUOUS else "int64"
    x = make(_rng(), dtype, (2, 50))
    (runtime,) = _draw([x], 99)
    (reference,) = _draw([x], 99, runtime="reference")
    assert reference.dtype == runtime.dtype and reference.shape == runtime.shape == (2, 50)
    np.testing.assert_allclose(reference, runtime, rtol=1e-12)


def test_streams_differ_between_seeds_and_nodes() -> None:
    rng = _rng()
    # Two different nodes (identical ones would be merged by PyTensor, and rightly draw alike).
    a = pt.random.uniform(size=20_000, rng=rng)
    b = pt.random.uniform(size=(20_000, 1), rng=rng).ravel()
    first_a, first_b = _draw([a, b], 1)
    (second_a, _) = _draw([a, b], 2)
    (negative_a, _) = _draw([a, b], -1)
    for x, y in [(first_a, first_b), (first_a, second_a), (first_a, negative_a)]:
        assert not np.any(x == y)
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / np.sqrt(x.size)
        assert st.ks_2samp(x, y).pvalue > P_MIN


def test_chained_generators_draw_new_values() -> None:
    rng = _rng()
    next_rng, a = pt.random.normal(size=1000, rng=rng).owner.outputs
    b = pt.random.normal(size=1000, rng=next_rng)
    first, second = _draw([a, b], 0)
    assert not np.any(first == second)


# -------------------------------------------------------- permutations and choice without
def _matches_pytensor_type(out: Any, draws: np.ndarray) -> None:
    """The draws have the variable's dtype and static shape (PyTensor 2.38 cannot evaluate a
    permutation of a range with ``size``: its ``rng_fn`` calls ``item()`` on an array)."""
    assert draws.dtype == out.type.dtype
    assert len(draws.shape) == len(out.type.shape)
    assert all(s is None or s == d for s, d in zip(out.type.shape, draws.shape, strict=True))


def test_permutation_of_a_range_is_uniform() -> None:
    n = 5
    x = pt.random.permutation(n, size=(N_DRAWS,), rng=_rng())
    (draws,) = _draw([x], 11)
    _matches_pytensor_type(x, draws)
    np.testing.assert_array_equal(
        np.sort(draws, axis=1), np.broadcast_to(np.arange(n), draws.shape)
    )
    (reference,) = _draw([x[:50]], 11, runtime="reference")
    np.testing.assert_array_equal(reference, draws[:50])
    # Where 0 lands, and the ordered pair in front: uniform over 5 and over 20 outcomes.
    assert _chi_square_p(np.argmax(draws == 0, axis=1), st.randint(0, n)) > P_MIN
    first, second = draws[:, 0].astype(np.int64), draws[:, 1].astype(np.int64)
    pair = first * (n - 1) + second - (second > first)
    assert _chi_square_p(pair, st.randint(0, n * (n - 1))) > P_MIN


def test_permutation_shuffles_the_first_axis() -> None:
    data = np.arange(12.0).reshape(4, 3)
    x = pt.random.permutation(pt.as_tensor(data), size=(3,), rng=_rng())
    (draws,) = _draw([x], 5)
    _matches_pytensor_type(x, draws)
    for rows in draws:
        np.testing.assert_array_equal(rows[np.argsort(rows[:, 0])], data)
    assert len({rows.tobytes() for rows in draws}) > 1
    (reference,) = _draw([x], 5, runtime="reference")
    np.testing.assert_array_equal(reference, draws)


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_choice_without_replacement(symbolic: bool) -> None:
    data = np.arange(20.0).reshape(10, 2)
    a = pt.matrix("a", shape=(None, None) if symbolic else data.shape)
    x = pt.random.choice(a, size=(2, 3), replace=False, rng=_rng())
    (draws,) = _draw([x], 8, {"a": data}, inputs=[a])
    assert draws.shape == (2, 3, 2)
    firsts = draws[..., 0].ravel()
    assert len(set(firsts)) == 6 and set(firsts) <= set(data[:, 0])
    np.testing.assert_array_equal(draws[..., 1], draws[..., 0] + 1)
    whole = pt.random.choice(a, size=(10,), replace=False, rng=_rng())
    (everything,) = _draw([whole], 8, {"a": data}, inputs=[a])
    np.testing.assert_array_equal(np.sort(everything[:, 0]), data[:, 0])
    empty = pt.random.choice(a, size=(0,), replace=False, rng=_rng())
    (none,) = _draw([empty], 8, {"a": data}, inputs=[a])
    assert none.shape == (0, 2)


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
@pytest.mark.parametrize("kind", ["choice", "permutation"])
def test_without_replacement_from_a_batch_of_populations(kind: str, symbolic: bool) -> None:
    """A RandomVariable vectorized over its population (as PyMC's batched models make it):
    every batch element draws from its own population."""
    data = np.arange(2 * 10 * 2, dtype=np.float64).reshape(2, 10, 2)
    a = pt.matrix("a")
    x = (
        pt.random.choice(a, size=(3,), replace=False, rng=_rng())
        if kind == "choice"
        else pt.random.permutation(a, rng=_rng())
    )
    batched = pt.tensor3("batched", shape=(None,) * 3 if symbolic else data.shape)
    xb = vectorize_graph(x, {a: batched})
    assert xb.owner.op.batch_ndim(xb.owner) == 1
    (draws,) = _draw([xb], 6, {"batched": data}, inputs=[batched])
    _matches_pytensor_type(xb, draws)
    assert draws.shape == (2, 3 if kind == "choice" else 10, 2)
    for rows, population in zip(draws, data, strict=True):
        picked = {tuple(row) for row in rows}
        assert len(picked) == len(rows) and picked <= {tuple(row) for row in population}
    (reference,) = _draw([xb], 6, {"batched": data}, runtime="reference", inputs=[batched])
    np.testing.assert_array_equal(reference, draws)


def test_weighted_choice_without_replacement_picks_in_numpys_order() -> None:
    """First and second picks against their exact probabilities (the second:
    ``sum_i p_i p_j / (1 - p_i)``), as NumPy's ``choice(..., replace=False, p=p)``; an entry
    of probability 0 is never picked while others remain."""
    p = np.array([0.5, 0.25, 0.15, 0.1, 0.0])
    x = pt.random.choice(5, size=(2,), replace=False, p=p, rng=_rng())
    session = ort_session(export_onnx([], [x]))
    draws = np.array([session.run(None, {"seed": np.array(s, np.int64)})[0] for s in range(4000)])
    assert draws.dtype == x.type.dtype and draws.shape == (4000, 2)
    assert np.all(draws != 4) and np.all(draws[:, 0] != draws[:, 1])
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(5) if i != j) for j in range(5)])
    first_dist = st.rv_discrete(values=(np.arange(4), p[:4]))
    second_dist = st.rv_discrete(values=(np.arange(4), second[:4] / second[:4].sum()))
    assert _chi_square_p(draws[:, 0].astype(np.int64), first_dist) > P_MIN
    assert _chi_square_p(draws[:, 1].astype(np.int64), second_dist) > P_MIN


def test_hypergeometric_at_the_ends_of_its_parameters() -> None:
    """No good or no bad entries, an empty or a whole sample: a single possible value; and
    a sample of all but ten of 10**9 + 10 entries, where the ten undrawn are almost surely
    good."""
    good = np.array([0, 6, 6, 6, 10**9])
    bad = np.array([6, 0, 6, 6, 10])
    sample = np.array([4, 4, 0, 12, 10**9])
    x = pt.random.hypergeometric(good, bad, sample, size=(50, 5), rng=_rng())
    (draws,) = _draw([x], 4)
    assert draws.dtype == np.int64
    np.testing.assert_array_equal(draws, np.broadcast_to([0, 4, 0, 6, 10**9 - 10], (50, 5)))
    (reference,) = _draw([x], 4, runtime="reference")
    np.testing.assert_array_equal(reference, draws)


def test_verify_against_pytensor_refuses_random_graphs() -> None:
    x = pt.random.normal(size=3, rng=_rng())
    with pytest.raises(ValueError, match="cannot be compared with PyTensor's value by value"):
        verify(([], [x]))


# ----------------------------------------------------------------------------- mode ONNX
def test_mode_onnx_draws_anew_and_set_value_reseeds() -> None:
    rng = _rng()
    next_rng, x = pt.random.normal(size=(1000,), rng=rng).owner.outputs
    fn = pytensor.function([], x, mode="ONNX", updates={rng: next_rng})
    rng.set_value(np.random.default_rng(7))
    first, second = fn(), fn()
    assert not np.any(first == second)
    rng.set_value(np.random.default_rng(7))
    np.testing.assert_array_equal(fn(), first)
    assert st.kstest(np.concatenate([first, second]), "norm").pvalue > P_MIN


def test_mode_onnx_without_update_repeats_like_pytensor() -> None:
    rng = _rng()
    fn = pytensor.function([], pt.random.uniform(size=5, rng=rng), mode="ONNX")
    np.testing.assert_array_equal(fn(), fn())


def test_mode_onnx_matches_the_exported_model_for_the_same_generator() -> None:
    rng = _rng()
    x = pt.random.laplace(size=50, rng=rng)
    fn = pytensor.function([], x, mode="ONNX")
    generator = np.random.default_rng(11)
    rng.set_value(generator)
    (exported,) = ort_session(export_onnx([], [x])).run(
        None, {"seed": seed_from_generator(generator)}
    )
    np.testing.assert_array_equal(fn(), exported)


def test_seed_conversions() -> None:
    generator = np.random.default_rng(3)
    state = generator.bit_generator.state
    seed = seed_from_generator(generator)
    assert seed.dtype == np.int64 and seed.shape == ()
    assert generator.bit_generator.state == state  # not advanced
    assert seed_from_generator(generator) == seed
    assert generator_from_seed(np.array(-1)).bit_generator.state == (
        np.random.default_rng(2**64 - 1).bit_generator.state
    )
