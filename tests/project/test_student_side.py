"""The student's side of the course: one minimum Python version everywhere, the local score table,
``python -m hw3 submit``, and a bundle that names nothing it lacks.

The bundle itself (built by ``python -m autograder release``, set up and run as a student would)
is exercised end to end in test_autograder_build.py.
"""
import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- one minimum Python version ---------------------------------------------------------------

def minimum_python() -> tuple:
    """(major, minor) from pyproject.toml's requires-python (">=3.11")."""
    spec = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert match, f"pyproject.toml's requires-python should be a plain minimum, not {spec!r}"
    return int(match.group(1)), int(match.group(2))


def pinned_packages() -> list:
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("==")[0].strip() for line in lines if "==" in line and not line.startswith("#")]


def test_the_minimum_python_suits_every_pinned_package():
    major, minor = minimum_python()
    for package in pinned_packages():
        requires = importlib.metadata.metadata(package).get("Requires-Python")
        if requires:
            assert Version(f"{major}.{minor}") in SpecifierSet(requires), (
                f"{package} needs Python {requires}; pyproject.toml promises >={major}.{minor}")


def test_every_setup_states_and_checks_the_same_minimum_python():
    major, minor = minimum_python()
    check = f"sys.version_info < ({major}, {minor})"
    stated = f"Python {major}.{minor} or newer"
    for script in ("setup.sh", "autograder/build/templates/setup.sh"):
        assert check in (REPO_ROOT / script).read_text(), f"{script} does not check {check!r}"
    for page in ("setup.sh", "handout/README.md"):
        assert stated in (REPO_ROOT / page).read_text(), f"{page} does not say {stated!r}"
