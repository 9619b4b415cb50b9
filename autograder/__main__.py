"""``python -m autograder COMMAND``: instructor tooling for Homework 3.

Each command is a module exposing ``configure(parser)`` and ``run(args)``: the verb's package
(``autograder/<verb>/``), except ``grade``, whose package is the grader itself and ships to
Gradescope: its command line is ``autograder/grade/cli.py``.
"""
import sys

from hw3.cli import run_command

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
    return run_command("python -m autograder", __doc__.splitlines()[0], COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
