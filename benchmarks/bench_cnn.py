"""Benchmark Problem 1 on this machine: the accuracy table with its time per cell, and the time of a
training epoch with the solution's conv2d against the same network on PyTorch's own convolution.

    .venv/bin/python -m benchmarks.bench_cnn table            # python -m hw3 cnn, full budget (one epoch per cell)
    .venv/bin/python -m benchmarks.bench_cnn epoch            # conv2d vs torch conv, time per training epoch
    .venv/bin/python -m benchmarks.bench_cnn epoch --batches 150 --rounds 3   # a cheaper estimate

``table`` runs the experiment's full mode (``hw3.cnn_experiment``: 60,000 training images per
cell, batches of 64, Adam 5e-3 (FULL), all 10,000 test images) and prints each cell's test accuracy and
its training time (wall clock and process CPU time). Goal: every cell at or above 96 %.

``epoch`` trains ConvNet(pooling, k) twice on the same batches and initial weights: once as it is
(the implementation's conv2d) and once with ``conv2d`` replaced by ``torch.nn.functional.conv2d``
(the same network on PyTorch's convolution). The two runs alternate in rounds of --batches
training steps each, so that a change in the machine's load hits both alike; the time per epoch
is the median time per step times 938 steps (60,000 / 64). With --full-epoch it times one whole
epoch of each instead. Goal: the solution's conv2d within 3x of PyTorch's.

Wall-clock times on a shared machine are inflated by the other processes; the process CPU time
(divided by the number of threads) is a rough estimate of the time on idle cores.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from hw3 import impl
from hw3.cnn_experiment import FULL, KERNEL_SIZES, POOLINGS, cell_name, run_cell, write_outputs
from hw3.loaders import load_mnist
from hw3.training import batches, seed_everything

STEPS_PER_EPOCH = -(-60_000 // 64)  # 938


def bench_table(args):
    cnn = impl.load("cnn", args.impl)
    train_set, test_set = load_mnist(train=True), load_mnist(train=False)
    device = torch.device(args.device) if args.device else None
    cells = []
    print(f"table: {FULL['train_samples']:,} training images per cell, batches of {FULL['batch_size']}, "
          f"Adam {FULL['lr']:g}, seed {args.seed}, "
          f"{torch.get_num_threads()} threads")
    for k in args.kernel_size:
        for pooling in args.pooling:
            cpu = time.process_time()
            cell = run_cell(cnn, pooling, k, train_set, test_set, FULL["train_samples"], seed=args.seed,
                            device=device, desc=cell_name(pooling, k))
            cell["cpu_seconds"] = time.process_time() - cpu
            cells.append(cell)
            print(f"  {cell_name(pooling, k):>10}: {cell['test_accuracy']:.2f} %  train {cell['train_seconds']:.0f} s "
                  f"wall, {cell['cpu_seconds']:.0f} s CPU (total with testing {cell['seconds']:.0f} s)", flush=True)
    if args.out:
        write_outputs(cells, Path(args.out), {"impl": str(impl.impl_dir(args.impl)), "seed": args.seed,
                                              "benchmark": "bench_cnn.py table"})
        print(f"wrote {args.out}")
    return cells


def time_steps(model, optimizer, data, steps):
    """Wall and CPU seconds of ``steps`` training steps on the (x, y) batches in ``data``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in data[:steps]:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_epoch(args):
    cnn = impl.load("cnn", args.impl)
    images, labels = load_mnist(train=True)
    generator = seed_everything(args.seed)
    data = list(batches(images, labels, batch_size=64, generator=generator))
    own_conv2d = cnn.conv2d
    results = {}
    for k in args.kernel_size:
        for pooling in args.pooling:
            models = {}
            for name in ("solution conv2d", "torch conv2d"):
                torch.manual_seed(args.seed)
                model = cnn.ConvNet(pooling=pooling, kernel_size=k)
                models[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
            times = {name: [] for name in models}
            steps = len(data) if args.full_epoch else args.batches
            rounds = 1 if args.full_epoch else args.rounds
            for r in range(rounds):
                for name, (model, optimizer) in models.items():
                    cnn.conv2d = own_conv2d if name == "solution conv2d" else (
                        lambda x, weight, bias=None: F.conv2d(x, weight, bias))
                    try:
                        time_steps(model, optimizer, data[:3], 3)  # warm-up
                        offset = (r * steps) % max(1, len(data) - steps)
                        wall, cpu = time_steps(model, optimizer, data[offset:], steps)
                    finally:
                        cnn.conv2d = own_conv2d
                    times[name].append((wall / steps, cpu / steps))
            line = {}
            for name, values in times.items():
                wall = statistics.median(v[0] for v in values) * STEPS_PER_EPOCH
                cpu = statistics.median(v[1] for v in values) * STEPS_PER_EPOCH
                line[name] = {"epoch_wall_s": round(wall, 1), "epoch_cpu_s": round(cpu, 1)}
            ratio = line["solution conv2d"]["epoch_wall_s"] / line["torch conv2d"]["epoch_wall_s"]
            ratio_cpu = line["solution conv2d"]["epoch_cpu_s"] / line["torch conv2d"]["epoch_cpu_s"]
            line["ratio_wall"], line["ratio_cpu"] = round(ratio, 2), round(ratio_cpu, 2)
            results[cell_name(pooling, k)] = line
            print(f"  {cell_name(pooling, k):>10}: epoch with solution conv2d {line['solution conv2d']['epoch_wall_s']:.0f} s "
                  f"wall ({line['solution conv2d']['epoch_cpu_s']:.0f} s CPU), with torch conv2d "
                  f"{line['torch conv2d']['epoch_wall_s']:.0f} s wall ({line['torch conv2d']['epoch_cpu_s']:.0f} s CPU): "
                  f"ratio {ratio:.2f} wall, {ratio_cpu:.2f} CPU", flush=True)
    print(json.dumps(results, indent=2))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cnn", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("table", "epoch"))
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pooling", nargs="+", choices=POOLINGS, default=list(POOLINGS))
    parser.add_argument("--kernel-size", nargs="+", type=int, default=list(KERNEL_SIZES))
    parser.add_argument("--device", default=None, help="(table) cpu or cuda; default: CUDA if available")
    parser.add_argument("--out", default=None, help="(table) also write the experiment's outputs here")
    parser.add_argument("--batches", type=int, default=100, help="(epoch) training steps per round (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="(epoch) rounds per implementation (default 3)")
    parser.add_argument("--full-epoch", action="store_true", help="(epoch) time one whole epoch of each")
    args = parser.parse_args(argv)
    bench_table(args) if args.what == "table" else bench_epoch(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
