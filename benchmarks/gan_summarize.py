"""Summarize benchmarks/gan_calibrate.py's JSON lines: one Markdown row per (variant, batch size,
iterations) with the judge's mean confidence and coverage over seeds (min / mean / max).

    .venv/bin/python benchmarks/gan_summarize.py benchmarks/gan-calibration.jsonl [more.jsonl ...]
    .venv/bin/python benchmarks/gan_summarize.py --per-seed 250 FILE.jsonl [...]   # one row per run

With --per-seed N: one row per (variant, seed) at N iterations instead (confidence, coverage,
class counts, final losses, CPU and wall seconds).
"""
import json
import statistics
import sys
from collections import defaultdict


def per_seed(iterations, paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows += [r for r in map(json.loads, f) if r["iterations"] == iterations]
    print("| variant | seed | mean confidence | coverage | class counts 0-9 | final D / G loss | CPU s / wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["variant"] != "solution", r["variant"], r["seed"])):
        counts = " ".join(str(c) for c in r["class_counts"])
        print(f"| {r['variant']} | {r['seed']} | {r['mean_confidence']:.3f} | {r['coverage']} | {counts} | "
              f"{r['final_d_loss']:.3f} / {r['final_g_loss']:.3f} | {r['cpu_seconds']:.0f} / {r['seconds']:.0f} |")


def main(paths):
    if paths and paths[0] == "--per-seed":
        return per_seed(int(paths[1]), paths[2:])
    groups = defaultdict(list)
    for path in paths:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                groups[(r["variant"], r["batch_size"], r["iterations"])].append(r)
    print("| variant | batch | iterations | seeds | mean confidence min / mean / max | coverage min / mean / max "
          "| CPU s (1 thread, median) |")
    print("|---|---|---|---|---|---|---|")
    for (variant, batch, iterations), rows in sorted(groups.items(), key=lambda kv: (kv[0][0] != "solution", kv[0])):
        conf = [r["mean_confidence"] for r in rows]
        cov = [r["coverage"] for r in rows]
        cpu = statistics.median(r.get("cpu_seconds", float("nan")) for r in rows)
        seeds = ",".join(str(r["seed"]) for r in sorted(rows, key=lambda r: r["seed"]))
        print(f"| {variant} | {batch} | {iterations} | {seeds} | {min(conf):.3f} / {statistics.mean(conf):.3f} / "
              f"{max(conf):.3f} | {min(cov)} / {statistics.mean(cov):.1f} / {max(cov)} | {cpu:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
