"""``python -m autograder grade-all FOLDER``: grade a folder of submissions into a gradebook.

The command line only: the batch itself is :func:`autograder.grade.batch.grade_all`, the options it
shares with ``grade`` are :func:`autograder.grade.cli.add_common_options`.
"""
import sys
from pathlib import Path

from autograder.grade import GradeError, SubmissionError
from autograder.grade.cli import add_common_options, safe_console, whole_run_limit
from autograder.grade.results import safe_text


def configure(parser):
    parser.add_argument("folder", metavar="FOLDER", help="one subfolder or .zip per student")
    parser.add_argument("-o", "--output", metavar="OUTDIR", type=Path, default=Path("grades"),
                        help="gradebook.csv, results/STUDENT.json and logs/ go here (default: grades/)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="students graded in parallel (default 2)")
    parser.add_argument("--similarity", action="store_true",
                        help="also compare the submissions for copied code: OUTDIR/similarity/report.html, pairs.csv")
    parser.add_argument("--similarity-source", metavar="[LABEL=]PATH", action="append", default=[],
                        help="with --similarity: an extra source compared with every submission (e.g. solution/)")
    add_common_options(parser)


def run(args) -> int:
    safe_console()
    from autograder.grade.batch import grade_all
    try:
        rows = grade_all(args.folder, args.output, jobs=args.jobs, tests_dir=args.tests, keyword=args.keyword,
                         markexpr=args.markexpr, time_limit=whole_run_limit(args), memory_mb=args.memory_mb,
                         isolation=args.isolation, board=args.leaderboard, device=args.device,
                         full_budget=args.full_budget)
    except (GradeError, SubmissionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    graded = [row for row in rows if row["status"] != "missing"]
    errors = sum(not row["status"].startswith("graded") for row in graded)
    flagged = sum(bool(row["regrade"]) for row in graded)
    notes = sum(bool(row["note"]) and not row["attributed"] for row in rows)
    print(f"{len(graded)} row(s) graded ({errors} with errors, {flagged} flagged for regrade, {notes} not "
          f"attributed to a student: see their note): {args.output / 'gradebook.csv'}, "
          f"{args.output / 'canvas.csv'}")
    if args.similarity:
        from autograder import similarity
        try:
            pairs = similarity.compare(args.folder, sources=similarity.parse_sources(args.similarity_source),
                                       exclude=args.output)
            report, _ = similarity.write_report(pairs, args.output / "similarity")
        except similarity.SimilarityError as error:
            print(f"error: similarity: {error}", file=sys.stderr)
            return 1
        top = f"; most similar: {pairs[0].problem} {pairs[0].a} - {pairs[0].b} {pairs[0].similarity:.0%}" if pairs else ""
        print(f"similarity: {len(pairs)} pairs compared: {report}{safe_text(top, 300, one_line=True)}")
    return 0
