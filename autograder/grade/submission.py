"""Finding the student's files in a submission (a folder or a .zip) and copying them somewhere private.

Forgiving about layout -- the files may sit at the top or inside one folder (``hw3/gan.py``,
``alice_hw3/starter/gan.py``) -- but strict about safety: only regular files are read (never a
symlink), nothing outside the submission is ever touched, a zip with an absolute or ``..`` member
name is refused, and sizes are capped.
"""
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

STUDENT_FILES = ("cnn.py", "contrastive.py", "cvae.py", "gan.py")
MAX_FILE_BYTES = 2 * 1024 * 1024   # a student source file larger than this is refused
MAX_DEPTH = 4                      # folders searched below the submission's top
IGNORED_FOLDERS = ("__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints")


class SubmissionError(Exception):
    """The submission cannot be read at all (missing, not a folder or zip, unsafe zip)."""


@dataclass
class Submission:
    files: dict = field(default_factory=dict)   # {"gan.py": Path of the private copy}
    folder: str = ""                            # where in the submission they were found
    notes: list = field(default_factory=list)   # messages for the student (oversized file, ...)

    def missing(self) -> list:
        return [name for name in STUDENT_FILES if name not in self.files]


def _choose(candidates: dict) -> tuple:
    """candidates: {folder (PurePosixPath, relative): {file name: source}} -> (folder, files, notes).

    The shallowest folder holding any student file wins; between folders at the same depth, the one
    holding the most student files (then the first by name).
    """
    if not candidates:
        return PurePosixPath("."), {}, []
    best = min(candidates, key=lambda f: (len(f.parts), -len(candidates[f]), str(f)))
    notes = []
    others = sorted(str(f) for f in candidates if f != best)
    if others:
        notes.append(f"Student files were found in more than one folder; graded the ones in "
                     f"'{best}' and ignored {', '.join(repr(o) for o in others[:5])}.")
    return best, candidates[best], notes


def _skip(parts) -> bool:
    return any(p in IGNORED_FOLDERS or p.startswith(".") for p in parts)


def scan_folder(folder: Path) -> dict:
    """{relative folder: {file name: absolute path}} for the regular (non-symlink) student files."""
    candidates = {}

    def walk(directory: Path, rel: PurePosixPath):
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        for entry in entries:
            try:
                mode = entry.lstat().st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode) and len(rel.parts) < MAX_DEPTH and not _skip([entry.name]):
                walk(entry, rel / entry.name)
            elif stat.S_ISREG(mode) and entry.name in STUDENT_FILES:
                candidates.setdefault(rel, {})[entry.name] = entry

    walk(folder, PurePosixPath("."))
    return candidates


def check_member_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise SubmissionError(f"the zip is unsafe: member {name!r} points outside the archive "
                              f"(absolute path or '..'); re-create the zip from the folder holding your files")
    return path


def scan_zip(archive: zipfile.ZipFile) -> dict:
    """{relative folder: {file name: ZipInfo}} for the regular-file student entries of a zip."""
    candidates = {}
    for info in archive.infolist():
        path = check_member_name(info.filename)
        if info.is_dir() or path.name not in STUDENT_FILES:
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            continue
        folder = path.parent
        if len(folder.parts) > MAX_DEPTH or _skip(folder.parts):
            continue
        candidates.setdefault(folder, {})[path.name] = info
    return candidates


def collect(submission, dest: Path) -> Submission:
    """Copy the student files of ``submission`` (folder or .zip) into ``dest`` (created)."""
    source = Path(submission).expanduser()
    if not source.exists():
        raise SubmissionError(f"submission {source} does not exist")
    dest.mkdir(parents=True, exist_ok=True)
    result = Submission()
    if source.is_dir():
        folder, files, result.notes = _choose(scan_folder(source))
        for name, path in files.items():
            size = path.lstat().st_size
            if size > MAX_FILE_BYTES:
                result.notes.append(f"{name} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit: not graded.")
                continue
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
            (dest / name).write_bytes(data)
            result.files[name] = dest / name
    elif zipfile.is_zipfile(source):
        try:
            with zipfile.ZipFile(source) as archive:
                folder, files, result.notes = _choose(scan_zip(archive))
                for name, info in files.items():
                    if info.flag_bits & 0x1:
                        result.notes.append(f"{name} is encrypted in the zip: not graded.")
                        continue
                    if info.file_size > MAX_FILE_BYTES:
                        result.notes.append(f"{name} is {info.file_size} bytes, over the "
                                            f"{MAX_FILE_BYTES}-byte limit: not graded.")
                        continue
                    with archive.open(info) as member, open(dest / name, "wb") as out:
                        shutil.copyfileobj(member, out)
                    result.files[name] = dest / name
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, RuntimeError) as error:
            raise SubmissionError(f"submission {source} is a damaged or unsupported zip: {error}") from None
    elif source.is_file():
        raise SubmissionError(f"submission {source} is neither a folder nor a .zip file; pass the folder "
                              f"holding {', '.join(STUDENT_FILES)} or a zip of it")
    else:
        raise SubmissionError(f"submission {source} is not a regular file or folder")
    for path in result.files.values():
        path.chmod(0o644)
    result.folder = str(folder)
    return result
