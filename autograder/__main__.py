"""``python -m autograder COMMAND``: instructor tooling for Homework 3.

Each command is a module exposing ``configure(parser)`` and ``run(args)``: the verb's package
(``autograder/<verb>/``), except ``grade``, whose package is the grader itself and ships to
Gradescope: its command line is ``autograder/grade/cli.py``.
"""
import argparse
import importlib
import sys

COMMANDS = {
    "assign": ("autograder.assign", "generate starter/ from solution/"),
    "grade": ("autograder.grade.cli", "grade one submission (folder or .zip) in isolated processes"),
    "grade-all": ("autograder.grade_all", "grade a folder of submissions into a gradebook CSV"),
    "build": ("autograder.build", "write the Gradescope autograder.zip"),
    "release": ("autograder.release", "write the student bundle (folder or .zip)"),
    "similarity": ("autograder.similarity", "compare every pair of submissions per problem for copied code"),
    "validate": ("autograder.validate", "grade solution, starter and every catalogue variant; check the verdicts"),
    "flakiness": ("autograder.flakiness", "rerun the training tests on the solution over many seeds"),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        modules[name] = importlib.import_module(module_name)
        modules[name].configure(commands.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
