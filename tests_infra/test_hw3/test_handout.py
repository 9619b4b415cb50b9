"""The handout's points tables agree with the graded tests' decorators, part by part.

The tests' gradescope-utils decorators decide the points: ``@weight``/``@partial_credit`` (times the
number of parametrized cases), ``@number("P.S.K")`` (the K-th test of handout section P.S) and ``@visibility`` (visible, or hidden until
after the due date). The handout states them twice:

- each problem page (handout/problem<P>.md) has a "## Points" table whose rows are the parts, with
  the tests of each part listed as "P.S.K description (weight)" (or "(cases × weight)"), visible
  tests first, hidden ones after a ";";
- the front page (handout/README.md) has one table for the whole assignment: per part, the points
  of its visible tests, of its hidden tests, and their sum; per problem, the total (25) and the
  extra credit on top.

A weight changed in one place and not the others would tell students something false, so all
three are compared here: every graded test is listed in exactly one part of its problem page with
its real weight, each part's points are the sum of its tests', and the front page's numbers are
the ones the decorators give. On a mismatch the message shows the rows the front page should have;
``python tests_infra/test_hw3/test_handout.py`` prints the whole expected points column.
"""
import importlib.util
import math
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from hw3 import problems

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDOUT = REPO_ROOT / "handout"
PROBLEMS = {p.number: p.name for p in problems.PROBLEMS}
POINTS_PER_PROBLEM = problems.POINTS_PER_PROBLEM
ROW = re.compile(r"^\|(.*)\|\s*$")
TEST_ITEM_START = re.compile(r"(?:^|[,;]\s+)(?=\d\.\d+\.\d+\s)")  # "…, 3.5.2 gradients …" starts an item
ITEM = re.compile(r"^(\d\.\d+\.\d+)\s.*\((?:(\d+)\s*[×x]\s*)?(\d+(?:\.\d+)?)\)\s*$", re.S)


# --- the decorators ---------------------------------------------------------------------------

@dataclass
class Graded:
    number: str  # "3.5.2"
    points: float  # weight times parametrized cases
    hidden: bool
    extra_credit: bool
    where: str  # "tests/test_cvae.py::test_reparameterize_gradients"


def graded_tests() -> dict:
    """{test number: Graded} over tests/test_*.py and tests/hidden/test_*.py: the tests Gradescope
    grades. The full-budget tests (marked gpu) are left out: only an instructor's grading on a GPU
    (grade --device cuda --full-budget) scores them, as extra points autograder/README.md lists."""
    files = sorted((REPO_ROOT / "tests").glob("test_*.py")) + sorted((REPO_ROOT / "tests" / "hidden").glob("test_*.py"))
    tests = {}
    for path in files:
        spec = importlib.util.spec_from_file_location(f"handout_check_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, function in vars(module).items():
            if not (name.startswith("test") and callable(function) and hasattr(function, "__weight__")):
                continue
            marks = getattr(function, "pytestmark", [])
            if any(m.name == "gpu" for m in marks):
                continue
            cases = math.prod(len(m.args[1]) for m in marks if m.name == "parametrize")
            number = str(function.__number__)
            where = f"{path.relative_to(REPO_ROOT)}::{name}"
            assert number not in tests, f"test number {number} is used twice: {tests[number].where} and {where}"
            tests[number] = Graded(number, function.__weight__ * cases,
                                   getattr(function, "__visibility__", "visible") != "visible",
                                   any(m.name == "extra_credit" for m in marks), where)
    return tests


# --- the handout's tables ---------------------------------------------------------------------

def section_id(cell: str) -> str:
    """The part a cell names: "1.1 `conv2d`" -> "1.1", "3.4–3.6" -> "3.4-3.6"; "" for none."""
    match = re.match(r"^(\d\.\d+(?:\s*[–-]\s*\d\.\d+)?)", cell.strip())
    return re.sub(r"\s*[–-]\s*", "-", match.group(1)) if match else ""


def table_rows(text: str):
    """The cells of every Markdown table row (separator rows left out)."""
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if match:
            cells = [c.strip() for c in match.group(1).split("|")]
            if not all(re.fullmatch(r":?-*:?", c) for c in cells):
                yield cells


def points(cell: str):
    """The number in a points cell ("19", "**25**", "**+5**", "3.5"), None for "writeup", "—" or ""."""
    match = re.fullmatch(r"\**\+?(\d+(?:\.\d+)?)\**", cell.replace(" ", ""))
    return float(match.group(1)) if match else None


def listed_tests(cell: str) -> list:
    """[(test number, points)] of a tests cell: "3.5.1 mean (2), 3.5.2 gradients (1); 3.5.3 dtype (1)"."""
    items = []
    for text in filter(None, (t.strip() for t in TEST_ITEM_START.split(cell))):
        match = ITEM.match(text)
        if match:
            items.append((match.group(1), int(match.group(2) or 1) * float(match.group(3))))
    return items


def page_parts(problem: int) -> dict:
    """{part: (stated points, [(test number, points)])} from the "## Points" table of handout/problem<P>.md."""
    page = HANDOUT / f"problem{problem}.md"
    text = page.read_text()
    assert "## Points" in text, f"{page.name} has no '## Points' section"
    section = text[text.index("## Points"):]
    end = section.find("\n## ", 1)
    parts = {}
    for cells in table_rows(section[:end] if end > 0 else section):
        part = section_id(cells[0])
        if len(cells) >= 3 and part.startswith(f"{problem}."):
            value = points(cells[-1])
            if value is not None:
                parts[part] = (value, listed_tests(cells[-2]))
    return parts


@dataclass
class ReadmeRow:
    visible: float
    hidden: float
    points: float
    extra_credit: bool


def readme_table() -> tuple:
    """({problem: {part: ReadmeRow}}, {problem: stated total}) from the points table of handout/README.md:
    | problem | part | what you do | visible tests | hidden tests | points |."""
    parts, totals, problem = defaultdict(dict), {}, None
    for cells in table_rows((HANDOUT / "README.md").read_text()):
        if len(cells) != 6:
            continue
        link = re.match(r"\[(\d)\.", cells[0])
        if link:
            problem = int(link.group(1))
        if problem is None or cells[0].startswith("**total"):
            continue
        part, value = section_id(cells[1]), points(cells[5])
        if value is None:
            continue
        if part:
            parts[problem][part] = ReadmeRow(points(cells[3]) or 0.0, points(cells[4]) or 0.0, value,
                                             cells[5].lstrip("*").startswith("+"))
        else:
            totals[problem] = value  # the problem's total row: "**25**"
    return parts, totals


# --- what the decorators say the tables should hold -------------------------------------------

def expected_rows(problem: int, tests: dict) -> dict:
    """{part: ReadmeRow} from the decorators, grouped by the problem page's parts."""
    rows = {}
    for part, (_, items) in page_parts(problem).items():
        graded = [tests[number] for number, _ in items if number in tests]
        rows[part] = ReadmeRow(sum(t.points for t in graded if not t.hidden),
                               sum(t.points for t in graded if t.hidden),
                               sum(t.points for t in graded), any(t.extra_credit for t in graded))
    return rows


def fmt(value: float) -> str:
    return f"{value:g}" if value else "–"


def expected_table(problem: int, tests: dict) -> str:
    """The points columns of handout/README.md for one problem, as the decorators give them."""
    lines = [f"Problem {problem}: | part | visible tests | hidden tests | points |"]
    for part, row in expected_rows(problem, tests).items():
        lines.append(f"| {part} | {fmt(row.visible)} | {fmt(row.hidden)} | "
                     f"{'**+' + fmt(row.points) + '**' if row.extra_credit else fmt(row.points)} |")
    total = sum(t.points for t in tests.values() if t.number.startswith(f"{problem}.") and not t.extra_credit)
    lines.append(f"| total | | | **{fmt(total)}** |")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def tests():
    return graded_tests()


def test_readme_lists_every_problem_page():
    readme = (HANDOUT / "README.md").read_text()
    for problem in PROBLEMS:
        assert f"(problem{problem}.md)" in readme


@pytest.mark.parametrize("problem", PROBLEMS)
def test_every_graded_test_is_in_its_problem_page_with_its_weight(problem, tests):
    parts = page_parts(problem)
    listed = defaultdict(list)
    for part, (stated, items) in parts.items():
        for number, weight in items:
            listed[number].append(part)
            assert number in tests, f"handout/problem{problem}.md, part {part}: there is no graded test {number}"
            assert number.startswith(f"{part}."), (
                f"handout/problem{problem}.md lists test {number} under section {part}: its number must start "
                f"with the section's ({part}.1, {part}.2, ...)")
            assert weight == tests[number].points, (
                f"handout/problem{problem}.md, part {part}: test {number} is given {weight:g} points; "
                f"{tests[number].where} weighs {tests[number].points:g}")
        assert sum(w for _, w in items) == stated, (
            f"handout/problem{problem}.md, part {part}: its tests add up to {sum(w for _, w in items):g}, "
            f"the table says {stated:g}")
    for number, test in tests.items():
        if number.startswith(f"{problem}."):
            assert len(listed[number]) == 1, (f"test {number} ({test.where}) is listed in parts {listed[number]} of "
                                              f"handout/problem{problem}.md, not in exactly one")


@pytest.mark.parametrize("problem", PROBLEMS)
def test_problem_weighs_25_points(problem, tests):
    ours = [t for t in tests.values() if t.number.startswith(f"{problem}.")]
    total = sum(t.points for t in ours if not t.extra_credit)
    assert total == POINTS_PER_PROBLEM, f"the tests of Problem {problem} weigh {total:g} points, not 25"
    assert all(not t.hidden for t in ours if t.extra_credit), "extra credit is graded by visible tests"


@pytest.mark.parametrize("problem", PROBLEMS)
def test_readme_points_table_matches_the_decorators(problem, tests):
    parts, totals = readme_table()
    expected = expected_rows(problem, tests)
    hint = "\nthe decorators give:\n" + expected_table(problem, tests)
    assert totals.get(problem) == POINTS_PER_PROBLEM, (
        f"handout/README.md gives Problem {problem} {totals.get(problem)} points, not 25" + hint)
    assert set(parts[problem]) == set(expected), (
        f"handout/README.md lists the parts {sorted(parts[problem])} of Problem {problem}; its page has "
        f"{sorted(expected)}" + hint)
    for part, row in expected.items():
        assert parts[problem][part] == row, (
            f"handout/README.md, part {part}: {parts[problem][part]}, the decorators give {row}" + hint)


def test_readme_total_row_matches_the_decorators(tests):
    """| **total** | | | 83 (+5) | 17 | **100 (+5)** |: visible (+ extra credit), hidden, all."""
    extra = sum(t.points for t in tests.values() if t.extra_credit)
    visible = sum(t.points for t in tests.values() if not t.hidden and not t.extra_credit)
    hidden = sum(t.points for t in tests.values() if t.hidden)
    total_rows = [cells for cells in table_rows((HANDOUT / "README.md").read_text())
                  if cells and cells[0].startswith("**total")]
    assert len(total_rows) == 1 and len(total_rows[0]) == 6, \
        "handout/README.md's points table ends with one **total** row of 6 cells"
    stated = [c.replace(" ", "") for c in total_rows[0][3:]]
    expected = [f"{visible:g}(+{extra:g})", f"{hidden:g}", f"**{visible + hidden:g}(+{extra:g})**"]
    assert stated == expected, f"the total row says {total_rows[0][3:]}; the decorators give {expected}"
    assert visible + hidden == POINTS_PER_PROBLEM * len(PROBLEMS)


def budgets() -> dict:
    """{command: (numbers its --quick cell must state, numbers its full-budget cell must state)}, from
    the experiments' own budget constants."""
    from hw3 import cnn_experiment, contrastive_experiment, cvae_experiment, gan_experiment
    c = contrastive_experiment
    return {
        "cnn": ([cnn_experiment.QUICK["train_samples"]], [cnn_experiment.FULL["train_samples"]]),
        "contrastive": ([c.MNIST_QUICK["iterations"], c.LFW_QUICK["iterations"], c.MNIST_QUICK["batch_size"]],
                        [c.MNIST_FULL["iterations"], c.LFW_FULL["iterations"], c.MNIST_FULL["batch_size"]]),
        "cvae": ([cvae_experiment.QUICK["iterations"], cvae_experiment.QUICK["batch_size"]],
                 [cvae_experiment.FULL["iterations"], cvae_experiment.FULL["batch_size"]]),
        "gan": ([gan_experiment.QUICK["iterations"], gan_experiment.QUICK["batch_size"]],
                [gan_experiment.FULL["iterations"], gan_experiment.FULL["batch_size"]]),
    }


def test_readme_experiment_budgets_match_the_experiments():
    """The front page's table of `python -m hw3 <problem>` states the budgets the experiments use."""
    rows = {re.match(r"`python -m hw3 (\w+)`", cells[0]).group(1): cells
            for cells in table_rows((HANDOUT / "README.md").read_text())
            if len(cells) == 4 and re.match(r"`python -m hw3 \w+`", cells[0])}
    for command, (quick, full) in budgets().items():
        assert command in rows, f"handout/README.md's experiments table has no row for python -m hw3 {command}"
        for column, numbers, cell in (("--quick", quick, rows[command][2]), ("full budget", full, rows[command][3])):
            stated = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", cell)}
            missing = [n for n in numbers if n not in stated]
            assert not missing, (f"handout/README.md, python -m hw3 {command}, {column}: {cell!r} does not state "
                                 f"{missing} (the experiment's budget)")


def test_readme_states_the_report_quick_budgets():
    """The paragraph on `python -m hw3 report --quick` states the budgets it runs: each experiment's own --quick."""
    text = (HANDOUT / "README.md").read_text()
    start = text.index("`--quick` runs every experiment with `--quick`")
    paragraph = text[start:text.index("\n\n", start)]
    stated = {int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", paragraph)}
    for problem, (numbers, _) in budgets().items():
        missing = [n for n in numbers if n not in stated]
        assert not missing, f"handout/README.md's paragraph on report --quick does not state {problem}'s {missing}"


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: "2.3 Written questions (in your writeup)" ->
    "23-written-questions-in-your-writeup"."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


DOCUMENT_PAGES = sorted(str(p.relative_to(REPO_ROOT)) for folder in ("handout", "solution/writeup")
                        for p in (REPO_ROOT / folder).rglob("*.md"))


@pytest.mark.parametrize("page", DOCUMENT_PAGES)
def test_relative_links_resolve(page):
    """Every relative link (and embedded figure) of the handout and the writeup names a file that
    exists, and a heading of it."""
    source = REPO_ROOT / page
    for target in re.findall(r"\]\(([^)\s]+)\)", source.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        path, _, fragment = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        assert file.exists(), f"{page} links to {target}: {file} does not exist"
        if fragment and file.suffix == ".md":
            headings = [slug(h) for h in re.findall(r"^#+\s+(.*)$", file.read_text(), re.M)]
            assert fragment in headings, f"{page} links to {target}: {file.name} has no heading with that anchor"


if __name__ == "__main__":  # print the points columns the front page should have
    sys.path.insert(0, str(REPO_ROOT))
    graded = graded_tests()
    print("\n\n".join(expected_table(p, graded) for p in PROBLEMS))
    sys.exit(0)
