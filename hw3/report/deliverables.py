"""What the report holds: the problems of hw3/problems.py, and each one's writeup deliverables as its
experiment declares them (``DELIVERABLES`` in hw3/<problem>_experiment.py), looked up by output id."""
import importlib

from hw3.summary import MissingOutput, output


def declared(problem: str) -> tuple:
    """The experiment's Deliverables (hw3.summary.Deliverable), in the writeup's order."""
    return importlib.import_module(f"hw3.{problem}_experiment").DELIVERABLES


def found(outcome, deliverable) -> tuple:
    """([(output id, path, caption)] that exist, [MissingOutput] for the ids that do not)."""
    present, missing = [], []
    for output_id in deliverable.ids:
        try:
            present.append((output_id, *output(outcome.summary, outcome.folder, output_id)))
        except MissingOutput as error:
            missing.append(error)
    return present, missing


def absent(outcome, extra_credit: bool = True) -> list:
    """The Deliverables the report lacks (all of them when the experiment did not run to the end);
    ``extra_credit=False`` leaves out the optional ones."""
    wanted = [d for d in declared(outcome.problem) if extra_credit or not d.extra_credit]
    if not outcome.ok:
        return wanted
    return [d for d in wanted if found(outcome, d)[1]]
