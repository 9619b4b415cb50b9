"""Running a student module in a separate worker process, with only plain data crossing.

The judge (the test process) never imports the student's file: it starts ``python -m
hw3.remote.worker`` and talks to it through :class:`hw3.remote.proxy.RemoteModule`. What crosses
the boundary is defined, and checked on both sides, by :mod:`hw3.remote.codec`.
"""
from hw3.remote.codec import RemoteError
from hw3.remote.proxy import RemoteHandle, RemoteModule, StudentError

__all__ = ["RemoteError", "RemoteHandle", "RemoteModule", "StudentError"]
