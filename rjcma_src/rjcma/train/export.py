"""Test-set predictions in the ABAW submission format (``rjcma export-test``; the book's chapter *Data format*).

One row per frame of every trial of the partition, ``<trial>/<NNNNN>.jpg,valence,arousal`` with NNNNN the 1-based
frame number; with the organisers' sample submission file, exactly its rows, in its order. The predictions come from
one model that predicts both targets or from two (a valence and an arousal model, as the paper trains them).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rjcma.config import Config
from rjcma.data.dataset import WindowDataset, make_loader
from rjcma.data.store import Store
from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_text
from rjcma.models.rjcma import fusion_modalities
from rjcma.train.evaluation import merge_predictions, predict_windows
from rjcma.train.saved_model import load_model

PerTarget = dict[str, dict[str, np.ndarray]]  # target -> trial -> per-frame prediction


def export_test(cfg: Config, checkpoint: Any, out: str | Path, sample_file: str | Path | None = None,
                partition: str = "test") -> Path:
    """Predictions for every frame of the ``partition`` trials in the ABAW submission format.

    ``checkpoint``: a result folder (or a list of two: a valence and an arousal model, as the paper trains them).
    Rows ``<trial>/<NNNNN>.jpg,valence,arousal`` with NNNNN the 1-based frame number; with ``sample_file`` (the
    organisers' sample submission) exactly its rows, in its order.
    """
    ckpts = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint)
    store = Store(Path(cfg.data.store))
    trials = [n for n in store.trials() if str(store.meta(n).get("partition", "")).lower() == partition]
    if not trials:
        raise RjcmaError(f"{store.root}: no '{partition}' trials in the store; preprocess the corpus with its test set")
    per_target: PerTarget = {}
    for ck in ckpts:
        per_target.update(_predict_partition(cfg, ck, store, trials))
    missing = [t for t in ("valence", "arousal") if t not in per_target]
    if missing:
        raise RjcmaError(f"{ckpts[0]}: no model for {', '.join(missing)}; give a 'both' model or one per target")
    if sample_file:
        rows = _sample_rows(Path(sample_file))
    else:
        rows = [(n, k) for n in sorted(trials) for k in range(len(per_target["valence"][n]))]
    out = Path(out)
    atomic_write_text(out, _submission(rows, per_target, sample_file, partition, store.root))
    return out


def _predict_partition(cfg: Config, checkpoint: Any, store: Store, trials: list[str]) -> PerTarget:
    """The per-frame predictions of one saved model for ``trials``, by the targets it predicts."""
    model, mcfg, text_stats = load_model(checkpoint)
    mcfg = mcfg.replace(store=str(store.root), num_workers=cfg.train.num_workers, device=cfg.train.device)
    device = torch.device("cuda" if torch.cuda.is_available() and mcfg.train.device != "cpu" else "cpu")
    model.to(device)
    ds = WindowDataset(store, trials, mcfg, train=False, text_stats=text_stats, modalities=fusion_modalities(mcfg))
    merged = merge_predictions(predict_windows(model, make_loader(ds, mcfg, train=False), device), ds.lengths, mcfg.K)
    return {t: {n: p[:, j] for n, p in merged.items()} for j, t in enumerate(mcfg.targets)}


def _sample_rows(sp: Path) -> list[tuple[str, int]]:
    """(trial, 0-based frame) of every row of the organisers' sample submission file, in its order."""
    if not sp.exists():
        raise RjcmaError(f"{sp}: sample submission file not found")
    rows: list[tuple[str, int]] = []
    for i, line in enumerate(sp.read_text().splitlines()[1:], start=2):
        loc = line.split(",")[0].strip()
        if not loc:
            continue
        try:
            trial, img = loc.rsplit("/", 1)
            rows.append((trial, int(img.split(".")[0]) - 1))
        except ValueError as e:
            raise RjcmaError(f"{sp}:{i}: expected <trial>/<NNNNN>.jpg, got {loc!r}") from e
    return rows


def _submission(rows: list[tuple[str, int]], per_target: PerTarget, sample_file: Any, partition: str,
                store_root: Path) -> str:
    """The submission CSV: header, then one ``<trial>/<NNNNN>.jpg,valence,arousal`` line per row (a frame past a
    trial's end takes its last prediction)."""
    buf = io.StringIO()
    buf.write("image_location,valence,arousal\n")
    for trial, k in rows:
        if trial not in per_target["valence"]:
            raise RjcmaError(f"{sample_file}: trial {trial} is not a '{partition}' trial of {store_root}")
        v = per_target["valence"][trial]
        a = per_target["arousal"][trial]
        k = min(k, len(v) - 1)
        buf.write(f"{trial}/{k + 1:05d}.jpg,{v[k]:.6f},{a[k]:.6f}\n")
    return buf.getvalue()
