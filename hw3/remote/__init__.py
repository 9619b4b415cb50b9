"""Running a student module in a separate worker process, with only plain data crossing.

The judge (the test process) never imports the student's file: it starts ``python -m
hw3.remote.worker`` and talks to it through :class:`hw3.remote.proxy.RemoteModule`. What crosses
the boundary is defined, and checked on both sides, by :mod:`hw3.remote.codec`.
"""
from hw3.remote.codec import RemoteError
from hw3.remote.proxy import RemoteHandle, RemoteModule, StudentError

__all__ = ["REMOTE_PROBLEMS", "RemoteError", "RemoteHandle", "RemoteModule", "StudentError"]

# The problems whose test fixtures are RemoteModule proxies (their tests are written for the
# boundary); the grader runs their pytest outside the sandbox and only the worker inside it.
REMOTE_PROBLEMS = frozenset()
