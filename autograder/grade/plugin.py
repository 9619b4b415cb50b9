"""pytest plugin: gradescope-utils metadata (@weight, @number, @visibility, @partial_credit, @tags) -> results.

Three modes, one per option (``-p autograder.grade.plugin`` loads it):

``--gradescope-results PATH``
    In-process run for trusted code (the staff solution, a quick look): at the end, writes PATH in
    Gradescope's format and prints the summary table (points per problem, failed tests).
``--hw3-manifest PATH`` (with ``--collect-only``)
    Used by the grader: writes every selected test's metadata (the trusted part of a result:
    problem, number, weight, visibility, timeout) without running anything.
``--hw3-channel KEY_FD,OUT_FD``
    Used by the grader inside the sandboxed process that runs student code: streams each test's
    start, phase reports and finish as they happen, one authenticated JSON line each, to the pipe
    OUT_FD. The key is read from KEY_FD (then closed) at configure time, before any student code
    is imported. The grader trusts nothing else from this process: see autograder/README.md.
"""
import argparse
import hashlib
import hmac
import json
import os
import time
from pathlib import Path

import pytest

from autograder.grade.results import (MAX_TEST_OUTPUT, apply_verdict, check_writable, from_spec,
                                      gradescope_results, number_tests, problem_of, summary_table, truncate)
from hw3.files import write_json_atomically

MAX_CAPTURED = 1500  # characters of a failing test's captured output shown to the student


def pytest_addoption(parser, pluginmanager):
    group = parser.getgroup("hw3-autograder", "Homework 3 autograder (gradescope-utils metadata)")
    group.addoption("--gradescope-results", metavar="PATH", default=None,
                    help="write the results of this run in Gradescope's format to PATH and print "
                         "points per problem (trusted code only: no isolation)")
    group.addoption("--hw3-manifest", metavar="PATH", default=None, help=argparse.SUPPRESS)
    group.addoption("--hw3-channel", metavar="KEY_FD,OUT_FD", default=None, help=argparse.SUPPRESS)
    if not pluginmanager.has_plugin("timeout"):  # the grader runs with -p no:timeout: it enforces them itself
        parser.addini("timeout", "per-test budget in seconds (enforced by the grader, in CPU time)")


# --- per-test metadata ------------------------------------------------------------------------

def test_timeout(item):
    """The test's pytest-timeout budget in seconds (marker, else option/ini), or None."""
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        try:
            return float(value)
        except (TypeError, ValueError):
            return None
    for get in (lambda: item.config.getoption("timeout"), lambda: item.config.getini("timeout")):
        try:
            value = get()
        except (ValueError, KeyError):
            continue
        try:
            if value not in (None, ""):
                return float(value)
        except (TypeError, ValueError):
            pass
    return None


def spec_of(item) -> dict:
    """The trusted metadata of one collected test."""
    function = getattr(item, "function", None)
    path = Path(str(item.path))
    hidden = path.parent.name == "hidden"
    problem = problem_of(path) or "other"
    doc = (getattr(function, "__doc__", None) or "").strip().splitlines()
    name = item.name + (f": {doc[0].strip()}" if doc else "")
    visibility = getattr(function, "__visibility__", "visible")
    warnings = []
    if hidden and visibility == "visible":
        warnings.append(f"{item.nodeid}: hidden test marked visible; graded as after_due_date")
        visibility = "after_due_date"
    full_budget = item.get_closest_marker("gpu") is not None   # graded only by grade --full-budget
    extra = full_budget or item.get_closest_marker("extra_credit") is not None   # beyond the problem's 25
    tags = [problem] + (["hidden"] if hidden else []) + (["extra_credit"] if extra else [])
    tags += ["training"] if item.get_closest_marker("training") else []
    tags += ["full_budget"] if full_budget else []
    tags += [str(t) for t in getattr(function, "__tags__", ())]
    return {
        "nodeid": item.nodeid,
        "file": str(path),
        "problem": problem,
        "hidden": hidden,
        "name": name,
        "number": str(getattr(function, "__number__", "") or ""),
        "weight": float(getattr(function, "__weight__", 0) or 0),
        "visibility": visibility,
        "tags": tags,
        "extra_credit": extra,
        "timeout": test_timeout(item),
        "hide_errors": getattr(function, "__hide_errors__", None),
        "warnings": warnings,
    }


def output_of(report, hide_errors=None) -> str:
    """What the student sees for one failed/skipped phase: the error, a short traceback, what they printed."""
    if report.passed:
        return ""
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return f"skipped: {reason}"
    if hide_errors:
        return str(hide_errors)
    crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
    text = report.longreprtext or ""
    parts = []
    if report.when != "call":
        parts.append(f"error in test {report.when}")
    if crash:
        parts.append(truncate(crash, 1500))
        parts.append("")
        parts.append("Traceback (shortened):")
    parts.append(truncate(text, MAX_TEST_OUTPUT - 1800))
    printed = "".join(content for title, content in report.sections if "stdout" in title or "stderr" in title)
    if printed.strip():
        parts.append("")
        parts.append(f"Your code printed (last {MAX_CAPTURED} characters at most):")
        parts.append(printed[-MAX_CAPTURED:])
    return "\n".join(parts)


def memory_usage() -> dict:
    """Peak address space and resident memory of this process in MB (for calibrating --memory-mb)."""
    usage = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmPeak:", "VmHWM:")):
                    usage[line.split(":")[0]] = round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return {"vmpeak_mb": usage.get("VmPeak"), "maxrss_mb": usage.get("VmHWM")}


class Verdicts:
    """Merges a test's setup/call/teardown reports into one verdict (the same rules in both modes)."""

    def __init__(self):
        self.verdicts = {}

    def add(self, nodeid, when, outcome, output, score=None):
        v = self.verdicts.setdefault(nodeid, {"outcome": None, "score": None, "output": ""})
        if when == "setup":
            if outcome == "failed":
                v["outcome"], v["output"] = "error", output
            elif outcome == "skipped":
                v["outcome"], v["output"] = "skipped", output
        elif when == "call":
            v["outcome"], v["output"], v["score"] = outcome, output, score
        elif when == "teardown" and outcome == "failed" and v["outcome"] in ("passed", None):
            v["outcome"], v["output"] = "error", output
        return v


# --- the plugin -------------------------------------------------------------------------------

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    if not config.pluginmanager.has_plugin("timeout"):
        config.addinivalue_line("markers", "timeout(seconds): per-test budget, enforced by the grader")
    if config.getoption("--hw3-channel"):
        config.pluginmanager.register(Channel(config.getoption("--hw3-channel")), "hw3-channel")
    if config.getoption("--hw3-manifest"):
        config.pluginmanager.register(Manifest(config.getoption("--hw3-manifest")), "hw3-manifest")
    if config.getoption("--gradescope-results"):
        try:
            path = check_writable(config.getoption("--gradescope-results"))
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(LocalResults(path), "hw3-results")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """@partial_credit stores its score on the test function: clear it so each case starts afresh."""
    function = getattr(item, "function", None)
    if function is not None:
        vars(function).pop("__score__", None)
    yield


def plain_score(value):
    """A @partial_credit score as a float (numpy scalars included), or None if it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "call":
        report.hw3_score = plain_score(vars(getattr(item, "function", None) or (lambda: 0)).get("__score__"))
        report.hw3_hide_errors = getattr(getattr(item, "function", None), "__hide_errors__", None)


class Manifest:
    def __init__(self, path):
        self.path = path
        self.errors = []
        self.specs = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors.append(f"{report.nodeid or 'collection'}: {truncate(report.longreprtext, 3000)}")

    def pytest_collection_finish(self, session):
        self.specs = [spec_of(item) for item in session.items]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        config = session.config
        warnings = []
        if not self.errors:  # build the derived data these tests read (trusted: no student code here)
            from autograder.grade.prepare import prepare
            warnings = prepare(self.specs)[1]
        write_json_atomically({
            "rootdir": str(config.rootpath),
            "inifile": str(config.inipath) if config.inipath else None,
            "tests": self.specs,
            "errors": self.errors,
            "warnings": warnings,
        }, self.path)


class Channel:
    """Streams authenticated records to the grader as tests run."""

    def __init__(self, fds):
        key_fd, out_fd = (int(fd) for fd in fds.split(","))
        chunks = []
        while chunk := os.read(key_fd, 4096):
            chunks.append(chunk)
        os.close(key_fd)
        self._key = b"".join(chunks)
        self._out = out_fd
        os.set_inheritable(out_fd, False)  # not passed on to processes the student's code starts
        self._seq = 0

    def send(self, event, **fields):
        self._seq += 1
        payload = json.dumps({"seq": self._seq, "event": event, **fields}, sort_keys=True)
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        data = f"{mac} {payload}\n".encode()
        try:
            while data:
                data = data[os.write(self._out, data):]
        except OSError:
            pass

    def pytest_runtest_logstart(self, nodeid):
        self.send("start", nodeid=nodeid, time=time.time())

    def pytest_runtest_logreport(self, report):
        self.send("report", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
                  output=output_of(report, getattr(report, "hw3_hide_errors", None)),
                  score=getattr(report, "hw3_score", None))

    def pytest_runtest_logfinish(self, nodeid):
        self.send("finish", nodeid=nodeid)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        self.send("done", **memory_usage())


class LocalResults:
    """In-process results (trusted code only): the results file and the summary table."""

    def __init__(self, path):
        self.path = path
        self.specs = {}
        self.verdicts = Verdicts()
        self.start = time.time()
        self.results = []

    def pytest_collection_finish(self, session):
        self.specs = {item.nodeid: spec_of(item) for item in session.items}

    def pytest_runtest_logreport(self, report):
        self.verdicts.add(report.nodeid, report.when, report.outcome,
                          output_of(report, getattr(report, "hw3_hide_errors", None)),
                          getattr(report, "hw3_score", None))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        results = []
        for nodeid, spec in self.specs.items():
            if spec["problem"] == "other":
                continue
            verdict = self.verdicts.verdicts.get(nodeid, {"outcome": "failed", "output": "not run"})
            results.append(apply_verdict(from_spec(spec), verdict))
        self.results = number_tests(results)
        table = summary_table(self.results, visible_only=True, failures=False)
        write_json_atomically(gradescope_results(self.results, time.time() - self.start, table), self.path)

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.section("points (hw3 autograder)")
        for line in summary_table(self.results).splitlines():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"results written to {self.path}")
