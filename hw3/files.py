"""Small file jobs done the same way everywhere: atomic writes, checksums, writability, Markdown tables.

Atomic writes go through a temporary file (or folder) beside the target, renamed over it only once
it is complete, so a reader never sees half a file and a failed write leaves nothing behind.

File modes: ``mkstemp`` creates private (0600) files. The default, ``SHARED`` (0644), makes the file
readable by all -- datasets, caches, results and bundles are read by other users (grading sandboxes,
the staff). ``mode=UMASK`` gives an ordinary file, as ``open(path, "w")`` would (a student's report).
"""
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

SHARED = 0o644
UMASK = None        # the mode ``open()`` would give: 0666 less the process's umask
CHUNK = 1 << 20


def _file_mode(mode) -> int:
    if mode is not UMASK:
        return mode
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_file(path, mode=SHARED, text: bool = False):
    """``with atomic_file(path) as f: f.write(...)``: ``f`` is a temporary file beside ``path``, given
    ``mode`` and renamed over ``path`` when the block ends without an exception (else deleted)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            yield f
        os.chmod(tmp, _file_mode(mode))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_atomically(path, data, mode=SHARED) -> Path:
    """Write ``data`` (bytes or str, UTF-8) to ``path`` atomically, with ``mode``."""
    with atomic_file(path, mode, text=isinstance(data, str)) as f:
        f.write(data)
    return Path(path)


def write_json_atomically(obj, path, mode=SHARED) -> Path:
    """``obj`` as indented JSON (and a final newline), written atomically."""
    return write_atomically(path, json.dumps(obj, indent=2) + "\n", mode)


@contextmanager
def atomic_folder(path):
    """``with atomic_folder(path) as tmp: ...``: fill the temporary folder ``tmp`` beside ``path``; when
    the block ends without an exception it replaces ``path`` (any previous folder there is removed)."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_of(path) -> str:
    """The SHA-256 of a file's bytes, in hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksums(manifest) -> dict:
    """{relative path: sha256} from a ``sha256sum``-format file ("<digest>  <path>" or "<digest> *<path>")."""
    entries = {}
    for line in Path(manifest).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            entries[rel.lstrip("*")] = digest
    return entries


def probe_writable(folder) -> None:
    """Raise OSError unless a file can be created in ``folder``: a real probe, since ``os.access``
    says yes to root even on a read-only file system."""
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
    os.close(fd)
    os.unlink(probe)


def markdown_table(header, rows) -> str:
    """A Markdown (GitHub) table of ``rows`` under ``header``, cells shown with str(), no final newline."""
    lines = [f"| {' | '.join(map(str, header))} |", f"|{'---|' * len(header)}"]
    return "\n".join(lines + [f"| {' | '.join(map(str, row))} |" for row in rows])
