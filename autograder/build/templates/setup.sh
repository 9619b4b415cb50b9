#!/usr/bin/env bash
# Gradescope runs this once, as root, when the autograder image is built (Ubuntu 22.04 or 24.04 base).
# It installs CPU-only torch/torchvision (the versions pinned in requirements.txt, from PyTorch's CPU
# wheel index) and the other pins into /autograder/venv, then verifies the shipped datasets.
#
# Local simulation (tests_infra/test_autograder/test_build.py): HW3_AUTOGRADER_ROOT=DIR stands in for
# /autograder, and HW3_AUTOGRADER_SKIP_INSTALL=1 skips apt/pip (HW3_AUTOGRADER_PYTHON names a ready Python).
set -euo pipefail
ROOT=${HW3_AUTOGRADER_ROOT:-/autograder}
cd "$ROOT/source"
TORCH_INDEX=${HW3_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
fail() { echo "setup.sh: error: $*" >&2; exit 1; }

find_python() {  # the first Python >= 3.11 (numpy 2.4 needs it)
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

if [ -z "${HW3_AUTOGRADER_SKIP_INSTALL:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip util-linux bubblewrap \
    ca-certificates
  if ! BASE=$(find_python); then  # Ubuntu 22.04 ships 3.10: add 3.11 from the distribution's universe
    apt-get install -y -q --no-install-recommends python3.11 python3.11-venv || fail "no Python >= 3.11 available"
    BASE=$(find_python) || fail "no Python >= 3.11 available"
  fi
  "$BASE" -m venv "$ROOT/venv" || fail "$BASE -m venv failed (is the matching pythonX.Y-venv package installed?)"
  PY="$ROOT/venv/bin/python"
  "$PY" -m pip install -q --disable-pip-version-check --upgrade pip
  torch_pins=$(grep -E '^(torch|torchvision)==' requirements.txt | tr '\n' ' ')
  [ -n "$torch_pins" ] || fail "requirements.txt pins no torch/torchvision"
  # CPU-only wheels: same versions as requirements.txt (PEP 440: ==2.14.1 matches 2.14.1+cpu).
  "$PY" -m pip install -q --disable-pip-version-check --index-url "$TORCH_INDEX" $torch_pins \
    || fail "could not install $torch_pins from $TORCH_INDEX"
  grep -vE '^(torch|torchvision)==' requirements.txt > "$ROOT/requirements-rest.txt"
  "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-rest.txt" \
    --extra-index-url "$TORCH_INDEX" || fail "could not install the other pinned requirements"
  chmod -R a+rX "$ROOT/venv" "$ROOT/source"  # the sandboxed student workers run as unprivileged uids
  # ... and never need the tests or the judge's code: unreadable to them even without namespaces (uid mode)
  chmod -R go-rwx "$ROOT/source/tests" "$ROOT/source/autograder"
else
  PY=${HW3_AUTOGRADER_PYTHON:-python3}
fi

# The data ships in the zip: verify every file's checksum (LFW is downloaded here if the zip was
# built with --lfw download) and extract MNIST's IDX files; then the derived data the tests read.
"$PY" -m hw3 data || fail "the datasets are missing or corrupt (see above)"
"$PY" -m autograder.grade.prepare || fail "could not prepare the derived data (see above)"
"$PY" -c 'import torch, torchvision, gradescope_utils, pytest_timeout; print("setup.sh: torch", torch.__version__, "ready")'
# The sandbox run_autograder will ask for (HW3_ISOLATION there): say now, in the setup log, whether this
# image can provide it; grading refuses to start without it rather than run student code unconfined.
ISOLATION=$(sed -n 's/^ISOLATION=\${HW3_ISOLATION:-\(.*\)}$/\1/p' "$ROOT/source/run_autograder" 2>/dev/null || true)
"$PY" -m autograder.grade.sandbox "${ISOLATION:-auto}" >&2 \
  || echo "setup.sh: warning: grading will refuse to start here; rebuild with 'python -m autograder build --isolation uid' to accept the weaker sandbox" >&2
