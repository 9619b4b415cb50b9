"""Small hooks the graded tests share: the tensor checks of the function tests (``check_tensor``,
``check_gradients``, ``check_shape``), and for the training (convergence) tests their seed, the
metric they check and where their measurements come from (``judge_code``, ``WorkerModel``).

A training test uses them like this (nothing else changes)::

    from hw3.testing import check_metric, training_seed

    @pytest.mark.training
    def test_convnet_learns(cnn):
        generator = seed_everything(training_seed(0))      # 0: the test's fixed, documented seed
        ...
        check_metric("test accuracy %", accuracy, 95.0, f"...")   # records it, asserts accuracy >= 95.0

Graded runs never change: without ``$HW3_TEST_SEED`` (the autograder never passes it to the test
process) ``training_seed(default)`` is ``default``, and without ``$HW3_TEST_METRICS``
``record_metric`` (which ``check_metric`` calls) does nothing. The course staff's flakiness runs
set both to rerun every training test over many seeds and to report each test's pass rate and
margin (measured value vs threshold).
"""
import importlib
import json
import os

SEED_VAR = "HW3_TEST_SEED"        # an integer: the base of the seed every training test uses instead of its own
METRICS_VAR = "HW3_TEST_METRICS"  # a file: record_metric appends one JSON line per call
SEED_STRIDE = 1000                # under $HW3_TEST_SEED, tests with different fixed seeds stay this far apart


def training_seed(default: int) -> int:
    """The seed of a training test: ``default`` in graded runs; ``$HW3_TEST_SEED + 1000 * default``
    when that variable is set (flakiness runs).

    The offset keeps two tests that train the same way from different fixed seeds (the visible and
    hidden Siamese MNIST tests: seeds 0 and 1) on different seeds in a flakiness run too, instead of
    repeating one measurement; a stride of 1000 keeps their ranges apart for any number of seeds
    below 1000.
    """
    base = flakiness_seed()
    return default if base is None else base + SEED_STRIDE * default


def flakiness_seed():
    """``$HW3_TEST_SEED`` as an integer, or None when it is not set."""
    value = os.environ.get(SEED_VAR, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${SEED_VAR} must be an integer, got {value!r}") from None


def record_metric(name: str, value, threshold, higher_is_better: bool = True) -> None:
    """Note the metric a test checks against its threshold (a no-op unless ``$HW3_TEST_METRICS`` is set).

    name: what is measured, e.g. "test accuracy %"; value: the measurement (a number or a 0-d tensor);
    threshold: the bound the test asserts; higher_is_better: True when the test asserts
    ``value >= threshold``, False when it asserts ``value <= threshold``.
    """
    path = os.environ.get(METRICS_VAR)
    if not path:
        return
    value, threshold = float(value), float(threshold)
    margin = value - threshold if higher_is_better else threshold - value
    record = {
        "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
        "seed": flakiness_seed(),
        "name": name,
        "value": value,
        "threshold": threshold,
        "higher_is_better": bool(higher_is_better),
        "margin": margin,
    }
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def check_metric(name: str, value, threshold, message: str, higher_is_better: bool = True) -> None:
    """Record the metric a test checks (:func:`record_metric`), then assert that it meets its
    threshold -- ``value >= threshold``, or ``value <= threshold`` when not ``higher_is_better`` --
    failing with ``message``. Recording first keeps the measurement of a failing run too."""
    record_metric(name, value, threshold, higher_is_better)
    met = value >= threshold if higher_is_better else value <= threshold
    if not met:  # not ``assert``: python -O must not skip a graded check
        raise AssertionError(message)


def judge_code(problem: str):
    """The judge's own code for ``problem``'s training tests (the module ``autograder.judge.<problem>``:
    the prescribed network and the loading of trained weights into it), or None where there is no
    autograder package (a student's checkout: the tests then measure the student's own trained model
    in the worker, through ``WorkerModel``). The grader has it: it scores the prescribed network
    holding the student's weights. An autograder package without that module is an error, not None."""
    try:
        return importlib.import_module(f"autograder.judge.{problem}")
    except ModuleNotFoundError as error:
        if error.name == "autograder":
            return None
        raise


class WorkerModel:
    """A trained model that lives in the worker (``handle``, a RemoteHandle of ``module``, the
    RemoteModule), usable where the provided measurement code expects a local model: calling it or
    one of its methods (``encode``) runs that in the worker in evaluation mode without gradients
    (hw3.remote.probes.evaluated), on the inputs sent from here, and returns the outputs here.
    Attributes given as keywords (``latent_dim=2``) are answered here; eval() and train() do nothing
    (the probe switches the model to evaluation mode for each call)."""

    training = False

    def __init__(self, module, handle, **attributes):
        self._module, self._handle = module, handle
        self.__dict__.update(attributes)

    def _run(self, method: str, *args):
        return self._module.provided("hw3.remote.probes.evaluated", self._handle, method, *args)

    def __call__(self, *args):
        return self._run("__call__", *args)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self._run(name, *args)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def parameters(self):
        """One CPU tensor: the measurement code sends its inputs from the CPU (the worker moves them)."""
        import torch
        return iter([torch.zeros(())])


# --- tensor checks: one wording of each failure in every problem's tests ----------------------

FLOAT64_TOLERANCE = dict(rtol=1e-10, atol=1e-10)  # float64: exact up to summation order


def shape_str(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


def check_shape(tensor, shape, what: str) -> None:
    """Assert ``tensor`` is a tensor of shape ``shape``."""
    import torch
    assert isinstance(tensor, torch.Tensor), f"{what} should be a torch.Tensor, got {type(tensor).__name__}"
    assert tuple(tensor.shape) == tuple(shape), f"{what} should have shape {tuple(shape)}, got {tuple(tensor.shape)}"


def check_tensor(name: str, got, expected, **tolerance) -> None:
    """Assert ``got`` is a tensor of ``expected``'s shape and dtype, close to it (float64 tolerance
    unless ``rtol``/``atol`` are given)."""
    import torch
    assert isinstance(got, torch.Tensor), f"{name} should be a torch.Tensor, got {type(got).__name__}"
    assert got.shape == expected.shape, (f"{name} should have shape {shape_str(expected.shape)}, "
                                         f"got {shape_str(got.shape)}")
    assert got.dtype == expected.dtype, f"{name} should have dtype {expected.dtype}, got {got.dtype}"
    assert torch.allclose(got, expected, **(tolerance or FLOAT64_TOLERANCE)), (
        f"{name} differs from the expected values: largest difference {(got - expected).abs().max().item():.3g}")


def check_gradients(what: str, result: dict, expected, expected_grads) -> None:
    """A worker's ``backward`` result (``output``, ``input_grads`` of x, weight, bias) against the
    expected output and gradients."""
    output, grads = result.get("output"), list(result.get("input_grads") or [])
    check_tensor(what, output, expected.detach())
    assert any(g is not None for g in grads), (
        f"{what}'s output should be differentiable: build it from x, weight and bias with torch operations "
        f"(no .detach(), .numpy(), .item() or torch.no_grad())")
    for name, grad, expected_grad in zip(("x", "weight", "bias"), grads + [None] * 3, expected_grads):
        assert grad is not None, f"{what}'s output does not depend on {name} (its gradient is None)"
        check_tensor(f"the gradient of {what} with respect to {name}", grad, expected_grad)
