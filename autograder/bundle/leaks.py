"""Proof that a bundle holds no solution code: shared by ``build`` (autograder.zip) and ``release``.

A *solution-only line* is a line inside a ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region of
solution/<module>.py that is substantial (at least MIN_CHARS characters once stripped, not a comment)
and that occurs nowhere in what students get anyway (starter/ and the provided hw3/ package).

A bundle leaks if one of its text files holds a *copied block* -- RUN or more consecutive lines (blank
lines aside) that are each solution-only -- or a single solution-only line of LONG characters or
more (a one-line solution, e.g. a whole loss expression), or if it holds a path under solution/ or
the validate catalogue (whose patches quote solution code). Short lines on their own are not
leaks: a test may well build the handout's reference architecture (``return nn.Sequential(``) or
write a formula the handout states (``std = torch.exp(0.5 * logvar)``) independently.
"""
import re
from pathlib import Path

from autograder import REPO_ROOT, SOLUTION_DIR, STARTER_DIR
from autograder.assign import BEGIN, END, STUDENT_FILES

MIN_CHARS = 12
RUN = 3
LONG = 50
FORBIDDEN_PREFIXES = ("solution/", "autograder/validate/", "benchmarks/")


def _normal(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip())


def region_lines(source: str) -> list:
    """The stripped lines inside the solution regions of one file."""
    lines, inside = [], False
    for line in source.splitlines():
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside:
            lines.append(_normal(line))
    return lines


def solution_only_lines(solution_dir: Path = SOLUTION_DIR, starter_dir: Path = STARTER_DIR,
                        provided_dir: Path = REPO_ROOT / "hw3") -> set:
    """Every substantial line students must write themselves, per the solution's regions."""
    public = set()
    for path in [*sorted(starter_dir.glob("*.py")), *sorted(provided_dir.rglob("*.py"))]:
        public.update(_normal(line) for line in path.read_text(errors="replace").splitlines())
    secret = set()
    for name in STUDENT_FILES:
        path = solution_dir / name
        if path.is_file():
            secret.update(line for line in region_lines(path.read_text())
                          if len(line) >= MIN_CHARS and not line.startswith("#") and line not in public)
    return secret


def find_leaks(members: dict, secret: set = None) -> list:
    """Problems in a bundle: ``members`` is {path in the bundle: bytes}. Empty list: no leak."""
    secret = solution_only_lines() if secret is None else secret
    problems = []
    for name, data in sorted(members.items()):
        if name.startswith(FORBIDDEN_PREFIXES) or "/solution/" in f"/{name}":
            problems.append(f"{name}: a staff-only path")
            continue
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue  # binary (weights, archives): no source code
        run = []
        for number, line in enumerate(text.splitlines() + ["<end>"], start=1):
            normal = _normal(line)
            if not normal:
                continue
            if normal in secret:
                run.append((number, line))
                if len(normal) >= LONG and len(run) < RUN:
                    problems.append(f"{name}:{number}: solution code: {line.strip()[:100]}")
                continue
            if len(run) >= RUN:
                problems.append(f"{name}:{run[0][0]}-{run[-1][0]}: solution code ({len(run)} lines): "
                                + " / ".join(l.strip() for _, l in run)[:200])
            run = []
    return problems
