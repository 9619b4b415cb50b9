"""Running a student module in a separate worker process, with only plain data crossing.

The judge (the test process) never imports the student's file: it starts ``python -m
hw3.remote.worker`` and talks to it through :class:`hw3.remote.proxy.RemoteModule`. What crosses
the boundary is defined, and checked on both sides, by :mod:`hw3.remote.codec`.
"""
from hw3.impl import JUDGE_ENV_VAR
from hw3.problems import NAMES

__all__ = ["JUDGE_ONLY_DATA", "PREFIX_ENV", "REMOTE_PROBLEMS", "RemoteError", "RemoteHandle", "RemoteModule",
           "StudentError", "THREAD_POLICY"]

# JSON list: the command the grader runs the worker under (its sandbox). Set only in a judge process,
# which hw3.impl.load then refuses to import student code into.
PREFIX_ENV = JUDGE_ENV_VAR
# Data (relative to the data root) only the judge reads: the evaluation sets, and all of LFW. In the
# grader's worker sandbox (namespaces) each file reads as an empty file, each folder as an empty folder.
# LFW's images sit in folders named by person (and its cache lists those names beside the faces), so a
# worker that could read them would know who every face it is sent is: the judge sends the worker the
# faces it trains on and embeds instead (hw3.contrastive_training.lfw_verification).
JUDGE_ONLY_DATA = (
    "MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte.gz",
    "MNIST/raw/t10k-labels-idx1-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte.gz",
    "lfw", "cache",
)

# How torch's OpenMP threads wait (libgomp, in torch's Linux wheels), in the worker and (set by the
# grader) the judge: they spin 10 000 times, not libgomp's 300 000, before they sleep. Threads that
# spin long while waiting for each other made training 2.5-7x slower beside other work; threads that
# sleep at once (OMP_WAIT_POLICY=PASSIVE) made the idle graded suite 1.6x slower (many small
# operations). The short spin is within 10 % of the fastest idle and within 2x of the best busy.
THREAD_POLICY = {"GOMP_SPINCOUNT": "10000"}

# The problems whose test fixtures are RemoteModule proxies (their tests are written for the
# boundary); the grader runs their pytest outside the sandbox and only the worker inside it.
REMOTE_PROBLEMS = frozenset(NAMES)   # all four today; a subset would keep the others in-process


def __getattr__(name: str):
    """The proxies, imported on first use: the grader reads the names above without importing torch."""
    if name == "RemoteError":
        from hw3.remote.codec import RemoteError
        return RemoteError
    if name in ("RemoteHandle", "RemoteModule", "StudentError"):
        from hw3.remote import proxy
        return getattr(proxy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
