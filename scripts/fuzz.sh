#!/usr/bin/env bash
# Long differential fuzzing run (see docs/fuzzing.md):
#   bash scripts/fuzz.sh --minutes N [--seed S] [--out DIR] [--no-known-defects]
# Minimized reproducers of new failure kinds go to DIR (default fuzz-failures/, git-ignored).
# PYTHON selects the interpreter (default: .ci-venvs/newest/bin/python, else python3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.ci-venvs/newest/bin/python}
[[ -x "$python" ]] || python=python3
PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" exec nice "$python" -m tests.fuzz.run "$@"
