"""Calibrate the LFW extra-credit test of Problem 2 and measure the full LFW budget.

Trains an implementation's FaceEmbeddingNet with its ContrastiveLoss on the peopleDevTrain faces
for a budget of iterations, for several seeds, and prints the pairsDevTest verification accuracy
(threshold chosen on pairsDevTrain), ROC AUC and the training time; ``--checkpoints`` also
evaluates part-way (the same run, so one run gives the whole curve of accuracy against budget).

    .venv/bin/python benchmarks/calibrate_contrastive_lfw.py --impl solution --iterations 600 --seeds 0 1 2 3 4
    .venv/bin/python benchmarks/calibrate_contrastive_lfw.py --iterations 3000 --checkpoints 600 1500 --seeds 0

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
from hw3 import contrastive_experiment as ce  # noqa: E402
from hw3.siamese import SiameseNetwork, augment_faces, train_siamese  # noqa: E402
from hw3.training import seed_everything  # noqa: E402


def run_seed(contrastive, seed, iterations, batch_size, lr, checkpoints):
    """Like ce.train_lfw, but evaluated at each checkpoint; returns [(iterations, seconds, metrics)]."""
    generator = seed_everything(seed)
    images, labels, _, _ = ce.load_lfw_people_split("peopleDevTrain.txt")
    net = contrastive.FaceEmbeddingNet(embedding_dim=ce.LFW_EMBEDDING_DIM)
    criterion = contrastive.ContrastiveLoss(margin=ce.MARGIN)
    start = time.perf_counter()
    results = []
    model = SiameseNetwork(net)
    done = 0
    state = None
    for stop in sorted(set(checkpoints) | {iterations}):
        losses, state = train_segment(model, images, labels, criterion, iterations, batch_size, lr, generator,
                                      done, stop, state)
        done = stop
        seconds = time.perf_counter() - start
        results.append((stop, seconds, ce.evaluate_lfw(net), sum(losses[-50:]) / max(1, len(losses[-50:]))))
        start = time.perf_counter() - seconds  # evaluation time not counted
    return results


def train_segment(model, images, labels, criterion, total, batch_size, lr, generator, begin, end, state):
    """train_siamese's loop for iterations [begin, end) of a ``total``-iteration cosine schedule."""
    from hw3.siamese import PairSampler, as_float

    if state is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        state = (optimizer, schedule, PairSampler(labels))
    optimizer, schedule, sampler = state
    model.train()
    losses = []
    for _ in range(begin, end):
        index1, index2, label = sampler(batch_size, generator)
        x1, x2 = augment_faces(as_float(images[index1]), generator), augment_faces(as_float(images[index2]), generator)
        out1, out2 = model(x1, x2)
        loss = criterion(out1, out2, label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return losses, state


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iterations", type=int, default=600)
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    contrastive = impl.load("contrastive", args.impl)
    print(f"impl {args.impl}, {args.iterations} iterations x {args.batch_size} pairs, lr {args.lr}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| seed | iterations | train s | pairsDevTest acc | ROC AUC | best-threshold acc | pairsDevTrain acc | loss |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    final = []
    for seed in args.seeds:
        for stop, seconds, m, loss in run_seed(contrastive, seed, args.iterations, args.batch_size, args.lr,
                                               [c for c in args.checkpoints if c < args.iterations]):
            print(f"| {seed} | {stop} | {seconds:.0f} | {m['accuracy']:.3f} | {m['roc_auc']:.3f} | "
                  f"{m['best_test_accuracy']:.3f} | {m['train_pairs_accuracy']:.3f} | {loss:.4f} |", flush=True)
        final.append(m)
    acc = [m["accuracy"] for m in final]
    print(f"final accuracy: min {min(acc):.3f} mean {statistics.mean(acc):.3f} max {max(acc):.3f}; "
          f"load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
