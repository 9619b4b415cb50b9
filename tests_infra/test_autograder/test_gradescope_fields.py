"""Gradescope's richer results fields: the Markdown top-level output, extra_data, the opt-in
leaderboard fed by hw3.testing.record_metric, and the schema check of each (results.schema_errors).

The end-to-end cases grade a small synthetic suite (one visible test per problem, gan's recording
"judge mean confidence" from the student's own function, a hidden gan test recording another metric)
like test_grade.py does: a grade takes seconds.
"""
import json
import re
import textwrap
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder import grade as grader
from autograder.grade import leaderboard, sandbox
from autograder.grade.results import OUTPUT_FORMATS, fenced, grader_version, schema_errors
from hw3.problems import NAMES
from test_worker_boundary import REMOTE_CONFTEST

pytestmark = pytest.mark.timeout(600)

PROBLEMS = NAMES
# Proxy fixtures, graded across the worker boundary (remote_problems): the leaderboard reads only what
# a judge recorded, never a process that holds student code.
CONFTEST = REMOTE_CONFTEST
VISIBLE = '''
from gradescope_utils.autograder_utils.decorators import number, visibility, weight
from hw3.testing import record_metric

@weight({w})
@number("{p}.1")
@visibility("visible")
def test_value({m}):
    """value() is 42."""
    if "{m}" == "gan":
        record_metric("judge mean confidence", {m}.confidence(), 0.5)
        record_metric("loss", 0.25, 1.0, higher_is_better=False)
    assert {m}.value() == 42
'''
HIDDEN = '''
from gradescope_utils.autograder_utils.decorators import number, visibility, weight
from hw3.testing import record_metric

@weight(5)
@number("4.9")
@visibility("after_due_date")
def test_secret(gan):
    record_metric("secret metric", 0.99, 0.5)
    assert gan.value() == 42
'''
STUDENT = "def value():\n    return 42\n\ndef confidence():\n    return {confidence}\n"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    import shutil
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="hw3-test-fields-"))
    tests = root / "tests"
    (tests / "hidden").mkdir(parents=True)
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "pytest.ini").write_text("[pytest]\ntimeout = 5\n")
    for p, m in enumerate(PROBLEMS, start=1):
        (tests / f"test_{m}.py").write_text(VISIBLE.format(p=p, m=m, w=20 if m == "gan" else 25))
    (tests / "hidden" / "test_gan_hidden.py").write_text(HIDDEN)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield tests
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def manifest(suite):
    return grader.collect_manifest(suite)


def submission(folder: Path, confidence="0.875", **sources) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for m in PROBLEMS:
        source = sources.get(m, STUDENT.format(confidence=confidence))
        if source is not None:
            (folder / f"{m}.py").write_text(textwrap.dedent(source))
    return folder


def results_of(tmp_path, suite, manifest, sub, **options) -> dict:
    out = tmp_path / "results.json"
    report = grader.grade(sub, out, tests_dir=suite, manifest=manifest, remote_problems=PROBLEMS, **options)
    results = json.loads(out.read_text())
    assert schema_errors(results) == [], schema_errors(results)
    assert results["score"] == pytest.approx(report.score)
    return results


# --- end to end -------------------------------------------------------------------------------------

def test_markdown_output_extra_data_and_no_leaderboard_by_default(tmp_path, suite, manifest):
    results = results_of(tmp_path, suite, manifest, submission(tmp_path / "sub", cnn=None))
    assert results["output_format"] == "md"
    assert "leaderboard" not in results
    lines = results["output"].splitlines()
    # The points table is a Markdown table: header, alignment row, one row per problem, the total.
    header = lines.index("| problem | points | extra credit | tests passed |")
    assert lines[header + 1] == "|---|---:|---:|---:|"
    assert lines[header + 2:header + 7] == ["| cnn | 0 / 25 | - | 0 / 1 |", "| contrastive | 25 / 25 | - | 1 / 1 |",
                                            "| cvae | 25 / 25 | - | 1 / 1 |", "| gan | 20 / 20 | - | 1 / 1 |",
                                            "| **total** | 70 / 95 | - | 3 / 4 |"]  # visible tests only
    assert "(hidden tests are graded too" in results["output"]
    # The notes (text that can come from the submission) sit in a code block above the table.
    assert lines[0].startswith("```") and "cnn.py is missing" in results["output"].split("| problem |")[0]
    extra = results["extra_data"]
    assert extra["isolation"] == sandbox.choose("auto").mode
    assert extra["seed"] == {"HW3_TEST_SEED": None, "PYTHONHASHSEED": 0}
    assert re.fullmatch(r"1\.0\.0\+[0-9a-f]{12}", extra["grader_version"])
    assert extra["grader_version"] == grader_version(sorted({t["file"] for t in manifest["tests"]}))


def test_leaderboard_publishes_visible_recorded_metrics_only(tmp_path, suite, manifest):
    results = results_of(tmp_path, suite, manifest, submission(tmp_path / "sub", confidence="0.8125"),
                         board=("default", "loss", "secret metric"))
    # LFW accuracy was not recorded (this suite has no such test): left out, not shown as 0.
    # The hidden test's metric is never published; "loss" is lower-is-better.
    assert results["leaderboard"] == [{"name": "GAN judge confidence", "value": 0.8125, "order": "desc"},
                                      {"name": "loss", "value": 0.25, "order": "asc"}]


def test_leaderboard_ignores_a_metric_its_test_did_not_reach(tmp_path, suite, manifest):
    broken = "def value():\n    return 42\n"  # no confidence(): the gan test fails before recording it
    results = results_of(tmp_path, suite, manifest, submission(tmp_path / "sub", gan=broken), board=("default",))
    assert "leaderboard" not in results


def test_cli_leaderboard_option(tmp_path, suite, monkeypatch, capsys):
    from autograder.__main__ import main
    monkeypatch.setattr(grader, "suite_remote_problems", lambda manifest: frozenset(PROBLEMS))
    out = tmp_path / "r.json"
    code = main(["grade", str(submission(tmp_path / "sub", confidence="0.5")), "-o", str(out), "--tests", str(suite),
                 "--leaderboard", "judge mean confidence"])
    assert code == 0, capsys.readouterr().err
    results = json.loads(out.read_text())
    assert results["leaderboard"] == [{"name": "GAN judge confidence", "value": 0.5, "order": "desc"}]


# --- the pieces -------------------------------------------------------------------------------------

def test_read_metrics_keeps_only_well_formed_records_of_this_problems_tests(tmp_path):
    specs = {"test_gan.py::test_value": {"visibility": "visible"},
             "hidden/test_gan_hidden.py::test_secret": {"visibility": "after_due_date", "hidden": True}}
    good = {"test": "test_gan.py::test_value", "name": "judge mean confidence", "value": 0.7,
            "higher_is_better": True}
    lines = [json.dumps(good),
             json.dumps({**good, "test": "test_cnn.py::test_value"}),       # another problem's test
             json.dumps({**good, "value": "0.99"}),                          # not a number
             json.dumps({**good, "value": True}),
             json.dumps({**good, "name": "x" * 1000}),
             "NaN", "[1, 2]", "{not json",
             '{"test": "test_gan.py::test_value", "name": "n", "value": Infinity}',
             json.dumps({**good, "test": "hidden/test_gan_hidden.py::test_secret", "value": 0.9})]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records = leaderboard.read_metrics(path, specs)
    assert [(r["nodeid"], r["value"], r["visible"]) for r in records] == [
        ("test_gan.py::test_value", 0.7, True), ("hidden/test_gan_hidden.py::test_secret", 0.9, False)]
    assert leaderboard.read_metrics(tmp_path / "missing.jsonl", specs) == []
    path.write_text(json.dumps(good) + "\n" + "x" * (2 * leaderboard.MAX_METRICS_BYTES))
    assert len(leaderboard.read_metrics(path, specs)) == 1  # a huge file is read only so far


def test_the_real_tests_record_the_default_leaderboard_metrics_in_visible_tests():
    """If a test renames its metric, the default leaderboard would silently go empty."""
    for name in leaderboard.DEFAULT_BOARD:
        visible = [p.name for p in (REPO_ROOT / "tests").glob("test_*.py") if f'"{name}"' in p.read_text()]
        assert visible, f"no visible test calls record_metric({name!r}, ...)"


def test_fenced_text_cannot_break_out_of_its_code_block():
    text = "gan.py: ``` \n| forged | table |\n```````\n<img src=x onerror=alert(1)>"
    block = fenced(text)
    fence = block.splitlines()[0].removesuffix("text")
    assert set(fence) == {"`"} and len(fence) == 8 and block.endswith("\n" + fence)
    assert fence not in text  # nothing inside closes it


BASE = {"score": 1.0, "execution_time": 1, "output": "", "stdout_visibility": "hidden",
        "tests": [{"name": "t", "number": "1.1", "score": 1.0, "max_score": 1.0, "status": "passed", "output": "",
                   "visibility": "visible", "tags": []}]}


@pytest.mark.parametrize("change, message", [
    ({"output_format": "markdown"}, "'output_format' 'markdown' is not one of"),
    ({"test_output_format": "rtf"}, "'test_output_format'"),
    ({"test_name_format": 3}, "'test_name_format'"),
    ({"visibility": "sometimes"}, "top-level visibility"),
    ({"stdout_visibility": "loud"}, "stdout_visibility"),
    ({"extra_data": [1]}, "'extra_data' is not a JSON object"),
    ({"leaderboard": {"name": "a"}}, "'leaderboard' is not a list"),
    ({"leaderboard": ["a"]}, "leaderboard[0] is not a JSON object"),
    ({"leaderboard": [{"value": 1}]}, "leaderboard[0] 'name'"),
    ({"leaderboard": [{"name": "a", "value": None}]}, "leaderboard[0] 'value'"),
    ({"leaderboard": [{"name": "a", "value": True}]}, "leaderboard[0] 'value'"),
    ({"leaderboard": [{"name": "a", "value": float("nan")}]}, "not finite"),
    ({"leaderboard": [{"name": "a", "value": 1, "order": "up"}]}, "order 'up'"),
    ({"leaderboard": [{"name": "a", "value": 1}, {"name": "a", "value": 2}]}, "repeats"),
    ({"leaderboard": [{"name": "a", "value": 1, "rank": 3}]}, "unknown keys ['rank']"),
    ({"tests": [{**BASE["tests"][0], "output_format": "pdf"}]}, "tests[0] output_format 'pdf'"),
    ({"tests": [{**BASE["tests"][0], "name_format": "pdf"}]}, "tests[0] name_format"),
    ({"tests": [{**BASE["tests"][0], "extra_data": "x"}]}, "tests[0] 'extra_data'"),
    ({"tests": ["not a test"], "score": 0}, "tests[0] is not a JSON object"),
])
def test_validate_checks_the_optional_fields(change, message):
    assert schema_errors(BASE) == []
    problems = schema_errors({**BASE, **change})
    assert any(message in p for p in problems), problems


def test_validate_accepts_every_documented_format_and_a_full_leaderboard():
    for fmt in OUTPUT_FORMATS:
        assert schema_errors({**BASE, "output_format": fmt, "test_output_format": fmt, "test_name_format": fmt}) == []
    board = [{"name": "Accuracy", "value": 0.926}, {"name": "Time", "value": 15.1, "order": "asc"},
             {"name": "Stars", "value": "*****"}]
    assert schema_errors({**BASE, "leaderboard": board, "extra_data": {"seed": 0}, "visibility": "after_due_date"}) == []


def test_board_of_and_entries():
    assert leaderboard.board_of(()) == {}
    assert leaderboard.board_of(["default", "loss"]) == {**leaderboard.DEFAULT_BOARD, "loss": "loss"}
    metrics = [{"name": "loss", "value": 2.0, "higher_is_better": False, "visible": True},
               {"name": "loss", "value": 1.23456, "higher_is_better": False, "visible": True}]
    assert leaderboard.entries(metrics, {"loss": "Loss"}) == [{"name": "Loss", "value": 1.2346, "order": "asc"}]
