"""``python -m autograder flakiness``: rerun every training test on the solution over many seeds.

For each seed, one pytest process runs the training (``-m training``) tests of the selected
problems -- visible and hidden -- on the solution with ``$HW3_TEST_SEED`` set to that seed (read by
:func:`hw3.testing.training_seed`, so each test trains from that seed plus 1000 x its fixed one
instead of its fixed one: the visible and hidden tests that train alike stay on different seeds) and
``$HW3_TEST_METRICS`` naming a file into which :func:`hw3.testing.record_metric` writes the measured
metric and its threshold. The report gives, per test, the pass rate over the seeds, and per recorded
metric its worst and mean value and the worst margin (value minus threshold, in the direction the
test asserts; negative = a failure). Goal: every test passes for every seed.

    python -m autograder flakiness                          # 10 seeds (100..109), all problems
    python -m autograder flakiness --problem gan --seeds 3 --markdown benchmarks/RESULTS-flakiness.md
    python -m autograder flakiness --problem cnn -k learns_mnist --first-seed 0 --seeds 8 --table
    python -m autograder flakiness --problem gan --full-budget --first-seed 0 --seeds 5 --table

The last two forms are how a threshold is calibrated (benchmarks/RESULTS-<problem>.md): seeds from
0, so that seed 0 is the graded run itself, and --table adds each metric's value at every seed with
their minimum, mean and standard deviation -- the numbers a threshold's margin is set from.
--full-budget runs the tests marked gpu instead, which train with each experiment's full mode (on
the CPU when there is no GPU: hours).

The tests' pytest-timeout limits are off unless --keep-timeouts: this measures how a test's metric
depends on the seed; on a shared machine a timeout would only say how busy it was. Each test's
mean time is reported (benchmarks/bench_suite.py measures the suite's speed properly).

Seeds default to 100.. so that they differ from the seeds the thresholds were calibrated on
(by convention below 100; a test whose fixed seed is 1 runs on 1100.. and so on). Graded runs are unaffected: the grader never passes these variables on.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import REPO_ROOT
from autograder.validate import MODULES
from hw3.problems import graded_test_files
from hw3.testing import METRICS_VAR, SEED_STRIDE, SEED_VAR

FIRST_SEED = 100


def run_seed(seed: int, files: list, impl: str, work: Path, keyword: str = None, markexpr: str = "training",
             threads: int = None, timeouts: bool = False, full_budget: bool = False, log=print) -> dict:
    """One pytest process over ``files`` with the seed set; -> {"seed", "outcomes", "metrics", "seconds", ...}.
    ``full_budget``: the full-budget tests (marked gpu) instead, on a GPU if any, else on the CPU."""
    outcomes, metrics = work / f"outcomes-{seed}.jsonl", work / f"metrics-{seed}.jsonl"
    env = dict(os.environ, **{SEED_VAR: str(seed), METRICS_VAR: str(metrics)}, TQDM_DISABLE="1", MPLBACKEND="Agg")
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    marks = ["-m", "gpu", "--gpu-tests-on-cpu"] if full_budget else ["-m", f"({markexpr}) and not gpu"]
    argv = [sys.executable, "-m", "pytest", *files, "--impl", impl, *marks,
            "-p", "autograder.flakiness.outcome_log", "--hw3-outcomes", str(outcomes), "-p", "no:cacheprovider",
            "-q", "--no-header", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    if not timeouts:  # seed robustness, not speed (bench_suite.py measures time): load must not fail a run
        argv += ["-p", "no:timeout"]
    if keyword:
        argv += ["-k", keyword]
    start, load = time.monotonic(), os.getloadavg()[0]
    run = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, errors="replace")
    seconds = time.monotonic() - start
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.is_file() else []
    result = {"seed": seed, "outcomes": read(outcomes), "metrics": read(metrics), "seconds": round(seconds, 1),
              "returncode": run.returncode, "load": round(load, 2), "threads": threads}
    if run.returncode not in (0, 1) or not result["outcomes"]:
        result["error"] = (run.stdout + run.stderr)[-3000:]
    passed = sum(o["outcome"] == "passed" for o in result["outcomes"])
    log(f"  seed {seed}: {passed}/{len(result['outcomes'])} passed in {seconds:.0f} s (load {load:.1f})"
        + "".join(f"\n    FAILED {o['test']}: {o['message']}" for o in result["outcomes"] if o["outcome"] == "failed")
        + (f"\n    pytest exited with status {run.returncode}:\n{result['error']}" if "error" in result else ""))
    return result


def summarize(runs: list) -> list:
    """Rows, one per (test, metric): pass rate over the seeds and the metric's worst margin."""
    tests = {}
    for run in runs:
        for o in run["outcomes"]:
            tests.setdefault(o["test"], {"outcomes": {}, "seconds": [], "metrics": {}})
            tests[o["test"]]["outcomes"][run["seed"]] = o
            tests[o["test"]]["seconds"].append(o["seconds"])
        for m in run["metrics"]:
            entry = tests.setdefault(m["test"], {"outcomes": {}, "seconds": [], "metrics": {}})
            entry["metrics"].setdefault(m["name"], []).append(dict(m, seed=run["seed"]))
    rows = []
    for test, entry in tests.items():
        outcomes = entry["outcomes"]
        passed = sum(o["outcome"] == "passed" for o in outcomes.values())
        failures = [f"seed {seed}: {o['message']}" for seed, o in sorted(outcomes.items()) if o["outcome"] != "passed"]
        base = {"test": test, "passed": passed, "runs": len(outcomes), "failures": failures,
                "seconds": round(statistics.mean(entry["seconds"]), 1) if entry["seconds"] else None}
        if not entry["metrics"]:
            rows.append(dict(base, metric=None))
            continue
        for name, records in entry["metrics"].items():
            values = [r["value"] for r in records]
            worst = min(records, key=lambda r: r["margin"])
            threshold = records[0]["threshold"]
            rows.append(dict(
                base, metric=name, direction=">=" if records[0]["higher_is_better"] else "<=", threshold=threshold,
                values={r["seed"]: r["value"] for r in records},
                worst=worst["value"], mean=statistics.mean(values), best=max(values) if records[0]["higher_is_better"]
                else min(values), worst_margin=worst["margin"],
                relative_margin=worst["margin"] / abs(threshold) if threshold else None, records=len(records),
                same_for_all_seeds=len(records) > 1 and len(set(values)) == 1,
            ))
    return rows


def _num(x) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if abs(x) < 1000 else f"{x:.0f}"


def seed_table(rows: list) -> list:
    """Markdown lines: per (test, metric), its value at every seed, then their min, mean and std."""
    lines = ["| test | metric | value per seed (seeds) | min | mean | std |", "|---|---|---|---|---|---|"]
    for row in rows:
        if row["metric"] is None:
            continue
        seeds = sorted(row["values"])
        values = [row["values"][seed] for seed in seeds]
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| `{row['test']}` | {row['metric']} | {', '.join(_num(v) for v in values)} "
                     f"({seeds[0]}..{seeds[-1]}) | {_num(min(values))} | {_num(statistics.mean(values))} | "
                     f"{_num(std)} |")
    return lines


def markdown(rows: list, runs: list, command: str, per_seed: bool = False) -> str:
    seeds = sorted({r["seed"] for r in runs})
    loads = [r["load"] for r in runs]
    lines = [
        "# Flakiness of the training tests (reference solution)",
        "",
        f"Command: `{command}`  ",
        f"Seeds: {seeds[0]}..{seeds[-1]} ({len(seeds)} seeds; `$HW3_TEST_SEED`, read by `hw3.testing.training_seed`: "
        f"a test whose fixed seed is s trains on that seed + {SEED_STRIDE} s)  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M')}; wall time per seed run {min(r['seconds'] for r in runs):.0f}-"
        f"{max(r['seconds'] for r in runs):.0f} s; 1-minute load average at each run's start "
        f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores"
        + (f"; {runs[0]['jobs']} seeds at a time, OMP_NUM_THREADS={runs[0]['threads']}" if runs[0].get("jobs", 1) > 1
           else "; one seed at a time, torch's default threads (as graded)"),
        "",
        "Margin = measured value minus threshold in the direction the test asserts (worst seed; "
        "negative = failed); relative = margin / |threshold|.",
        "",
        "| test | passed | metric | threshold | worst | mean | best | worst margin | relative | mean time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["metric"] is None:
            lines.append(f"| `{row['test']}` | {row['passed']}/{row['runs']} | (not recorded) | | | | | | | "
                         f"{_num(row['seconds'])} |")
            continue
        rel = f"{100 * row['relative_margin']:+.1f} %" if row["relative_margin"] is not None else "-"
        lines.append(f"| `{row['test']}` | {row['passed']}/{row['runs']} | {row['metric']} | {row['direction']} "
                     f"{_num(row['threshold'])} | {_num(row['worst'])} | {_num(row['mean'])} | {_num(row['best'])} | "
                     f"{row['worst_margin']:+.4g} | {rel} | {_num(row['seconds'])} |")
    if per_seed:
        lines += ["", "Per seed:", ""] + seed_table(rows)
    notes = [f"- `{r['test']}` {r['metric']}: the same value for every seed -- does the test seed itself "
             f"with `hw3.testing.training_seed`?" for r in rows if r.get("same_for_all_seeds")]
    notes += [f"- `{r['test']}` failed: " + "; ".join(r["failures"]) for r in rows if r["failures"]]
    notes += [f"- `{r['test']}`: no metric recorded (assert its threshold with `hw3.testing.check_metric`)"
              for r in rows if r["metric"] is None]
    if notes:
        lines += ["", "Notes:", ""] + sorted(set(notes), key=notes.index)
    return "\n".join(lines) + "\n"


def configure(parser):
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds (default 10)")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED,
                        help=f"the first seed; the others follow (default {FIRST_SEED})")
    parser.add_argument("--problem", action="append", choices=MODULES, metavar="M",
                        help="only this problem (repeatable); default: all four")
    parser.add_argument("--impl", default="solution", help="implementation folder (default solution)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR", help="only the training tests matching this -k expression")
    parser.add_argument("--full-budget", action="store_true",
                        help="the full-budget tests (marked gpu: each experiment's full mode) instead of the graded "
                             "training tests; on a CUDA GPU if there is one, else on the CPU (hours)")
    parser.add_argument("--keep-timeouts", action="store_true",
                        help="keep the tests' pytest-timeout limits (by default they are off: on a loaded machine "
                             "a timeout says nothing about seeds; each test's time is reported instead)")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="seeds run in parallel (default 1; with more, each gets cores/jobs torch threads)")
    parser.add_argument("--table", action="store_true",
                        help="also list each metric's value at every seed, with min, mean and std (calibration)")
    parser.add_argument("--markdown", metavar="FILE", type=Path, help="write the report as Markdown to FILE")
    parser.add_argument("--json", metavar="FILE", type=Path, help="write every run's raw outcomes and metrics to FILE")
    parser.add_argument("--from-json", metavar="FILE", type=Path, nargs="+",
                        help="run nothing: report on the runs saved by earlier --json FILEs (e.g. one per problem)")


def run(args) -> int:
    if args.from_json:
        runs = [run for path in args.from_json for run in json.loads(path.read_text())["runs"]]
        report = markdown(summarize(runs), runs, " ; ".join(json.loads(p.read_text()).get("command", str(p))
                                                            for p in args.from_json), per_seed=args.table)
        print(report)
        if args.markdown:
            args.markdown.write_text(report)
        return 0
    problems = args.problem or list(MODULES)
    files = [str(path.relative_to(REPO_ROOT)) for path in graded_test_files(REPO_ROOT / "tests", problems)]
    if not files or args.seeds < 1:
        print("error: no test files for " + ", ".join(problems) if not files else "error: --seeds must be >= 1",
              file=sys.stderr)
        return 2
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"flakiness: the {'full-budget' if args.full_budget else 'training'} tests of {', '.join(files)} on {args.impl}, seeds {seeds[0]}..{seeds[-1]}",
          flush=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    say = lambda m: print(m, flush=True)
    with tempfile.TemporaryDirectory(prefix="hw3-flakiness-") as tmp:
        if args.jobs > 1:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(args.jobs) as pool:
                runs = list(pool.map(lambda s: run_seed(s, files, args.impl, Path(tmp), args.keyword,
                                                        threads=threads, timeouts=args.keep_timeouts,
                                                        full_budget=args.full_budget, log=say), seeds))
        else:
            runs = [run_seed(seed, files, args.impl, Path(tmp), args.keyword, timeouts=args.keep_timeouts,
                             full_budget=args.full_budget, log=say) for seed in seeds]
    for run in runs:
        run["jobs"] = args.jobs
    rows = summarize(runs)
    command = "python -m autograder flakiness " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else \
        "python -m autograder flakiness"
    report = markdown(rows, runs, command.strip(), per_seed=args.table)
    print()
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
        print(f"written to {args.markdown}")
    if args.json:
        args.json.write_text(json.dumps({"command": command.strip(), "runs": runs, "rows": rows}, indent=1) + "\n")
    errors = [r for r in runs if "error" in r]
    flaky = [r for r in rows if r["passed"] < r["runs"]] + [r for r in rows if r["runs"] < len(runs)]
    return 1 if errors or flaky or not rows else 0
