"""What the four experiment commands (``python -m hw3 cnn|contrastive|cvae|gan``) share: the flags
every one takes, a full and a quick budget that flags override, the settings every summary.json
records (hw3/summary.py's REQUIRED_SETTINGS, then the command's own, then the device), and the
error exit."""
import sys
from pathlib import Path

from hw3 import impl
from hw3.device import default_device


def add_common_arguments(parser, problem: str, quick_help: str, out=None, seed_help="random seed (default: 0)"):
    """--impl, --out (default ``out``, else runs/PROBLEM), --seed and --quick (``quick_help``)."""
    parser.add_argument("--impl", metavar="FOLDER", default=None,
                        help=f"folder holding {problem}.py (default: ${impl.ENV_VAR}, else starter)")
    parser.add_argument("--out", metavar="DIR", type=Path, default=out or Path("runs", problem),
                        help=f"output folder (default: runs/{problem})")
    parser.add_argument("--seed", type=int, default=0, help=seed_help)
    parser.add_argument("--quick", action="store_true", help=quick_help)


def add_budget_arguments(parser, full: dict, quick: dict, flags: dict, prefix: str = ""):
    """One flag --PREFIX-KEY per KEY of ``flags`` ({key: (type, help)} or (type, help, a note on the
    default)), which ``chosen_budget`` puts in the budget's place; its help ends with the full
    budget's value and, where it differs, the quick one's."""
    for key, (kind, words, *note) in flags.items():
        values = ", ".join([f"default: {shown(full[key])}", *note])
        if quick[key] != full[key]:
            values += f"; --quick: {shown(quick[key])}"
        parser.add_argument("--" + (prefix + key).replace("_", "-"), type=kind, default=None,
                            metavar="N" if kind is int else None, help=f"{words} ({values})")


def shown(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def chosen_budget(args, full: dict, quick: dict, prefix: str = "") -> dict:
    """The mode's budget (``quick`` with --quick, else ``full``), each value a flag --PREFIX-KEY gives
    (even 0, so that the command's checks see it) in its place."""
    budget = dict(quick if args.quick else full)
    for key in budget:
        value = getattr(args, prefix + key, None)
        if value is not None:
            budget[key] = value
    return budget


def run_settings(args, **more) -> dict:
    """A summary's ``settings``: impl, quick and seed, then ``more``, then the device."""
    return dict(impl=str(impl.impl_dir(args.impl)), quick=args.quick, seed=args.seed, **more,
                device=str(default_device()))


def fail(message: str, status: int = 1) -> int:
    """Print ``error: MESSAGE`` to stderr; the command's exit status."""
    print(f"error: {message}", file=sys.stderr)
    return status
