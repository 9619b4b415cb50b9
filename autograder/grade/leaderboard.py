"""Gradescope's leaderboard: the metrics the training tests record, published per submission (opt-in).

Where the numbers come from: a training test calls ``hw3.testing.record_metric(name, value,
threshold)`` next to its assertion (e.g. ``"judge mean confidence"`` in tests/test_gan.py,
``"LFW pairsDevTest accuracy"`` in tests/test_contrastive.py). ``record_metric`` appends a JSON line to
the file ``$HW3_TEST_METRICS`` names; the grader sets it for each judge process (the test side, outside
the sandbox: the student's worker cannot see or write the file), reads it back when the process ends
(:func:`read_metrics`) and keeps only well-formed records of that problem's own tests.

A course chooses the metrics (``grade --leaderboard NAME``, repeatable; ``default`` names
:data:`DEFAULT_BOARD`); :func:`entries` turns the recorded values into Gradescope's ``leaderboard``
entries. Only visible tests' metrics are published (the leaderboard is shown to the whole class; a
hidden test's measurement is not), and a metric its test did not reach (not run, crashed before
measuring) is left out rather than shown as 0.
"""
import json
import math
from pathlib import Path

METRICS_FILE = "metrics.jsonl"   # in the judge process's private scratch folder
MAX_METRICS_BYTES = 64 * 1024    # what is read of it
MAX_RECORDS = 200
MAX_NAME = 200

# metric name as record_metric calls it -> the column title on Gradescope's leaderboard
DEFAULT_BOARD = {
    "judge mean confidence": "GAN judge confidence",
    "LFW pairsDevTest accuracy": "LFW verification accuracy",
}


def read_metrics(path, specs_by_id: dict) -> list:
    """The well-formed records of ``path`` (at most MAX_RECORDS, from its first MAX_METRICS_BYTES)
    whose test is one of ``specs_by_id`` (nodeid -> manifest spec): [{"nodeid", "name", "value",
    "higher_is_better", "visible"}]. Anything else is skipped; a missing file gives []."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_METRICS_BYTES)
    except OSError:
        return []
    records = []
    for line in data.decode("utf-8", "replace").splitlines()[:MAX_RECORDS]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        nodeid, name, value = record.get("test"), record.get("name"), record.get("value")
        spec = specs_by_id.get(nodeid) if isinstance(nodeid, str) else None
        if spec is None or not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        records.append({"nodeid": nodeid, "name": name, "value": float(value),
                        "higher_is_better": record.get("higher_is_better") is not False,
                        "visible": not spec.get("hidden") and spec.get("visibility", "visible") == "visible"})
    return records


def board_of(names) -> dict:
    """{metric name: column title} for the names a course chose (``default``: DEFAULT_BOARD)."""
    board = {}
    for name in names or ():
        if name == "default":
            board.update(DEFAULT_BOARD)
        else:
            board[name] = DEFAULT_BOARD.get(name, name)
    return board


def entries(metrics: list, board: dict) -> list:
    """Gradescope leaderboard entries, in ``board``'s order: {"name": title, "value": the last value a
    visible test recorded under that metric name (4 decimals), "order": "desc" when higher is better,
    else "asc"}."""
    latest = {}
    for record in metrics:
        if record["visible"] and record["name"] in board:
            latest[record["name"]] = record
    out = []
    for name, title in board.items():
        if name in latest:
            record = latest[name]
            out.append({"name": title, "value": round(record["value"], 4),
                        "order": "desc" if record["higher_is_better"] else "asc"})
    return out


def metrics_path(scratch: Path) -> Path:
    return Path(scratch) / METRICS_FILE
