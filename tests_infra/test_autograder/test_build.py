"""autograder.zip (python -m autograder build) and the student bundle (python -m autograder release):
contents, no solution code, no hidden tests in the bundle, and both actually working.

The zip is checked by simulating Gradescope: unpacked into a folder standing in for /autograder,
setup.sh run (without apt/pip: HW3_AUTOGRADER_SKIP_INSTALL) and run_autograder run on the starter
and on the solution (fast tests only, to stay cheap).
"""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT, SOLUTION_DIR, STARTER_DIR, build, release
from autograder.bundle import BundleError
from autograder.bundle.leaks import find_leaks, solution_only_lines
from autograder.grade.results import PROBLEMS, schema_errors

# Each test grades whole submissions in subprocesses: more than pytest's default 60 s under load.
pytestmark = pytest.mark.timeout(1200)

needs_solution = pytest.mark.skipif(not SOLUTION_DIR.is_dir(), reason="no solution/ in this bundle")


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    # check=False: the leak check has its own tests below, so that one leak fails those, not everything
    return build.build(tmp_path_factory.mktemp("build") / "autograder.zip", check=False)


@pytest.fixture(scope="module")
def zip_members(autograder_zip):
    with zipfile.ZipFile(autograder_zip) as archive:
        return {info.filename: (info, archive.read(info)) for info in archive.infolist()}


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("HW3_IMPL", "HW3_DATA", "PYTHONPATH")}
    return {**env, **extra}


# --- autograder.zip -------------------------------------------------------------------------------

@needs_solution
def test_zip_holds_what_gradescope_needs(zip_members):
    names = set(zip_members)
    for required in ("setup.sh", "run_autograder", "requirements.txt", "pyproject.toml", "hw3/__init__.py",
                     "hw3/judge.pt", "autograder/__init__.py", "autograder/grade/__init__.py",
                     "autograder/grade/plugin.py", "tests/conftest.py", "datasets/MNIST.sha256",
                     "datasets/MNIST/raw/train-images-idx3-ubyte.gz", "datasets/MNIST/raw/t10k-labels-idx1-ubyte.gz",
                     "datasets/lfw.sha256", "datasets/lfw/pairsDevTest.txt", "datasets/lfw/peopleDevTrain.txt"):
        assert required in names, f"{required} missing from autograder.zip"
    for problem in PROBLEMS:
        if (REPO_ROOT / "tests" / f"test_{problem}.py").is_file():
            assert f"tests/test_{problem}.py" in names
        if (REPO_ROOT / "tests" / "hidden" / f"test_{problem}_hidden.py").is_file():
            assert f"tests/hidden/test_{problem}_hidden.py" in names
    assert sum(n.startswith("datasets/lfw/lfw-deepfunneled/") for n in names) == 13233
    assert [n for n in names if n.startswith("datasets/cache/lfw-") and n.endswith("-gray.pt")]
    for script in ("setup.sh", "run_autograder"):
        assert zip_members[script][0].external_attr >> 16 == 0o100755
        assert zip_members[script][1].startswith(b"#!/usr/bin/env bash")


@needs_solution
def test_zip_holds_no_solution_code(zip_members):
    names = list(zip_members)
    assert not [n for n in names if n.startswith(("solution/", "starter/", "autograder/validate/", "tests_infra/",
                                                  "benchmarks/", "runs/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert solution_only_lines(), "the leak check needs solution regions to compare against"
    assert find_leaks({n: data for n, (info, data) in zip_members.items()}) == []
    solutions = {(SOLUTION_DIR / f"{p}.py").read_bytes() for p in PROBLEMS if (SOLUTION_DIR / f"{p}.py").is_file()}
    assert not [n for n, (info, data) in zip_members.items() if data in solutions]


@needs_solution
def test_build_refuses_to_ship_solution_code(tmp_path):
    tests = tmp_path / "tests"
    shutil.copytree(REPO_ROOT / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    (tests / "helpers.py").write_text((SOLUTION_DIR / "gan.py").read_text())  # a reference copied into the tests
    output = tmp_path / "autograder.zip"
    with pytest.raises(BundleError, match="solution code would ship"):
        build.build(output, tests_dir=tests, lfw="download")
    assert not output.exists()


@needs_solution
def test_build_and_release_refuse_solution_code_by_default(tmp_path, monkeypatch):
    import autograder.build as build_module
    import autograder.release as release_module
    monkeypatch.setattr(build_module, "find_leaks", lambda members: ["tests/x.py:1-3: solution code"])
    monkeypatch.setattr(release_module, "find_leaks", lambda members: ["tests/x.py:1-3: solution code"])
    with pytest.raises(BundleError, match="refusing to build"):
        build.build(tmp_path / "a.zip", lfw="download")
    with pytest.raises(BundleError, match="refusing to release"):
        release.release(tmp_path / "bundle")
    assert not (tmp_path / "a.zip").exists() and not (tmp_path / "bundle").exists()


def test_leak_check_tells_copied_code_from_coincidence():
    secret = {"return nn.Sequential(", "nn.Unflatten(1, (1, 28, 28)),", "nn.Conv2d(1, 32, kernel_size=5),",
              "loss = ((1 - y) * d.pow(2) + y * torch.clamp(m - d, min=0).pow(2)).mean() / 2"}
    two = b"x = 1\nreturn nn.Sequential(\n    nn.Unflatten(1, (1, 28, 28)),\n    nn.Conv2d(1, 32, 5),\n"
    three = b"return nn.Sequential(\n\n    nn.Unflatten(1, (1, 28, 28)),\n    nn.Conv2d(1, 32, kernel_size=5),\n"
    one_long = b"    loss = ((1 - y) * d.pow(2) + y * torch.clamp(m - d, min=0).pow(2)).mean() / 2\n"
    assert find_leaks({"tests/a.py": two}, secret) == []
    assert len(find_leaks({"tests/a.py": three}, secret)) == 1
    assert len(find_leaks({"tests/a.py": one_long}, secret)) == 1
    assert find_leaks({"solution/x.txt": b"", "autograder/validate/c.py": b""}, secret) == [
        "autograder/validate/c.py: a staff-only path", "solution/x.txt: a staff-only path"]


def test_small_zip_leaves_lfw_to_setup(tmp_path):
    path = build.build(tmp_path / "small.zip", lfw="download", check=False)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert "datasets/lfw.sha256" in names
    assert not [n for n in names if n.startswith(("datasets/lfw/", "datasets/cache/"))]
    assert path.stat().st_size < 40e6


def test_build_bad_output_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    run = subprocess.run([sys.executable, "-m", "autograder", "build", "-o", str(tmp_path / "file" / "a.zip")],
                         cwd=REPO_ROOT, capture_output=True, text=True, env=clean_env())
    assert run.returncode == 1 and run.stderr.startswith("error: cannot write") and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-m", "autograder", "build", "-o", str(tmp_path)],
                         cwd=REPO_ROOT, capture_output=True, text=True, env=clean_env())
    assert run.returncode == 1 and "is a folder" in run.stderr


@pytest.fixture(scope="module")
def gradescope(autograder_zip):
    """A folder standing in for /autograder: source/ unpacked from the zip and set up."""
    root = Path(tempfile.mkdtemp(prefix="hw3-gradescope-"))
    root.chmod(0o755)  # the sandboxed test processes run as other uids and must reach source/
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    for path in [root / "source", *(root / "source").rglob("*")]:
        path.chmod(0o755 if path.is_dir() or path.name in ("setup.sh", "run_autograder") else 0o644)
    env = clean_env(HW3_AUTOGRADER_ROOT=str(root), HW3_AUTOGRADER_SKIP_INSTALL="1",
                    HW3_AUTOGRADER_PYTHON=sys.executable)
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, env=env,
                           timeout=900)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (root / "source" / "datasets" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    yield root, env
    shutil.rmtree(root, ignore_errors=True)


def run_autograder(gradescope, submission_from: Path, args: str) -> dict:
    root, env = gradescope
    shutil.rmtree(root / "submission", ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    shutil.copytree(submission_from, root / "submission", ignore=shutil.ignore_patterns("__pycache__"))
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                         env={**env, "HW3_AUTOGRADER_ARGS": args}, cwd="/", timeout=1800)
    assert run.returncode == 0, run.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert schema_errors(results) == [], schema_errors(results)
    return results


@needs_solution
def test_run_autograder_on_the_starter_scores_zero(gradescope):
    results = run_autograder(gradescope, STARTER_DIR, "-m 'not training'")
    assert results["score"] == 0 and results["tests"]
    bad = [t["name"] for t in results["tests"] if "not implemented" not in t["output"]]
    assert not bad, f"tests failing on the starter for another reason than a stub: {bad[:5]}"
    assert any(t["visibility"] == "after_due_date" for t in results["tests"])


@needs_solution
def test_run_autograder_on_the_solution_scores_full_marks(gradescope):
    results = run_autograder(gradescope, SOLUTION_DIR, "-m 'not training'")
    lost = [t["name"] for t in results["tests"] if t["score"] < t["max_score"]]
    assert not lost, lost
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0


def test_run_autograder_still_writes_results_when_the_grader_fails(tmp_path):
    """A broken installation (here: no Python at all) still leaves a valid results file."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    shutil.copy(build.TEMPLATES / "run_autograder", root / "source")
    run = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                         env=clean_env(HW3_AUTOGRADER_ROOT=str(root), HW3_AUTOGRADER_PYTHON="/nonexistent/python"))
    assert run.returncode == 0
    results = json.loads((root / "results" / "results.json").read_text())
    assert schema_errors(results) == [] and results["score"] == 0 and "contact the course staff" in results["output"]


# --- the student bundle ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return release.release(tmp_path_factory.mktemp("release") / "hw3", check=False)


@needs_solution
def test_bundle_has_the_student_files_only(bundle):
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    for required in ("setup.sh", "requirements.txt", "pyproject.toml", "README.md", "hw3/__init__.py",
                     "hw3/impl.py", "tests/conftest.py", "datasets/MNIST.sha256", "datasets/lfw.sha256",
                     *[f"starter/{p}.py" for p in PROBLEMS]):
        assert required in names, f"{required} missing from the bundle"
    assert not [n for n in names if n.startswith(("solution/", "autograder/", "tests/hidden/", "tests_infra/",
                                                  "benchmarks/", "datasets/MNIST/", "datasets/lfw/",
                                                  "datasets/cache/"))]
    assert find_leaks({n: (bundle / n).read_bytes() for n in names}) == []
    for problem in PROBLEMS:
        assert (bundle / "starter" / f"{problem}.py").read_text() == (STARTER_DIR / f"{problem}.py").read_text()
    assert os.access(bundle / "setup.sh", os.X_OK)
    assert (bundle / "README.md").read_text() == release.STUDENT_README.read_text()  # theirs, not the staff's


@needs_solution
def test_bundle_tests_run_and_the_starter_fails_with_not_implemented(bundle, tmp_path):
    """pytest tests/ inside the bundle: collected without errors; each test fails on a stub."""
    junit = tmp_path / "junit.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/", "-q", "-p", "no:cacheprovider",
                          f"--junitxml={junit}"], cwd=bundle, capture_output=True, text=True,
                         env=clean_env(HW3_DATA=str(REPO_ROOT / "datasets")), timeout=1800)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # 1: tests failed; 2+: could not run
    import xml.etree.ElementTree as ET
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {}
    for case in cases:
        problem = [child for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = problem[0] if problem else None
    assert outcomes, run.stdout[-3000:]
    passed = [name for name, problem in outcomes.items() if problem is None]
    # A failure, or an error in a fixture that calls the stub (a shared trained model): both must be
    # the stub's NotImplementedError, never an import error or a broken test. (Skips are fine: the
    # GPU-only variants skip without CUDA.)
    other = [name for name, problem in outcomes.items() if problem is not None and problem.tag != "skipped"
             and "not implemented" not in (problem.get("message", "") + (problem.text or ""))]
    assert not passed, f"tests passing on the starter: {passed[:5]}"
    assert not other, f"tests failing for another reason than a stub: {other[:5]}"


@pytest.fixture(scope="module")
def student_bundle(tmp_path_factory):
    """A fresh bundle set up as a student would: ./setup.sh, its install skipped (this Python has the
    pinned packages), MNIST copied from the repository's data."""
    bundle = release.release(tmp_path_factory.mktemp("student") / "hw3", check=False)
    setup = subprocess.run(["./setup.sh", "--only", "mnist", "--mirror", str(REPO_ROOT / "datasets")], cwd=bundle,
                           capture_output=True, text=True, timeout=600,
                           env=clean_env(HW3_SKIP_INSTALL="1", PYTHON=sys.executable))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    return bundle


def test_student_tests_one_problem_on_the_starter_and_sees_the_score(student_bundle, tmp_path):
    """pytest tests/ -k gan in the set-up bundle: 0 points, every failure the stub's, the table shown."""
    junit = tmp_path / "junit.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/", "-k", "gan", "-p", "no:cacheprovider",
                          f"--junitxml={junit}"], cwd=student_bundle, capture_output=True, text=True,
                         env=clean_env(), timeout=600)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    import xml.etree.ElementTree as ET
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    # the full-budget test (marked gpu) skips without a GPU; every other test fails on the stubs
    graded = [case for case in cases if not case.get("name", "").startswith("test_full_budget")]
    failures = [[c for c in case if c.tag in ("failure", "error")] for case in graded]
    assert graded and all(failures), "tests passing on the starter"
    assert all("not implemented" in (f[0].get("message", "") + (f[0].text or "")) for f in failures)
    from hw3 import score
    table = run.stdout[run.stdout.index("hw3 local score"):]
    hidden = sum(points for section, (_, points) in score.SECTIONS.items() if section.startswith("4."))
    assert re.search(rf"^Problem 4 \(gan\.py\)\s+0 / [1-9][\d.]*\s+{hidden:g}$", table, re.M), table
    assert "visible points earned: 0 of the" in table and f"hidden points still to come: {hidden:g}" in table
    assert "Problem 1" not in table  # -k gan ran no other problem


@needs_solution
def test_student_submits_the_solutions_files(student_bundle):
    """python -m hw3 submit --impl FOLDER in the bundle: the fast tests pass, the zip holds the four files."""
    mine = student_bundle / "mine"
    mine.mkdir()
    for problem in PROBLEMS:
        shutil.copy(SOLUTION_DIR / f"{problem}.py", mine)
    run = subprocess.run([sys.executable, "-m", "hw3", "submit", "--impl", "mine"], cwd=student_bundle,
                         capture_output=True, text=True, env=clean_env(), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "hw3 local score" in run.stdout and "warning" not in run.stdout
    with zipfile.ZipFile(student_bundle / "runs" / "submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{problem}.py" for problem in PROBLEMS)
        assert archive.read("gan.py") == (SOLUTION_DIR / "gan.py").read_bytes()
    assert "Homework 3 – code" in run.stdout


def test_release_to_a_zip_and_bad_outputs(tmp_path):
    archive = release.release(tmp_path / "hw3.zip", check=False)
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert "starter/gan.py" in names and not [n for n in names if n.startswith(("solution/", "tests/hidden/"))]
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "precious.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not a previous release"):
        release.release(tmp_path / "occupied", check=False)
    assert (tmp_path / "occupied" / "precious.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("")
    run = subprocess.run([sys.executable, "-m", "autograder", "release", "-o", str(tmp_path / "file")],
                         cwd=REPO_ROOT, capture_output=True, text=True, env=clean_env())
    assert run.returncode == 1 and run.stderr.startswith("error:") and "not a folder" in run.stderr


# --- nothing in the bundle names what it lacks ----------------------------------------------------

STAFF_ONLY = re.compile(r"python -m autograder|--impl solution|\bSPEC\.md|(?<![\w/])(?:solution|benchmarks|\.ci|"
                        r"tests_infra|tests/hidden|dist)/")
GENERATED = (".venv/", "runs/", "datasets/MNIST/", "datasets/lfw/", "datasets/cache/")  # setup.sh, experiments
PATH_TOKEN = re.compile(r"(?<![\w./~$-])(?:\./)?[A-Za-z_.][\w.-]*(?:/[\w.-]*)+")
HW3_COMMAND = re.compile(r"python -m hw3 ([a-z][\w-]*)")
PYTEST_MARK = re.compile(r"pytest [^\n]*?-m (?:\"([^\"]+)\"|(\w+))")


def student_texts(bundle: Path) -> dict:
    """{where: text} of what students read: the bundle's Markdown, and the docstrings and comments of
    the public tests and of hw3/."""
    texts = {str(p.relative_to(bundle)): p.read_text() for p in sorted(bundle.rglob("*.md"))}
    for path in sorted([*(bundle / "tests").rglob("*.py"), *(bundle / "hw3").rglob("*.py")]):
        source = path.read_text()
        nodes = [n for n in ast.walk(ast.parse(source))
                 if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
        docstrings = [ast.get_docstring(n) or "" for n in nodes]
        comments = [line.split("#", 1)[1] for line in source.splitlines() if line.lstrip().startswith("#")]
        texts[str(path.relative_to(bundle))] = "\n".join(docstrings + comments)
    return texts


def named_paths(text: str, roots: set) -> set:
    """The relative paths a text names whose first part is a top-level name of the repository (so
    "hw3/plots.py" and "solution/gan.py", not "torch.nn/functional" or "N/2"); placeholders cut off."""
    text = re.sub(r"https?://\S+", "", text)
    paths = set()
    for token in PATH_TOKEN.findall(text):
        token = token.removeprefix("./").rstrip(".")
        if token.split("/")[0] in roots:
            paths.add(token)
    return paths


def test_bundle_names_no_file_or_command_it_lacks(bundle):
    """Every path and command that the bundle's Markdown, the public tests' and hw3/'s docstrings and
    comments name exists in the bundle (or is made by setup.sh or an experiment), no staff-only file
    or command is named, every `python -m hw3 X` is a command and every `pytest -m` marker is declared."""
    from hw3.__main__ import COMMANDS
    roots = {p.name for p in REPO_ROOT.iterdir() if p.name != ".git"} | {".venv", "runs"}
    markers = {line.split(":")[0].strip(' "') for line in tomllib.loads((bundle / "pyproject.toml").read_text())
               ["tool"]["pytest"]["ini_options"]["markers"]}
    problems = []
    for where, text in student_texts(bundle).items():
        problems += [f"{where}: names {m.group(0)!r} (staff only)" for m in STAFF_ONLY.finditer(text)]
        for path in sorted(named_paths(text, roots)):
            if not (path.startswith(GENERATED) or (bundle / path).exists() or (bundle / where).parent.joinpath(path).exists()):
                problems.append(f"{where}: names {path}, which the bundle lacks")
        problems += [f"{where}: python -m hw3 {c} is no command" for c in HW3_COMMAND.findall(text) if c not in COMMANDS]
        for quoted, bare in PYTEST_MARK.findall(text):
            unknown = set(re.findall(r"\w+", quoted or bare)) - markers - {"not", "and", "or"}
            problems += [f"{where}: pytest -m {quoted or bare!r} names an undeclared marker" for _ in unknown]
    assert not problems, "\n".join(problems)
