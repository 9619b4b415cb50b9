"""The report's runner: run each experiment (or reuse its earlier outputs) and read its summary.json.

Each experiment runs as a subprocess ``python -m hw3 <problem> --impl FOLDER --out OUT/<problem>
--seed N`` (plus ``--quick``, and the problem's ``--experiment-args``), so one problem that crashes
or is not implemented does not stop the others; its output goes to ``OUT/logs/<problem>.log``. What
the run was asked (implementation folder, quick, seed) is read back from its summary.json
(hw3/summary.py), which is the only record: the report keeps none of its own.
"""
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw3 import REPO_ROOT, impl
from hw3.summary import FILE, SummaryError, read_summary

LONGEST_FIRST = ("gan", "contrastive", "cnn", "cvae")  # typical running times, longest first (for --jobs)
NOT_IMPLEMENTED = re.compile(r"not implemented|NotImplementedError", re.IGNORECASE)


@dataclass
class Outcome:
    """What happened to one problem's experiment; ``summary`` is its summary.json once it ran."""
    problem: str
    status: str  # "ok", "not implemented" or "failed"
    message: str = ""
    seconds: float = 0.0
    reused: bool = False
    log_tail: str = ""
    command: list = field(default_factory=list)
    summary: dict = None
    folder: Path = None  # OUT/<problem>, where the summary's paths start

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def quick(self) -> bool:
        return bool(self.summary and self.summary["settings"]["quick"])


def experiment_command(problem: str) -> list:
    """The command line that runs one experiment (tests replace it by a fake experiment)."""
    return [sys.executable, "-m", "hw3", problem]


def error_line(output: str) -> str:
    """The most telling line of a failed run: its last "error: ..." line (the experiments' one-line
    errors), else the exception line that ends a traceback, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return line
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line):
            return line
    return lines[-1] if lines else "(no output)"


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def reuse(run_dir: Path, folder: Path, quick: bool, seed: int) -> tuple:
    """(summary, note) when RUN_DIR's summary.json came from this implementation folder and seed, in
    this mode or in full mode (full outputs serve a quick report, quick ones never a full one);
    (None, why not) otherwise."""
    try:
        summary = read_summary(run_dir)
    except SummaryError as error:
        return None, str(error)
    settings = summary["settings"]
    if Path(settings["impl"]).resolve() != folder:
        return None, f"earlier outputs came from {settings['impl']}"
    if settings["quick"] and not quick:
        return None, "earlier outputs came from a quick run"
    if settings["seed"] != seed:
        return None, f"earlier outputs came from seed {settings['seed']}"
    mode = "quick" if settings["quick"] else "full"
    return summary, f"reused the outputs written {summary.get('written', '(time not recorded)')} ({mode} mode)"


def run_experiment(problem: str, folder: Path, out: Path, quick: bool, seed: int, timeout, extra_args,
                   threads: int = None) -> Outcome:
    """Run ``python -m hw3 <problem>`` as a subprocess, its output to OUT/logs/<problem>.log."""
    run_dir = out / problem
    log = out / "logs" / f"{problem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = experiment_command(problem) + ["--impl", str(folder), "--out", str(run_dir), "--seed", str(seed)]
    command += (["--quick"] if quick else []) + list(extra_args)
    stale = run_dir / FILE
    stale.unlink(missing_ok=True)  # never report the outputs of an earlier run as this run's
    env = dict(os.environ, **{impl.ENV_VAR: str(folder)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if threads:  # experiments side by side share the cores instead of each taking them all
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    with open(log, "w") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        try:
            returncode = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    outcome = Outcome(problem, "failed", seconds=time.monotonic() - start, command=command, folder=run_dir)
    output = log.read_text(errors="replace")
    outcome.log_tail = tail(output)
    if returncode is None:
        outcome.message = f"stopped after the time limit of {timeout} s (--timeout)"
    elif returncode < 0:  # killed: its last line is whatever it printed before, not an error
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        outcome.message = f"the experiment was killed by {name} (out of memory, or stopped by hand?)"
    elif returncode > 0:
        outcome.message = error_line(output)
        outcome.status = "not implemented" if NOT_IMPLEMENTED.search(outcome.message) else "failed"
    else:
        try:
            outcome.summary, outcome.status = read_summary(run_dir), "ok"
        except SummaryError as error:
            outcome.message = f"the experiment exited normally, but {error}"
    return outcome
