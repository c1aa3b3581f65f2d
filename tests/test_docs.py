"""The documentation generated from code is current."""

from __future__ import annotations

import importlib.util
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


def test_op_table_check_finds_missing_and_stale_rows() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_op_table", ROOT / "scripts" / "gen_op_table.py"
    )
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = (ROOT / "docs" / "supported_ops.md").read_text()
    assert gen.check(text) == []
    row = "| `pytensor.tensor.special.Softmax` | op |\n"
    assert row in text
    assert gen.check(text.replace(row, "")) == ["Softmax is registered but not in the table"]
    stale = text + "\n| `pytensor.tensor.math.NoSuchOp` | op |\n"
    assert gen.check(stale) == ["NoSuchOp is in the table but has no converter or refusal"]
