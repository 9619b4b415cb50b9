"""The worker boundary through the grader (issue 14): a problem's tests run in a judge process that
never imports the student's file; the file runs in a sandboxed worker that holds no test code, no
expected value and no results channel, and only plain data comes back.

Built on the synthetic four-problem suite of test_grade.py, with fixtures that are
RemoteModule proxies. Each trick below once earned points in-process (issue 14's measurements); on
top of a stub that solves nothing, each must leave gan at 0 and the other problems intact.
"""
import json
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest

from autograder import grade as grader
from autograder.grade import sandbox
from test_grade import PROBLEMS, conftest_of, points, submission, write_suite

pytestmark = pytest.mark.timeout(900)

REMOTE_CONFTEST = conftest_of("""
    with RemoteModule(name, impl.impl_dir(), threads=1) as module:
        yield module
""", imports="from hw3.remote import RemoteModule")  # the student's file in a worker
# Solves nothing: every test of its problem fails without a trick.
STUB = ("def value():\n    return 41\n\ndef fraction():\n    return 0.0\n\ndef hidden():\n    return 'no'\n\n"
        "def extra():\n    return 0\n")
TRICKS = {
    "patch pytest's CallInfo.from_call": '''
        import _pytest.runner as runner
        original = runner.CallInfo.from_call.__func__
        runner.CallInfo.from_call = classmethod(
            lambda cls, func, when, reraise=None: original(cls, lambda: None, when, reraise))
    ''',
    "the plugin's channel from gc": '''
        import gc
        for o in gc.get_objects():
            if type(o).__name__ == "Channel" and hasattr(o, "send"):
                o.send({"event": "report", "outcome": "passed"})
    ''',
    "__score__ through sys.setprofile": '''
        import sys
        def profile(frame, event, arg):
            if frame.f_code.co_name.startswith("test_"):
                frame.f_globals.get(frame.f_code.co_name, object).__dict__["__score__"] = 1e9
        sys.setprofile(profile)
        import threading
        threading.setprofile(profile)
    ''',
    "the expected value from the caller's frame": '''
        import sys
        def value():
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_name.startswith("test_"):
                    return max(c for c in frame.f_code.co_consts if type(c) is int)
                frame = frame.f_back
            return 41
    ''',
    "an object equal to everything": '''
        class Anything:
            def __eq__(self, other):
                return True
            def __ge__(self, other):
                return True
            def __float__(self):
                return 1.0
            def __mul__(self, other):
                return other
            __rmul__ = __mul__
        def value():
            return Anything()
        fraction = hidden = extra = value
    ''',
    "the test file read from disk": '''
        import re
        def value():
            return int(re.search(r"== (\\d+)", open("{suite}/test_gan.py").read()).group(1))
    ''',
    "kill the test process": '''
        import os, signal
        def value():
            os.kill(os.getppid(), signal.SIGKILL)
            return 41
    ''',
}


@pytest.fixture(scope="module")
def remote_suite():
    root = Path(tempfile.mkdtemp(prefix="hw3-remote-suite-"))
    root.chmod(0o755)
    tests = write_suite(root)
    (tests / "conftest.py").write_text(REMOTE_CONFTEST)
    yield tests
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def remote():
    """The problems to grade across the boundary (grade's remote_problems: a suite of its own)."""
    return frozenset(PROBLEMS)


def test_the_judge_runs_outside_and_correct_code_keeps_full_marks(tmp_path, remote_suite, remote):
    out = tmp_path / "results.json"
    report = grader.grade(submission(tmp_path / "sub"), out, tests_dir=remote_suite, remote_problems=remote)
    assert points(report) == {"cnn": 25, "contrastive": 25, "cvae": 25, "gan": 25, "extra_credit": 5, "total": 105}
    assert json.loads(out.read_text())["score"] == 105


@pytest.mark.skipif(not sandbox.is_root(), reason="the namespaces sandbox of the worker needs root here")
@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_in_process_tricks_earn_nothing(tmp_path, remote_suite, remote, trick):
    source = STUB + textwrap.dedent(TRICKS[trick]).replace("{suite}", str(remote_suite))
    report = grader.grade(submission(tmp_path / "sub", source), tmp_path / "r.json", tests_dir=remote_suite, remote_problems=remote)
    assert points(report) == {"cnn": 25, "contrastive": 25, "cvae": 25, "gan": 0, "extra_credit": 0, "total": 75}


SNOOP = '''
import os
def value():
    seen = []
    for path in ["{suite}", "{suite}/test_gan.py", "/proc/1/cmdline"]:
        try:
            seen.append((path, os.listdir(path) if os.path.isdir(path) else open(path, "rb").read()[:200]))
        except OSError as error:
            seen.append((path, type(error).__name__))
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    raw = os.path.join(os.environ["HW3_DATA"], "MNIST", "raw")
    sizes = {name: os.path.getsize(os.path.join(raw, name)) for name in ("t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte")}
    runtime = sorted(os.listdir(os.environ["PYTHONPATH"]))
    return repr((seen, fds, sorted(k for k in os.environ if "CHANNEL" in k or "PREFIX" in k), sizes, runtime))
'''


@pytest.mark.skipif(not sandbox.is_root(), reason="the namespaces sandbox of the worker needs root here")
def test_the_worker_sees_no_tests_no_channel_and_no_judge(tmp_path, remote_suite, remote):
    report = grader.grade(submission(tmp_path / "sub", SNOOP.replace("{suite}", str(remote_suite))),
                          tmp_path / "r.json", tests_dir=remote_suite, remote_problems=remote)
    failure = next(r for r in report.results if r.problem == "gan" and r.nodeid.endswith("test_value"))
    seen = failure.output
    assert "FileNotFoundError" in seen and "test_value" not in seen.split("got")[-1]
    assert "pytest" not in seen.split("got")[-1] and "--hw3-channel" not in seen
    assert "HW3_WORKER_PREFIX" not in seen
    # the evaluation set reads as empty in the worker (hw3.remote.JUDGE_ONLY_DATA); the training set does not
    assert "'t10k-labels-idx1-ubyte': 0, 'train-labels-idx1-ubyte': 60008" in seen
    # of the runtime copy, only the provided package (and its checksums): no grader, no judge code
    assert "['datasets', 'hw3'])" in seen


# --- found by the red team (each once earned points or leaked under the grader) ---------------------

LFW_SNOOP = '''
import os
def value():
    root = os.environ["HW3_DATA"]
    return repr({name: sorted(os.listdir(os.path.join(root, name)))[:3] for name in ("lfw", "cache", "MNIST")})
'''


@pytest.mark.skipif(not sandbox.is_root(), reason="the namespaces sandbox of the worker needs root here")
@pytest.mark.skipif(not (grader.data_root() / "lfw").is_dir(), reason="needs the LFW dataset")
def test_the_worker_sees_no_lfw_names_and_no_cache(tmp_path, remote_suite, remote):
    # LFW's images sit in folders named by person and its cache lists those names beside the faces: a
    # FaceEmbeddingNet that looked each face it was sent up there (and skipped training) scored 100 % on
    # pairsDevTest, 4 of 4 extra-credit points. The judge sends the worker the faces it needs instead.
    report = grader.grade(submission(tmp_path / "sub", LFW_SNOOP), tmp_path / "r.json", tests_dir=remote_suite, remote_problems=remote)
    seen = next(r for r in report.results if r.problem == "gan" and r.nodeid.endswith("test_value")).output
    assert "'lfw': [], 'cache': [], 'MNIST': ['raw']" in seen, seen


ZERO_THE_JUDGE = '''
import torch

def draw(n):
    state = torch.get_rng_state()
    state[24:24 + 624 * 8] = 0   # a Mersenne Twister of zeros: every later rand and randn is 0
    torch.set_rng_state(state)
    return torch.zeros(n)

def reseed(n):
    torch.manual_seed(0)
    return torch.randn(n)

def quiet():
    return 1
'''


def test_the_worker_cannot_choose_the_judges_random_draws(tmp_path):
    # The worker's RNG state used to become the judge's after each request: a student's function could
    # zero it, and every torch.rand / torch.randn the test drew after it (hidden test 1.1.7's biases and
    # upstream gradients, 1.2.4's maps) was exactly 0.
    from hw3.remote import RemoteModule
    import torch
    (tmp_path / "gan.py").write_text(ZERO_THE_JUDGE)
    with RemoteModule("gan", tmp_path, threads=1) as gan:
        draws = []
        for _ in range(2):
            torch.manual_seed(0)
            gan.draw(3)
            draws.append(torch.randn(100))
        assert draws[0].abs().min() > 0 and torch.equal(draws[0], draws[1])  # not zeros; the same every run
        torch.manual_seed(1)
        gan.reseed(3)  # the student's own seeding stays in the worker
        got = torch.randn(5)
        torch.manual_seed(0)
        torch.randn(3)
        assert not torch.equal(got, torch.randn(5))
        torch.manual_seed(2)
        before = torch.get_rng_state()
        assert gan.quiet() == 1  # a request that draws nothing leaves the judge's stream where it was
        assert torch.equal(torch.get_rng_state(), before)


def test_a_judge_refuses_student_code_even_when_a_suite_imports_it(tmp_path):
    """Fail closed: a suite declared remote whose fixtures import the student's file in-process (the
    synthetic suite of test_grade) must not run that file in the unsandboxed judge."""
    from test_grade import write_suite
    root = Path(tempfile.mkdtemp(prefix="hw3-inprocess-suite-"))
    root.chmod(0o755)
    try:
        tests = write_suite(root)
        mark = tmp_path / "ran-in-the-judge"
        source = STUB + f"\nopen({str(mark)!r}, 'w').write('x')\n"
        report = grader.grade(submission(tmp_path / "sub", source), tmp_path / "r.json", tests_dir=tests,
                              remote_problems={"gan"})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert not mark.exists()
    gan = [r for r in report.results if r.problem == "gan"]
    assert gan and all(r.score == 0 and "refusing to import gan.py into a judge process" in r.output for r in gan)
    assert points(report)["cnn"] == 25  # the other problems, declared in-process, run sandboxed as before


def test_impl_load_refuses_in_a_judge(monkeypatch):
    from hw3 import impl
    monkeypatch.setenv(impl.JUDGE_ENV_VAR, "[]")
    with pytest.raises(impl.ImplementationError, match="judge process"):
        impl.load("gan")
