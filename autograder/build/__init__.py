"""build: the Gradescope autograder.zip.

Layout (Gradescope unzips it into /autograder/source and runs setup.sh once, then run_autograder
for each submission):

    setup.sh, run_autograder        templates/ beside this file
    requirements.txt, pyproject.toml
    hw3/                            the provided package, judge weights included
    autograder/__init__.py, autograder/grade/   the grader, and autograder/judge/ (the judge-side
                                                architectures of the training tests)
    tests/                          graded tests, tests/hidden/ and test data (all of tests/)
    datasets/*.sha256, datasets/MNIST/raw/*.gz  (setup.sh verifies and extracts them)
    datasets/lfw/...                LFW (the extra credit), every file checked against lfw.sha256
    datasets/cache/lfw-*.pt         the preprocessed LFW tensor the extra-credit test loads

With ``lfw="download"`` the last two stay out and setup.sh downloads LFW instead (a 13 MB zip).

No solution code: every member is checked by :mod:`autograder.bundle.leaks` before the zip is written.
"""
import sys
import zipfile
from pathlib import Path

from autograder import REPO_ROOT
from autograder.bundle import STORED, BundleError, check_output, read, tree, warn_uncommitted, write_zip
from autograder.bundle.leaks import find_leaks
from hw3.files import read_checksums, sha256_of

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_OUTPUT = REPO_ROOT / "dist" / "autograder.zip"


def verified(root: Path, data_root: Path, manifest_name: str) -> dict:
    """{datasets/<rel>: Path} of every file a checksum manifest lists, each checked against it."""
    manifest = root / "datasets" / manifest_name
    if not manifest.is_file():
        raise BundleError(f"{manifest} is missing")
    files = {}
    for rel, digest in read_checksums(manifest).items():
        path = data_root / rel
        if not path.is_file():
            raise BundleError(f"{path} is missing: fetch the data first (./setup.sh, or python -m hw3 data)")
        if sha256_of(path) != digest:
            raise BundleError(f"{path} does not match its checksum in {manifest_name}: run python -m hw3 data again")
        files[f"datasets/{rel}"] = path
    return files


def dataset_files(root: Path, data_root: Path, lfw: str = "ship") -> dict:
    """The checksum manifests and MNIST's four .gz files; with lfw="ship" also every LFW file and the
    preprocessed LFW tensor (see autograder.grade.prepare); with "download", setup.sh fetches LFW."""
    files = {f"datasets/{p.name}": p for p in sorted((root / "datasets").glob("*.sha256"))}
    for extra in ("README.md", "README.txt"):
        if (root / "datasets" / extra).is_file():
            files[f"datasets/{extra}"] = root / "datasets" / extra
    files.update(verified(root, data_root, "MNIST.sha256"))
    if lfw == "ship":
        files.update(verified(root, data_root, "lfw.sha256"))
        from autograder.grade.prepare import prepare
        derived, warnings = prepare()
        if warnings:
            raise BundleError("; ".join(warnings))
        for path in derived:
            files[f"datasets/{Path(path).relative_to(data_root).as_posix()}"] = Path(path)
    elif lfw != "download":
        raise BundleError(f"--lfw must be ship or download, not {lfw!r}")
    return files


def run_autograder_script(isolation: str = "auto") -> bytes:
    """run_autograder with the instructor's choice of sandbox as its default (see autograder.grade.sandbox)."""
    from autograder.grade.sandbox import MODES
    if isolation not in ("auto", *MODES):
        raise BundleError(f"--isolation must be auto or one of {', '.join(MODES)}, not {isolation!r}")
    text = (TEMPLATES / "run_autograder").read_text()
    return text.replace("ISOLATION=${HW3_ISOLATION:-auto}", f"ISOLATION=${{HW3_ISOLATION:-{isolation}}}").encode()


def members(root: Path = REPO_ROOT, tests_dir: Path = None, data_root: Path = None, lfw: str = "ship",
            isolation: str = "auto") -> dict:
    """{path in the zip: Path or bytes} of everything that goes into autograder.zip."""
    from hw3.datasets import data_root as default_data_root
    tests_dir = Path(tests_dir or root / "tests")
    if not (tests_dir / "conftest.py").is_file():
        raise BundleError(f"{tests_dir} has no conftest.py: not a tests folder")
    chosen = {
        "setup.sh": TEMPLATES / "setup.sh",
        "run_autograder": run_autograder_script(isolation),
        "requirements.txt": root / "requirements.txt",
        "pyproject.toml": root / "pyproject.toml",
        "autograder/__init__.py": root / "autograder" / "__init__.py",
    }
    chosen.update(tree(root, "hw3"))
    chosen.update(tree(root, "autograder/grade"))
    chosen.update(tree(root, "autograder/judge"))
    for rel, path in tree(tests_dir.parent, tests_dir.name).items():
        chosen["tests/" + rel.split("/", 1)[1]] = path
    chosen.update(dataset_files(root, Path(data_root or default_data_root()), lfw))
    for rel, path in chosen.items():
        if not isinstance(path, bytes) and not Path(path).is_file():
            raise BundleError(f"{path} is missing (needed as {rel} in the zip)")
    return chosen


def build(output: Path = DEFAULT_OUTPUT, root: Path = REPO_ROOT, check: bool = True, **options) -> Path:
    """Write autograder.zip; raises BundleError (and writes nothing) if any member would leak the solution
    (``check=False`` skips that check: for tests that examine the leak check separately)."""
    check_output(output)
    chosen = members(root, **options)
    leaks = find_leaks({name: read(m) for name, m in chosen.items() if not name.endswith(STORED)}) if check else []
    if leaks:
        raise BundleError("refusing to build: solution code would ship in the zip:\n  " + "\n  ".join(leaks[:20]))
    return write_zip(chosen, output)


def configure(parser):
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"the zip to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)})")
    parser.add_argument("--lfw", choices=("ship", "download"), default="ship",
                        help="ship: LFW (about 140 MB) and its preprocessed tensor go in the zip (default); "
                             "download: a small zip whose setup.sh downloads and verifies LFW")
    parser.add_argument("--isolation", choices=("auto", "namespaces", "uid"), default="auto",
                        help="the sandbox run_autograder asks for: auto/namespaces (default; grading refuses to "
                             "start where the image cannot provide it) or uid (a private uid only, for images "
                             "that refuse namespaces; setup.sh's log says which works)")


def run(args) -> int:
    try:
        path = build(args.output, lfw=args.lfw, isolation=args.isolation)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    warn_uncommitted(["hw3", "tests", "autograder/grade", "autograder/judge", "autograder/build", "requirements.txt",
                      "pyproject.toml"], "built from")
    with zipfile.ZipFile(path) as archive:
        count = len(archive.namelist())
        hidden = sum(n.startswith("tests/hidden/") for n in archive.namelist())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {count} files, {hidden} hidden test file(s)).\n"
          f"Upload it on Gradescope (Configure Autograder > Zip file upload; base image: Ubuntu 22.04 or 24.04).")
    return 0
