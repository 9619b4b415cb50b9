"""The judge's own code for the training tests lives in autograder/judge/, never in hw3/ (which ships
to students): the prescribed networks and the loading of trained weights into them would be
reference code for graded functions. hw3.testing.judge_code finds it where it exists (the repository,
the grader's runtime) and gives None in a student's checkout, where the training tests measure the
student's own trained model in the worker instead: these tests check that both ways give the same numbers.
"""
import ast
import sys
from pathlib import Path

import pytest
import torch

from hw3 import REPO_ROOT, testing
from hw3.problems import NAMES
from hw3.remote import RemoteModule

JUDGE = REPO_ROOT / "autograder" / "judge"
PROBLEMS = NAMES


def top_level_names(path: Path) -> set:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def defined_names(path: Path) -> set:
    """Every function and class the file defines, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def test_every_problem_has_a_judge_module():
    assert sorted(p.stem for p in JUDGE.glob("*.py") if p.stem != "__init__") == sorted([*PROBLEMS, "weights"])
    for problem in PROBLEMS:
        assert testing.judge_code(problem).__name__ == f"autograder.judge.{problem}"


def test_no_judge_code_is_defined_in_hw3():
    judge_names = set().union(*(top_level_names(p) for p in JUDGE.glob("*.py")))
    assert {"rebuild", "PrescribedConvNet", "PrescribedCVAE", "load_prescribed", "match_heads", "load_generator",
            "prescribed_generator", "WeightMismatch", "load_in_order", "rebuild_mnist_embedding"} <= judge_names
    found = {f"{path.relative_to(REPO_ROOT)}: {name}" for path in sorted((REPO_ROOT / "hw3").rglob("*.py"))
             for name in defined_names(path) & judge_names}
    assert not found, f"judge-side code defined in the provided package (it ships to students): {sorted(found)}"


def test_judge_code_imports_no_student_code():
    """Trusted code on the judge's side: torch, itself, and of hw3 only the provided MnistEmbeddingNet."""
    for path in JUDGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for module in modules:
                assert module.split(".")[0] in ("torch", "autograder") or module == "hw3.siamese", (
                    f"{path.name} imports {module}")
                assert not module.startswith("autograder.") or module.startswith("autograder.judge"), (
                    f"{path.name} imports {module}")


class NoAutograder:
    """An import finder for which, as in a student's checkout, there is no autograder package."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] == "autograder":
            raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}", name="autograder")
        return None


def without_autograder(monkeypatch):
    """Imports from here on find no autograder package (restored after the test)."""
    for name in [n for n in sys.modules if n.split(".")[0] == "autograder"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoAutograder(), *sys.meta_path])


def test_judge_code_is_none_without_autograder(monkeypatch):
    without_autograder(monkeypatch)
    for problem in PROBLEMS:
        assert testing.judge_code(problem) is None


def test_judge_code_missing_from_the_grader_is_an_error(monkeypatch):
    """An autograder package without the judge's module must not quietly score the student's own model."""
    monkeypatch.setitem(sys.modules, "autograder.judge.cnn", None)
    with pytest.raises(ModuleNotFoundError):
        testing.judge_code("cnn")


@pytest.fixture(scope="module")
def solution():
    modules = {name: RemoteModule(name, REPO_ROOT / "solution", threads=1) for name in ("cnn", "cvae", "gan")}
    yield modules
    for module in modules.values():
        module.close()


def test_cnn_accuracy_is_the_same_both_ways(solution, monkeypatch):
    from hw3.cnn_experiment import measured_accuracy
    cnn = solution["cnn"]
    model = cnn.ConvNet("max", 5)   # untrained: what matters is that both ways compute the same network
    trained = {"parameters": [list(pair) for pair in model.named_parameters()], "model": model}
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.rand(300, 1, 28, 28, generator=generator), torch.randint(0, 10, (300,), generator=generator)
    judged = testing.judge_code("cnn").rebuild(trained["parameters"], "max", 5)(images)
    judged_accuracy = measured_accuracy(cnn, trained, "max", 5, images, labels, device=torch.device("cpu"))
    without_autograder(monkeypatch)
    assert testing.judge_code("cnn") is None
    local = testing.WorkerModel(cnn, model)(images)
    assert torch.allclose(judged, local, atol=1e-5), (judged - local).abs().max()
    assert measured_accuracy(cnn, trained, "max", 5, images, labels) == judged_accuracy


def test_cvae_measurements_are_the_same_both_ways(solution, monkeypatch):
    from hw3.cvae_experiment import measure_trained
    cvae = solution["cvae"]
    model = cvae.CVAE(latent_dim=2)
    run = {"state": model.state_dict(), "model": model}
    generator = torch.Generator().manual_seed(1)
    test_data = (torch.rand(300, 1, 28, 28, generator=generator).round(),
                 torch.randint(0, 10, (300,), generator=generator))
    judged = measure_trained(cvae, run, seed=3, judge_per_label=10, latent_dim=2, test_data=test_data)
    without_autograder(monkeypatch)
    local = measure_trained(cvae, run, seed=3, judge_per_label=10, latent_dim=2, test_data=test_data)
    assert local["test_negative_elbo"] == pytest.approx(judged["test_negative_elbo"], rel=1e-5)
    assert local["judge_accuracy_per_label"] == judged["judge_accuracy_per_label"]


def test_gan_digits_are_the_same_both_ways(solution, monkeypatch):
    from hw3.gan_experiment import generated_digits
    gan = solution["gan"]
    G = gan.build_generator(96)
    result = {"generator": G.state_dict(), "G": G}
    judged = generated_digits(gan, result, 20, seed=5)
    without_autograder(monkeypatch)
    local = generated_digits(gan, result, 20, seed=5)
    assert judged.shape == local.shape == (20, 784)
    assert torch.allclose(judged, local, atol=1e-5), (judged - local).abs().max()
