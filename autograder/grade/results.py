"""Gradescope results: per-test metadata + verdicts -> the results dict, its schema check, the summary tables.

Shared by the pytest plugin (in-process runs) and the isolated grader (``autograder.grade``), so both
produce the same file. Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/
"""
import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hw3.files import probe_writable
from hw3.problems import NAMES as PROBLEMS

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
OUTPUT_FORMATS = ("text", "html", "simple_format", "md", "ansi")   # Gradescope's "Output String Formatting"
LEADERBOARD_ORDERS = ("asc", "desc")
MAX_TEST_OUTPUT = 4000       # characters of output kept per test
MAX_TOP_OUTPUT = 20000       # characters of the top-level output


def problem_of(path) -> str:
    """The problem a test file belongs to: tests/test_gan.py and tests/hidden/test_gan_hidden.py -> "gan".

    Files that are not graded test files give None.
    """
    stem = Path(str(path).split("::")[0]).stem
    if not stem.startswith("test_"):
        return None
    name = stem[len("test_"):]
    if name.endswith("_hidden"):
        name = name[:-len("_hidden")]
    return name if name in PROBLEMS else None


# Characters that can rewrite a terminal or a web page's text: C0 controls but tab and newline, DEL,
# C1 controls (ESC sequences, CSI), bidirectional overrides and isolates, and lone surrogates.
UNSAFE_CHARACTERS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                               "\ud800-\udfff]")


LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def safe_text(text, limit: int = None, keep_tail: bool = True, one_line: bool = False) -> str:
    """Text fit for a console, results.json or a gradebook: cut to ``limit`` characters first (so no
    later step works on unbounded student text), then every unsafe character shown escaped
    (ESC becomes the four characters \\x1b); ``one_line`` escapes line breaks and tabs too, for a name
    shown inside a line (a folder, a zip member), where a newline could forge table rows. Linear."""
    text = text if isinstance(text, str) else str(text)
    if limit is not None:
        text = truncate(text, limit, keep_tail)
    if one_line:
        text = LINE_BREAKS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return UNSAFE_CHARACTERS.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace")
                                 .decode("ascii") if not "\ud800" <= m.group() <= "\udfff"
                                 else f"\\u{ord(m.group()):04x}", text)


def truncate(text: str, limit: int, keep_tail: bool = True) -> str:
    """At most ``limit`` characters: the head and (if keep_tail) the tail, with a note where text was cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    note = f"\n... [{len(text) - limit} characters cut] ...\n"
    if not keep_tail:
        return text[:limit] + note
    head = limit // 4
    return text[:head] + note + text[len(text) - (limit - head):]


@dataclass
class TestResult:
    """One graded test: trusted metadata (from collection) plus its verdict."""
    nodeid: str
    problem: str
    name: str
    number: str = ""
    max_score: float = 0.0
    visibility: str = "visible"
    tags: list = field(default_factory=list)
    extra_credit: bool = False
    hidden: bool = False
    score: float = 0.0
    status: str = "failed"
    output: str = ""
    regrade: bool = False     # stopped by the grader's own limits (or a grader fault), not by the code

    def gradescope(self) -> dict:
        return {
            "name": self.name,
            "number": self.number,
            "score": round(self.score, 4),
            "max_score": round(self.max_score, 4),
            "status": self.status,
            "output": self.output,
            "visibility": self.visibility,
            "tags": list(self.tags) + (["regrade"] if self.regrade else []),
        }


def clamp_score(value, max_score: float) -> float:
    """A reported partial score forced into [0, max_score]; anything that is not a finite number is 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    try:
        value = float(value)
    except (OverflowError, ValueError):   # an int too large for a float (10**400)
        return 0.0
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), float(max_score))


def from_spec(spec: dict) -> TestResult:
    """A TestResult (not yet run: failed, 0 points) from one collected test's metadata."""
    return TestResult(
        nodeid=spec["nodeid"], problem=spec["problem"], name=spec["name"], number=spec.get("number", ""),
        max_score=float(spec.get("weight") or 0.0), visibility=spec.get("visibility", "visible"),
        tags=list(spec.get("tags", ())), extra_credit=bool(spec.get("extra_credit")),
        hidden=bool(spec.get("hidden")),
    )


def apply_verdict(result: TestResult, verdict: dict) -> TestResult:
    """Score one test from its verdict: {"outcome": passed|failed|error|skipped, "score": partial or None,
    "output": text}. Passing earns max_score; @partial_credit's score (clamped) counts even on failure,
    as on Gradescope; skipped (which student code can force) earns nothing."""
    outcome = verdict.get("outcome", "failed")
    passed = outcome == "passed"
    partial = verdict.get("score")
    if outcome in ("passed", "failed") and partial is not None:
        result.score = clamp_score(partial, result.max_score)
    else:
        result.score = result.max_score if passed else 0.0
    result.status = "passed" if passed else "failed"
    result.regrade = bool(verdict.get("regrade"))
    output = verdict.get("output") or ""
    if outcome == "skipped":
        output = "Not graded as passed: the test was skipped. " + safe_text(output, MAX_TEST_OUTPUT)
    result.output = safe_text(output, MAX_TEST_OUTPUT)
    return result


def number_tests(results: list) -> list:
    """Give parametrized cases that share one @number a unique suffix (4.3 -> 4.3.1, 4.3.2, ...)."""
    counts = {}
    for r in results:
        counts[r.number] = counts.get(r.number, 0) + 1
    seen = {}
    for r in results:
        if r.number and counts[r.number] > 1:
            seen[r.number] = seen.get(r.number, 0) + 1
            r.number = f"{r.number}.{seen[r.number]}"
    return results


def totals(results: list, visible_only: bool = False) -> dict:
    """{problem: {"score", "max", "extra", "extra_max", "passed", "count"}} over the given tests."""
    table = {}
    for r in results:
        if visible_only and r.visibility != "visible":
            continue
        row = table.setdefault(r.problem, {"score": 0.0, "max": 0.0, "extra": 0.0, "extra_max": 0.0,
                                           "passed": 0, "count": 0})
        key = "extra" if r.extra_credit else "score"
        row[key] += r.score
        row["extra_max" if r.extra_credit else "max"] += r.max_score
        row["passed"] += r.status == "passed"
        row["count"] += 1
    return table


def _points(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def summary_table(results: list, visible_only: bool = False, failures: bool = True,
                  notes: list = ()) -> str:
    """The readable summary: points per problem, then the failed tests with their messages."""
    table = totals(results, visible_only)
    lines = [f"{'problem':<13}{'points':>14}{'extra credit':>15}{'tests passed':>15}"]
    grand = {"score": 0.0, "max": 0.0, "extra": 0.0, "extra_max": 0.0, "passed": 0, "count": 0}
    for problem in [p for p in PROBLEMS if p in table] + sorted(set(table) - set(PROBLEMS)):
        row = table[problem]
        for key in grand:
            grand[key] += row[key]
        extra = f"{_points(row['extra'])} / {_points(row['extra_max'])}" if row["extra_max"] else "-"
        lines.append(f"{problem:<13}{_points(row['score']) + ' / ' + _points(row['max']):>14}{extra:>15}"
                     f"{str(row['passed']) + ' / ' + str(row['count']):>15}")
    extra = f"{_points(grand['extra'])} / {_points(grand['extra_max'])}" if grand["extra_max"] else "-"
    lines.append(f"{'total':<13}{_points(grand['score']) + ' / ' + _points(grand['max']):>14}{extra:>15}"
                 f"{str(grand['passed']) + ' / ' + str(grand['count']):>15}")
    if visible_only and any(r.visibility != "visible" for r in results):
        lines.append("(hidden tests are graded too; their results appear after the due date)")
    for note in notes:
        lines.append(safe_text(note, 2000))
    flagged = sorted({r.problem for r in results if r.regrade})
    if flagged:
        lines.append(f"REGRADE: the grader's own limits stopped tests of {', '.join(flagged)} (not the code's "
                     f"fault): grade again with more time or fewer parallel jobs")
    failed = [r for r in results if r.status != "passed" and (not visible_only or r.visibility == "visible")]
    if failures and failed:
        lines.append("")
        lines.append(f"Failed tests ({len(failed)}):")
        for r in failed:
            message = (r.output.strip().splitlines() or ["(no message)"])
            first = next((m for m in message if m.strip().startswith("E ")), message[0]).strip()
            flag = "  REGRADE" if r.regrade else ""
            lines.append(f"  [{r.number or '-'}] {safe_text(r.nodeid, 300)}  ({_points(r.score)} / "
                         f"{_points(r.max_score)}){flag}")
            lines.append(f"      {safe_text(first, 300, keep_tail=False)}")
    return "\n".join(lines)


def fenced(text: str) -> str:
    """``text`` as a Markdown code block: shown verbatim (no link, image, HTML or table a submission's
    text could smuggle in), its fence longer than any run of backticks inside."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def markdown_summary(results: list, visible_only: bool = True, head: list = (), notes: list = ()) -> str:
    """The top-level output as Markdown (``output_format: "md"``): ``head`` and ``notes`` (text that may
    come from the submission) verbatim in a code block, then the points per problem as a Markdown
    table, whose cells are all the grader's own (problem names and numbers)."""
    table = totals(results, visible_only)
    lines = []
    text = truncate("\n".join([safe_text(line, 2000) for line in [*head, *notes]]), MAX_TOP_OUTPUT - 4000)
    if text:   # cut before fencing: the fence and the table always survive the output's own cap
        lines += [fenced(text), ""]
    lines += ["| problem | points | extra credit | tests passed |", "|---|---:|---:|---:|"]
    grand = {"score": 0.0, "max": 0.0, "extra": 0.0, "extra_max": 0.0, "passed": 0, "count": 0}
    for problem in [p for p in PROBLEMS if p in table] + sorted(set(table) - set(PROBLEMS)):
        row = table[problem]
        for key in grand:
            grand[key] += row[key]
        lines.append(_markdown_row(safe_text(problem, 100, one_line=True).replace("|", "\\|"), row))
    lines.append(_markdown_row("**total**", grand))
    if visible_only and any(r.visibility != "visible" for r in results):
        lines += ["", "(hidden tests are graded too; their results appear after the due date)"]
    flagged = sorted({r.problem for r in results if r.regrade})
    if flagged:
        lines += ["", f"**Regrade**: the grader's own limits stopped tests of {', '.join(flagged)} (not your "
                      f"code's fault); the staff will grade them again."]
    return "\n".join(lines)


def _markdown_row(name: str, row: dict) -> str:
    extra = f"{_points(row['extra'])} / {_points(row['extra_max'])}" if row["extra_max"] else "-"
    return (f"| {name} | {_points(row['score'])} / {_points(row['max'])} | {extra} | "
            f"{row['passed']} / {row['count']} |")


def gradescope_results(results: list, execution_time: float, output: str = "",
                       stdout_visibility: str = "hidden", output_format: str = None, extra_data: dict = None,
                       leaderboard: list = None) -> dict:
    """The whole results file as a dict. ``output_format`` (one of OUTPUT_FORMATS), ``extra_data`` (a
    JSON object Gradescope stores with the submission) and ``leaderboard`` (``[{"name", "value",
    "order"}]``) are written only when given."""
    data = {
        "score": round(sum(r.score for r in results), 4),
        "execution_time": int(round(execution_time)),
        "output": safe_text(output, MAX_TOP_OUTPUT),
    }
    if output_format is not None:
        data["output_format"] = output_format
    data["stdout_visibility"] = stdout_visibility
    if extra_data is not None:
        data["extra_data"] = extra_data
    data["tests"] = [r.gradescope() for r in results]
    if leaderboard:
        data["leaderboard"] = leaderboard
    return data


def grader_version(test_files=()) -> str:
    """This grader's version: the project's version and a digest of the code that decides the points
    (autograder/grade/, hw3/ and the given test files), e.g. "1.0.0+3f2a9c01d4e5": two gradings with the
    same version ran the same tests with the same code, with or without a git checkout."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        version = "0"
    digest = hashlib.sha256()
    files = sorted({*(root / "autograder" / "grade").glob("*.py"), *(root / "hw3").rglob("*.py"),
                    *(Path(f) for f in test_files)})
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    return f"{version}+{digest.hexdigest()[:12]}"


def schema_errors(results: dict) -> list:
    """Problems with a results dict's shape (empty when it is a valid Gradescope results file)."""
    problems = []
    if not isinstance(results, dict):
        return ["results is not a JSON object"]
    for key, kind in (("score", (int, float)), ("execution_time", (int, float)), ("output", str),
                      ("stdout_visibility", str), ("tests", list)):
        if not isinstance(results.get(key), kind):
            problems.append(f"top-level {key!r} missing or not {kind}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in OUTPUT_FORMATS:
            problems.append(f"top-level {key!r} {results[key]!r} is not one of {', '.join(OUTPUT_FORMATS)}")
    if "visibility" in results and results["visibility"] not in VISIBILITIES:
        problems.append(f"top-level visibility {results['visibility']!r}")
    if results.get("stdout_visibility", "hidden") not in VISIBILITIES:
        problems.append(f"top-level stdout_visibility {results['stdout_visibility']!r}")
    if "extra_data" in results and not isinstance(results["extra_data"], dict):
        problems.append("top-level 'extra_data' is not a JSON object")
    problems += _leaderboard_problems(results)
    for i, test in enumerate(results.get("tests") or []):
        if not isinstance(test, dict):
            problems.append(f"tests[{i}] is not a JSON object")
            continue
        for key, kind in (("name", str), ("number", str), ("score", (int, float)), ("max_score", (int, float)),
                          ("status", str), ("output", str), ("visibility", str), ("tags", list)):
            if not isinstance(test.get(key), kind):
                problems.append(f"tests[{i}] {key!r} missing or not {kind}")
        for key in ("output_format", "name_format"):
            if key in test and test[key] not in OUTPUT_FORMATS:
                problems.append(f"tests[{i}] {key} {test[key]!r} is not one of {', '.join(OUTPUT_FORMATS)}")
        if "extra_data" in test and not isinstance(test["extra_data"], dict):
            problems.append(f"tests[{i}] 'extra_data' is not a JSON object")
        if test.get("status") not in ("passed", "failed"):
            problems.append(f"tests[{i}] status {test.get('status')!r}")
        if test.get("visibility") not in VISIBILITIES:
            problems.append(f"tests[{i}] visibility {test.get('visibility')!r}")
        if isinstance(test.get("score"), (int, float)) and isinstance(test.get("max_score"), (int, float)):
            if not 0 <= test["score"] <= test["max_score"] + 1e-9:
                problems.append(f"tests[{i}] score {test['score']} outside [0, {test['max_score']}]")
    if isinstance(results.get("tests"), list) and isinstance(results.get("score"), (int, float)):
        total = sum(t.get("score", 0) for t in results["tests"]
                    if isinstance(t, dict) and isinstance(t.get("score"), (int, float)))
        if abs(total - results["score"]) > 1e-3:
            problems.append(f"score {results['score']} is not the sum of the tests' scores {total}")
    return problems


def _leaderboard_problems(results: dict) -> list:
    """Gradescope's leaderboard: a list of {"name": text, "value": a number or text, "order": "asc" or
    "desc" (optional; Gradescope's default is "desc", higher first)}, one entry per name."""
    if "leaderboard" not in results:
        return []
    board = results["leaderboard"]
    if not isinstance(board, list):
        return ["top-level 'leaderboard' is not a list"]
    problems, names = [], set()
    for i, entry in enumerate(board):
        if not isinstance(entry, dict):
            problems.append(f"leaderboard[{i}] is not a JSON object")
            continue
        name, value = entry.get("name"), entry.get("value")
        if not isinstance(name, str) or not name:
            problems.append(f"leaderboard[{i}] 'name' missing or not a non-empty string")
        elif name in names:
            problems.append(f"leaderboard[{i}] name {name!r} repeats an earlier entry")
        names.add(name)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            problems.append(f"leaderboard[{i}] 'value' missing or not a number or string")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"leaderboard[{i}] 'value' {value} is not finite (not valid JSON)")
        if "order" in entry and entry["order"] not in LEADERBOARD_ORDERS:
            problems.append(f"leaderboard[{i}] order {entry['order']!r} is not asc or desc")
        unknown = set(entry) - {"name", "value", "order"}
        if unknown:
            problems.append(f"leaderboard[{i}] has unknown keys {sorted(unknown)}")
    return problems


def check_writable(path) -> Path:
    """Fail early (ValueError with a clear message) when results could not be written to ``path``."""
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise ValueError(f"cannot write results to {path}: it is a folder; name a file, e.g. {path / 'results.json'}")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write results to {path}: folder {path.parent} does not exist")
    try:
        probe_writable(path.parent)
    except OSError as error:
        raise ValueError(f"cannot write results to {path}: {error.strerror or error}") from None
    return path
