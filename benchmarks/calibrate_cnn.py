"""Calibrate the CNN convergence tests: accuracy of the reference ConvNet after a fixed training budget.

    .venv/bin/python benchmarks/calibrate_cnn.py                       # test 1.4.1's budget, seeds 0-4
    .venv/bin/python benchmarks/calibrate_cnn.py --seeds 0 1 2 3 4 5 6 7 --kernel-size 7   # hidden test 1.4.2

The defaults are the training tests' budget: 4,000 training images, batches of 32, Adam 2e-3,
tested on the first 2,000 test images.

For each seed it trains ``ConvNet(pooling, kernel_size)`` from the implementation folder (default
solution/) with the provided loop (hw3.cnn_experiment.train_convnet) on the first --train-samples
images of a shuffled pass through MNIST's training set, then tests it on the first --test-samples
test images -- exactly what tests/test_cnn.py and tests/hidden/test_cnn_hidden.py do -- and prints
each accuracy, the minimum, mean and standard deviation, and the training time per seed: wall
clock (inflated when the machine is shared) and process CPU time (divided by the thread count, an
estimate of the wall time on idle cores). The tests' thresholds are the minimum minus a margin;
the numbers are recorded in the tests' docstrings and in benchmarks/RESULTS-cnn.md.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repo's hw3

import torch

from hw3 import impl
from hw3.cnn_experiment import evaluate, train_convnet
from hw3.data import load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--pooling", default="max", choices=("avg", "max"))
    parser.add_argument("--kernel-size", type=int, default=5)
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--test-samples", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, as in the tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cnn = impl.load("cnn", args.impl)
    train_set = load_mnist(train=True)
    test_set = tuple(t[:args.test_samples] for t in load_mnist(train=False))
    accuracies, seconds, cpu_seconds = [], [], []
    print(f"ConvNet({args.pooling!r}, {args.kernel_size}): {args.train_samples} training images, batch "
          f"{args.batch_size}, Adam lr {args.lr}, tested on {args.test_samples} images")
    for seed in args.seeds:
        start, cpu_start = time.perf_counter(), time.process_time()
        model, _ = train_convnet(cnn, args.pooling, args.kernel_size, *train_set, train_samples=args.train_samples,
                                 batch_size=args.batch_size, lr=args.lr, seed=seed, device=torch.device("cpu"))
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        accuracies.append(evaluate(model, *test_set, device=torch.device("cpu")))
        print(f"  seed {seed}: {accuracies[-1]:.2f} %  (trained in {seconds[-1]:.1f} s wall, "
              f"{cpu_seconds[-1]:.1f} s CPU)", flush=True)
    print(f"min {min(accuracies):.2f}  mean {statistics.mean(accuracies):.2f}  "
          f"std {statistics.pstdev(accuracies):.2f}  max {max(accuracies):.2f}  "
          f"| training time per seed: mean {statistics.mean(seconds):.1f} s wall, max {max(seconds):.1f} s; "
          f"CPU mean {statistics.mean(cpu_seconds):.1f} s (/{args.threads} threads = "
          f"{statistics.mean(cpu_seconds) / args.threads:.1f} s on idle cores)")


if __name__ == "__main__":
    main()
