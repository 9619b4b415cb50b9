"""The implementation switch: which folder the student modules are loaded from.

The folder is, in order of precedence, the ``folder`` argument, the ``HW3_IMPL`` environment
variable, or ``starter/``. A module is loaded from that folder's file and from nowhere else: the
folder is never put on ``sys.path``, so a missing file is an error, not a silent import of some
other copy (the staff solution, say).
"""
import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from hw3 import REPO_ROOT, problems

ENV_VAR = "HW3_IMPL"
JUDGE_ENV_VAR = "HW3_WORKER_PREFIX"   # set (by the grader) only in a judge process: hw3.remote.PREFIX_ENV
STUDENT_MODULES = problems.NAMES
DEFAULT_FOLDER = REPO_ROOT / "starter"


class ImplementationError(Exception):
    """The chosen implementation folder or one of its files cannot be used."""


def impl_dir(folder=None) -> Path:
    """The implementation folder as an absolute path; raises ImplementationError if it is not one."""
    chosen = folder or os.environ.get(ENV_VAR) or DEFAULT_FOLDER
    path = Path(chosen).expanduser().resolve()
    if not path.is_dir():
        source = "argument" if folder else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
        raise ImplementationError(
            f"implementation folder {path} (from {source}) does not exist or is not a folder; "
            f"pass --impl starter or the path of a folder holding "
            f"{', '.join(m + '.py' for m in STUDENT_MODULES)}"
        )
    return path


def load(name: str, folder=None) -> ModuleType:
    """Import student module ``name`` (e.g. "gan") from the implementation folder, once per folder."""
    if name not in STUDENT_MODULES:
        raise ImplementationError(f"unknown student module {name!r}; expected one of {STUDENT_MODULES}")
    if os.environ.get(JUDGE_ENV_VAR):  # fail closed: a judge runs outside the sandbox
        raise ImplementationError(f"refusing to import {name}.py into a judge process (${JUDGE_ENV_VAR} is set): "
                                  f"the grader runs student code only in its sandboxed worker (hw3.remote)")
    directory = impl_dir(folder)
    file = directory / f"{name}.py"
    if not file.is_file():
        raise ImplementationError(f"{file} is missing: the implementation folder {directory} has no {name}.py")
    # A unique module name per file keeps two implementations (say starter and solution) apart.
    module_name = f"hw3_student_{name}_{hashlib.sha1(str(file).encode()).hexdigest()[:12]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
