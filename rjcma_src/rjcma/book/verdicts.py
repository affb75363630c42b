"""The sentences under the comparison and ablation tables: which differences are larger than the noise, and what a
reader should conclude, written from the numbers of the run that built the page.

The input is what :func:`rjcma.train.intervals.write_summary_intervals` writes (``summary_intervals.json``): every
row's CCC with its 95 % interval and, against a reference row (RJCMA in a comparison, the paper's l in the
ablation), the paired interval of the difference. A difference is *larger than the noise* when that interval
excludes zero. Nothing here types a number or a conclusion: change the numbers and the words change with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

TARGETS = ("valence", "arousal")
# fewer resampling units than this in a fold and a bootstrap interval is itself rough (simulated demo-like folds with
# 10 blocks cover the true CCC only 82 % of the time; rjcma.metrics.evaluation_units): the verdict says so
FEW_UNITS = 10


@dataclass(frozen=True)
class Cell:
    """One row and target: CCC with its interval, and the difference to the reference (None on the reference)."""

    label: str
    estimate: float
    low: float
    high: float
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    folds_better: int | None = None  # several folds: on how many this row beats the reference
    folds: int = 1

    @property
    def beyond_noise(self) -> bool:
        return self.diff is not None and (self.diff_low > 0 or self.diff_high < 0)


def cells(info: Mapping[str, Any], target: str) -> list[Cell]:
    """The rows of an intervals table for one target, in table order (rows without that target left out)."""
    out = []
    for row in info.get("rows", []):
        t = row.get("targets", {}).get(target)
        if not t or t["ccc"].get("estimate") is None:
            continue
        d = t.get("diff") or {}
        out.append(Cell(row["label"], t["ccc"]["estimate"], t["ccc"]["low"], t["ccc"]["high"], d.get("estimate"),
                        d.get("low"), d.get("high"), t.get("folds_better"), max(1, len(t.get("per_fold") or {}))))
    return out


def _n(x: float) -> str:
    return f"{x:.3f}".replace("-", "−")


def signed(x: float) -> str:
    """``x`` to 3 decimals with its sign, a typographic minus for negatives."""
    return ("+" if x >= 0 else "−") + f"{abs(x):.3f}"


def _names(items: Sequence[Cell]) -> str:
    parts = [f"{c.label} (by {abs(c.diff):.3f})" for c in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def few_units(info: Mapping[str, Any]) -> int | None:
    """The smallest unit count of a fold when it is below :data:`FEW_UNITS`, else None."""
    counts = [int(u.get("count") or 0) for u in info.get("units", {}).values()]
    return min(counts) if counts and min(counts) < FEW_UNITS else None


def _caution(info: Mapping[str, Any]) -> str:
    n = few_units(info)
    return (f" With only {n} resampling unit{'s' * (n != 1)} in a fold the intervals themselves are rough: take this "
            "as a hint, not a finding.") if n is not None else ""


def noise_note(info: Mapping[str, Any]) -> str:
    """What the intervals resample, with the unit count, and what they can and cannot say."""
    units = info.get("units", {})
    if not units:
        return ""
    kinds = {u.get("kind") for u in units.values()}
    counts = ", ".join(f"fold {f}: {u.get('count')}" for f, u in units.items())
    level = round(100 * float(info.get("level", 0.95)))
    if kinds == {"trial"}:
        return (f"The {level} % intervals resample the validation trials ({counts}), so they include how the score "
                "moves from one recording to another.")
    frames = {u.get("block_frames") for u in units.values() if u.get("block_frames")}
    if len(frames) == 1:
        blocks = f"blocks of {frames.pop()} consecutive frames inside them ({counts} blocks)"
    else:  # each fold's block length beside its count, in fold order
        blocks = "blocks of consecutive frames inside them (" + ", ".join(
            f"fold {f}: {u.get('count')} blocks of {u.get('block_frames')} frames" for f, u in units.items()) + ")"
    return (f"Each fold has fewer than 8 validation trials, so the {level} % intervals resample {blocks} "
            "instead of whole trials. "
            "They show how much a score depends on which stretches of these few recordings were scored; they are "
            "narrower than the spread over new subjects and say nothing about other people, so a difference that "
            "only just excludes zero is weak evidence.")


def _target_sentence(target: str, rows: list[Cell], reference: str) -> str:
    ref = next(c for c in rows if c.label == reference)
    others = [c for c in rows if c.diff is not None]
    above = sorted((c for c in others if c.beyond_noise and c.diff > 0), key=lambda c: -c.diff)
    below = sorted((c for c in others if c.beyond_noise and c.diff < 0), key=lambda c: c.diff)
    within = len(others) - len(above) - len(below)
    s = (f"**{target.capitalize()}.** {reference} scores {_n(ref.estimate)} (95 % interval {_n(ref.low)} to "
         f"{_n(ref.high)}).")
    if above:
        s += f" Larger than the noise, it is beaten by {_names(above)}."
    if below:
        s += f" It is ahead, by more than the noise, of {_names(below)}."
    if within:
        s += (f" {'The other' if above or below else 'All'} {within} row{'s' * (within != 1)} "
              f"differ{'s' * (within == 1)} from it by less than the noise.")
    return s


def _against_unimodal(target: str, rows: list[Cell], reference: str) -> tuple[str, str]:
    """(sentence, outcome) for the reference against the best unimodal row: outcome 'ahead', 'behind' or 'tie'."""
    uni = [c for c in rows if c.label.lower().startswith("unimodal")]
    if not uni:
        return "", ""
    best = max(uni, key=lambda c: c.estimate)
    gap = -best.diff  # reference minus the best single modality
    folds = ""
    if best.folds_better is not None:
        folds = f"; {reference} is ahead of it on {best.folds - best.folds_better} of {best.folds} folds"
    outcome = "tie" if not best.beyond_noise else ("ahead" if gap > 0 else "behind")
    if outcome == "tie":
        return (f"On {target}, {reference} and the best single modality, {best.label}, cannot be told apart "
                f"(difference {signed(gap)}, within the noise{folds}).", outcome)
    word = "ahead of" if outcome == "ahead" else "behind"
    return (f"On {target}, {reference} is {word} the best single modality, {best.label}, by more than the noise "
            f"(difference {signed(gap)}{folds}).", outcome)


def comparison_verdict(info: Mapping[str, Any], reference: str | None = None) -> list[str]:
    """Sentences under a comparison table (``rjcma compare``, one fold or several): per target, which rows differ
    from RJCMA by more than the noise; then RJCMA against the best single modality and what that means for the
    paper's claim that fusing the three modalities beats each of them; then what the intervals resample."""
    reference = reference or info.get("reference")
    if not reference:
        return []
    out, outcomes = [], {}
    for t in TARGETS:
        rows = cells(info, t)
        if not any(c.label == reference for c in rows):
            continue
        out.append(_target_sentence(t, rows, reference))
        sentence, outcomes[t] = _against_unimodal(t, rows, reference)
        if sentence:
            out.append(sentence)
    claim = _claim(outcomes, reference)
    out.append(claim + _caution(info) if claim else "")
    out.append(noise_note(info))
    return [s for s in out if s]


def _claim(outcomes: Mapping[str, str], reference: str) -> str:
    if not outcomes or not all(outcomes.values()):
        return ""
    ahead = [t for t, o in outcomes.items() if o == "ahead"]
    behind = [t for t, o in outcomes.items() if o == "behind"]
    tie = [t for t, o in outcomes.items() if o == "tie"]
    if len(ahead) == len(outcomes):
        return (f"**What to conclude.** Here {reference} beats the best single modality by more than the noise on "
                "every target: this run supports the paper's claim that fusing the modalities helps.")
    parts = []
    if behind:
        parts.append(f"on {' and '.join(behind)} the best single modality beats {reference} by more than the noise, "
                     "which goes against the paper's claim")
    if tie:
        parts.append(f"on {' and '.join(tie)} this run cannot tell {reference} from the best single modality")
    if ahead:
        parts.append(f"on {' and '.join(ahead)} {reference} is ahead by more than the noise")
    text = "; ".join(parts)
    return "**What to conclude.** " + text[0].upper() + text[1:] + "."


def ablation_verdict(info: Mapping[str, Any]) -> list[str]:
    """Sentences under the recursion ablation: per target, which l differ from the paper's l by more than the
    noise, and whether this run can say that the number of recursions matters."""
    reference = info.get("reference")
    if not reference:
        listed = ", ".join(c.label for c in cells(info, TARGETS[0]))
        return [f"The paper's number of recursions was not among the values trained here ({listed}), so no "
                "difference to it is computed; each row's interval is in the table.", noise_note(info)]
    out, moved = [], []
    for t in TARGETS:
        rows = cells(info, t)
        if not any(c.label == reference for c in rows):
            continue
        out.append(_target_sentence(t, rows, reference))
        best = max(rows, key=lambda c: c.estimate)
        out.append(f"The highest {t} CCC is at {best.label}"
                   + (" (the paper's choice)." if best.label == reference else f"; the paper chose {reference}."))
        moved += [c for c in rows if c.beyond_noise]
    if moved:
        out.append(f"**What to conclude.** The number of recursions changes the score by more than the noise for "
                   f"{', '.join(sorted({c.label for c in moved}))}: on this fold the choice of l matters."
                   + _caution(info))
    else:
        out.append(f"**What to conclude.** No l differs from {reference} by more than the noise on either target: "
                   "this run cannot say whether more recursions help.")
    out.append(noise_note(info))
    return [s for s in out if s]


# the fusion's win "holds fold by fold" when it is ahead on every fold but at most this many (5 of 6 folds)
FOLDS_ALLOWED_BEHIND = 1


def _sign_test(ahead: int, n: int) -> float:
    """One-sided sign test: the chance of being ahead on at least ``ahead`` of ``n`` folds if neither model were
    better (each fold a fair coin)."""
    return sum(math.comb(n, k) for k in range(ahead, n + 1)) / 2 ** n


def fold_by_fold_verdict(values: Mapping[str, Any]) -> list[str]:
    """Sentences under the fold-by-fold table (:func:`rjcma.results_tables.fold_differences`): per target, on how
    many folds the fusion is ahead of the best single modality of that fold, with the sign test's chance of doing
    so by luck; then whether the fusion's win holds fold by fold (ahead on all folds but at most
    :data:`FOLDS_ALLOWED_BEHIND`) and, plainly, where it does not."""
    folds = list(values.get("folds") or [])
    targets = [t for t in TARGETS if f"ahead_{t}" in values]
    if not folds or not targets:
        return []
    n, name = len(folds), values.get("reference", "RJCMA")
    out, held, failed = [], [], []
    for t in targets:
        ahead = int(values[f"ahead_{t}"])
        diffs = list(values[f"diff_{t}"])
        behind = [f"fold {f} ({signed(d)}, {b})" for f, d, b in zip(folds, diffs, values[f"best_{t}"]) if d <= 0]
        s = (f"**{t.capitalize()}.** {name} is ahead of the best single modality on {ahead} of {n} folds "
             f"(mean difference {signed(sum(diffs) / n)}; if neither were better, "
             f"{'all' if ahead == n else f'{ahead} or more'} of {n} would come by chance with probability "
             f"{_sign_test(ahead, n):.2f}).")
        if behind:
            s += f" It is not ahead on {', '.join(behind)}."
        out.append(s)
        (held if ahead >= n - FOLDS_ALLOWED_BEHIND else failed).append(t)
    if not failed:
        out.append(f"**What to conclude.** {name} beats the best single modality on {' and '.join(held)} fold by "
                   f"fold (on at least {n - FOLDS_ALLOWED_BEHIND} of {n} folds): on this corpus the fusion's win "
                   "holds beyond the fold-to-fold noise.")
    else:
        out.append(f"**What to conclude.** {name} is **not** ahead of the best single modality fold by fold on "
                   f"{' and '.join(failed)} (ahead on fewer than {n - FOLDS_ALLOWED_BEHIND} of {n} folds): this run "
                   "does not show that fusing the modalities beats the best one of them there"
                   + (f"; on {' and '.join(held)} it does." if held else "."))
    return out
