"""grade-all's gradebook keyed by student: a Gradescope export (submission_metadata.yml) or folders named
by student; the Canvas-ready CSV; a note, never a misattributed row, for bad or missing metadata."""
import csv
import io

import pytest
from test_grade import GOOD, run_cli, submission, suite  # noqa: F401  (suite: a fixture)

from autograder.grade import batch, roster

pytestmark = pytest.mark.timeout(600)

METADATA = """\
submission_101:
  :submitters:
  - :name: Ada Lovelace
    :sid: '007'
    :email: ada@example.edu
  :created_at: 2024-03-01 12:00:00.000000000 -08:00
  :score: 80.0
  :results:
    :tests:
    - :name: "submission_999:"
      :output: |
        :submitters:
        - :name: Mallory
          :sid: '666'
  :late: true
submission_102:
  :submitters:
  - :name: "Grace \\"Amazing\\" Hopper"
    :sid: '1002'
    :email: grace@example.edu
  - :name: Alan Turing
    :sid: '1003'
    :email: alan@example.edu
  :created_at: 2024-03-01 11:00:00.000000000 -08:00
submission_103:
  :submitters:
  - :name: Nobody Known
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
submission_104:
  :submitters:
  - :name: Ada Again
    :sid: '007'
    :email: ada2@example.edu
submission_105:
  :submitters:
  - :name: Absent Student
    :sid: '1005'
    :email: absent@example.edu
"""


def test_parse_metadata_reads_gradescopes_shape_and_skips_the_rest():
    entries = roster.parse_metadata(METADATA)
    assert sorted(entries) == ["submission_101", "submission_102", "submission_103", "submission_104",
                               "submission_105"]  # nothing from inside :results:
    assert entries["submission_101"]["submitters"] == [{"name": "Ada Lovelace", "sid": "007",
                                                        "email": "ada@example.edu"}]
    assert entries["submission_101"]["late"] is True
    assert [m["name"] for m in entries["submission_102"]["submitters"]] == ['Grace "Amazing" Hopper', "Alan Turing"]
    assert entries["submission_103"]["submitters"] == [{"name": "Nobody Known"}]


@pytest.mark.parametrize("text", ["  :submitters:\n", "- a\n", "submission_1 has no colon\n"])
def test_parse_metadata_refuses_what_is_not_gradescopes_shape(text):
    with pytest.raises(roster.MetadataError):
        roster.parse_metadata(text)


def export(tmp_path, metadata=METADATA, folders=("submission_101", "submission_102", "submission_103",
                                                 "submission_104", "submission_106")):
    folder = tmp_path / "export"
    for name in folders:
        (folder / name).mkdir(parents=True)
        (folder / name / "gan.py").write_text("def value():\n    return 42\n")
    if metadata is not None:
        (folder / roster.METADATA).write_text(metadata)
    return folder


def test_identify_attributes_only_what_the_metadata_says(tmp_path):
    folder = export(tmp_path)
    people, missing, mode = roster.identify(folder, batch.submissions(folder))
    assert mode == "gradescope"
    assert people["submission_102"][0].attributed and people["submission_102"][1].sid == "1003"  # a group
    assert people["submission_101"][0].late == "yes"
    notes = {key: [p.note for p in rows] for key, rows in people.items()}
    assert "neither SID nor e-mail" in notes["submission_103"][0]
    assert "not listed in submission_metadata.yml" in notes["submission_106"][0]
    # SID 007 is in two submissions: neither row is Ada's until the staff decide.
    assert "sid 007 appears in 2 submissions" in notes["submission_101"][0]
    assert "sid 007 appears in 2 submissions" in notes["submission_104"][0]
    assert [(p.sid, "not in the folder" in p.note) for p in missing] == [("1005", True)]


def test_unreadable_metadata_gives_every_row_a_note(tmp_path):
    folder = export(tmp_path, metadata="  :submitters:\n")
    people, missing, _ = roster.identify(folder, batch.submissions(folder))
    assert missing == [] and all("could not be read" in rows[0].note and not rows[0].attributed
                                 for rows in people.values())


def test_folders_named_by_student(tmp_path):
    folder = export(tmp_path, metadata=None, folders=("alice", "bob@example.edu"))
    people, missing, mode = roster.identify(folder, batch.submissions(folder))
    assert mode == "folders" and missing == []
    assert people["bob@example.edu"][0].email == "bob@example.edu" and people["alice"][0].email == ""


def test_gradebook_and_canvas_rows_never_carry_an_unattributed_row(tmp_path):
    folder = export(tmp_path)
    students = batch.submissions(folder)
    people, missing, mode = roster.identify(folder, students)
    points = {"cnn": 0.0, "contrastive": 0.0, "cvae": 0.0, "gan": 25.0, "extra_credit": 5.0, "total": 30.0,
              "regrade": ""}
    rows = {key: {"student": key, **points, "status": "graded"} for key in students}
    book = batch.gradebook(students, rows, people, missing, mode)
    by_sid = {(row["student"], row["sid"]): row for row in book}
    assert by_sid[("submission_102", "1002")]["name"] == 'Grace "Amazing" Hopper'
    assert "group submission" in by_sid[("submission_102", "1003")]["note"]
    assert by_sid[("", "1005")]["status"] == "missing" and by_sid[("", "1005")]["total"] == ""
    assert "appears in 2 submissions" in by_sid[("submission_101", "007")]["note"]
    canvas = batch.canvas_rows(book)
    assert [(r["Student"], r["SIS User ID"], r["SIS Login ID"], r[batch.CANVAS_ASSIGNMENT]) for r in canvas] == [
        ('Grace "Amazing" Hopper', "1002", "grace@example.edu", 30.0),
        ("Alan Turing", "1003", "alan@example.edu", 30.0)]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=(*batch.CANVAS_COLUMNS, batch.CANVAS_ASSIGNMENT), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(canvas)
    assert text.getvalue().splitlines()[0] == "Student,ID,SIS User ID,SIS Login ID,Section,HW3 autograder"


def test_a_formula_in_the_metadata_reaches_no_spreadsheet(tmp_path):
    folder = export(tmp_path, metadata="submission_101:\n  :submitters:\n  - :name: =HYPERLINK(\"x\")\n"
                                       "    :sid: '+1'\n    :email: '@evil'\n", folders=("submission_101",))
    students = batch.submissions(folder)
    people, missing, mode = roster.identify(folder, students)
    rows = {"submission_101": {"student": "submission_101", "status": "graded", "total": 1.0}}
    row = batch.gradebook(students, rows, people, missing, mode)[0]
    assert row["name"].startswith("'=") and row["sid"] == "'+1" and row["email"] == "'@evil"


def test_grade_all_on_a_gradescope_export(tmp_path, suite):  # noqa: F811
    folder = tmp_path / "export"
    submission(folder / "submission_101")
    submission(folder / "submission_102", cnn=None)
    submission(folder / "submission_106")     # not in the metadata
    (folder / roster.METADATA).write_text(METADATA)
    out = tmp_path / "grades"
    run = run_cli("grade-all", folder, "-o", out, "-j", "2", "--tests", suite)
    assert run.returncode == 0, run.stderr
    book = list(csv.DictReader((out / "gradebook.csv").read_text().splitlines()))
    got = [(r["student"], r["name"], r["sid"], r["total"], r["late"], r["status"], bool(r["note"])) for r in book]
    assert got == [
        ("submission_101", "Ada Lovelace", "007", "105.0", "yes", "graded", True),   # SID 007 also in 104
        ("submission_102", 'Grace "Amazing" Hopper', "1002", "80.0", "", "graded", True),   # group note
        ("submission_102", "Alan Turing", "1003", "80.0", "", "graded", True),
        ("submission_106", "", "", "105.0", "", "graded", True),             # not listed: not attributed
        ("", "Nobody Known", "", "", "", "missing", True),
        ("", "Ada Again", "007", "", "", "missing", True),
        ("", "Absent Student", "1005", "", "", "missing", True)]
    canvas = list(csv.DictReader((out / "canvas.csv").read_text().splitlines()))
    assert [(r["SIS User ID"], r["HW3 autograder"]) for r in canvas] == [("1002", "80.0"), ("1003", "80.0")]
    assert "not attributed" in run.stdout and "not listed in submission_metadata.yml" in run.stderr + run.stdout
