"""The project's own machinery: implementation switch, starter generation, dataset step, CI wiring.

Not graded; these tests keep the infrastructure honest.
"""
import hashlib
import os
import subprocess
import sys

import pytest

from autograder import SOLUTION_DIR, assign
from hw3 import REPO_ROOT, datasets, impl

needs_solution = pytest.mark.skipif(not SOLUTION_DIR.is_dir(), reason="no solution/ in this bundle")


# --- implementation switch -------------------------------------------------------------------

def test_load_reads_the_chosen_folder_only(tmp_path):
    (tmp_path / "gan.py").write_text("WHERE = 'tmp'\n")
    assert impl.load("gan", tmp_path).WHERE == "tmp"
    with pytest.raises(impl.ImplementationError, match="has no cnn.py"):
        impl.load("cnn", tmp_path)  # never falls back to starter/ or solution/


def test_two_folders_load_two_modules(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    (tmp_path / "a" / "cvae.py").write_text("X = 1\n")
    (tmp_path / "b" / "cvae.py").write_text("X = 2\n")
    assert (impl.load("cvae", tmp_path / "a").X, impl.load("cvae", tmp_path / "b").X) == (1, 2)


def test_bad_folder_and_module_names_are_clear(tmp_path):
    with pytest.raises(impl.ImplementationError, match="does not exist"):
        impl.impl_dir(tmp_path / "nope")
    with pytest.raises(impl.ImplementationError, match="unknown student module"):
        impl.load("os", tmp_path)


def test_pytest_impl_option_rejects_a_missing_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "pytest", "tests_infra/test_hw3/test_foundation.py", "-q", "--impl", str(tmp_path / "nope")],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode != 0 and "does not exist" in run.stderr + run.stdout


def test_pytest_reports_which_folder_it_tests():
    run = subprocess.run([sys.executable, "-m", "pytest", "tests_infra/test_hw3/test_foundation.py", "-q", "--co", "--impl", "starter"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert f"hw3 implementation tested: {REPO_ROOT / 'starter'}" in run.stdout


# --- starter generated from the solution ----------------------------------------------------

@needs_solution
def test_starter_is_in_sync_with_solution():
    stale = assign.stale_files()
    assert not stale, f"starter/ is out of date for {stale}: run `python -m autograder assign`"


def test_make_starter_replaces_regions_with_named_stubs():
    source = ("def f(x):\n    \"\"\"Doc.\"\"\"\n    # BEGIN SOLUTION (handout 4.2)\n    return x + 1\n"
              "    # END SOLUTION\n")
    starter = assign.make_starter(source, "gan.py")
    assert "return x + 1" not in starter and '"""Doc."""' in starter
    assert 'raise NotImplementedError("f is not implemented yet: see handout section 4.2 (Problem 4, gan.py)")' in starter
    namespace = {}
    exec(starter, namespace)
    with pytest.raises(NotImplementedError, match="handout section 4.2"):
        namespace["f"](1)


@pytest.mark.parametrize("source, message", [
    ("def f():\n    # BEGIN SOLUTION (handout 1.1)\n    pass\n", "never closed"),
    ("def f():\n    pass\n    # END SOLUTION\n", "without BEGIN"),
    ("# BEGIN SOLUTION (handout 1.1)\nx = 1\n# END SOLUTION\n", "inside a function"),
])
def test_malformed_markers_are_reported(source, message):
    with pytest.raises(assign.AssignError, match=message):
        assign.make_starter(source, "cnn.py")


@needs_solution
def test_every_solution_region_becomes_a_stub_in_the_starter():
    for name in assign.STUDENT_FILES:
        solution = (SOLUTION_DIR / name).read_text()
        regions = solution.count("# BEGIN SOLUTION")
        assert regions > 0, f"solution/{name} has no solution region"
        assert assign.make_starter(solution, name).count("raise NotImplementedError(") == regions


# --- dataset step ---------------------------------------------------------------------------

@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A two-file dataset with its own manifest, and a mirror holding it."""
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    contents = {"tiny/a.bin": b"alpha" * 1000, "tiny/b.bin": b"beta"}
    for rel, data in contents.items():
        (mirror / rel).write_bytes(data)
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    (manifest_dir / "tiny.sha256").write_text(
        "".join(f"{hashlib.sha256(d).hexdigest()}  {rel}\n" for rel, d in contents.items()))
    monkeypatch.setattr(datasets, "MANIFEST_DIR", manifest_dir)
    monkeypatch.setitem(datasets.DATASETS, "tiny", datasets.Dataset("tiny", "tiny.sha256", ()))
    return mirror, tmp_path / "root"


def snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def test_fetch_from_mirror_verifies_and_never_writes_into_it(tiny_dataset):
    mirror, root = tiny_dataset
    before = snapshot(mirror)
    datasets.fetch("tiny", root, mirror=mirror, log=lambda *_: None)
    assert (root / "tiny/b.bin").read_bytes() == b"beta"
    assert snapshot(mirror) == before
    messages = []
    datasets.fetch("tiny", root, mirror=mirror, log=messages.append)  # second run: nothing to do
    assert "present and verified" in messages[0]


def test_corrupt_mirror_file_is_named_with_checksum_and_fix(tiny_dataset):
    mirror, root = tiny_dataset
    (mirror / "tiny/b.bin").write_bytes(b"bets")
    with pytest.raises(datasets.DatasetError) as error:
        datasets.fetch("tiny", root, mirror=mirror, log=lambda *_: None)
    message = str(error.value)
    assert "tiny/b.bin is corrupt" in message and hashlib.sha256(b"beta").hexdigest() in message
    assert "Fix:" in message
    assert not (root / "tiny/b.bin").exists(), "a corrupt file must not be kept"
    assert [p.name for p in (root / "tiny").iterdir()] == ["a.bin"], "no temporary file may be left behind"


def test_missing_mirror_file_and_folder_are_reported(tiny_dataset, tmp_path):
    mirror, root = tiny_dataset
    (mirror / "tiny/a.bin").unlink()
    with pytest.raises(datasets.DatasetError, match="a.bin is missing from the mirror"):
        datasets.fetch("tiny", root, mirror=mirror, log=lambda *_: None)
    with pytest.raises(datasets.DatasetError, match="is not a folder"):
        datasets.fetch("tiny", root, mirror=tmp_path / "nowhere", log=lambda *_: None)


def test_a_corrupted_local_file_is_replaced(tiny_dataset):
    mirror, root = tiny_dataset
    datasets.fetch("tiny", root, mirror=mirror, log=lambda *_: None)
    (root / "tiny/a.bin").write_bytes(b"garbage")
    datasets.fetch("tiny", root, mirror=mirror, log=lambda *_: None)
    assert (root / "tiny/a.bin").read_bytes() == b"alpha" * 1000


def test_download_path_verifies_files(tiny_dataset, monkeypatch):
    """The networked path, served from a local folder through file:// URLs."""
    mirror, root = tiny_dataset
    monkeypatch.delenv(datasets.MIRROR_ENV_VAR, raising=False)  # CI sets it; this test is about the networked path
    monkeypatch.setitem(datasets.DATASETS, "tiny",
                        datasets.Dataset("tiny", "tiny.sha256", (f"file://{mirror}/nowhere/", f"file://{mirror}/tiny/")))
    datasets.fetch("tiny", root, mirror=None, log=lambda *_: None)
    assert (root / "tiny/a.bin").read_bytes() == b"alpha" * 1000


def test_recorded_manifests_cover_the_datasets():
    assert len(datasets.read_manifest(datasets.DATASETS["mnist"])) == 4
    assert len(datasets.read_manifest(datasets.DATASETS["lfw"])) == 13241


def test_data_command_fails_clearly_on_a_corrupt_mirror(tmp_path):
    """End to end, as setup.sh runs it: a corrupted copy of the MNIST mirror stops the step."""
    source = datasets.data_root() / "MNIST" / "raw"
    if not (source / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("MNIST not fetched")
    mirror = tmp_path / "mirror" / "MNIST" / "raw"
    mirror.mkdir(parents=True)
    for gz in source.glob("*.gz"):
        (mirror / gz.name).write_bytes(gz.read_bytes())
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not mnist")
    env = {**os.environ, datasets.ROOT_ENV_VAR: str(tmp_path / "data")}
    run = subprocess.run([sys.executable, "-m", "hw3", "data", "--only", "mnist", "--mirror", str(tmp_path / "mirror")],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 1
    assert "t10k-labels-idx1-ubyte.gz is corrupt" in run.stderr
    assert "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6" in run.stderr


# --- CI wiring ------------------------------------------------------------------------------

def test_ci_runs_the_test_command_the_readme_gives():
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    command = ".venv/bin/python -m pytest tests/ tests_infra/ --impl solution"
    assert command in readme and command in ci


# --- loaders --------------------------------------------------------------------------------

def test_mnist_loader_gives_the_canonical_tensors():
    from hw3.loaders import load_mnist
    images, labels = load_mnist(train=False)
    assert images.shape == (10000, 1, 28, 28) and images.dtype.is_floating_point
    assert 0 <= images.min() and images.max() == 1
    assert labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_missing_dataset_says_how_to_fetch_it(tmp_path):
    from hw3.loaders import load_mnist
    with pytest.raises(datasets.DatasetError, match="python -m hw3 data --only mnist"):
        load_mnist(train=True, root=tmp_path)


def test_lfw_split_files_parse():
    from hw3.loaders import read_lfw_pairs, read_lfw_people
    pairs = read_lfw_pairs("pairsDevTest.txt")
    assert len(pairs) == 1000 and sum(same for *_, same in pairs) == 500
    assert pairs[0][0].endswith("_0001.jpg") or pairs[0][0].count("/") == 1
    train_people = read_lfw_people("peopleDevTrain.txt")
    assert len(train_people) == 4038 and not set(train_people) & set(read_lfw_people("peopleDevTest.txt"))
