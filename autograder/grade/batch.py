"""grade-all: a folder of submissions (one subfolder or .zip per student, or a Gradescope export) -> a
gradebook CSV keyed by student, an LMS-ready CSV (Canvas) and each submission's results file.

Each student is graded by its own ``python -m autograder.grade`` process (its own subreaper, its own
sandbox uids), a few at a time; the test manifest is collected once and shared. The cores are divided
among the workers (CPU affinity, and torch's threads to match), so parallel gradings never compete for
a core. A worker's command line names only a job file in a folder only root can read: nothing of it
tells another student's code whose submission it grades.
"""
import csv
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder.grade import (DEFAULT_MEMORY_MB, DEFAULT_TIME_LIMIT, SOURCE_ROOT, TESTS_DIR, GradeError,
                              collect_manifest)
from autograder.grade import check_device, roster, sandbox
from autograder.grade.results import PROBLEMS, gradescope_results, safe_text
from hw3.files import probe_writable, write_atomically, write_json_atomically

COLUMNS = ("student", "name", "email", "sid", *PROBLEMS, "extra_credit", "total", "late", "status", "regrade",
           "note")
# Canvas's gradebook import: the student columns it matches on (ID is Canvas's own user id, which an
# export does not carry: left empty; Canvas matches on SIS User ID, else SIS Login ID), then one column
# per assignment (a new title makes a new assignment).
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_ASSIGNMENT = "HW3 autograder"


def submissions(folder: Path, outdir: Path = None) -> dict:
    """{student id: path} for each subfolder and .zip of ``folder`` (hidden entries and outdir skipped)."""
    found = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name == "__MACOSX" or entry.is_symlink():
            continue
        if outdir is not None and entry.resolve() == outdir.resolve():
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip"):
            student = entry.stem if entry.is_file() else entry.name
            if student in found:
                student = entry.name
            found[student] = entry
    return found


def points_of(results: dict) -> dict:
    """{problem: points, "extra_credit", "total"} from a results file's tests (their tags name the problem)."""
    row = {p: 0.0 for p in PROBLEMS}
    row["extra_credit"] = 0.0
    for test in results.get("tests", []):
        tags = test.get("tags") or []
        if "extra_credit" in tags:
            row["extra_credit"] += test["score"]
        elif tags and tags[0] in row:
            row[tags[0]] += test["score"]
    row["total"] = sum(row[p] for p in PROBLEMS) + row["extra_credit"]
    row = {k: round(v, 4) for k, v in row.items()}
    flagged = sorted({(test.get("tags") or ["?"])[0] for test in results.get("tests", [])
                      if "regrade" in (test.get("tags") or [])})
    row["regrade"] = " ".join(flagged)
    return row


def spreadsheet_safe(text: str) -> str:
    """A cell no spreadsheet runs as a formula, with no control characters."""
    text = safe_text(text, 200, one_line=True)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def core_slots(jobs: int) -> list:
    """One set of cores per worker: the cores this process may use, divided as evenly as they go (more
    workers than cores share them, one core each)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [None] * jobs
    if jobs >= len(cores):
        return [{cores[i % len(cores)]} for i in range(jobs)]
    size = len(cores) // jobs
    return [set(cores[i * size:(i + 1) * size]) for i in range(jobs)]


def grade_all(folder, outdir, *, jobs: int = 2, tests_dir: Path = TESTS_DIR, keyword: str = None,
              markexpr: str = None, time_limit: float = DEFAULT_TIME_LIMIT, memory_mb: int = DEFAULT_MEMORY_MB,
              isolation: str = "auto", board=(), log=print, device: str = "cpu", full_budget: bool = False) -> list:
    """Grade every submission in ``folder``; returns the gradebook rows (dicts keyed by COLUMNS).
    ``device``, ``full_budget``: as ``grade``'s, for every submission."""
    folder, outdir = Path(folder).expanduser(), Path(outdir).expanduser()
    if not folder.is_dir():
        raise GradeError(f"submissions folder {folder} does not exist or is not a folder")
    if jobs < 1:
        raise GradeError(f"-j must be at least 1, not {jobs}")
    students = submissions(folder, outdir)
    if not students:
        raise GradeError(f"{folder} holds no submissions (one subfolder or .zip per student)")
    try:
        for sub in ("results", "logs"):  # students' results and logs: readable by the staff only
            (outdir / sub).mkdir(parents=True, exist_ok=True)
            (outdir / sub).chmod(0o700)
        probe_writable(outdir)
    except OSError as error:
        raise GradeError(f"cannot write to output folder {outdir}: {error.strerror or error}") from None
    people, missing, mode = roster.identify(folder, students)
    log(f"students from {'submission_metadata.yml (a Gradescope export)' if mode == 'gradescope' else 'folder names'}")
    log(f"collecting the tests in {tests_dir}")
    if device != "cpu" or full_budget:  # fail before grading anyone, not once per student
        try:
            check_device(device, full_budget, sandbox.choose(isolation))
        except sandbox.IsolationError as error:
            raise GradeError(str(error)) from None
    manifest = collect_manifest(tests_dir, keyword, markexpr, full_budget=full_budget)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="hw3-grade-all-") as tmp:
        manifest_file = Path(tmp) / "manifest.json"
        write_json_atomically(manifest, manifest_file)

        slots = queue.Queue()
        for cores in core_slots(jobs):
            slots.put(cores)

        def one(number: int, student: str, path: Path) -> dict:
            results_file = outdir / "results" / f"{student}.json"
            job = Path(tmp) / f"job-{number}.json"
            write_json_atomically({"submission": str(path.resolve()), "output": str(results_file.resolve())}, job)
            job.chmod(0o600)
            argv = [sys.executable, "-m", "autograder.grade", "--job", str(job),
                    "--manifest", str(manifest_file), "--time-limit", str(time_limit),
                    "--memory-mb", str(memory_mb), "--isolation", isolation, "--device", device, "--quiet",
                    *(["--full-budget"] if full_budget else []),
                    *(f"--leaderboard={name}" for name in board)]
            started = time.monotonic()
            env = {**os.environ, "PYTHONPATH": str(SOURCE_ROOT)}
            cores = slots.get()
            try:
                run = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=env,
                                     stdin=subprocess.DEVNULL, timeout=time_limit + 600,
                                     preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None)
                text, code = run.stdout + run.stderr, run.returncode
            except subprocess.TimeoutExpired as error:
                text, code = f"{error}", -9
            finally:
                slots.put(cores)
            (outdir / "logs" / f"{student}.txt").write_text(text)
            status = "graded"
            if code != 0 or not results_file.is_file():
                message = (text.strip().splitlines() or ["the grader failed"])[-1].removeprefix("error: ")
                status = f"error: {safe_text(message, 500, one_line=True)}"
                write_json_atomically(gradescope_results([], 0, f"This submission could not be graded: {message}"),
                                      results_file)
            results = json.loads(results_file.read_text())
            row = {"student": spreadsheet_safe(student), **points_of(results), "status": status}
            log(f"{safe_text(student, 200, one_line=True)}: {row['total']:g} points ({status}, {time.monotonic() - started:.0f} s"
                + (f", REGRADE {row['regrade']}" if row["regrade"] else "") + ")")
            return row

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {student: pool.submit(one, number, student, path)
                       for number, (student, path) in enumerate(students.items())}
            for student, future in futures.items():
                rows[student] = future.result()
    book = gradebook(students, rows, people, missing, mode)
    for row in book:
        if row["note"]:
            log(f"note: {row['student']}: {row['note']}")
    write_csv(outdir / "gradebook.csv", COLUMNS, book)
    write_csv(outdir / "canvas.csv", (*CANVAS_COLUMNS, CANVAS_ASSIGNMENT), canvas_rows(book))
    return book


def gradebook(students: dict, rows: dict, people: dict, missing: list, mode: str) -> list:
    """One row per person (a group submission: one per member), then the people the metadata lists
    without a submission; every cell spreadsheet-safe."""
    book = []
    for student in students:
        for person in people[student]:
            note = person.note or ("group submission: every member gets its points"
                                   if len(people[student]) > 1 else "")
            book.append({**rows[student], "name": spreadsheet_safe(person.name),
                         "email": spreadsheet_safe(person.email), "sid": spreadsheet_safe(person.sid),
                         "late": person.late, "note": spreadsheet_safe(note),
                         "attributed": person.attributed if mode == "gradescope" else not person.note})
    for person in missing:
        book.append({**{c: "" for c in COLUMNS}, "student": "", "name": spreadsheet_safe(person.name),
                     "email": spreadsheet_safe(person.email), "sid": spreadsheet_safe(person.sid),
                     "status": "missing", "note": spreadsheet_safe(person.note), "attributed": False})
    return book


def canvas_rows(book: list) -> list:
    """Canvas's import rows: attributed people only (a row with a note stays in gradebook.csv for the
    staff, never in the LMS file); the total, extra credit included, as the assignment's points."""
    out = []
    for row in book:
        if not row.get("attributed") or not row["status"].startswith("graded"):
            continue
        out.append({"Student": row["name"] or row["student"], "ID": "", "SIS User ID": row["sid"],
                    "SIS Login ID": row["email"] or ("" if row["sid"] else row["student"]), "Section": "",
                    CANVAS_ASSIGNMENT: row["total"]})
    return out


def write_csv(path: Path, columns, rows: list):
    """A CSV written atomically (a temporary file renamed over ``path``), readable by all."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    write_atomically(path, table.getvalue())
