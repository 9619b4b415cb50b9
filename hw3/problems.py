"""The four problems of the assignment: the one list every other module reads.

Each problem has a name (the student file's stem, the name of its command and of its grades), a
handout number and title, its points (extra credit aside), and its graded test files in tests/: the
visible test_<name>.py and the hidden hidden/test_<name>_hidden.py (only the autograder has those).
"""
from dataclasses import dataclass
from pathlib import Path

POINTS_PER_PROBLEM = 25   # extra credit aside


@dataclass(frozen=True)
class Problem:
    name: str       # "cnn"
    number: int     # 1 (handout/problem1.md)
    title: str
    points: float = POINTS_PER_PROBLEM

    @property
    def student_file(self) -> str:
        """The file students write, e.g. "cnn.py"."""
        return f"{self.name}.py"

    @property
    def test_file(self) -> str:
        """The visible graded tests, relative to tests/."""
        return f"test_{self.name}.py"

    @property
    def hidden_test_file(self) -> str:
        """The hidden graded tests, relative to tests/ (not in the student bundle)."""
        return f"hidden/test_{self.name}_hidden.py"


PROBLEMS = (
    Problem("cnn", 1, "Convolutional networks"),
    Problem("contrastive", 2, "Siamese networks and the contrastive loss"),
    Problem("cvae", 3, "Conditional variational autoencoders"),
    Problem("gan", 4, "Generative adversarial networks"),
)
NAMES = tuple(p.name for p in PROBLEMS)                  # ("cnn", "contrastive", "cvae", "gan")
STUDENT_FILES = tuple(p.student_file for p in PROBLEMS)  # ("cnn.py", ...)
BY_NAME = {p.name: p for p in PROBLEMS}


def graded_test_files(tests_dir: Path, problems=NAMES) -> list:
    """The graded test files present in ``tests_dir``, grouped by problem: visible first, then hidden."""
    files = []
    for name in problems:
        for rel in (BY_NAME[name].test_file, BY_NAME[name].hidden_test_file):
            if (Path(tests_dir) / rel).is_file():
                files.append(Path(tests_dir) / rel)
    return files
