"""The results chapter (notebook 11_results): a results table with its provenance, and the exercises' checks."""

from __future__ import annotations

from pathlib import Path

from rjcma import paper_numbers
from rjcma import results_tables as rt
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import show_markdown


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


def show_provenance(runs: list[rt.Run], kind: str, base: str | Path, command: str) -> None:
    """The line above an experiment's table: which data its numbers came from, or what to run to get them."""
    mine = [r for r in runs if r.kind == kind]
    if mine:
        show_markdown(f"*Data:* {rt.provenance(mine)}.")
    else:
        show_markdown(f"*No result folders under `{Path(base) / kind}` yet; `{command}` writes them (or run the "
                      "training chapters in order).*")


def check_paper_gap(answer: float | None, table1: rt.Table, target: str = "valence") -> Verdict:
    """Exercise: our six-fold mean CCC of ``target`` minus the paper's (Table 1)."""
    ours = table1.values.get(target)
    if ours is None:
        return failed("no cross-validation runs yet: run the training chapters first")
    return check_value(f"ours - paper, {target}", answer, ours - paper_numbers.table1_mean()[target], 1e-9)


def check_rank(answer: int | None, rows: list[dict], fusion: str) -> Verdict:
    """Exercise: 1-based rank of a fusion by our mean CCC among the comparison's rows (its ``summary.json``)."""
    order = [r["fusion"] for r in sorted(rows, key=lambda r: -r["mean"])]
    if fusion not in order:
        return failed(f"no row for {fusion!r} in the comparison: run the comparison chapter first")
    return check_value(f"rank of {fusion}", answer, order.index(fusion) + 1, 0, f"of {len(order)} models")
