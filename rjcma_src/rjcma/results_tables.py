"""Tables of reproduced numbers beside the paper's Tables 1-4, built from the result folders (paper §5).

Result folders are ``<results_dir>/<profile>/<kind>/<run_id>/`` with ``metrics.json`` and ``config.yaml``
(written by ``rjcma train | cv | ablate | compare``). Nothing here types a result number: ours come from
``metrics.json``, the paper's from :mod:`rjcma.paper_numbers`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from rjcma import paper_numbers as paper
from rjcma.book.citations import FAMILY_SOURCE, cite_paper_refs
from rjcma.book.verdicts import signed
from rjcma.fusions import FUSIONS

KINDS = {"table1": "cv", "table2": "compare", "table3": "ablate", "check": "compare-folds"}


@dataclass
class Run:
    kind: str
    name: str
    path: Path
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    written: _dt.datetime | None = None

    @property
    def fold(self) -> int | None:
        return self.metrics.get("fold", self.config.get("train", {}).get("fold"))

    @property
    def fusion(self) -> str:
        return str(self.metrics.get("fusion") or self.config.get("model", {}).get("fusion", ""))

    @property
    def iterations(self) -> int | None:
        return self.metrics.get("num_iterations", self.config.get("model", {}).get("num_iterations"))

    @property
    def modalities(self) -> list[str]:
        return list(self.metrics.get("modalities") or self.config.get("model", {}).get("modalities", []))

    @property
    def corpus(self) -> str:
        return str(self.config.get("data", {}).get("corpus", "?"))

    def ccc(self, target: str) -> float | None:
        """Validation CCC of ``target`` over all frames of the partition (None if the run did not train it)."""
        m = self.metrics.get("metrics", {}).get(target)
        if not isinstance(m, dict) or m.get("ccc") is None:
            return None
        v = float(m["ccc"])
        return None if math.isnan(v) else v


def _read_run(mfile: Path, kind: str) -> Run | None:
    try:
        metrics = json.loads(mfile.read_text())
    except (OSError, ValueError):
        return None
    config: dict[str, Any] = {}
    cfile = mfile.parent / "config.yaml"
    if cfile.is_file():
        try:
            config = yaml.safe_load(cfile.read_text()) or {}
        except yaml.YAMLError:
            config = {}
    written = _dt.datetime.fromtimestamp(mfile.stat().st_mtime, tz=_dt.timezone.utc)
    return Run(kind=kind, name=mfile.parent.name, path=mfile.parent, metrics=metrics, config=config, written=written)


def _summary_runs(kind_dir: Path) -> list[Path] | None:
    """The run folders an experiment's ``summary.json`` lists (its rows' ``runs``), or None without a summary.

    An experiment reuses identical runs finished by another one (the fold-0 RJCMA model of the cross-validation is
    also the RJCMA row of the comparison), so its runs are not all in its own folder.
    """
    f = kind_dir / "summary.json"
    try:
        rows = json.loads(f.read_text()).get("rows", [])
    except (OSError, ValueError, AttributeError):
        return None
    out: list[Path] = []
    for row in rows:
        for p in str(row.get("runs") or "").split(";"):
            if not p.strip():
                continue
            path = Path(p.strip())
            if not path.is_absolute() and not path.exists():
                path = kind_dir.parent.parent.parent / path  # relative to the results dir's parent
            out.append(path)
    return out


def find_runs(results_dir: str | Path, profile: str) -> list[Run]:
    """The runs of each experiment (``cv``, ``ablate``, ``compare``, ...) of ``profile``.

    Where an experiment wrote ``summary.json``, its runs are exactly the folders the summary lists (wherever they
    live); otherwise every complete folder (with a readable metrics.json) under its kind folder.
    """
    base = Path(results_dir) / profile
    runs: list[Run] = []
    if not base.is_dir():
        return runs
    for kind_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        listed = _summary_runs(kind_dir)
        folders = listed if listed is not None else sorted(m.parent for m in kind_dir.glob("*/metrics.json"))
        seen: set[Path] = set()
        for folder in folders:
            key = folder.resolve()
            if key in seen or not (folder / "metrics.json").is_file():
                continue
            seen.add(key)
            run = _read_run(folder / "metrics.json", kind_dir.name)
            if run is not None:
                runs.append(run)
    return runs


def provenance(runs: Iterable[Run], results_dir: str | Path = "") -> str:
    """One line saying what data the numbers came from: profile, corpus, dates, git hashes, devices, run count."""
    runs = list(runs)
    if not runs:
        return "no runs"

    def uniq(values: Iterable[Any]) -> str:
        vals = sorted({str(v) for v in values if v not in (None, "")})
        return ", ".join(vals) if vals else "unknown"

    dates = sorted(r.written for r in runs if r.written)
    when = (dates[0].strftime("%Y-%m-%d %H:%M UTC") if dates else "unknown")
    if len(dates) > 1 and dates[-1].date() != dates[0].date():
        when += f" to {dates[-1].strftime('%Y-%m-%d %H:%M UTC')}"
    env = [r.metrics.get("environment", {}) for r in runs]
    where = f" under `{runs[0].path.parent.parent}`"
    return (
        f"profile **{uniq(r.metrics.get('profile') for r in runs)}**, corpus `{uniq(r.corpus for r in runs)}`, "
        f"{len(runs)} run(s) written {when}, git {uniq(e.get('git') for e in env)}, "
        f"device {uniq(e.get('device') for e in env)}, mode {uniq(r.metrics.get('mode') for r in runs)}{where}"
    )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}".replace("-", "−")


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def ccc_by(runs: Iterable[Run], key) -> dict[Any, dict[str, list[float]]]:
    """key(run) -> {target: [ccc of each run/seed]}."""
    out: dict[Any, dict[str, list[float]]] = {}
    for r in runs:
        k = key(r)
        for t in ("valence", "arousal"):
            v = r.ccc(t)
            if v is not None:
                out.setdefault(k, {}).setdefault(t, []).append(v)
    return out


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Any]]
    runs: list[Run]
    note: str = ""
    values: dict[str, float | None] = field(default_factory=dict)  # headline numbers (ours) for glue

    def markdown(self) -> str:
        return markdown_table(self.header, self.rows)


def _ours(d: dict[str, list[float]] | None) -> tuple[float | None, float | None, float | None, int]:
    d = d or {}
    v, a = _mean(d.get("valence", [])), _mean(d.get("arousal", []))
    mean = (v + a) / 2 if v is not None and a is not None else None
    n = max(len(d.get("valence", [])), len(d.get("arousal", [])), 0)
    return v, a, mean, n


def table1(runs: list[Run], fold_ids: Iterable[int] | None = None) -> Table:
    """Six-fold cross-validation of RJCMA (kind ``cv``), beside the paper's Table 1."""
    cv = [r for r in runs if r.kind == KINDS["table1"] and r.fusion == "rjcma"]
    got = ccc_by(cv, lambda r: r.fold)
    folds = sorted(set(paper.TABLE1_FOLDS) | {f for f in got if f is not None} | set(fold_ids or []))
    # which partition "fold f" is: metrics.json (fold_scheme), else the run's config; data/folds.py
    schemes = sorted({str(r.metrics.get("fold_scheme") or r.config.get("data", {}).get("fold_scheme") or "subject")
                      for r in cv if r.fold})
    scheme = "/".join(schemes) if schemes else ""
    suffix = {"released": " (released chunks)", "subject": " (subject-aware, not the paper's)"}.get(scheme,
                                                                                                  f" ({scheme})")
    rows, vs, as_ = [], [], []
    for f in folds:
        v, a, m, n = _ours(got.get(f))
        p = paper.TABLE1_FOLDS.get(f, {})
        label = f"Fold {f}" + (" (official)" if f == 0 else suffix if scheme and n else "")
        rows.append([label, _fmt(v), _fmt(a), _fmt(m), n,
                     _fmt(p.get("valence")), _fmt(p.get("arousal")), _fmt(p.get("mean"))])
        if v is not None:
            vs.append(v)
        if a is not None:
            as_.append(a)
    pm = paper.table1_mean()
    mv, ma = _mean(vs), _mean(as_)
    rows.append(["**Mean**", _fmt(mv), _fmt(ma), _fmt((mv + ma) / 2 if mv is not None and ma is not None else None),
                 "", _fmt(pm["valence"]), _fmt(pm["arousal"]), _fmt(pm["mean"])])
    return Table(
        title="Table 1 analogue: CCC on the six folds (l = 3)" + (f"; our folds 1–5: '{scheme}' scheme" if scheme else ""),
        header=["validation set", "valence (ours)", "arousal (ours)", "mean (ours)", "runs",
                "valence (paper)", "arousal (paper)", "mean (paper)"],
        rows=rows, runs=cv,
        note="The paper's mean row is computed here from its six folds; the paper does not print it. "
        + {"released": "Our folds 1–5 use the released code's name-sorted chunks, so fold f is the paper's fold f "
                       "(and shares its leak: a subject can sit on both sides; see Reproducing on Aff-Wild2).",
           "subject": "Our folds 1–5 are subject-aware partitions (data.fold_scheme=subject), not the paper's "
                      "name-sorted chunks: compare fold 0 and the means, not fold f with fold f."}.get(scheme, ""),
        values={"valence": mv, "arousal": ma, "mean": (mv + ma) / 2 if mv is not None and ma is not None else None},
    )


FUSION_LABELS = {name: f.label for name, f in FUSIONS.items()}  # the registry's labels, in its order


def table4() -> Table:
    """The paper's Table 4 (6th ABAW test set). Test labels are not public: no reproduced column exists."""
    rows = [[cite_paper_refs(t["team"]), t["modalities"], "yes" if t["ensemble"] else "no", _fmt(t["valence"], 4),
             _fmt(t["arousal"], 4), _fmt(t["mean"], 4)] for t in paper.TABLE4_TEST]
    return Table(
        title="Table 4: the 6th ABAW test set (paper's numbers only)",
        header=["team", "modalities", "ensemble", "valence", "arousal", "mean"],
        rows=rows, runs=[],
        note="The test labels are held by the organisers; `rjcma export-test` writes a submission file they can "
             "score. No reproduced test numbers can be computed here.",
    )


# ---- the experiments' tables with their intervals (summary.json + summary_intervals.json) ----------------------------
INTERVALS_FILE = "summary_intervals.json"
SHORT_MODALITIES = {"audio": "A", "visual": "V", "text": "T"}


def read_summary(exp_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An experiment's ``summary.json`` and its ``summary_intervals.json`` (None when missing or written for
    another summary, i.e. with another config hash); ({}, None) without a summary."""
    exp_dir = Path(exp_dir)
    try:
        summary = json.loads((exp_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}, None
    try:
        info = json.loads((exp_dir / INTERVALS_FILE).read_text())
    except (OSError, ValueError):
        return summary, None
    return summary, info if info.get("summary_config_hash") == summary.get("config_hash") else None


def row_name(row: dict[str, Any]) -> str:
    """A summary row as the book names it: the fusion's label (the paper's reference numbers as author and year),
    ``l = 3`` for an ablation row, ``fold 2`` for a cross-validation row."""
    if "fusion" in row and "model" in row:
        return cite_paper_refs(FUSION_LABELS.get(row["fusion"], str(row["model"])))
    if "l" in row:
        return f"l = {row['l']}"
    return f"fold {row.get('fold')}"


# the verdicts' words for the rows whose table label is long
SHORT_NAMES = {"rjcma": "RJCMA", "rjcma-released": "the released code's fusion", "grjca": "GRJCA (released)",
               "hgrjca": "HGRJCA (released)", "dca": "DCA (released)", "gated-rjcma": "gated RJCMA (ours)"}


def _summary_label(row: dict[str, Any]) -> str:
    """A summary row's label in summary_intervals.json (rjcma.train.intervals names rows so)."""
    return str(row["model"]) if "model" in row else f"l={row['l']}" if "l" in row else f"fold {row.get('fold')}"


def short_name(row: dict[str, Any]) -> str:
    """A summary row as a sentence names it: ``RJCMA``, ``unimodal visual``, ``JCA``, ``l = 3``."""
    if row.get("fusion") in SHORT_NAMES and "model" in row:
        return SHORT_NAMES[row["fusion"]]
    return re.sub(r"\s*\((TCN \+ head|[^)]*\d{4})\)", "", row_name(row)).strip()


def named_intervals(summary: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with every row (and the reference) named by :func:`short_name` (the verdicts' words)."""
    by_label = {_summary_label(r): short_name(r) for r in summary.get("rows", [])}
    out = dict(info)
    out["rows"] = [dict(r, label=by_label.get(r["label"], r["label"])) for r in info.get("rows", [])]
    out["reference"] = by_label.get(info.get("reference"), info.get("reference"))
    return out


def fmt_interval(t: dict[str, Any] | None) -> str:
    """``0.423 [0.16, 0.50]``: the CCC and its 95 % interval (its ends to two decimals); a dash without one."""
    if not t or t["ccc"].get("estimate") is None:
        return "—"
    c = t["ccc"]
    return f"{c['estimate']:.3f}<br>[{c['low']:.2f}, {c['high']:.2f}]".replace("-", "−")


def fmt_difference(t: dict[str, Any] | None) -> str:
    """The paired difference to the reference, bold where its interval excludes zero; empty on the reference."""
    d = (t or {}).get("diff")
    if not d or d.get("estimate") is None:
        return ""
    est = f"{d['estimate']:+.3f}"
    shown = f"**{est}**" if d.get("excludes_zero") else est
    return f"{shown}<br>[{d['low']:+.2f}, {d['high']:+.2f}]".replace("-", "−")


def _paper_cells(row: dict[str, Any], fold: Any) -> tuple[str, str]:
    """The published (valence / arousal, source) of a summary row's method, where the paper or the family
    published it for this fold (the official validation set)."""
    if "l" in row:
        p = paper.TABLE3_RECURSIONS.get(row["l"]) if fold == paper.TABLE3_FOLD else None
        return (f"{p['valence']:.3f} / {p['arousal']:.3f}", "paper, Table 3") if p else ("", "")
    if fold != 0:
        return "", ""
    for m in paper.TABLE2_METHODS:
        if m["fusion"] == row.get("fusion"):
            return f"{m['val_valence']:.3f} / {m['val_arousal']:.3f}", "paper, Table 2"
    for m in paper.FAMILY_METHODS:
        if row.get("fusion") in m["fusions"]:
            return f"{m['val_valence']:.3f} / {m['val_arousal']:.3f}", f"{FAMILY_SOURCE[0]}, abstract"
    return "", ""


def _published_only(summary: dict[str, Any], width: int) -> list[list[Any]]:
    """The published rows this experiment did not train (the paper's other systems in Table 2, its l values in
    Table 3), for the results chapter: ours empty, theirs with the source."""
    rows = summary.get("rows", [])
    blank = ["—", ""] * 2
    if rows and "l" in rows[0]:
        if summary.get("fold") != paper.TABLE3_FOLD:
            return []
        have = {r["l"] for r in rows}
        return [[f"l = {l_}", *blank, f"{p['valence']:.3f} / {p['arousal']:.3f}", "paper, Table 3"]
                for l_, p in paper.TABLE3_RECURSIONS.items() if l_ not in have]
    if summary.get("fold") != 0:
        return []
    have = {r.get("fusion") for r in rows}
    out = [[cite_paper_refs(f"{m['method']}, {m['type']}"), *blank,
            f"{m['val_valence']:.3f} / {m['val_arousal']:.3f}", "paper, Table 2"]
           for m in paper.TABLE2_METHODS if m["fusion"] not in have]
    return [r[:width] for r in out]


def interval_table(exp_dir: str | Path, title: str, published: bool = False) -> Table | None:
    """An experiment's table (``compare``, ``compare-folds``, ``ablate``): each row's CCC per target with its
    95 % interval, its paired difference to the reference row (bold where the interval excludes zero) and, where
    published for the same fold, the paper's or the family's numbers with their source; with ``published``, also
    the published rows this run did not train. None without a summary. ``values``: the named intervals (what
    :mod:`rjcma.book.verdicts` reads)."""
    summary, info = read_summary(exp_dir)
    if not summary or not summary.get("rows"):
        return None
    by_label = {r["label"]: r for r in (info or {}).get("rows", [])}
    fold, first = summary.get("fold"), summary["rows"][0]
    rows = []
    for r in summary["rows"]:
        t = by_label.get(_summary_label(r), {}).get("targets", {})
        mods = "+".join(SHORT_MODALITIES.get(m, m) for m in str(r.get("modalities", "")).split("+") if m)
        rows.append([row_name(r) + (f" · {mods}" if mods else ""), fmt_interval(t.get("valence")),
                     fmt_difference(t.get("valence")), fmt_interval(t.get("arousal")),
                     fmt_difference(t.get("arousal")), *_paper_cells(r, fold)])
    if published:
        rows += _published_only(summary, len(rows[0]))
    ref = named_intervals(summary, info)["reference"] if info else None
    delta = f"Δ to {ref}" if ref else "Δ"
    header = ["method · modalities" if "model" in first else "recursions", "valence [95 % interval]", delta,
              "arousal [95 % interval]", delta, "published V / A", "source"]
    if not any(row[-1] for row in rows):  # nothing published for these rows (another fold, the six-fold check)
        header, rows = header[:-2], [row[:-2] for row in rows]
    paired = any(row[2] or row[4] for row in rows)
    if not paired:  # no reference row among these: no differences to show
        header, rows = [h for i, h in enumerate(header) if i not in (2, 4)], [
            [c for i, c in enumerate(row) if i not in (2, 4)] for row in rows]
    units = (info or {}).get("units", {})
    note = (("Bold: the paired 95 % interval of the difference excludes zero (larger than the noise). " if paired
             else "")
            + ("Units resampled: " + ", ".join(f"fold {f}: {u['count']} {u['kind']}s" for f, u in units.items())
               + "." if units else "No intervals: rerun the experiment to write summary_intervals.json."))
    return Table(title=title, header=header, rows=rows, runs=[], note=note,
                 values=named_intervals(summary, info) if info else {})


# ---- the six-fold check fold by fold: RJCMA minus the best single modality -------------------------------------------
def fold_differences(exp_dir: str | Path, reference: str = "rjcma") -> Table | None:
    """The paired per-fold differences of a ``compare --folds`` summary (``compare-folds/summary.json``): on every
    fold and for each target, the ``reference`` fusion's CCC, the best single modality's CCC *on that fold* (the
    highest of the unimodal rows there, so the reference must beat each of them) and the difference; the last row
    counts the folds where the reference is ahead. Both models of a pair validate on the same trials, so the
    difference of a fold is paired. None without a summary holding the reference and a unimodal row.

    ``values``: ``folds`` (the fold ids), per target ``ahead_<target>`` (folds with a positive difference),
    ``diff_<target>`` (the differences, fold order) and ``best_<target>`` (the best single modality's name per
    fold): what :func:`rjcma.book.verdicts.fold_by_fold_verdict` reads."""
    summary, _ = read_summary(exp_dir)
    rows = summary.get("rows") or []
    ref = next((r for r in rows if r.get("fusion") == reference), None)
    uni = [r for r in rows if str(r.get("fusion", "")).startswith("unimodal")]
    targets = [t for t in ("valence", "arousal") if ref and f"per_fold_{t}" in ref
               and all(f"per_fold_{t}" in r for r in uni)]
    if not targets or not uni:
        return None
    folds = summary.get("folds") or [int(f) for f in str(ref.get("fold", "")).split(",") if f.strip()]

    def per_fold(r: dict[str, Any], t: str) -> list[float]:
        return [float(x) for x in str(r[f"per_fold_{t}"]).split(";")]

    values: dict[str, Any] = {"folds": list(folds), "reference": short_name(ref)}
    cols: dict[str, list[tuple[float, str, float, float]]] = {}
    for t in targets:
        ours = per_fold(ref, t)
        uni_scores = {short_name(r).replace("unimodal ", ""): per_fold(r, t) for r in uni}
        col = []
        for i in range(len(folds)):
            best = max(uni_scores, key=lambda m: uni_scores[m][i])
            col.append((ours[i], best, uni_scores[best][i], ours[i] - uni_scores[best][i]))
        cols[t] = col
        values[f"diff_{t}"] = [c[3] for c in col]
        values[f"best_{t}"] = [c[1] for c in col]
        values[f"ahead_{t}"] = sum(c[3] > 0 for c in col)
    name = values["reference"]
    header = ["fold"] + [h for t in targets for h in (f"{t}: {name}", "best single modality", "difference")]
    body = []
    for i, f in enumerate(folds):
        body.append([str(f)] + [cell for t in targets for cell in (
            _fmt(cols[t][i][0]), f"{cols[t][i][1]} {_fmt(cols[t][i][2])}", signed(cols[t][i][3]))])
    body.append([f"**{name} ahead**"] + [cell for t in targets for cell in (
        "", "", f"**{values[f'ahead_{t}']} of {len(folds)}**")])
    return Table(title=f"{name} minus the best single modality, fold by fold", header=header, rows=body, runs=[],
                 note="Each fold's best single modality is the highest of the unimodal rows on that fold. A "
                      "positive difference: the fusion is ahead on that fold.", values=values)

