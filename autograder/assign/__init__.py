"""assign: generate starter/ from solution/, the one source of truth.

In a solution file, each piece a student writes sits between two marker lines:

    # BEGIN SOLUTION (handout 1.1)
    ...reference code...
    # END SOLUTION

The starter keeps everything else (imports, docstrings, provided code) and replaces each fenced
region by a stub that raises NotImplementedError naming the function and the handout section.
"""
import ast
import re
import sys
from pathlib import Path

from autograder import SOLUTION_DIR, STARTER_DIR
from hw3.problems import STUDENT_FILES

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION \(handout (?P<section>[\w.]+)\)\s*$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
RULE_WIDTH = 79


class AssignError(Exception):
    """A solution file's markers are malformed."""


def enclosing_functions(source: str) -> dict:
    """{line number: qualified name of the innermost function containing it} for every line."""
    names = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, child.end_lineno + 1):
                        names[line] = qualname
                visit(child, qualname + ".")

    visit(ast.parse(source), "")
    return names


def stub(indent: str, function: str, section: str, problem: str) -> list:
    title = f" YOUR CODE HERE (handout section {section}) "
    fill = max(RULE_WIDTH - len(indent) - 2, len(title) + 2)
    return [
        f"{indent}# {title.center(fill, '=')}",
        f'{indent}raise NotImplementedError("{function} is not implemented yet: see handout section '
        f'{section} ({problem})")',
        f"{indent}# {' END OF YOUR CODE '.center(fill, '=')}",
    ]


def make_starter(source: str, filename: str) -> str:
    """The starter text for one solution file's text."""
    functions = enclosing_functions(source)
    problem = f"Problem {STUDENT_FILES.index(filename) + 1}, {filename}" if filename in STUDENT_FILES else filename
    out, inside = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise AssignError(f"{filename}:{number}: BEGIN SOLUTION inside the region opened at line {inside}")
            if number not in functions:
                raise AssignError(f"{filename}:{number}: a solution region must lie inside a function")
            inside = number
            out += stub(begin["indent"], functions[number], begin["section"], problem)
        elif END.match(line):
            if not inside:
                raise AssignError(f"{filename}:{number}: END SOLUTION without BEGIN SOLUTION")
            inside = None
        elif not inside:
            out.append(line)
    if inside:
        raise AssignError(f"{filename}:{inside}: BEGIN SOLUTION is never closed")
    return "\n".join(out) + "\n"


def starter_files(solution_dir: Path = SOLUTION_DIR) -> dict:
    """{file name: starter text} generated from the solution folder."""
    return {name: make_starter((solution_dir / name).read_text(), name) for name in STUDENT_FILES}


def write_starter(solution_dir: Path = SOLUTION_DIR, starter_dir: Path = STARTER_DIR) -> list:
    """Regenerate the starter folder; returns the files written."""
    starter_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in starter_files(solution_dir).items():
        (starter_dir / name).write_text(text)
        written.append(starter_dir / name)
    return written


def stale_files(solution_dir: Path = SOLUTION_DIR, starter_dir: Path = STARTER_DIR) -> list:
    """The starter files that differ from what the solution generates."""
    return [name for name, text in starter_files(solution_dir).items()
            if not (starter_dir / name).is_file() or (starter_dir / name).read_text() != text]


# --- command line (``python -m autograder assign``) -------------------------------------------

def configure(parser):
    parser.add_argument("--check", action="store_true", help="only check that starter/ is up to date (exit 1 if not)")


def run(args) -> int:
    try:
        if args.check:
            stale = stale_files()
            if stale:
                print(f"starter/ is out of date with solution/: {', '.join(stale)}\n"
                      f"  Fix: run `python -m autograder assign` and commit starter/", file=sys.stderr)
                return 1
            print("starter/ is in sync with solution/")
            return 0
        for path in write_starter():
            print(f"wrote {path}")
    except AssignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
