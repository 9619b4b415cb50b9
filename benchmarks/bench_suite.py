"""Wall time and peak memory of the graded test suite on the reference solution.

    .venv/bin/python -m benchmarks.bench_suite                               # all measurements below
    .venv/bin/python -m benchmarks.bench_suite --only whole --markdown benchmarks/RESULTS-suite.md

Measurements, each one fresh process run to completion, one after the other (never in parallel):
  * per problem: ``pytest tests/test_P.py tests/hidden/test_P_hidden.py --impl solution``, the full
    suite and the fast subset (``-m "not training"``);
  * whole: the four problems' graded files in one pytest process, full and fast;
  * grader (with --grader): ``python -m autograder grade solution``, what Gradescope runs (a trusted
    collection process, then one sandboxed pytest process per problem, one after the other).

For each: wall time; CPU time (user + system) of the process and the children it waited for, which
depends much less than wall time on what else runs on the machine; peak memory = the largest
resident set (ru_maxrss from os.wait4) of any single process of the run -- for a pytest run that is
the pytest process itself; for the grader it is the largest of the grader and its test processes,
which run one at a time, so the true simultaneous peak is at most grader + that. The 1-minute load
average at the start and end of each run is recorded beside it: on a shared machine, wall times
are inflated by the other processes' load.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hw3.problems import NAMES as PROBLEMS
from hw3.problems import graded_test_files

REPO_ROOT = Path(__file__).resolve().parent.parent
GOALS = {"full": (180.0, 2048.0), "fast": (20.0, 2048.0)}   # whole suite: seconds, MB


def graded_files(problems) -> list:
    return [str(path.relative_to(REPO_ROOT)) for path in graded_test_files(REPO_ROOT / "tests", problems)]


def measure(argv, env=None) -> dict:
    """Run argv to completion; wall seconds, CPU seconds and max RSS (MB) via os.wait4."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        tail = out.read().decode(errors="replace")[-4000:]
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "max_rss_mb": round(usage.ru_maxrss / 1024), "returncode": proc.returncode,
            "load_start": round(load, 2), "load_end": round(os.getloadavg()[0], 2), "tail": tail}


def pytest_run(label, files, fast: bool, impl: str, work: Path) -> dict:
    outcomes = work / f"{label}.jsonl"
    argv = [sys.executable, "-m", "pytest", *files, "--impl", impl, "-p", "no:cacheprovider", "-q",
            "-m", "not training and not gpu" if fast else "not gpu",
            "-p", "autograder.flakiness.outcome_log", "--hw3-outcomes", str(outcomes)]
    env = dict(os.environ, TQDM_DISABLE="1", MPLBACKEND="Agg")
    result = measure(argv, env)
    tests = [json.loads(line) for line in outcomes.read_text().splitlines()] if outcomes.is_file() else []
    result.update(label=label, command="python -m pytest " + " ".join(files) + f" --impl {impl}"
                  + (' -m "not training"' if fast else ""), subset="fast" if fast else "full",
                  tests=len(tests), passed=sum(t["outcome"] == "passed" for t in tests),
                  slowest=sorted(((t["seconds"], t["test"]) for t in tests), reverse=True)[:5])
    return result


def grader_run(impl: str, fast: bool) -> dict:
    argv = [sys.executable, "-m", "autograder", "grade", impl, "-q"] + (["-m", "not training"] if fast else [])
    result = measure(argv, dict(os.environ))
    result.update(label="grader", command="python -m autograder grade " + impl + (' -m "not training"' if fast else ""),
                  subset="fast" if fast else "full", tests=None, passed=None, slowest=[],
                  points=(result["tail"].strip().splitlines() or ["?"])[-1])
    return result


def markdown(results: list, args) -> str:
    lines = [
        "# Graded test suite: wall time and peak memory (reference solution)",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_suite {' '.join(sys.argv[1:])}`".rstrip() + "  ",
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        "Wall = elapsed seconds; CPU = user + system seconds of the process and its children (much less "
        "sensitive to other load than wall); peak memory = the largest resident set (max RSS) of any single "
        "process of the run; load = the 1-minute load average at the start and the end of the run "
        f"(on {os.cpu_count()} cores: above {os.cpu_count()} means other work competed for the CPU and "
        "inflated the wall time).",
        "",
        "| run | subset | tests passed | wall (s) | CPU (s) | peak memory (MB) | load start/end | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        passed = f"{r['passed']}/{r['tests']}" if r["tests"] is not None else r.get("points", "")
        goal = ""
        if r["label"] in ("whole", "grader"):
            seconds, mb = GOALS[r["subset"]]
            ok = r["wall_s"] <= seconds and r["max_rss_mb"] <= mb
            goal = f"<= {seconds:g} s, <= {mb:g} MB: {'met' if ok else 'NOT met'}"
        lines.append(f"| {r['label']} | {r['subset']} | {passed} | {r['wall_s']} | {r['cpu_s']} | {r['max_rss_mb']} | "
                     f"{r['load_start']}/{r['load_end']} | {goal} |")
    lines += ["", "Slowest tests (full runs):", ""]
    for r in results:
        if r["subset"] == "full" and r["slowest"] and r["label"] != "whole":
            lines.append(f"- {r['label']}: " + ", ".join(f"`{t.split('::')[-1]}` {s:.1f} s" for s, t in r["slowest"][:3]))
    lines += ["", "Commands:", ""] + [f"- {r['label']} {r['subset']}: `{r['command']}`" for r in results]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_suite", description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="solution")
    parser.add_argument("--problem", action="append", choices=PROBLEMS, help="per-problem runs only for these")
    parser.add_argument("--only", choices=("problems", "whole", "grader"), action="append",
                        help="which measurements (repeatable; default: problems and whole)")
    parser.add_argument("--grader", action="store_true", help="also time python -m autograder grade")
    parser.add_argument("--subset", choices=("full", "fast", "both"), default="both")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--json", type=Path, help="write the raw measurements here")
    args = parser.parse_args(argv)
    only = set(args.only or ["problems", "whole"] + (["grader"] if args.grader else []))
    subsets = {"full": [False], "fast": [True], "both": [True, False]}[args.subset]
    results = []
    with tempfile.TemporaryDirectory(prefix="hw3-bench-") as tmp:
        work = Path(tmp)
        plan = []
        if "problems" in only:
            plan += [(p, graded_files([p]), fast) for p in (args.problem or PROBLEMS) for fast in subsets]
        if "whole" in only:
            plan += [("whole", graded_files(PROBLEMS), fast) for fast in subsets]
        for label, files, fast in plan:
            if not files:
                print(f"{label}: no graded test files, skipped", flush=True)
                continue
            r = pytest_run(label + ("-fast" if fast else ""), files, fast, args.impl, work)
            r["label"] = label
            results.append(r)
            print(f"{label:<12} {r['subset']:<5} {r['passed']}/{r['tests']} passed  wall {r['wall_s']:6.1f} s  "
                  f"CPU {r['cpu_s']:6.1f} s  max RSS {r['max_rss_mb']:5d} MB  load {r['load_start']}->{r['load_end']}",
                  flush=True)
            if r["returncode"] not in (0, 1):
                print(r["tail"], flush=True)
        if "grader" in only:
            for fast in subsets:
                r = grader_run(args.impl, fast)
                results.append(r)
                print(f"{'grader':<12} {r['subset']:<5} {r['points']}  wall {r['wall_s']:6.1f} s  CPU {r['cpu_s']:6.1f} s  "
                      f"max RSS {r['max_rss_mb']:5d} MB  load {r['load_start']}->{r['load_end']}", flush=True)
    report = markdown(results, args)
    print()
    print(report)
    if args.markdown:
        args.markdown.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
