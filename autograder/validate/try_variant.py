"""Run one problem's tests on one variant: ``python -m autograder.validate.try_variant MODULE NAME [pytest args]``.

A development aid for writing the catalogue; ``python -m autograder validate`` runs them all.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import REPO_ROOT
from autograder.validate.variants import catalogue, materialize
from hw3.problems import graded_test_files


def main(argv):
    module, name, *pytest_args = argv
    matches = [v for v in catalogue(module) if v.name == name]
    if not matches:
        sys.exit(f"no variant {module}/{name}; known: {[v.name for v in catalogue(module)]}")
    variant = matches[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = materialize(variant, Path(tmp) / "impl")
        tests = [str(p) for p in graded_test_files(REPO_ROOT / "tests", [module])]
        print(f"{module}/{name} ({'correct' if variant.correct else 'wrong'}): {variant.description}")
        return subprocess.call([sys.executable, "-m", "pytest", *tests, "--impl", str(folder), "-q", *pytest_args],
                               cwd=REPO_ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
