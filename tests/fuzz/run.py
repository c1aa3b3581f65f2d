"""Long fuzzing runs: ``python -m tests.fuzz.run --minutes N [--seed S]`` (see docs/fuzzing.md).

Runs the fuzzer's property in rounds of fresh seeds until the time is up.  Each failure of a
new kind is minimized by Hypothesis and written as a standalone reproducer to the output
directory; failures of a kind already seen are counted, not minimized again.  Prints the
counts of graphs by outcome and the failures by kind.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzz import triage as triage_module
from tests.fuzz.strategies import FuzzCase, graphs
from tests.fuzz.triage import triage


def signature(case: FuzzCase, verdict: object, outcome: str) -> str:
    """A failure's kind: outcome, backend, error text without numbers, constructions used."""
    text = re.sub(r"[-+0-9.e]{2,}|\d", "#", str(verdict).splitlines()[0])[:120]
    return f"{outcome} | {text} | {' '.join(sorted(case.tags))}"


@dataclass
class Tally:
    """Counts of a long run: graphs by outcome, failures by kind, the kinds minimized."""

    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    seen: set[str] = field(default_factory=set)


def fuzz_round(seed_value: int, deadline: float, tally: Tally) -> tuple[str, str] | None:
    """Up to 100 graphs from ``seed_value``; the first failure of a new kind is minimized.

    Returns that failure's ``(kind, reproducer)``, or ``None``.  Only graphs run before a
    failure (not the shrinking runs) are counted.
    """
    found: list[tuple[str, str]] = []

    @settings(
        max_examples=100,
        deadline=None,
        database=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(case=graphs())
    def run(case: FuzzCase) -> None:
        if time.monotonic() > deadline and not found:
            return
        verdict, known = triage(case)
        outcome = verdict.outcome.value + (f" [known: {known.name}]" if known else "")
        kind = signature(case, verdict, outcome)
        if not found:
            tally.outcomes[outcome] += 1
            if verdict.outcome.failed:
                tally.kinds[kind] += 1
        if verdict.outcome.failed and known is None and kind not in tally.seen:
            found[:] = [(kind, case.reproducer(f"{kind}\n\n{verdict}"))]
            raise AssertionError(str(verdict))

    try:
        run()
    except AssertionError:
        return found[-1]
    return None


def main(argv: list[str] | None = None) -> int:
    """Run rounds until the time is up; print the counts; exit 1 if anything failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    parser.add_argument(
        "--no-known-defects", action="store_true",
        help="report the known defects of triage.KNOWN_DEFECTS as failures too",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.no_known_defects:
        triage_module.KNOWN_DEFECTS = ()
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    deadline = time.monotonic() + 60 * args.minutes
    rounds = 0
    while time.monotonic() < deadline:
        if failure := fuzz_round(args.seed + rounds, deadline, tally):
            kind, reproducer = failure
            tally.seen.add(kind)
            path = args.out / f"failure_s{args.seed}_r{rounds}.py"
            path.write_text(reproducer)
            print(f"new failure kind -> {path}\n  {kind}", flush=True)
        rounds += 1
    total = sum(tally.outcomes.values())
    print(f"\n{total} graphs (seeds {args.seed}..{args.seed + rounds - 1}):")
    for outcome, n in sorted(tally.outcomes.items()):
        print(f"  {n:6d}  {outcome}")
    print("failures by kind:")
    for kind, n in tally.kinds.most_common():
        print(f"  {n:6d}  {kind}")
    return 1 if tally.kinds else 0


if __name__ == "__main__":
    sys.exit(main())
