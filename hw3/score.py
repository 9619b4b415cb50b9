"""The local score: ``pytest tests/ ...`` ends with the points your code earned, section by section.

The table reads the gradescope-utils decorators the autograder reads -- ``@weight`` (or
``@partial_credit``), ``@number("P.S.K")`` (the K-th test of handout section P.S) and the
``extra_credit`` marker -- and scores each test as the autograder does: a passed test earns its
weight, a ``@partial_credit`` test the score it set (clamped to [0, weight]), anything else 0.
The hidden tests are not in your copy, so their points per section are listed here (a project test
checks them against the hidden tests).

hw3/pytest_plugin.py registers :class:`LocalScore` unless the run is the autograder's own (its plugin
is loaded, or its options below are set): the autograder prints its own table.
"""
import math
from dataclasses import dataclass

import pytest

from hw3 import problems

SECTIONS = {  # handout section -> (what it grades, points of its hidden tests)
    "1.1": ("conv2d", 1.5), "1.2": ("global_pool", 0.5), "1.3": ("ConvNet", 0.5),
    "1.4": ("training ConvNet", 1.5),
    "2.1": ("ContrastiveLoss", 3), "2.2": ("training on MNIST", 2), "2.4": ("FaceEmbeddingNet", 0),
    "3.3": ("one_hot", 0.5), "3.4": ("CVAE.__init__, encode", 0), "3.5": ("reparameterize", 1),
    "3.6": ("decode, forward", 1), "3.7": ("kl_divergence", 1), "3.8": ("loss_function", 1),
    "3.9": ("training the CVAE", 0),
    "4.1": ("sample_noise", 0.5), "4.2": ("build_discriminator", 1), "4.3": ("build_generator", 1),
    "4.4": ("get_optimizer", 0), "4.5": ("bce_loss", 0.5), "4.6": ("discriminator_loss", 0),
    "4.7": ("generator_loss", 0.5), "4.8": ("training the DCGAN", 0),
}
PROBLEMS = {str(p.number): p.student_file for p in problems.PROBLEMS}  # handout number -> student file
GRADER_PLUGIN = "autograder.grade.plugin"
GRADER_OPTIONS = ("--hw3-channel", "--hw3-manifest", "--gradescope-results")


@dataclass
class GradedTest:
    section: str        # "4.2"
    weight: float
    extra_credit: bool
    hidden: bool
    ran: bool = False
    earned: float = 0.0


def graded_test(item):
    """A GradedTest for a collected test that carries points, else None (also for the full-budget
    tests, marked gpu: only a grading on a GPU with the full budgets scores them)."""
    function = getattr(item, "function", None)
    weight = getattr(function, "__weight__", None)
    number = str(getattr(function, "__number__", ""))
    if not weight or number.count(".") < 2 or item.get_closest_marker("gpu") is not None:
        return None
    return GradedTest(section=number.rsplit(".", 1)[0], weight=float(weight),
                      extra_credit=item.get_closest_marker("extra_credit") is not None,
                      hidden=item.path.parent.name == "hidden")


def partial_score(value, weight: float) -> float:
    """A @partial_credit score as the autograder counts it: clamped to [0, weight], 0 if not a finite number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(value, 0.0), weight) if math.isfinite(value) else 0.0


def points(value: float) -> str:
    return f"{value:g}"


class LocalScore:
    """Collects the graded tests' outcomes and prints the score table in the terminal summary."""

    def __init__(self):
        self.tests = {}       # nodeid -> GradedTest, of the tests selected to run
        self.deselected = []  # GradedTest of the tests -k / -m left out

    @pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
    def pytest_collection_modifyitems(self, items):
        for item in items:
            test = graded_test(item)
            if test:
                self.tests[item.nodeid] = test

    def pytest_deselected(self, items):
        for item in items:
            test = self.tests.pop(item.nodeid, None) or graded_test(item)
            if test:
                self.deselected.append(test)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        # @partial_credit stores its score on the test function: each case starts afresh.
        function = getattr(item, "function", None)
        if function is not None:
            vars(function).pop("__score__", None)
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = (yield).get_result()
        test = self.tests.get(item.nodeid)
        if test is None:
            return
        if report.when == "setup":
            test.ran, test.earned = True, 0.0
        if report.when == "call":
            partial = vars(item.function).get("__score__")
            if partial is not None and (report.passed or report.failed):
                test.earned = partial_score(partial, test.weight)
            else:
                test.earned = test.weight if report.passed else 0.0
        elif report.failed:  # an error in setup or teardown earns nothing
            test.earned = 0.0

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: after pytest's short test summary
    def pytest_terminal_summary(self, terminalreporter):
        yield
        lines = self.table()
        if lines:
            terminalreporter.section("hw3 local score")
            for line in lines:
                terminalreporter.write_line(line)

    # --- the table ------------------------------------------------------------------------------

    def ran_in(self, section: str, hidden: bool = False) -> list:
        """The tests of ``section`` that ran, visible or hidden."""
        return [t for t in self.tests.values() if t.section == section and t.ran and t.hidden == hidden]

    def not_run(self) -> list:
        """The visible graded tests deselected, or selected but never started (after -x, say)."""
        return [t for t in [*self.deselected, *self.tests.values()] if not t.ran and not t.hidden]

    def hidden_to_come(self, section: str) -> float:
        return 0.0 if self.ran_in(section, hidden=True) else SECTIONS[section][1]

    def table(self) -> list:
        problems = sorted({t.section.split(".")[0] for t in self.tests.values() if t.ran})
        if not problems:
            return []
        rows = [("section", "visible: earned / of", "hidden")]
        for problem in problems:
            sections = [s for s in SECTIONS if s.startswith(f"{problem}.")]
            rows += [self.section_row(s) for s in sections] + [self.problem_row(problem, sections)]
        width = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{a:<{width[0]}}  {b:>{width[1]}}  {c:>{width[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        return [lines[0], rule, *lines[1:], rule, *self.totals(problems)]

    def section_row(self, section: str) -> tuple:
        title = SECTIONS[section][0]
        visible = self.ran_in(section)
        if visible:
            extra = " (extra credit)" if any(t.extra_credit for t in visible) else ""
            score = f"{points(sum(t.earned for t in visible))} / {points(sum(t.weight for t in visible))}"
        else:
            extra, skipped = "", sum(t.weight for t in self.not_run() if t.section == section)
            score = f"not run ({points(skipped)})" if skipped else "-"
        return f"{section} {title}{extra}", score, self.hidden_cell(section)

    def hidden_cell(self, section: str) -> str:
        """The hidden points of a section; earned / of where the hidden tests ran here (staff checkouts)."""
        ran = self.ran_in(section, hidden=True)
        if ran:
            return f"{points(sum(t.earned for t in ran))} / {points(sum(t.weight for t in ran))} (ran here)"
        return points(SECTIONS[section][1]) if SECTIONS[section][1] else "-"

    def problem_row(self, problem: str, sections: list) -> tuple:
        ran = [t for s in sections for t in self.ran_in(s)]
        regular, extra = [t for t in ran if not t.extra_credit], [t for t in ran if t.extra_credit]
        score = f"{points(sum(t.earned for t in regular))} / {points(sum(t.weight for t in regular))}"
        if extra:
            score += f" (+{points(sum(t.earned for t in extra))} / {points(sum(t.weight for t in extra))} extra credit)"
        return f"Problem {problem} ({PROBLEMS[problem]})", score, points(sum(self.hidden_to_come(s) for s in sections))

    def totals(self, problems: list) -> list:
        ran = [t for t in self.tests.values() if t.ran and not t.hidden]
        regular, extra = [t for t in ran if not t.extra_credit], [t for t in ran if t.extra_credit]
        earned = (f"visible points earned: {points(sum(t.earned for t in regular))} of the "
                  f"{points(sum(t.weight for t in regular))} run here")
        if extra:
            earned += f", +{points(sum(t.earned for t in extra))} of {points(sum(t.weight for t in extra))} extra credit"
        hidden = sum(self.hidden_to_come(s) for s in SECTIONS if s.split(".")[0] in problems)
        lines = [earned, f"hidden points still to come: {points(hidden)} (the autograder runs the hidden tests when "
                         f"you submit;", "  their results are shown after the due date)"]
        not_run = [t for t in self.not_run() if t.section.split(".")[0] in problems]
        if not_run:
            lines.append(f"not run here: {len(not_run)} visible test{'s' * (len(not_run) != 1)} of these problems, "
                         f"worth {points(sum(t.weight for t in not_run))} points")
        return lines


def is_grader_run(config) -> bool:
    """The autograder's own runs load its plugin (and, on Gradescope, set its options)."""
    return (config.pluginmanager.has_plugin(GRADER_PLUGIN)
            or any(config.getoption(option, default=None) for option in GRADER_OPTIONS))


def register(config):
    """Print the local score at the end of this run, unless the autograder is running the tests."""
    if not is_grader_run(config):
        config.pluginmanager.register(LocalScore(), "hw3-local-score")
