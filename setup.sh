#!/usr/bin/env bash
# One-command setup: a virtual environment with the pinned dependencies, then the datasets.
#
#   ./setup.sh                        # download datasets from the canonical sources
#   ./setup.sh --mirror FOLDER        # or take them from an offline mirror laid out like datasets/
#   HW3_DATASETS_MIRROR=FOLDER ./setup.sh
#   HW3_TORCH_INDEX=https://download.pytorch.org/whl/cpu ./setup.sh   # CPU-only torch (smaller)
#   HW3_SKIP_INSTALL=1 PYTHON=/path/to/python ./setup.sh  # no .venv: that Python has the packages already
#
# Idempotent: a second run on a ready machine only re-verifies the datasets.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
fail() { echo "setup.sh: error: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || fail "$PYTHON not found; install Python 3.11 or newer, or set PYTHON=/path/to/python3"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "$("$PYTHON" --version 2>&1) is too old; Python 3.11 or newer is needed (numpy 2.4 needs it) (set PYTHON=/path/to/python3)"

install() {
  if [ ! -x .venv/bin/python ]; then
    echo "setup.sh: creating .venv"
    "$PYTHON" -m venv .venv || { rm -rf .venv; fail "could not create .venv; on Debian/Ubuntu: apt install python3-venv"; }
  fi
  # Reinstall only when requirements.txt changed since the last successful install, or a package went
  # missing (a cheap lookup: importing torch would cost seconds on every run).
  local stamp=.venv/.requirements.sha256 wanted index=()
  wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
  local installed='import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ("torch", "torchvision", "pytest"))))'
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! .venv/bin/python -c "$installed" 2>/dev/null; then
    echo "setup.sh: installing pinned dependencies (torch is large: this takes a few minutes)"
    [ -n "${HW3_TORCH_INDEX:-}" ] && index=(--extra-index-url "$HW3_TORCH_INDEX")
    .venv/bin/python -m pip install --disable-pip-version-check -q "${index[@]}" -r requirements.txt \
      || fail "pip could not install requirements.txt (see above); check the network or proxy, then run ./setup.sh again"
    echo "$wanted" > "$stamp"
  fi
}

if [ -n "${HW3_SKIP_INSTALL:-}" ]; then
  PY=$PYTHON  # tests of the student bundle: the packages are there already
else
  install
  PY=.venv/bin/python
fi

echo "setup.sh: fetching and verifying datasets"
"$PY" -m hw3 data "$@" || fail "the dataset step failed (see above); fix what it names, then run ./setup.sh again"
echo "setup.sh: done. Next: source .venv/bin/activate && pytest tests/ -k gan"
