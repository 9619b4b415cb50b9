"""The grader end to end on the real graded tests (tests/test_*.py and tests/hidden/).

Cheap by default: the fast tests only (-m "not training"). The one full grade of the solution --
training tests included, the 100/100 the issue demands -- is marked ``training``.
"""
import json
import shutil
import textwrap

import pytest

from autograder import SOLUTION_DIR, STARTER_DIR
from autograder import grade as grader
from autograder.grade.results import PROBLEMS, schema_errors

# Each test grades whole submissions in subprocesses: more than pytest's default 60 s under load.
pytestmark = pytest.mark.timeout(1200)

needs_solution = pytest.mark.skipif(not SOLUTION_DIR.is_dir(), reason="no solution/ in this bundle")
FAST = "not training"


@pytest.fixture(scope="module")
def fast_manifest():
    return grader.collect_manifest(grader.TESTS_DIR, markexpr=FAST)


def maximum(manifest, problem, extra=False) -> float:
    return sum(t["weight"] for t in manifest["tests"] if t["problem"] == problem and t["extra_credit"] == extra)


def folder_of(tmp_path, **sources):
    """A submission: each problem's file from solution/, starter/, literal text, or absent (None)."""
    folder = tmp_path / "submission"
    folder.mkdir()
    for problem in PROBLEMS:
        source = sources.get(problem, "starter")
        if source in ("solution", "starter"):
            shutil.copy((SOLUTION_DIR if source == "solution" else STARTER_DIR) / f"{problem}.py", folder)
        elif source is not None:
            (folder / f"{problem}.py").write_text(source)
    return folder


@needs_solution
def test_only_gan_solved_earns_exactly_the_gan_points(tmp_path, fast_manifest):
    out = tmp_path / "results.json"
    report = grader.grade(folder_of(tmp_path, gan="solution"), out, manifest=fast_manifest)
    results = json.loads(out.read_text())
    assert schema_errors(results) == []
    assert report.points()["gan"] == maximum(fast_manifest, "gan") > 0
    assert results["score"] == report.score == maximum(fast_manifest, "gan")
    assert all(report.points()[p] == 0 for p in PROBLEMS if p != "gan")
    unsolved = [r for r in report.results if r.problem != "gan"]
    assert unsolved and all("not implemented" in r.output for r in unsolved), \
        [r.output for r in unsolved if "not implemented" not in r.output][:1]


@needs_solution
def test_a_crashing_file_leaves_the_other_problems_intact(tmp_path, fast_manifest):
    """cnn.py kills its test process at import, cvae.py is missing; the other two keep full marks."""
    crash = (SOLUTION_DIR / "cnn.py").read_text() + textwrap.dedent('''
        import os
        os._exit(1)
        ''')
    sources = {"cnn": crash, "contrastive": "solution", "cvae": None, "gan": "solution"}
    out = tmp_path / "results.json"
    report = grader.grade(folder_of(tmp_path, **sources), out, manifest=fast_manifest)
    assert schema_errors(json.loads(out.read_text())) == []
    points = report.points()
    assert points["cnn"] == 0 and points["cvae"] == 0
    assert points["contrastive"] == maximum(fast_manifest, "contrastive")
    assert points["gan"] == maximum(fast_manifest, "gan")
    assert any("cvae.py is missing" in note for note in report.notes)
    # the worker dies at import, the judge does not: each test says so and names the file
    assert all("the worker process died: exit status 1 during importing cnn.py" in r.output
               for r in report.results if r.problem == "cnn")


@needs_solution
@pytest.mark.training
@pytest.mark.timeout(1800)
def test_solution_scores_100_plus_extra_credit(tmp_path):
    """The full grade, training tests included, exactly as Gradescope runs it."""
    out = tmp_path / "results.json"
    report = grader.grade(SOLUTION_DIR, out)
    results = json.loads(out.read_text())
    assert schema_errors(results) == []
    failed = [(r.nodeid, r.output[:500]) for r in report.results if r.status != "passed" or r.score < r.max_score]
    assert not failed, failed
    points = report.points()
    assert [points[p] for p in PROBLEMS] == [25, 25, 25, 25], report.table()
    extra = sum(r.max_score for r in report.results if r.extra_credit)
    assert points["extra_credit"] == extra and results["score"] == pytest.approx(100 + extra)
    assert all(t["visibility"] == "after_due_date" for t in results["tests"] if "hidden" in t["tags"])
