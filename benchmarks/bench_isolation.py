"""What the grader's containment costs, and whether a busy machine costs correct code points.

    .venv/bin/python -m benchmarks.bench_isolation overhead --before /tmp/hw3-before --rounds 3
    .venv/bin/python -m benchmarks.bench_isolation overhead --before /tmp/hw3-before --isolations namespaces --full
    .venv/bin/python -m benchmarks.bench_isolation load --busy 4
    .venv/bin/python -m benchmarks.bench_isolation grade-all --jobs 2

overhead: ``python -m autograder grade solution`` (the fast tests by default, ``--full`` for all) under
each sandbox of this grader (namespaces, uid, none) and, with ``--before CHECKOUT``, under the grader of
an older checkout of this repository (what grading cost before the namespaces), interleaved round by
round so that the machine's load affects each alike. Reports wall and CPU seconds (the grader and every
process it waited for) and the score.
load: the full graded suite on the solution while ``--busy N`` processes spin on the CPU.
grade-all: a class of ``--copies`` copies of the solution through ``grade-all -j JOBS``.
Every figure is printed as a Markdown table with the load average at the start and end of each run.
"""
import argparse
import csv
import json
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION = REPO_ROOT / "solution"


def load() -> float:
    return os.getloadavg()[0]


def timed(argv, cwd=REPO_ROOT, env=None) -> dict:
    """Run argv to completion: wall seconds, CPU seconds of it and its waited-for children, load."""
    before, start, load_start = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic(), load()
    run = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, errors="replace")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # A namespace's processes are reaped by the kernel, not waited for, so their CPU time is missing
    # from the rusage above; the grader logs each test process tree's CPU seconds: take the larger.
    logged = sum(float(x) for x in re.findall(r"; ([0-9.]+) CPU s;", run.stdout))
    return {"wall": time.monotonic() - start, "cpu": max(cpu, logged), "code": run.returncode,
            "load": (load_start, load()), "output": run.stdout + run.stderr}


def grade_argv(results: Path, isolation=None, full=False) -> list:
    argv = [sys.executable, "-m", "autograder", "grade", str(SOLUTION), "-o", str(results)]
    argv += [] if full else ["-m", "not training"]
    return argv + (["--isolation", isolation] if isolation else [])


def score_of(results: Path) -> str:
    try:
        data = json.loads(results.read_text())
    except (OSError, ValueError):
        return "no results"
    regrade = sum("regrade" in t.get("tags", []) for t in data["tests"])
    maximum = sum(t["max_score"] for t in data["tests"])
    return f"{data['score']:g} / {maximum:g}" + (f" ({regrade} flagged for regrade)" if regrade else "")


def failures(output: str) -> str:
    """The grader's list of failed tests (with their first message line), from its console output."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Failed tests")), None)
    return "" if start is None else "\n".join(line for line in lines[start:] if not line.startswith("  log:"))[:6000]


def row(name: str, measured: dict, score: str) -> str:
    return (f"| {name} | {measured['wall']:.1f} | {measured['cpu']:.1f} | {score} | "
            f"{measured['load'][0]:.2f} → {measured['load'][1]:.2f} |")


HEADER = "| run | wall s | CPU s | score | load (1 min) |\n|---|---|---|---|---|"


def overhead(args) -> None:
    variants = [(mode, None) for mode in args.isolations.split(",")]
    if args.before:
        variants.append(("before", Path(args.before).resolve()))
    print(HEADER)
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):
            for name, checkout in variants:
                results = Path(tmp) / f"{name}-{round_}.json"
                env = None
                argv = grade_argv(results, None if checkout else name, args.full)
                if checkout:  # an older grader: its own code, this checkout's data and venv
                    env = {**os.environ, "PYTHONPATH": str(checkout),
                           "HW3_DATA": str((REPO_ROOT / "datasets").resolve())}
                measured = timed(argv, cwd=checkout or REPO_ROOT, env=env)
                print(row(f"{name}, round {round_}", measured, score_of(results)), flush=True)


def spin(stop):
    while not stop.is_set():
        pass


def under_load(args) -> None:
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = Path(tmp) / "r.json"
            measured = timed(grade_argv(results, full=True))
            print(HEADER)
            print(row(f"full suite, {args.busy} busy processes", measured, score_of(results)), flush=True)
            failed = failures(measured["output"])
            if failed:
                print("\nFailed tests:\n\n```\n" + failed + "\n```")
    finally:
        stop.set()
        for process in spinners:
            process.join()


def grade_all(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "class"
        for i in range(args.copies):
            shutil.copytree(SOLUTION, folder / f"student{i + 1}", ignore=shutil.ignore_patterns("writeup"))
        out = Path(tmp) / "grades"
        measured = timed([sys.executable, "-m", "autograder", "grade-all", str(folder), "-o", str(out),
                          "-j", str(args.jobs)])
        print(HEADER)
        with open(out / "gradebook.csv") as f:
            for line in csv.DictReader(f):
                score = f"{line['total']} ({line['status']}{', regrade ' + line['regrade'] if line['regrade'] else ''})"
                print(row(f"grade-all -j {args.jobs}: {line['student']}", measured, score))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_isolation", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("overhead", help="each sandbox (and an older grader) on the same runs")
    p.add_argument("--before", metavar="CHECKOUT", help="an older checkout of this repository to compare with")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--isolations", default="namespaces,uid,none", metavar="M,M",
                   help="this grader's sandboxes to measure (default: all three)")
    p.add_argument("--full", action="store_true", help="the whole graded suite, not only the fast tests")
    p.set_defaults(run=overhead)
    p = verbs.add_parser("load", help="the full suite beside busy processes")
    p.add_argument("--busy", type=int, default=2)
    p.set_defaults(run=under_load)
    p = verbs.add_parser("grade-all", help="copies of the solution through grade-all")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--copies", type=int, default=2)
    p.set_defaults(run=grade_all)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
