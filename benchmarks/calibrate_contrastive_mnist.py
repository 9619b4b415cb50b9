"""Calibrate the MNIST convergence test of Problem 2 (tests 2.2.1 and 2.2.2: tests/test_contrastive.py and
tests/hidden/test_contrastive_hidden.py).

Trains MnistEmbeddingNet with an implementation's ContrastiveLoss under the test's fixed budget for
several seeds and prints, per seed, the training time and the metrics the test checks (kNN accuracy
of test embeddings against training embeddings, mean similar / dissimilar test-pair distances).

    .venv/bin/python benchmarks/calibrate_contrastive_mnist.py --impl solution --seeds 0 1 2 3 4 5 6 7
    .venv/bin/python benchmarks/calibrate_contrastive_mnist.py --iterations 600 --batch-size 128 ...

Timings depend on the machine's load: they are reported, never tested.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from hw3 import impl  # noqa: E402
from hw3.contrastive_experiment import mnist_convergence  # noqa: E402
from hw3.data import load_mnist  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    contrastive = impl.load("contrastive", args.impl)
    train, test = load_mnist(train=True), load_mnist(train=False)
    print(f"impl {args.impl}, {args.iterations} iterations x {args.batch_size} pairs, lr {args.lr}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}")
    print("| seed | train s | kNN acc | mean D similar | mean D dissimilar | final loss |")
    print("|---|---|---|---|---|---|")
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        r = mnist_convergence(contrastive, seed, args.iterations, args.batch_size, args.lr, train=train, test=test,
                              device=torch.device("cpu"))
        rows.append(r)
        print(f"| {seed} | {r['seconds']:.1f} (total {time.perf_counter() - start:.1f}) | {r['knn']:.4f} | "
              f"{r['similar']:.3f} | {r['dissimilar']:.3f} | {r['final_loss']:.4f} |", flush=True)
    knn = [r["knn"] for r in rows]
    ratio = [r["similar"] / r["dissimilar"] for r in rows]
    print(f"kNN: min {min(knn):.4f} mean {statistics.mean(knn):.4f} max {max(knn):.4f}; "
          f"similar/dissimilar distance ratio: max {max(ratio):.3f}; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
