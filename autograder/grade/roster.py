"""Who each submission belongs to, for grade-all's gradebook: a Gradescope export or folders named by student.

* **Gradescope export** ("Download Submissions" of a programming assignment, unzipped): one folder
  ``submission_<id>/`` per submission and, beside them, ``submission_metadata.yml``::

      submission_123456:
        :submitters:
        - :name: Ada Lovelace
          :sid: '1001'
          :email: ada@example.edu
        :created_at: 2024-03-01 12:00:00.000000000 -08:00
        :score: 80.0

  :func:`parse_metadata` reads that shape (Ruby's YAML of symbol keys) without a YAML library: the
  top-level ``submission_<id>`` keys, their ``:submitters:`` (name, sid, email) and the scalars
  ``:created_at:`` and ``:late:``/``:is_late:``/``:lateness:`` where present; everything else
  (``:results:`` and the like) is skipped by indentation. A group submission gives one row per member.
* **Folders named by student**: without that file, a subfolder's (or zip's) name is the student; a name
  that is an e-mail address fills the e-mail column.

Nothing is ever guessed: a folder the metadata does not list, a listed submitter with neither SID nor
e-mail, a person listed in two submissions, an unreadable metadata file, each gives that row a note and
keeps it out of the LMS file (``canvas.csv``) instead of giving the points to someone.
"""
import json
import re
from dataclasses import dataclass
from pathlib import Path

METADATA = "submission_metadata.yml"
MAX_METADATA_BYTES = 20 * 1024 * 1024
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LATE_KEYS = ("late", "is_late", "lateness")


@dataclass
class Person:
    name: str = ""
    email: str = ""
    sid: str = ""
    late: str = ""          # "yes", "no" or "" (unknown)
    note: str = ""          # why this row is not attributed, or what to check

    @property
    def attributed(self) -> bool:
        return not self.note and bool(self.sid or self.email)


class MetadataError(ValueError):
    """submission_metadata.yml is not the shape Gradescope writes."""


def scalar(text: str):
    """A YAML scalar as Gradescope writes it: quoted ('..', ".."), null (~, null, empty), true/false,
    or plain text (numbers stay text: an SID like 007 keeps its zeros)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except ValueError:
            return text[1:-1]
    if text in ("", "~", "null"):
        return None
    if text in ("true", "false"):
        return text == "true"
    return text


def _key_value(line: str):
    """(":key" -> "key", raw value) of a ``:key: value`` or ``key: value`` line, else None."""
    match = re.match(r"^:?([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$", line)
    return (match.group(1), match.group(2) or "") if match else None


def parse_metadata(text: str) -> dict:
    """{folder name: {"submitters": [{"name", "sid", "email"}], "created_at", "late"}} from
    submission_metadata.yml. Raises MetadataError when its shape is not Gradescope's."""
    entries, current, person, in_submitters = {}, None, None, False
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#") or raw.strip() == "---":
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0:
            match = re.match(r"^([^\s:#'\"][^:]*):\s*$", line)
            if not match:
                raise MetadataError(f"line {number}: expected a submission folder name followed by ':'")
            current = entries.setdefault(match.group(1).strip(), {"submitters": [], "created_at": None,
                                                                    "late": None, "repeated": False})
            if current["submitters"] or current["created_at"]:
                current["repeated"] = True
            person, in_submitters = None, False
            continue
        if current is None:
            raise MetadataError(f"line {number}: indented text before the first submission")
        if indent == 2 and line.startswith("- ") and in_submitters:
            person = {}
            current["submitters"].append(person)
            line, indent = line[2:].strip(), 4
        elif indent == 2:
            person, in_submitters = None, False
            pair = _key_value(line)
            if pair is None:
                continue
            key, value = pair
            if key == "submitters":
                in_submitters = True
                if value.strip() == "[]":
                    in_submitters = False
            elif key == "created_at":
                current["created_at"] = scalar(value)
            elif key in LATE_KEYS:
                current["late"] = scalar(value)
            continue
        if indent == 4 and in_submitters and person is not None:
            pair = _key_value(line)
            if pair and pair[0] in ("name", "sid", "email"):
                value = scalar(pair[1])
                person[pair[0]] = "" if value is None else str(value)
    return entries


def _late(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        return "yes" if float(str(value).split()[0]) > 0 else "no"   # lateness in seconds
    except (ValueError, IndexError):
        return "yes" if str(value).strip().lower() in ("yes", "late") else ""


def identify(folder: Path, students: dict) -> tuple:
    """({submission key: [Person]}, [Person] listed in the metadata without a submission, mode) for the
    submissions ``students`` ({key: path}, as batch.submissions finds them) of ``folder``. mode is
    "gradescope" (the export's metadata was there) or "folders"."""
    metadata_file = Path(folder) / METADATA
    if not metadata_file.is_file():
        people = {}
        for key in students:
            people[key] = [Person(email=key if EMAIL.fullmatch(key) else "")]
        return people, [], "folders"
    try:
        if metadata_file.stat().st_size > MAX_METADATA_BYTES:
            raise MetadataError(f"over {MAX_METADATA_BYTES // 2**20} MB")
        entries = parse_metadata(metadata_file.read_text(encoding="utf-8", errors="replace"))
    except (OSError, MetadataError) as error:
        note = f"{METADATA} could not be read ({error}): not attributed"
        return {key: [Person(note=note)] for key in students}, [], "gradescope"
    people = {}
    for key, path in students.items():
        entry = entries.get(key) or entries.get(Path(path).name)
        if entry is None:
            people[key] = [Person(note=f"{key} is not listed in {METADATA}: not attributed")]
            continue
        if entry["repeated"]:
            people[key] = [Person(note=f"{key} is listed twice in {METADATA}: not attributed")]
            continue
        late = _late(entry["late"])
        rows = []
        for member in entry["submitters"]:
            person = Person(name=member.get("name", ""), email=member.get("email", ""), sid=member.get("sid", ""),
                            late=late)
            if not (person.sid or person.email):
                person.note = f"{key}: submitter {person.name or '(no name)'} has neither SID nor e-mail: not attributed"
            rows.append(person)
        if not rows:
            rows = [Person(late=late, note=f"{key}: {METADATA} lists no submitter: not attributed")]
        people[key] = rows   # a group submission: one row per member, each with the group's points
    missing = {}
    for key, entry in entries.items():
        if key not in people and not any(Path(p).name == key for p in students.values()):
            missing[key] = [Person(name=member.get("name", ""), email=member.get("email", ""),
                                   sid=member.get("sid", ""),
                                   note=f"{key} is listed in {METADATA} but is not in the folder: not graded")
                            for member in entry["submitters"] or [{}]]
    # The same person in two submissions (graded or not): neither row is theirs until the staff decide.
    everyone = {**people, **missing}
    seen = {}
    for key, rows in everyone.items():
        for person in rows:
            for ident in identities(person):
                seen.setdefault(ident, set()).add(key)
    for ident, keys in seen.items():
        if len(keys) > 1:
            for key in keys:
                for person in everyone[key]:
                    if ident in identities(person):
                        person.note = (f"{ident} appears in {len(keys)} submissions "
                                       f"({', '.join(sorted(keys))}): not attributed")
    return people, [person for rows in missing.values() for person in rows], "gradescope"


def identities(person: Person) -> list:
    return [ident for ident in (person.sid and f"sid {person.sid}",
                                person.email and f"e-mail {person.email.lower()}") if ident]
