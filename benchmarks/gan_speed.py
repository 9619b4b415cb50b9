"""Iterations per second of the provided DCGAN loop (hw3.gan_experiment.train_gan running
solution/gan.py) against a plain PyTorch loop of the same models, same batch size, same steps.

    .venv/bin/python benchmarks/gan_speed.py --batch-size 32 --iterations 30 --repeats 3

The plain loop is what one would write without the course's scaffolding: nn.Sequential models
written inline, F.binary_cross_entropy_with_logits, random real batches, no progress bar, no loss
history, no snapshots. Runs alternate (provided, plain, provided, plain, ...) so that a change in
the machine's load hits both; the table reports each run and the medians. Only the training loop
is timed (not loading MNIST or building the models).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hw3 import gan_experiment, impl  # noqa: E402
from hw3.data import load_mnist  # noqa: E402


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
    start = time.perf_counter()
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
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gan = impl.load("gan", "solution")
    images, _ = load_mnist(train=True)
    real = images.view(len(images), -1) * 2 - 1
    # warm-up: first-call costs (torch.optim's lazy imports, allocator) hit neither measurement
    plain_loop(real, 2, args.batch_size, 0)
    gan_experiment.train_gan(gan, 2, args.batch_size, snapshot_at=(), grid_size=4, show_progress=False)
    provided, plain = [], []
    print(f"batch {args.batch_size}, {args.iterations} iterations per run, threads {torch.get_num_threads()}")
    for r in range(args.repeats):
        result = gan_experiment.train_gan(gan, args.iterations, args.batch_size, seed=r, snapshot_at=(),
                                          grid_size=4, show_progress=True)
        provided.append(args.iterations / result["seconds"])
        plain.append(args.iterations / plain_loop(real, args.iterations, args.batch_size, r))
        print(f"run {r}: provided {provided[-1]:.3f} it/s, plain {plain[-1]:.3f} it/s", flush=True)
    p, q = statistics.median(provided), statistics.median(plain)
    print(f"median: provided {p:.3f} it/s, plain {q:.3f} it/s, provided/plain = {p / q:.3f}")


if __name__ == "__main__":
    main()
