"""The runtime matrix: the corpus of tests/matrix/ in six runtimes (see docs/runtimes.md).

Every (model, runtime) pair must run within ``verify``'s tolerances or fail for a named limit
of that runtime (``KNOWN_LIMITS``); a named limit that no longer fails must leave the table;
docs/runtimes.md must show this environment's results.  Runtimes that are not installed are
skipped with the reason, except where ``PYTENSOR_ONNX_REQUIRE_RUNTIMES=1`` (scripts/test.sh
sets it) makes their absence a failure.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from tests.matrix.corpus import KNOWN_LIMITS
from tests.matrix.harness import ALL_RUNTIMES, Outcome, available_cases, run_matrix, runtime_missing

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from gen_runtime_matrix import DOC, current_section, render  # noqa: E402

pytestmark = pytest.mark.xdist_group("runtime-matrix")


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Outcome]:
    missing = {r: runtime_missing(r) for r in ALL_RUNTIMES if runtime_missing(r)}
    if missing and os.environ.get("PYTENSOR_ONNX_REQUIRE_RUNTIMES") == "1":
        pytest.fail(f"runtimes missing: {missing}")
    return run_matrix(tmp_path_factory.mktemp("matrix"))


def _skip_if_unavailable(outcome: Outcome) -> None:
    if outcome.status == "unavailable":
        pytest.skip(outcome.detail)


@pytest.mark.parametrize("runtime", ALL_RUNTIMES)
def test_every_failure_is_a_named_limit(
    outcomes: dict[tuple[str, str], Outcome], runtime: str
) -> None:
    unexplained = []
    for case in available_cases():
        outcome = outcomes[case.name, runtime]
        _skip_if_unavailable(outcome)
        if outcome.status == "pass":
            continue
        known = KNOWN_LIMITS.get((case.name, runtime))
        if known is None or not re.search(known[0], outcome.detail):
            unexplained.append(f"{case.name}: {outcome.status}: {outcome.detail[:300]}")
    assert not unexplained, "\n".join(unexplained)


@pytest.mark.parametrize("runtime", ALL_RUNTIMES)
def test_named_limits_still_fail(outcomes: dict[tuple[str, str], Outcome], runtime: str) -> None:
    names = {case.name for case in available_cases()}
    fixed = [
        case
        for (case, where) in KNOWN_LIMITS
        if where == runtime and case in names and outcomes[case, runtime].status == "pass"
    ]
    for case in fixed:
        _skip_if_unavailable(outcomes[case, runtime])
    assert not fixed, f"now pass in {runtime}: remove them from KNOWN_LIMITS: {fixed}"


def test_docs_show_this_environment(outcomes: dict[tuple[str, str], Outcome]) -> None:
    if any(o.status == "unavailable" for o in outcomes.values()):
        pytest.skip("not every runtime is installed")
    from tests.matrix.corpus import CASES

    if len(available_cases()) < len(CASES):
        pytest.skip("an optional package of the corpus (pymc) is missing")
    assert current_section(DOC.read_text()) == render(outcomes), (
        "docs/runtimes.md is not current: run python scripts/gen_runtime_matrix.py"
    )
