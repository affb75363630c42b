"""The gating chapter (notebook 06c_gating): the family's runs and their table beside the published numbers, the gate
weights of a trained model over one validation trial, and the exercises' checks.

The family's runs are the comparison's fold rows (``rjcma compare``): :func:`family_runs` trains the missing ones
through the comparison's own plan and pool, so they land where ``rjcma compare`` and ``make book`` put them and are
reused by the comparison chapter, but it writes no ``summary.json`` (that is the whole comparison's table, written
by the comparison chapter).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rjcma import paper_numbers
from rjcma.book.citations import cite_paper_refs
from rjcma.config import Config
from rjcma.data.dataset import WindowDataset, make_loader
from rjcma.data.store import Store
from rjcma.data.windows import merge_windows
from rjcma.errors import RjcmaError
from rjcma.fusions import FUSIONS
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import f3
from rjcma.models.gating import Gate
from rjcma.models.rjcma import fusion_modalities
from rjcma.train.cv import compare_models, plan_compare, plan_configs
from rjcma.train.intervals import table_intervals
from rjcma.train.pool import run_all
from rjcma.train.results import run_id
from rjcma.train.saved_model import load_model

# the chapter's table: the audio-visual recursion without and with gates, then the three-way one without and with
FAMILY = ("rjca", "grjca", "hgrjca", "dca", "rjcma", "gated-rjcma")
REFERENCE = "rjcma"  # every row's paired difference is to the paper's RJCMA
COLD, HOT = 1e-4, 1e4  # the exercises' temperatures: "T → 0" and "T → ∞"


# ---- the runs and their table -------------------------------------------------------------------------------------
def family_models() -> list[tuple[str, str, list[str]]]:
    """The comparison's rows (label, fusion, modalities) of :data:`FAMILY`, in the comparison's order."""
    return compare_models(list(FAMILY))


def family_runs(cfg: Config, progress: bool = True, log: Callable = print) -> dict[str, list[Path]]:
    """``{fusion: [run folders]}`` of :data:`FAMILY` on fold ``cfg.train.fold``, trained first where missing."""
    models = family_models()
    cells = plan_compare(cfg, cfg.train.fold, models)
    done = run_all(plan_configs(cells), "compare", progress, log)
    return {fusion: [done[run_id(c)][1] for cs in pf.values() for c in cs] for (_, fusion, _), pf in zip(models, cells)}


def published(fusion: str) -> tuple[float | None, float | None, str]:
    """The published validation CCC (valence, arousal) of a fusion on Aff-Wild2, and where it is from."""
    for m in paper_numbers.FAMILY_METHODS:
        if fusion in m["fusions"]:
            return m["val_valence"], m["val_arousal"], m["source"]
    for m in paper_numbers.TABLE2_METHODS:
        if m["fusion"] == fusion:
            return m["val_valence"], m["val_arousal"], "RJCMA paper, Table 2"
    if fusion == "gated-rjcma":
        return None, None, "none: ours, from no paper"
    return None, None, "none typed (see rjcma.paper_numbers)"


def _ci(iv) -> str:
    return f"{iv.estimate:.3f} [{iv.low:.3f}, {iv.high:.3f}]"


def family_table(runs: dict[str, list[Path]], store: str | Path | None = None) -> tuple[list[str], list[list], dict]:
    """(header, rows, values) of the family's table: our CCC with its 95 % interval, the paired difference to
    RJCMA per target (bootstrap, :mod:`rjcma.train.intervals`), and the published validation numbers with their
    source. ``values``: ``{fusion: {"valence", "arousal", "mean", "diff_valence", "diff_arousal"}}`` (floats)."""
    labels = {f: FUSIONS[f].label for f in runs}
    ti = table_intervals({labels[f]: paths for f, paths in runs.items()}, labels.get(REFERENCE), store)
    header = ["method · modalities", "valence [95 %]", "arousal [95 %]", "Δ valence to RJCMA [95 %]",
              "Δ arousal to RJCMA [95 %]", "published V / A", "published in"]
    rows, values = [], {}
    for f, paths in runs.items():
        tg = ti.row(labels[f]).targets
        v, a = tg["valence"], tg["arousal"]
        mean = (v.ccc.estimate + a.ccc.estimate) / 2
        pv, pa, source = published(f)
        mods = "+".join(m[0].upper() for m in FUSIONS[f].compare_modalities())
        diffs = [_ci(t.diff) if t.diff else "reference" for t in (v, a)]
        both = f"{f3(pv)} / {f3(pa)}" if pv is not None else "—"
        rows.append([f"{cite_paper_refs(labels[f])} · {mods}", _ci(v.ccc), _ci(a.ccc), *diffs, both, source])
        values[f] = {"valence": v.ccc.estimate, "arousal": a.ccc.estimate, "mean": mean,
                     "diff_valence": v.diff.estimate if v.diff else 0.0,
                     "diff_arousal": a.diff.estimate if a.diff else 0.0}
    return header, rows, values


# ---- the gate weights of a trained model on one validation trial --------------------------------------------------
@dataclass
class GateTrace:
    """One trained model's gate weights over one trial, merged from its windows to one row per frame.

    ``gates[name] = {"candidates": labels, "weights": {modality: (N, n) array}}`` (the model's ``"gates"`` output,
    windows averaged per frame as its predictions are); ``labels`` (N, 2) valence, arousal of the trial; ``face``
    (N,) whether a face was found in each frame (None when the store has no face mask)."""

    fusion: str
    run_dir: Path
    trial: str
    fps: float
    modalities: list[str]
    gates: dict[str, dict[str, Any]]
    labels: np.ndarray
    face: np.ndarray | None = None


def validation_trial(run_dir: str | Path, name: str = "") -> str:
    """``name`` if given, else the first validation trial the run was scored on (its metrics.json)."""
    m = json.loads((Path(run_dir) / "metrics.json").read_text())
    trials = sorted(m["metrics"][m["targets"][0]]["per_trial"])
    if name and name not in trials:
        raise RjcmaError(f"{run_dir}: {name} is not one of the run's validation trials ({', '.join(trials)})")
    return name or trials[0]


@torch.no_grad()
def gate_trace(run_dir: str | Path, store: str | Path, trial: str = "") -> GateTrace:
    """Run the saved model of ``run_dir`` (a gated fusion) over every window of a validation trial of ``store``."""
    model, mcfg, text_stats = load_model(run_dir)
    mcfg = mcfg.replace(store=str(store), num_workers=0, device="cpu")
    mods = fusion_modalities(mcfg)
    trial = validation_trial(run_dir, trial)
    st = Store(store)
    ds = WindowDataset(st, [trial], mcfg, train=False, text_stats=text_stats, modalities=mods)
    per: dict[tuple[str, str], list[tuple[int, np.ndarray]]] = {}
    candidates: dict[str, tuple[str, ...]] = {}
    for batch in make_loader(ds, mcfg, train=False):
        gates = model(batch)["gates"]
        if not gates:
            raise RjcmaError(f"{run_dir}: fusion {mcfg.model.fusion!r} has no gates; pick a gated fusion")
        for name, g in gates.items():
            candidates[name] = tuple(g["candidates"])
            for m, w in zip(mods, g["weights"]):
                for b, start in enumerate(batch["start"].tolist()):
                    per.setdefault((name, m), []).append((int(start), w[b].float().numpy()))
    n = ds.lengths[trial]
    merged = {k: merge_windows([w for _, w in v], [s for s, _ in v], n, mcfg.K) for k, v in per.items()}
    weights = {name: {"candidates": c, "weights": {m: merged[(name, m)] for m in mods}}
               for name, c in candidates.items()}
    labels = np.asarray(st.load(trial, "labels"), dtype=np.float32)
    face = np.asarray(st.load(trial, "face_mask"), dtype=bool)[:n] if st.has(trial, "face_mask") else None
    return GateTrace(mcfg.model.fusion, Path(run_dir), trial, float(st.meta(trial).get("fps", 30.0)), mods, weights,
                     labels, face)


def entropy(w: np.ndarray) -> np.ndarray:
    """Entropy in nats of each row of weights (a zero weight adds nothing): 0 for a hard choice, log n uniform."""
    w = np.asarray(w, dtype=np.float64)
    return -(w * np.log(np.clip(w, 1e-300, None))).sum(-1)


def gate_summary(trace: GateTrace) -> tuple[list[str], list[list]]:
    """(header, rows): per gate and modality, the mean weight of each candidate over the trial's frames, the share
    of frames whose largest weight is on an attended candidate (not X(0)), and the mean entropy."""
    n_max = max(len(g["candidates"]) for g in trace.gates.values())
    header = ["gate", "modality", *(f"candidate {i + 1}" for i in range(n_max)), "frames choosing attended",
              "mean entropy / log n"]
    rows = []
    for name, g in trace.gates.items():
        for m in trace.modalities:
            w = g["weights"][m]
            cells = [f"{c}: {x:.3f}" for c, x in zip(g["candidates"], w.mean(0))]
            cells += [""] * (n_max - len(cells))
            attended = f"{np.mean(w.argmax(-1) > 0):.3f}" if g["candidates"][0] == "X(0)" else "—"
            rows.append([name, m, *cells, attended, f"{entropy(w).mean() / math.log(w.shape[1]):.3f}"])
    return header, rows


def attended_weight(trace: GateTrace, gate: str = "gate") -> dict[str, float]:
    """Mean weight on the attended candidates (all but X(0)) per modality: 1 − mean w(X(0))."""
    g = trace.gates[gate]
    if g["candidates"][0] != "X(0)":
        raise RjcmaError(f"gate {gate!r} of {trace.fusion} has no unattended candidate X(0)")
    return {m: float(1.0 - g["weights"][m][:, 0].mean()) for m in trace.modalities}


def attended_by_face(trace: GateTrace, gate: str = "gate") -> tuple[list[str], list[list], dict[str, tuple]]:
    """(header, rows, values): per modality, the mean weight on the attended candidates over the frames with a face
    and over those without (where the visual features describe no face). ``values[m] = (with, without)``, None
    where there is no such frame."""
    if trace.face is None:
        raise RjcmaError(f"{trace.run_dir}: the store has no face mask for {trace.trial}")
    g = trace.gates[gate]
    if g["candidates"][0] != "X(0)":
        raise RjcmaError(f"gate {gate!r} of {trace.fusion} has no unattended candidate X(0)")
    face = trace.face
    header = ["modality", "frames with a face", "attended weight there", "frames without", "attended weight there"]
    rows, values = [], {}
    for m in trace.modalities:
        att = 1.0 - np.asarray(g["weights"][m][:, 0], dtype=np.float64)
        pair = tuple(float(att[sel].mean()) if sel.any() else None for sel in (face, ~face))
        values[m] = pair
        rows.append([m, int(face.sum()), f3(pair[0]), int((~face).sum()), f3(pair[1])])
    return header, rows, values


# ---- the exercises --------------------------------------------------------------------------------------------------
def _as_ints(answer: Any) -> tuple[int, ...] | None:
    try:
        return tuple(int(a) for a in np.asarray(answer).ravel())
    except (TypeError, ValueError):
        return None


def cold_copy(gate: Gate, temperature: float = COLD) -> Gate:
    """The same gate (same W_m and bias) at another temperature."""
    out = Gate(gate.dim, gate.n_candidates, temperature).to(gate.weight.dtype)
    out.load_state_dict(gate.state_dict())
    return out


@torch.no_grad()
def check_cold_choice(answer: Any, gate: Gate, x: torch.Tensor, Z: Sequence[torch.Tensor]) -> Verdict:  # noqa: N803
    """Exercise: the candidate a gate picks at each time step of window 0 as T → 0 (the argmax of W x + b)."""
    if answer is None:
        return check_value("candidate per time step", None, None)
    got = _as_ints(answer)
    if got is None:
        return failed(f"candidate per time step: {answer!r} is not a sequence of candidate indices")
    Y, w = cold_copy(gate)(x, Z)
    pick = w[0].argmax(-1)  # (K,)
    hard = torch.relu(torch.stack(list(Z), -2)[0][torch.arange(len(pick)), pick])  # ReLU(Z_pick), (K, d_m)
    gap = float((Y[0] - hard).abs().max())
    return check_value("candidate per time step", got, tuple(pick.tolist()), 0,
                       f"at T = {COLD:g} the output is ReLU of that candidate to {gap:.1e}")


def check_entropies(answer: Any, trace: GateTrace, modality: str = "visual", gate: str = "gate") -> Verdict:
    """Exercise: (the entropy of the gate's weights as T → ∞, which is log n; the trained gate's mean entropy over
    the trial's frames)."""
    g = trace.gates[gate]
    want = (math.log(len(g["candidates"])), float(entropy(g["weights"][modality]).mean()))
    if answer is not None and (not isinstance(answer, (tuple, list)) or len(answer) != 2):
        return failed(f"entropies: give a pair (limit, measured), got {answer!r}")
    return check_value("entropies (T → ∞, trained)", None if answer is None else tuple(answer), want, 1e-4,
                       f"the trained {modality} gate sits at {want[1] / want[0]:.2f} of the uniform entropy")
