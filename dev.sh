#!/usr/bin/env bash
# Set-up and entry point for a fresh machine.
#   ./dev.sh demo [OUT]   run the full pipeline on the embedded synthetic PRISM (default OUT: demo_output)
#   ./dev.sh test [ARGS]  run the test suite (ARGS go to pytest)
#   ./dev.sh env          only create/refresh the virtual environment (.venv)
#   ./dev.sh bench ...    run a benchmark script from benchmarks/
# The first call creates .venv with Python 3.12 and installs the package with its test extras.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="${PRISM_VENV:-$here/.venv}"

is_py() {  # is_py MINOR_RE CMD...: true when CMD runs a Python 3.x with x matching MINOR_RE
  local re="$1"; shift
  "$@" -c "import re, sys; sys.exit(0 if sys.version_info[0] == 3 and re.fullmatch(r'$re', str(sys.version_info[1])) else 1)" >/dev/null 2>&1
}
is_py312() { is_py '1[2-9]' "$@"; }  # any Python >= 3.12

find_python_matching() {  # MINOR_RE: print the first working interpreter of that minor
  local re="$1" c v root="${PYENV_ROOT:-$HOME/.pyenv}"
  # a python3.x on PATH that actually runs (a bare pyenv shim of a non-global version does not)
  for c in python3.12 python3.13 python3.14 python3; do
    if command -v "$c" >/dev/null 2>&1 && is_py "$re" "$c"; then command -v "$c"; return 0; fi
  done
  # pyenv-installed versions that are not the global one
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.[0-9]+' | sort -V); do
      c="$(PYENV_VERSION="$v" pyenv which python 2>/dev/null || true)"
      [ -n "$c" ] && is_py "$re" "$c" && { echo "$c"; return 0; }
    done
  fi
  for c in "$root"/versions/3.*/bin/python3; do
    [ -x "$c" ] && is_py "$re" "$c" && { echo "$c"; return 0; }
  done
  # uv-managed interpreters
  if command -v uv >/dev/null 2>&1; then
    c="$(uv python find '>=3.12' 2>/dev/null || true)"
    [ -n "$c" ] && is_py "$re" "$c" && { echo "$c"; return 0; }
  fi
  return 1
}

find_python() {
  if [ -n "${PRISM_PYTHON:-}" ]; then
    is_py312 "$PRISM_PYTHON" && { echo "$PRISM_PYTHON"; return 0; }
    echo "PRISM_PYTHON=$PRISM_PYTHON is not a working Python >= 3.12" >&2; return 1
  fi
  # Python 3.12 is the tested version; a newer one is accepted when 3.12 is absent.
  find_python_matching '12' || find_python_matching '1[3-9]'
}

ensure_env() {
  local stamp="$venv/.prism-installed"
  if [ -x "$venv/bin/python" ] && is_py312 "$venv/bin/python" && [ -f "$stamp" ] \
     && [ "$stamp" -nt pyproject.toml ]; then
    return 0
  fi
  local py
  if ! py="$(find_python)"; then
    cat >&2 <<'MSG'
prism-stats needs Python >= 3.12 (PyMC 6 requires it; under Python 3.11 pip silently
installs the old PyMC 5 stack). None was found on PATH, in pyenv or in uv.
Install one (e.g. `pyenv install 3.12`), or point PRISM_PYTHON at it:
    PRISM_PYTHON=/path/to/python3.12 ./dev.sh test
MSG
    exit 2
  fi
  echo "[dev.sh] creating $venv with $py ($("$py" --version 2>&1))" >&2
  "$py" -m venv --clear "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -e ".[test]" >&2
  touch "$stamp"
}

cmd="${1:-help}"; shift || true
case "$cmd" in
  env)   ensure_env ;;
  demo)  ensure_env; exec "$venv/bin/prism-stats" demo --out "${1:-demo_output}" "${@:2}" ;;
  test)  ensure_env; exec "$venv/bin/python" -m pytest "$@" ;;
  bench) ensure_env; exec "$venv/bin/python" "benchmarks/${1:?benchmark name}.py" "${@:2}" ;;
  *)     sed -n '2,8p' "$0"; exit 1 ;;
esac
