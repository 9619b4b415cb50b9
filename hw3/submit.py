"""``python -m hw3 submit``: check your four files, run the fast tests, and write the zip to upload.

    python -m hw3 submit                    # starter/ -> runs/submission.zip
    python -m hw3 submit --impl ~/hw3-mine  # another folder holding the four files

The zip holds exactly cnn.py, contrastive.py, cvae.py and gan.py at its top (plus report.html when
``python -m hw3 report`` has written runs/report.html), so the autograder finds them whatever
folder they came from. A missing file, or one that Python cannot import, stops the command before
anything is written; failing tests do not (partial work earns partial points), but are reported.
"""
import subprocess
import sys
import traceback
import zipfile
from pathlib import Path

from hw3 import REPO_ROOT, impl
from hw3.problems import PROBLEMS, STUDENT_FILES

DEFAULT_OUTPUT = REPO_ROOT / "runs" / "submission.zip"
REPORT = REPO_ROOT / "runs" / "report.html"
FAST_TESTS = ("-m", "not training")
GRADED_TESTS = tuple(f"tests/{p.test_file}" for p in PROBLEMS)  # what the autograder runs visibly


class SubmissionProblem(Exception):
    """A file to submit is missing or broken: the message says which and what to do."""


def check_files(folder: Path) -> list:
    """The four files' paths in ``folder``; raises SubmissionProblem naming every missing or broken one."""
    problems = [f"{folder / name} is missing" for name in STUDENT_FILES if not (folder / name).is_file()]
    if problems:
        others = sorted({str(p.parent) for name in STUDENT_FILES for p in REPO_ROOT.glob(f"*/{name}")} - {str(folder)})
        hint = f" (found copies in {', '.join(others)}: pass --impl FOLDER)" if others else ""
        raise SubmissionProblem("; ".join(problems) + hint)
    for module in impl.STUDENT_MODULES:
        try:
            impl.load(module, folder)
        except Exception as error:  # a syntax error, a bad import: whatever Python says, shortened
            where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
            line = getattr(error, "lineno", None) or (where.lineno if where else "?")
            raise SubmissionProblem(f"{folder / (module + '.py')} does not import (line {line}): "
                                    f"{type(error).__name__}: {error}") from None
    return [folder / name for name in STUDENT_FILES]


def run_fast_tests(folder: Path) -> int:
    """pytest's exit status for the fast tests on ``folder``; its output (and score table) goes to the terminal."""
    command = [sys.executable, "-m", "pytest", *GRADED_TESTS, *FAST_TESTS, "-q", "-p", "no:cacheprovider",
               "--impl", str(folder)]
    print(f"running the fast tests: pytest tests/ -m \"not training\" --impl {folder}", flush=True)
    return subprocess.run(command, cwd=REPO_ROOT).returncode


def write_zip(files: list, output: Path, report: Path = REPORT) -> list:
    """Write ``files`` (and ``report`` if it exists) at the top of the zip ``output``; returns the names."""
    members = {path.name: path for path in files}
    if report.is_file():
        members[report.name] = report
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in members.items():
            archive.write(path, name)
    return list(members)


def configure(parser):
    parser.add_argument("--impl", metavar="FOLDER", default=None,
                        help=f"folder holding the four files (default: ${impl.ENV_VAR}, else starter)")
    parser.add_argument("-o", "--output", metavar="ZIP", type=Path, default=DEFAULT_OUTPUT,
                        help=f"the zip to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--skip-tests", action="store_true", help="write the zip without running the fast tests")


def run(args) -> int:
    try:
        folder = impl.impl_dir(args.impl)
        files = check_files(folder)
    except (impl.ImplementationError, SubmissionProblem) as error:
        print(f"error: {error}\nNothing was written: fix the file, then run python -m hw3 submit again.",
              file=sys.stderr)
        return 1
    status = 0 if args.skip_tests else run_fast_tests(folder)
    names = write_zip(files, args.output.expanduser().absolute())
    print(f"\nwrote {args.output} ({', '.join(names)}) from {folder}")
    if status == 1:
        print("warning: some fast tests fail (see above); you may still submit, for partial points.")
    elif status != 0:
        print(f"warning: the fast tests could not run (pytest exit status {status}; see above).")
    print("Upload this zip to the Gradescope assignment 'Homework 3 – code'; the autograder runs the visible\n"
          "and the hidden tests on it. Your writeup (a PDF) goes to 'Homework 3 – writeup'.")
    return 0
