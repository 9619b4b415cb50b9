"""grade: score a submission in isolated processes and write Gradescope's results file.

    from autograder.grade import grade
    report = grade("alice.zip", "results.json")     # or a folder; tests_dir=..., keyword="gan", ...
    print(report.table())

How (details and threat model in autograder/README.md):
  1. The student files are found in the submission and copied into a private folder.
  2. A trusted pytest run (``--collect-only``, no student code anywhere) lists the selected tests
     with their problem, number, weight, visibility and timeout: the *manifest*. Only it decides
     which tests exist and what each is worth.
  3. Each problem's tests run in their own sandboxed pytest process (see ``sandbox``) that streams
     each test's start and outcome as it happens. The grader enforces each test's timeout (killing
     and restarting the process for the remaining tests if it must), a whole-run time limit, a
     memory cap and an output cap. A test that does not report a finished outcome fails with the
     reason; a reported score never exceeds the manifest's weight.
  4. This (trusted) process writes the results file atomically.
"""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grade import sandbox
from autograder.grade.plugin import Verdicts
from autograder.grade.results import (PROBLEMS, apply_verdict, check_writable, from_spec, gradescope_results,
                                      number_tests, summary_table, totals, truncate,
                                      write_json_atomically)
from autograder.grade.submission import STUDENT_FILES, Submission, SubmissionError, collect

SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent   # holds autograder/ and hw3/
TESTS_DIR = SOURCE_ROOT / "tests"
DEFAULT_TIMEOUT = 60.0        # per test, when the tests set none (pytest-timeout's ini value otherwise)
DEFAULT_TIME_LIMIT = 1200.0   # the whole grading run
DEFAULT_MEMORY_MB = 8192      # address space per test process (torch's CUDA build maps ~3.5 GB at import)
STARTUP_ALLOWANCE = 180.0     # seconds for a test process to start (import torch, collect) or finish
MAX_RUNS_PER_PROBLEM = 8      # test processes started for one problem (restarts after kills/crashes)
KILL_GRACE = 10.0             # seconds (plus a quarter of the test's timeout) past which the grader kills a test

__all__ = ["grade", "collect_manifest", "Grade", "GradeError", "SubmissionError", "TESTS_DIR"]


class GradeError(Exception):
    """The grader itself cannot run (bad tests folder, unwritable output, broken test suite)."""


# --- the trusted manifest ---------------------------------------------------------------------

def test_files(tests_dir: Path) -> list:
    """The graded test files of a tests folder, grouped by problem: visible first, then hidden."""
    files = []
    for problem in PROBLEMS:
        for path in (tests_dir / f"test_{problem}.py", tests_dir / "hidden" / f"test_{problem}_hidden.py"):
            if path.is_file():
                files.append(path)
    return files


def python_argv() -> list:
    """The interpreter with no user site-packages and (3.11+) no current folder on sys.path."""
    return [sys.executable, "-s"] + (["-P"] if sys.version_info >= (3, 11) else [])


def base_env(home: Path, impl_dir: Path) -> dict:
    """A minimal environment: nothing of ours leaks in except the variables named here."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home), "TMPDIR": str(home / "tmp"), "USER": "student", "LOGNAME": "student",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(SOURCE_ROOT), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1", "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "XDG_CACHE_HOME": str(home / ".cache"), "TORCH_HOME": str(home / ".cache" / "torch"),
        "CUDA_VISIBLE_DEVICES": "", "MALLOC_ARENA_MAX": "2", "TQDM_DISABLE": "1",
        "HW3_IMPL": str(impl_dir),
    }
    for name in ("HW3_DATA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    for sub in ("tmp", ".config/matplotlib", ".cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return env


def collect_manifest(tests_dir: Path = TESTS_DIR, keyword: str = None, markexpr: str = None,
                     workdir: Path = None) -> dict:
    """The selected tests' trusted metadata: {"rootdir", "inifile", "tests": [spec, ...], "excluded": [...]}.

    Runs ``pytest --collect-only`` in a subprocess with an empty implementation folder: no student
    code exists anywhere it could be imported from.
    """
    tests_dir = Path(tests_dir).resolve()
    if not tests_dir.is_dir():
        raise GradeError(f"tests folder {tests_dir} does not exist")
    files = test_files(tests_dir)
    if not files:
        raise GradeError(f"no graded test files (test_<problem>.py for {', '.join(PROBLEMS)}) in {tests_dir}")
    with tempfile.TemporaryDirectory(prefix="hw3-collect-", dir=workdir) as tmp:
        tmp = Path(tmp)
        (tmp / "impl").mkdir()
        out = tmp / "manifest.json"
        argv = python_argv() + ["-m", "pytest", "--collect-only", "-q", "-p", "autograder.grade.plugin",
                                "--hw3-manifest", str(out), "-p", "no:cacheprovider", *map(str, files)]
        if keyword:
            argv += ["-k", keyword]
        argv += ["-m", f"({markexpr}) and not gpu" if markexpr else "not gpu"]
        run = subprocess.run(argv, cwd=tmp, env=base_env(tmp / "home", tmp / "impl"), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, errors="replace", timeout=600)
        if not out.is_file():
            raise GradeError(f"the tests in {tests_dir} could not be collected (pytest exit status "
                             f"{run.returncode}):\n{truncate(run.stdout + run.stderr, 6000)}")
        manifest = json.loads(out.read_text())
    if manifest["errors"]:
        raise GradeError("the test suite has collection errors (fix the tests, not the submission):\n"
                         + "\n".join(manifest["errors"]))
    manifest["tests"] = [t for t in manifest["tests"] if t["problem"] in PROBLEMS]
    if not manifest["tests"]:
        raise GradeError(f"no tests selected in {tests_dir}" + (f" by -k {keyword!r}" if keyword else "")
                         + (f" and -m {markexpr!r}" if markexpr else ""))
    return manifest


def check_weights(manifest: dict) -> list:
    """Warnings when a problem's regular (non-extra-credit) weights do not sum to 25 or numbers repeat."""
    warnings = []
    for problem in PROBLEMS:
        tests = [t for t in manifest["tests"] if t["problem"] == problem]
        total = sum(t["weight"] for t in tests if not t["extra_credit"])
        if tests and abs(total - 25) > 1e-6:
            warnings.append(f"{problem}: the selected tests are worth {total:g} points, not 25")
        unweighted = [t["nodeid"] for t in tests if not t["weight"]]
        if unweighted:
            warnings.append(f"{problem}: {len(unweighted)} selected test(s) carry no @weight, e.g. {unweighted[0]}")
    for test in manifest["tests"]:
        warnings += test.get("warnings", [])
    return warnings + manifest.get("warnings", [])


# --- running one problem ----------------------------------------------------------------------

@dataclass
class ProblemRun:
    problem: str
    specs: list
    verdicts: dict = field(default_factory=dict)   # nodeid -> verdict
    notes: list = field(default_factory=list)      # for the student (crashes, kills)
    log: list = field(default_factory=list)        # for the instructor (process exits, output tails)
    processes: int = 0


def run_problem(problem: str, specs: list, manifest: dict, impl_dir: Path, work: Path, *, deadline: float,
                memory_mb: int, timeout_scale: float = 1.0, private_uid: bool = None) -> ProblemRun:
    """Run one problem's tests in sandboxed pytest processes; restart after a kill or crash."""
    run = ProblemRun(problem, specs)
    private = re.compile(r"(?:\.\./)*(?:" + re.escape(str(impl_dir.parent.parent)) + "/)?" +
                         re.escape(impl_dir.parent.name) + "/impl/")
    rootdir = manifest["rootdir"].rstrip("/") + "/"

    def clean(text: str) -> str:
        """Paths as the student knows them: gan.py rather than the grader's private copy."""
        return private.sub("", text).replace(rootdir, "")

    by_id = {s["nodeid"]: s for s in specs}
    remaining = [s["nodeid"] for s in specs]
    private_uid = sandbox.private_uid_mode() is not None if private_uid is None else private_uid
    first_test_deaths = 0
    while remaining:
        if time.monotonic() >= deadline:
            for nodeid in remaining:
                run.verdicts[nodeid] = {"outcome": "failed", "output": "Not run: this problem's share of the "
                                        "grading time limit ran out before this test started."}
            run.notes.append(f"{problem}: {len(remaining)} test(s) not run: its share of the grading time ran out")
            break
        run.processes += 1
        scratch = work / f"{problem}-{run.processes}-{secrets.token_hex(8)}"
        scratch.mkdir(mode=0o700)
        lease = sandbox.UidLease() if private_uid else None
        try:
            env = base_env(scratch, impl_dir)
            if lease:
                for path in [scratch, *scratch.rglob("*")]:
                    os.chown(path, lease.uid, lease.uid)
            state = {"current": None, "since": time.monotonic(), "started": [], "verdicts": Verdicts(),
                     "memory": ""}
            pending = set(remaining)

            def on_record(record):
                event, nodeid = record.get("event"), record.get("nodeid")
                now = time.monotonic()
                if event == "start" and nodeid in pending and state["current"] is None:
                    state["current"], state["since"] = nodeid, now
                    state["started"].append(nodeid)
                elif event == "report" and nodeid == state["current"] \
                        and record.get("when") in ("setup", "call", "teardown"):
                    state["verdicts"].add(nodeid, record["when"], record.get("outcome"),
                                          str(record.get("output") or ""), record.get("score"))
                elif event == "finish" and nodeid == state["current"]:
                    verdict = state["verdicts"].verdicts.get(nodeid)
                    if not (verdict and verdict["outcome"]):
                        verdict = {"outcome": "failed", "output": "The test reported no outcome."}
                    verdict["output"] = clean(verdict["output"])
                    run.verdicts[nodeid] = verdict
                    pending.discard(nodeid)
                    state["current"], state["since"] = None, now
                elif event == "done" and state["current"] is None:
                    state["memory"] = f"; peak memory {record.get('maxrss_mb')} MB resident, " \
                                      f"{record.get('vmpeak_mb')} MB address space"

            def limit():
                current = state["current"]
                if current is None:
                    return min(deadline, state["since"] + STARTUP_ALLOWANCE)
                budget = (by_id[current].get("timeout") or DEFAULT_TIMEOUT) * timeout_scale
                return min(deadline, state["since"] + budget + KILL_GRACE + 0.25 * budget)

            argv = python_argv() + [
                "-m", "pytest", "-p", "autograder.grade.plugin", "--hw3-channel", "{channel}",
                "-p", "no:cacheprovider", "--rootdir", manifest["rootdir"],
                *(["-c", manifest["inifile"]] if manifest.get("inifile") else []),
                "-q", "--tb=short", "--show-capture=no", "--color=no", "-o", "console_output_style=classic",
                *[str(Path(manifest["rootdir"]) / nodeid) for nodeid in remaining],
            ]
            child = sandbox.run(argv, env=env, cwd=scratch, limits=sandbox.Limits(memory_mb=memory_mb),
                                uid=lease.uid if lease else None, on_record=on_record, deadline=limit)
        finally:
            if lease:
                lease.close()
            shutil.rmtree(scratch, ignore_errors=True)
        why = child.describe()
        run.log.append(f"{problem}: test process {run.processes}: {why}; {len(state['started'])} test(s) started; "
                       f"{child.output_bytes} bytes of output" + (f"; {child.bad_records} bad record(s) ignored"
                                                                  if child.bad_records else "") + state["memory"])
        if child.bad_records:
            run.notes.append(f"{problem}: {child.bad_records} malformed or unauthenticated report(s) from the "
                             f"test process were ignored")
        current = state["current"]
        if current is not None:  # it died (or was killed) inside this test
            killed_for_time = child.killed and "time limit" in child.killed
            if killed_for_time and time.monotonic() < deadline:
                budget = (by_id[current].get("timeout") or DEFAULT_TIMEOUT) * timeout_scale
                reason = f"Timed out: the test did not finish within its {budget:g} s limit (the grader killed it)."
            elif killed_for_time:
                reason = "Stopped: this problem's share of the grading time limit ran out during this test."
            else:
                reason = f"The test did not finish: {why}. Your code may have exited the process " \
                         f"(sys.exit/os._exit), crashed, or exhausted the memory limit."
            tail = clean(child.output[-1500:].strip())
            output = reason + (f"\n\nLast output of the test process:\n{tail}" if tail else "")
            run.verdicts[current] = {"outcome": "failed", "output": output}
            if not by_id[current].get("hidden"):  # hidden tests stay unnamed until their results show
                run.notes.append(f"{problem}: {current}: {reason}")
            pending.discard(current)
            first_test_deaths = first_test_deaths + 1 if state["started"] == [current] else 0
        remaining = [n for n in remaining if n in pending]
        if not remaining:
            break
        if not state["started"]:
            message = (f"Not run: the test process stopped before running any test ({why}).\n"
                       f"Its output ended with:\n{clean(child.output[-2500:].strip())}")
            for nodeid in remaining:
                run.verdicts[nodeid] = {"outcome": "failed", "output": message}
            run.notes.append(f"{problem}: {len(remaining)} test(s) not run: the test process stopped before "
                             f"running any test ({why})")
            break
        if first_test_deaths >= 3 or run.processes >= MAX_RUNS_PER_PROBLEM:
            message = ("Not run: the test process kept dying (see the earlier failed tests of this problem), "
                       "so the remaining tests were not attempted.")
            for nodeid in remaining:
                run.verdicts[nodeid] = {"outcome": "failed", "output": message}
            run.notes.append(f"{problem}: {len(remaining)} test(s) not run: the test process kept dying")
            break
    return run


# --- the whole submission ---------------------------------------------------------------------

@dataclass
class Grade:
    results: list                  # [TestResult]
    notes: list                    # for the student
    log: list                      # for the instructor
    submission: Submission
    seconds: float
    warnings: list = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.results)

    def points(self) -> dict:
        """{problem: points earned (extra credit apart)} plus "extra_credit" and "total"."""
        table = totals(self.results)
        points = {p: round(table.get(p, {}).get("score", 0.0), 4) for p in PROBLEMS}
        points["extra_credit"] = round(sum(row["extra"] for row in table.values()), 4)
        points["total"] = round(self.score, 4)
        return points

    def student_output(self) -> str:
        """The top-level output students see on Gradescope: visible tests only, plus the notes."""
        where = "at the top of the submission" if self.submission.folder in ("", ".") else \
            f"in its folder '{self.submission.folder}'"
        head = [f"Graded files found {where}: {', '.join(sorted(self.submission.files)) or 'none'}"]
        return "\n".join(head + self.notes + ["", summary_table(self.results, visible_only=True, failures=False)])

    def gradescope(self) -> dict:
        return gradescope_results(self.results, self.seconds, self.student_output())

    def table(self) -> str:
        """The instructor's summary: every test, hidden included, and the failed ones with messages."""
        return summary_table(self.results, notes=self.warnings + self.notes)


def grade(submission, output=None, *, tests_dir: Path = TESTS_DIR, keyword: str = None, markexpr: str = None,
          manifest: dict = None, time_limit: float = DEFAULT_TIME_LIMIT, memory_mb: int = DEFAULT_MEMORY_MB,
          timeout_scale: float = 1.0, private_uid: bool = None, log=None) -> Grade:
    """Grade ``submission`` (folder or .zip); write Gradescope results to ``output`` if given.

    Raises SubmissionError (unreadable submission), GradeError (unusable tests or output path).
    """
    started = time.monotonic()
    deadline = started + time_limit
    say = log or (lambda message: None)
    if output is not None:
        try:
            output = check_writable(output)
        except ValueError as error:
            raise GradeError(str(error)) from None
    sandbox.become_subreaper()
    with tempfile.TemporaryDirectory(prefix="hw3-grade-") as work:
        work = Path(work)
        work.chmod(0o711)  # sandboxed processes may pass through, not list
        found = collect(submission, work / "submission")
        sources = {name: path.read_bytes() for name, path in found.files.items()}
        shutil.rmtree(work / "submission")  # from here on the submission exists only in this process
        if manifest is None:
            say("collecting the tests")
            manifest = collect_manifest(tests_dir, keyword, markexpr, workdir=work)
        warnings = check_weights(manifest)
        notes = list(found.notes)
        mode = sandbox.private_uid_mode() if private_uid is None else ("" if private_uid else None)
        logs = ["sandbox: " + ("no private uid (not root, or setpriv unavailable): the student's code runs as "
                               "this user" if mode is None else "a private uid per test process" +
                               (f", keeping only CAP_{mode.upper()} (this Python is not readable by other users)"
                                if mode else ""))]
        verdicts = {}
        to_run = [p for p in PROBLEMS if any(t["problem"] == p for t in manifest["tests"])
                  and f"{p}.py" in found.files]

        def budget(problem):
            return sum((t.get("timeout") or DEFAULT_TIMEOUT) * timeout_scale
                       for t in manifest["tests"] if t["problem"] == problem) + STARTUP_ALLOWANCE
        for problem in PROBLEMS:
            specs = [t for t in manifest["tests"] if t["problem"] == problem]
            filename = f"{problem}.py"
            if not specs:
                continue
            if filename not in found.files:
                message = (f"{filename} is missing from your submission, so Problem {PROBLEMS.index(problem) + 1} "
                           f"scores 0. Submit {', '.join(STUDENT_FILES)} (at the top of the submission or in "
                           f"one folder).")
                notes.append(message)
                for spec in specs:
                    verdicts[spec["nodeid"]] = {"outcome": "failed", "output": message}
                continue
            say(f"running {len(specs)} test(s) of {problem}")
            # Each problem sees only its own file, in a fresh folder written from memory just before its
            # run: an earlier problem's code cannot have prepared or altered it.
            impl_dir = work / secrets.token_hex(8) / "impl"
            impl_dir.mkdir(parents=True)
            impl_dir.parent.chmod(0o711)
            (impl_dir / filename).write_bytes(sources[filename])
            (impl_dir / filename).chmod(0o644)
            impl_dir.chmod(0o755)
            # A fair share of the time left -- in proportion to the problems' declared test timeouts --
            # so that a problem that hangs cannot starve the ones after it.
            now = time.monotonic()
            budgets = [budget(p) for p in to_run[to_run.index(problem):]]
            share = now + max(0.0, deadline - now) * budgets[0] / sum(budgets)
            run = run_problem(problem, specs, manifest, impl_dir, work, deadline=share, memory_mb=memory_mb,
                              timeout_scale=timeout_scale, private_uid=private_uid)
            verdicts.update(run.verdicts)
            notes += run.notes
            logs += run.log
        results = []
        for spec in manifest["tests"]:
            verdict = verdicts.get(spec["nodeid"], {"outcome": "failed", "output": "Not run."})
            results.append(apply_verdict(from_spec(spec), verdict))
    report = Grade(number_tests(results), notes, logs, found, time.monotonic() - started, warnings)
    if output is not None:
        write_json_atomically(report.gradescope(), output)
    return report
