"""similarity: compare every pair of submissions, problem by problem, for copied code.

    from autograder.similarity import compare, write_report
    pairs = compare("submissions/", sources={"solution": "solution/"})
    write_report(pairs, "grades/similarity")       # report.html (side by side, matches highlighted) + pairs.csv

The fingerprints are copydetect's (https://github.com/blingenf/copydetect: MOSS's winnowing over
pygments tokens, names replaced by placeholders, so renamed variables still match and reordered
functions match function by function). The starter's file and the handout's Python code are its
*boilerplate*: what every student was given never counts. Extra *sources* (the reference solution, last
year's class) are compared with every submission but not with each other, so a submission that copied
the solution shows up as a pair with ``source:solution``.

The submissions are read the way the grader reads them (``autograder.grade.submission.copy_student_files``: a
folder or zip per student, the four files found at its top or in one folder, bounded), and nothing of
them runs.
"""
import csv
import html
import io
import itertools
import re
import string
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from autograder import REPO_ROOT, STARTER_DIR
from autograder.grade.results import PROBLEMS, safe_text

TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.html"
HANDOUT_DIR = REPO_ROOT / "handout"
NOISE = 25          # copydetect's noise threshold: matches shorter than this many filtered characters are ignored
GUARANTEE = 30      # matches this long are always found (window = GUARANTEE - NOISE + 1)
SHOWN = 30          # pairs per problem shown side by side in the HTML report (the CSV has them all)
SOURCE_PREFIX = "source:"


class SimilarityError(Exception):
    """The comparison cannot run (no such folder, nothing to compare, copydetect missing)."""


@dataclass
class Pair:
    problem: str
    a: str
    b: str
    similarity_a: float       # share of a's fingerprinted code found in b
    similarity_b: float
    matched: int              # matched characters of filtered code (a's side)
    code_a: str = ""
    code_b: str = ""
    slices_a: object = None
    slices_b: object = None

    @property
    def similarity(self) -> float:
        return max(self.similarity_a, self.similarity_b)

    @property
    def with_source(self) -> bool:
        return self.a.startswith(SOURCE_PREFIX) or self.b.startswith(SOURCE_PREFIX)


def _copydetect():
    try:
        import copydetect
        return copydetect
    except ImportError:
        raise SimilarityError("the copydetect package is missing: pip install -r requirements.txt") from None


def handout_code(handout: Path = HANDOUT_DIR) -> str:
    """The Python code blocks of the handout's Markdown files (students may paste them)."""
    blocks = []
    for page in sorted(Path(handout).glob("*.md")) if handout else ():
        blocks += re.findall(r"```python\n(.*?)```", page.read_text(errors="replace"), flags=re.S)
    return "\n".join(blocks)


def fingerprint(code: str, name: str, boilerplate=None):
    detector = _copydetect()
    return detector.CodeFingerprint(name, NOISE, GUARANTEE - NOISE + 1, boilerplate=boilerplate,
                                    fp=io.StringIO(code))


def boilerplate_hashes(problem: str, starter: Path, handout_text: str):
    """The fingerprints of what students were given for ``problem``: its starter file and the handout code."""
    import numpy as np
    given = [handout_text]
    path = Path(starter) / f"{problem}.py" if starter else None
    if path is not None and path.is_file():
        given.append(path.read_text(errors="replace"))
    hashes = set()
    for text in given:
        if text.strip():
            hashes |= set(fingerprint(text, f"{problem}.py").hashes)
    return np.array(sorted(hashes))


def read_submissions(folder, exclude=None, log=None) -> dict:
    """{student: {problem: source text}} for each subfolder or .zip of ``folder``."""
    from autograder.grade.batch import submissions
    from autograder.grade.submission import SubmissionError, copy_student_files
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SimilarityError(f"submissions folder {folder} does not exist or is not a folder")
    found = {}
    with tempfile.TemporaryDirectory(prefix="hw3-similarity-") as tmp:
        for number, (student, path) in enumerate(submissions(folder, exclude).items()):
            try:
                sub = copy_student_files(path, Path(tmp) / str(number))
            except SubmissionError as error:
                if log:
                    log(f"{safe_text(student, 200, one_line=True)}: skipped ({error})")
                continue
            found[student] = {name[:-3]: p.read_text(errors="replace") for name, p in sub.files.items()}
    return found


def read_source(path) -> dict:
    """{problem: source text} of an extra source (a folder or .zip laid out like a submission)."""
    from autograder.grade.submission import SubmissionError, copy_student_files
    with tempfile.TemporaryDirectory(prefix="hw3-similarity-source-") as tmp:
        try:
            sub = copy_student_files(Path(path).expanduser(), Path(tmp) / "source")
        except SubmissionError as error:
            raise SimilarityError(f"source {path}: {error}") from None
        return {name[:-3]: p.read_text(errors="replace") for name, p in sub.files.items()}


def compare(folder=None, *, submissions: dict = None, sources: dict = None, starter=STARTER_DIR,
            handout=HANDOUT_DIR, problems=PROBLEMS, exclude=None, log=None) -> list:
    """Every pair of submissions per problem (and each submission against each source), most similar
    first. ``submissions``: {student: {problem: code}} instead of reading ``folder``; ``sources``:
    {label: folder or {problem: code}}."""
    detector = _copydetect()
    if submissions is None:
        submissions = read_submissions(folder, exclude, log)
    named = {}
    for label, source in (sources or {}).items():
        named[SOURCE_PREFIX + label] = source if isinstance(source, dict) else read_source(source)
    if len(submissions) + len(named) < 2:
        raise SimilarityError("fewer than two submissions (and sources) to compare")
    handout_text = handout_code(handout) if handout else ""
    pairs = []
    for problem in problems:
        given = boilerplate_hashes(problem, starter, handout_text)
        prints = {}
        for who, files in itertools.chain(submissions.items(), named.items()):
            if files.get(problem, "").strip():
                prints[who] = fingerprint(files[problem], f"{problem}.py", boilerplate=given)
        for a, b in itertools.combinations(prints, 2):
            if a.startswith(SOURCE_PREFIX) and b.startswith(SOURCE_PREFIX):
                continue
            if a.startswith(SOURCE_PREFIX):
                a, b = b, a   # the student first
            matched, (sim_a, sim_b), (slices_a, slices_b) = detector.compare_files(prints[a], prints[b])
            pairs.append(Pair(problem, a, b, float(sim_a), float(sim_b), int(matched),
                              prints[a].raw_code, prints[b].raw_code, slices_a, slices_b))
    pairs.sort(key=lambda p: (-p.similarity, p.problem, p.a, p.b))
    return pairs


# --- the report ---------------------------------------------------------------------------------

CSV_COLUMNS = ("rank", "problem", "a", "b", "similarity", "similarity_a", "similarity_b", "matched_characters",
               "with_source")


def _cell(text: str) -> str:
    text = safe_text(text, 200, one_line=True)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def write_csv(pairs: list, path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for rank, p in enumerate(pairs, start=1):
            writer.writerow([rank, p.problem, _cell(p.a), _cell(p.b), f"{p.similarity:.4f}", f"{p.similarity_a:.4f}",
                             f"{p.similarity_b:.4f}", p.matched, "yes" if p.with_source else ""])
    return path


def _highlighted(code: str, slices) -> str:
    """``code`` as HTML with the matched regions in <mark>, everything escaped."""
    from copydetect import utils
    code = safe_text(code, 200_000)
    if slices is None or len(slices) == 0 or len(slices[0]) == 0:
        return html.escape(code)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        marked, _ = utils.highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return marked


def render_html(pairs: list, shown: int = SHOWN) -> str:
    by_problem = {}
    for p in pairs:
        by_problem.setdefault(p.problem, []).append(p)
    tables, sections = [], []
    for problem in [q for q in PROBLEMS if q in by_problem] + sorted(set(by_problem) - set(PROBLEMS)):
        rows = []
        for rank, p in enumerate(by_problem[problem][:shown], start=1):
            anchor = f"{problem}-{rank}"
            names = [f'<span class="source">{html.escape(x)}</span>' if x.startswith(SOURCE_PREFIX)
                     else html.escape(safe_text(x, 200, one_line=True)) for x in (p.a, p.b)]
            rows.append(f'<tr><td class="num">{rank}</td><td><a href="#{anchor}">{names[0]} &ndash; {names[1]}</a>'
                        f'</td><td class="num">{p.similarity:.0%}</td><td class="num">{p.similarity_a:.0%}</td>'
                        f'<td class="num">{p.similarity_b:.0%}</td><td class="num">{p.matched}</td></tr>')
            sections.append(
                f'<div class="pair" id="{anchor}"><h3>{html.escape(problem)}.py #{rank}: {names[0]} &ndash; '
                f'{names[1]} ({p.similarity:.0%})</h3><div class="side">'
                f'<div><h4>{names[0]} ({p.similarity_a:.0%} found in the other)</h4>'
                f'<pre>{_highlighted(p.code_a, p.slices_a)}</pre></div>'
                f'<div><h4>{names[1]} ({p.similarity_b:.0%} found in the other)</h4>'
                f'<pre>{_highlighted(p.code_b, p.slices_b)}</pre></div></div></div>')
        more = len(by_problem[problem]) - shown
        tables.append(f"<h2>{html.escape(problem)}.py</h2><table class=\"pairs\"><tr><th>#</th><th>pair</th>"
                      f"<th>similarity</th><th>a in b</th><th>b in a</th><th>matched characters</th></tr>"
                      + "".join(rows) + "</table>" + (f"<p>... and {more} more pairs in pairs.csv</p>" if more > 0 else ""))
    students = {x for p in pairs for x in (p.a, p.b) if not x.startswith(SOURCE_PREFIX)}
    summary = (f"{len(pairs)} pairs of {len(students)} submissions over {len(by_problem)} problem(s), "
               f"most similar first; the {shown} most similar per problem are shown side by side.")
    return string.Template(TEMPLATE.read_text()).substitute(summary=html.escape(summary), tables="\n".join(tables),
                                                            pairs="\n".join(sections))


def write_report(pairs: list, outdir, shown: int = SHOWN) -> tuple:
    """``outdir/report.html`` and ``outdir/pairs.csv`` (created; readable by the staff only, as they
    quote submissions). Returns their paths."""
    outdir = Path(outdir).expanduser()
    outdir.mkdir(parents=True, exist_ok=True)
    outdir.chmod(0o700)
    report = outdir / "report.html"
    report.write_text(render_html(pairs, shown))
    return report, write_csv(pairs, outdir / "pairs.csv")


# --- command line -------------------------------------------------------------------------------

def configure(parser):
    parser.add_argument("folder", metavar="FOLDER", help="one subfolder or .zip per student (as for grade-all)")
    parser.add_argument("-o", "--output", metavar="OUTDIR", type=Path, default=Path("similarity"),
                        help="report.html and pairs.csv go here (default: similarity/)")
    parser.add_argument("--source", metavar="[LABEL=]PATH", action="append", default=[],
                        help="an extra source every submission is compared with (e.g. solution/, last year's "
                             "submissions laid out as one); repeatable")
    parser.add_argument("--starter", metavar="DIR", type=Path, default=STARTER_DIR,
                        help=f"the code students were given, discounted (default: {STARTER_DIR})")
    parser.add_argument("--shown", type=int, default=SHOWN, help=f"pairs shown side by side per problem (default {SHOWN})")


def parse_sources(values) -> dict:
    sources = {}
    for value in values:
        label, _, path = value.rpartition("=") if "=" in value else ("", "", value)
        sources[label or Path(path).name or "source"] = path
    return sources


def run(args) -> int:
    try:
        pairs = compare(args.folder, sources=parse_sources(args.source), starter=args.starter,
                        exclude=args.output, log=lambda m: print(f"similarity: {m}", file=sys.stderr))
        report, table = write_report(pairs, args.output, args.shown)
    except SimilarityError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for p in pairs[:5]:
        print(f"{p.similarity:6.1%}  {p.problem:<12} {safe_text(p.a, 80, one_line=True)} - "
              f"{safe_text(p.b, 80, one_line=True)}")
    print(f"{len(pairs)} pairs compared: {report}, {table}")
    return 0
