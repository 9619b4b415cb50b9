"""Finding the student's files in a submission (a folder or a .zip) and copying them somewhere private.

Forgiving about layout -- the files may sit at the top or inside one folder (``hw3/gan.py``,
``alice_hw3/starter/gan.py``) -- but strict about safety: only regular files are read (never a
symlink), nothing outside the submission is ever touched, a zip member with an absolute or ``..``
name is skipped (with a note), and member counts and sizes are capped before anything is unpacked.
"""
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autograder.grade.results import safe_text
from hw3.problems import STUDENT_FILES

MAX_FILE_BYTES = 2 * 1024 * 1024   # a student source file larger than this is refused
MAX_DEPTH = 4                      # folders searched below the submission's top
IGNORED_FOLDERS = ("__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints")
MAX_ENTRIES = 10_000               # entries of a zip (its central directory) or a submission folder
MAX_ZIP_DIRECTORY = 4 << 20        # bytes of a zip's central directory
MAX_ZIP_TOTAL = 1 << 30            # uncompressed bytes of all members together


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
                     f"'{safe_text(best, 200, one_line=True)}' and ignored "
                     f"{', '.join(repr(safe_text(o, 200, one_line=True)) for o in others[:5])}.")
    return best, candidates[best], notes


def _skip(parts) -> bool:
    return any(p in IGNORED_FOLDERS or p.startswith(".") for p in parts)


def scan_folder(folder: Path) -> dict:
    """{relative folder: {file name: absolute path}} for the regular (non-symlink) student files."""
    candidates = {}
    seen = [0]

    def walk(directory: Path, rel: PurePosixPath):
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            return
        seen[0] += len(entries)
        if seen[0] > MAX_ENTRIES:
            raise SubmissionError(f"submission {folder} holds more than {MAX_ENTRIES} files and folders: "
                                  f"submit only the folder with {', '.join(STUDENT_FILES)}")
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


def unsafe_member(name: str) -> bool:
    """An absolute or ``..`` member name points outside the archive."""
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or bool(path.parts and ":" in path.parts[0])


def zip_directory_size(source: Path) -> tuple:
    """(entries, central directory bytes) read from the zip's end records alone, before any member is
    listed (zipfile reads the whole directory into memory: a million entries cost half a GB)."""
    with open(source, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
        end = tail.rfind(b"PK\x05\x06")
        if end < 0 or len(tail) - end < 22:
            raise SubmissionError(f"submission {source} is a damaged zip (no end of central directory); "
                                  f"re-create it")
        entries, directory = struct.unpack("<HI", tail[end + 10:end + 16])
        locator = tail.rfind(b"PK\x06\x07", 0, end)
        if locator >= 0 and len(tail) - locator >= 20:   # zip64: zipfile believes these records, so do we
            (record_at,) = struct.unpack("<Q", tail[locator + 8:locator + 16])
            f.seek(min(record_at, size))
            record = f.read(56)
            if record[:4] != b"PK\x06\x06" or len(record) < 56:
                raise SubmissionError(f"submission {source} is a damaged zip64 archive; re-create it")
            entries64, directory64 = struct.unpack("<QQ", record[32:48])
            entries, directory = max(entries, entries64), max(directory, directory64)
    return entries, directory


def check_zip_bounds(source: Path) -> None:
    entries, directory = zip_directory_size(source)
    if entries > MAX_ENTRIES or directory > MAX_ZIP_DIRECTORY:
        raise SubmissionError(f"submission {source} holds {entries} entries ({directory} bytes of directory), "
                              f"over the limit of {MAX_ENTRIES}: zip only the folder with "
                              f"{', '.join(STUDENT_FILES)}")


def scan_zip(archive: zipfile.ZipFile, notes: list) -> dict:
    """{relative folder: {file name: ZipInfo}} for the regular-file student entries of a zip; an unsafe
    member is skipped with a note naming it."""
    candidates = {}
    members = archive.infolist()
    total = sum(info.file_size for info in members)
    if total > MAX_ZIP_TOTAL:
        raise SubmissionError(f"the zip would unpack to {total} bytes, over the {MAX_ZIP_TOTAL}-byte limit: zip "
                              f"only {', '.join(STUDENT_FILES)}")
    for info in members:
        if unsafe_member(info.filename):
            notes.append(f"Skipped zip member '{safe_text(info.filename, 200, one_line=True)}': it points outside the archive "
                         f"(absolute path or '..').")
            continue
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or path.name not in STUDENT_FILES:
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            continue
        folder = path.parent
        if len(folder.parts) > MAX_DEPTH or _skip(folder.parts):
            continue
        candidates.setdefault(folder, {})[path.name] = info
    return candidates


def copy_student_files(submission, dest: Path) -> Submission:
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
        check_zip_bounds(source)
        try:
            with zipfile.ZipFile(source) as archive:
                skipped = []
                folder, files, result.notes = _choose(scan_zip(archive, skipped))
                result.notes = skipped + result.notes
                for name, info in files.items():
                    if info.flag_bits & 0x1:
                        result.notes.append(f"{name} is encrypted in the zip: not graded.")
                        continue
                    if info.file_size > MAX_FILE_BYTES:
                        result.notes.append(f"{name} is {info.file_size} bytes, over the "
                                            f"{MAX_FILE_BYTES}-byte limit: not graded.")
                        continue
                    try:
                        with archive.open(info) as member, open(dest / name, "wb") as out:
                            out.write(member.read(MAX_FILE_BYTES + 1))
                    except (zipfile.BadZipFile, NotImplementedError, EOFError, RuntimeError, OSError, ValueError,
                            zlib.error) as error:
                        result.notes.append(f"{name} could not be unpacked from the zip ({safe_text(error, 200)}): "
                                            f"not graded.")
                        (dest / name).unlink(missing_ok=True)
                        continue
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
