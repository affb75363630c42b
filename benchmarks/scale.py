"""Benchmark: cached-mode training data at Aff-Wild2's size, on CPU.

1. Writes a generated feature store the size of Aff-Wild2 (594 trials, ~2.99M frames; lengths log-normal like the
   real videos', 10 s to ~20 min): per trial only what cached training reads, ``ir50.npy`` (N, 512),
   ``vggish.npy`` (N, 128), ``bert.npy`` (N, 768) in float16 and ``labels.npy`` (N, 2) float32, plus ``meta.json``;
   ~8.4 GB, written through memory maps (the free disk space is checked first).
2. For each corpus size in ``--sizes`` (the first n trials), in a fresh process: one full epoch of the training
   windows of fold 1 (released chunks, K=300, stride 200, batch 12, shuffled) through the package's
   ``WindowDataset`` + ``DataLoader``, memory-mapped. Reports windows/s, MB/s read and the peak memory of the
   process: anonymous RSS (what the process owns; must stay flat as trials grow) and file-backed RSS (mapped
   store pages, reclaimable page cache) separately.
3. Per-window cost of the paper profile's cached model (RJCMA l=3, TCN 4x256, K=300) on real batches: a training
   step (forward + backward + Adam) and a validation forward; and, with ``--e2e-frames``, the per-frame cost of
   the end-to-end model (IR-50 40x40 + VGGish 96x64, every group released).
4. The projected time of one fold of the paper recipe (at most ``--epochs`` epochs, each: every training window
   once plus the validation windows) from those costs.

    nice -n 10 .venv/bin/python benchmarks/scale.py [--store DIR] [--keep] [--sizes 100,300,594] [--json out.json]
    .venv/bin/python benchmarks/scale.py --smoke      # a few seconds: 12 small trials, narrow model, K=32
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIMS = {"ir50": 512, "vggish": 128, "bert": 768}
TRIALS, FRAMES = 594, 2_990_000  # 6th ABAW VA track
TEST_SHARE = 162 / 594  # test videos: in the store, never in a fold
STRIDE = 200


def lengths_for(trials: int, frames: int, seed: int = 0, minimum: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = rng.lognormal(mean=0.0, sigma=0.8, size=trials)
    return np.maximum(minimum, np.round(raw / raw.sum() * frames)).astype(np.int64)


def store_bytes(lengths: np.ndarray) -> int:
    return int(lengths.sum()) * (2 * sum(DIMS.values()) + 8)


def write_store(root: Path, trials: int, frames: int, minimum: int = 300) -> dict:
    """The generated store; returns its summary (also written to ``root/scale.json``)."""
    from numpy.lib.format import open_memmap

    lengths = lengths_for(trials, frames, minimum=minimum)
    need = store_bytes(lengths)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < need * 1.1:
        raise SystemExit(f"{root}: {need / 2**30:.1f} GiB needed for the store, {free / 2**30:.1f} GiB free; "
                         "pass --store on a larger disk")
    rng = np.random.default_rng(1)
    R = 8192  # random rows, reused with a per-trial offset: the content does not change the cost of reading it
    blocks = {k: rng.standard_normal((R, d)).astype(np.float16) for k, d in DIMS.items()}
    n_test = round(trials * TEST_SHARE)
    n_val = round((trials - n_test) * 76 / 432)
    t0 = time.perf_counter()
    from tqdm import tqdm

    for i, n in enumerate(tqdm(lengths, desc="write store", unit="trial", disable=trials < 50)):
        name = f"{i:03d}-30-1280x720"
        part = "train" if i < trials - n_test - n_val else ("validation" if i < trials - n_test else "test")
        d = root / name
        d.mkdir(exist_ok=True)
        for k, blk in blocks.items():
            mm = open_memmap(d / f"{k}.npy", mode="w+", dtype=np.float16, shape=(int(n), blk.shape[1]))
            for s in range(0, int(n), R):
                e = min(int(n), s + R)
                mm[s:e] = np.roll(blk, i, axis=0)[: e - s]
            mm.flush()
            del mm
        t = np.arange(n, dtype=np.float32)
        lab = np.stack([np.sin(t / 97 + i), np.cos(t / 131 + i)], 1).astype(np.float32) * 0.6
        if part == "test":
            lab[:] = np.nan
        np.save(d / "labels.npy", lab)
        (d / "meta.json").write_text(json.dumps({"N": int(n), "partition": part, "fps": 30.0, "complete": True}))
    info = {"trials": trials, "frames": int(lengths.sum()), "bytes": need, "write_s": round(time.perf_counter() - t0, 1)}
    (root / "scale.json").write_text(json.dumps(info))
    return info


def fold1(root: Path, use: int) -> tuple[list[str], list[str]]:
    """Fold 1 of the released scheme over the first ``use`` trials: train chunks 0-3 + validation, validate on
    chunk 4 (data/folds.py)."""
    from rjcma.data.folds import _released_chunks

    metas = {d.name: json.loads((d / "meta.json").read_text()) for d in sorted(root.iterdir())
             if (d / "meta.json").is_file()}
    names = sorted(metas)[:use]
    train = [n for n in names if metas[n]["partition"] == "train"]
    val = [n for n in names if metas[n]["partition"] == "validation"]
    chunks = _released_chunks(train, 5)
    v = chunks[(len(chunks) - 1) % len(chunks)]
    return sorted(set(train) - set(v)) + val, sorted(v)


def _mem() -> dict[str, float]:
    """Current anonymous and file-backed RSS of this process (MiB), from /proc/self/status."""
    out = {"RssAnon": 0.0, "RssFile": 0.0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            k = line.split(":")[0]
            if k in out:
                out[k] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def cfg_for(root: Path, K: int, narrow: bool):
    from rjcma.config import load_config

    cfg = load_config("paper").replace(store=str(root), seq_len=K, stride=min(STRIDE, K), mode="cached",
                                       target="valence", device="cpu", num_workers=0, mixed_precision="no")
    if narrow:
        cfg = cfg.replace(tcn_audio=[16, 16], tcn_visual=[16, 16], tcn_text=[16, 16], head_hidden=16)
    return cfg


def raw_reads(ds, order: list[int], seconds: float) -> float:
    """Windows/s of reading the same windows straight from the memory maps (slice, then convert): what the data
    path costs without the dataset's per-item work, for comparison."""
    keys = list(ds.keys.values()) + ["labels"]
    arrs = {(n, k): np.load(Path(ds.store.root) / n / f"{k}.npy", mmap_mode="r") for n in ds.trials for k in keys}
    t0, n = time.perf_counter(), 0
    for i in order:
        name, s = ds.index[i]
        for k in keys:
            np.asarray(arrs[(name, k)][s:s + ds.K], dtype=np.float32)
        n += 1
        if seconds and time.perf_counter() - t0 > seconds:
            break
    return n / (time.perf_counter() - t0)


def epoch(root: Path, use: int, K: int, batch: int, workers: int, narrow: bool, max_seconds: float = 0) -> dict:
    """One epoch of fold-1 training windows through the package's DataLoader (no model): rate and memory.
    ``max_seconds`` > 0 stops early (the rate is then over the windows read, in the epoch's shuffled order)."""
    import torch

    from rjcma.data.dataset import WindowDataset, make_loader

    import threading

    cfg = cfg_for(root, K, narrow).replace(batch_size=batch, num_workers=workers)
    train, val = fold1(root, use)
    phase = {"now": "setup"}
    peaks = {p: {"RssAnon": 0.0, "RssFile": 0.0} for p in ("setup", "epoch")}
    done = threading.Event()

    def sample() -> None:  # memory of both phases, every 0.1 s
        while not done.is_set():
            m, pk = _mem(), peaks[phase["now"]]
            for k in pk:
                pk[k] = max(pk[k], m[k])
            done.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    ds = WindowDataset(root, train, cfg, train=True)  # indexes the windows, text statistics over the train trials
    setup_s = time.perf_counter() - t0
    phase["now"] = "epoch"
    n_bytes, n_win = 0, 0
    t0 = time.perf_counter()
    for b in make_loader(ds, cfg, train=True, epoch=0):
        n_win += len(b["trial"])
        n_bytes += sum(b[m].numel() for m in ("audio", "visual", "text")) * 2  # float16 on disk
        if max_seconds and time.perf_counter() - t0 > max_seconds:
            break
    sec = time.perf_counter() - t0
    done.set()
    th.join()
    peak = peaks["epoch"]
    for k, v in _mem().items():  # an epoch shorter than the sampling interval still gets one sample
        peak[k] = max(peak[k], v)
    g = torch.Generator().manual_seed(int(cfg.train.seed) * 1000)
    order = torch.randperm(len(ds), generator=g).tolist()  # the loader's epoch-0 order
    return {"trials_in_store_subset": use, "train_trials": len(train), "val_trials": len(val),
            "train_frames": int(sum(ds.lengths.values())), "train_windows": len(ds), "windows_read": n_win,
            "full_epoch": n_win == len(ds), "read_s": round(sec, 2), "setup_s": round(setup_s, 2),
            "windows_per_s": round(n_win / sec, 1), "MB_per_s": round(n_bytes / sec / 1e6, 1),
            "raw_windows_per_s": round(raw_reads(ds, order, max_seconds or 0), 1),
            "peak_rss_anon_MiB": round(peak["RssAnon"], 1), "peak_rss_file_MiB": round(peak["RssFile"], 1),
            "setup_peak_rss_anon_MiB": round(peaks["setup"]["RssAnon"], 1),
            "setup_peak_rss_file_MiB": round(peaks["setup"]["RssFile"], 1),
            "max_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def model_costs(root: Path, K: int, batch: int, n_batches: int, narrow: bool, e2e_frames: int) -> dict:
    """Seconds per window of a cached training step and of a validation forward (real batches from the store);
    with ``e2e_frames`` the seconds per frame of an end-to-end training step (every group released)."""
    import torch

    from rjcma.data.dataset import WindowDataset, make_loader
    from rjcma.train.trainable import build_trainable, make_optimizer
    from rjcma.train.losses import ccc_loss

    cfg = cfg_for(root, K, narrow).replace(batch_size=batch)
    train, val = fold1(root, 10**9)
    ds = WindowDataset(root, train[:40], cfg, train=True)
    torch.manual_seed(0)
    model = build_trainable(cfg)
    opt = make_optimizer(model, cfg, cfg.train.lr)
    batches = []
    for b in make_loader(ds, cfg, train=True, epoch=0):
        batches.append(b)
        if len(batches) > n_batches:
            break

    def step(b):
        model.train()
        loss = ccc_loss(model(b)["pred"].float(), b["labels"][..., :1], b["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])  # warm-up
    t0 = time.perf_counter()
    for b in batches[1:]:
        step(b)
    train_s = (time.perf_counter() - t0) / sum(len(b["trial"]) for b in batches[1:])
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        for b in batches[1:]:
            model(b)
        eval_s = (time.perf_counter() - t0) / sum(len(b["trial"]) for b in batches[1:])
    out = {"train_s_per_window": train_s, "eval_s_per_window": eval_s,
           "parameters": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads()}
    if e2e_frames:
        from rjcma.train.trainable import layer_groups, release_group

        ecfg = cfg.replace(mode="end2end", seq_len=e2e_frames, stride=e2e_frames, encoder_init="seeded",
                           store=tempfile.mkdtemp(prefix="rjcma_scale_enc_"))
        m = build_trainable(ecfg)
        for g in range(len(layer_groups(m))):
            release_group(m, g)
        eopt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-5)
        eb = {"faces": torch.randn(1, e2e_frames, 3, 40, 40), "logmel": torch.randn(1, e2e_frames, 1, 96, 64),
              "text": torch.randn(1, e2e_frames, ecfg.model.text_dim),
              "labels": torch.rand(1, e2e_frames, 2) * 2 - 1, "mask": torch.ones(1, e2e_frames, dtype=torch.bool)}
        m.train()
        t0 = time.perf_counter()
        loss = ccc_loss(m(eb)["pred"].float(), eb["labels"][..., :1], eb["mask"])
        eopt.zero_grad(set_to_none=True)
        loss.backward()
        eopt.step()
        out["e2e_s_per_frame"] = (time.perf_counter() - t0) / e2e_frames
        shutil.rmtree(ecfg.data.store, ignore_errors=True)
    return out


def project(ep: dict, costs: dict, K: int, epochs: int, val_windows: int) -> dict:
    """One fold of the paper recipe: ``epochs`` epochs of (every training window + the validation windows)."""
    tw = ep["train_windows"]
    data_s = tw / ep["windows_per_s"]  # the loader's rate (measured over the windows read)
    cached_epoch = tw * costs["train_s_per_window"] + val_windows * costs["eval_s_per_window"]
    out = {"epochs": epochs, "train_windows": tw, "val_windows": val_windows, "data_epoch_s": round(data_s, 1),
           "cached_epoch_h": round(cached_epoch / 3600, 2), "cached_fold_h": round(epochs * cached_epoch / 3600, 1)}
    if "e2e_s_per_frame" in costs:
        # every window's K frames go through both backbones; validation forward ~ 1/3 of a step
        e2e_epoch = (tw + val_windows / 3) * K * costs["e2e_s_per_frame"]
        out["end2end_epoch_h"] = round(e2e_epoch / 3600, 1)
        out["end2end_fold_h"] = round(epochs * e2e_epoch / 3600, 0)
    return out


def _child(args) -> None:
    r = epoch(Path(args.store), args.use, args.K, args.batch, args.workers, args.narrow, args.max_seconds)
    print("RESULT " + json.dumps(r), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="", help="store folder (default: a temporary folder, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the generated store")
    ap.add_argument("--trials", type=int, default=TRIALS)
    ap.add_argument("--frames", type=int, default=FRAMES)
    ap.add_argument("--sizes", default="100,300,594", help="corpus sizes (first n trials) of the epoch runs")
    ap.add_argument("--K", type=int, default=300)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    ap.add_argument("--max-seconds", type=float, default=600,
                    help="stop each epoch run after this many seconds of reading and report the rate over the "
                         "windows read (0: always the whole epoch)")
    ap.add_argument("--model-batches", type=int, default=3, help="timed batches for the per-window model costs")
    ap.add_argument("--e2e-frames", type=int, default=8, help="frames of the end2end cost measurement (0: skip)")
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the projected fold (paper: at most 100)")
    ap.add_argument("--narrow", action="store_true", help="narrow TCNs (a quick check, not the paper's model)")
    ap.add_argument("--smoke", action="store_true", help="tiny run: 12 trials, 12,000 frames, K=32, narrow")
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    ap.add_argument("--use", type=int, default=0, help=argparse.SUPPRESS)  # child: one epoch on n trials
    args = ap.parse_args()
    if args.smoke:
        args.trials, args.frames, args.sizes, args.K, args.narrow = 12, 12_000, "4,8,12", 32, True
        args.model_batches, args.e2e_frames, args.epochs, args.max_seconds = 1, 0, 2, 0
    if args.use:
        _child(args)
        return 0

    sizes = [min(int(s), args.trials) for s in args.sizes.split(",")]
    tmp = None
    root = Path(args.store) if args.store else Path(tmp := tempfile.mkdtemp(prefix="rjcma_scale_"))
    try:
        info_f = root / "scale.json"
        info = json.loads(info_f.read_text()) if info_f.is_file() else None
        if not info or info["trials"] != args.trials:
            info = write_store(root, args.trials, args.frames, minimum=300 if not args.smoke else 200)
        print(f"store: {root}: {info['trials']} trials, {info['frames']:,} frames, {info['bytes'] / 2**30:.2f} GiB "
              f"(written in {info.get('write_s', '?')} s)")
        runs = []
        for n in sizes:
            cmd = [sys.executable, __file__, "--store", str(root), "--use", str(n), "--K", str(args.K),
                   "--batch", str(args.batch), "--workers", str(args.workers), "--max-seconds", str(args.max_seconds)]
            cmd += ["--narrow"] if args.narrow else []
            r = subprocess.run(cmd, capture_output=True, text=True)
            line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
            if r.returncode or line is None:
                print(r.stderr[-2000:], file=sys.stderr)
                return 1
            runs.append(json.loads(line[7:]))
            e = runs[-1]
            print(f"epoch on {n:>4} trials: {e['windows_read']:>6} of {e['train_windows']} windows in "
                  f"{e['read_s']:>7.1f} s = {e['windows_per_s']:>7.1f} windows/s, {e['MB_per_s']:>6.1f} MB/s "
                  f"(straight from the maps: {e['raw_windows_per_s']:.1f} windows/s); peak RSS anon "
                  f"{e['peak_rss_anon_MiB']:.0f} MiB, file-backed {e['peak_rss_file_MiB']:.0f} MiB; "
                  f"dataset set-up {e['setup_s']:.1f} s (peak RSS anon {e['setup_peak_rss_anon_MiB']:.0f} MiB, "
                  f"file-backed {e['setup_peak_rss_file_MiB']:.0f} MiB)")
        costs = model_costs(root, args.K, args.batch, args.model_batches, args.narrow, args.e2e_frames)
        print(f"cached model ({costs['parameters']:,} parameters, {costs['threads']} threads): "
              f"{costs['train_s_per_window']:.3f} s per window per training step, "
              f"{costs['eval_s_per_window']:.3f} s per window forward"
              + (f"; end2end {costs['e2e_s_per_frame']:.3f} s per frame" if "e2e_s_per_frame" in costs else ""))
        full = runs[-1]
        from rjcma.data.dataset import WindowDataset

        _, val = fold1(root, sizes[-1])
        val_windows = len(WindowDataset(root, val, cfg_for(root, args.K, args.narrow), train=False,
                                        text_stats={"mean": np.zeros(768, np.float32), "std": np.ones(768, np.float32)}))
        proj = project(full, costs, args.K, args.epochs, val_windows)
        print(f"projected fold (paper recipe, {args.epochs} epochs, {proj['train_windows']} train + "
              f"{proj['val_windows']} validation windows): cached features {proj['cached_epoch_h']} h/epoch, "
              f"{proj['cached_fold_h']} h/fold; data loading alone {proj['data_epoch_s']} s/epoch"
              + (f"; end2end {proj['end2end_epoch_h']} h/epoch, {proj['end2end_fold_h']:.0f} h/fold"
                 if "end2end_fold_h" in proj else ""))
        res = {"store": info, "K": args.K, "batch": args.batch, "workers": args.workers, "narrow": args.narrow,
               "epochs_by_size": runs, "model": costs, "projection": proj,
               "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2))
        return 0
    finally:
        if tmp and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
