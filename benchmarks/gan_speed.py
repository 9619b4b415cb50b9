"""Iterations per second of the provided DCGAN loop (hw3.gan_experiment.train_gan running
solution/gan.py) against a plain PyTorch loop of the same models, same batch size, same steps.

    .venv/bin/python -m benchmarks.gan_speed --batch-size 128 --iterations 20 --repeats 3 --threads 1

The plain loop is what one would write without the course's scaffolding: nn.Sequential models
written inline, F.binary_cross_entropy_with_logits, random real batches, no progress bar, no loss
history, no snapshots. Runs alternate (provided, plain, plain, provided, provided, plain, ...) so
that a change in the machine's load hits both; the table reports each run and the medians. Only
the training loop is timed (not loading MNIST or building the models), both in wall-clock
seconds and in the process's CPU seconds (which depend far less on the machine's load); each run
line also shows the 1-minute load average when it ended.
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from hw3 import gan_experiment, impl
from hw3.loaders import load_mnist


def plain_models(noise_dim=96):
    D = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, 5), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(1024, 1024), nn.LeakyReLU(0.01), nn.Linear(1024, 1))
    G = nn.Sequential(
        nn.Linear(noise_dim, 1024), nn.ReLU(), nn.BatchNorm1d(1024),
        nn.Linear(1024, 7 * 7 * 128), nn.ReLU(), nn.BatchNorm1d(7 * 7 * 128),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(), nn.BatchNorm2d(64),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh(), nn.Flatten())
    return D, G


def plain_loop(real, iterations, batch_size, seed):
    torch.manual_seed(seed)
    D, G = plain_models()
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch_size, 1), torch.zeros(batch_size, 1)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        x = real[torch.randint(len(real), (batch_size,))]
        opt_d.zero_grad()
        fake = G(torch.rand(batch_size, 96) * 2 - 1).detach()
        d_loss = (F.binary_cross_entropy_with_logits(D(x), ones)
                  + F.binary_cross_entropy_with_logits(D(fake), zeros))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(D(G(torch.rand(batch_size, 96) * 2 - 1)), ones)
        g_loss.backward()
        opt_g.step()
    return time.perf_counter() - start, time.process_time() - cpu_start


class Clock:
    """Stands in for the ``time`` module inside hw3.gan_experiment: train_gan reads
    time.perf_counter() just before its loop and just after it; this also notes the process's CPU
    time at those two moments."""

    def __init__(self):
        self.cpu = []

    def perf_counter(self):
        self.cpu.append(time.process_time())
        return time.perf_counter()


def provided_loop(gan, iterations, batch_size, seed):
    """(wall seconds, CPU seconds) of train_gan's loop, loading MNIST and building models excluded."""
    clock = Clock()
    gan_experiment.time = clock
    try:
        result = gan_experiment.train_gan(gan, iterations, batch_size, seed=seed, snapshot_at=(),
                                          grid_size=4, show_progress=True)
    finally:
        gan_experiment.time = time
    return result["seconds"], clock.cpu[-1] - clock.cpu[0]


def main():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gan_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gan = impl.load("gan", "solution")
    images, _ = load_mnist(train=True)
    real = images.view(len(images), -1) * 2 - 1
    # warm-up: first-call costs (torch.optim's lazy imports, allocator) hit neither measurement
    plain_loop(real, 2, args.batch_size, 0)
    gan_experiment.train_gan(gan, 2, args.batch_size, snapshot_at=(), grid_size=4, show_progress=False)
    provided, plain = [], []   # (wall it/s, CPU it/s) per run
    print(f"batch {args.batch_size}, {args.iterations} iterations per run, threads {torch.get_num_threads()}, "
          f"load average at start {os.getloadavg()[0]:.2f}")
    for r in range(args.repeats):
        loops = [(provided, lambda: provided_loop(gan, args.iterations, args.batch_size, r)),
                 (plain, lambda: plain_loop(real, args.iterations, args.batch_size, r))]
        for results, loop in loops if r % 2 == 0 else loops[::-1]:  # swap the order every other run
            wall, cpu = loop()
            results.append((args.iterations / wall, args.iterations / cpu))
        print(f"run {r}: provided {provided[-1][0]:.3f} it/s wall ({provided[-1][1]:.3f} per CPU-second), "
              f"plain {plain[-1][0]:.3f} it/s wall ({plain[-1][1]:.3f} per CPU-second), "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
    for i, unit in enumerate(("it/s wall", "it per CPU-second")):
        p, q = statistics.median(x[i] for x in provided), statistics.median(x[i] for x in plain)
        print(f"median {unit}: provided {p:.3f}, plain {q:.3f}, provided/plain = {p / q:.3f}")


if __name__ == "__main__":
    main()
