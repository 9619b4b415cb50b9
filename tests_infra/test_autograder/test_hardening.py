"""The grader against hostile submissions (issue 13): each case is a submission that once crashed the
grader, outlived it, overran its limits, ran as root, read another student or forged the console; each
test asserts the outcome: a valid results file, the other problems' points intact, the time limit
held, nothing left running or written afterwards, and an unforgeable console table.

Built on the synthetic four-problem suite of test_grade.py (25 points a problem, 5 extra). Long as a
catalogue is: each case is a few lines beside the others it resembles.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from autograder import REPO_ROOT
from autograder import grade as grader
from autograder.grade import GradeError, batch, sandbox
from autograder.grade.results import safe_text, schema_errors
from test_grade import (GOOD, bad_gan, check_others_intact, grade, manifest, points,  # noqa: F401
                                   run_cli, submission, suite)

pytestmark = pytest.mark.timeout(600)
needs_root = pytest.mark.skipif(not sandbox.is_root(), reason="needs root (private uids, namespaces as root)")


def available(mode: str) -> bool:
    try:
        return sandbox.choose(mode).mode == mode
    except sandbox.IsolationError:
        return False


# uid mode is refused where a private uid cannot read this Python (pyenv under /root, as here)
ISOLATIONS = [pytest.param(mode, marks=pytest.mark.skipif(not available(mode), reason=f"no {mode} sandbox here"))
              for mode in ("namespaces", "uid")]
needs_namespaces = pytest.mark.skipif(not available("namespaces"), reason="needs bubblewrap namespaces")

# In-process access to the plugin's authenticated channel (as student code in the test process has it).
CHANNEL = '''
import gc
def channel():
    return next(o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "send"))
'''


def value_of(report, problem="gan"):
    return next(r for r in report.results if r.problem == problem and r.nodeid.endswith("test_value"))


def leftover_processes(marker: str) -> list:
    """Host processes whose command line holds ``marker`` (the grader must leave none)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


# --- 1. nothing a test process sends can crash the grader ---------------------------------------------

FORGED_RECORDS = {
    "non-ASCII MAC": CHANNEL + '''
import os
def value():
    c = channel()
    os.write(c._out, ("\\u00e9" * 64 + ' {"seq": 1}\\n').encode())
    return 42
''',
    "score of 10**400 on the test function": '''
class Done(float):
    def __rmul__(self, other):   # the test's set_score(10 * done) stores 10**400 on the test function
        return 10 ** 400
def fraction():
    return Done(1.0)
''',
    "authenticated records with bad fields": CHANNEL + '''
def value():
    c = channel()
    c.send("report", nodeid=["test_gan.py::test_value"], when="call", outcome="passed", output="", score=None)
    c.send("report", nodeid="test_gan.py::test_value", when="call", outcome="passed", output=[1], score=10 ** 400)
    c.send("report", nodeid="test_gan.py::test_value", when="call", outcome="passed", output="", score=float("nan"))
    c.send("report", nodeid="test_gan.py::test_value", when={"a": 1}, outcome=None, output="", score="7")
    c.send("done", maxrss_mb="lots", vmpeak_mb=[1])
    c.send("finish", nodeid=None)
    return 41
''',
    "deeply nested JSON": CHANNEL + '''
def value():
    c = channel()
    c.send("report", nodeid="test_gan.py::test_value", when="call", outcome="passed", score=None,
           output=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])
    import os, hmac, hashlib
    payload = ("[" * 100000 + "]" * 100000).encode()
    os.write(c._out, hmac.new(c._key, payload, hashlib.sha256).hexdigest().encode() + b" " + payload + b"\\n")
    return 41
''',
}


@pytest.mark.parametrize("case", sorted(FORGED_RECORDS))
def test_malformed_records_never_crash_the_grader(tmp_path, suite, manifest, case):
    out = tmp_path / "results.json"
    gan = GOOD.replace("def value():\n    return 42\n", "").replace("def fraction():\n    return 1.0\n", "") \
        + textwrap.dedent(FORGED_RECORDS[case])
    for name in ("value", "fraction"):
        if f"def {name}()" not in gan:
            gan += {"value": "def value():\n    return 42\n", "fraction": "def fraction():\n    return 1.0\n"}[name]
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, out)
    assert points(report)["cnn"] == points(report)["cvae"] == points(report)["contrastive"] == 25
    fraction = next(r for r in report.results if r.problem == "gan" and r.nodeid.endswith("test_fraction"))
    assert fraction.score <= 10  # never more than the weight, whatever was set
    if "41" in FORGED_RECORDS[case]:
        assert value_of(report).score == 0  # the forged "passed" reports were ignored


def test_a_lone_surrogate_in_a_message_keeps_the_results(tmp_path, suite):
    gan = bad_gan("def value():\n    raise AssertionError('bad \\udc80 byte \\ud800')\n", False)
    out = tmp_path / "r.json"
    run = run_cli("grade", submission(tmp_path / "sub", gan), "-o", out, "--tests", suite)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert schema_errors(results) == [] and results["score"] == 95
    assert "\\udc80" in json.dumps(results)  # shown escaped, not dropped


def test_a_grader_fault_costs_one_problem_flagged_for_regrade(tmp_path, suite, manifest, monkeypatch):
    real = grader.run_problem

    def broken(problem, *args, **kwargs):
        if problem == "cvae":
            raise KeyError("a grader bug")
        return real(problem, *args, **kwargs)
    monkeypatch.setattr(grader, "run_problem", broken)
    out = tmp_path / "r.json"
    report = grade(submission(tmp_path / "sub"), suite, manifest, out)
    assert points(report) == {"cnn": 25, "contrastive": 25, "cvae": 0, "gan": 25, "extra_credit": 5, "total": 80}
    cvae = [t for t in json.loads(out.read_text())["tests"] if t["tags"][0] == "cvae"]
    assert cvae and all("regrade" in t["tags"] for t in cvae)
    assert "REGRADE" in report.table() and any("GRADER ERROR KeyError" in line for line in report.log)


# --- 2. nothing outlives grading, nothing is left behind ----------------------------------------------

@needs_root
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_deep_process_chain_dies_with_its_test(tmp_path, suite, manifest, isolation):
    """30 generations of processes, each orphaned by its parent; the deepest then keeps stopping every
    process it may signal. Grading still finishes in time and none of them survives."""
    marker = f"hw3-chain-{os.getpid()}-{time.monotonic_ns()}"
    stopper = "import os, signal, time\ntime.sleep(2)\nwhile True:\n    time.sleep(0.01)\n    try:\n" \
              "        os.kill(-1, signal.SIGSTOP)\n    except OSError:\n        pass\n"
    gan = bad_gan(f'''
        import os, sys
        def value():
            if os.fork() != 0:
                return 42                      # the test process goes on
            os.setsid()
            for depth in range(30):
                if os.fork() != 0:
                    os._exit(0)                # each generation orphans the next
            os.execv(sys.executable, [sys.executable, "-c", {stopper!r}, "{marker}"])
        ''', False)
    started = time.monotonic()
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, tmp_path / "r.json", isolation=isolation)
    assert time.monotonic() - started < 120
    assert points(report)["cnn"] == points(report)["cvae"] == 25
    time.sleep(1)
    assert leftover_processes(marker) == [], "a process the student's code started outlived the grading"


@needs_root
@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_scratch_files_and_shared_memory_do_not_persist(tmp_path, suite, manifest, isolation):
    tag = f"hw3-left-{os.getpid()}-{isolation}"
    gan = GOOD + textwrap.dedent(f'''
        import os
        for folder in ("/tmp", "/var/tmp", "/dev/shm"):
            try:
                with open(os.path.join(folder, "{tag}"), "wb") as f:
                    f.write(b"x" * (8 << 20))
                os.makedirs(os.path.join(folder, "{tag}-dir", "deeper"), exist_ok=True)
            except OSError:
                pass
        ''')
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, isolation=isolation)
    assert report.score == 105
    left = [f"{folder}/{name}" for folder in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(folder)
            for name in os.listdir(folder) if name.startswith(tag)]
    assert left == []


# --- 3. the whole-run limit holds, and paths are cleaned in linear time ---------------------------------

def test_path_cleaning_is_linear():
    text = "../" * 400_000 + "x/0123abcd/impl/gan.py" + " ../a/0123abcd/impl/cnn.py:3 " * 1000
    started = time.perf_counter()
    cleaned = grader.strip_private_paths(text, "0123abcd/impl/")
    assert time.perf_counter() - started < 2.0
    assert cleaned.startswith("gan.py") and "impl/" not in cleaned and cleaned.count("cnn.py:3") == 1000


def test_a_megabyte_of_dot_dot_slash_costs_no_time(tmp_path, suite, manifest):
    gan = bad_gan("def value():\n    raise AssertionError('../' * 400_000 + 'gan.py')\n", False)
    started = time.monotonic()
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, tmp_path / "r.json", time_limit=60)
    assert time.monotonic() - started < 45
    check_others_intact(report, 15, extra=5)


def test_the_whole_run_limit_holds_and_flags_regrade(tmp_path, suite, manifest):
    """Every problem hangs at import: the run stops within its limit, and the tests the grader's own
    limit stopped are flagged for regrade (not the student's timeouts)."""
    slow = "import time\ntime.sleep(3600)\n"
    out = tmp_path / "r.json"
    started = time.monotonic()
    report = grade(submission(tmp_path / "sub", slow, cnn=slow, contrastive=slow, cvae=slow), suite, manifest, out,
                   time_limit=20)
    assert time.monotonic() - started < 20 + 5
    assert report.score == 0 and all(r.regrade for r in report.results)
    assert all("regrade" in t["tags"] for t in json.loads(out.read_text())["tests"])


def test_results_are_written_as_each_problem_finishes(tmp_path, suite):
    """Killed from outside (Gradescope's timeout) after cnn finished, the results file is still valid
    and keeps cnn's points; the rest are flagged for regrade."""
    out = tmp_path / "r.json"
    slow = "import time\ntime.sleep(3600)\n"
    env = {**{k: v for k, v in os.environ.items() if k != "HW3_IMPL"}, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(submission(tmp_path / "sub", slow)),
                             "-o", str(out), "--tests", str(suite)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            results = json.loads(out.read_text()) if out.is_file() else {"tests": []}
            if sum(t["score"] for t in results["tests"] if t["tags"][0] == "cvae") == 25:
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    results = json.loads(out.read_text())
    assert schema_errors(results) == []
    by_problem = {p: sum(t["score"] for t in results["tests"] if t["tags"][0] == p) for p in ("cnn", "gan")}
    assert by_problem == {"cnn": 25, "gan": 0}
    assert all("regrade" in t["tags"] for t in results["tests"] if t["tags"][0] == "gan")


def test_a_slow_machine_costs_correct_code_nothing(tmp_path, suite, manifest):
    """A test whose wall time overruns its 3 s budget while using little CPU (what a busy machine does
    to correct code) keeps its points: budgets are CPU time, the wall clock only a generous backstop."""
    gan = bad_gan("import time\ndef value():\n    time.sleep(6)\n    return 42\n", False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    assert value_of(report).score == 10, value_of(report).output


def test_cpu_bound_overruns_are_still_timeouts(tmp_path, suite, manifest, monkeypatch):
    monkeypatch.setattr(grader, "KILL_GRACE", 1.0)
    gan = bad_gan("def value():\n    while True:\n        pass\n", False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    value = value_of(report)
    assert value.score == 0 and "Timed out" in value.output and "CPU seconds" in value.output
    assert not value.regrade


# --- 4. fail closed ---------------------------------------------------------------------------------

@needs_root
@pytest.mark.parametrize("isolation", ["auto", "uid"])
def test_a_lock_folder_not_owned_by_root_refuses_to_grade(tmp_path, suite, manifest, monkeypatch, isolation):
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    os.chown(locks, 12345, 12345)
    monkeypatch.setattr(sandbox, "LOCK_DIR", locks)
    monkeypatch.setattr(sandbox, "_CHOSEN", {})
    marker = tmp_path / "ran"
    gan = GOOD + f"open({str(marker)!r}, 'w').write(str(__import__('os').getuid()))\n"
    with pytest.raises(GradeError, match="owned by root"):
        grader.grade(submission(tmp_path / "sub", gan), tmp_path / "r.json", tests_dir=suite, manifest=manifest,
                     isolation=isolation)
    assert not marker.exists(), "student code ran although the sandbox could not be set up"


@needs_root
def test_without_bubblewrap_root_refuses_unless_told(tmp_path, suite, manifest, monkeypatch):
    monkeypatch.setattr(sandbox, "_CHOSEN", {})
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(GradeError, match="bubblewrap"):
        grader.grade(submission(tmp_path / "sub"), tests_dir=suite, manifest=manifest)


# --- 5. grade-all: no student reads another, or the staff files ----------------------------------------

@needs_root
def test_grade_all_students_cannot_see_each_other_or_the_staff_files(tmp_path, suite):
    folder = tmp_path / "submissions"
    out = tmp_path / "grades"
    bob = submission(folder / "bob-the-target")
    listener = socket.create_server(("127.0.0.1", 0))   # on this machine's loopback only
    port = listener.getsockname()[1]
    probes = {
        "bob's submission": f"open({str(bob / 'gan.py')!r}).read()",
        "bob's command line": "[open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit() "
                              "and 'bob-the-target' in open(f'/proc/{p}/cmdline').read()][0]",
        "the results folder": f"os.listdir({str(out / 'results')!r})",
        "the logs folder": f"os.listdir({str(out / 'logs')!r})",
        "the staff solution": f"open({str(REPO_ROOT / 'solution' / 'gan.py')!r}).read()",
        "the solution on sys.path": "__import__('solution.gan')",
        "another problem's tests": f"open({str(suite / 'test_cnn.py')!r}).read()",
        "the grader's loopback network": f"__import__('socket').create_connection(('127.0.0.1', {port}), timeout=2)",
    }
    spy = "import os, time\ntime.sleep(2)\nFOUND = []\n" + "".join(
        f"try:\n    {code}\n    FOUND.append({name!r})\nexcept Exception:\n    pass\n" for name, code in probes.items())
    spy += "def value():\n    assert not FOUND, 'the spy read: ' + ', '.join(FOUND)\n    return 42\n"
    submission(folder / "alice-the-spy", GOOD.replace("def value():\n    return 42\n", "") + spy)
    try:
        run = run_cli("grade-all", folder, "-o", out, "-j", "2", "--tests", suite)
    finally:
        listener.close()
    assert run.returncode == 0, run.stderr
    alice = json.loads((out / "results" / "alice-the-spy.json").read_text())
    value = next(t for t in alice["tests"] if t["name"].startswith("test_value") and t["tags"][0] == "gan")
    assert value["score"] == 10, value["output"]
    assert alice["score"] == 105


def test_grade_all_divides_the_cores():
    cores = set(os.sched_getaffinity(0))
    slots = batch.core_slots(2)
    assert len(slots) == 2 and all(slots) and set().union(*slots) <= cores
    if len(cores) >= 2:
        assert not slots[0] & slots[1]
    env = grader.base_env(Path("/tmp/nowhere-home"), Path("/tmp/impl"), cores=1)
    assert env["OMP_NUM_THREADS"] == "1" and env["GOMP_SPINCOUNT"] == "10000"


# --- 6. no escape sequence reaches a console or a page -------------------------------------------------

FORGED_TABLE = "\x1b[2J\x1b[H" + "problem points\ngan 20 / 20\ntotal 78.5 / 78.5" + "\x1b[8m"


def test_escape_sequences_cannot_forge_the_console_table(tmp_path, suite):
    gan = bad_gan(f"def value():\n    print({FORGED_TABLE!r})\n    raise AssertionError({FORGED_TABLE!r})\n", False)
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, source in (("gan.py", gan), ("cnn.py", GOOD), ("cvae.py", GOOD), ("contrastive.py", GOOD)):
            z.writestr(f"evil\x1b[2J\u202efolder/{name}", source)
    out = tmp_path / "r.json"
    run = run_cli("grade", archive, "-o", out, "--tests", suite)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout and "\u202e" not in run.stdout
    assert re.search(r"total\s+90 / 100\s+5 / 5", run.stdout)  # the real one, and only it
    results = json.loads(out.read_text())
    texts = [results["output"]] + [t["output"] for t in results["tests"]]
    assert not any("\x1b" in text or "\u202e" in text for text in texts) and "\\x1b" in results["output"]


def test_safe_text_escapes_what_rewrites_a_terminal():
    assert safe_text("a\x1b[2Jb\r\x07\u202e\udc80\tc\n") == "a\\x1b[2Jb\\r\\x07\\u202e\\udc80\tc\n"
    assert len(safe_text("x" * 10**6, 100)) < 200


# --- 8. zip input: bounded before anything is unpacked, one bad member skipped --------------------------

def test_a_zip_with_too_many_members_is_refused_cheaply(tmp_path, suite, manifest):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("gan.py", GOOD)
        for i in range(20_001):
            z.writestr(f"junk/{i}", b"")
    started = time.monotonic()
    with pytest.raises(grader.SubmissionError, match="20002 entries"):
        grader.grade(archive, tests_dir=suite, manifest=manifest)
    assert time.monotonic() - started < 10


def test_a_corrupt_member_is_skipped_and_the_rest_graded(tmp_path, suite, manifest):
    archive = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("cnn.py", "contrastive.py", "cvae.py", "gan.py"):
            z.writestr(name, GOOD * 20)
    data = bytearray(archive.read_bytes())
    at = data.find(b"gan.py") + len("gan.py") + 10   # inside gan.py's compressed bytes
    data[at:at + 8] = b"\xff" * 8
    archive.write_bytes(bytes(data))
    report = grade(archive, suite, manifest, tmp_path / "r.json")
    assert points(report)["cnn"] == 25 and points(report)["gan"] == 0
    assert any("gan.py could not be unpacked" in note for note in report.notes)


# --- per-tree limits: memory and processes of the whole test process tree --------------------------------

@needs_root
def test_memory_is_capped_for_the_whole_tree(tmp_path, suite, manifest):
    """Four children of 300 MB each stay under a 1 GB per-process cap but not under the tree's."""
    from autograder.grade.cgroup import Cgroup
    probe, why = Cgroup.create(f"hw3-probe-{os.getpid()}", 1 << 30, 64)
    if probe is None:
        pytest.skip(f"no writable cgroup here: {why}")
    probe.close()
    gan = bad_gan('''
        import os, time
        def value():
            children = []
            for _ in range(4):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(300 << 20)
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    time.sleep(3)
                    os._exit(0)
                children.append(pid)
            statuses = [os.waitpid(pid, 0)[1] for pid in children]
            return 42 if not any(statuses) else 41   # 41: the kernel killed a child at the tree's cap
        ''', False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, memory_mb=1024)
    check_others_intact(report, 15, extra=5)
    assert value_of(report).score == 0


@needs_namespaces
def test_the_staff_tree_around_the_tests_is_not_visible(tmp_path):
    """As in this repository, the tests' rootdir holds the staff's files (solution/, benchmarks/): a
    test process sees its own test files, conftest and ini file, and none of the rest."""
    import tempfile
    from test_grade import write_suite
    root = Path(tempfile.mkdtemp(prefix="hw3-test-tree-"))
    try:
        root.chmod(0o755)
        tests = write_suite(root)
        (tests / "pytest.ini").rename(root / "pytest.ini")
        (root / "solution").mkdir(mode=0o755)
        (root / "solution" / "gan.py").write_text("SECRET = 1\n")
        (root / "solution" / "gan.py").chmod(0o644)
        (tests / "data").mkdir(mode=0o755)
        tree = grader.collect_manifest(tests)
        assert tree["rootdir"] == str(root)
        spy = bad_gan(f'''
            import os
            def value():
                seen = sorted(os.listdir({str(root)!r}))
                assert seen == ["pytest.ini", "tests"], seen
                assert sorted(os.listdir({str(tests)!r})) == ["conftest.py", "data", "hidden", "test_gan.py"], \\
                    os.listdir({str(tests)!r})
                return 42
            ''', False)
        report = grader.grade(submission(tmp_path / "sub", spy), tests_dir=tests, manifest=tree)
        assert value_of(report).score == 10, value_of(report).output
    finally:
        import shutil
        shutil.rmtree(root, ignore_errors=True)


# --- what a red team found after the first hardening -----------------------------------------------------

@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_folder_tree_thousands_deep_is_removed(tmp_path, suite, manifest, isolation):
    """3,000 nested folders in the working folder (shutil.rmtree's recursion gave up on them, and the
    grader crashed): grading finishes, the other problems keep their points, nothing is left."""
    before = set(Path("/tmp").glob("hw3-grade-*"))
    gan = GOOD + "import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n"
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, tmp_path / "r.json", isolation=isolation)
    assert report.score == 105
    assert set(Path("/tmp").glob("hw3-grade-*")) <= before


@needs_namespaces
def test_the_working_folder_cannot_fill_the_disk(tmp_path, suite, manifest):
    gan = bad_gan('''
        import os
        def value():
            written = 0
            try:
                with open(os.path.join(os.environ["HOME"], "fill"), "wb") as f:
                    for _ in range(700):
                        f.write(b"x" * (1 << 20))
                        written += 1
            except OSError:
                pass
            return 42 if written <= 520 else written
        ''', False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest, isolation="namespaces")
    assert value_of(report).score == 10, value_of(report).output


def test_newlines_in_a_folder_name_cannot_forge_rows(tmp_path, suite):
    archive = tmp_path / "forge.zip"
    fake = "a\nproblem points\ntotal           105 / 105\n"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(f"{fake}/gan.py", "raise SystemExit\n")
        z.writestr(f"{fake}/other/cnn.py", GOOD)
        z.writestr("b\nc/deeper/cvae.py", GOOD)
    run = run_cli("grade", archive, "--tests", suite)
    assert run.returncode == 0, run.stderr
    assert not re.search(r"^\s*total\s+105", run.stdout, re.MULTILINE), run.stdout
    assert "\\n" in run.stdout   # the newline shown escaped, inside its line


def cgroup_cpu_counted() -> bool:
    from autograder.grade.cgroup import Cgroup
    group, _ = Cgroup.create(f"hw3-probe-{os.getpid()}", 1 << 30, 64)
    if group is None:
        return False
    counted = group.cpu_seconds() is not None
    group.close()
    return counted


@needs_root
def test_cpu_burnt_by_children_the_kernel_reaps_still_counts(tmp_path, suite, manifest, monkeypatch):
    """With SIGCHLD ignored, children are reaped by the kernel and their CPU time never reaches their
    parent's: the cgroup's count sees it, and the test is stopped at its CPU budget."""
    if not cgroup_cpu_counted():
        pytest.skip("no cgroup CPU accounting here")
    monkeypatch.setattr(grader, "KILL_GRACE", 1.0)   # budget: 3 s x cores x 1.25 + 1 s
    # Two children at a time, 0.5 CPU s each, 40 CPU s in all: on a loaded machine they take longer
    # to reach the budget, but reach it (a loop on wall time would end first, and the test pass).
    gan = bad_gan('''
        import os, signal, time
        def value():
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            for _ in range(40):
                for _ in range(2):
                    if os.fork() == 0:
                        end = time.process_time() + 0.5
                        while time.process_time() < end:
                            pass
                        os._exit(0)
                try:
                    os.wait()   # with SIGCHLD ignored: returns (ECHILD) once both have exited
                except ChildProcessError:
                    pass
            return 42
        ''', False)
    report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    value = value_of(report)
    assert value.score == 0 and "CPU seconds" in value.output and not value.regrade, value.output
    cpu_limit, _ = grader.test_limits({"timeout": 3}, 1.0, grader.available_cores())
    cpu = float(re.search(r"stopped it after (\d+) CPU seconds", value.output).group(1))
    assert cpu >= cpu_limit - 1, f"stopped by the wall-clock backstop, not the CPU budget: {value.output}"
    check_others_intact(report, 15, extra=5)


@needs_root
def test_a_test_process_cannot_widen_its_cores(tmp_path, suite, manifest):
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        pytest.skip("needs two cores")
    gan = bad_gan('''
        import os
        def value():
            try:
                os.sched_setaffinity(0, range(os.cpu_count()))
            except OSError:
                pass
            return 42 if len(os.sched_getaffinity(0)) == 1 else sorted(os.sched_getaffinity(0))
        ''', False)
    os.sched_setaffinity(0, {cores[0]})   # as grade-all pins a worker
    try:
        report = grade(submission(tmp_path / "sub", gan), suite, manifest)
    finally:
        os.sched_setaffinity(0, cores)
    if any("per process only" in line for line in report.log):
        pytest.skip("no writable cpuset cgroup here")
    assert value_of(report).score == 10, value_of(report).output


def test_zip64_records_count_toward_the_bound(tmp_path, suite, manifest, monkeypatch):
    """An end record claiming one entry, with zip64 records claiming many (zipfile believes those)."""
    import struct
    import zlib
    from autograder.grade import submission as collecting
    monkeypatch.setattr(collecting, "MAX_ENTRIES", 100)
    local, central = bytearray(), bytearray()
    for name, data in [(b"gan.py", GOOD.encode())] + [(b"x/%d" % i, b"") for i in range(200)]:
        offset, crc = len(local), zlib.crc32(data)
        local += struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0)
        local += name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, 0, 0, 0, crc, len(data), len(data),
                               len(name), 0, 0, 0, 0, 0o100644 << 16, offset) + name
    at, size = len(local), len(central)
    record = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, 201, 201, size, at)
    locator = struct.pack("<IIQI", 0x07064b50, 0, at + size, 1)
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, 46, at, 0)
    archive = tmp_path / "z64.zip"
    archive.write_bytes(bytes(local + central) + record + locator + end)
    with pytest.raises(grader.SubmissionError, match="201 entries"):
        grader.grade(archive, tests_dir=suite, manifest=manifest)


def test_a_submission_folder_with_too_many_entries_is_refused(tmp_path, suite, manifest, monkeypatch):
    from autograder.grade import submission as collecting
    monkeypatch.setattr(collecting, "MAX_ENTRIES", 50)
    sub = submission(tmp_path / "sub")
    for i in range(60):
        (sub / f"junk{i}").write_text("")
    with pytest.raises(grader.SubmissionError, match="more than 50 files"):
        grader.grade(sub, tests_dir=suite, manifest=manifest)
