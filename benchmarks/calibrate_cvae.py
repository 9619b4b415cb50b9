"""Calibrate the CVAE training tests: test-set negative ELBO and judge accuracy per label after a fixed budget.

    .venv/bin/python benchmarks/calibrate_cvae.py                    # the tests' budget, seeds 0-7
    .venv/bin/python benchmarks/calibrate_cvae.py --iterations 1500 --latent-dim 20 --seeds 0 1 2
    .venv/bin/python benchmarks/calibrate_cvae.py --curve 250        # also evaluate every 250 iterations

For each seed it runs exactly what tests/test_cvae.py's training tests run
(hw3.cvae_experiment.train_and_evaluate with the tests' BUDGET, unless flags override it) on the
implementation folder (default solution/), and prints the test negative ELBO (nats per image), the
judge accuracy of each conditioning label, and the training time: wall clock (inflated when the
machine is shared) and process CPU time (divided by the thread count: an estimate of the wall time
on idle cores). The tests' thresholds are the worst value over the seeds plus a margin; the numbers
are recorded in tests/test_cvae.py and benchmarks/RESULTS-cvae.md.

--curve N trains once per seed in chunks of N iterations and evaluates after each chunk (the
"training time to the threshold" table of RESULTS-cvae.md).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hw3 import impl  # noqa: E402
from hw3.cvae_experiment import (judge_accuracy, negative_elbo, train_and_evaluate,  # noqa: E402
                                 training_batches)
from hw3.data import load_mnist  # noqa: E402
from hw3.training import seed_everything  # noqa: E402
from tests.test_cvae import (BUDGET, JUDGE_LABEL_THRESHOLD, JUDGE_MEAN_THRESHOLD,  # noqa: E402
                             NEGATIVE_ELBO_THRESHOLD)


def curve(cvae, args, seed, test_set, train_set):
    """Negative ELBO and judge accuracy every args.curve iterations of one training run."""
    generator = seed_everything(seed)
    images, labels = train_set
    images = images.reshape(len(images), -1)
    model = cvae.CVAE(latent_dim=args.latent_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    cpu = 0.0
    for iteration, (x, y) in zip(range(1, args.iterations + 1),
                                 training_batches(images, labels, args.batch_size, generator)):
        start = time.process_time()
        model.train()
        optimizer.zero_grad()
        recon, mu, logvar = model(x, y)
        cvae.loss_function(recon, x, mu, logvar).backward()
        optimizer.step()
        cpu += time.process_time() - start
        if iteration % args.curve == 0:
            model.eval()
            accuracy = judge_accuracy(model, args.judge_per_label, seed=seed + 1)
            nelbo = negative_elbo(model, *test_set, seed=seed + 2)
            print(f"  seed {seed} iteration {iteration:5d}: negative ELBO {nelbo:7.2f}  judge mean "
                  f"{sum(accuracy) / 10:.3f} min {min(accuracy):.2f}  (CPU {cpu:.0f} s)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--iterations", type=int, default=BUDGET["iterations"])
    parser.add_argument("--batch-size", type=int, default=BUDGET["batch_size"])
    parser.add_argument("--lr", type=float, default=BUDGET["lr"])
    parser.add_argument("--latent-dim", type=int, default=BUDGET["latent_dim"])
    parser.add_argument("--judge-per-label", type=int, default=BUDGET["judge_per_label"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--curve", type=int, default=0, metavar="N", help="evaluate every N iterations")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    cvae = impl.load("cvae", args.impl)
    print(f"CVAE(latent_dim={args.latent_dim}): {args.iterations} iterations of {args.batch_size}, Adam lr "
          f"{args.lr}, judge on {args.judge_per_label} samples per label, {threads} thread(s); thresholds now: "
          f"negative ELBO <= {NEGATIVE_ELBO_THRESHOLD}, judge accuracy mean >= {JUDGE_MEAN_THRESHOLD} and per label "
          f">= {JUDGE_LABEL_THRESHOLD}")
    if args.curve:
        test_set, train_set = load_mnist(train=False), load_mnist(train=True)
        for seed in args.seeds:
            curve(cvae, args, seed, test_set, train_set)
        return
    rows = []
    for seed in args.seeds:
        r = train_and_evaluate(cvae, args.iterations, args.batch_size, lr=args.lr, latent_dim=args.latent_dim,
                               seed=seed, judge_per_label=args.judge_per_label, device=torch.device("cpu"))
        rows.append(r)
        per_label = " ".join(f"{a:.2f}" for a in r["judge_accuracy_per_label"])
        print(f"  seed {seed}: negative ELBO {r['test_negative_elbo']:.2f}  judge per label [{per_label}] "
              f"mean {r['judge_accuracy']:.3f} min {min(r['judge_accuracy_per_label']):.2f}  "
              f"(trained in {r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU)", flush=True)
    nelbo = [r["test_negative_elbo"] for r in rows]
    worst = [min(r["judge_accuracy_per_label"]) for r in rows]
    means = [r["judge_accuracy"] for r in rows]
    per_label_min = [min(r["judge_accuracy_per_label"][y] for r in rows) for y in range(10)]
    print(f"negative ELBO: max {max(nelbo):.2f} mean {statistics.mean(nelbo):.2f} std "
          f"{statistics.pstdev(nelbo):.2f} min {min(nelbo):.2f}")
    print(f"judge accuracy, worst label per seed: min {min(worst):.2f} mean {statistics.mean(worst):.3f}; "
          f"mean over labels: min {min(means):.3f} mean {statistics.mean(means):.3f}")
    print("judge accuracy per label, worst seed: " + " ".join(f"{y}:{a:.2f}" for y, a in enumerate(per_label_min)))
    cpu = [r["cpu_seconds"] for r in rows]
    wall = [r["seconds"] for r in rows]
    print(f"training time per seed: wall mean {statistics.mean(wall):.1f} s max {max(wall):.1f} s; CPU mean "
          f"{statistics.mean(cpu):.1f} s (/{threads} threads = {statistics.mean(cpu) / threads:.1f} s on idle cores)")


if __name__ == "__main__":
    main()
