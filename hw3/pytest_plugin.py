"""The pytest plugin of the graded tests and of the infrastructure's own tests: the implementation
switch (--impl / $HW3_IMPL), student-module fixtures, a fixed seed per test and the local score table
printed at the end of every run (hw3/score.py).

tests/conftest.py loads it (``pytest_plugins``); tests run against starter/ unless told otherwise:
    pytest tests/ --impl ~/hw3-mine      # any folder holding cnn.py, contrastive.py, cvae.py, gan.py
"""
import os
from pathlib import Path

import pytest
import torch

from hw3 import REPO_ROOT, impl, score
from hw3.remote import REMOTE_PROBLEMS, RemoteModule


def pytest_addoption(parser):
    parser.addoption("--impl", metavar="FOLDER", default=None,
                     help=f"implementation under test: starter (default), solution or a folder path "
                          f"(default: ${impl.ENV_VAR}, else starter)")
    parser.addoption("--gpu-tests-on-cpu", action="store_true",
                     help="run the full-budget tests marked gpu on the CPU when there is no CUDA GPU "
                          "(minutes, not seconds: the CNN table took 340 s on 2 cores)")


def resolve_impl_option(value: str) -> Path:
    """A folder named on the command line: relative to the current folder, else to the repository."""
    path = Path(value).expanduser()
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path


def pytest_configure(config):
    value = config.getoption("--impl")
    try:
        folder = impl.impl_dir(resolve_impl_option(value) if value else None)
    except impl.ImplementationError as error:
        raise pytest.UsageError(str(error))
    # The environment carries the choice to subprocesses and to hw3.impl.load.
    os.environ[impl.ENV_VAR] = str(folder)
    score.register(config)  # the points table at the end of the run


def pytest_report_header(config):
    return f"hw3 implementation under test: {impl.impl_dir()}"


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"hw3 implementation tested: {impl.impl_dir()}")


@pytest.fixture(autouse=True)
def fixed_seed():
    """Every test starts from the same random state, so failures reproduce."""
    torch.manual_seed(0)


@pytest.fixture
def set_score():
    """Placeholder so pytest accepts tests decorated with gradescope-utils' @partial_credit, whose
    wrapper replaces this argument with its own score setter."""
    return None


def student_module(name):
    @pytest.fixture(scope="session", name=name)
    def fixture():
        if name not in REMOTE_PROBLEMS:
            yield impl.load(name)
            return
        with RemoteModule(name, impl.impl_dir()) as module:  # a worker process (sandboxed when graded)
            yield module
    fixture.__doc__ = f"The student's {name}.py from the implementation folder under test."
    return fixture


cnn = student_module("cnn")
contrastive = student_module("contrastive")
cvae = student_module("cvae")
gan = student_module("gan")


@pytest.fixture
def full_budget_device(request) -> torch.device:
    """Where the tests marked gpu train: the GPU, else the CPU with --gpu-tests-on-cpu, else skip."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if request.config.getoption("--gpu-tests-on-cpu", default=False):
        return torch.device("cpu")
    pytest.skip("full-budget test: needs a CUDA GPU (or --gpu-tests-on-cpu)")
