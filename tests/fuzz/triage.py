"""Run a generated graph through :func:`tests.compare.differential_check` and triage it.

:data:`KNOWN_DEFECTS` names the failures whose fix is still to come (issue #13); each
matches one construction (a tag of the generated graph), its failure classes and, where that
is not precise enough, the error text.  Remove an entry once its fix is merged: the fuzzer
then checks the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.compare import Outcome, Verdict, differential_check
from tests.fuzz.strategies import FuzzCase


@dataclass(frozen=True)
class KnownDefect:
    """A failure with a known cause, fixed separately (see the module docstring)."""

    name: str
    tags: re.Pattern[str]
    outcomes: frozenset[Outcome]
    detail: re.Pattern[str] = re.compile("")

    def matches(self, case: FuzzCase, verdict: Verdict) -> bool:
        """Whether ``verdict`` of ``case`` is this defect."""
        return (
            verdict.outcome in self.outcomes
            and any(self.tags.fullmatch(tag) for tag in case.tags)
            and bool(self.detail.search(verdict.detail))
        )


#: Failures with a known cause that is not fixed yet; keep this list tiny and explicit.
KNOWN_DEFECTS: tuple[KnownDefect, ...] = ()


def triage(case: FuzzCase) -> tuple[Verdict, KnownDefect | None]:
    """The verdict on ``case`` and the known defect it is, if it is a failure of one."""
    inputs, outputs, intermediates = case.build()
    verdict = differential_check(
        inputs,
        outputs,
        case.values,
        operations=case.operations,
        intermediates=intermediates,
        opset=case.opset,
    )
    if not verdict.outcome.failed:
        return verdict, None
    return verdict, next((d for d in KNOWN_DEFECTS if d.matches(case, verdict)), None)
