"""The variants that ``validate`` grades, and how one is applied to the solution.

A *variant* is a small patch of one solution file: either a realistic student mistake (it must
lose points in its problem) or a correct implementation written differently (it must keep full
marks). The catalogue lives in ``catalogue_<module>.py`` beside this file, one per student file.
"""
import importlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder import SOLUTION_DIR
from hw3.problems import NAMES as MODULES
from hw3.problems import STUDENT_FILES


@dataclass(frozen=True)
class Variant:
    module: str          # "cnn", "contrastive", "cvae" or "gan"
    name: str            # short identifier, e.g. "flipped-kernel"
    description: str     # the mistake (or the alternative), as a student would make it
    replace: tuple       # ((old, new), ...): each old must occur exactly once in solution/<module>.py
    correct: bool = False  # True: must keep full marks; False: must lose points


class VariantError(Exception):
    """A variant's patch no longer applies to the solution."""


def catalogue(module: str = None) -> list:
    """Every variant, or those of one module."""
    variants = []
    for name in ([module] if module else MODULES):
        try:
            variants += importlib.import_module(f"autograder.validate.catalogue_{name}").VARIANTS
        except ModuleNotFoundError as error:
            if error.name != f"autograder.validate.catalogue_{name}":
                raise
    return variants


def patched_source(variant: Variant, solution_dir: Path = SOLUTION_DIR) -> str:
    source = (solution_dir / f"{variant.module}.py").read_text()
    for old, new in variant.replace:
        count = source.count(old)
        if count != 1:
            raise VariantError(f"variant {variant.module}/{variant.name}: {old!r} occurs {count} times "
                               f"in solution/{variant.module}.py (must be exactly once)")
        source = source.replace(old, new)
    return source


def materialize(variant: Variant, dest: Path, solution_dir: Path = SOLUTION_DIR) -> Path:
    """A full implementation folder: the solution's four files with this variant's file patched."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in STUDENT_FILES:
        shutil.copy(solution_dir / name, dest / name)
    (dest / f"{variant.module}.py").write_text(patched_source(variant, solution_dir))
    return dest
