"""Command-line layer of ``grade`` (used by ``python -m autograder grade`` and by ``python -m autograder.grade``,
which is what run_autograder calls on Gradescope); its options shared with ``grade-all`` (autograder/grade_all/)."""
import argparse
import json
import sys
from pathlib import Path

from autograder.grade import (DEFAULT_MEMORY_MB, DEFAULT_TIME_LIMIT, DEVICES, FULL_BUDGET_TIME_LIMIT, TESTS_DIR,
                              GradeError, SubmissionError, grade, sandbox)


def safe_console():
    """Nothing a submission wrote can crash our printing (lone surrogates, odd encodings)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass


def add_common_options(parser):
    """The options of both grade and grade-all: which tests, the limits, the sandbox, the leaderboard."""
    parser.add_argument("-k", metavar="EXPR", dest="keyword",
                        help="only the tests matching this pytest -k expression (e.g. 'gan', 'not training')")
    parser.add_argument("-m", metavar="MARKEXPR", dest="markexpr",
                        help="only the tests matching this pytest -m expression (e.g. 'not training')")
    parser.add_argument("--tests", metavar="DIR", type=Path, default=TESTS_DIR,
                        help=f"the tests folder (default: {TESTS_DIR})")
    parser.add_argument("--time-limit", metavar="SECONDS", type=float, default=None,
                        help=f"whole-run limit per submission (default {DEFAULT_TIME_LIMIT:g}; with --full-budget "
                             f"{FULL_BUDGET_TIME_LIMIT:g})")
    parser.add_argument("--memory-mb", metavar="MB", type=int, default=DEFAULT_MEMORY_MB,
                        help=f"address-space cap of each test process in MB, 0 for none (default {DEFAULT_MEMORY_MB})")
    parser.add_argument("--isolation", choices=("auto", *sandbox.MODES), default="auto",
                        help="how student code is contained: auto (default: namespaces; as root, grading refuses "
                             "to start without them), namespaces (bubblewrap), uid (root only: a private uid, "
                             "no namespaces), none (trusted code only: runs as you)")
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where the student's code trains: cpu (default; CUDA hidden) or cuda (this machine's "
                             "GPU; refused where torch sees none)")
    parser.add_argument("--full-budget", action="store_true",
                        help="with --device cuda: grade the full-budget tests too (each experiment's full mode), "
                             "as extra points beyond each problem's 25 (their weights: autograder/README.md)")
    parser.add_argument("--leaderboard", metavar="METRIC", action="append", default=[],
                        help="publish this recorded metric (hw3.testing.record_metric's name) on Gradescope's "
                             "leaderboard; repeatable; 'default': the GAN's judge confidence and the LFW "
                             "verification accuracy (off unless given)")


def configure(parser):
    parser.add_argument("submission", metavar="SUBMISSION", nargs="?",
                        help="a folder or .zip holding any of cnn.py, contrastive.py, cvae.py, gan.py")
    parser.add_argument("-o", "--output", metavar="RESULTS_JSON", type=Path,
                        help="write Gradescope's results.json here (atomically)")
    add_common_options(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the total")
    parser.add_argument("--manifest", type=Path, help=argparse.SUPPRESS)  # grade-all's shared test list
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)       # grade-all: submission and output


def whole_run_limit(args) -> float:
    """--time-limit, else its default for the mode (the full-budget tests need hours of timeouts)."""
    if args.time_limit is not None:
        return args.time_limit
    return FULL_BUDGET_TIME_LIMIT if args.full_budget else DEFAULT_TIME_LIMIT


def run(args) -> int:
    safe_console()
    args.time_limit = whole_run_limit(args)
    if args.time_limit <= 0 or args.memory_mb < 0:
        print("error: --time-limit must be positive and --memory-mb at least 0", file=sys.stderr)
        return 2
    if args.job:  # grade-all names the submission in a root-only file, never on a visible command line
        job = json.loads(args.job.read_text())
        args.submission, args.output = job["submission"], Path(job["output"])
    if not args.submission:
        print("error: name the SUBMISSION to grade (a folder or .zip)", file=sys.stderr)
        return 2
    manifest = json.loads(args.manifest.read_text()) if args.manifest else None
    log = (lambda message: None) if args.quiet else (lambda message: print(f"grade: {message}", flush=True))
    try:
        report = grade(args.submission, args.output, tests_dir=args.tests, keyword=args.keyword,
                       markexpr=args.markexpr, manifest=manifest, time_limit=args.time_limit,
                       memory_mb=args.memory_mb, isolation=args.isolation, board=args.leaderboard, log=log,
                       device=args.device, full_budget=args.full_budget)
    except (GradeError, SubmissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.quiet:
        print(f"{report.score:g} points")
    else:
        print(report.table())
        for line in report.log:
            print(f"  log: {line}")
        print(f"\n{report.score:g} points in {report.seconds:.0f} s" +
              (f"; results written to {args.output}" if args.output else " (-o FILE writes Gradescope results)"))
    return 0
