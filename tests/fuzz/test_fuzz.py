"""The differential random-graph fuzzer, bounded for CI (``scripts/fuzz.sh`` runs it long).

Every dispatch area gets its own few graphs (so each is covered on every run), then graphs
mixing all areas.  Examples are derandomized: CI sees the same graphs every time.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
import pytest
import scipy.special
from hypothesis import HealthCheck, given, settings

from pytensor_onnx import export_onnx
from tests.compare import assert_matches, fuzz_tolerances, ort_session
from tests.fuzz.strategies import AREAS, PYTENSOR_2, FuzzCase, documented_cost, graphs
from tests.fuzz.triage import triage

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def check(case: FuzzCase) -> None:
    """Fail on a wrong value, invalid model or run failure that is not a known defect."""
    verdict, known = triage(case)
    assert not verdict.outcome.failed or known is not None, (
        f"{verdict}\n\n{case.reproducer(str(verdict))}"
    )


#: PyTensor 2.38's own rewriter loops forever on some special-function graphs (seen in
#: ``local_log_sum_exp`` and ``local_elemwise_alloc``), in the reference compile and in an
#: export alike: on PyTensor 2 the special functions are left out of the fuzzed graphs.
FUZZED_AREAS = [area for area in AREAS if not (PYTENSOR_2 and area.__name__ == "special")]


@pytest.mark.parametrize("area", AREAS, ids=lambda area: area.__name__)
def test_area(area: object) -> None:
    """Graphs of one area's steps on random inputs."""
    if area not in FUZZED_AREAS:
        pytest.skip("PyTensor 2.38's rewriter does not terminate on some of these graphs")

    @settings(FUZZ_SETTINGS, max_examples=6)
    @given(case=graphs(areas=[area], max_steps=2))
    def run(case: FuzzCase) -> None:
        check(case)

    run()


@settings(FUZZ_SETTINGS, max_examples=60)
@given(case=graphs(areas=FUZZED_AREAS))
def test_mixed_graphs(case: FuzzCase) -> None:
    """Graphs composed from every area."""
    check(case)


def test_budget_covers_documented_accuracy() -> None:
    """A step's rounding budget covers its function's documented accuracy, and no more.

    At ``a = 0.502, x = 0.931`` the exported ``gammaincc`` is 5.7e-14 (about 250 ulps) from
    SciPy's (1.17 and 1.18), within the documented 1.5e-13 but not within one operation's
    16 ulps.
    """
    a = pt.vector("a")
    x = pt.vector("x")
    values = {"a": np.array([0.5020164295512421]), "x": np.array([0.9305363618788586])}
    (got,) = ort_session(export_onnx([a, x], [pt.gammaincc(a, x)])).run(None, values)
    wanted = scipy.special.gammaincc(values["a"], values["x"])

    def matches(operations: int) -> bool:
        rtol, atol = fuzz_tolerances(wanted.dtype, operations, scale=1.0)
        try:
            assert_matches(got, wanted, rtol, atol, "gammaincc")
        except AssertionError:
            return False
        return True

    assert documented_cost("gammaincc", "float64") > 1
    assert documented_cost("exp", "float64") == documented_cost("gammaincc", "float32") == 1
    assert not matches(1)
    assert matches(documented_cost("gammaincc", "float64"))
