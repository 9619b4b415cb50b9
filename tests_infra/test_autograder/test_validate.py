"""``python -m autograder validate`` on a tiny synthetic problem: verdict logic and the real grader.

The synthetic "gan" problem has one fast test (20 points) and one training test (5 points) on a
two-function module, so each graded run takes a fraction of a second (no torch in the tests).
"""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from autograder import REPO_ROOT, flakiness
from autograder.validate import runner
from autograder.validate.variants import Variant
from autograder.validate.tricks import TRICKS
from hw3 import testing

SOLUTION = '''
def add(a, b):
    """The sum a + b."""
    return a + b


def scale(x):
    """Twice x."""
    return 2 * x
'''

STARTER = '''
def add(a, b):
    raise NotImplementedError("add is not implemented yet")


def scale(x):
    raise NotImplementedError("scale is not implemented yet")
'''

TESTS = '''
import pytest
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

from hw3 import impl


@weight(20)
@number("4.1")
@visibility("visible")
def test_add():
    assert impl.load("gan").add(2, 3) == 5


@pytest.mark.training
@weight(5)
@number("4.2")
@visibility("visible")
def test_scale():
    assert impl.load("gan").scale(10) == 20
'''

INI = """[pytest]
markers =
    training: slow
    gpu: needs CUDA
    extra_credit: above 100 %
"""

VARIANTS = [
    Variant("gan", "minus", "subtracts", (("return a + b", "return a - b"),)),                 # caught fast
    Variant("gan", "triple", "triples", (("return 2 * x", "return 3 * x"),)),                  # training only
    Variant("gan", "harmless", "changes a docstring", (('"""Twice x."""', '"""2x."""'),)),    # caught by nothing
    Variant("gan", "sum-call", "sum() of a tuple", (("return a + b", "return sum((a, b))"),), correct=True),
    Variant("gan", "not-really", "labelled correct but wrong", (("return 2 * x", "return x + 1"),), correct=True),
    Variant("gan", "stale", "its text is gone", (("return a * b", "return b * a"),)),        # patch error
]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    for folder, text in (("solution", SOLUTION), ("starter", STARTER)):
        (root / folder).mkdir()
        (root / folder / "gan.py").write_text(text)
    (root / "tests").mkdir()
    (root / "tests" / "test_gan.py").write_text(TESTS)
    (root / "pytest.ini").write_text(INI)
    return root


def fake(number, score, max_score, extra=False, passed=None, output="NotImplementedError: add is not implemented"):
    status = "passed" if (score == max_score if passed is None else passed) else "failed"
    return SimpleNamespace(number=number, nodeid=f"tests/test_gan.py::t{number}", score=score, max_score=max_score,
                           extra_credit=extra, status=status, output="" if status == "passed" else output)


# --- the verdict logic on hand-made results ----------------------------------------------------

def test_judge_full_marks_and_zero():
    full = runner.stage_points("full", [fake("1.1", 20, 20), fake("1.2", 5, 5)])
    partial = runner.stage_points("full", [fake("1.1", 20, 20), fake("1.2", 2.5, 5)])
    zero = runner.stage_points("full", [fake("1.1", 0, 20), fake("1.2", 0, 5)])
    assert runner.verdict_of("solution", [full]) == (runner.OK, "")
    assert runner.verdict_of("correct", [partial])[0] == runner.WRONG and "1.2" in runner.verdict_of("correct", [partial])[1]
    assert runner.verdict_of("starter", [zero]) == (runner.OK, "")
    assert runner.verdict_of("starter", [partial])[0] == runner.WRONG
    # the starter must fail by "not implemented", not by an import error or a skip
    broken = runner.stage_points("full", [fake("1.1", 0, 20, output="ImportError: cannot import name 'x'")])
    assert runner.verdict_of("starter", [broken]) == (
        runner.WRONG, "failed for another reason than 'not implemented': 1.1 (ImportError: cannot import name 'x')")
    assert runner.verdict_of("wrong", [partial]) == (runner.OK, "caught by 1.2")
    assert runner.verdict_of("wrong", [full])[0] == runner.WRONG
    assert runner.verdict_of("solution", [])[0] == runner.WRONG  # no tests ran: never a pass


def test_a_trick_must_earn_nothing_and_every_problem_gets_every_trick(tmp_path):
    zero = runner.stage_points("full", [fake("1.1", 0, 20, output="AssertionError: expected 3, got 0")])
    some = runner.stage_points("full", [fake("1.1", 0, 20), fake("1.2", 0.5, 5, passed=False)])
    assert runner.verdict_of("trick", [zero]) == (runner.OK, "")  # any failure message will do
    assert runner.verdict_of("trick", [some]) == (runner.WRONG, "earned points in 1.2")
    (tmp_path / "gan.py").write_text("def f():\n    raise NotImplementedError\n")
    cases = [c for c in runner.build_cases(["gan"], None, starter_dir=tmp_path) if c.kind == "trick"]
    assert [c.label for c in cases] == [f"gan/trick-{t.name}" for t in TRICKS]
    assert all(c.source == t.code + "def f():\n    raise NotImplementedError\n" for c, t in zip(cases, TRICKS))
    for trick in TRICKS:  # each guards itself: the file still compiles and imports
        compile(trick.code, trick.name, "exec")


def test_judge_partial_credit_and_extra_credit():
    # partial credit below the weight loses points even though nothing raised
    assert runner.verdict_of("wrong", [runner.stage_points("full", [fake("1.1", 19.5, 20, passed=True)])])[0] == runner.OK
    # a starter that earns partial credit on a failed test is a wrong verdict
    assert runner.verdict_of("starter", [runner.stage_points("full", [fake("1.1", 1, 20, passed=False)])])[0] == runner.WRONG
    # extra credit counts for the verdicts and is shown apart
    stage = runner.stage_points("full", [fake("1.1", 20, 20), fake("1.9", 0, 2, extra=True)])
    assert runner.verdict_of("solution", [stage])[0] == runner.WRONG
    assert runner.points_text([stage]) == "20/20 +0/2 EC"


def test_judge_fast_only():
    fast = runner.stage_points("fast", [fake("1.1", 20, 20)])
    assert runner.verdict_of("wrong", [fast], fast_only=True)[0] == runner.NOT_CAUGHT_FAST
    assert not runner.CaseOutcome("x", "gan", "wrong", "loses points", verdict=runner.NOT_CAUGHT_FAST).failed
    training = runner.stage_points("training", [fake("1.2", 0, 5)])
    assert runner.verdict_of("wrong", [fast, training]) == (runner.OK, "caught by 1.2 (training)")
    assert runner.points_text([fast, training]) == "20/20 fast + 0/5 training"
    assert runner.points_text([fast]) == "20/20 (fast)"


def test_a_test_the_solution_fails_catches_nothing():
    results = [fake("1.1", 20, 20), fake("1.2", 0, 5)]
    flaky = {"tests/test_gan.py::t1.2"}  # the solution lost points on 1.2 too
    stage = runner.stage_points("full", results, ignore=flaky)
    verdict, detail = runner.verdict_of("wrong", [stage])
    assert verdict == runner.WRONG and "only in 1.2, which the solution fails too" in detail
    assert runner.verdict_of("wrong", [runner.stage_points("full", results)])[0] == runner.OK


def test_problem_checks_weights_and_catalogue_size():
    manifest = {"tests": [{"problem": "gan", "weight": 20.0, "extra_credit": False, "nodeid": "a", "warnings": []}]}
    cases = [runner.Case("gan/x", "gan", "wrong", "")]
    checks = runner.problem_checks(["gan"], manifest, cases, min_wrong=1, min_correct=1)
    assert any("worth 20 points, not 25" in c for c in checks)
    assert any("1 wrong and 0 correct" in c for c in checks)
    assert runner.problem_checks(["cvae"], manifest, [], 0, 0) == ["cvae: no graded tests (tests/test_cvae.py)"]


# --- through the real grader ------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_reports(synthetic):
    """The synthetic problem validated by both engines: the grader (2 workers) and warm (1 worker)."""
    return {engine: runner.validate(["gan"], tests_dir=synthetic / "tests", solution_dir=synthetic / "solution",
                                    starter_dir=synthetic / "starter", variants=VARIANTS, min_wrong=1, min_correct=1,
                                    jobs=jobs, engine=engine, log=lambda message: None)
            for engine, jobs in (("grader", 2), ("warm", 1))}


@pytest.mark.parametrize("engine", ["grader", "warm"])
def test_validate_synthetic_problem(synthetic_reports, engine):
    report = synthetic_reports[engine]
    got = {o.label.split("/")[1]: o for o in report["outcomes"]}
    assert {name: o.verdict for name, o in got.items()} == {
        "solution": runner.OK, "starter": runner.OK, "minus": runner.OK, "triple": runner.OK,
        "harmless": runner.WRONG, "sum-call": runner.OK, "not-really": runner.WRONG, "stale": runner.PATCH_ERROR,
    }, runner.table(report["outcomes"])
    assert got["solution"].points == "25/25" and got["starter"].points == "0/25"
    # a wrong variant caught by the fast tests never runs the training tests
    assert [s["stage"] for s in got["minus"].stages] == ["fast"] and got["minus"].points == "0/20 (fast)"
    assert [s["stage"] for s in got["triple"].stages] == ["fast", "training"]
    assert got["triple"].detail == "caught by 4.2 (training)"
    assert report["failed"] and report["checks"] == []
    table = runner.table(report["outcomes"])
    assert "gan/stale" in table and "PATCH ERROR" in table and "occurs 0 times" in table


def test_engines_agree(synthetic_reports):
    """The warm engine scores every stage of every case exactly as the grader does."""
    def points(report):
        return {o.label: [(s["stage"], s["score"], s["max"], s["lost"]) for s in o.stages] for o in report["outcomes"]}
    assert points(synthetic_reports["warm"]) == points(synthetic_reports["grader"])


def test_fast_mode_leaves_training_only_mistakes_unchecked(synthetic):
    from autograder.grade import collect_manifest
    manifest = collect_manifest(synthetic / "tests")
    case = runner.build_cases(["gan"], [VARIANTS[1]], synthetic / "solution", synthetic / "starter")[-1]
    outcome = runner.run_case(case, manifest, synthetic / "tests", fast_only=True)
    assert outcome.verdict == runner.NOT_CAUGHT_FAST and not outcome.failed
    assert outcome.points == "20/20 (fast)"


def test_validate_command_wiring():
    result = subprocess.run([sys.executable, "-m", "autograder", "validate", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--fast" in result.stdout and "--problem" in result.stdout


# --- flakiness hooks ----------------------------------------------------------------------------

def test_training_seed_and_record_metric(monkeypatch, tmp_path):
    monkeypatch.delenv(testing.SEED_VAR, raising=False)
    monkeypatch.delenv(testing.METRICS_VAR, raising=False)
    assert testing.training_seed(7) == 7
    testing.record_metric("accuracy", 99.0, 95.0)  # no file named: nothing happens
    monkeypatch.setenv(testing.SEED_VAR, "103")
    monkeypatch.setenv(testing.METRICS_VAR, str(tmp_path / "m.jsonl"))
    assert testing.training_seed(0) == 103
    assert testing.training_seed(1) == 1103  # tests with different fixed seeds stay on different seeds
    testing.record_metric("loss", 0.25, 0.5, higher_is_better=False)
    record = json.loads((tmp_path / "m.jsonl").read_text())
    assert record["seed"] == 103 and record["margin"] == pytest.approx(0.25) and record["name"] == "loss"
    assert record["test"].endswith("test_training_seed_and_record_metric")
    testing.check_metric("loss", 0.5, 0.5, "too high", higher_is_better=False)  # at the threshold: passes
    with pytest.raises(AssertionError, match="^too low$"):  # the test's own message, nothing added
        testing.check_metric("accuracy", 94.0, 95.0, "too low")
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [(r["name"], r["margin"]) for r in records[1:]] == [("loss", 0.0), ("accuracy", -1.0)]  # failing too


def test_flakiness_summary():
    runs = [{"seed": s, "seconds": 1.0, "load": 1.0,
             "outcomes": [{"test": "t::a", "outcome": "passed" if s < 102 else "failed", "seconds": 2.0,
                           "message": "" if s < 102 else "AssertionError: 94 < 95"}],
             "metrics": [{"test": "t::a", "name": "acc", "value": 96.0 - s + 100, "threshold": 95.0,
                          "higher_is_better": True, "margin": 1.0 - s + 100}]} for s in (100, 101, 102)]
    (row,) = flakiness.summarize(runs)
    assert (row["passed"], row["runs"], row["worst"], row["worst_margin"]) == (2, 3, 94.0, -1.0)
    text = flakiness.markdown([row], runs, "python -m autograder flakiness")
    assert "| `t::a` | 2/3 | acc | >= 95 | 94 | 95 | 96 | -1 | -1.1 % |" in text
    assert "seed 102: AssertionError: 94 < 95" in text
    assert "Per seed" not in text
    table = flakiness.markdown([row], runs, "python -m autograder flakiness --table", per_seed=True)
    assert "| `t::a` | acc | 96, 95, 94 (100..102) | 94 | 95 | 1 |" in table  # calibration: every seed's value
