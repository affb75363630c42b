"""The results chapter (notebook 11_results): a results table with its provenance, and the exercises' checks."""

from __future__ import annotations

from pathlib import Path

from rjcma import paper_numbers
from rjcma import results_tables as rt
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import show_markdown

NO_NUMBER = ("—", "", None)  # a cell of ours without a run


def show_result_table(table: rt.Table, base: str | Path, command: str) -> None:
    """A results table of :mod:`rjcma.results_tables` with its provenance line (or what to run when it is
    empty) above it and its note below."""
    if table.runs:
        show_markdown(f"*Data:* {rt.provenance(table.runs)}.")
    elif command:
        show_markdown(f"*No result folders under `{base}` yet, so the ours columns are empty; `{command}` "
                      "writes them (or run the training chapters in order).*")
    show_markdown(table.markdown())
    if table.note:
        show_markdown(f"*{table.note}*")


def check_paper_gap(answer: float | None, table1: rt.Table, target: str = "valence") -> Verdict:
    """Exercise: our six-fold mean CCC of ``target`` minus the paper's (Table 1)."""
    ours = table1.values.get(target)
    if ours is None:
        return failed("no cross-validation runs yet: run the training chapters first")
    return check_value(f"ours - paper, {target}", answer, ours - paper_numbers.table1_mean()[target], 1e-9)


def check_rank(answer: int | None, table2: rt.Table, fusion_label: str) -> Verdict:
    """Exercise: 1-based rank of a method by our mean CCC among the rows of Table 2 that have our numbers."""
    ours = [(r[0], float(r[4])) for r in table2.rows if r[4] not in NO_NUMBER]
    order = [name for name, _ in sorted(ours, key=lambda x: -x[1])]
    if fusion_label not in order:
        return failed(f"{fusion_label!r} has no number of ours in this table: run the comparison chapter first")
    return check_value(f"rank of {fusion_label}", answer, order.index(fusion_label) + 1, 0, f"of {len(order)} models")
