"""``python -m autograder validate``: grade the solution, the starter and every catalogue variant.

Each *case* is graded on its own problem only (the submission holds just that problem's file, the
manifest just that problem's tests) by one of two engines:

* ``--engine grader`` (default): :func:`autograder.grade.grade`, the code Gradescope runs --
  sandboxed test processes, the trusted manifest, weights and partial credit;
* ``--engine warm``: the same pytest arguments, environment, verdict merging and scoring code, in
  children forked from a process that imported torch once (autograder/validate/warm.py): 3-4x
  less CPU, no sandbox. tests_infra/test_autograder/test_validate.py checks that both engines score alike.

    case                     expected                   how it is run
    solution                 full marks on every test   the problem's full suite
    starter                  zero on every test, each   the problem's full suite
                             failing "not implemented"
    wrong variant            loses points               fast tests (-m "not training") first; the
                                                        training tests only if the fast ones gave
                                                        full marks
    correct variant          full marks on every test   the problem's full suite
    trick                    zero on every test         the problem's full suite: the starter with
                                                        an in-process trick on top (tricks.py)

``--fast`` skips the training tests everywhere: the solution and correct variants must then earn
every fast-test point, and a wrong variant that earns them all is reported as "not caught by fast
tests" -- listed, but not a failure, because only the training tests (which --fast skips) could
catch it. The full run (the default, what CI runs) treats it as a failure.

Besides the cases, a problem fails validation when its tests are not worth exactly 25 points
(extra credit apart), or when its catalogue has fewer than 6 wrong or 2 correct variants.
The exit status is 1 when any verdict is wrong (or a variant's patch no longer applies), else 0.
"""
import copy
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from autograder import SOLUTION_DIR, STARTER_DIR
from autograder.validate.variants import MODULES, Variant, VariantError, catalogue, patched_source
from autograder.validate.tricks import TRICKS

MIN_WRONG, MIN_CORRECT = 6, 2

# What a case must do, and the words used in the table.
EXPECT = {"solution": "full marks", "starter": "zero", "wrong": "loses points", "correct": "full marks",
          "trick": "zero"}
OK, WRONG, PATCH_ERROR, NOT_CAUGHT_FAST, CHECK = "ok", "WRONG", "PATCH ERROR", "not caught by fast tests", "FAIL"


@dataclass
class Case:
    """One row of the table: what to grade and what is expected of it."""
    label: str                    # "gan/solution", "gan/flipped-labels", ...
    problem: str
    kind: str                     # "solution", "starter", "wrong", "correct", "trick"
    source: str = None            # the problem file's text (None: a patch error, see error)
    description: str = ""
    error: str = ""


@dataclass
class CaseOutcome:
    """How a case went."""
    label: str
    problem: str
    kind: str
    expected: str
    verdict: str = OK
    points: str = ""              # e.g. "25/25", "17/21 (fast)", "25/25 +3/3 EC"
    detail: str = ""              # which tests decided the verdict
    stages: list = field(default_factory=list)   # [{"stage", "score", "max", "extra", "extra_max", "seconds", ...}]
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.verdict not in (OK, NOT_CAUGHT_FAST)


# --- scoring helpers (pure: tested on synthetic results in tests_infra/test_autograder/test_validate.py) -----

def _fmt(x: float) -> str:
    return f"{round(x, 2):g}"


NOT_IMPLEMENTED = re.compile(r"not\s*implemented", re.IGNORECASE)  # the starter's stubs and NotImplementedError


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = next((line for line in lines if line.startswith("E ")), lines[0] if lines else "no message")
    return first[:160]


def stage_points(stage: str, results: list, seconds: float = 0.0, ignore=frozenset()) -> dict:
    """Points of one graded run. results: autograder.grade.results.TestResult-like objects
    (attributes number, nodeid, score, max_score, extra_credit, status). ignore: node ids of tests
    that the solution itself loses points on -- a wrong variant losing points there proves nothing,
    so they are left out of "lost" (and listed under "ignored")."""
    regular = [r for r in results if not r.extra_credit]
    extra = [r for r in results if r.extra_credit]
    label = lambda r: r.number or r.nodeid.split("::")[-1]
    lost = [r for r in results if r.score < r.max_score - 1e-9 or r.status != "passed"]
    return {
        "stage": stage,
        "score": sum(r.score for r in regular), "max": sum(r.max_score for r in regular),
        "extra": sum(r.score for r in extra), "extra_max": sum(r.max_score for r in extra),
        "tests": len(results),
        "lost": [label(r) for r in lost if r.nodeid not in ignore],
        "ignored": [label(r) for r in lost if r.nodeid in ignore],
        "lost_ids": [r.nodeid for r in lost],
        "earned": [label(r) for r in results if r.score > 1e-9 or r.status == "passed"],
        # failed without saying "not implemented" (for the starter: an import error, a skip, a bug)
        "other_failures": [f"{label(r)} ({_first_line(getattr(r, 'output', ''))})" for r in lost
                           if not NOT_IMPLEMENTED.search(getattr(r, "output", "") or "")],
        "seconds": round(seconds, 2),
    }


def points_text(stages: list) -> str:
    """ "25/25", "25/25 +3/3 EC", "17/21 (fast)" or "21/21 fast + 2/4 training". """
    if not stages:
        return "-"
    score, top = sum(s["score"] for s in stages), sum(s["max"] for s in stages)
    extra, extra_top = sum(s["extra"] for s in stages), sum(s["extra_max"] for s in stages)
    names = [s["stage"] for s in stages]
    if len(stages) > 1:
        text = " + ".join(f"{_fmt(s['score'])}/{_fmt(s['max'])} {s['stage']}" for s in stages)
    else:
        text = f"{_fmt(score)}/{_fmt(top)}" + ("" if names == ["full"] else f" ({names[0]})")
    if extra_top:
        text += f" +{_fmt(extra)}/{_fmt(extra_top)} EC"
    return text


def _tests(names: list, limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def verdict_of(kind: str, stages: list, fast_only: bool = False) -> tuple:
    """(verdict, detail) of a case from its graded stages (see stage_points).

    solution/correct: every test of every stage earned its full weight. starter: no test earned
    anything, and each failed saying "not implemented" (not an import error or a skip). wrong: some test of some stage lost points (extra credit counts: a mistake only an
    extra-credit test sees still costs the student those points).
    """
    lost = [name for s in stages for name in s["lost"]]
    earned = [name for s in stages for name in s["earned"]]
    if not stages or not any(s["tests"] for s in stages):
        return WRONG, "no graded tests were run"
    if kind in ("solution", "correct"):
        return (OK, "") if not lost else (WRONG, f"lost points in {_tests(lost)}")
    if kind == "starter":
        if earned:
            return WRONG, f"earned points in {_tests(earned)}"
        other = [name for s in stages for name in s.get("other_failures", [])]
        if other:
            return WRONG, f"failed for another reason than 'not implemented': {_tests(other, 3)}"
        return OK, ""
    if kind == "trick":
        return (WRONG, f"earned points in {_tests(earned)}") if earned else (OK, "")
    if kind == "wrong":
        if lost:
            where = next(s["stage"] for s in stages if s["lost"])
            return OK, f"caught by {_tests(lost)}" + (f" ({where})" if where != "full" else "")
        ignored = [name for s in stages for name in s.get("ignored", [])]
        also = f" (it lost points only in {_tests(ignored)}, which the solution fails too)" if ignored else ""
        if fast_only:
            return NOT_CAUGHT_FAST, "full marks on the fast tests (--fast skipped the training tests)" + also
        return WRONG, "full marks: no test catches this mistake" + also
    raise ValueError(f"unknown case kind {kind!r}")


# --- running cases --------------------------------------------------------------------------

def sub_manifest(manifest: dict, problem: str, training=None) -> dict:
    """The manifest restricted to one problem's tests; training: None (all), False (fast), True."""
    selected = copy.deepcopy(manifest)
    selected["tests"] = [t for t in manifest["tests"] if t["problem"] == problem
                         and (training is None or ("training" in t["tags"]) == training)]
    return selected


def grade_source(problem: str, source: str, manifest: dict, tests_dir: Path, workdir: Path,
                 memory_mb: int = None):
    """Grade one problem file's text with the real grader; -> (results, seconds)."""
    from autograder.grade import DEFAULT_MEMORY_MB, grade
    with tempfile.TemporaryDirectory(prefix="hw3-validate-", dir=workdir) as tmp:
        folder = Path(tmp) / "submission"
        folder.mkdir()
        (folder / f"{problem}.py").write_text(source)
        start = time.monotonic()
        report = grade(folder, tests_dir=tests_dir, manifest=manifest,
                       memory_mb=DEFAULT_MEMORY_MB if memory_mb is None else memory_mb)
        return report.results, time.monotonic() - start


def run_case(case: Case, manifest: dict, tests_dir: Path, fast_only: bool = False,
             baseline=frozenset(), engine: str = "grader", workdir: Path = None) -> CaseOutcome:
    """Grade one case as described in this module's docstring. baseline: node ids of the tests the
    solution loses points on (they cannot count as catching a wrong variant)."""
    started = time.monotonic()
    outcome = CaseOutcome(case.label, case.problem, case.kind, EXPECT[case.kind])
    if case.source is None:
        outcome.verdict, outcome.detail, outcome.points = PATCH_ERROR, case.error, "-"
        return outcome
    fast = sub_manifest(manifest, case.problem, training=False)
    training = sub_manifest(manifest, case.problem, training=True)
    if fast_only:
        plan = [("fast", fast)]
    elif case.kind == "wrong":
        plan = [("fast", fast), ("training", training)]
    else:
        plan = [("full", sub_manifest(manifest, case.problem))]
    for stage, selected in plan:
        if not selected["tests"]:
            continue
        if engine == "warm":
            from autograder.validate import warm
            results, seconds = warm.grade_source(case.problem, case.source, selected, tests_dir, workdir)
        else:
            results, seconds = grade_source(case.problem, case.source, selected, tests_dir, workdir)
        outcome.stages.append(stage_points(stage, results, seconds, baseline if case.kind == "wrong" else ()))
        if case.kind == "wrong" and outcome.stages[-1]["lost"]:
            break  # caught: the training tests need not run
    outcome.verdict, outcome.detail = verdict_of(case.kind, outcome.stages, fast_only)
    outcome.points = points_text(outcome.stages)
    outcome.seconds = time.monotonic() - started
    return outcome


def build_cases(problems, variants=None, solution_dir: Path = SOLUTION_DIR,
                starter_dir: Path = STARTER_DIR) -> list:
    """The cases of the given problems: solution, starter, then the catalogue's variants."""
    cases = []
    for problem in problems:
        for kind, folder in (("solution", solution_dir), ("starter", starter_dir)):
            path = folder / f"{problem}.py"
            if path.is_file():
                cases.append(Case(f"{problem}/{kind}", problem, kind, path.read_text(), f"{path}"))
            else:
                cases.append(Case(f"{problem}/{kind}", problem, kind, None, error=f"{path} does not exist"))
        for variant in (catalogue(problem) if variants is None else [v for v in variants if v.module == problem]):
            kind = "correct" if variant.correct else "wrong"
            try:
                source = patched_source(variant, solution_dir)
                cases.append(Case(f"{problem}/{variant.name}", problem, kind, source, variant.description))
            except (VariantError, OSError) as error:
                cases.append(Case(f"{problem}/{variant.name}", problem, kind, None, variant.description,
                                  error=str(error)))
        if variants is None:
            starter = starter_dir / f"{problem}.py"
            for trick in TRICKS:
                cases.append(Case(f"{problem}/trick-{trick.name}", problem, "trick",
                                  trick.code + starter.read_text() if starter.is_file() else None,
                                  trick.description, error=f"{starter} does not exist"))
    return cases


def problem_checks(problems, manifest: dict, cases: list, min_wrong: int = MIN_WRONG,
                   min_correct: int = MIN_CORRECT) -> list:
    """Failed checks that are not cases: weights not summing to 25, too small a catalogue, no tests."""
    from autograder.grade import check_weights
    failures = []
    warnings = check_weights(manifest)
    for problem in problems:
        tests = [t for t in manifest["tests"] if t["problem"] == problem]
        if not tests:
            failures.append(f"{problem}: no graded tests (tests/test_{problem}.py)")
        failures += [w for w in warnings if w.startswith(f"{problem}:") or w.startswith(f"tests/test_{problem}")
                     or f"test_{problem}_hidden" in w]
        wrong = sum(c.kind == "wrong" for c in cases if c.problem == problem)
        correct = sum(c.kind == "correct" for c in cases if c.problem == problem)
        if wrong < min_wrong or correct < min_correct:
            failures.append(f"{problem}: the catalogue (autograder/validate/catalogue_{problem}.py) has {wrong} "
                            f"wrong and {correct} correct variant(s); at least {min_wrong} and {min_correct} needed")
    return failures


def table(outcomes: list) -> str:
    """The report: one row per case."""
    header = ("case", "expected", "points", "verdict", "detail")
    rows = [(o.label, o.expected, o.points, o.verdict, o.detail + (f"  [{o.seconds:.0f} s]" if o.seconds else ""))
            for o in outcomes]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)) + "  " + r[4]
    return "\n".join([line(header), line(tuple("-" * w for w in widths) + ("-" * 6,))] + [line(r) for r in rows])


def problem_manifest(tests_dir: Path, problems) -> dict:
    """The grader's manifest of the given problems' test files only (a broken test file of another
    problem does not stop validating this one)."""
    from autograder.grade import collect_manifest
    return collect_manifest(tests_dir, problems=[name for name in MODULES if name in problems])


def markdown(report: dict, command: str) -> str:
    """The outcomes as a Markdown report (for benchmarks/RESULTS-validate.md)."""
    outcomes = report["outcomes"]
    bad = [o for o in outcomes if o.failed]
    lines = [
        "# Validation of the graded tests: solution, starter and the variant catalogue",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}; {report['seconds']:.0f} s wall on {os.cpu_count()} cores; "
        f"1-minute load average {report.get('load', ['?', '?'])[0]} at the start, {report.get('load', ['?', '?'])[1]} "
        f"at the end",
        "",
        f"{len(outcomes)} cases, {len(bad)} wrong verdict(s), {len(report['checks'])} failed check(s). "
        "Points: the problem's points over the tests that ran (fast = `-m \"not training\"`, training = the "
        "training tests, run for a wrong variant only when the fast tests gave full marks); EC = extra credit.",
        "",
        "| case | expected | points | verdict | detail | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        lines.append(f"| {o.label} | {o.expected} | {o.points} | {o.verdict} | {o.detail.replace('|', '/')} | "
                     f"{o.seconds:.0f} |")
    if report["checks"]:
        lines += ["", "Failed checks:", ""] + [f"- {c}" for c in report["checks"]]
    return "\n".join(lines) + "\n"


def validate(problems=None, *, jobs: int = 1, fast_only: bool = False, threads: int = None, engine: str = "grader",
             tests_dir: Path = None,
             solution_dir: Path = SOLUTION_DIR, starter_dir: Path = STARTER_DIR, variants=None,
             min_wrong: int = MIN_WRONG, min_correct: int = MIN_CORRECT, log=print) -> dict:
    """Run every case; -> {"outcomes": [CaseOutcome], "checks": [failed check], "failed": bool, "seconds"}."""
    from autograder.grade import TESTS_DIR
    started, load_start = time.monotonic(), round(os.getloadavg()[0], 2)
    if threads:  # the grader passes $OMP_NUM_THREADS on to the test processes (torch's CPU threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    tests_dir = Path(tests_dir or TESTS_DIR)
    problems = list(problems or MODULES)
    log(f"validate: collecting the tests in {tests_dir}")
    manifest = problem_manifest(tests_dir, problems)
    cases = build_cases(problems, variants, solution_dir, starter_dir)
    checks = problem_checks(problems, manifest, cases, min_wrong, min_correct)
    # The wrong variants of a problem wait for its solution's run: a test the solution loses points
    # on cannot count as catching them. The rest start at once, longest first (full suites).
    order = {"solution": 0, "correct": 1, "starter": 2, "trick": 3}
    ready = sorted((i for i, c in enumerate(cases) if c.kind != "wrong"), key=lambda i: (order[cases[i].kind], i))
    waiting = {p: [i for i, c in enumerate(cases) if c.kind == "wrong" and c.problem == p] for p in problems}
    baseline = {p: frozenset() for p in problems}
    log(f"validate: {len(cases)} case(s) in {', '.join(problems)}"
        f"{' (fast tests only)' if fast_only else ''}, {jobs} at a time, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, engine {engine}")
    outcomes = [None] * len(cases)

    def finished(i, outcome):
        outcomes[i] = outcome
        log(f"  {outcome.label}: {outcome.verdict} ({outcome.points}) {outcome.detail}  [{outcome.seconds:.0f} s]")
        if outcome.kind != "solution":
            return []
        baseline[outcome.problem] = frozenset(n for s in outcome.stages for n in s["lost_ids"])
        return waiting.pop(outcome.problem, [])

    args = lambda i: (cases[i], manifest, tests_dir, fast_only, baseline[cases[i].problem], engine)
    if jobs > 1 or engine == "warm":
        # Workers are fresh interpreters (spawn) with the grader's hash seed; a warm worker imports
        # torch & co. once and forks a child per graded run (autograder/validate/warm.py).
        import multiprocessing
        from autograder.validate import warm
        os.environ["PYTHONHASHSEED"] = "0"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=warm.warm_up if engine == "warm" else None) as pool:
            futures = {pool.submit(run_case, *args(i)): i for i in ready}
            while futures:
                done = next(as_completed(futures))
                for i in finished(futures.pop(done), done.result()):
                    futures[pool.submit(run_case, *args(i))] = i
    else:
        while ready:
            i = ready.pop(0)
            ready += finished(i, run_case(*args(i)))
    for indices in waiting.values():  # problems without a solution case (cannot happen: build_cases adds one)
        for i in indices:
            finished(i, run_case(*args(i)))
    failed = bool(checks) or any(o.failed for o in outcomes)
    return {"outcomes": outcomes, "checks": checks, "failed": failed, "seconds": time.monotonic() - started,
            "load": [load_start, round(os.getloadavg()[0], 2)]}
