"""Run the runtime matrix in this environment and write its section of docs/runtimes.md.

    python scripts/gen_runtime_matrix.py           # rewrite this environment's section
    python scripts/gen_runtime_matrix.py --check   # exit 1 if the section is not current

The corpus and the runtimes are in tests/matrix/ (corpus.py, harness.py); each PyTensor line
(2.x, 3.x) has its own section, written by running this script in an environment of that
line.  tests/test_runtime_matrix.py runs the same check.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.matrix.corpus import KNOWN_LIMITS  # noqa: E402
from tests.matrix.harness import ALL_RUNTIMES, Outcome, available_cases, run_matrix  # noqa: E402

DOC = ROOT / "docs" / "runtimes.md"


def section_title() -> str:
    """The heading of this environment's section."""
    import pytensor

    return f"## PyTensor {pytensor.__version__.split('.')[0]}.x"


def render(outcomes: dict[tuple[str, str], Outcome]) -> str:
    """This environment's section: the model x runtime table, totals and named limits."""
    cases = available_cases()
    limits: dict[str, int] = {}
    rows = []
    for case in cases:
        cells = []
        for runtime in ALL_RUNTIMES:
            outcome = outcomes[case.name, runtime]
            if outcome.status == "pass":
                cells.append("✓")
            elif outcome.status == "unavailable":
                cells.append("not installed")
            else:
                known = KNOWN_LIMITS.get((case.name, runtime))
                text = f"{runtime}: {known[1]}" if known else f"{runtime}: not a known limit"
                number = limits.setdefault(text, len(limits) + 1)
                cells.append(f"✗ [{number}]")
        rows.append(f"| `{case.name}` | {case.area} | " + " | ".join(cells) + " |")
    passed = sum(o.status == "pass" for o in outcomes.values())
    total = len(outcomes)
    per_runtime = ", ".join(
        f"{runtime} {sum(outcomes[c.name, r].status == 'pass' for c in cases)}/{len(cases)}"
        for r in ALL_RUNTIMES
        for runtime in [r]
    )
    lines = [
        section_title(),
        "",
        "| model | area | " + " | ".join(ALL_RUNTIMES) + " |",
        "|---|---|" + "---|" * len(ALL_RUNTIMES),
        *rows,
        "",
        f"**{passed} of {total} pairs run within `verify`'s tolerances "
        f"({100 * passed / total:.0f} %).** Per runtime: {per_runtime}.",
        "",
        "Failures, each a limit of that runtime:",
        "",
        *(f"{number}. {text}" for text, number in limits.items()),
    ]
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """``document`` with this environment's section replaced (or appended)."""
    title = section.splitlines()[0]
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(document):
        return pattern.sub(lambda _: section + "\n", document).rstrip("\n") + "\n"
    return document.rstrip("\n") + "\n\n" + section


def current_section(document: str) -> str | None:
    """This environment's section as written in ``document``."""
    title = section_title()
    match = re.search(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", document, re.S | re.M)
    return match.group(0).rstrip("\n") + "\n" if match else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the section is current")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        section = render(run_matrix(Path(tmp)))
    document = DOC.read_text()
    if args.check:
        if current_section(document) != section:
            print(f"{DOC} is not current for {section_title()}: run {__file__}", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(replace_section(document, section))
    print(f"wrote {section_title()} of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
