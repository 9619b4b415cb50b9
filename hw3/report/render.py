"""The report's renderer: one HTML file (figures embedded) or Markdown (figures copied beside it),
written from the experiments' outcomes and their summary.json files alone."""
import base64
import csv
import datetime
import html
import os
import re
import shutil
import sys
from pathlib import Path

from hw3 import REPO_ROOT
from hw3.files import markdown_table
from hw3.problems import BY_NAME
from hw3.report.deliverables import absent, declared, found

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml"}
TABLE_TYPES = {".csv", ".tsv", ".md"}
LONG_TABLE = 30  # rows; a longer table (a loss log) shows its first and last rows only
SAME_COLUMN = "same_picture"  # the writeup marks in yellow the pair that shows one picture twice
STATUS_CLASS = {"ok": "ok", "not implemented": "notimpl", "failed": "failed"}

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


def show(text) -> str:
    """Paths inside the repository relative to it: a report reads the same on every machine."""
    return str(text).replace(str(REPO_ROOT) + os.sep, "")


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


def html_table(header, rows) -> str:
    """An HTML table; rows whose same_picture column is true are highlighted (the writeup's yellow)."""
    same = header.index(SAME_COLUMN) if SAME_COLUMN in header else None
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for row in rows:
        flag = same is not None and same < len(row) and str(row[same]).strip() == "True"
        cells = "".join(f'<td{"" if is_number(c) else " class=text"}>{html.escape(str(c))}</td>' for c in row)
        out.append(f'<tr{" class=same" if flag else ""}>{cells}</tr>')
    out.append("</table>")
    return "\n".join(out)


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def flatten(node, key: str = "") -> list:
    """[(dotted name, value)] of a nested dict of settings or metrics."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in flatten(v, f"{key}.{k}" if key else str(k))]
    return [(key, node)]


class Writer:
    """Renders headings, paragraphs, tables and outputs as HTML (figures inlined) or Markdown
    (figures copied into ``files_dir``, under stable names like "gan-grid_final.png")."""

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

    def missing(self, text: str):
        self.paragraph(f"Missing: {text}", raw_html=f'<span class="missing">Missing:</span> {html.escape(text)}')

    def pre(self, text: str):
        self.add(f"<pre>{html.escape(text)}</pre>" if self.fmt == "html" else f"```\n{text}\n```\n")

    def table(self, header, rows, shorten: bool = True):
        """``shorten``: a table longer than LONG_TABLE rows (a loss log) keeps its first and last 5."""
        if shorten and len(rows) > LONG_TABLE:
            rows = rows[:5] + [["…"] * len(header)] + rows[-5:]
        self.add(html_table(header, rows) if self.fmt == "html" else markdown_table(header, rows) + "\n")

    def figure(self, path: Path, caption: str):
        if self.fmt == "html":
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            self.add(f'<figure><img alt="{html.escape(caption)}" src="data:{IMAGE_TYPES[path.suffix.lower()]};'
                     f'base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>')
        else:
            if path not in self.copied:
                self.files_dir.mkdir(parents=True, exist_ok=True)
                self.copied[path] = f"{path.parent.name}-{path.name}"
                shutil.copyfile(path, self.files_dir / self.copied[path])
            self.add(f"![{caption}]({self.files_dir.name}/{self.copied[path]})\n\n*{caption}*\n")

    def output(self, path: Path, caption: str):
        """One output of an experiment, by its kind (figure, table or text)."""
        suffix = path.suffix.lower()
        if suffix in IMAGE_TYPES:
            return self.figure(path, caption)
        if suffix in TABLE_TYPES:
            header, rows = read_table(path)
            more = f": {len(rows)} rows, the first and last 5 shown" if len(rows) > LONG_TABLE else ""
            self.paragraph(caption + more, css="note")
            return self.table(header, rows)
        self.paragraph(caption, css="note")
        self.pre(path.read_text(errors="replace")[:20000])

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


def render_failure(w: Writer, outcome, out: Path):
    number = BY_NAME[outcome.problem].number
    if outcome.status == "not implemented":
        w.paragraph(f"The student code of Problem {number} is not implemented yet, so this experiment "
                    f"could not run and its deliverables are missing. Implement the function named above "
                    f"(see the handout), check it with `pytest tests/ -k {outcome.problem}`, and run the "
                    f"report again.")
    else:
        w.paragraph(f"The experiment of Problem {number} failed, so its deliverables are missing.")
    if outcome.log_tail:
        w.paragraph(f"End of its log ({show(out / 'logs' / (outcome.problem + '.log'))}):", css="note")
        w.pre(show(outcome.log_tail))


def render_outputs(w: Writer, outcome):
    """The writeup's deliverables, each missing output id named; then the other outputs, notes, metrics."""
    shown = set()
    for deliverable in declared(outcome.problem):
        w.heading(3, deliverable.label)
        present, missing = found(outcome, deliverable)
        for output_id, path, caption in present:
            w.output(path, caption or path.name)
            shown.add(output_id)
        for error in missing:
            w.missing(f"{error} (a deliverable hw3/{outcome.problem}_experiment.py declares)")
    others = [k for k in outcome.summary["outputs"] if k not in shown]
    if others:
        w.heading(3, "Other outputs")
        for output_id in others:
            entry = outcome.summary["outputs"][output_id]
            path = outcome.folder / entry["path"]
            if path.is_file():
                w.output(path, entry.get("caption") or path.name)
    for note in outcome.summary.get("notes", []):
        w.paragraph(f"Note: {note}")
    rows = [[name, show(format_value(value))] for part in ("settings", "metrics")
            for name, value in flatten(outcome.summary[part], part)]
    w.heading(3, "Metrics and settings")
    w.table(["name", "value"], rows, shorten=False)


def render_problem(w: Writer, outcome, out: Path):
    problem = BY_NAME[outcome.problem]
    w.heading(2, f"Problem {problem.number}: {problem.title} ({problem.student_file})", anchor=problem.name)
    status = outcome.status + (" (reused)" if outcome.reused else "")
    badge = f'<span class="status {STATUS_CLASS[outcome.status]}">{html.escape(status)}</span>'
    seconds = f" in {outcome.seconds:.0f} s" if outcome.seconds and not outcome.reused else ""
    w.paragraph(f"Status: {status}{seconds}. {outcome.message}".strip(),
                raw_html=f"Status: {badge}{seconds}. {html.escape(outcome.message)}")
    if outcome.command:
        command = ["python"] + outcome.command[1:] if outcome.command[0] == sys.executable else outcome.command
        w.paragraph("Command: " + show(" ".join(command)), css="note")
    if outcome.ok:
        render_outputs(w, outcome)
    else:
        render_failure(w, outcome, out)


def render_overview(w: Writer, outcomes: list, folder: Path, quick: bool, seed: int, device: str):
    w.heading(1, "Homework 3 report")
    w.paragraph(f"Implementation: {show(folder)}. Mode asked for: {'quick' if quick else 'full'}. Seed: {seed}. "
                f"Written {datetime.datetime.now().isoformat(timespec='seconds')} on {device}.")
    in_quick = [o.problem for o in outcomes if o.ok and o.quick]
    if in_quick:
        w.paragraph(f"Quick mode ({', '.join(in_quick)}) trains on small budgets: its figures show that the code "
                    f"runs end to end, not the quality the full budgets reach (run without --quick for the "
                    f"writeup's experiments).", css="note")
    rows = []
    for o in outcomes:
        total = len(declared(o.problem))
        mode = ("quick" if o.quick else "full") if o.ok else ""
        rows.append([f"{BY_NAME[o.problem].number}", o.problem, o.status + (" (reused)" if o.reused else ""), mode,
                     f"{total - len(absent(o))}/{total}", "" if o.reused else f"{o.seconds:.0f}"])
    w.table(["problem", "command", "status", "mode", "deliverables", "seconds"], rows)
    links = [(f"Problem {BY_NAME[o.problem].number}", o.problem) for o in outcomes]
    w.paragraph("Sections: " + ", ".join(f"{title} ({p})" for title, p in links),
                raw_html="Sections: " + " · ".join(f'<a href="#{p}">{title}: {p}</a>' for title, p in links))
    not_done = [o.problem for o in outcomes if o.status == "not implemented"]
    if not_done:
        w.paragraph("Not implemented: " + ", ".join(f"Problem {BY_NAME[p].number} ({p})" for p in not_done) + ".",
                    css="missing")
    lines = [f"Problem {BY_NAME[o.problem].number} ({o.problem}, {o.status}): "
             + "; ".join(d.label for d in absent(o)) for o in outcomes if absent(o)]
    if lines:
        w.paragraph("Missing deliverables: " + " | ".join(lines),
                    raw_html='<span class="missing">Missing deliverables:</span><br>'
                             + "<br>".join(html.escape(line) for line in lines))
    else:
        w.paragraph("Every deliverable is present.")


def render(outcomes: list, folder: Path, out: Path, quick: bool, seed: int, fmt: str, files_dir: Path = None,
           device: str = "CPU") -> str:
    """The whole report, as the text of one HTML or Markdown file."""
    w = Writer(fmt, files_dir)
    render_overview(w, outcomes, folder, quick, seed, device)
    for outcome in outcomes:
        render_problem(w, outcome, out)
    if fmt == "md":
        return w.text()
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Homework 3 report</title><style>{CSS}</style></head><body>\n{w.text()}</body></html>\n")
