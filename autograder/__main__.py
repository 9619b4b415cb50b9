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
    from autograder.grade import cli as grade_cli  # grade, grade-all, build, release (issue 7)
    p = commands.add_parser("grade", help="grade one submission (folder or .zip) in isolated processes")
    grade_cli.configure_grade(p)
    p.set_defaults(func=grade_cli.run_grade)
    p = commands.add_parser("grade-all", help="grade a folder of submissions into a gradebook CSV")
    grade_cli.configure_grade_all(p)
    p.set_defaults(func=grade_cli.run_grade_all)
    from autograder import build, release
    p = commands.add_parser("build", help="write the Gradescope autograder.zip")
    build.configure(p)
    p.set_defaults(func=build.run)
    p = commands.add_parser("release", help="write the student bundle (folder or .zip)")
    release.configure(p)
    p.set_defaults(func=release.run)
    from autograder import similarity  # issue 18
    p = commands.add_parser("similarity", help="compare every pair of submissions per problem for copied code")
    similarity.configure(p)
    p.set_defaults(func=similarity.run)
    from autograder import flakiness
    from autograder.validate import runner  # validate + flakiness (issue 8)
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
