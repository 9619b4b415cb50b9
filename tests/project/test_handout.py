"""The handout's front page agrees with the problem pages and with the graded tests.

handout/README.md states the points of every part; the problem pages (handout/problem<P>.md) state
them too, with their tests; the tests' @weight decorators decide them. A weight changed in one
place and not the others would tell students something false, so these three are compared here.
"""
import importlib.util
import math
import re
from collections import defaultdict

import pytest

from hw3 import REPO_ROOT

HANDOUT = REPO_ROOT / "handout"
PROBLEMS = {1: "cnn", 2: "contrastive", 3: "cvae", 4: "gan"}
ROW = re.compile(r"^\|(.*)\|\s*$")


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
    """The number in a points cell ("19", "**25**", "**+5**", "3.5"), None for "writeup" or "—"."""
    match = re.fullmatch(r"\**\+?(\d+(?:\.\d+)?)\**", cell.replace(" ", ""))
    return float(match.group(1)) if match else None


def readme_parts():
    """{problem: {part: points}} and {problem: (stated total, stated extra credit)} from handout/README.md."""
    parts, totals, problem = defaultdict(dict), {}, None
    for cells in table_rows((HANDOUT / "README.md").read_text()):
        if len(cells) != 4:
            continue
        link = re.match(r"\[(\d)\.", cells[0])
        if link:
            problem = int(link.group(1))
        if problem is None or cells[0].startswith("**total"):
            continue
        part, value = section_id(cells[1]), points(cells[3])
        if value is None:
            continue
        stated, extra = totals.get(problem, (None, 0.0))
        if part:
            parts[problem][part] = value
            if cells[3].lstrip("*").startswith("+"):  # an extra-credit part: "**+5**"
                totals[problem] = (stated, extra + value)
        else:
            totals[problem] = (value, extra)  # the problem's total row: "**25**"
    return parts, totals


def page_parts(problem: int) -> dict:
    """{part: points} from the points table of handout/problem<P>.md (rows starting with a section)."""
    page = HANDOUT / f"problem{problem}.md"
    if not page.is_file():
        pytest.skip(f"{page} is not written yet")
    text = page.read_text()
    section = text[text.index("## Points"):] if "## Points" in text else text
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    parts = {}
    for cells in table_rows(section):
        if len(cells) >= 3 and section_id(cells[0]).startswith(f"{problem}."):
            value = points(cells[-1])
            if value is not None:
                parts[section_id(cells[0])] = value
    return parts


def graded_weights():
    """{problem: (points, extra-credit points)} summed over the visible and hidden tests' weights,
    each parametrized case counted."""
    files = sorted((REPO_ROOT / "tests").glob("test_*.py")) + sorted((REPO_ROOT / "tests" / "hidden").glob("test_*.py"))
    totals = defaultdict(lambda: [0.0, 0.0])
    for path in files:
        spec = importlib.util.spec_from_file_location(f"handout_check_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for name, function in vars(module).items():
            if not (name.startswith("test") and callable(function) and hasattr(function, "__weight__")):
                continue
            marks = getattr(function, "pytestmark", [])
            cases = math.prod(len(m.args[1]) for m in marks if m.name == "parametrize")
            extra = any(m.name == "extra_credit" for m in marks)
            problem = int(str(function.__number__).split(".")[0])
            totals[problem][1 if extra else 0] += function.__weight__ * cases
    return {p: tuple(v) for p, v in totals.items()}


@pytest.fixture(scope="module")
def weights():
    return graded_weights()


def test_readme_lists_every_problem_page():
    readme = (HANDOUT / "README.md").read_text()
    for problem in PROBLEMS:
        assert f"(problem{problem}.md)" in readme


@pytest.mark.parametrize("problem", PROBLEMS)
def test_readme_totals_match_the_tests(problem, weights):
    parts, totals = readme_parts()
    stated, stated_extra = totals[problem]
    tested, tested_extra = weights.get(problem, (0.0, 0.0))
    assert stated == 25, f"handout/README.md gives Problem {problem} {stated} points, not 25"
    assert tested == 25, f"the tests of Problem {problem} weigh {tested} points, not 25"
    assert stated_extra == tested_extra, (f"handout/README.md gives Problem {problem} +{stated_extra} extra credit; "
                                          f"its extra-credit tests weigh {tested_extra}")
    assert sum(parts[problem].values()) == stated + stated_extra, (
        f"the parts of Problem {problem} in handout/README.md add up to {sum(parts[problem].values())}, "
        f"not {stated} + {stated_extra}")


@pytest.mark.parametrize("problem", PROBLEMS)
def test_readme_parts_match_the_problem_page(problem):
    readme, _ = readme_parts()
    page = page_parts(problem)
    assert readme[problem] == page, (f"points per part of Problem {problem}: handout/README.md says "
                                     f"{readme[problem]}, handout/problem{problem}.md says {page}")
