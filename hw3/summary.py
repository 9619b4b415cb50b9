"""The one ``summary.json`` every experiment writes and the report reads: its schema, writer and reader.

    {"problem": "gan",
     "settings": {"impl": "/abs/path/solution", "quick": false, "seed": 0, ...},   # how the run was made
     "metrics": {...},                                                          # what it measured
     "outputs": {"grid_iter0250": {"path": "grid_iter0250.png", "caption": "..."}, ...},
     "notes": ["..."],
     "written": "2026-12-01T17:00:00"}

Every file the experiment wrote is an output, by id, its path relative to the summary's folder.
Each experiment declares, in ``DELIVERABLES``, which outputs make the deliverables of the writeup
(``Deliverable``: the writeup's name for it and the output ids it consists of); the report looks those
ids up with ``output`` and names the id when one is missing. ``settings`` always holds ``impl``,
``quick`` and ``seed``: the report reuses earlier outputs by them.
"""
import datetime
import json
from dataclasses import dataclass
from pathlib import Path

FILE = "summary.json"
REQUIRED_SETTINGS = ("impl", "quick", "seed")


@dataclass(frozen=True)
class Deliverable:
    """One deliverable of the writeup: its name, and the ids of the outputs that make it."""
    label: str
    ids: tuple
    extra_credit: bool = False


class SummaryError(Exception):
    """A summary.json that is absent, unreadable or not of this schema."""


class MissingOutput(SummaryError):
    """An output id that a summary does not list, or whose file is gone."""

    def __init__(self, output_id: str, why: str):
        super().__init__(f"output {output_id!r}: {why}")
        self.output_id = output_id


def write_summary(out, problem: str, settings: dict, metrics: dict, outputs: dict, notes=()) -> Path:
    """Write OUT/summary.json. ``outputs``: id -> (path, caption), each path a file under ``out``."""
    out = Path(out)
    missing = [k for k in REQUIRED_SETTINGS if k not in settings]
    if missing:
        raise ValueError(f"settings lack {missing}")
    entries = {}
    for output_id, (path, caption) in outputs.items():
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"output {output_id!r}: {path} was not written")
        entries[output_id] = {"path": str(path.resolve().relative_to(out.resolve())), "caption": caption}
    summary = {"problem": problem, "settings": settings, "metrics": metrics, "outputs": entries,
               "notes": list(notes), "written": datetime.datetime.now().isoformat(timespec="seconds")}
    target = out / FILE
    target.write_text(json.dumps(summary, indent=2) + "\n")
    return target


def read_summary(folder) -> dict:
    """FOLDER/summary.json, checked against the schema (SummaryError says what is wrong)."""
    path = Path(folder) / FILE
    try:
        summary = json.loads(path.read_text())
    except OSError as error:
        raise SummaryError(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise SummaryError(f"{path} is not JSON: {error}") from None
    if not isinstance(summary, dict) or not all(isinstance(summary.get(k), dict)
                                                for k in ("settings", "metrics", "outputs")):
        raise SummaryError(f"{path} lacks this schema's settings, metrics and outputs (see hw3/summary.py)")
    missing = [k for k in REQUIRED_SETTINGS if k not in summary["settings"]]
    if missing:
        raise SummaryError(f"{path}: settings lack {', '.join(missing)}")
    return summary


def output(summary: dict, folder, output_id: str) -> tuple:
    """(path, caption) of one output; MissingOutput names the id when it is not listed or not on disk."""
    entry = summary["outputs"].get(output_id)
    if entry is None:
        raise MissingOutput(output_id, f"not listed in {FILE}")
    path = Path(folder) / entry["path"]
    if not path.is_file():
        raise MissingOutput(output_id, f"{path} is listed in {FILE} but does not exist")
    return path, entry.get("caption", "")
