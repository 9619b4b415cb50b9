"""``python -m hw3 report``: run (or reuse) the four experiments and write ONE self-contained report.

    python -m hw3 report --impl starter --quick --jobs 2   # every deliverable, small budgets (QUICK_ARGS)
    python -m hw3 report --impl starter                 # the writeup's full budgets (~35 min on 2 cores)
    python -m hw3 report --reuse                        # reuse outputs already in runs/<problem>/

Each experiment runs as a subprocess ``python -m hw3 <problem> --impl FOLDER --out OUT/<problem>``
(plus ``--quick`` and the report's QUICK_ARGS, ``--seed``, ``--experiment-args``), so one problem
that crashes or is not implemented does not stop the others. Every experiment writes
``OUT/<problem>/summary.json`` listing its deliverables (figures, tables, metrics); the report
collects them, checks them off against the deliverables of the original homework's writeup, and
writes ``OUT/report.html`` -- one file, figures embedded as base64 PNGs -- or, with ``--format md``,
``OUT/report.md`` with its PNGs in ``OUT/report_files/`` (``--report FILE`` writes the report
elsewhere).

A problem whose student code is not implemented, or whose experiment fails, gets a section saying
so (with the experiment's own error line and the end of its log); the report is written anyway.
The exit status is 0 when the report was written, whatever the problems' outcome; with
``--strict`` it is 1 when any selected problem did not run to the end or lacks a deliverable.
Usage errors (a missing implementation folder, an unknown problem, an output folder that cannot be
written) exit with status 2, before any experiment runs.

Logs and provenance of each run go to ``OUT/logs/<problem>.log`` and ``OUT/logs/<problem>.json``.
With ``--reuse``, an experiment runs again only when its ``summary.json`` is missing, or its
outputs came from another implementation folder, seed or ``--experiment-args``, or from a quick
run when a full report is asked for (full outputs serve a quick report), or the earlier run
failed. Outputs the report did not record (you ran ``python -m hw3 gan`` yourself) are judged by
the ``impl`` and ``quick`` entries of their summary.json.
"""
import base64
import csv
import datetime
import html
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hw3 import REPO_ROOT, impl

# --- what the report holds --------------------------------------------------------------------

PROBLEMS = {  # command -> (problem number, title)
    "cnn": (1, "Convolutional networks (cnn.py)"),
    "contrastive": (2, "Siamese network and contrastive loss (contrastive.py)"),
    "cvae": (3, "Conditional variational autoencoder (cvae.py)"),
    "gan": (4, "Deep convolutional GAN (gan.py)"),
}

# The report's --quick: every deliverable in a few minutes on a 2-core CPU, to check that all four
# experiments run end to end. Each experiment's own --quick budget is sized for one problem at a time
# (a few minutes each, figures that already look like something); the report runs all four, so in
# quick mode it passes these smaller budgets on top of --quick. The DCGAN's grid after 1000
# iterations sets the floor there: 1000 iterations, of small batches. --experiment-args come after
# these and override them, e.g. --experiment-args 'gan=--batch-size 16' for the GAN's own quick budget.
QUICK_ARGS = {
    "cnn": ["--train-samples", "1000", "--test-samples", "1000"],
    "contrastive": ["--iterations", "100", "--lfw-iterations", "50"],
    "cvae": ["--iterations", "200"],
    "gan": ["--iterations", "1000", "--batch-size", "4"],
}

# Two experiments side by side, one thread each on 2 cores. The quick report on the solution, on a
# 2-core machine at load ~7 (other trainings): --jobs 1 (two threads each) 715 s CPU, 17.5 min;
# --jobs 2 190 s CPU, 9.5 min. Small batches parallelize badly inside torch, and its idle threads
# spin on a busy machine.
DEFAULT_JOBS = min(2, os.cpu_count() or 1)


LONGEST_FIRST = ("gan", "contrastive", "cnn", "cvae")  # typical running times, longest first (for --jobs)

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml"}
TABLE_TYPES = {".csv", ".md", ".tsv"}
TEXT_TYPES = {".txt", ".json", ".log"}


@dataclass
class Deliverable:
    """One deliverable of the original homework's writeup, found among an experiment's outputs by words.

    An output of one of ``kinds`` matches when every word of at least one of ``words`` occurs in its
    summary.json key or file name (lower case; "-", "_", "/", "." and spaces all separate
    words; numbers match zero-padded: "250" finds "grid_iter0250").
    """
    label: str
    kinds: tuple  # ("figure",), ("table",) or both
    words: tuple
    extra_credit: bool = False


FIGURE, TABLE, BOTH = ("figure",), ("table",), ("figure", "table")

DELIVERABLES = {
    "cnn": [
        Deliverable("Test accuracy for each pooling and kernel size", TABLE, (("accuracy",),)),
    ],
    "contrastive": [
        Deliverable("MNIST: learning curve of the contrastive loss on training pairs", FIGURE,
                    (("mnist", "loss", "curve"), ("mnist", "curve"))),
        Deliverable("MNIST: embedding of the training set", FIGURE, (("mnist", "embedding", "train"),)),
        Deliverable("MNIST: embedding of the test set", FIGURE, (("mnist", "embedding", "test"),)),
        Deliverable("MNIST: distances of 20 pairs from the training set", BOTH, (("mnist", "pairs", "train"),)),
        Deliverable("MNIST: distances of 20 pairs from the test set", BOTH, (("mnist", "pairs", "test"),)),
        Deliverable("LFW (extra credit): learning curve of the contrastive loss", FIGURE,
                    (("lfw", "loss", "curve"), ("lfw", "curve")), True),
        Deliverable("LFW (extra credit): embedding of the training people", FIGURE,
                    (("lfw", "embedding", "train"),), True),
        Deliverable("LFW (extra credit): embedding of the test people", FIGURE,
                    (("lfw", "embedding", "test"),), True),
        Deliverable("LFW (extra credit): distances of 20 pairs from the training people", BOTH,
                    (("lfw", "pairs", "train"),), True),
        Deliverable("LFW (extra credit): distances of 20 pairs from the test people", BOTH,
                    (("lfw", "pairs", "test"),), True),
    ],
    "cvae": [
        Deliverable("Generated digits conditioned on each label (one row per label)", FIGURE, (("grid",),)),
    ],
    "gan": [
        Deliverable("Generated digits after 250 iterations", FIGURE, (("grid", "250"), ("250",))),
        Deliverable("Generated digits after 500 iterations", FIGURE, (("grid", "500"), ("500",))),
        Deliverable("Generated digits after 1000 iterations", FIGURE, (("grid", "1000"), ("1000",))),
        Deliverable("Generated digits at the end of training", FIGURE, (("grid", "final"), ("final",))),
    ],
}


# --- reading an experiment's summary.json -----------------------------------------------------

@dataclass
class Item:
    """One entry of a summary.json: a file (figure, table, text) or a metric."""
    key: str
    kind: str  # "figure", "table", "text" or "metric"
    value: object = None  # the metric's value
    path: Path = None  # the file, resolved against the run folder
    caption: str = ""
    missing: bool = False  # a file listed but absent

    @property
    def words(self) -> str:
        """Its key and file name as words (not its caption: prose like "...set, after training" misleads)."""
        text = " ".join([self.key, self.path.name if self.path else ""]).lower()
        return " " + re.sub(r"[\s_\-/.\[\]:]+", " ", text) + " "


def file_kind(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return ("figure" if suffix in IMAGE_TYPES else "table" if suffix in TABLE_TYPES
            else "text" if suffix in TEXT_TYPES else None)


def looks_like_file(value) -> bool:
    return isinstance(value, str) and "\n" not in value and file_kind(value) is not None


def locate(name: str, run_dir: Path) -> Path:
    """A file named in summary.json: relative to the run folder, else as written (an experiment run
    with a relative --out may record "runs/gan/grid.png"), else by its name in the run folder."""
    path = Path(name)
    if path.is_absolute():
        return path if path.is_file() else run_dir / path.name if (run_dir / path.name).is_file() else path
    for candidate in (run_dir / path, Path.cwd() / path, REPO_ROOT / path, run_dir / path.name):
        if candidate.is_file():
            return candidate
    return run_dir / path


def collect(summary, run_dir: Path) -> list:
    """Flatten a summary.json into Items. Strings naming a figure/table/text file become file items;
    a dict with a "path" (or "file") entry is one file item whose "caption"/"title" captions it;
    anything else is a metric named by its key path ("metrics.accuracy.avg_5")."""
    items = []

    def file_item(key, name, caption=""):
        path = locate(name, run_dir)
        items.append(Item(key, file_kind(name), path=path, caption=caption or "", missing=not path.is_file()))

    def walk(node, key):
        if isinstance(node, dict):
            name = node.get("path", node.get("file"))
            if looks_like_file(name):
                caption = node.get("caption") or node.get("title") or node.get("description") or ""
                file_item(key, name, str(caption))
                return
            for k, v in node.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list) and not all(isinstance(v, (int, float, bool)) or v is None for v in node):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")
        elif looks_like_file(node):
            file_item(key, node)
        else:
            items.append(Item(key, "metric", value=node))

    walk(summary, "")
    return items


def has_word(text: str, word: str) -> bool:
    """A number matches as a whole number ("250" in "iter250" but not in "2500"); a longer word
    anywhere ("embedding" in "embeddings"); a short word only as a whole word ("end", not "legend")."""
    if word.isdigit():  # zero-padded too: "iter0250"
        return re.search(rf"(?<!\d)0*{word}(?!\d)", text) is not None
    return f" {word} " in text or (len(word) > 3 and word in text)


def has_words(item: Item, words) -> bool:
    return all(has_word(item.words, w) for w in words)


def match(deliverable: Deliverable, items: list) -> list:
    """The items that hold a deliverable: the best-matching alternative of its words that finds any."""
    candidates = [i for i in items if i.kind in deliverable.kinds and not i.missing]
    for words in deliverable.words:
        found = [i for i in candidates if has_words(i, words)]
        if found:
            return found
    return []


# --- running the experiments ------------------------------------------------------------------

@dataclass
class Outcome:
    """What happened to one problem's experiment."""
    problem: str
    status: str  # "ok", "not implemented", "failed", "unavailable"
    message: str = ""
    seconds: float = 0.0
    reused: bool = False
    quick: bool = None  # the mode its outputs came from (None: not recorded)
    log_tail: str = ""
    command: list = field(default_factory=list)
    summary: dict = None
    items: list = field(default_factory=list)
    found: dict = field(default_factory=dict)  # deliverable label -> items

    @property
    def ok(self) -> bool:
        return self.status == "ok"


NOT_IMPLEMENTED = re.compile(r"not implemented|NotImplementedError", re.IGNORECASE)


def experiment_available(problem: str) -> bool:
    return importlib.util.find_spec(f"hw3.{problem}_experiment") is not None


def experiment_command(problem: str) -> list:
    """The command line that runs one experiment (tests replace it by a fake experiment)."""
    return [sys.executable, "-m", "hw3", problem]


def error_line(output: str) -> str:
    """The most telling line of a failed run: its last "error: ..." line (the experiments' one-line
    errors), else the exception line that ends a traceback, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return line
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line):
            return line
    return lines[-1] if lines else "(no output)"


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def provenance_path(out: Path, problem: str) -> Path:
    return out / "logs" / f"{problem}.json"


def recorded_settings(summary: dict) -> tuple:
    """(implementation folder, quick, seed) as an experiment's summary.json records them, None where it does not."""
    settings = summary.get("settings") if isinstance(summary.get("settings"), dict) else {}
    metrics = summary.get("metrics") if isinstance(summary.get("metrics"), dict) else {}
    folder = summary.get("impl", settings.get("impl"))
    quick = summary.get("quick", settings.get("quick"))
    seed = summary.get("seed", settings.get("seed", metrics.get("seed")))
    return folder, quick, seed


def reusable(out: Path, problem: str, folder: Path, quick: bool, seed=None, extra_args=()):
    """(True, note, quick it came from) when OUT/<problem>/summary.json can be reused; (False, reason, None)
    otherwise.

    Reused: outputs of this implementation folder, in this mode or in full mode (full outputs serve
    a quick report; quick outputs never pass for a full one). Where the report recorded nothing
    (the experiment was run by hand), summary.json's own "impl" and "quick" entries decide.
    """
    summary_path = out / problem / "summary.json"
    if not summary_path.is_file():
        return False, "no earlier outputs", None
    try:
        meta = json.loads(provenance_path(out, problem).read_text())
        source = "the report's record"
    except (OSError, ValueError):
        meta = None
    if meta is None:
        try:
            impl_used, quick_used, seed_used = recorded_settings(json.loads(summary_path.read_text()))
        except (OSError, ValueError, AttributeError):
            return False, f"{summary_path} is unreadable", None
        meta = {"status": "ok", "impl": impl_used, "quick": quick_used, "seed": seed_used}
        source = "summary.json"
    if meta.get("status") != "ok":
        return False, "the earlier run did not succeed", None
    if meta.get("impl") is not None and Path(meta["impl"]).resolve() != folder:
        return False, f"earlier outputs came from {show(meta['impl'])}", None
    if meta.get("quick") and not quick:
        return False, "earlier outputs came from a quick run", None
    if (seed is not None or source != "summary.json") and meta.get("seed") != seed:
        recorded = "the default seed" if meta.get("seed") is None else f"seed {meta['seed']}"
        return False, f"earlier outputs came from {recorded}", None
    if source != "summary.json" and list(meta.get("extra_args") or []) != list(extra_args):
        return False, "earlier outputs came from other --experiment-args", None
    when = f" of {meta['finished']}" if meta.get("finished") else ""
    took = f", which took {meta['seconds']:.0f} s" if isinstance(meta.get("seconds"), (int, float)) else ""
    if meta.get("impl") is None:
        return True, f"reused earlier outputs{when}{took} (implementation not recorded)", meta.get("quick")
    return (True, f"reused earlier outputs{when}{took} ({'quick' if meta.get('quick') else 'full'} mode, "
                  f"from {source})", meta.get("quick"))


def quick_flags(problem: str) -> list:
    """What the report's --quick adds to an experiment's command line."""
    return ["--quick"] + QUICK_ARGS.get(problem, [])


def run_experiment(problem: str, folder: Path, out: Path, quick: bool, seed, timeout, extra_args,
                   threads: int = None) -> Outcome:
    """Run ``python -m hw3 <problem>`` as a subprocess, its output to OUT/logs/<problem>.log."""
    run_dir = out / problem
    log = out / "logs" / f"{problem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = experiment_command(problem) + ["--impl", str(folder), "--out", str(run_dir)]
    command += quick_flags(problem) if quick else []
    command += ["--seed", str(seed)] if seed is not None else []
    command += extra_args
    stale = run_dir / "summary.json"
    if stale.is_file():
        stale.unlink()  # never report the outputs of an earlier run as this run's
    env = dict(os.environ, **{impl.ENV_VAR: str(folder)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if threads:  # experiments side by side share the cores instead of each taking them all
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    start = time.monotonic()
    with open(log, "w") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        try:
            returncode = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            returncode = None
    seconds = time.monotonic() - start
    output = log.read_text(errors="replace")
    if returncode is None:
        status, message = "failed", f"stopped after the time limit of {timeout} s (--timeout)"
    elif returncode == 0 and stale.is_file():
        status, message = "ok", ""
    elif returncode == 0:
        status, message = "failed", f"the experiment exited normally but wrote no {stale}"
    elif returncode < 0:  # killed: its last line is whatever it printed before, not an error
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        status, message = "failed", f"the experiment was killed by {name} (out of memory, or stopped by hand?)"
    else:
        message = error_line(output)
        status = "not implemented" if NOT_IMPLEMENTED.search(message) else "failed"
    return Outcome(problem, status, message, seconds, log_tail=tail(output), command=command, quick=quick)


def record(out: Path, outcome: Outcome, folder: Path, quick: bool, seed, extra_args=()):
    meta = {"problem": outcome.problem, "status": outcome.status, "message": outcome.message,
            "impl": str(folder), "quick": quick, "seed": seed, "extra_args": extra_args,
            "seconds": round(outcome.seconds, 1),
            "command": outcome.command, "finished": datetime.datetime.now().isoformat(timespec="seconds")}
    write_atomically(provenance_path(out, outcome.problem), json.dumps(meta, indent=2) + "\n")


def load_summary(out: Path, outcome: Outcome) -> Outcome:
    """Read OUT/<problem>/summary.json into the outcome and check the deliverables off."""
    path = out / outcome.problem / "summary.json"
    try:
        outcome.summary = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        outcome.status, outcome.message = "failed", f"cannot read {path}: {error}"
        return outcome
    outcome.items = collect(outcome.summary, path.parent)
    outcome.found = {d.label: match(d, outcome.items) for d in DELIVERABLES[outcome.problem]}
    return outcome


def missing_deliverables(outcome: Outcome, extra_credit: bool = True) -> list:
    return [d.label for d in DELIVERABLES[outcome.problem]
            if not outcome.found.get(d.label) and (extra_credit or not d.extra_credit)]


def absent_deliverables(outcome: Outcome, extra_credit: bool = True) -> list:
    """The deliverables the report lacks: all of them when the experiment did not run to the end."""
    if outcome.ok:
        return missing_deliverables(outcome, extra_credit)
    return [d.label for d in DELIVERABLES[outcome.problem] if extra_credit or not d.extra_credit]


def writable(folder: Path) -> str:
    """"" when files can be written into ``folder`` (created if need be), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return ""


# --- writing the report -----------------------------------------------------------------------

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; margin-top: 2.2em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
tr.same td { background: #fff59d; }
.status { display: inline-block; padding: .1em .6em; border-radius: .3em; font-weight: bold; }
.ok { background: #c8e6c9; } .notimpl { background: #ffe0b2; } .failed { background: #ffcdd2; }
.missing { color: #b71c1c; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.9em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 0.85em; }
"""

UNSHOWN = {"problem", "command"}  # summary.json entries the report's own headings already say
STATUS_CLASS = {"ok": "ok", "not implemented": "notimpl", "failed": "failed", "unavailable": "failed"}


def read_table(path: Path):
    """(header, rows) of a CSV/TSV or a Markdown pipe table."""
    text = path.read_text(errors="replace")
    if path.suffix.lower() in (".csv", ".tsv"):
        rows = list(csv.reader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
    else:
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
                for line in text.splitlines() if line.strip().startswith("|")]
        rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r if c)]
    rows = [r for r in rows if r]
    return (rows[0], rows[1:]) if rows else ([], [])


def is_number(text) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


# The writeup marks in yellow the pair that shows the very same picture twice.
SAME_COLUMN = re.compile(r"^(same|same[ _-]?(picture|image)|is[ _]same)$", re.IGNORECASE)
LONG_TABLE = 30  # rows; a longer table (a loss log) shows its first and last rows only


def html_table(header, rows) -> str:
    """An HTML table; rows whose "same" column is true are highlighted (the writeup's yellow cells)."""
    same = next((i for i, h in enumerate(header) if SAME_COLUMN.match(str(h).strip())), None)
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for row in rows:
        flag = same is not None and same < len(row) and str(row[same]).strip().lower() in ("1", "true", "yes", "same")
        cells = "".join(f'<td{"" if is_number(c) else " class=text"}>{html.escape(str(c))}</td>' for c in row)
        out.append(f'<tr{" class=same" if flag else ""}>{cells}</tr>')
    out.append("</table>")
    return "\n".join(out)


def md_table(header, rows) -> str:
    lines = [f"| {' | '.join(map(str, header))} |", f"|{'---|' * len(header)}"]
    return "\n".join(lines + [f"| {' | '.join(map(str, r))} |" for r in rows])


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


class Writer:
    """Renders figures/tables/metrics as HTML (figures inlined) or Markdown (figures copied beside it)."""

    def __init__(self, fmt: str, files_dir: Path = None):
        self.fmt, self.files_dir, self.parts, self.copied = fmt, files_dir, [], {}

    def add(self, text: str):
        self.parts.append(text)

    def heading(self, level: int, text: str, anchor: str = None):
        if self.fmt == "html":
            ident = f' id="{anchor}"' if anchor else ""
            self.add(f"<h{level}{ident}>{html.escape(text)}</h{level}>")
        else:
            self.add(f"{'#' * level} {text}\n")

    def paragraph(self, text: str, css: str = None, raw_html: str = None):
        if self.fmt == "html":
            cls = f' class="{css}"' if css else ""
            self.add(f"<p{cls}>{raw_html if raw_html is not None else html.escape(text)}</p>")
        else:
            self.add(text + "\n")

    def pre(self, text: str):
        self.add(f"<pre>{html.escape(text)}</pre>" if self.fmt == "html" else f"```\n{text}\n```\n")

    def table(self, header, rows):
        if len(rows) > LONG_TABLE:
            rows = rows[:5] + [["…"] * len(header)] + rows[-5:]
        self.add(html_table(header, rows) if self.fmt == "html" else md_table(header, rows) + "\n")

    def figure(self, path: Path, caption: str):
        if self.fmt == "html":
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            mime = IMAGE_TYPES[path.suffix.lower()]
            self.add(f'<figure><img alt="{html.escape(caption)}" src="data:{mime};base64,{data}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        else:
            name = self.copy(path)
            self.add(f"![{caption}]({self.files_dir.name}/{name})\n\n*{caption}*\n")

    def copy(self, path: Path) -> str:
        if path not in self.copied:  # stable names ("gan-grid_final.png") that writeups can link to
            name = f"{path.parent.name}-{path.name}"
            while name in self.copied.values():
                name = f"{path.parent.name}-{len(self.copied)}-{path.name}"
            self.files_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.files_dir / name)
            self.copied[path] = name
        return self.copied[path]

    def item(self, item: Item, caption: str):
        if item.kind == "figure":
            self.figure(item.path, caption)
        elif item.kind == "table":
            header, rows = read_table(item.path)
            if len(rows) > LONG_TABLE:
                caption += f": {len(rows)} rows, the first and last 5 shown"
            self.paragraph(caption, css="note")
            self.table(header, rows)
        else:
            self.paragraph(caption, css="note")
            self.pre(item.path.read_text(errors="replace")[:20000])

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


def same_table(a: Item, b: Item) -> bool:
    """Two files of one table (results.md and results.csv): render only one of them."""
    return a.kind == b.kind == "table" and a.path.with_suffix("") == b.path.with_suffix("")


def pick_tables(items: list) -> list:
    """Drop the Markdown copy of a table also listed as CSV (the CSV renders as a proper table)."""
    chosen = []
    for item in sorted(items, key=lambda i: i.path.suffix.lower() != ".csv" if i.path else True):
        twin = next((other for other in chosen if same_table(item, other)), None)
        if twin is None:
            chosen.append(item)
        elif item.caption and not twin.caption:  # keep the caption the Markdown copy came with
            chosen[chosen.index(twin)] = Item(twin.key, twin.kind, path=twin.path, caption=item.caption)
    order = {id(i): n for n, i in enumerate(items)}
    return sorted(chosen, key=lambda i: min([order.get(id(i), len(items))] +
                                            [order[id(o)] for o in items if same_table(i, o)]))


def show(text) -> str:
    """Paths inside the repository relative to it: a report reads the same on every machine."""
    return str(text).replace(str(REPO_ROOT) + os.sep, "")


def render_problem(w: Writer, outcome: Outcome, out: Path):
    number, title = PROBLEMS[outcome.problem]
    w.heading(2, f"Problem {number}: {title}", anchor=outcome.problem)
    status = outcome.status + (" (reused)" if outcome.reused else "")
    badge = f'<span class="status {STATUS_CLASS[outcome.status]}">{html.escape(status)}</span>'
    seconds = f" in {outcome.seconds:.0f} s" if outcome.seconds and not outcome.reused else ""
    w.paragraph(f"Status: {status}{seconds}. {outcome.message}".strip(),
                raw_html=f"Status: {badge}{seconds}. {html.escape(outcome.message)}")
    if outcome.command:
        command = ["python"] + outcome.command[1:] if outcome.command[0] == sys.executable else outcome.command
        w.paragraph("Command: " + show(" ".join(command)), css="note")
    if not outcome.ok:
        if outcome.status == "not implemented":
            w.paragraph(f"The student code of Problem {number} is not implemented yet, so this experiment "
                        f"could not run and its deliverables are missing. Implement the function named above "
                        f"(see the handout), check it with `pytest tests/ -k {outcome.problem}`, and run the "
                        f"report again.")
        elif outcome.status == "unavailable":
            w.paragraph(f"This copy of the course has no `python -m hw3 {outcome.problem}` experiment.")
        else:
            w.paragraph(f"The experiment of Problem {number} failed, so its deliverables are missing.")
        if outcome.log_tail:
            w.paragraph(f"End of its log ({show(out / 'logs' / (outcome.problem + '.log'))}):", css="note")
            w.pre(show(outcome.log_tail))
        return
    shown = []
    for deliverable in DELIVERABLES[outcome.problem]:
        found = pick_tables(outcome.found.get(deliverable.label, []))
        w.heading(3, deliverable.label)
        if not found:
            kinds = " or ".join(deliverable.kinds)
            w.paragraph(f"Missing: the experiment's summary.json lists no {kinds} for this deliverable.",
                        raw_html=f'<span class="missing">Missing:</span> the experiment\'s summary.json lists '
                                 f"no {kinds} for this deliverable.")
        for item in found:
            w.item(item, item.caption or item.path.name)
            shown.append(item)
    others = [i for i in pick_tables([i for i in outcome.items if i.kind != "metric" and not i.missing])
              if not any(i is s or same_table(i, s) for s in shown)]
    if others:
        w.heading(3, "Other outputs")
        for item in others:
            w.item(item, item.caption or item.path.name)
    notes = [i for i in outcome.items if i.kind == "metric" and re.match(r"^notes?(\[\d+\])?$", i.key)]
    for note in notes:
        w.paragraph(f"Note: {note.value}")
    metrics = [i for i in outcome.items if i.kind == "metric" and i not in notes and i.key not in UNSHOWN]
    if metrics:
        w.heading(3, "Metrics and settings")
        w.table(["name", "value"], [[i.key, show(format_value(i.value))] for i in metrics])
    absent = [i for i in outcome.items if i.missing]
    if absent:
        w.paragraph("Listed in summary.json but not found: " + ", ".join(show(i.path) for i in absent), css="missing")


def render(outcomes: list, folder: Path, out: Path, args, fmt: str, files_dir: Path = None) -> str:
    w = Writer(fmt, files_dir)
    mode = "quick" if args.quick else "full"
    w.heading(1, "Homework 3 report")
    w.paragraph(f"Implementation: {show(folder)}. Mode asked for: {mode}. Seed: {args.seed if args.seed is not None else 'default'}. "
                f"Written {datetime.datetime.now().isoformat(timespec='seconds')} on "
                f"{'CUDA' if cuda_available() else 'CPU'}.")
    quick = [o.problem for o in outcomes if o.ok and (o.quick or (o.quick is None and args.quick))]
    if quick:
        w.paragraph(f"Quick mode ({', '.join(quick)}) trains on small budgets: its figures show that the code runs "
                    f"end to end, not the quality the full budgets reach (run without --quick for the writeup's "
                    f"experiments).", css="note")
    rows = []
    for o in outcomes:
        number, title = PROBLEMS[o.problem]
        missing = missing_deliverables(o) if o.ok else [d.label for d in DELIVERABLES[o.problem]]
        total = len(DELIVERABLES[o.problem])
        mode = "" if o.quick is None or not o.ok else "quick" if o.quick else "full"
        rows.append([f"{number}", o.problem, o.status + (" (reused)" if o.reused else ""), mode,
                     f"{total - len(missing)}/{total}", "" if o.reused else f"{o.seconds:.0f}"])
    w.table(["problem", "command", "status", "mode", "deliverables", "seconds"], rows)
    links = [(f"Problem {PROBLEMS[o.problem][0]}", o.problem) for o in outcomes]
    w.paragraph("Sections: " + ", ".join(f"{title} ({p})" for title, p in links),
                raw_html="Sections: " + " · ".join(f'<a href="#{p}">{title}: {p}</a>' for title, p in links))
    not_done = [o.problem for o in outcomes if o.status == "not implemented"]
    if not_done:
        w.paragraph("Not implemented: " + ", ".join(f"Problem {PROBLEMS[p][0]} ({p})" for p in not_done) + ".",
                    css="missing")
    lacking = [(o, absent_deliverables(o)) for o in outcomes if absent_deliverables(o)]
    if lacking:
        lines = [f"Problem {PROBLEMS[o.problem][0]} ({o.problem}, {o.status}): {'; '.join(labels)}"
                 for o, labels in lacking]
        w.paragraph("Missing deliverables: " + " | ".join(lines),
                    raw_html='<span class="missing">Missing deliverables:</span><br>'
                             + "<br>".join(html.escape(line) for line in lines))
    else:
        w.paragraph("Every deliverable is present.")
    for outcome in outcomes:
        render_problem(w, outcome, out)
    body = w.text()
    if fmt == "md":
        return body
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Homework 3 report</title><style>{CSS}</style></head><body>\n{body}</body></html>\n")


def cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


def write_atomically(path: Path, text: str):
    """Write through a temporary file in the same folder and rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp creates 0600; a report is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the command ------------------------------------------------------------------------------

def configure(parser):
    parser.add_argument("--impl", metavar="FOLDER", default=None,
                        help=f"implementation folder (default: ${impl.ENV_VAR}, else starter)")
    parser.add_argument("--out", metavar="DIR", default=str(REPO_ROOT / "runs"),
                        help="experiments write OUT/<problem>/, the report is OUT/report.html (default: runs)")
    parser.add_argument("--quick", action="store_true",
                        help="each experiment's small budget: the whole report in a few minutes on a laptop CPU")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse OUT/<problem>/ where it holds a summary.json of this implementation, seed "
                             "and mode (full outputs also serve --quick) instead of running the experiment again")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 unless every selected problem ran and has every required "
                             "deliverable (extra credit is optional)")
    parser.add_argument("--only", metavar="PROBLEM", action="append", choices=list(PROBLEMS),
                        help="report on this problem only (repeatable; default: all four)")
    parser.add_argument("--seed", type=int, default=None, help="passed on to every experiment")
    parser.add_argument("--format", choices=("html", "md"), default="html",
                        help="html: one file with embedded figures (default); md: Markdown with PNGs beside it")
    parser.add_argument("--report", metavar="FILE", default=None,
                        help="where to write the report (default: OUT/report.html, or OUT/report.md with "
                             "--format md, whose figures go to the folder <FILE without .md>_files beside it)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop an experiment that runs longer than this; it is reported as failed "
                             "(default: no limit)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, metavar="N",
                        help="run up to N experiments at once, sharing the CPU cores, each with its share of "
                             f"the threads (default: {DEFAULT_JOBS}; 1: one after the other with every core)")
    parser.add_argument("--experiment-args", metavar="PROBLEM=ARGS", action="append", default=[],
                        help="extra arguments for one experiment, e.g. --experiment-args 'gan=--iterations 300' "
                             "(repeatable)")


def parse_experiment_args(values) -> dict:
    extra = {p: [] for p in PROBLEMS}
    for value in values:
        problem, _, text = value.partition("=")
        if problem not in PROBLEMS or not _:
            raise ValueError(f"--experiment-args {value!r}: expected PROBLEM=ARGS with PROBLEM one of "
                             f"{', '.join(PROBLEMS)}")
        extra[problem] += text.split()
    return extra


def run(args) -> int:
    try:
        folder = impl.impl_dir(resolve(args.impl) if args.impl else None)
        extra = parse_experiment_args(args.experiment_args)
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    except (impl.ImplementationError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser().resolve()
    target = Path(args.report).expanduser().resolve() if args.report else out / f"report.{args.format}"
    for folder_needed in dict.fromkeys([out, target.parent]):  # before any experiment spends minutes
        problem = writable(folder_needed)
        if problem:
            print(f"error: cannot write the report's outputs to {show(folder_needed)}: {problem}", file=sys.stderr)
            return 2
    problems = [p for p in PROBLEMS if not args.only or p in args.only]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None

    def one(index_problem):
        index, problem = index_problem
        prefix = f"[{index}/{len(problems)}] {problem}:"
        reuse, note, quick_used = (reusable(out, problem, folder, args.quick, args.seed, extra[problem])
                                   if args.reuse else (False, "", None))
        if reuse:
            outcome = Outcome(problem, "ok", note, reused=True, quick=quick_used)
            print(f"{prefix} {note}", flush=True)
        elif experiment_command(problem)[1:3] == ["-m", "hw3"] and not experiment_available(problem):
            outcome = Outcome(problem, "unavailable", f"no experiment module hw3/{problem}_experiment.py")
            print(f"{prefix} {outcome.message}", flush=True)
        else:
            shown = " ".join(["python -m hw3", problem] + (quick_flags(problem) if args.quick else []))
            print(f"{prefix} running {shown} (log: {show(out / 'logs' / (problem + '.log'))})", flush=True)
            outcome = run_experiment(problem, folder, out, args.quick, args.seed, args.timeout, extra[problem],
                                     threads)
            record(out, outcome, folder, args.quick, args.seed, extra[problem])
            print(f"{prefix} {outcome.status} in {outcome.seconds:.0f} s"
                  f"{': ' + outcome.message if outcome.message else ''}", flush=True)
        if outcome.ok:
            load_summary(out, outcome)
        return outcome

    # Side by side, the longest experiments start first; the report keeps the problems' order.
    order = sorted(enumerate(problems, 1), key=lambda ip: LONGEST_FIRST.index(ip[1]) if args.jobs > 1 else ip[0])
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # threads only wait for subprocesses
        finished = dict(zip([p for _, p in order], pool.map(one, order)))
    outcomes = [finished[p] for p in problems]

    files_dir = target.with_name(target.stem + "_files") if args.format == "md" else None
    if files_dir is not None and files_dir.is_dir():
        for old in files_dir.iterdir():  # only the figures an earlier report copied there
            if old.is_file() and old.name.split("-")[0] in PROBLEMS and old.suffix.lower() in IMAGE_TYPES:
                old.unlink()
    write_atomically(target, render(outcomes, folder, out, args, args.format, files_dir))
    for o in outcomes:  # name every deliverable the report lacks, and why
        missing = absent_deliverables(o)
        if missing:
            why = f"{o.status}: {o.message}" if not o.ok else "not among its outputs"
            print(f"warning: Problem {PROBLEMS[o.problem][0]} ({o.problem}) {why}; missing deliverables: "
                  f"{'; '.join(missing)}", file=sys.stderr)
    incomplete = [o.problem for o in outcomes if absent_deliverables(o)]
    print(f"report written to {show(target)}"
          + (f" (incomplete: {', '.join(incomplete)})" if incomplete else " (every deliverable present)"))
    # --strict: every selected problem ran and has every required deliverable (extra credit is optional).
    failed = [o.problem for o in outcomes if absent_deliverables(o, extra_credit=False)]
    return 1 if args.strict and failed else 0


def resolve(value: str) -> Path:
    """A folder named on the command line: relative to the current folder, else to the repository."""
    path = Path(value).expanduser()
    if not path.exists() and not path.is_absolute() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return path
