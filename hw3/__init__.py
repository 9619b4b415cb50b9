"""Provided code for Homework 3: data, training loops, plots and the experiment command line.

Student code lives in four files (cnn.py, contrastive.py, cvae.py, gan.py) inside an
implementation folder -- starter/ by default -- and is loaded through :mod:`hw3.impl`.
"""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
