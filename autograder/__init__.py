"""Instructor tooling for Homework 3, one subpackage per verb (assign, grade, build, release, ...).

``python -m autograder --help`` lists the commands; each is a thin layer over the subpackage's API.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTION_DIR = REPO_ROOT / "solution"
STARTER_DIR = REPO_ROOT / "starter"
