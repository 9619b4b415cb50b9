"""pytest plugin for the instructor's measurement runs (flakiness, suite benchmark) on trusted code.

``-p autograder.flakiness.outcome_log --hw3-outcomes FILE`` appends one JSON line per finished test to
FILE: {"test": nodeid, "outcome": passed|failed|skipped, "seconds": setup + call + teardown, "message": the
failure's first line}. Not used by the grader.
"""
import json

import pytest


def pytest_addoption(parser):
    parser.getgroup("hw3-measure").addoption("--hw3-outcomes", metavar="FILE", default=None,
                                            help="append each test's outcome as a JSON line to FILE")


class OutcomeLog:
    """Appends each finished test's outcome to a JSON-lines file."""

    def __init__(self, path):
        self.path = path
        self.current = {}

    def pytest_runtest_logreport(self, report):
        state = self.current.setdefault(report.nodeid, {"test": report.nodeid, "outcome": "passed",
                                                        "seconds": 0.0, "message": ""})
        state["seconds"] = round(state["seconds"] + report.duration, 3)  # setup (fixtures) + call + teardown
        if report.failed and state["outcome"] != "failed":
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
            state["outcome"] = "failed"
            state["message"] = (crash or report.longreprtext or "").strip().splitlines()[0][:300] \
                if (crash or report.longreprtext) else f"failed in {report.when}"
        elif report.skipped and state["outcome"] == "passed":
            state["outcome"] = "skipped"

    def pytest_runtest_logfinish(self, nodeid):
        state = self.current.pop(nodeid, None)
        if state:
            with open(self.path, "a") as f:
                f.write(json.dumps(state) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    path = config.getoption("--hw3-outcomes")
    if path:
        config.pluginmanager.register(OutcomeLog(path), "hw3-outcomes")
