"""The command table behind ``python -m hw3`` (and the course staff's own tools): each command is a
module exposing ``configure(parser)`` and ``run(args)``; the table maps its name to the module and a
help line.
"""
import argparse
import importlib


def run_command(prog: str, description: str, commands: dict, argv=None) -> int:
    """Parse ``argv`` against ``commands`` ({name: (module name, help line)}) and run the one chosen."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, (module_name, help_text) in commands.items():
        modules[name] = importlib.import_module(module_name)
        modules[name].configure(subparsers.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    return modules[args.command].run(args) or 0
