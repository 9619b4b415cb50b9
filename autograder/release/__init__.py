"""release: the student bundle, as a folder or a .zip.

Contents: starter/ (checked in sync with solution/), the provided hw3/ package, the public tests
(tests/ without tests/hidden/), the datasets step (datasets/*.sha256 -- never the
data), setup.sh, requirements.txt, pyproject.toml, .gitignore, handout/ and README.md, the students'
own (templates/README.md: the repository's README is the staff's).

Never: solution/, autograder/, hidden tests, benchmarks, fetched data. Every member is checked by
:mod:`autograder.bundle.leaks` before anything is written; a bundle that would leak is not written.
"""
import sys
from pathlib import Path

from autograder import REPO_ROOT, assign
from autograder.bundle import BundleError, check_output, read, tree, warn_uncommitted, write_zip
from autograder.bundle.leaks import find_leaks
from hw3.files import atomic_folder, probe_writable

DEFAULT_OUTPUT = REPO_ROOT / "dist" / "hw3-release"
TOP_FILES = ("setup.sh", "requirements.txt", "pyproject.toml", ".gitignore")
STUDENT_README = Path(__file__).resolve().parent / "templates" / "README.md"
EXECUTABLE = ("setup.sh",)


def members(root: Path = REPO_ROOT) -> dict:
    """{path in the bundle: Path} of everything students get."""
    if root == REPO_ROOT:
        stale = assign.stale_files()
        if stale:
            raise BundleError(f"starter/ is out of date with solution/ ({', '.join(stale)}): "
                             f"run python -m autograder assign first")
    chosen = {name: root / name for name in TOP_FILES if (root / name).is_file()}
    for name in ("setup.sh", "requirements.txt", "pyproject.toml"):
        if name not in chosen:
            raise BundleError(f"{root / name} is missing")
    chosen["README.md"] = STUDENT_README
    chosen.update({rel: path for rel, path in tree(root, "starter").items() if rel.endswith(".py")})
    chosen.update(tree(root, "hw3"))
    chosen.update(tree(root, "tests", exclude=("tests/hidden/",)))
    chosen.update(tree(root, "handout"))
    for path in sorted((root / "datasets").glob("*.sha256")) + [root / "datasets" / "README.md"]:
        if path.is_file():
            chosen[f"datasets/{path.name}"] = path
    missing = [f"starter/{n}" for n in assign.STUDENT_FILES if f"starter/{n}" not in chosen]
    if missing:
        raise BundleError(f"the bundle would lack {', '.join(missing)}")
    return chosen


def check_folder_output(output: Path) -> Path:
    """Fail early when ``output`` cannot become the bundle folder (replacing only a previous release)."""
    output = Path(output).expanduser().absolute()
    if output.exists() and not output.is_dir():
        raise BundleError(f"{output} exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not (output / "starter").is_dir():
        raise BundleError(f"{output} is a non-empty folder that is not a previous release: choose another -o")
    return output


def write_folder(chosen: dict, output: Path) -> Path:
    """Write the bundle as a folder: built beside ``output`` and renamed into place (replacing it)."""
    output = check_folder_output(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        probe_writable(output.parent)
    except OSError as error:
        raise BundleError(f"cannot write {output}: {error.strerror or error}") from None
    with atomic_folder(output) as tmp:
        for rel, source in chosen.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(read(source))
            dest.chmod(0o755 if rel in EXECUTABLE else 0o644)
        for folder in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
    return output


def release(output: Path = DEFAULT_OUTPUT, root: Path = REPO_ROOT, check: bool = True) -> Path:
    """Write the student bundle (a .zip if ``output`` ends in .zip, else a folder); ``check=False`` skips
    the solution-code check (for tests that examine it separately)."""
    is_zip = str(output).lower().endswith(".zip")
    check_output(output) if is_zip else check_folder_output(output)
    chosen = members(root)
    leaks = find_leaks({name: read(path) for name, path in chosen.items()}) if check else []
    if leaks:
        raise BundleError("refusing to release: solution code would ship:\n  " + "\n  ".join(leaks[:20]))
    if is_zip:
        return write_zip(chosen, Path(output), executable=EXECUTABLE)
    return write_folder(chosen, Path(output))


def configure(parser):
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"a folder, or a file ending in .zip (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})")


def run(args) -> int:
    try:
        path = release(args.output)
    except (BundleError, assign.AssignError) as error:  # a malformed solution file: starter/ cannot be checked
        print(f"error: {error}", file=sys.stderr)
        return 1
    warn_uncommitted(["starter", "hw3", "tests", "handout", "datasets", *TOP_FILES,
                      str(STUDENT_README.relative_to(REPO_ROOT))], "released")
    print(f"wrote the student bundle {path}\n"
          f"  Students: ./setup.sh, then pytest tests/ (see README.md and handout/).")
    return 0
