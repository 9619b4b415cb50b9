"""What ``build`` (autograder.zip) and ``release`` (the student bundle) share.

Both choose files into a {path in the bundle: Path or bytes} mapping, prove it holds no solution
code (:mod:`autograder.bundle.leaks`), and write it atomically: as a zip with fixed timestamps (the
same tree gives the same zip) or, for release, as a folder. Each verb keeps only what it alone does.
"""
import subprocess
import sys
import zipfile
from pathlib import Path

from autograder import REPO_ROOT
from hw3.files import atomic_file, probe_writable

EPOCH = (1980, 1, 1, 0, 0, 0)   # fixed timestamps: the same tree gives the same zip
SKIP_PARTS = ("__pycache__", ".pytest_cache")
STORED = (".jpg", ".gz", ".pt", ".npz", ".png")  # already compressed: stored as they are


class BundleError(Exception):
    """A bundle cannot be made (missing data, leaked solution code, unwritable output)."""


def tree(root: Path, folder: str, exclude=()) -> dict:
    """{path relative to root: Path} of the files under root/folder, minus caches and ``exclude`` prefixes."""
    found = {}
    base = root / folder
    if not base.is_dir():
        return found
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or path.is_symlink() or any(p in SKIP_PARTS for p in path.parts) \
                or path.suffix == ".pyc" or rel.startswith(tuple(exclude)):
            continue
        found[rel] = path
    return found


def read(member) -> bytes:
    return member if isinstance(member, bytes) else Path(member).read_bytes()


def check_output(output: Path) -> Path:
    """Fail early, with a clear message, if a zip could not be written at ``output``."""
    output = Path(output).expanduser().absolute()
    if output.is_dir():
        raise BundleError(f"{output} is a folder; name the zip file to write, e.g. {output / 'autograder.zip'}")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        probe_writable(output.parent)
    except OSError as error:
        raise BundleError(f"cannot write {output}: {error.strerror or error}") from None
    return output


def write_zip(chosen: dict, output: Path, executable=("setup.sh", "run_autograder")) -> Path:
    """Write the members into ``output`` atomically, with fixed timestamps and permissions."""
    output = check_output(output)  # a clear BundleError when the folder is not writable
    with atomic_file(output) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(chosen):
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_STORED if name.endswith(STORED) else zipfile.ZIP_DEFLATED
            archive.writestr(info, read(chosen[name]))
    return output


def uncommitted(paths, root: Path = REPO_ROOT) -> list:
    """Files under ``paths`` that differ from git's HEAD (a bundle built now would not match a commit)."""
    try:
        run = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=root, capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in run.stdout.splitlines()] if run.returncode == 0 else []


def warn_uncommitted(paths, done: str) -> None:
    """Warn on stderr that the bundle holds uncommitted files (``done``: "built from", "released")."""
    dirty = uncommitted(paths)
    if dirty:
        print(f"warning: {done} uncommitted files ({', '.join(dirty[:5])}{', ...' if len(dirty) > 5 else ''})",
              file=sys.stderr)
