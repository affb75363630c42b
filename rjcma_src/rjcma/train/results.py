"""Result folders of training runs (the book's chapter *Data format*): where a run's folder is, what its name says,
the config hash that marks it complete, and the records it holds besides the model (``history.csv`` and the
environment written into ``metrics.json``).

``results/<profile>/<kind>/<run_id>/`` with ``kind`` the experiment (train, cv, ablate, compare, ...). A folder
whose ``metrics.json`` carries the current config hash is complete: it is skipped on rerun and reused by any
experiment that asks for the same run.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from rjcma import __version__
from rjcma.config import Config

# config fields that do not change the numbers (excluded from the result-folder hash); `threads` does (sums split
# over another number of threads), `jobs` does not (every run computes with `threads` threads: train_one)
HASH_EXCLUDE = ("results_dir", "run_name", "num_workers", "corpus", "annotations_root", "faces_root", "videos_root",
                "store", "folds_file", "repeats", "jobs")

HISTORY_FIELDS = ["epoch", "lr", "train_loss", "val_ccc_valence", "val_ccc_arousal", "val_ccc_mean", "best", "events",
                  "seconds"]


def config_hash(cfg: Config) -> str:
    """Hash of everything that changes a training run's numbers (data, preprocess, model, train sections)."""
    return cfg.section_hash("data", "preprocess", "model", "train", exclude=HASH_EXCLUDE)


def run_id(cfg: Config) -> str:
    """Folder name of a run: fusion, modalities, l, target, fold, seed (the one naming rule of result folders)."""
    mc = cfg.model
    mods = "".join(m[0] for m in mc.modalities)
    return f"{mc.fusion.replace(':', '-')}_{mods}_l{mc.num_iterations}_{cfg.train.target}_fold{cfg.train.fold}_s{cfg.train.seed}"


def default_run_dir(cfg: Config, kind: str = "train") -> Path:
    """``<results_dir>/<profile>/<kind>/<train.run_name or run_id>``."""
    return Path(cfg.train.results_dir) / cfg.profile / kind / (cfg.train.run_name or run_id(cfg))


def default_checkpoint(cfg: Config) -> Path:
    """The model ``make book`` trains and ``rjcma predict`` uses without --checkpoint: the fold-0 model of the
    cross-validation with the profile's fusion and target (``both`` in the demo)."""
    c = cfg.replace(fold=0)
    if c.train.target != "both":
        c = c.replace(target="valence")
    return Path(c.train.results_dir) / c.profile / "cv" / run_id(c)


def is_complete(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The metrics of a finished result folder with the same config hash, else None."""
    f = Path(run_dir) / "metrics.json"
    if not f.exists():
        return None
    try:
        m = json.loads(f.read_text())
    except ValueError:
        return None
    return m if m.get("config_hash") == config_hash(cfg) else None


def find_done(cfg: Config) -> Path | None:
    """A complete result folder of the same configuration anywhere under results/<profile>/ (e.g. the fold-0 RJCMA
    model of the cross-validation is also the RJCMA row of the comparison)."""
    root = Path(cfg.train.results_dir) / cfg.profile
    for f in sorted(root.glob(f"*/{run_id(cfg)}*/metrics.json")):
        if is_complete(f.parent, cfg) is not None:
            return f.parent
    return None


def history_csv(rows: list[dict[str, Any]]) -> str:
    """``history.csv``: one row per epoch (:data:`HISTORY_FIELDS`; empty cells for missing values)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in HISTORY_FIELDS})
    return buf.getvalue()


def environment(device: torch.device) -> dict[str, Any]:
    """What produced a run: package, git commit, torch, Python, device and thread count (into ``metrics.json``)."""
    git = ""
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except Exception:  # noqa: BLE001 - best effort
        pass
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    return {
        "rjcma": __version__,
        "git": git or None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": dev,
        "threads": torch.get_num_threads(),
    }
