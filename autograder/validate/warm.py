"""The ``--engine warm`` of validate: the grader's scoring, without paying ``import torch`` per run.

``python -m autograder validate`` grades each case with :func:`autograder.grade.grade` by default
(``--engine grader``): exactly Gradescope's path, one fresh sandboxed pytest process per problem
run. Most of such a run's CPU time is spent starting it -- importing torch (~2.5 s of CPU) and
torch._dynamo, which the first optimizer pulls in (~2 s) -- not in the tests. Validate runs over a
hundred of them.

This engine keeps one *warm* process per worker, with those libraries imported (and nothing
computed, so no thread pool exists yet), and forks a child for each run. The child sets up what
the grader's test process gets -- the same minimal environment (``autograder.grade.base_env``:
HW3_IMPL, PYTHONHASHSEED=0, no CUDA, ...), a scratch working folder, the same pytest arguments
(``autograder.grade.pytest_args``, without the grader's channel) and
the grader's memory cap -- runs pytest in-process, and merges each test's phase reports with the
grader's own ``Verdicts`` (partial credit from ``@partial_credit`` included). The parent turns the
verdicts into scores with the grader's ``from_spec``/``apply_verdict`` over the trusted manifest,
as ``grade()`` does. What it leaves out is the isolation (private uid, restart after a crash, the
authenticated channel): irrelevant for trusted catalogue variants. A child that overruns the sum of
its tests' timeouts (+25 %, +60 s) is killed and its unfinished tests fail, as in the grader.
"""
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from hw3.files import write_atomically

_warm = False


def warm_up() -> None:
    """Import what every test process imports (ProcessPoolExecutor initializer). Computes nothing."""
    global _warm
    if _warm:
        return
    os.environ.setdefault("MPLBACKEND", "Agg")
    import importlib
    import pkgutil

    import torch
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo; no parallel region
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    import _pytest.python  # noqa: F401
    import gradescope_utils.autograder_utils.decorators  # noqa: F401
    from tqdm import tqdm
    # Every tqdm bar (even a disabled one) takes tqdm's lock, which creates a multiprocessing
    # semaphore on first use: made in each forked child, which leaves by os._exit, it was reported
    # as "leaked semaphore objects" at the end of every validate run. Made here, children share it.
    tqdm.get_lock()
    import autograder.grade.plugin  # noqa: F401
    import hw3
    for optional in ("pytest_timeout", "torchvision", "matplotlib.pyplot"):
        try:
            importlib.import_module(optional)
        except Exception:
            pass
    for module in pkgutil.iter_modules(hw3.__path__):
        if module.name not in ("__main__",):
            try:
                importlib.import_module(f"hw3.{module.name}")
            except Exception:
                pass
    _warm = True


class _Collector:
    """In the child: each test's phase reports -> one verdict, as the grader's channel does."""

    def __init__(self):
        from autograder.grade.plugin import Verdicts
        self.verdicts = Verdicts()
        self.finished = set()

    def pytest_runtest_logreport(self, report):
        from autograder.grade.plugin import output_of
        self.verdicts.add(report.nodeid, report.when, report.outcome,
                          output_of(report, getattr(report, "hw3_hide_errors", None)),
                          getattr(report, "hw3_score", None))

    def pytest_runtest_logfinish(self, nodeid):
        self.finished.add(nodeid)


def _child(argv, env, scratch: Path, out: Path, memory_mb: int) -> None:
    """Runs in the forked child; never returns."""
    code = 70
    try:
        os.setsid()
        log = os.open(scratch / "output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        if memory_mb:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.environ.clear()
        os.environ.update(env)
        os.chdir(scratch)
        sys.argv = ["pytest"]
        import torch
        threads = env.get("OMP_NUM_THREADS")
        if threads:
            torch.set_num_threads(int(threads))
        import pytest
        collector = _Collector()
        pytest.main(argv, plugins=[collector])
        verdicts = {n: v for n, v in collector.verdicts.verdicts.items() if n in collector.finished}
        write_atomically(out, json.dumps(verdicts))
        code = 0
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def grade_source(problem: str, source: str, manifest: dict, tests_dir=None, workdir=None, memory_mb: int = None):
    """Like runner.grade_source (the grader), in a child forked from this warm process;
    -> (results, seconds). results: autograder.grade.results.TestResult, scored by the grader's code."""
    from autograder.grade import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, base_env, pytest_args
    from autograder.grade.results import apply_verdict, from_spec, number_tests
    warm_up()
    memory_mb = DEFAULT_MEMORY_MB if memory_mb is None else memory_mb
    specs = manifest["tests"]
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hw3-validate-warm-", dir=workdir) as tmp:
        tmp = Path(tmp)
        impl_dir, scratch = tmp / "impl", tmp / "scratch"
        impl_dir.mkdir()
        scratch.mkdir()
        (impl_dir / f"{problem}.py").write_text(source)
        env = base_env(scratch, impl_dir)
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        argv = pytest_args(manifest, [s["nodeid"] for s in specs], channel=False)
        out = tmp / "verdicts.json"
        budget = sum((s.get("timeout") or DEFAULT_TIMEOUT) for s in specs) * 1.25 + 60
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(argv, env, scratch, out, memory_mb)
        deadline, killed = time.monotonic() + budget, ""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline and not killed:
                killed = f"killed after {budget:.0f} s (the sum of its tests' timeouts, +25 %, +60 s)"
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        verdicts = json.loads(out.read_text()) if out.is_file() else {}
        tail = (scratch / "output.txt").read_text(errors="replace")[-1500:] if (scratch / "output.txt").is_file() else ""
        why = killed or (f"the test process ended with status {os.waitstatus_to_exitcode(status)}")
        results = []
        for spec in specs:
            verdict = verdicts.get(spec["nodeid"]) or {"outcome": "failed",
                                                       "output": f"The test did not finish: {why}.\n{tail}"}
            if not verdict.get("outcome"):
                verdict = {"outcome": "failed", "output": "The test reported no outcome."}
            results.append(apply_verdict(from_spec(spec), verdict))
        shutil.rmtree(scratch, ignore_errors=True)
    return number_tests(results), time.monotonic() - start
