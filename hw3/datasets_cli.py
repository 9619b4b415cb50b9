"""``python -m hw3 data``: the dataset step that setup.sh runs."""
import sys

from hw3.datasets import DATASETS, MIRROR_ENV_VAR, DatasetError, data_root, fetch


def configure(parser):
    parser.add_argument("--mirror", metavar="FOLDER",
                        help=f"offline mirror laid out like datasets/ (default: ${MIRROR_ENV_VAR}; "
                             "without one, download from the canonical sources)")
    parser.add_argument("--only", choices=sorted(DATASETS), action="append",
                        help="fetch only this dataset (repeatable; default: all)")


def run(args):
    try:
        for name in args.only or DATASETS:
            fetch(name, data_root(), mirror=args.mirror)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
