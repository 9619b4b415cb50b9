"""Exploration for the DCGAN convergence test: which batch size and sampling mode reach
judge-recognizable digits with the fewest training images? (One-off; results in RESULTS-gan.md.)

    .venv/bin/python benchmarks/gan_explore.py --batch-size 32 --checkpoints 100 200 300 --out /tmp/x.pt

Trains the solution with the provided loop (hw3.gan_experiment.train_gan) and, at each
checkpoint, generates 1000 digits from fixed noise with G in eval mode and in training mode
(batch-norm batch statistics); saves them, and scores them with the judge when it is available.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from hw3 import gan_experiment, impl  # noqa: E402


@torch.no_grad()
def train_mode(G, noise):
    """Like generate, but with batch-norm batch statistics (this also nudges the running stats)."""
    return ((G(noise) + 1) / 2).clamp(0, 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--checkpoints", type=int, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    gan = impl.load("gan", "solution")
    original = gan_experiment.generate
    gan_experiment.generate = lambda G, noise: dict(eval=original(G, noise), train=train_mode(G, noise))
    result = gan_experiment.train_gan(gan, max(args.checkpoints), args.batch_size, seed=args.seed,
                                      snapshot_at=set(args.checkpoints), grid_size=args.samples)
    snaps = {k: v for k, v in result["snapshots"].items() if k != "final"}
    torch.save(dict(args=vars(args), snapshots=snaps, seconds=result["seconds"],
                    d_loss=result["d_loss"], g_loss=result["g_loss"]), args.out)
    print(f"{args.batch_size=} {result['seconds']:.0f}s")
    try:
        for k, v in sorted(snaps.items()):
            for mode in ("eval", "train"):
                s = gan_experiment.judge_score(v[mode])
                print(k, mode, f"conf {s['mean_confidence']:.3f} cov {s['coverage']} {s['class_counts']}")
    except Exception as error:
        print("judge unavailable:", error)


if __name__ == "__main__":
    main()
