"""Derived data the graded tests read, built by the trusted grader before any student code runs.

The sandboxed test processes cannot write the data folder (they run as other uids; and a cache that
one student's code could write would be read by the next student's tests), so whatever a test would
otherwise build lazily and cache is built here, readable by everyone: today, the preprocessed LFW
tensor of the contrastive extra-credit test.

Called by the manifest collection (``--hw3-manifest``: only for the selected tests), by ``build``
(the zip ships the result) and by the zip's setup.sh (``python -m autograder.grade.prepare``).
"""
import os
import sys


def lfw_cache():
    """The LFW tensor the contrastive experiment and its extra-credit test load (built if missing)."""
    from hw3.contrastive_training import LFW_CROP, LFW_SIZE
    from hw3.loaders import lfw_cache_path, load_lfw_images
    path = lfw_cache_path(LFW_SIZE, LFW_CROP, True)
    if not path.is_file():
        load_lfw_images(size=LFW_SIZE, crop=LFW_CROP, grayscale=True)
    return path


def needs_lfw(spec) -> bool:
    return spec["problem"] == "contrastive" and spec["extra_credit"] and "training" in spec["tags"]


# (name, which selected tests need it, builder returning the file it made)
PREPARERS = [
    ("LFW cache", needs_lfw, lfw_cache),
]


def prepare(specs=None) -> tuple:
    """Build what the given test specs (all, if None) need. Returns (files, warnings)."""
    files, warnings = [], []
    for name, needed, build in PREPARERS:
        if specs is not None and not any(needed(spec) for spec in specs):
            continue
        try:
            path = build()
            os.chmod(path, 0o644)  # the sandboxed test processes run as other users
            files.append(path)
        except Exception as error:  # a missing dataset: the tests that need it will say so too
            warnings.append(f"could not prepare the {name}: {type(error).__name__}: {error}")
    return files, warnings


def main() -> int:
    files, warnings = prepare()
    for path in files:
        print(f"prepare: {path} ready")
    for warning in warnings:
        print(f"prepare: error: {warning}", file=sys.stderr)
    return 1 if warnings else 0


if __name__ == "__main__":
    sys.exit(main())
