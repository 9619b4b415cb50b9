"""Grading on a GPU (``grade --device cuda [--full-budget]``), as far as a machine without one can
check it: the refusals (fail closed), what the sandbox and the environment give the worker, the
memory cap CUDA needs lifted, and the full-budget tests' place in the manifest.

On a machine with a CUDA GPU the refusal tests skip; ``grade --device cuda`` itself is checked there
by hand (the README's testing section says what has been measured on a GPU).
"""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autograder import REPO_ROOT
from autograder import grade as grader
from autograder.grade import sandbox

pytestmark = pytest.mark.timeout(600)

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
GRADE = [sys.executable, "-m", "autograder", "grade", str(REPO_ROOT / "solution")]


def grade_command(*flags, tmp_path):
    output = tmp_path / "results.json"
    run = subprocess.run([*GRADE, "-o", str(output), *flags], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=300)
    return run, output


@NO_GPU
def test_cuda_is_refused_where_torch_sees_no_gpu(tmp_path):
    """--device cuda without a GPU stops before any student code runs, says why, writes no results."""
    run, output = grade_command("--device", "cuda", "--isolation", "none", tmp_path=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error: --device cuda: torch sees no CUDA GPU here" in run.stderr
    assert "grade on the CPU" in run.stderr
    assert not output.exists()


@NO_GPU
def test_cuda_in_namespaces_needs_device_nodes(monkeypatch):
    """In the namespaces sandbox the worker can only see a GPU through /dev/nvidia*: none, no grading."""
    monkeypatch.setattr(sandbox, "gpu_device_nodes", lambda: [])
    with pytest.raises(grader.GradeError, match="no NVIDIA device nodes"):
        grader.check_device("cuda", False, sandbox.Isolation("namespaces"))


def test_full_budget_needs_cuda(tmp_path):
    run, output = grade_command("--full-budget", tmp_path=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error: --full-budget" in run.stderr and "--device cuda" in run.stderr
    assert not output.exists()
    with pytest.raises(grader.GradeError, match="unknown device 'tpu'"):
        grader.check_device("tpu", False, sandbox.Isolation("none"))
    grader.check_device("cpu", False, sandbox.Isolation("none"))   # the default: nothing to check


def test_cuda_stays_hidden_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert grader.base_env(tmp_path, tmp_path)["CUDA_VISIBLE_DEVICES"] == ""
    assert "CUDA_VISIBLE_DEVICES" not in grader.base_env(tmp_path, tmp_path, device="cuda")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")   # the grader's own choice of GPU holds
    assert grader.base_env(tmp_path, tmp_path, device="cuda")["CUDA_VISIBLE_DEVICES"] == "1"
    assert grader.base_env(tmp_path, tmp_path)["CUDA_VISIBLE_DEVICES"] == ""


def test_gpu_sandbox_binds_the_device_nodes(monkeypatch):
    """The nodes are --dev-bind (a plain bind over bwrap's nodev /dev is unusable), after --dev, with
    /sys read-only (where CUDA enumerates its devices); without gpu, none of it."""
    nodes = [Path("/dev/nvidia0"), Path("/dev/nvidiactl"), Path("/dev/nvidia-uvm")]
    monkeypatch.setattr(sandbox, "gpu_device_nodes", lambda: nodes)
    isolation = sandbox.Isolation("namespaces", user_namespace=True)
    args = sandbox.bwrap_prefix(isolation, read_only=[], writable=[], cwd=Path("/tmp"), gpu=True)
    pairs = list(zip(args, args[1:], args[2:]))
    for node in nodes:
        assert ("--dev-bind", str(node), str(node)) in pairs
        assert pairs.index(("--dev-bind", str(node), str(node))) > args.index("--dev")
    assert ("--ro-bind", "/sys", "/sys") in pairs
    plain = sandbox.bwrap_prefix(isolation, read_only=[], writable=[], cwd=Path("/tmp"))
    assert "--dev-bind" not in plain and "/sys" not in plain


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_gpu_device_nodes_are_the_drivers_character_devices(tmp_path):
    os.mknod(tmp_path / "nvidia0", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(tmp_path / "nvidiactl", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (tmp_path / "nvidia-caps").mkdir()
    (tmp_path / "nvidia-fake").write_text("a regular file is no device")
    (tmp_path / "null").write_text("")
    found = [path.name for path in sandbox.gpu_device_nodes(tmp_path)]
    assert found == ["nvidia-caps", "nvidia0", "nvidiactl"]


def address_space_limit(limits: sandbox.Limits) -> str:
    child = sandbox.run([sys.executable, "-c", "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0])"],
                        env={"PATH": os.environ["PATH"]}, cwd="/tmp", limits=limits,
                        sandbox=sandbox.Sandbox(sandbox.choose("none")))
    return child.output.strip()


def test_cuda_lifts_the_address_space_cap():
    """CUDA reserves terabytes of address space at its first call: on a GPU only the cgroup's memory
    limit (the whole tree's pages) holds, not RLIMIT_AS."""
    assert address_space_limit(sandbox.Limits(memory_mb=4096)) == str(4096 << 20)
    assert address_space_limit(sandbox.Limits(memory_mb=4096, address_space=False)) == "-1"


def test_full_budget_tests_are_extra_points_of_their_own():
    """Left out of every manifest but --full-budget's; there each is extra credit (the problems' 25
    points stand), tagged full_budget, with the weights autograder/README.md documents."""
    default = grader.collect_manifest()
    assert not [t for t in default["tests"] if "full_budget" in t["tags"]]
    full = grader.collect_manifest(full_budget=True)
    extra = [t for t in full["tests"] if "full_budget" in t["tags"]]
    weights = {}
    for test in extra:
        assert test["extra_credit"] and test["visibility"] == "visible" and test["number"], test
        weights[test["problem"]] = weights.get(test["problem"], 0) + test["weight"]
    assert weights == {"cnn": 2.0, "contrastive": 3.0, "cvae": 2.0, "gan": 2.0}
    assert len(full["tests"]) == len(default["tests"]) + len(extra)
    assert grader.check_weights(full) == grader.check_weights(default) == []
