"""The documentation generated from code is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytensor
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    int(pytensor.__version__.split(".")[0]) < 3,
    reason="the table is generated in the newest environment (PyTensor 3)",
)
def test_supported_op_table_is_current() -> None:
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
