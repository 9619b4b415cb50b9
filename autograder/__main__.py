"""``python -m autograder COMMAND``: instructor tooling for Homework 3."""
import argparse
import sys

from autograder import assign


def cmd_assign(args) -> int:
    if args.check:
        stale = assign.stale_files()
        if stale:
            print(f"starter/ is out of date with solution/: {', '.join(stale)}\n"
                  f"  Fix: run `python -m autograder assign` and commit starter/", file=sys.stderr)
            return 1
        print("starter/ is in sync with solution/")
        return 0
    for path in assign.write_starter():
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("assign", help="generate starter/ from solution/")
    p.add_argument("--check", action="store_true", help="only check that starter/ is up to date (exit 1 if not)")
    p.set_defaults(func=cmd_assign)
    from autograder.validate import flakiness, runner  # validate + flakiness (issue 8)
    p = commands.add_parser("validate", help="grade solution, starter and every catalogue variant; check the verdicts")
    runner.configure(p)
    p.set_defaults(func=runner.main)
    p = commands.add_parser("flakiness", help="rerun the training tests on the solution over many seeds")
    flakiness.configure(p)
    p.set_defaults(func=flakiness.main)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except assign.AssignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
