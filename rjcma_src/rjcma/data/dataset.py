"""Torch dataset of K-frame windows read from the feature store (the book's chapter *Data format*, paper §4.2.1–4.2.2).

One item is one window ``(trial, start)`` of K = ``cfg.data.seq_len`` frames (stride ``cfg.data.stride``, the last
window aligned to the end, short trials padded and masked). Two input modes read the same store:

* ``cached``: the frozen encoders' features, ``{"audio": (K, d_a), "visual": (K, d_v), "text": (K, d_t)}``.
* ``end2end``: the backbones' inputs, ``"faces"`` (K, 3, 40, 40) — a random 40×40 crop of the 48×48 face plus a
  horizontal flip (p 0.5) in training, the centre crop otherwise, scaled /255 then (x − 0.5)/0.5 — and
  ``"logmel"`` (K, 1, 96, 64); text stays a cached feature.

Text features are standardised (mean 0, std 1 per dimension, paper §4.2.2) with statistics computed on the
TRAINING trials only and handed to the validation/test datasets (``text_stats=train_ds.text_stats``); the
released code normalises each partition with its own statistics (the book's chapter *Paper vs released code*).

Every item also carries ``"labels"`` (K, 2) [valence, arousal] with NaN where unannotated or padded, ``"mask"``
(K,) False on padding, ``"trial"`` and ``"start"``. Store arrays are opened memory-mapped, lazily, once per worker
process, so RAM does not grow with the corpus and the dataset pickles cheaply into DataLoader workers.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from rjcma.config import Config
from rjcma.data.store import Store, feature_key
from rjcma.data.windows import take_window, window_starts
from rjcma.errors import RjcmaError

CROP = 40  # random/centre crop of the 48x48 faces (paper §4.2.2)


def _store(store: Any):
    return store if isinstance(store, Store) else Store(Path(store))


def compute_text_stats(store: Any, trials: list[str], key: str) -> dict[str, np.ndarray]:
    """Per-dimension mean and std of the text features over all frames of ``trials`` (the training trials)."""
    st = _store(store)
    n, s1, s2 = 0, None, None
    for name in trials:
        x = np.asarray(st.load(name, key), dtype=np.float64)  # (N, d_t)
        s1 = x.sum(0) if s1 is None else s1 + x.sum(0)
        s2 = (x * x).sum(0) if s2 is None else s2 + (x * x).sum(0)
        n += x.shape[0]
    if not n:
        raise RjcmaError("no training frames to compute the text statistics from; check the fold's train list")
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
    std = np.where(std < 1e-6, 1.0, std)  # constant dimensions (e.g. all-zero text) stay unscaled
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


class WindowDataset(Dataset):
    """Windows of one partition/fold. ``train`` switches augmentation on; see the module docstring.

    ``modalities`` (default ``cfg.model.modalities``) limits what is read, e.g. to the inputs of the fusion.
    """

    def __init__(
        self,
        store: Any,
        trial_names: list[str],
        cfg: Config,
        train: bool,
        text_stats: dict[str, np.ndarray] | None = None,
        modalities: list[str] | None = None,
    ) -> None:
        self.store = _store(store)
        self.cfg = cfg
        self.train = bool(train)
        self.mode = cfg.train.mode
        self.K = cfg.K
        self.modalities = list(modalities if modalities is not None else cfg.model.modalities)
        self.keys = {m: feature_key(cfg, m) for m in self.modalities}
        self.trials = list(trial_names)
        if not self.trials:
            raise RjcmaError(f"{self.store.root}: no trials given for this dataset; check the folds file")
        self.seed = int(cfg.train.seed)
        self.epoch = 0
        self.lengths: dict[str, int] = {}
        self.index: list[tuple[str, int]] = []
        for name in self.trials:
            n = self._n_frames(name)
            self.lengths[name] = n
            self.index += [(name, s) for s in window_starts(n, self.K, cfg.data.stride)]
        self.text_stats = None
        if "text" in self.modalities:
            if text_stats is None:
                if not self.train:
                    raise RjcmaError(
                        "text features of validation/test must be standardised with the TRAINING statistics: pass "
                        "text_stats=train_dataset.text_stats (paper §4.2.2)"
                    )
                text_stats = compute_text_stats(self.store, self.trials, self.keys["text"])
            self.text_stats = {k: np.asarray(v, dtype=np.float32) for k, v in text_stats.items()}
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    # ---- store access (lazy, memory-mapped, per process) ---------------------------------------
    def _n_frames(self, name: str) -> int:
        if self.store.has(name, "labels"):
            return int(self.store.load(name, "labels").shape[0])
        meta = self.store.meta(name)
        return int(meta["N"])

    def _arr(self, name: str, key: str) -> np.ndarray:
        a = self._cache.get((name, key))
        if a is None:
            a = self.store.load(name, key)
            self._cache[(name, key)] = a
        return a

    def __getstate__(self) -> dict[str, Any]:  # workers reopen the mmaps instead of pickling arrays
        d = dict(self.__dict__)
        d["_cache"] = {}
        return d

    def set_epoch(self, epoch: int) -> None:
        """Augmentation randomness depends on (seed, epoch, index) only: identical across workers and resumes."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.index)

    # ---- items ---------------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict[str, Any]:
        name, start = self.index[i]
        K = self.K
        item: dict[str, Any] = {"trial": name, "start": start}
        if self.store.has(name, "labels"):
            labels, mask = take_window(self._arr(name, "labels"), start, K)  # cut first: reads only the window
            labels = np.where(mask[:, None], labels.astype(np.float32), np.nan).astype(np.float32)  # (K, 2), NaN on padding
        else:  # test trials: no labels
            _, mask = take_window(np.zeros((self.lengths[name], 1), np.float32), start, K)
            labels = np.full((K, 2), np.nan, np.float32)
        item["labels"] = torch.from_numpy(labels)
        item["mask"] = torch.from_numpy(np.asarray(mask, dtype=bool))
        if self.mode == "end2end":
            item.update(self._end2end(name, start))
            mods = [m for m in self.modalities if m == "text"]
        else:
            mods = self.modalities
        for m in mods:
            x, _ = take_window(self._arr(name, self.keys[m]), start, K)  # (K, d_m), only the window is read
            x = x.astype(np.float32)
            if m == "text" and self.text_stats is not None:
                x = (x - self.text_stats["mean"]) / self.text_stats["std"]
                x = np.where(np.asarray(mask)[:, None], x, 0.0)  # padding stays zero
            item[m] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        return item

    def _end2end(self, name: str, start: int) -> dict[str, torch.Tensor]:
        K = self.K
        out: dict[str, torch.Tensor] = {}
        if "visual" in self.modalities:
            faces, _ = take_window(self._arr(name, "faces"), start, K)  # (K, 48, 48, 3) uint8
            H, W = faces.shape[1:3]
            if self.train:
                rng = np.random.default_rng([self.seed, self.epoch, start, zlib.crc32(name.encode())])
                top, left = int(rng.integers(0, H - CROP + 1)), int(rng.integers(0, W - CROP + 1))
                flip = bool(rng.random() < 0.5)
            else:
                top, left, flip = (H - CROP) // 2, (W - CROP) // 2, False
            x = faces[:, top : top + CROP, left : left + CROP, :]
            if flip:
                x = x[:, :, ::-1, :]
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0  # (K, 3, 40, 40)
            out["faces"] = torch.from_numpy((x - 0.5) / 0.5)
        if "audio" in self.modalities:
            lm, _ = take_window(self._arr(name, "logmel"), start, K)  # (K, 96, 64), only the window is read
            lm = lm.astype(np.float32)
            out["logmel"] = torch.from_numpy(np.ascontiguousarray(lm[:, None]))  # (K, 1, 96, 64)
        return out


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep ``trial`` names as a list and ``start`` as a LongTensor."""
    out: dict[str, Any] = {}
    for k in batch[0]:
        vals = [b[k] for b in batch]
        if isinstance(vals[0], torch.Tensor):
            out[k] = torch.stack(vals)
        elif k == "start":
            out[k] = torch.tensor(vals, dtype=torch.long)
        else:
            out[k] = vals
    return out


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)


def make_loader(ds: WindowDataset, cfg: Config, train: bool, epoch: int = 0, batch_size: int | None = None) -> DataLoader:
    """DataLoader with worker processes; the shuffle order depends only on (seed, epoch) so resumes repeat it."""
    ds.set_epoch(epoch)
    g = torch.Generator()
    g.manual_seed(int(cfg.train.seed) * 1000 + int(epoch))
    nw = int(cfg.train.num_workers)
    return DataLoader(
        ds,
        batch_size=int(batch_size or cfg.train.batch_size),
        shuffle=bool(train),
        generator=g,
        num_workers=nw,
        collate_fn=collate,
        worker_init_fn=_worker_init if nw else None,
        pin_memory=torch.cuda.is_available() and cfg.train.device != "cpu",
        drop_last=False,
        persistent_workers=False,
    )
