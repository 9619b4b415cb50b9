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
"""
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3 import REPO_ROOT, impl
from hw3.data import load_mnist
from hw3.datasets import DatasetError
from hw3.device import default_device
from hw3.plots import save_curves, write_table
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


def write_outputs(cells, out: Path, settings: dict) -> dict:
    """The table, the learning curves and summary.json; returns the summary."""
    header = ["Pooling", "Kernel size", "Test accuracy (%)"]
    rows = [[{"avg": "Average", "max": "Max"}[c["pooling"]], c["kernel_size"], f"{c['test_accuracy']:.2f}"]
            for c in cells]
    table_md, table_csv = write_table(header, rows, out / "accuracy")
    figures = {}
    for key, ylabel in (("loss", "training loss"), ("accuracy", "training-batch accuracy (%)")):
        curves = {cell_name(c["pooling"], c["kernel_size"]): running_mean(c["history"][key]) for c in cells}
        path = save_curves(curves, out / f"{key}_curves.png", xlabel="training images seen", ylabel=ylabel,
                           title=f"ConvNet on MNIST: {ylabel} (running mean of {SMOOTHING} batches)",
                           x=cells[0]["history"]["samples"])
        figures[f"{key}_curves"] = {"path": path.name,
                                    "caption": f"Learning curves: {ylabel} of each pooling and kernel size"}
    summary = {
        "problem": "cnn",
        "settings": settings,
        "tables": {"accuracy": {"path": table_md.name, "caption": "Test accuracy (%) for each pooling and "
                                                                  "kernel size"},
                   "accuracy_csv": table_csv.name},
        "figures": figures,
        "metrics": {
            "test_accuracy": {f"{c['pooling']}_{c['kernel_size']}": round(c["test_accuracy"], 2) for c in cells},
            "parameters": {f"k{c['kernel_size']}": c["parameters"] for c in cells},
            "train_seconds": {f"{c['pooling']}_{c['kernel_size']}": round(c["train_seconds"], 1) for c in cells},
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def configure(parser):
    parser.add_argument("--impl", metavar="FOLDER", default=None,
                        help=f"folder holding your cnn.py (default: ${impl.ENV_VAR}, else starter/)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=REPO_ROOT / "runs" / "cnn",
                        help="output folder (default: runs/cnn)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of every cell (default: 0)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a few minutes on a CPU: {QUICK['train_samples']:,} training and "
                             f"{QUICK['test_samples']:,} test images per cell")
    parser.add_argument("--pooling", nargs="+", choices=POOLINGS, default=list(POOLINGS),
                        help="pooling modes of the table (default: avg max)")
    parser.add_argument("--kernel-size", nargs="+", type=int, default=list(KERNEL_SIZES), metavar="K",
                        help="kernel sizes of the table (default: 5 7)")
    parser.add_argument("--train-samples", type=int, default=None, metavar="N",
                        help=f"training images per cell (default: {FULL['train_samples']:,}, one epoch; "
                             f"{QUICK['train_samples']:,} with --quick)")
    parser.add_argument("--test-samples", type=int, default=None, metavar="N",
                        help=f"test images (default: all {FULL['test_samples']:,}; "
                             f"{QUICK['test_samples']:,} with --quick)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help=f"(default: {FULL['batch_size']}; {QUICK['batch_size']} with --quick)")
    parser.add_argument("--lr", type=float, default=None,
                        help=f"Adam learning rate (default: {FULL['lr']:g}; {QUICK['lr']:g} with --quick)")


def error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def run(args) -> int:
    budget = QUICK if args.quick else FULL
    # A flag left out takes the mode's budget; one given (even 0) is kept, so the checks below see it.
    train_samples, test_samples, batch_size, lr = (
        budget[key] if getattr(args, key) is None else getattr(args, key)
        for key in ("train_samples", "test_samples", "batch_size", "lr"))
    bad = [k for k in args.kernel_size if not 1 <= k <= 9]
    if bad:
        return error(f"--kernel-size {bad[0]}: must be between 1 and 9 (two k x k convolutions and a 2x2 "
                     f"max-pool must fit in a 28x28 image)")
    for name, value in (("--train-samples", train_samples), ("--test-samples", test_samples),
                        ("--batch-size", batch_size)):
        if value <= 0:
            return error(f"{name} must be positive, got {value}")
    if test_samples > FULL["test_samples"]:
        return error(f"--test-samples {test_samples}: MNIST has {FULL['test_samples']:,} test images")
    if not lr > 0:
        return error(f"--lr must be positive, got {lr}")
    try:
        cnn = impl.load("cnn", args.impl)
        train_set = load_mnist(train=True)
        test_set = tuple(t[:test_samples] for t in load_mnist(train=False))
    except (impl.ImplementationError, DatasetError) as e:
        return error(str(e).splitlines()[0] if isinstance(e, DatasetError) else str(e))

    device = default_device()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"impl": str(impl.impl_dir(args.impl)), "quick": args.quick, "seed": args.seed,
                "train_samples": train_samples, "test_samples": test_samples, "batch_size": batch_size,
                "lr": lr, "optimizer": "Adam", "device": str(device)}
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
            return error(f"cnn.py: {e}")
        cells.append(cell)
        print(f"  {cell_name(pooling, kernel_size):>10}: test accuracy {cell['test_accuracy']:.2f} % "
              f"({cell['parameters']:,} parameters, trained in {cell['train_seconds']:.0f} s)")
    write_outputs(cells, out, settings)
    print(f"wrote {out / 'accuracy.md'}, {out / 'accuracy.csv'}, {out / 'loss_curves.png'}, "
          f"{out / 'accuracy_curves.png'}, {out / 'summary.json'}")
    return 0
