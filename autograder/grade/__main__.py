"""``python -m autograder.grade SUBMISSION [-o results.json]``: the grade command on its own (what
run_autograder calls; the Gradescope zip ships autograder/grade without the rest of the tooling)."""
import argparse
import sys

from autograder.grade import cli


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.grade", description=__doc__.splitlines()[0])
    cli.configure(parser)
    return cli.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
