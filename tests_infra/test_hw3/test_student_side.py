"""The student's side of the course: one minimum Python version everywhere, the local score table,
``python -m hw3 submit``, and a bundle that names nothing it lacks.

The bundle itself (built by ``python -m autograder release``, set up and run as a student would)
is exercised end to end in test_build.py.
"""
import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from hw3 import score, submit
from hw3.__main__ import main as hw3_main

REPO_ROOT = Path(__file__).resolve().parents[2]
needs_solution = pytest.mark.skipif(not (REPO_ROOT / "solution").is_dir(), reason="no solution/ in this bundle")


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
    for page in ("setup.sh", "handout/README.md", "autograder/release/templates/README.md"):
        assert stated in (REPO_ROOT / page).read_text(), f"{page} does not say {stated!r}"


# --- the local score table --------------------------------------------------------------------

def graded_tests() -> dict:
    """test_handout's {test number: Graded} of every graded test, hidden ones included."""
    spec = importlib.util.spec_from_file_location("student_side_handout", Path(__file__).with_name("test_handout.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graded_tests()


def test_score_sections_are_the_graded_sections_with_their_hidden_points():
    hidden = defaultdict(float)
    sections = set()
    for test in graded_tests().values():
        section = test.number.rsplit(".", 1)[0]
        sections.add(section)
        hidden[section] += test.points if test.hidden else 0
    assert set(score.SECTIONS) == sections
    assert {s: h for s, (_, h) in score.SECTIONS.items()} == {s: hidden[s] for s in sections}


SCORED_CONFTEST = '''
import pytest
import pytest

from hw3 import score, submit
from hw3.__main__ import main as hw3_main

def pytest_configure(config):
    score.register(config)

@pytest.fixture
def set_score():  # replaced by @partial_credit's own
    return None
'''
SCORED_TESTS = '''
import pytest
from gradescope_utils.autograder_utils.decorators import number, partial_credit, weight

@weight(2)
@number("1.1.1")
def test_passes():
    pass

@weight(3)
@number("1.1.2")
def test_fails():
    raise NotImplementedError("conv2d is not implemented yet")

@partial_credit(4)
@number("1.2.1")
def test_partial(set_score=None):
    set_score(1.5)
    assert False

@weight(1)
@number("2.4.1")
@pytest.mark.extra_credit
def test_extra():
    pass

@weight(5)
@number("1.4.1")
@pytest.mark.training
def test_training():
    pass
'''


def run_scored(tmp_path, *args) -> str:
    (tmp_path / "conftest.py").write_text(SCORED_CONFTEST)
    (tmp_path / "test_scored.py").write_text(SCORED_TESTS)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not training",
                          "-o", "markers=training\n extra_credit", *args], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    return run.stdout


def table_row(output: str, label: str) -> list:
    row = next(line for line in output.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", row.strip())


def test_score_table_scores_as_the_autograder_does(tmp_path):
    output = run_scored(tmp_path)
    assert "hw3 local score" in output
    assert table_row(output, "1.1 conv2d") == ["1.1 conv2d", "2 / 5", "1.5"]            # passed + failed
    assert table_row(output, "1.2 global_pool") == ["1.2 global_pool", "1.5 / 4", "0.5"]  # partial credit counts
    assert table_row(output, "1.4 training ConvNet") == ["1.4 training ConvNet", "not run (5)", "1.5"]
    assert table_row(output, "Problem 1") == ["Problem 1 (cnn.py)", "3.5 / 9", "4"]
    assert table_row(output, "Problem 2") == ["Problem 2 (contrastive.py)", "0 / 0 (+1 / 1 extra credit)", "5"]
    assert "visible points earned: 3.5 of the 9 run here, +1 of 1 extra credit" in output
    assert "hidden points still to come: 9" in output
    assert "not run here: 1 visible test of these problems, worth 5 points" in output


def test_score_table_stays_out_of_the_autograders_runs():
    class Config:
        def __init__(self, plugins=(), **options):
            self.options = options
            self.pluginmanager = SimpleNamespace(has_plugin=lambda name: name in plugins)

        def getoption(self, name, default=None):
            return self.options.get(name, default)

    assert not score.is_grader_run(Config())
    assert score.is_grader_run(Config(plugins=["autograder.grade.plugin"]))  # validate's warm engine
    for option in ("--hw3-channel", "--hw3-manifest", "--gradescope-results"):
        assert score.is_grader_run(Config(**{option: "x"}))


# --- python -m hw3 submit ---------------------------------------------------------------------

def copy_solution(folder: Path) -> Path:
    folder.mkdir()
    for name in submit.STUDENT_FILES:
        (folder / name).write_text((REPO_ROOT / "solution" / name).read_text())
    return folder


def zip_names(path: Path) -> list:
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


@needs_solution
def test_submit_zips_the_four_files_at_the_top_and_the_report_if_made(tmp_path, capsys):
    folder = copy_solution(tmp_path / "mine")
    output = tmp_path / "out" / "submission.zip"
    assert hw3_main(["submit", "--impl", str(folder), "-o", str(output), "--skip-tests"]) == 0
    assert zip_names(output) == sorted(submit.STUDENT_FILES)
    assert "Homework 3 – code" in capsys.readouterr().out
    (tmp_path / "report.html").write_text("<html></html>")
    submit.write_zip(submit.check_files(folder), output, report=tmp_path / "report.html")
    assert zip_names(output) == sorted([*submit.STUDENT_FILES, "report.html"])


@needs_solution
def test_submit_names_a_missing_or_broken_file_and_writes_nothing(tmp_path, capsys):
    folder = copy_solution(tmp_path / "mine")
    output = tmp_path / "submission.zip"
    (folder / "gan.py").unlink()
    assert hw3_main(["submit", "--impl", str(folder), "-o", str(output), "--skip-tests"]) == 1
    error = capsys.readouterr().err
    assert f"{folder / 'gan.py'} is missing" in error and "Traceback" not in error
    (folder / "gan.py").write_text("import torch\n\ndef sample_noise(batch_size, dim, seed=None)\n    pass\n")
    assert hw3_main(["submit", "--impl", str(folder), "-o", str(output), "--skip-tests"]) == 1
    error = capsys.readouterr().err
    assert "gan.py does not import (line 3): SyntaxError" in error
    assert hw3_main(["submit", "--impl", str(tmp_path / "nowhere"), "-o", str(output), "--skip-tests"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not output.exists()


# --- one docstring dialect in the four student files ------------------------------------------

def student_docstrings():
    """(file, name, node, docstring) of every function, method and class of the four starter files."""
    for name in submit.STUDENT_FILES:
        tree = ast.parse((REPO_ROOT / "starter" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                yield name, node.name, node, ast.get_docstring(node, clean=False)


def test_student_files_share_one_docstring_dialect():
    """CS231n's: a one-line summary opening the docstring, then "Inputs:" and "Returns:" sections with
    "- name: ..." items (shapes given), never "Input:" / "Output:"."""
    problems = []
    for file, name, node, doc in student_docstrings():
        if doc is None:
            problems.append(f"{file}: {name} has no docstring")
            continue
        lines = doc.strip("\n").splitlines()
        if not doc[:1].strip() or lines[0].strip().endswith(":"):
            problems.append(f"{file}: {name}'s docstring does not open with a one-line summary")
        headers = {line.strip() for line in lines if re.fullmatch(r"\s*[A-Z][\w ]*:", line)}
        if headers & {"Input:", "Output:", "Inputs of the constructor:"}:
            problems.append(f"{file}: {name} uses {sorted(headers)}; write 'Inputs:' and 'Returns:'")
        if not isinstance(node, ast.FunctionDef):
            continue
        parameters = [a.arg for a in node.args.args if a.arg != "self"]
        if parameters and "Inputs:" not in headers:
            problems.append(f"{file}: {name} takes {parameters} but its docstring has no 'Inputs:'")
        if name != "__init__" and not any(h.startswith("Returns") for h in headers):
            problems.append(f"{file}: {name}'s docstring has no 'Returns:'")
    assert not problems, "\n".join(problems)
