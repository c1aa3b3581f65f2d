"""The documentation generated from code is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_supported_op_table_is_current() -> None:
    # Checked with whichever PyTensor is installed (class names, not version-specific paths).
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_op_table.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_names_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in ci
    assert "examples/export_mlp.py" in readme


def _check_table(text: str, tmp_path: Path) -> str:
    """Problems the currency check reports for a table ``text`` (in a fresh interpreter: the
    test session registers converters of its own)."""
    table = tmp_path / "table.md"
    table.write_text(text)
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gen_op_table.py"),
            "--check",
            "--table",
            str(table),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stderr


def test_op_table_check_finds_missing_and_stale_rows(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "supported_ops.md").read_text()
    assert _check_table(text, tmp_path) == ""
    row = "| `pytensor.tensor.special.Softmax` | op |\n"
    assert row in text
    assert "Softmax is registered but not in the table" in _check_table(
        text.replace(row, ""), tmp_path
    )
    heading = "## Without a converter"
    stale = text.replace(heading, f"| `pytensor.tensor.math.NoSuchOp` | op |\n\n{heading}")
    assert "NoSuchOp is in the table but has no converter or refusal" in _check_table(
        stale, tmp_path
    )
    converted = text + "| `pytensor.tensor.special.Softmax` | no converter yet |\n"
    assert "Softmax is listed without a converter but has one" in _check_table(converted, tmp_path)
