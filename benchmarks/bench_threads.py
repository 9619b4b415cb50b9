"""Which torch thread policy the graded training runs should use, idle and on a busy machine.

    .venv/bin/python -m benchmarks.bench_threads --busy 0,4 --rounds 2
    .venv/bin/python -m benchmarks.bench_threads --busy 2 --policies "2 threads, short spin;1 thread"

Each cell is one fresh process that trains the reference solution with a provided training loop
(the GAN: ``train_gan``, 40 iterations of 128; the CVAE: ``train_cvae``, 300 iterations of 128;
each a sixth of its graded budget) under one policy:
  1 thread:            torch.set_num_threads(1)
  N threads:           one per core (what the grader gives a grading that has the machine)
  N threads, passive:  the same with OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep at once
                       instead of spinning first)
  N threads, short spin: GOMP_SPINCOUNT=10000 (libgomp's default spins 300000 times before it sleeps)
while ``--busy`` processes spin on the CPU beside it. Policies are interleaved round by round so the
machine's drift affects each alike; the table gives wall seconds per cell.
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

WORKLOADS = {  # problem: the training call, timed after the imports
    "gan": "hw3.gan_experiment.train_gan(impl.load('gan', 'solution'), 40, 128, snapshot_at=(), show_progress=False)",
    "cvae": "hw3.cvae_experiment.train_cvae(impl.load('cvae', 'solution'), 300, 128, show_progress=False)",
}


def policies(cores: int) -> dict:
    return {"1 thread": (1, {}), f"{cores} threads": (cores, {}),
            f"{cores} threads, passive": (cores, {"OMP_WAIT_POLICY": "PASSIVE"}),
            f"{cores} threads, short spin": (cores, {"GOMP_SPINCOUNT": "10000"})}


def timed_cell(workload: str, threads: int, extra_env: dict) -> float:
    code = (f"import time, torch, hw3.{workload}_experiment; from hw3 import impl; torch.set_num_threads({threads}); "
            f"start = time.monotonic(); {WORKLOADS[workload]}; print(time.monotonic() - start)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": str(threads), **extra_env}
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return float(run.stdout.split()[-1])


def spin(stop):
    while not stop.is_set():
        pass


def table(busy: int, rounds: int, chosen: dict) -> None:
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        cells = {}
        for _ in range(rounds):
            for workload in WORKLOADS:
                for name, (threads, env) in chosen.items():
                    cells.setdefault((workload, name), []).append(timed_cell(workload, threads, env))
        for (workload, name), seconds in cells.items():
            shown = " / ".join(f"{s:.1f}" for s in seconds)
            print(f"| {busy} | {workload} | {name} | {shown} |", flush=True)
    finally:
        stop.set()
        for process in spinners:
            process.join()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_threads", description=__doc__.splitlines()[0])
    parser.add_argument("--busy", default="0,4", help="comma-separated counts of spinning processes beside it")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument("--policies", help="semicolon-separated policy names to run (default: all)")
    args = parser.parse_args(argv)
    print(f"load {os.getloadavg()[0]:.2f} at {time.strftime('%H:%M UTC', time.gmtime())}, {args.cores} cores\n")
    print("| busy processes | training | policy | wall s per round |\n|---|---|---|---|")
    chosen = policies(args.cores)
    if args.policies:
        names = args.policies.split(";")
        unknown = [name for name in names if name not in chosen]
        if unknown:
            parser.error(f"unknown policy {unknown[0]!r}: choose from {', '.join(map(repr, chosen))}")
        chosen = {name: chosen[name] for name in names}
    for busy in (int(b) for b in args.busy.split(",")):
        table(busy, args.rounds, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
