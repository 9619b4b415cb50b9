"""The grader (autograder.grade) on small synthetic graded test folders: scoring, isolation, bad input.

These do not depend on the real tests: each builds a four-problem suite in a temporary folder
(25 points per problem: 10 for test_value, 10 of partial credit, 5 hidden; 5 points of extra credit
in gan's hidden file), whose student modules need no torch, so a grade takes seconds. The bad
behaviours are injected into gan.py; the other three problems must keep their 25 points each.
One module, though long: the suite it builds and its helpers are what the other grader tests import.
"""
import csv
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder import grade as grader
from autograder.grade import GradeError, SubmissionError, sandbox
from autograder.grade.results import MAX_TEST_OUTPUT, schema_errors
from hw3.problems import NAMES

# Each test grades whole submissions in subprocesses: more than pytest's default 60 s under load.
pytestmark = pytest.mark.timeout(600)

PROBLEMS = NAMES
GOOD = "def value():\n    return 42\n\ndef fraction():\n    return 1.0\n\ndef hidden():\n    return 'ok'\n\n" \
       "def extra():\n    return 1\n"


def conftest_of(fixture_body: str, imports: str = "") -> str:
    """The synthetic suite's conftest.py: one fixture per problem whose body is ``fixture_body``."""
    return f'''
import pytest
from hw3 import impl
{imports}

@pytest.fixture
def set_score():
    return None

def student_module(name):
    @pytest.fixture(scope="session", name=name)
    def fixture():
{textwrap.indent(textwrap.dedent(fixture_body).strip(), " " * 8)}
    return fixture

cnn = student_module("cnn")
contrastive = student_module("contrastive")
cvae = student_module("cvae")
gan = student_module("gan")
'''


CONFTEST = conftest_of("return impl.load(name)")  # the student's file in the test process
VISIBLE = '''
from gradescope_utils.autograder_utils.decorators import number, partial_credit, visibility, weight

@weight(10)
@number("{p}.1")
@visibility("visible")
def test_value({m}):
    """value() is 42."""
    assert {m}.value() == 42, f"expected 42, got {{{m}.value()}}"

@partial_credit(10)
@number("{p}.2")
def test_fraction({m}, set_score):
    done = {m}.fraction()
    set_score(10 * done)
    assert done >= 1.0, f"only {{done:.0%}} done"
'''
HIDDEN = '''
import pytest
from gradescope_utils.autograder_utils.decorators import number, visibility, weight

@weight(2.5)
@number("{p}.20")
@visibility("after_due_date")
@pytest.mark.parametrize("case", [1, 2])
def test_hidden({m}, case):
    assert {m}.hidden() == "ok"
'''
EXTRA = '''
@weight(5)
@number("4.21")
@visibility("after_due_date")
@pytest.mark.extra_credit
def test_extra(gan):
    assert gan.extra() == 1
'''


def write_suite(folder: Path, timeout: int = 3) -> Path:
    tests = folder / "tests"
    (tests / "hidden").mkdir(parents=True)
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "pytest.ini").write_text(f"[pytest]\ntimeout = {timeout}\nmarkers =\n    extra_credit: extra\n"
                                      f"    training: slow\n")
    for p, m in enumerate(PROBLEMS, start=1):
        (tests / f"test_{m}.py").write_text(VISIBLE.format(p=p, m=m))
        (tests / "hidden" / f"test_{m}_hidden.py").write_text(HIDDEN.format(p=p, m=m) + (EXTRA if m == "gan" else ""))
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tests


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    # Under /tmp with open permissions: sandboxed processes run as other uids.
    import tempfile
    root = Path(tempfile.mkdtemp(prefix="hw3-test-suite-"))
    root.chmod(0o755)
    yield write_suite(root)
    import shutil
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def manifest(suite):
    return grader.collect_manifest(suite)


def submission(folder: Path, gan: str = GOOD, **others) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for m in PROBLEMS:
        source = gan if m == "gan" else others.get(m, GOOD)
        if source is not None:
            (folder / f"{m}.py").write_text(textwrap.dedent(source))
    return folder


def points(report) -> dict:
    return report.points()


def grade(path, suite, manifest, output=None, **options):
    report = grader.grade(path, output, tests_dir=suite, manifest=manifest, **options)
    if output is not None:
        results = json.loads(Path(output).read_text())
        assert schema_errors(results) == [], schema_errors(results)
        assert results["score"] == pytest.approx(report.score)
    return report


# --- scoring --------------------------------------------------------------------------------------

def test_manifest_lists_problems_weights_and_visibility(manifest):
    tests = {t["nodeid"]: t for t in manifest["tests"]}
    assert len(tests) == 4 * 4 + 1
    assert tests["test_gan.py::test_value"]["weight"] == 10
    assert tests["hidden/test_gan_hidden.py::test_hidden[1]"]["visibility"] == "after_due_date"
    assert tests["hidden/test_gan_hidden.py::test_extra"]["extra_credit"]
    assert {t["problem"] for t in tests.values()} == set(PROBLEMS)
    assert grader.check_weights(manifest) == []


def test_full_marks_and_the_results_file(tmp_path, suite, manifest):
    out = tmp_path / "results.json"
    report = grade(submission(tmp_path / "sub"), suite, manifest, out)
    assert points(report) == {"cnn": 25, "contrastive": 25, "cvae": 25, "gan": 25, "extra_credit": 5, "total": 105}
    results = json.loads(out.read_text())
    assert set(results) == {"score", "execution_time", "output", "output_format", "stdout_visibility",
                            "extra_data", "tests"}  # no leaderboard unless one is asked for
    assert len(results["tests"]) == 17
    test = next(t for t in results["tests"] if t["name"].startswith("test_value") and "gan" in t["tags"])
    assert test == {"name": "test_value: value() is 42.", "number": "4.1", "score": 10.0, "max_score": 10.0,
                    "status": "passed", "output": "", "visibility": "visible", "tags": ["gan"]}
    hidden = [t for t in results["tests"] if "hidden" in t["tags"]]
    assert len(hidden) == 9 and all(t["visibility"] == "after_due_date" for t in hidden)
    assert {t["number"] for t in hidden if "cnn" in t["tags"]} == {"1.20.1", "1.20.2"}  # parametrized cases
    extra = [t for t in results["tests"] if "extra_credit" in t["tags"]]
    assert [t["max_score"] for t in extra] == [5.0]
    # What students see at the top: visible tests only (hidden points are not revealed early).
    assert "80 / 80" in results["output"] and "105" not in results["output"]
    assert "hidden tests are graded too" in results["output"]


def test_missing_files_score_zero_with_a_message(tmp_path, suite, manifest):
    report = grade(submission(tmp_path / "sub", cnn=None, contrastive=None, cvae=None), suite, manifest,
                   tmp_path / "r.json")
    assert points(report) == {"cnn": 0, "contrastive": 0, "cvae": 0, "gan": 25, "extra_credit": 5, "total": 30}
    cnn_tests = [r for r in report.results if r.problem == "cnn"]
    assert all("cnn.py is missing from your submission" in r.output for r in cnn_tests)
    assert "cnn.py is missing" in report.student_output()


def test_partial_credit_is_honoured_and_clamped(tmp_path, suite, manifest):
    gan = GOOD.replace("return 1.0", "return 0.25")
    cnn = GOOD.replace("return 1.0", "return 7.0")        # set_score(70) on a 10-point test
    cvae = GOOD.replace("return 1.0", "return -1.0")      # set_score(-10)
    contrastive = GOOD.replace("return 1.0", "return float('nan')")
    report = grade(submission(tmp_path / "sub", gan, cnn=cnn, cvae=cvae, contrastive=contrastive), suite, manifest)
    by_problem = {r.problem: r for r in report.results if r.nodeid.endswith("test_fraction")}
    assert by_problem["gan"].score == 2.5 and by_problem["gan"].status == "failed"
    assert "only 25% done" in by_problem["gan"].output
    assert by_problem["cnn"].score == 10 and by_problem["cnn"].status == "passed"
    assert by_problem["cvae"].score == 0 and by_problem["contrastive"].score == 0


def test_starter_like_stubs_score_zero_and_say_why(tmp_path, suite, manifest):
    stub = "def value():\n    raise NotImplementedError('value is not implemented yet')\n" \
           "fraction = hidden = extra = value\n"
    report = grade(submission(tmp_path / "sub", stub, cnn=stub, contrastive=stub, cvae=stub), suite, manifest)
    assert report.score == 0
    assert all("NotImplementedError: value is not implemented yet" in r.output for r in report.results)
    # The student's file is named as they know it, not by the grader's private path.
    assert all("gan.py:2: in value" in r.output for r in report.results if r.problem == "gan")
    assert "/impl/" not in "".join(r.output for r in report.results)


def test_keyword_selects_tests(tmp_path, suite):
    report = grader.grade(submission(tmp_path / "sub"), tests_dir=suite, keyword="gan and not hidden")
    assert [r.nodeid for r in report.results] == ["test_gan.py::test_value", "test_gan.py::test_fraction"]
    assert report.score == 20


# --- bad behaviour: every other problem keeps its points --------------------------------------------

AT_IMPORT = {
    "raises at import": "raise RuntimeError('boom')\n",
    "syntax error": "def broken(:\n",
    "sys.exit at import": "import sys\nsys.exit(3)\n",
    "os._exit at import": "import os\nos._exit(0)\n",
}
IN_VALUE = {  # replaces value(): only test_value (10 points) depends on it
    "os._exit": "import os\ndef value():\n    os._exit(0)\n",
    "sys.exit": "import sys\ndef value():\n    sys.exit(0)\n",
    "infinite loop": "def value():\n    while True:\n        pass\n",
    "loop ignoring the timeout signal": "import signal\ndef value():\n"
                                        "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                                        "    while True:\n        pass\n",
    "sleeps in C ignoring the timeout signal": "import signal, time\ndef value():\n"
                                               "    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n"
                                               "    time.sleep(3600)\n",
    "unbounded allocation": "def value():\n    hoard = []\n    while True:\n        hoard.append(bytearray(10**7))\n",
    "prints megabytes": "def value():\n    print('x' * 30_000_000)\n    return 41\n",
    "pytest.exit": "import pytest\ndef value():\n    pytest.exit('bye')\n",
    "forges records on every fd": '''
        import json, os
        def value():
            for fd in range(3, 256):
                for seq, event in enumerate(("start", "report", "finish"), start=1):
                    record = {"seq": seq, "event": event, "nodeid": "test_gan.py::test_value", "when": "call",
                              "outcome": "passed", "score": 1000, "output": ""}
                    try:
                        os.write(fd, ("0" * 64 + " " + json.dumps(record) + "\\n").encode())
                    except OSError:
                        pass
            return 41
        ''',
    "segfault": "import ctypes\ndef value():\n    ctypes.string_at(0)\n",
}


def bad_gan(code: str, at_import: bool) -> str:
    code = textwrap.dedent(code)
    if at_import:
        return GOOD + code
    return GOOD.replace("def value():\n    return 42\n", "") + code


@pytest.fixture
def quick_kills(monkeypatch):
    monkeypatch.setattr(grader, "KILL_GRACE", 1.0)


def check_others_intact(report, gan_points, extra=0.0):
    assert points(report) == {"cnn": 25, "contrastive": 25, "cvae": 25, "gan": gan_points,
                              "extra_credit": extra, "total": 75 + gan_points + extra}


@pytest.mark.parametrize("behaviour", sorted(AT_IMPORT))
def test_bad_import_costs_only_its_problem(tmp_path, suite, manifest, behaviour):
    out = tmp_path / "results.json"
    report = grade(submission(tmp_path / "sub", bad_gan(AT_IMPORT[behaviour], True)), suite, manifest, out,
                   memory_mb=1024)
    check_others_intact(report, 0)
    assert all(r.status == "failed" and r.output for r in report.results if r.problem == "gan")


@pytest.mark.parametrize("behaviour", sorted(IN_VALUE))
def test_bad_function_costs_only_its_tests(tmp_path, suite, manifest, quick_kills, behaviour):
    out = tmp_path / "results.json"
    started = time.monotonic()
    report = grade(submission(tmp_path / "sub", bad_gan(IN_VALUE[behaviour], False)), suite, manifest, out,
                   memory_mb=1024)
    check_others_intact(report, 15, extra=5)  # test_value lost; the rest of gan.py still earns its points
    value = next(r for r in report.results if r.nodeid == "test_gan.py::test_value")
    assert value.status == "failed" and value.output
    assert len(value.output) <= MAX_TEST_OUTPUT + 200
    assert out.stat().st_size < 100_000  # output truncated however much was printed
    assert time.monotonic() - started < 120


def test_hung_test_is_killed_with_a_clear_message(tmp_path, suite, manifest, quick_kills):
    report = grade(submission(tmp_path / "sub", bad_gan(IN_VALUE["loop ignoring the timeout signal"], False)),
                   suite, manifest)
    value = next(r for r in report.results if r.nodeid == "test_gan.py::test_value")
    assert "Timed out" in value.output and "3 s limit" in value.output


def test_whole_run_time_limit_still_writes_results(tmp_path, suite, manifest):
    slow = "import time\ntime.sleep(3600)\n"  # at import, blocking; pytest-timeout would catch it at 3 s
    out = tmp_path / "results.json"
    started = time.monotonic()
    report = grade(submission(tmp_path / "sub", slow, cnn=slow, contrastive=slow, cvae=slow), suite, manifest, out,
                   time_limit=4)
    assert time.monotonic() - started < 60
    assert report.score == 0 and len(report.results) == 17


def test_student_cannot_overwrite_the_results_file(tmp_path, suite, manifest):
    out = tmp_path / "results.json"
    forged = json.dumps({"score": 1000, "tests": []})
    gan = GOOD + textwrap.dedent(f'''
        import os
        for path in [{str(out)!r}, "results.json", os.path.expanduser("~/results.json")]:
            try:
                with open(path, "w") as f:
                    f.write({forged!r})
            except OSError:
                pass
        ''')
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, out)
    assert json.loads(out.read_text())["score"] == 105 == report.score


@pytest.mark.parametrize("isolation", ["none", "uid", "namespaces"])
def test_daemons_are_killed(tmp_path, suite, manifest, isolation):
    try:
        sandbox.choose(isolation)
    except sandbox.IsolationError as error:   # uid: refused where a private uid cannot read this Python
        pytest.skip(f"no {isolation} sandbox here: {error}")
    marker = tmp_path / "daemon-was-here"
    tmp_path.chmod(0o777)  # so a daemon running under a private uid could write here if it survived
    gan = GOOD + textwrap.dedent(f'''
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(3)
                open({str(marker)!r}, "w").write("alive")
            os._exit(0)
        ''')
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, isolation=isolation)
    assert report.score == 105
    time.sleep(4)
    assert not marker.exists(), "a process the student's code started outlived the grading"


# --- isolation that needs a private uid (the grader running as root, as on Gradescope) ---------------

needs_private_uid = pytest.mark.skipif(not sandbox.is_root(), reason="needs root (a private uid per test process)")


@needs_private_uid
def test_student_cannot_kill_the_grader(tmp_path, suite, manifest):
    gan = GOOD + "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n    pass\n"
    assert grade(submission(tmp_path / "sub", gan), suite, manifest).score == 105


@needs_private_uid
def test_problems_cannot_tamper_with_tests_or_each_other(tmp_path, suite, manifest):
    """cnn.py tries to rewrite the tests and to replace the (wrong) gan.py with a right one, from a
    daemon that waits for it; the tests stay intact and gan.py keeps its own score."""
    cnn = GOOD + textwrap.dedent(f'''
        import glob, os, time
        for path in glob.glob({str(suite)!r} + "/**/*.py", recursive=True):
            try:
                with open(path, "a") as f:
                    f.write("\\nassert False\\n")
            except OSError:
                pass
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                for _ in range(300):
                    for path in glob.glob("/tmp/hw3-grade-*/*/impl/gan.py"):
                        try:
                            open(path, "w").write({GOOD!r})
                        except OSError:
                            pass
                    time.sleep(0.02)
            os._exit(0)
        ''')
    gan = bad_gan("def value():\n    return 41\n", False)
    before = {p: p.read_text() for p in suite.rglob("*.py")}
    report = grade(submission(tmp_path / "sub", gan, cnn=cnn), suite, manifest)
    assert {p: p.read_text() for p in suite.rglob("*.py")} == before
    check_others_intact(report, 15, extra=5)


@needs_private_uid
def test_fork_bomb_is_capped(tmp_path, suite, manifest, monkeypatch, quick_kills):
    monkeypatch.setattr(sandbox, "PROCESSES", 48)
    gan = bad_gan('''
        import os, time
        def value():
            children = []
            for _ in range(200):
                pid = os.fork()
                if pid == 0:
                    time.sleep(3600)
                    os._exit(0)
                children.append(pid)
            return 42
        ''', False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    check_others_intact(report, 15, extra=5)


@needs_private_uid
def test_other_problems_files_are_not_visible(tmp_path, suite, manifest):
    """Each problem's process sees only its own file: gan.py cannot load cnn.py."""
    gan = bad_gan('''
        from hw3 import impl
        def value():
            return impl.load("cnn").value()
        ''', False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    value = next(r for r in report.results if r.nodeid == "test_gan.py::test_value")
    assert value.status == "failed" and "has no cnn.py" in value.output


def test_records_for_other_problems_are_ignored(tmp_path, suite, manifest):
    """Even through the grader's own channel (reached in-process), cnn.py cannot report gan's tests."""
    cnn = GOOD + textwrap.dedent('''
        import gc
        for obj in gc.get_objects():
            if type(obj).__name__ == "Channel" and hasattr(obj, "send"):
                for nodeid in ("test_gan.py::test_value", "hidden/test_gan_hidden.py::test_extra"):
                    obj.send("start", nodeid=nodeid)
                    obj.send("report", nodeid=nodeid, when="call", outcome="passed", output="", score=None)
                    obj.send("finish", nodeid=nodeid)
        ''')
    gan = bad_gan("def value():\n    return 41\n", False).replace("return 1\n", "return 0\n")
    report = grade(submission(tmp_path / "sub", gan, cnn=cnn), suite, manifest)
    assert points(report)["gan"] == 15 and points(report)["extra_credit"] == 0


# --- submissions: layouts and bad input ---------------------------------------------------------------

def test_zip_with_files_in_one_folder(tmp_path, suite, manifest):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for m in PROBLEMS:
            z.writestr(f"alice_hw3/starter/{m}.py", GOOD)
        z.writestr("__MACOSX/alice_hw3/._gan.py", "junk")
    report = grade(archive, suite, manifest)
    assert report.score == 105 and report.submission.folder == "alice_hw3/starter"


def test_files_in_two_folders_grades_the_shallowest(tmp_path, suite, manifest):
    sub = submission(tmp_path / "sub", cnn=None, contrastive=None, cvae=None)
    submission(sub / "old", "def value():\n    return 0\n")
    report = grade(sub, suite, manifest)
    assert points(report)["gan"] == 25 and any("more than one folder" in n for n in report.notes)


def test_symlinks_are_not_followed(tmp_path, suite, manifest):
    outside = submission(tmp_path / "outside")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "gan.py").symlink_to(outside / "gan.py")
    report = grade(sub, suite, manifest)
    assert report.score == 0 and "gan.py is missing" in report.student_output()


def test_unsafe_zip_member_is_skipped_and_the_rest_graded(tmp_path, suite, manifest):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("gan.py", GOOD)
        z.writestr("../../escape.py", "x = 1\n")
    report = grade(archive, suite, manifest, tmp_path / "results.json")
    assert points(report)["gan"] == 25
    assert any("../../escape.py" in note and "outside the archive" in note for note in report.notes)
    assert not (tmp_path.parent / "escape.py").exists()


@pytest.mark.parametrize("case", ["missing", "not a zip"])
def test_bad_submission_path(tmp_path, suite, manifest, case):
    path = tmp_path / "nope"
    if case == "not a zip":
        path.write_text("hello")
    with pytest.raises(SubmissionError, match="does not exist" if case == "missing" else "neither a folder nor"):
        grader.grade(path, tmp_path / "r.json", tests_dir=suite, manifest=manifest)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("case", ["missing folder", "a folder", "under a file"])
def test_unwritable_output_fails_before_grading(tmp_path, suite, case):
    output = {"missing folder": tmp_path / "no" / "r.json", "a folder": tmp_path,
              "under a file": tmp_path / "file" / "r.json"}[case]
    (tmp_path / "file").write_text("")
    with pytest.raises(GradeError, match="cannot write results"):
        grader.grade(submission(tmp_path / "sub"), output, tests_dir=suite)


def test_oversized_student_file_is_not_graded(tmp_path, suite, manifest):
    sub = submission(tmp_path / "sub")
    (sub / "gan.py").write_text(GOOD + "#" * 3_000_000)
    report = grade(sub, suite, manifest)
    assert points(report)["gan"] == 0 and any("over the" in n for n in report.notes)


def test_broken_tests_folder_is_a_grader_error(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_gan.py").write_text("import nonexistent_module\n")
    with pytest.raises(GradeError, match="collection errors"):
        grader.collect_manifest(tests)
    with pytest.raises(GradeError, match="does not exist"):
        grader.collect_manifest(tmp_path / "nope")


# --- command line, batch and the in-process plugin ----------------------------------------------------

def run_cli(*args, cwd=REPO_ROOT):
    env = {**{k: v for k, v in os.environ.items() if k != "HW3_IMPL"}, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)


def test_cli_grade_prints_the_table_and_writes_results(tmp_path, suite):
    run = run_cli("grade", submission(tmp_path / "sub", cnn=None), "-o", tmp_path / "r.json", "--tests", suite)
    assert run.returncode == 0, run.stderr
    assert re.search(r"cnn\s+0 / 25", run.stdout) and "Failed tests (4)" in run.stdout
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 80


@pytest.mark.parametrize("args, message", [
    (["nope"], "does not exist"),
    (["{sub}", "-o", "{tmp}/missing/r.json"], "folder {tmp}/missing does not exist"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, suite, args, message):
    sub = submission(tmp_path / "sub")
    args = [a.format(sub=sub, tmp=tmp_path) for a in args]
    run = run_cli("grade", *args, "--tests", suite, cwd=tmp_path)
    assert run.returncode == 1 and run.stderr.startswith("error:") and message.format(tmp=tmp_path) in run.stderr
    assert "Traceback" not in run.stderr


def test_grade_all_writes_a_gradebook(tmp_path, suite):
    folder = tmp_path / "submissions"
    submission(folder / "alice")
    submission(folder / "bob", "raise SystemExit\n", cnn=None)
    with zipfile.ZipFile(folder / "carol.zip", "w") as z:
        z.writestr("hw3/gan.py", GOOD)
    with zipfile.ZipFile(folder / "mallory.zip", "w") as z:
        z.writestr("../gan.py", GOOD)
    (folder / "notes.txt").write_text("not a submission")
    out = tmp_path / "grades"
    run = run_cli("grade-all", folder, "-o", out, "-j", "2", "--tests", suite)
    assert run.returncode == 0, run.stderr
    lines = list(csv.reader((out / "gradebook.csv").read_text().splitlines()))
    assert lines[0] == ["student", "name", "email", "sid", "cnn", "contrastive", "cvae", "gan", "extra_credit",
                        "total", "late", "status", "regrade", "note"]
    rows = {line[0]: line[4:] for line in lines[1:]}
    assert sorted(rows) == ["alice", "bob", "carol", "mallory"]
    assert rows["alice"][:8] == ["25.0", "25.0", "25.0", "25.0", "5.0", "105.0", "", "graded"]
    assert rows["bob"][:6] == ["0.0", "25.0", "25.0", "0.0", "0.0", "50.0"]
    assert rows["carol"][3:6] == ["25.0", "5.0", "30.0"]
    assert rows["mallory"][5] == "0.0" and rows["mallory"][7] == "graded"  # its only member pointed outside
    assert "outside the archive" in json.loads((out / "results" / "mallory.json").read_text())["output"]
    for student in rows:
        assert schema_errors(json.loads((out / "results" / f"{student}.json").read_text())) == []


def test_grade_all_bad_input(tmp_path, suite):
    run = run_cli("grade-all", tmp_path / "nope", "--tests", suite)
    assert run.returncode == 1 and "does not exist" in run.stderr
    (tmp_path / "empty").mkdir()
    run = run_cli("grade-all", tmp_path / "empty", "--tests", suite)
    assert run.returncode == 1 and "holds no submissions" in run.stderr


def test_plugin_in_process_results(tmp_path, suite):
    impl = submission(tmp_path / "sub", GOOD.replace("return 1.0", "return 0.5"))
    out = tmp_path / "r.json"
    env = {**{k: v for k, v in os.environ.items() if k != "HW3_IMPL"}, "HW3_IMPL": str(impl),
           "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "autograder.grade.plugin",
                          "-p", "no:cacheprovider", "--gradescope-results", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 1  # the partial-credit tests fail
    results = json.loads(out.read_text())
    assert schema_errors(results) == [] and results["score"] == 100  # gan's partial credit: 5 of 10
    assert "points (hw3 autograder)" in run.stdout and re.search(r"gan\s+20 / 25", run.stdout)
