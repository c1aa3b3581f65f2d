#!/usr/bin/env bash
# Run the test suite in the three supported environments, creating their virtual environments:
#   newest: Python 3.12, the latest PyTensor 3.x and PyMC 6.x
#   oldest: Python 3.11, PyTensor 2.38.x and PyMC 5.28.x
#   middle: Python 3.11, the newest PyTensor 3.x pip resolves there (3.0.x), what
#           `pip install pytensor-onnx` gives a Python 3.11 user; no PyMC release installs with it
#           (PyMC 5.28, the newest for Python 3.11, needs PyTensor 2.38; PyMC 6 needs Python 3.12),
#           so the PyMC tests skip there
# Usage: bash scripts/test.sh [newest|oldest|middle ...] [-- extra pytest arguments]
# Environments live in $PYTENSOR_ONNX_ENVS (default: .ci-venvs/ in the checkout) and are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

envs=()
while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
[[ ${#envs[@]} -eq 0 ]] && envs=(newest oldest middle)
env_root=${PYTENSOR_ONNX_ENVS:-.ci-venvs}

find_python() {  # find_python 3.12 -> a command running that Python
    local version=$1 candidate
    if command -v pyenv >/dev/null 2>&1; then
        candidate=$(pyenv versions --bare 2>/dev/null | grep -E "^${version//./\\.}(\.[0-9]+)?$" | tail -n 1 || true)
        if [[ -n "$candidate" ]]; then echo "env PYENV_VERSION=$candidate python$version"; return; fi
    fi
    if command -v "python$version" >/dev/null 2>&1; then echo "python$version"; return; fi
    echo "no Python $version found (install it, e.g. with pyenv)" >&2
    return 1
}

setup_env() {  # setup_env NAME PYTHON_VERSION EXTRAS PIP_SPECS...
    local name=$1 version=$2 extras=$3; shift 3
    local venv="$env_root/$name" python
    python=$(find_python "$version")
    if [[ ! -x "$venv/bin/python" ]]; then
        echo "== creating $venv with $python"
        $python -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e ".[$extras]" "$@"
}

# The runtime matrix (tests/test_runtime_matrix.py) fails instead of skipping a missing runtime.
export PYTENSOR_ONNX_REQUIRE_RUNTIMES=1
all_extras="test,pymc,demo,runtimes,serve,dask"
status=0
for name in "${envs[@]}"; do
    case "$name" in
        newest) setup_env newest 3.12 "$all_extras" "pytensor>=3" "pymc>=6" "ruff>=0.6" "mypy>=1.10" ;;
        oldest) setup_env oldest 3.11 "$all_extras" "pytensor>=2.38,<2.39" "pymc>=5.28,<5.29" ;;
        middle) setup_env middle 3.11 "${all_extras/pymc,/}" "pytensor>=3,<4" ;;
        *) echo "unknown environment $name (newest, oldest or middle)" >&2; exit 2 ;;
    esac
    py="$env_root/$name/bin/python"
    echo "== $name: $("$py" -c 'import sys, pytensor, onnx, onnxruntime; print(f"Python {sys.version.split()[0]}, PyTensor {pytensor.__version__}, onnx {onnx.__version__}, onnxruntime {onnxruntime.__version__}")')"
    if [[ "$name" == newest ]]; then
        "$py" -m ruff check src tests examples benchmarks || status=1
        "$py" -m mypy || status=1
    fi
    "$py" -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider "$@" || status=1
done
exit $status
