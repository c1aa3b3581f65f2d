"""Run a generated graph through :func:`tests.compare.differential_check` and triage it.

:data:`KNOWN_DEFECTS` names the failures of issue #13 that are being fixed elsewhere; each
matches one construction (a tag of the generated graph), one failure class and, where that is
not precise enough, the error text.  Remove an entry once its fix is merged: the fuzzer then
checks the fix.
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


_WRONG = frozenset({Outcome.WRONG_VALUES})
_INVALID = frozenset({Outcome.INVALID_MODEL})

#: The defects of issue #13 fixed on another branch; keep this list tiny and explicit.
KNOWN_DEFECTS: tuple[KnownDefect, ...] = (
    # cumsum (and cumprod, the same CumOp converter) of bool/int8/int16/int32 keeps the
    # Op's dtype; every PyTensor backend gives int64.
    KnownDefect(
        "#13 cumsum of small ints",
        re.compile(r"cumulative:cum(sum|prod):(bool|u?int(8|16|32))"),
        _WRONG,
        re.compile(r"dtype \w+ != int64"),
    ),
    # softmax/log_softmax of integers: Softmax/LogSoftmax/Exp get an integer input.
    KnownDefect(
        "#13 softmax of ints",
        re.compile(r"special:(log_)?softmax:(bool|u?int\d+)"),
        _INVALID,
        re.compile(r"op_type:(Softmax|LogSoftmax|Exp)\b.*unsupported type"),
    ),
    # set_subtensor/inc_subtensor on 0-size tensors: Reshape with 0 and -1.
    KnownDefect(
        "#13 0-size set/inc_subtensor",
        re.compile(r"(subtensor|advanced):(set|inc)"),
        frozenset({Outcome.INVALID_MODEL, Outcome.RUN_FAILURE}),
        re.compile(r"Reshape.*(position of 0|product of 0|cannot be reshaped|value zero exceeds)"),
    ),
    # arithmetic on bool tensors (b * b, b // b, b % b, square(b)).
    KnownDefect(
        "#13 bool arithmetic",
        re.compile(r"unary:\w+:bool|binary:\w+:b|cumulative:cumprod:bool"),
        _INVALID,
        re.compile(r"unsupported type: tensor\(bool\)"),
    ),
    # integer/bool sum/prod/mean with a 0-size result: Reshape with 0 and -1.
    KnownDefect(
        "#13 0-size integer reduction",
        re.compile(r"reduce:(sum|prod|mean):(bool|u?int\d+)"),
        frozenset({Outcome.INVALID_MODEL, Outcome.RUN_FAILURE}),
        re.compile(r"Reshape"),
    ),
    # int ** int computed through float64.
    KnownDefect("#13 integer pow", re.compile(r"binary:pow:i"), _WRONG),
    # gammainc/gammaincc lose accuracy for x << a, and at (inf, inf).
    KnownDefect("#13 gammainc accuracy", re.compile(r"special:gammaincc?"), _WRONG),
)


def triage(case: FuzzCase) -> tuple[Verdict, KnownDefect | None]:
    """The verdict on ``case`` and the known defect it is, if it is a failure of one."""
    inputs, outputs, intermediates = case.build()
    verdict = differential_check(
        inputs,
        outputs,
        case.values,
        operations=len(case.steps),
        intermediates=intermediates,
        opset=case.opset,
    )
    if not verdict.outcome.failed:
        return verdict, None
    return verdict, next((d for d in KNOWN_DEFECTS if d.matches(case, verdict)), None)
