"""``python -m hw3 cnn``: Problem 1 -- train ConvNet on MNIST and fill the pooling x kernel-size table.

    python -m hw3 cnn --impl starter                                   # the table: {avg,max} x {5,7}
    python -m hw3 cnn --impl starter --pooling max --kernel-size 5     # one cell
    python -m hw3 cnn --impl starter --quick                           # a few minutes on a laptop CPU

Each cell trains a fresh ``ConvNet(pooling, kernel_size)`` from the student's cnn.py with Adam
(learning rate 5e-3, batches of 64) for one epoch of the 60,000 MNIST training images (full mode)
and reports its accuracy on the 10,000 test images. ``--quick`` trains on 6,000 images (batches of
32, learning rate 2e-3, as the training tests do) and tests on 2,000 instead.

Outputs, in --out (default runs/cnn):
    accuracy.md, accuracy.csv   the test-accuracy table (pooling x kernel size)
    loss_curves.png             training loss of every cell against images seen (running mean)
    accuracy_curves.png         training-batch accuracy of every cell (running mean)
    summary.json                every deliverable above, the settings and the accuracies

Below the command are the probes the graded tests run in the worker beside the student's cnn.py;
they live here because the tests name them so (``cnn.provided("hw3.cnn_experiment.<name>")``), and
the guards they run the student's code under are hw3/cnn_guards.py.
"""
import inspect
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw3 import REPO_ROOT, impl
from hw3.loaders import load_mnist
from hw3.datasets import DatasetError
from hw3.cnn_guards import OperatorWatch, time_limit, torch_convolutions_disabled
from hw3.device import default_device
from hw3.experiment import add_budget_arguments, add_common_arguments, chosen_budget, fail, run_settings
from hw3.summary import Deliverable, write_summary
from hw3.training import batches, progress, seed_everything

POOLINGS = ("avg", "max")
KERNEL_SIZES = (5, 7)
# Full mode reproduces the writeup's table (one epoch per cell); quick mode is the few-minute CPU
# budget, with the training tests' faster settings (smaller batches, larger learning rate).
# lr 5e-3, not Adam's usual 1e-3: average pooling learns slowly (its pooled features are small), and
# one epoch at 1e-3 leaves avg 5x5 at 93.21 %, below the original writeup's 93.5 %; at 3e-3 95.66 %.
# At 5e-3 every cell reaches 96.4-98.8 % over seeds 0-2.
FULL = {"train_samples": 60_000, "test_samples": 10_000, "batch_size": 64, "lr": 5e-3}
QUICK = {"train_samples": 6_000, "test_samples": 2_000, "batch_size": 32, "lr": 2e-3}
SMOOTHING = 50  # batches in the running mean of the learning curves
DELIVERABLES = (  # the writeup's, by output id (hw3/summary.py)
    Deliverable("Test accuracy for each pooling and kernel size", ("accuracy",)),
)


def train_convnet(cnn, pooling, kernel_size, images, labels, train_samples, batch_size=FULL["batch_size"],
                  lr=FULL["lr"], seed=0, device=None, desc=None):
    """Train a fresh ``cnn.ConvNet(pooling, kernel_size)`` with Adam on the first ``train_samples``
    images of a shuffled pass through (images, labels) (further passes if it exceeds the data).

    Returns ``(model, history)``; history holds per batch the images seen so far ("samples"), the
    training loss ("loss") and the batch accuracy in % ("accuracy").
    """
    device = device or default_device()
    generator = seed_everything(seed)  # the same seed gives the same initial weights and data order
    model = cnn.ConvNet(pooling=pooling, kernel_size=kernel_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    images, labels = images.to(device), labels.to(device)
    history = {"samples": [], "loss": [], "accuracy": []}
    seen = 0
    model.train()
    with progress(total=train_samples, desc=desc, unit="img", leave=False) as bar:
        while seen < train_samples:
            for x, y in batches(images, labels, batch_size=batch_size, generator=generator):
                x, y = x[:train_samples - seen], y[:train_samples - seen]
                scores = model(x)
                loss = F.cross_entropy(scores, y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

                seen += len(y)
                history["samples"].append(seen)
                history["loss"].append(loss.item())
                history["accuracy"].append(100.0 * (scores.argmax(1) == y).float().mean().item())
                bar.update(len(y))
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if seen >= train_samples:
                    break
    return model, history


@torch.no_grad()
def evaluate(model, images, labels, batch_size=1000, device=None) -> float:
    """Accuracy in % of ``model`` on (images, labels)."""
    device = device or default_device()
    model.eval()
    correct = 0
    for x, y in batches(images, labels, batch_size=batch_size, shuffle=False):
        correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    return 100.0 * correct / len(labels)


def run_cell(cnn, pooling, kernel_size, train_set, test_set, train_samples, batch_size=FULL["batch_size"],
             lr=FULL["lr"], seed=0, device=None, desc=None) -> dict:
    """Train and test one cell of the table; returns its accuracy, history, parameters and seconds."""
    start = time.perf_counter()
    model, history = train_convnet(cnn, pooling, kernel_size, *train_set, train_samples=train_samples,
                                   batch_size=batch_size, lr=lr, seed=seed, device=device, desc=desc)
    train_seconds = time.perf_counter() - start
    accuracy = evaluate(model, *test_set, device=device)
    return {"pooling": pooling, "kernel_size": kernel_size, "test_accuracy": accuracy,
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": train_seconds, "seconds": time.perf_counter() - start, "history": history}


def running_mean(values, window=SMOOTHING):
    """The mean of the last ``window`` values at every position (a shorter window at the start)."""
    cumulative = torch.tensor([0.0] + list(values), dtype=torch.float64).cumsum(0)
    ends = torch.arange(1, len(values) + 1)
    starts = (ends - window).clamp(min=0)
    return ((cumulative[ends] - cumulative[starts]) / (ends - starts)).tolist()


def cell_name(pooling, kernel_size) -> str:
    return f"{pooling}, {kernel_size}x{kernel_size}"


def write_outputs(cells, out: Path, settings: dict) -> Path:
    """The table, the learning curves and summary.json; returns the summary's path."""
    from hw3.plots import save_curves, write_table  # matplotlib: imported where it is used
    header = ["Pooling", "Kernel size", "Test accuracy (%)"]
    rows = [[{"avg": "Average", "max": "Max"}[c["pooling"]], c["kernel_size"], f"{c['test_accuracy']:.2f}"]
            for c in cells]
    _, table_csv = write_table(header, rows, out / "accuracy")
    outputs = {"accuracy": (table_csv, "Test accuracy (%) for each pooling and kernel size")}
    for key, ylabel in (("loss", "training loss"), ("accuracy", "training-batch accuracy (%)")):
        curves = {cell_name(c["pooling"], c["kernel_size"]): running_mean(c["history"][key]) for c in cells}
        path = save_curves(curves, out / f"{key}_curves.png", xlabel="training images seen", ylabel=ylabel,
                           title=f"ConvNet on MNIST: {ylabel} (running mean of {SMOOTHING} batches)",
                           x=cells[0]["history"]["samples"])
        outputs[f"{key}_curves"] = (path, f"Learning curves: {ylabel} of each pooling and kernel size")
    metrics = {
        "test_accuracy": {f"{c['pooling']}_{c['kernel_size']}": round(c["test_accuracy"], 2) for c in cells},
        "parameters": {f"k{c['kernel_size']}": c["parameters"] for c in cells},
        "train_seconds": {f"{c['pooling']}_{c['kernel_size']}": round(c["train_seconds"], 1) for c in cells},
    }
    return write_summary(out, "cnn", settings, metrics, outputs)


def configure(parser):
    add_common_arguments(parser, "cnn", f"a few minutes on a CPU: {QUICK['train_samples']:,} training and "
                                        f"{QUICK['test_samples']:,} test images per cell",
                         out=REPO_ROOT / "runs" / "cnn", seed_help="random seed of every cell (default: 0)")
    parser.add_argument("--pooling", nargs="+", choices=POOLINGS, default=list(POOLINGS),
                        help="pooling modes of the table (default: avg max)")
    parser.add_argument("--kernel-size", nargs="+", type=int, default=list(KERNEL_SIZES), metavar="K",
                        help="kernel sizes of the table (default: 5 7)")
    add_budget_arguments(parser, FULL, QUICK, {"train_samples": (int, "training images per cell", "one epoch"),
                                               "test_samples": (int, "test images", "all of them"),
                                               "batch_size": (int, "batch size"),
                                               "lr": (float, "Adam learning rate")})


def run(args) -> int:
    budget = chosen_budget(args, FULL, QUICK)
    train_samples, test_samples, batch_size, lr = (
        budget[key] for key in ("train_samples", "test_samples", "batch_size", "lr"))
    bad = [k for k in args.kernel_size if not 1 <= k <= 9]
    if bad:
        return fail(f"--kernel-size {bad[0]}: must be between 1 and 9 (two k x k convolutions and a 2x2 "
                     f"max-pool must fit in a 28x28 image)")
    for name, value in (("--train-samples", train_samples), ("--test-samples", test_samples),
                        ("--batch-size", batch_size)):
        if value <= 0:
            return fail(f"{name} must be positive, got {value}")
    if test_samples > FULL["test_samples"]:
        return fail(f"--test-samples {test_samples}: MNIST has {FULL['test_samples']:,} test images")
    if not lr > 0:
        return fail(f"--lr must be positive, got {lr}")
    try:
        cnn = impl.load("cnn", args.impl)
        train_set = load_mnist(train=True)
        test_set = tuple(t[:test_samples] for t in load_mnist(train=False))
    except (impl.ImplementationError, DatasetError) as e:
        return fail(str(e).splitlines()[0] if isinstance(e, DatasetError) else str(e))

    device = default_device()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = run_settings(args, train_samples=train_samples, test_samples=test_samples, batch_size=batch_size,
                            lr=lr, optimizer="Adam")
    print(f"ConvNet on MNIST ({device}): {train_samples:,} training images per cell (batches of {batch_size}, "
          f"Adam {lr:g}), tested on {test_samples:,}; cnn.py from {settings['impl']}")
    cells = []
    grid = [(p, k) for k in args.kernel_size for p in args.pooling]
    for pooling, kernel_size in progress(grid, desc="table", unit="cell"):
        try:
            cell = run_cell(cnn, pooling, kernel_size, train_set, test_set, train_samples,
                            batch_size=batch_size, lr=lr, seed=args.seed, device=device,
                            desc=cell_name(pooling, kernel_size))
        except NotImplementedError as e:
            return fail(f"cnn.py: {e}")
        cells.append(cell)
        print(f"  {cell_name(pooling, kernel_size):>10}: test accuracy {cell['test_accuracy']:.2f} % "
              f"({cell['parameters']:,} parameters, trained in {cell['train_seconds']:.0f} s)")
    write_outputs(cells, out, settings)
    print(f"wrote {out / 'accuracy.md'}, {out / 'accuracy.csv'}, {out / 'loss_curves.png'}, "
          f"{out / 'accuracy_curves.png'}, {out / 'summary.json'}")
    return 0


# ---------------------------------------------------------------------------------------------
# Probes: provided code the tests run in the worker, beside the student's cnn.py
# (cnn.provided("hw3.cnn_experiment.<name>", ...)). Each returns plain data saying what happened,
# never a verdict; the tests decide, and check what they can against their own computations.
# The guards they run the student's code under are in hw3/cnn_guards.py.
# ---------------------------------------------------------------------------------------------


def plain_tensor(value):
    """A detached copy of a tensor (None for anything else): what a probe may return."""
    return value.detach().clone() if type(value) in (torch.Tensor, nn.Parameter) else None


def type_name(value) -> str:
    return type(value).__name__


def returned(value) -> dict:
    """What a call returned, as data: its type's name and, for a tensor, shape, dtype and requires_grad."""
    if not isinstance(value, torch.Tensor):
        return {"type": type_name(value), "tensor": False}
    return {"type": type_name(value), "tensor": True, "shape": list(value.shape), "dtype": str(value.dtype),
            "requires_grad": bool(value.requires_grad)}


def conv2d_without_torch_convolutions(cnn, x, weight, bias=None):
    """``cnn.conv2d(x, weight, bias)`` (each tensor requiring grad) with every PyTorch convolution
    switched off, then backward from the sum of its output if it is differentiable.

    What the student's code raises propagates (a ForbiddenCall among it). Returns {"returned": the
    output as data (``returned``), "refused": every refused convolution call, also those the code
    caught, "backward": whether backward ran}."""
    inputs = [t.requires_grad_() if isinstance(t, torch.Tensor) and t.is_floating_point() else t
              for t in (x, weight, bias)]
    with torch_convolutions_disabled() as watch:
        y = cnn.conv2d(*inputs)
        ran = isinstance(y, torch.Tensor) and y.requires_grad
        if ran:
            y.sum().backward()
    return {"returned": returned(y), "refused": list(watch.refused), "backward": ran}


def conv2d_operation_count(cnn, x, weight, bias, budget, seconds, budget_message, time_message):
    """``cnn.conv2d(x, weight, bias)`` counted by an OperatorWatch that stops at ``budget`` tensor
    operations (OperationBudgetExceeded) and a time limit of ``seconds`` (TimeLimitExceeded); what
    the code raises propagates. Returns {"operations", "exceeded", "expired", "seconds", "returned"}."""
    start = time.perf_counter()
    with time_limit(seconds, time_message) as clock, OperatorWatch(budget, budget_message) as watch:
        y = cnn.conv2d(x, weight, bias)
    return {"operations": watch.count, "exceeded": watch.exceeded, "expired": clock["expired"],
            "seconds": time.perf_counter() - start, "returned": returned(y)}


def argument(function, args, kwargs, index):
    """The value a call ``function(*args, **kwargs)`` passes for its parameter number ``index`` (None if none)."""
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return args[index] if index < len(args) else None
    bound.apply_defaults()
    values = list(bound.arguments.values())
    return values[index] if index < len(values) else None


def reference_conv2d(x, weight, bias=None):
    return F.conv2d(x, weight, bias)


def reference_global_pool(y, mode):
    # Through torch's adaptive pooling, so this public reference does not spell out the solution.
    if mode == "avg":
        return F.adaptive_avg_pool2d(y, 1).flatten(1)
    if mode == "max":
        return F.adaptive_max_pool2d(y, 1).flatten(1)
    raise ValueError(f"ConvNet passed global_pool the mode {mode!r}; expected 'avg' or 'max'")


def plain_mode(mode):
    """A pooling mode as data: a str, int or None as it is, anything else as "<its type>"."""
    return mode if type(mode) in (str, int, type(None)) else f"<{type_name(mode)}>"


def convnet_with_reference_layers(cnn, kwargs=None, inputs=None):
    """``cnn.ConvNet(**kwargs)`` built and (if ``inputs``) run on ``inputs`` with ``cnn.conv2d`` and
    ``cnn.global_pool`` replaced by PyTorch's convolution and pooling, each call recorded: so ConvNet
    is tested alone (conv2d and global_pool have their own tests).

    Returns {"model": the model (a handle on the judge's side) or None if it is no nn.Module,
    "model_type", "scores": the output (a tensor, else None), "scores_type", "conv2d": [{"x",
    "weight", "bias", "output"}] and "global_pool": [{"input", "mode", "output"}], every tensor a
    detached copy (None where the call passed something else)."""
    calls = {"conv2d": [], "global_pool": []}
    conv2d, global_pool = cnn.conv2d, cnn.global_pool   # their signatures name the arguments

    def conv2d_spy(*args, **kw):
        x, weight, bias = (argument(conv2d, args, kw, i) for i in range(3))
        y = reference_conv2d(x, weight, bias)
        calls["conv2d"].append({"x": plain_tensor(x), "weight": plain_tensor(weight), "bias": plain_tensor(bias),
                                "output": plain_tensor(y)})
        return y

    def global_pool_spy(*args, **kw):
        y, mode = (argument(global_pool, args, kw, i) for i in range(2))
        pooled = reference_global_pool(y, mode)
        calls["global_pool"].append({"input": plain_tensor(y), "mode": plain_mode(mode),
                                     "output": plain_tensor(pooled)})
        return pooled

    cnn.conv2d, cnn.global_pool = conv2d_spy, global_pool_spy
    try:
        model = cnn.ConvNet(**(kwargs or {}))
        scores = model(*inputs) if inputs is not None else None
    finally:
        cnn.conv2d, cnn.global_pool = conv2d, global_pool
    return {"model": model if isinstance(model, nn.Module) else None, "model_type": type_name(model),
            "scores": plain_tensor(scores), "scores_type": type_name(scores), **calls}


def train_convnet_on_mnist(cnn, pooling, kernel_size, train_samples, batch_size=FULL["batch_size"], lr=FULL["lr"],
                           seed=0, device=None):
    """``train_convnet`` on the MNIST training set (loaded here, in the worker); returns the trained
    weights and the per-batch losses as data: {"parameters": [[name, tensor], ...] in the model's
    order, "loss": [...], "model": the trained model (a handle on the judge's side)}. The tests
    measure the accuracy themselves (``measured_accuracy``)."""
    images, labels = load_mnist(train=True)
    model, history = train_convnet(cnn, pooling, kernel_size, images, labels, train_samples=train_samples,
                                   batch_size=batch_size, lr=lr, seed=seed,
                                   device=torch.device(device) if device else None)
    return {"parameters": [[name, p.detach().cpu().clone()] for name, p in model.named_parameters()],
            "loss": [float(v) for v in history["loss"]], "model": model}


def measured_accuracy(cnn, trained, pooling, kernel_size, images, labels, device=None) -> float:
    """Test accuracy in % on ``images``, ``labels`` (which only the judge holds) of the ConvNet
    trained in the worker (``trained``: what ``train_convnet_on_mnist`` returned there).

    The grader scores the prescribed network holding the student's weights: the judge's own
    ConvNet (hw3.testing.judge_code("cnn")), loaded with the trained tensors. Without the judge's
    code (a student's machine) the student's own trained model scores the same images in the
    worker (hw3.testing.WorkerModel), which gives the same accuracy for a ConvNet built as the
    handout prescribes."""
    from hw3 import testing
    judge = testing.judge_code("cnn")
    if judge is not None:
        device = device or default_device()
        return evaluate(judge.rebuild(trained["parameters"], pooling, kernel_size, device=device), images, labels,
                        device=device)
    return evaluate(testing.WorkerModel(cnn, trained["model"]), images, labels, device=torch.device("cpu"))


def convnet_convergence(cnn, test_set, pooling, kernel_size, seed, test_samples=None, device=None, **budget):
    """What the ConvNet training tests check (visible 1.4.1, hidden 1.4.2), after training under a
    fixed budget (``train_samples``, ``batch_size``, ``lr``) from one seed: the worker trains
    ``ConvNet(pooling, kernel_size)`` (``train_convnet_on_mnist``), this side measures the test
    accuracy of the handout's network holding the trained weights (``measured_accuracy``) on the
    first ``test_samples`` of ``test_set`` (images, labels). Returns (accuracy %, training losses)."""
    trained = cnn.provided("hw3.cnn_experiment.train_convnet_on_mnist", pooling, kernel_size, seed=seed,
                           device=None if device is None else str(device), **budget)
    images, labels = test_set if test_samples is None else (t[:test_samples] for t in test_set)
    accuracy = measured_accuracy(cnn, trained, pooling, kernel_size, images, labels, device=device)
    return accuracy, list(trained["loss"]) or [float("nan")]


def conv2d_on_transposed_input(cnn, x, weight, bias, grad_output, dims=(2, 3)):
    """``cnn.conv2d`` on ``x.transpose(*dims)`` -- a non-contiguous input, which cannot cross the
    boundary as such -- then backward from ``grad_output``. Returns {"contiguous": whether that input
    was contiguous (False), "output" (detached if a tensor; None otherwise), "returned": as data,
    "input_grads": the gradients for (the transposed x, weight, bias), None where none reached}."""
    leaves = [x.transpose(*dims).detach().requires_grad_(), weight.detach().requires_grad_(),
              bias.detach().requires_grad_() if isinstance(bias, torch.Tensor) else bias]
    with torch.enable_grad():
        y = cnn.conv2d(*leaves)
        if isinstance(y, torch.Tensor) and y.requires_grad and y.shape == grad_output.shape:
            y.backward(grad_output)
    return {"contiguous": leaves[0].is_contiguous(), "output": plain_tensor(y), "returned": returned(y),
            "input_grads": [t.grad if isinstance(t, torch.Tensor) else None for t in leaves]}
