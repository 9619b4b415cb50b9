"""The dataset step: fetch MNIST and LFW into datasets/, every file checked against its recorded sha256.

Two sources:
  * an offline mirror folder laid out like ``datasets/`` (``MNIST/raw/*.gz``, ``lfw/...``), named by
    ``--mirror`` or the ``HW3_DATASETS_MIRROR`` environment variable; files are copied, the mirror
    is only ever read;
  * otherwise the canonical download locations.

Every file is written under a temporary name in its destination folder and renamed only once its
checksum matches, so an interrupted or failed run leaves no half-written file behind. Files that
are already present and verified are left alone, which makes a second run quick.
"""
import gzip
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hw3 import REPO_ROOT
from hw3.files import CHUNK, atomic_file, read_checksums, sha256_of

MIRROR_ENV_VAR = "HW3_DATASETS_MIRROR"
ROOT_ENV_VAR = "HW3_DATA"
MANIFEST_DIR = REPO_ROOT / "datasets"


@dataclass(frozen=True)
class Dataset:
    name: str
    manifest: str  # sha256sum-format file in datasets/, paths relative to the data root
    urls: tuple  # canonical sources, tried in order
    archive_md5: str = ""  # for datasets downloaded as one archive


DATASETS = {
    "mnist": Dataset(
        "mnist",
        "MNIST.sha256",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    ),
    "lfw": Dataset(
        "lfw",
        "lfw.sha256",
        ("http://vis-www.cs.umass.edu/lfw/",),
        archive_md5="68331da3eb755a505a502b5aacb3c201",  # lfw-deepfunneled.tgz, as torchvision records it
    ),
}
LFW_ARCHIVE = "lfw-deepfunneled.tgz"


class DatasetError(Exception):
    """A dataset file is missing or corrupt, or could not be fetched; the message says what to do."""


def data_root() -> Path:
    """Where datasets live: $HW3_DATA, else the repository's datasets/ folder."""
    return Path(os.environ.get(ROOT_ENV_VAR) or MANIFEST_DIR).resolve()


def read_manifest(dataset: Dataset) -> dict:
    """{relative path: sha256} from the dataset's recorded manifest."""
    return read_checksums(MANIFEST_DIR / dataset.manifest)


def is_verified(path: Path, expected: str) -> bool:
    return path.is_file() and sha256_of(path) == expected


def write_verified(source, dest: Path, expected: str, origin: str, fix: str) -> None:
    """Stream the binary file object ``source`` to ``dest`` through a temporary file; keep it only if
    its sha256 is ``expected``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(dest) as out:  # readable by all: datasets are shared
        digest = hashlib.sha256()
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != expected:
            raise DatasetError(
                f"{origin} is corrupt: sha256 {digest.hexdigest()}, expected {expected}.\n  Fix: {fix}"
            )


def fetch(name: str, root: Path = None, mirror=None, log=print) -> None:
    """Make every file of dataset ``name`` present and verified under ``root``."""
    dataset = DATASETS[name]
    root = Path(root or data_root())
    mirror = mirror or os.environ.get(MIRROR_ENV_VAR) or None
    if mirror and Path(mirror).resolve() == root.resolve():
        raise DatasetError(f"the mirror {mirror} is the data folder itself; point {MIRROR_ENV_VAR} at another folder")
    manifest = read_manifest(dataset)
    todo = {rel: sha for rel, sha in manifest.items() if not is_verified(root / rel, sha)}
    if not todo:
        log(f"{name}: all {len(manifest)} files present and verified in {root}")
    else:
        log(f"{name}: {len(todo)} of {len(manifest)} files to fetch from {mirror or 'the canonical sources'}")
        if mirror:
            copy_from_mirror(dataset, todo, root, Path(mirror))
        elif name == "lfw":
            download_lfw(dataset, todo, root)
        else:
            download_files(dataset, todo, root)
        log(f"{name}: {len(todo)} files fetched and verified")
    if name == "mnist":
        extract_mnist(root, manifest)


def report(errors: list, dataset: Dataset) -> None:
    if errors:
        shown = "\n".join(errors[:10]) + (f"\n... and {len(errors) - 10} more" if len(errors) > 10 else "")
        raise DatasetError(f"{len(errors)} file(s) of {dataset.name} could not be fetched:\n{shown}")


def copy_from_mirror(dataset: Dataset, todo: dict, root: Path, mirror: Path) -> None:
    if not mirror.is_dir():
        raise DatasetError(f"dataset mirror {mirror} is not a folder; fix {MIRROR_ENV_VAR} or --mirror")
    errors = []
    for rel, sha in sorted(todo.items()):
        source = mirror / rel
        fix = (f"restore {source} from the canonical source, or unset {MIRROR_ENV_VAR} "
               f"to download on a networked machine")
        if not source.is_file():
            errors.append(f"{source} is missing from the mirror (expected sha256 {sha}).\n  Fix: {fix}")
            continue
        try:
            with open(source, "rb") as f:
                write_verified(f, root / rel, sha, str(source), fix)
        except DatasetError as e:
            errors.append(str(e))
    report(errors, dataset)


def open_first(urls: list):
    """Open the first URL that answers; raise DatasetError listing all failures."""
    failures = []
    for url in urls:
        try:
            return urllib.request.urlopen(url, timeout=60)
        except OSError as e:
            failures.append(f"{url}: {e}")
    raise DatasetError("could not download from any source:\n  " + "\n  ".join(failures) +
                       f"\n  Fix: check the network, or set {MIRROR_ENV_VAR} to an offline mirror folder")


def download_files(dataset: Dataset, todo: dict, root: Path) -> None:
    errors = []
    for rel, sha in sorted(todo.items()):
        filename = Path(rel).name
        try:
            with open_first([base + filename for base in dataset.urls]) as response:
                write_verified(response, root / rel, sha, f"downloaded {filename}",
                               "run the step again; if it persists, the source has changed: use a mirror")
        except DatasetError as e:
            errors.append(str(e))
    report(errors, dataset)


def download_lfw(dataset: Dataset, todo: dict, root: Path) -> None:
    """Text files one by one; images from the official archive, each member verified on extraction."""
    base = dataset.urls[0]
    images = {rel: sha for rel, sha in todo.items() if rel.startswith("lfw/lfw-deepfunneled/")}
    download_files(Dataset("lfw", dataset.manifest, (base,)),
                   {rel: sha for rel, sha in todo.items() if rel not in images}, root)
    if not images:
        return
    archive_dir = root / "lfw"
    archive_dir.mkdir(parents=True, exist_ok=True)
    fd, archive = tempfile.mkstemp(dir=archive_dir, prefix=f".{LFW_ARCHIVE}.", suffix=".part")
    try:
        md5 = hashlib.md5()
        with open_first([base + LFW_ARCHIVE]) as response, os.fdopen(fd, "wb") as out:
            while chunk := response.read(CHUNK):
                md5.update(chunk)
                out.write(chunk)
        if md5.hexdigest() != dataset.archive_md5:
            raise DatasetError(f"downloaded {LFW_ARCHIVE} has md5 {md5.hexdigest()}, expected "
                               f"{dataset.archive_md5}.\n  Fix: run the step again, or use a mirror")
        errors = []
        with tarfile.open(archive) as tar:
            for member in tar:
                rel = "lfw/" + member.name
                if rel in images and member.isfile():
                    try:
                        write_verified(tar.extractfile(member), root / rel, images.pop(rel), rel,
                                       "the archive does not match the recorded manifest: use a mirror")
                    except DatasetError as e:
                        errors.append(str(e))
        errors += [f"{rel} is not in {LFW_ARCHIVE} (expected sha256 {sha})" for rel, sha in images.items()]
        report(errors, dataset)
    finally:
        if os.path.exists(archive):
            os.unlink(archive)


def extract_mnist(root: Path, manifest: dict) -> None:
    """Gunzip the verified IDX files beside themselves, as torchvision's MNIST(download=False) expects."""
    for rel in manifest:
        gz = root / rel
        target = gz.with_suffix("")
        if not target.is_file():
            with gzip.open(gz, "rb") as src, atomic_file(target) as out:
                shutil.copyfileobj(src, out, CHUNK)


def require(name: str, root: Path = None) -> Path:
    """The data root, after checking that dataset ``name`` has been fetched (cheap: existence only)."""
    root = Path(root or data_root())
    missing = [rel for rel in read_manifest(DATASETS[name]) if not (root / rel).is_file()]
    if missing:
        raise DatasetError(f"{name} is not fetched: {root / missing[0]} is missing ({len(missing)} files).\n"
                           f"  Fix: run ./setup.sh, or `python -m hw3 data --only {name}` "
                           f"(with {MIRROR_ENV_VAR}=FOLDER when offline)")
    return root
