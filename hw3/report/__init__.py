"""``python -m hw3 report``: run (or reuse) the four experiments and write ONE self-contained report.

    python -m hw3 report --impl starter --quick         # every deliverable, each experiment's --quick budget
    python -m hw3 report --impl starter                 # the writeup's full budgets (~35 min on 2 cores)
    python -m hw3 report --reuse                        # reuse outputs already in runs/<problem>/

The contract between the experiments and the report is hw3/summary.py: every experiment writes
``OUT/<problem>/summary.json`` (settings, metrics, outputs by id) and declares which output ids make
the writeup's deliverables; the report looks them up by id and names each missing one. This package:
the command (here), the runner (``runner``: runs the experiments, reuses their outputs) and the
renderer (``render``: HTML, figures embedded as base64 PNGs, or with ``--format md`` Markdown with its
PNGs in ``<report>_files/``).

A problem whose student code is not implemented, or whose experiment fails, gets a section saying
so (with the experiment's own error line and the end of its log); the report is written anyway.
The exit status is 0 when the report was written, whatever the problems' outcome; with
``--strict`` it is 1 when any selected problem did not run to the end or lacks a required
deliverable. Usage errors (a missing implementation folder, an unknown problem, an output folder that
cannot be written) exit with status 2, before any experiment runs.

With ``--reuse``, an experiment runs again unless its summary.json came from this implementation
folder and seed, in this mode or in full mode (full outputs serve a quick report), and the report
gives it no ``--experiment-args`` (those always run it again): the summary is the only record.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hw3 import REPO_ROOT, impl
from hw3.files import UMASK, probe_writable, write_atomically
from hw3.problems import BY_NAME, NAMES
from hw3.report.deliverables import absent, found
from hw3.report.render import IMAGE_TYPES, render, show
from hw3.report.runner import LONGEST_FIRST, Outcome, reuse, run_experiment

# Two experiments side by side, one thread each on 2 cores. A quick report on the solution (with the
# smaller budgets the report passed before each experiment's own --quick served), on a 2-core machine
# at load ~7: --jobs 1 (two threads each) 715 s CPU, 17.5 min; --jobs 2 190 s CPU, 9.5 min. Small
# batches parallelize badly inside torch, and its idle threads spin on a busy machine.
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


def configure(parser):
    parser.add_argument("--impl", metavar="FOLDER", default=None,
                        help=f"implementation folder (default: ${impl.ENV_VAR}, else starter)")
    parser.add_argument("--out", metavar="DIR", default=str(REPO_ROOT / "runs"),
                        help="experiments write OUT/<problem>/, the report is OUT/report.html (default: runs)")
    parser.add_argument("--quick", action="store_true",
                        help="each experiment's own --quick budget: every deliverable, small budgets")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse OUT/<problem>/ where its summary.json is of this implementation, seed and "
                             "mode (full outputs also serve --quick) instead of running the experiment again")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 unless every selected problem ran and has every required "
                             "deliverable (extra credit is optional)")
    parser.add_argument("--only", metavar="PROBLEM", action="append", choices=list(NAMES),
                        help="report on this problem only (repeatable; default: all four)")
    parser.add_argument("--seed", type=int, default=0, help="passed on to every experiment (default: 0)")
    parser.add_argument("--format", choices=("html", "md"), default="html",
                        help="html: one file with embedded figures (default); md: Markdown with PNGs beside it")
    parser.add_argument("--report", metavar="FILE", default=None,
                        help="where to write the report (default: OUT/report.html, or OUT/report.md with "
                             "--format md, whose figures go to the folder <FILE without .md>_files beside it)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop an experiment that runs longer than this; it is reported as failed "
                             "(default: no limit)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                        help="run up to N experiments at once, sharing the CPU cores, each with its share of "
                             f"the threads (default: {DEFAULT_JOBS}; 1: one after the other with every core)")
    parser.add_argument("--experiment-args", metavar="PROBLEM=ARGS", action="append", default=[],
                        help="extra arguments for one experiment, e.g. --experiment-args 'gan=--iterations 300' "
                             "(repeatable; that experiment then always runs again)")


def parse_experiment_args(values) -> dict:
    extra = {p: [] for p in NAMES}
    for value in values:
        problem, _, text = value.partition("=")
        if problem not in NAMES or not _:
            raise ValueError(f"--experiment-args {value!r}: expected PROBLEM=ARGS with PROBLEM one of "
                             f"{', '.join(NAMES)}")
        extra[problem] += text.split()
    return extra


def resolve(value: str) -> Path:
    """A folder named on the command line: relative to the current folder, else to the repository."""
    path = Path(value).expanduser()
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path


def writable(folder: Path) -> str:
    """"" when files can be written into ``folder`` (created if need be), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_writable(folder)
    except OSError as error:
        return error.strerror or str(error)
    return ""


def device_name() -> str:
    import torch
    return "CUDA" if torch.cuda.is_available() else "CPU"


def run_all(args, folder: Path, out: Path, extra: dict) -> list:
    """Every selected problem's Outcome, in problem order; side by side, the longest start first."""
    problems = [p for p in NAMES if not args.only or p in args.only]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def one(index_problem):
        index, problem = index_problem
        prefix = f"[{index}/{len(problems)}] {problem}:"
        summary, note = (reuse(out / problem, folder, args.quick, args.seed)
                         if args.reuse and not extra[problem] else (None, ""))
        if summary is not None:
            print(f"{prefix} {note}", flush=True)
            return Outcome(problem, "ok", note, reused=True, summary=summary, folder=out / problem)
        shown = " ".join(["python -m hw3", problem] + (["--quick"] if args.quick else []) + extra[problem])
        print(f"{prefix} running {shown} (log: {show(out / 'logs' / (problem + '.log'))})", flush=True)
        outcome = run_experiment(problem, folder, out, args.quick, args.seed, args.timeout, extra[problem], threads)
        print(f"{prefix} {outcome.status} in {outcome.seconds:.0f} s"
              f"{': ' + outcome.message if outcome.message else ''}", flush=True)
        return outcome

    order = sorted(enumerate(problems, 1), key=lambda ip: LONGEST_FIRST.index(ip[1]) if args.jobs > 1 else ip[0])
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads only wait for subprocesses
        finished = dict(zip([p for _, p in order], pool.map(one, order)))
    return [finished[p] for p in problems]


def describe(outcome, deliverable) -> str:
    """A missing deliverable's label, with the output ids it lacks when its experiment ran."""
    if not outcome.ok:
        return deliverable.label
    ids = ", ".join(repr(error.output_id) for error in found(outcome, deliverable)[1])
    return f"{deliverable.label} (no output {ids})"


def run(args) -> int:
    try:
        folder = impl.impl_dir(resolve(args.impl) if args.impl else None)
        extra = parse_experiment_args(args.experiment_args)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    except (impl.ImplementationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser().resolve()
    target = Path(args.report).expanduser().resolve() if args.report else out / f"report.{args.format}"
    for needed in dict.fromkeys([out, target.parent]):  # before any experiment spends minutes
        problem = writable(needed)
        if problem:
            print(f"error: cannot write the report's outputs to {show(needed)}: {problem}", file=sys.stderr)
            return 2
    outcomes = run_all(args, folder, out, extra)

    files_dir = target.with_name(target.stem + "_files") if args.format == "md" else None
    if files_dir is not None and files_dir.is_dir():
        for old in files_dir.iterdir():  # only the figures an earlier report copied there
            if old.is_file() and old.name.split("-")[0] in NAMES and old.suffix.lower() in IMAGE_TYPES:
                old.unlink()
    text = render(outcomes, folder, out, args.quick, args.seed, args.format, files_dir, device_name())
    write_atomically(target, text, mode=UMASK)  # a report is an ordinary file, as open() would make it
    for o in outcomes:  # name every deliverable the report lacks, and why
        missing = absent(o)
        if missing:
            why = f"{o.status}: {o.message}" if not o.ok else "not among its outputs"
            print(f"warning: Problem {BY_NAME[o.problem].number} ({o.problem}) {why}; missing deliverables: "
                  f"{'; '.join(describe(o, d) for d in missing)}", file=sys.stderr)
    incomplete = [o.problem for o in outcomes if absent(o)]
    print(f"report written to {show(target)}"
          + (f" (incomplete: {', '.join(incomplete)})" if incomplete else " (every deliverable present)"))
    failed = [o.problem for o in outcomes if absent(o, extra_credit=False)]
    return 1 if args.strict and failed else 0
