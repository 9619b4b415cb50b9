"""Calibrate the DCGAN training test (tests/test_gan.py, test 4.8.1): judge scores of the solution
and of broken generators over seeds, at several training budgets in one run.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_calibrate.py --batch-size 32 --threads 1 \\
        --checkpoints 100 150 200 250 --seeds 0 1 2 3 4 5 6 7 --variants solution \\
        --out benchmarks/gan-calibration/solution-seeds0-7.jsonl

(the run behind test 4.8.1's thresholds; the others are listed in benchmarks/RESULTS-gan.md).

Each (variant, seed) trains once with the provided loop (hw3.gan_experiment.train_gan, exactly as
the test calls it) up to the largest checkpoint; the snapshot taken after k iterations is exactly
the final sample of a k-iteration run (same fixed noise, same eval-mode generation, and generating
does not change any state), so one run gives every budget. For each checkpoint it appends one JSON
line: variant, seed, batch size, iterations, wall and CPU seconds so far (including loading MNIST),
judge mean confidence, coverage and
class counts.

Broken variants (the solution with one piece replaced; unit tests would catch each, this checks
that the training test also separates them):

    g-loss-wrong-sign   generator_loss = -bce(fake, 1): G learns to look fake
    d-loss-swapped      discriminator_loss labels real 0 and fake 1
    g-loss-minimax      generator_loss = -bce(fake, 0), the saturating minimax loss (may still learn)
    collapsed           the generator ignores its noise (input multiplied by 0): one image for all z

Any other name is a variant of autograder/validate/catalogue_gan.py (e.g. discriminator-sigmoid,
generator-no-tanh, g-loss-fake-label, adam-default-betas): the solution patched exactly as
``python -m autograder validate`` patches it, loaded from a temporary folder.
"""
import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hw3 import gan_experiment, impl  # noqa: E402
from hw3.judge import classify  # noqa: E402


class ZeroNoise(nn.Module):
    def forward(self, z):
        return z * 0


def variant(name):
    """The solution module, or a copy with one piece broken."""
    solution = impl.load("gan", "solution")
    if name == "solution":
        return solution
    module = types.SimpleNamespace(**{k: getattr(solution, k) for k in dir(solution) if not k.startswith("__")})
    if name == "g-loss-wrong-sign":
        module.generator_loss = lambda logits_fake: -solution.generator_loss(logits_fake)
    elif name == "d-loss-swapped":
        module.discriminator_loss = lambda logits_real, logits_fake: solution.discriminator_loss(logits_fake, logits_real)
    elif name == "g-loss-minimax":
        module.generator_loss = lambda logits_fake: -solution.bce_loss(logits_fake, torch.zeros_like(logits_fake))
    elif name == "collapsed":
        module.build_generator = lambda noise_dim=solution.NOISE_DIM: nn.Sequential(
            ZeroNoise(), *solution.build_generator(noise_dim))
    else:
        from autograder.validate import catalogue, materialize
        matches = [v for v in catalogue("gan") if v.name == name]
        if not matches:
            raise SystemExit(f"unknown variant {name}; known: solution g-loss-wrong-sign d-loss-swapped "
                             f"g-loss-minimax collapsed {' '.join(v.name for v in catalogue('gan'))}")
        folder = materialize(matches[0], Path(tempfile.mkdtemp(prefix="gan-variant-")) / "impl")
        return impl.load("gan", folder)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--checkpoints", type=int, nargs="+", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=["solution"])
    parser.add_argument("--samples", type=int, default=500, help="digits the judge classifies (default 500)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); 1 runs far faster on an oversubscribed machine")
    parser.add_argument("--out", required=True, help="JSON-lines file to append to")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.variants:
        gan = variant(name)
        for seed in args.seeds:
            times = {}
            original = gan_experiment.generate

            def timed_generate(G, noise):  # note when each checkpoint is reached
                times[len(times)] = (time.perf_counter(), time.process_time())
                return original(G, noise)

            gan_experiment.generate = timed_generate
            start = (time.perf_counter(), time.process_time())
            try:
                result = gan_experiment.train_gan(gan, max(args.checkpoints), args.batch_size, seed=seed,
                                                  snapshot_at=set(args.checkpoints), grid_size=args.samples,
                                                  show_progress=False)
            finally:
                gan_experiment.generate = original
            elapsed = [(times[i][0] - start[0], times[i][1] - start[1]) for i in sorted(times)]
            keys = sorted(k for k in result["snapshots"] if k != "final")
            for k, (seconds, cpu_seconds) in zip(keys, elapsed):
                score = gan_experiment.judge_score(result["snapshots"][k])
                _, confidences = classify(result["snapshots"][k])
                score["confident_fraction"] = float((confidences >= 0.9).float().mean())
                record = dict(variant=name, seed=seed, batch_size=args.batch_size, iterations=k,
                              threads=torch.get_num_threads(),
                              seconds=round(seconds, 1), cpu_seconds=round(cpu_seconds, 1), samples=args.samples,
                              final_d_loss=result["d_loss"][k - 1], final_g_loss=result["g_loss"][k - 1], **score)
                print(json.dumps(record), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
