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

It stays one module, over 400 lines: the trusted pipeline reads top to bottom in the order above.
"""
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grade import leaderboard, sandbox
from autograder.grade.plugin import Verdicts
from autograder.grade.results import (MAX_TEST_OUTPUT, PROBLEMS, apply_verdict, check_writable, from_spec,
                                      grader_version, gradescope_results, markdown_summary, number_tests,
                                      safe_text, summary_table, totals, truncate)
from autograder.grade.submission import STUDENT_FILES, Submission, SubmissionError, copy_student_files
from hw3.files import write_json_atomically
from hw3.problems import BY_NAME, NAMES, POINTS_PER_PROBLEM, graded_test_files
from hw3.remote import JUDGE_ONLY_DATA, PREFIX_ENV, REMOTE_PROBLEMS, THREAD_POLICY
from hw3.testing import METRICS_VAR

SOURCE_ROOT = Path(__file__).resolve().parent.parent.parent   # holds autograder/ and hw3/
TESTS_DIR = SOURCE_ROOT / "tests"
DEFAULT_TIMEOUT = 60.0        # per test, when the tests set none (pytest-timeout's ini value otherwise)
DEFAULT_TIME_LIMIT = 1200.0   # the whole grading run
FULL_BUDGET_TIME_LIMIT = 14400.0  # the whole run with --full-budget (its tests' timeouts are sized for a CPU)
DEVICES = ("cpu", "cuda")     # where the student's worker trains: the CPU (CUDA hidden), or the grader's GPU
DEFAULT_MEMORY_MB = 8192      # address space per test process (torch's CUDA build maps ~3.5 GB at import)
STARTUP_ALLOWANCE = 180.0     # wall seconds a problem's share reserves for starting its process
STARTUP_CPU = 120.0           # CPU seconds a test process may spend before its first test (import torch: ~5)
STARTUP_WALL = 600.0          # wall seconds of the same (a backstop: a loaded machine is slow, not wrong)
MAX_RUNS_PER_PROBLEM = 8      # test processes started for one problem (restarts after kills/crashes)
KILL_GRACE = 10.0             # seconds (plus a quarter of the test's budget) past which the grader kills a test
WALL_BACKSTOP = 4.0           # a test's wall-clock limit, in multiples of its CPU-time limit on one core
RESULTS_RESERVE = 10.0        # seconds of the whole-run limit kept for stopping processes and writing results
LATER_PROBLEM_RESERVE = 240.0 # wall seconds (at most) each problem still to run keeps from the one running
SCRATCH_DIRS = ("tmp", ".config", ".config/matplotlib", ".cache")   # made in each test process's HOME
GRADER_LIMIT = ("Flagged for regrade: stopped by the grader's own time limit, not because of your code "
                "(the grading machine was too slow or busy); the staff will grade it again.")

__all__ = ["grade", "collect_manifest", "Grade", "GradeError", "SubmissionError", "TESTS_DIR", "DEVICES"]


class GradeError(Exception):
    """The grader itself cannot run (bad tests folder, unwritable output, broken test suite)."""


# --- the trusted manifest ---------------------------------------------------------------------

def python_argv() -> list:
    """The interpreter with no user site-packages and (3.11+) no current folder on sys.path."""
    return [sys.executable, "-s"] + (["-P"] if sys.version_info >= (3, 11) else [])


def data_root() -> Path:
    """The datasets folder the tests read ($HW3_DATA, else the source's datasets/)."""
    return Path(os.environ.get("HW3_DATA") or SOURCE_ROOT / "datasets").resolve()


RUNTIME_PACKAGES = ("grade", "judge")   # of autograder/: the judge's (a worker sees only hw3/)


def make_runtime(folder: Path) -> Path:
    """A copy of the provided code a test process imports (hw3/, autograder/grade/, autograder/judge/):
    the only source on its PYTHONPATH, so the staff files beside them (solution/, the validate
    catalogue) are not. A student's worker is shown ``worker_runtime(folder)`` only."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SOURCE_ROOT / "hw3", folder / "hw3", ignore=ignore)
    (folder / "autograder").mkdir()
    shutil.copy2(SOURCE_ROOT / "autograder" / "__init__.py", folder / "autograder" / "__init__.py")
    for package in RUNTIME_PACKAGES:
        if (SOURCE_ROOT / "autograder" / package).is_dir():
            shutil.copytree(SOURCE_ROOT / "autograder" / package, folder / "autograder" / package, ignore=ignore)
    (folder / "datasets").mkdir()
    for manifest in (SOURCE_ROOT / "datasets").glob("*.sha256"):   # hw3.datasets reads the checksums here
        shutil.copy2(manifest, folder / "datasets" / manifest.name)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    judge = folder / "autograder" / "judge"   # the judge's alone (a test process of another suite needs grade/)
    for path in ([judge, *judge.rglob("*")] if judge.is_dir() else []):
        path.chmod(0o700 if path.is_dir() else 0o600)
    return folder


def worker_runtime(runtime: Path) -> list:
    """What a student's worker sees of the runtime: hw3/ and the datasets' checksums, never autograder/."""
    return [runtime / "hw3", runtime / "datasets"]


def base_env(home: Path, impl_dir: Path, runtime: Path = None, cores: int = None, device: str = "cpu") -> dict:
    """A minimal environment: nothing of ours leaks in except the variables named here. CUDA stays
    hidden unless ``device`` is "cuda" (then the grader's own CUDA_VISIBLE_DEVICES, if any, holds)."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home), "TMPDIR": str(home / "tmp"), "USER": "student", "LOGNAME": "student",
        "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
        "PYTHONPATH": str(runtime or SOURCE_ROOT), "HW3_DATA": str(data_root()), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1", "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "XDG_CACHE_HOME": str(home / ".cache"), "TORCH_HOME": str(home / ".cache" / "torch"),
        "CUDA_VISIBLE_DEVICES": "", "MALLOC_ARENA_MAX": "2", "TQDM_DISABLE": "1",
        "HW3_IMPL": str(impl_dir), **THREAD_POLICY,
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if device == "cuda":
        del env["CUDA_VISIBLE_DEVICES"]
        if os.environ.get("CUDA_VISIBLE_DEVICES"):
            env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    if cores:  # torch's thread pools: one thread per core this grading may use, never more
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(cores)
    for sub in SCRATCH_DIRS:
        (home / sub).mkdir(parents=True, exist_ok=True)
    return env


def collect_manifest(tests_dir: Path = TESTS_DIR, keyword: str = None, markexpr: str = None,
                     workdir: Path = None, problems=NAMES, full_budget: bool = False) -> dict:
    """The selected tests' trusted metadata: {"rootdir", "inifile", "tests": [spec, ...], "excluded": [...]}.

    Runs ``pytest --collect-only`` in a subprocess with an empty implementation folder: no student
    code exists anywhere it could be imported from. ``problems``: only these problems' test files.
    ``full_budget``: the full-budget tests (marked gpu) too, which are left out otherwise.
    """
    tests_dir = Path(tests_dir).resolve()
    if not tests_dir.is_dir():
        raise GradeError(f"tests folder {tests_dir} does not exist")
    files = graded_test_files(tests_dir, problems)
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
        selection = markexpr if full_budget else f"({markexpr}) and not gpu" if markexpr else "not gpu"
        if selection:
            argv += ["-m", selection]
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
        if tests and abs(total - POINTS_PER_PROBLEM) > 1e-6:
            warnings.append(f"{problem}: the selected tests are worth {total:g} points, not {POINTS_PER_PROBLEM}")
        unweighted = [t["nodeid"] for t in tests if not t["weight"]]
        if unweighted:
            warnings.append(f"{problem}: {len(unweighted)} selected test(s) carry no @weight, e.g. {unweighted[0]}")
    for test in manifest["tests"]:
        warnings += test.get("warnings", [])
    return warnings + manifest.get("warnings", [])


# --- running one problem ----------------------------------------------------------------------

EVENTS = {"start", "report", "finish", "done"}
PHASES = {"setup", "call", "teardown"}
OUTCOMES = {"passed", "failed", "skipped"}
MAX_NODEID = 4096
PATH_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+~/")


def valid_record(record: dict) -> bool:
    """A record from a test process has exactly the fields and types the plugin sends, with bounded
    sizes and finite numbers; anything else is ignored (and counted)."""
    event, nodeid = record.get("event"), record.get("nodeid")
    if event not in EVENTS:
        return False
    if event != "done" and not (isinstance(nodeid, str) and len(nodeid) <= MAX_NODEID):
        return False
    if event == "report":
        score = record.get("score")
        if record.get("when") not in PHASES or record.get("outcome") not in OUTCOMES:
            return False
        if not isinstance(record.get("output", ""), (str, type(None))):
            return False
        if score is not None and not finite_number(score):
            return False
    if event == "done":
        return all(value is None or (isinstance(value, int) and not isinstance(value, bool))
                   for value in (record.get("maxrss_mb"), record.get("vmpeak_mb")))
    return True


def finite_number(value) -> bool:
    """An int or float (not a bool) that is finite and of a sane size (10**400 is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) <= 1e15 if isinstance(value, int) else math.isfinite(value)


def strip_private_paths(text: str, marker: str) -> str:
    """``text`` with every path ending in ``marker`` (the private folder, e.g. "1f2e.../impl/") removed,
    so the student reads gan.py, not the grader's copy. One pass: linear in the length of the text."""
    parts, floor, found = [], 0, text.find(marker)
    while found >= 0:
        start = found
        while start > floor and text[start - 1] in PATH_CHARACTERS:
            start -= 1
        parts.append(text[floor:start])
        floor = found + len(marker)
        found = text.find(marker, floor)
    parts.append(text[floor:])
    return "".join(parts)


@dataclass
class ProblemRun:
    problem: str
    specs: list
    verdicts: dict = field(default_factory=dict)   # nodeid -> verdict
    notes: list = field(default_factory=list)      # for the student (crashes, kills)
    log: list = field(default_factory=list)        # for the instructor (process exits, output tails)
    processes: int = 0
    metrics: list = field(default_factory=list)    # what the tests recorded (hw3.testing.record_metric)


def test_budget(spec: dict, timeout_scale: float = 1.0) -> float:
    """A test's declared time budget in seconds (pytest-timeout's value, scaled)."""
    return (spec.get("timeout") or DEFAULT_TIMEOUT) * timeout_scale


def test_limits(spec: dict, timeout_scale: float, cores: int) -> tuple:
    """(CPU seconds, wall seconds) after which the grader stops a test. The budget is the test's
    declared wall time on an idle machine with ``cores`` cores, so in CPU time it is worth that many
    cores' worth, plus a margin; the wall limit is a generous backstop for code that sleeps."""
    budget = test_budget(spec, timeout_scale)
    cpu = budget * max(1, cores) * 1.25 + KILL_GRACE
    return cpu, WALL_BACKSTOP * (budget * 1.25 + KILL_GRACE)


def test_process_args(manifest: dict, nodeids) -> list:
    """The interpreter's arguments in a grading test process: ``-m pytest`` and :func:`pytest_args`."""
    return ["-m", "pytest", *pytest_args(manifest, nodeids)]


def pytest_args(manifest: dict, nodeids, channel: bool = True) -> list:
    """pytest's arguments for running ``nodeids`` of ``manifest`` as the grader does. With ``channel``
    (the grader) verdicts leave through the authenticated channel and the grader enforces the timeouts,
    in CPU time, so pytest-timeout's wall-clock alarm is off; without it (validate's warm engine, which
    collects the verdicts in-process), pytest-timeout stays on."""
    root = Path(manifest["rootdir"])
    return ["-p", "autograder.grade.plugin", *(["--hw3-channel", "{channel}"] if channel else []),
            "-p", "no:cacheprovider", *(["-p", "no:timeout"] if channel else []), "--rootdir", str(root),
            *(["-c", manifest["inifile"]] if manifest.get("inifile") else []),
            "-q", "--tb=short", "--show-capture=no", "--color=no", "-o", "console_output_style=classic",
            *[str(root / nodeid) for nodeid in nodeids]]


def worker_prefix(worker: sandbox.Sandbox, scratch: Path, impl_dir: Path, runtime: Path, cores: int,
                  device: str = "cpu") -> list:
    """The command the tests start the student's worker under: its sandbox, then a fresh environment
    of the grader's choosing (nothing of the test process's) in its own scratch folder."""
    env = base_env(scratch, impl_dir, runtime=runtime, cores=cores, device=device)
    return worker.prefix(scratch) + ["env", "-i", "-C", str(scratch), *(f"{k}={v}" for k, v in env.items())]


def problem_paths(manifest: dict, specs: list) -> list:
    """What a problem's test process may read of the tests: its own test files, the conftest files and
    ini file beside them, and the tests' data (never another problem's tests)."""
    files = {Path(s["file"]) for s in specs}
    paths = set(files) | set(Path(manifest["rootdir"]).glob("conftest.py"))
    for folder in {f.parent for f in files}:
        for entry in folder.iterdir():
            if entry.name == "conftest.py" or (entry.suffix != ".py" and not entry.name.startswith(".")
                                               and entry.name not in ("hidden", "__pycache__")):
                paths.add(entry)
    if manifest.get("inifile"):
        paths.add(Path(manifest["inifile"]))
    return sorted(paths)


def suite_remote_problems(manifest: dict) -> frozenset:
    """The problems whose tests run their student code in a worker: those of hw3.remote.REMOTE_PROBLEMS
    whose every test file is one of this product's own tests/; none of another suite (its fixtures may
    import student code, which must then run in the sandboxed test process)."""
    ours = TESTS_DIR.resolve()
    files = {}
    for spec in manifest["tests"]:
        files.setdefault(spec["problem"], []).append(Path(spec["file"]).resolve())
    return frozenset(problem for problem, paths in files.items()
                     if problem in REMOTE_PROBLEMS and all(ours in path.parents for path in paths))


def run_problem(problem: str, specs: list, manifest: dict, impl_dir: Path, work: Path, *, deadline: float,
                memory_mb: int, isolation: sandbox.Isolation, runtime: Path, timeout_scale: float = 1.0,
                cores: int = 1, remote_problems=frozenset(), device: str = "cpu") -> ProblemRun:
    """Run one problem's tests in pytest processes (sandboxed; for a problem of ``remote_problems`` only
    its student worker is, and the judge is refused student code); restart after a kill or crash.
    ``device`` "cuda": the test process and the worker see the GPU (see ``check_device``)."""
    run = ProblemRun(problem, specs)
    remote = problem in remote_problems   # its tests hold no student code: they call a worker
    marker = f"{impl_dir.parent.name}/impl/"
    rootdir = manifest["rootdir"].rstrip("/") + "/"

    def clean(text) -> str:
        """Paths as the student knows them (gan.py, not the private copy); cut to size first."""
        text = truncate(text if isinstance(text, str) else "", 4 * MAX_TEST_OUTPUT)
        return strip_private_paths(text, marker).replace(rootdir, "")

    by_id = {s["nodeid"]: s for s in specs}
    remaining = [s["nodeid"] for s in specs]
    read_only = [impl_dir.parent, runtime, data_root(), *problem_paths(manifest, specs)]
    first_test_deaths = 0
    while remaining:
        if time.monotonic() >= deadline:
            for nodeid in remaining:
                run.verdicts[nodeid] = {"outcome": "failed", "regrade": True, "output": GRADER_LIMIT +
                                        " This test did not start before this problem's share of the grading "
                                        "time ran out."}
            run.notes.append(f"{problem}: {len(remaining)} test(s) not run: its share of the grading time ran "
                             f"out (flagged for regrade)")
            break
        run.processes += 1
        scratch = work / f"{problem}-{run.processes}-{secrets.token_hex(8)}"
        scratch.mkdir(mode=0o700)
        worker_scratch = scratch.with_name(scratch.name + "-worker") if remote else None
        lease = sandbox.UidLease() if isolation.private_uid else None
        try:
            env = base_env(scratch, impl_dir, runtime=runtime, cores=cores, device=device)
            if remote:  # the tests run here, outside; only the student's worker runs in the sandbox
                worker_scratch.mkdir(mode=0o700)
                worker = sandbox.Sandbox(isolation, read_only=[impl_dir.parent, *worker_runtime(runtime), data_root()],
                                         uid=lease.uid if lease else None, scratch=worker_scratch,
                                         scratch_dirs=SCRATCH_DIRS,
                                         masked=tuple(data_root() / rel for rel in JUDGE_ONLY_DATA),
                                         gpu=device == "cuda")
                env[PREFIX_ENV] = json.dumps(worker_prefix(worker, worker_scratch, impl_dir, runtime, cores,
                                                           device))
                env[METRICS_VAR] = str(leaderboard.metrics_path(scratch))  # the judge's own folder
                judge = sandbox.Sandbox(sandbox.choose("none"), scratch=scratch)
            owned = worker_scratch if remote else scratch
            if lease:
                for path in [owned, *owned.rglob("*")]:
                    os.chown(path, lease.uid, lease.uid)
            state = {"current": None, "since": time.monotonic(), "cpu_since": 0.0, "started": [],
                     "verdicts": Verdicts(), "memory": ""}
            pending = set(remaining)

            def on_record(record):
                if not valid_record(record):
                    return False
                event, nodeid = record["event"], record.get("nodeid")
                now = time.monotonic()
                if event == "start" and nodeid in pending and state["current"] is None:
                    state["current"], state["since"] = nodeid, now
                    state["cpu_since"] = None   # the next check reads where this test's CPU time starts
                    state["started"].append(nodeid)
                elif event == "report" and nodeid == state["current"]:
                    state["verdicts"].add(nodeid, record["when"], record["outcome"], clean(record.get("output")),
                                          record.get("score"))
                elif event == "finish" and nodeid == state["current"]:
                    verdict = state["verdicts"].verdicts.get(nodeid)
                    if not (verdict and verdict["outcome"]):
                        verdict = {"outcome": "failed", "output": "The test reported no outcome."}
                    run.verdicts[nodeid] = verdict
                    pending.discard(nodeid)
                    state["current"], state["since"] = None, now
                elif event == "done" and state["current"] is None:
                    state["memory"] = f"; peak memory {record.get('maxrss_mb')} MB resident, " \
                                      f"{record.get('vmpeak_mb')} MB address space"
                else:
                    return False
                return True

            def check(cpu_seconds):
                """Why to stop the test process now, if it must stop: its test's budget (CPU, or the wall
                backstop), or the grader's own limit (this problem's share of the whole run)."""
                now = time.monotonic()
                if now >= deadline:
                    return "grader", "the grader stopped the test process: this problem's share of the " \
                                     "grading time limit ran out"
                current = state["current"]
                if state["cpu_since"] is None:
                    state["cpu_since"] = cpu_seconds
                cpu_limit, wall_limit = (STARTUP_CPU, STARTUP_WALL) if current is None else \
                    test_limits(by_id[current], timeout_scale, cores)
                if cpu_seconds - state["cpu_since"] > cpu_limit:
                    return "budget", f"the grader stopped the test process: over {cpu_limit:g} CPU seconds"
                if now - state["since"] > wall_limit:
                    return "budget", f"the grader stopped the test process: over {wall_limit:g} s of wall time"
                return None

            sandboxed = judge if remote else sandbox.Sandbox(
                isolation, read_only=read_only, uid=lease.uid if lease else None, scratch=scratch,
                scratch_dirs=SCRATCH_DIRS, gpu=device == "cuda")
            # CUDA reserves far more address space than any cap: on a GPU only the cgroup's memory limit holds
            limits = sandbox.Limits(memory_mb=memory_mb, address_space=device != "cuda")
            child = sandbox.run(python_argv() + test_process_args(manifest, remaining), env=env, cwd=scratch,
                                limits=limits, sandbox=sandboxed,
                                on_record=on_record, check=check)
            if remote:
                run.metrics += leaderboard.read_metrics(leaderboard.metrics_path(scratch), by_id)
        finally:
            if lease:
                if remote:  # the worker's processes and files, as run() does for a sandboxed child
                    sandbox.kill_uid(lease.uid)
                    sandbox.remove_files_of_uid(lease.uid)
                lease.close()
            sandbox.remove_tree(scratch)
            if worker_scratch is not None:
                sandbox.remove_tree(worker_scratch)
        why = child.describe()
        run.log.append(f"{problem}: test process {run.processes}"
                       + (" (the judge; its student worker sandboxed)" if remote else " (sandboxed)")
                       + f": {why}; {len(state['started'])} test(s) started; "
                       f"{child.cpu_seconds:.1f} CPU s; {child.output_bytes} bytes of output"
                       + (f"; {child.bad_records} bad record(s) ignored" if child.bad_records else "")
                       + (f"; {child.leftovers} process(es) survived the uid sweep" if child.leftovers else "")
                       + (f"; memory and processes capped {child.tree_limits}" if child.tree_limits else "")
                       + state["memory"])
        if child.bad_records:
            run.notes.append(f"{problem}: {child.bad_records} malformed or unauthenticated report(s) from the "
                             f"test process were ignored")
        current = state["current"]
        if current is not None:  # it died (or was killed) inside this test
            regrade = child.kind == "grader"
            if child.kind == "budget":
                budget = test_budget(by_id[current], timeout_scale)
                cpu_limit, wall_limit = test_limits(by_id[current], timeout_scale, cores)
                reason = (f"Timed out: the test did not finish within its {budget:g} s limit (the grader "
                          f"stopped it after {child.cpu_seconds - (state['cpu_since'] or 0):.0f} CPU seconds, "
                          f"{time.monotonic() - state['since']:.0f} s of wall time; limits {cpu_limit:g} CPU s, "
                          f"{wall_limit:g} s wall).")
            elif regrade:
                reason = GRADER_LIMIT + " This problem's share of the grading time ran out during this test."
            else:
                reason = f"The test did not finish: {why}. Your code may have exited the process " \
                         f"(sys.exit/os._exit), crashed, or exhausted the memory limit."
            tail = clean(child.output[-1500:]).strip()
            output = reason + (f"\n\nLast output of the test process:\n{tail}" if tail else "")
            run.verdicts[current] = {"outcome": "failed", "output": output, "regrade": regrade}
            if not by_id[current].get("hidden"):  # hidden tests stay unnamed until their results show
                run.notes.append(f"{problem}: {current}: {reason}")
            pending.discard(current)
            first_test_deaths = first_test_deaths + 1 if state["started"] == [current] else 0
        remaining = [n for n in remaining if n in pending]
        if not remaining:
            break
        if not state["started"]:
            regrade = child.kind == "grader"
            message = ((GRADER_LIMIT + " ") if regrade else "") + \
                (f"Not run: the test process stopped before running any test ({why}).\n"
                 f"Its output ended with:\n{clean(child.output[-2500:]).strip()}")
            for nodeid in remaining:
                run.verdicts[nodeid] = {"outcome": "failed", "output": message, "regrade": regrade}
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


def check_device(device: str, full_budget: bool, isolation: sandbox.Isolation) -> None:
    """GradeError unless grading on ``device`` can work here. Fails closed: "cuda" needs a GPU that
    torch sees (and, in namespaces, NVIDIA device nodes to give the sandbox); ``full_budget`` needs
    "cuda" (its tests train each experiment's full mode: hours on a CPU)."""
    if device not in DEVICES:
        raise GradeError(f"unknown device {device!r}: choose {' or '.join(DEVICES)}")
    if full_budget and device != "cuda":
        raise GradeError("--full-budget grades the full-budget tests, which train each experiment's full mode "
                         "(hours on a CPU): add --device cuda on a machine with an NVIDIA GPU")
    if device == "cpu":
        return
    if isolation.mode == "namespaces" and not sandbox.gpu_device_nodes():
        raise GradeError("--device cuda: there are no NVIDIA device nodes (/dev/nvidia*) to give the sandbox; "
                         "install the NVIDIA driver, or grade on the CPU (without --device)")
    try:
        probe = subprocess.run(python_argv() + ["-c", "import torch; print(torch.cuda.is_available())"],
                               env=dict(os.environ), capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise GradeError("--device cuda: asking torch for a CUDA GPU took over 300 s; check the driver "
                         "(nvidia-smi), or grade on the CPU (without --device)") from None
    if probe.stdout.strip() != "True":
        raise GradeError("--device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is not True"
                         + (f": {truncate(probe.stderr.strip(), 500)}" if probe.returncode else "")
                         + "); grade on the CPU (without --device), or install torch's CUDA build and the driver")


# --- the whole submission ---------------------------------------------------------------------

@dataclass
class Grade:
    results: list                  # [TestResult]
    notes: list                    # for the student
    log: list                      # for the instructor
    submission: Submission
    seconds: float
    warnings: list = field(default_factory=list)
    metrics: list = field(default_factory=list)       # recorded by the tests (see leaderboard)
    extra_data: dict = field(default_factory=dict)    # results' extra_data: seed, grader version, isolation
    board: dict = field(default_factory=dict)         # the leaderboard's metrics (empty: no leaderboard)

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
            f"in its folder '{safe_text(self.submission.folder, 300, one_line=True)}'"
        head = [f"Graded files found {where}: {', '.join(sorted(self.submission.files)) or 'none'}"]
        return markdown_summary(self.results, visible_only=True, head=head, notes=self.notes)

    def gradescope(self) -> dict:
        return gradescope_results(self.results, self.seconds, self.student_output(), output_format="md",
                                  extra_data=self.extra_data,
                                  leaderboard=leaderboard.entries(self.metrics, self.board))

    def table(self) -> str:
        """The instructor's summary: every test, hidden included, and the failed ones with messages."""
        return summary_table(self.results, notes=self.warnings + self.notes)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: grade-all gives each worker its own)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def grade(submission, output=None, *, tests_dir: Path = TESTS_DIR, keyword: str = None, markexpr: str = None,
          manifest: dict = None, time_limit: float = DEFAULT_TIME_LIMIT, memory_mb: int = DEFAULT_MEMORY_MB,
          timeout_scale: float = 1.0, isolation: str = "auto", board=(), log=None, remote_problems=None,
          device: str = "cpu", full_budget: bool = False) -> Grade:
    """Grade ``submission`` (folder or .zip); write Gradescope results to ``output`` if given, first
    before any student code runs (every test "not graded yet", flagged for regrade), then again as each
    problem finishes, so a grading killed from outside still leaves a valid file.

    ``isolation``: "auto" (namespaces; as root, refuse to grade if they cannot be set up), "namespaces",
    "uid" or "none" (see ``sandbox``). ``board``: metric names for Gradescope's leaderboard (see
    ``leaderboard``; empty: none). ``device``: "cpu" (CUDA hidden) or "cuda" (the student's code trains
    on the grader's GPU); ``full_budget`` (with "cuda" only): the full-budget tests too, as extra points.
    Raises SubmissionError (unreadable submission), GradeError (unusable tests or output path, no
    sandbox, or no GPU for "cuda").
    """
    started = time.monotonic()
    deadline = started + time_limit - RESULTS_RESERVE
    say = log or (lambda message: None)
    if output is not None:
        try:
            output = check_writable(output)
        except ValueError as error:
            raise GradeError(str(error)) from None
    try:
        chosen = sandbox.choose(isolation)
    except sandbox.IsolationError as error:
        raise GradeError(str(error)) from None
    check_device(device, full_budget, chosen)
    sandbox.become_subreaper()
    cores = available_cores()
    work = Path(tempfile.mkdtemp(prefix="hw3-grade-"))
    try:
        work.chmod(0o711)  # sandboxed processes may pass through, not list
        found = copy_student_files(submission, work / "submission")
        sources = {name: path.read_bytes() for name, path in found.files.items()}
        shutil.rmtree(work / "submission")  # from here on the submission exists only in this process
        if manifest is None:
            say("collecting the tests")
            manifest = collect_manifest(tests_dir, keyword, markexpr, workdir=work, full_budget=full_budget)
        runtime = make_runtime(work / secrets.token_hex(8))
        warnings = check_weights(manifest)
        notes = list(found.notes)
        logs = [f"sandbox: {chosen.describe()}", f"cores: {cores} (torch threads per test process)",
                f"device: {device}" + (" (the full-budget tests included)" if full_budget else "")]
        say(logs[0])
        verdicts, metrics = {}, []
        extra_data = {"grader_version": grader_version(sorted({t["file"] for t in manifest["tests"]})),
                      "isolation": chosen.mode, "seed": {"HW3_TEST_SEED": None, "PYTHONHASHSEED": 0},
                      "device": device, "full_budget": full_budget}
        not_yet = {"outcome": "failed", "regrade": True,
                   "output": GRADER_LIMIT + " Grading stopped before this test ran."}

        def report() -> Grade:
            results = [apply_verdict(from_spec(spec), verdicts.get(spec["nodeid"], not_yet))
                       for spec in manifest["tests"]]
            return Grade(number_tests(results), notes, logs, found, time.monotonic() - started, warnings,
                         metrics, extra_data, leaderboard.board_of(board))

        def save():
            if output is not None:
                write_json_atomically(report().gradescope(), output)

        save()
        to_run = [p for p in PROBLEMS if any(t["problem"] == p for t in manifest["tests"])
                  and BY_NAME[p].student_file in found.files]

        def budget(problem):
            return sum(test_budget(t, timeout_scale) for t in manifest["tests"] if t["problem"] == problem) \
                + STARTUP_ALLOWANCE
        for problem in PROBLEMS:
            specs = [t for t in manifest["tests"] if t["problem"] == problem]
            filename = BY_NAME[problem].student_file
            if not specs:
                continue
            if filename not in found.files:
                message = (f"{filename} is missing from your submission, so Problem {BY_NAME[problem].number} "
                           f"scores 0. Submit {', '.join(STUDENT_FILES)} (at the top of the submission or in "
                           f"one folder).")
                notes.append(message)
                for spec in specs:
                    verdicts[spec["nodeid"]] = {"outcome": "failed", "output": message}
                continue
            say(f"running {len(specs)} test(s) of {problem}")
            share = problem_deadline(problem, to_run, budget, deadline)
            try:
                run = run_problem(problem, specs, manifest, private_copy(work, filename, sources[filename]), work,
                                  deadline=share, memory_mb=memory_mb, isolation=chosen, runtime=runtime,
                                  timeout_scale=timeout_scale, cores=cores,
                                  remote_problems=suite_remote_problems(manifest) if remote_problems is None
                                  else frozenset(remote_problems), device=device)
            except Exception as error:  # noqa: BLE001 -- a grader fault costs this problem only, flagged
                run = ProblemRun(problem, specs)
                for spec in specs:
                    run.verdicts[spec["nodeid"]] = {"outcome": "failed", "regrade": True, "output":
                                                    "Flagged for regrade: the grader failed while grading this "
                                                    "problem (not your code's fault); the staff will look."}
                run.notes.append(f"{problem}: the grader failed on this problem (flagged for regrade)")
                run.log.append(f"{problem}: GRADER ERROR {type(error).__name__}: {safe_text(error, 2000)}")
            verdicts.update(run.verdicts)
            metrics += run.metrics
            notes += run.notes
            logs += run.log
            save()
    finally:
        sandbox.remove_tree(work)   # whatever a submission left there, however deep
    final = report()
    if output is not None:
        write_json_atomically(final.gradescope(), output)
    return final


def problem_deadline(problem: str, to_run: list, budget, deadline: float) -> float:
    """When ``problem`` must stop: the whole run's deadline, less a reserve for each problem still to run
    (its proportional share of the time left, by declared budgets, but at most LATER_PROBLEM_RESERVE).
    A problem that hangs cannot starve the ones after it, and one that is only slow (a busy machine)
    may use all the time they do not need."""
    now = time.monotonic()
    left = max(0.0, deadline - now)
    pending = to_run[to_run.index(problem):]
    total = sum(budget(p) for p in pending)
    reserve = sum(min(LATER_PROBLEM_RESERVE, left * budget(p) / total) for p in pending[1:])
    return max(now, deadline - reserve)


def private_copy(work: Path, filename: str, source: bytes) -> Path:
    """A fresh folder holding only this problem's file, written from memory just before its run: an
    earlier problem's code cannot have prepared or altered it. Returns the folder (``.../impl``)."""
    impl_dir = work / secrets.token_hex(8) / "impl"
    impl_dir.mkdir(parents=True)
    impl_dir.parent.chmod(0o711)
    (impl_dir / filename).write_bytes(source)
    (impl_dir / filename).chmod(0o644)
    impl_dir.chmod(0o755)
    return impl_dir
