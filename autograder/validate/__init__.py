"""``python -m autograder validate``: prove the graded tests catch wrong code and pass right code.

The command line only. The cases, the engines and the verdicts are :mod:`autograder.validate.runner`;
the variants and their catalogues are :mod:`autograder.validate.variants` and ``catalogue_*.py``;
the in-process cheating attempts are :mod:`autograder.validate.tricks`.
"""
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from autograder.validate.runner import CHECK, NOT_CAUGHT_FAST, markdown, table, validate
from autograder.validate.variants import MODULES


def configure(parser):
    parser.add_argument("--problem", action="append", choices=MODULES, metavar="M",
                        help=f"only this problem (repeatable; one of {', '.join(MODULES)}); default: all four")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="cases graded in parallel (default 1; each runs its own test processes)")
    parser.add_argument("--fast", action="store_true",
                        help="skip the training tests (a quick local check; a wrong variant that only they "
                             "catch is reported as 'not caught by fast tests', not as a failure)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads per test process ($OMP_NUM_THREADS; default: unset with -j 1, "
                             "else the number of cores divided by -j, at least 1)")
    parser.add_argument("--engine", choices=("grader", "warm"), default="grader",
                        help="grader (default): each run through autograder.grade.grade, exactly as on Gradescope; "
                             "warm: the grader's scoring in children forked from a process that imported torch "
                             "once -- about twice as fast, no sandbox (see autograder/validate/warm.py)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the outcomes as JSON here")
    parser.add_argument("--markdown", metavar="FILE", type=Path, help="also write the table as Markdown here")


def run(args) -> int:
    from autograder.grade import GradeError
    if args.jobs < 1:
        print("error: -j must be at least 1", file=sys.stderr)
        return 2
    try:
        threads = args.threads or (max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1
                                   and not os.environ.get("OMP_NUM_THREADS") else None)
        report = validate(args.problem, jobs=args.jobs, fast_only=args.fast, threads=threads, engine=args.engine)
    except GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    outcomes = report["outcomes"]
    print()
    print(table(outcomes))
    for check in report["checks"]:
        print(f"{CHECK}: {check}")
    bad = [o for o in outcomes if o.failed]
    unchecked = [o for o in outcomes if o.verdict == NOT_CAUGHT_FAST]
    print(f"\n{len(outcomes)} case(s), {len(bad)} wrong verdict(s), {len(report['checks'])} failed check(s)"
          + (f", {len(unchecked)} wrong variant(s) left to the training tests" if unchecked else "")
          + f"; {report['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"outcomes": [asdict(o) for o in outcomes], "checks": report["checks"],
                                         "failed": report["failed"], "seconds": report["seconds"],
                                         "load": report["load"], "fast": args.fast, "jobs": args.jobs,
                                         "engine": args.engine}, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(report, "python -m autograder validate " + " ".join(sys.argv[2:])))
    return 1 if report["failed"] else 0
