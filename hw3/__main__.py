"""The experiment command line: ``python -m hw3 COMMAND [options]``; ``python -m hw3 COMMAND -h`` for help.

Each command is a module of this package exposing ``configure(parser)`` and ``run(args)``.
"""
import sys

from hw3.cli import run_command

COMMANDS = {
    "data": ("hw3.datasets_cli", "fetch and verify MNIST and LFW into datasets/"),
    "cnn": ("hw3.cnn_experiment", "Problem 1: train ConvNet, sweep the accuracy table"),
    "contrastive": ("hw3.contrastive_experiment", "Problem 2: Siamese network on MNIST, and LFW faces"),
    "judge": ("hw3.judge", "train or check the MNIST judge classifier that scores generated digits"),
    "cvae": ("hw3.cvae_experiment", "Problem 3: train the conditional VAE, sample the 10x10 grid"),
    "gan": ("hw3.gan_experiment", "Problem 4: train the DCGAN, save grids and loss curves"),
    "report": ("hw3.report", "run or reuse every experiment and write one report"),
    "submit": ("hw3.submit", "check your four files, run the fast tests, write the zip to upload"),
}


def main(argv=None) -> int:
    return run_command("python -m hw3", __doc__.splitlines()[0], COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
