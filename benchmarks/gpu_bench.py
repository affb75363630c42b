"""GPU benchmark of the paper path: one script, under 8 minutes on one GPU (run it with benchmarks/gpu.sh).

Sections, each with its peak memory (CUDA: ``max_memory_allocated`` after a reset; CPU: max RSS of the process):

1. ``fusion``    forward + backward of the fusion alone, fp32 and bf16: the paper's RJCMA (l = 3) and the released
                 ``DCNLayer`` variant, B = 12, K = 300, the released widths.
2. ``cached``    cached-mode training steps of the paper profile's model (TCN 4x256, d = 128/512/768, K = 300), bf16:
                 windows/s at batch 12 and at the largest batch that fits (doubling until out of memory).
3. ``end2end``   training steps with IR-50 (40x40 faces) + VGGish (96x64 log-mel) in front, every layer group
                 released (the recipe's most expensive phase), bf16: frames/s.
4. ``encoders``  the frozen encoders of preprocessing (inference, bf16, batch 512): IR-50 and VGGish frames/s.
5. ``recipe``    ``rjcma train`` of the paper profile (end2end, bf16, gradual release, the package's data loader
                 with its workers) for two epochs on a generated store; seconds per epoch, frames/s, and from it the
                 projected time of one Aff-Wild2 fold (100 epochs at most).

Targets on one H100/H200 (the reproduction's goals): cached >= 2,000 windows/s; end2end >= 50,000 frames/s; a
projected paper-recipe fold under one hour. Writes ``gpu.json`` and ``gpu.md`` (a RESULTS.md section) to ``--out``.
``--smoke`` runs every section at toy size on the CPU (seconds; used by the test suite).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (Aff-Wild2 trial lengths, released folds)

T0 = time.perf_counter()


# ---- helpers ---------------------------------------------------------------------------------------------------
def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def reset_peak(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)


def peak_gib(dev: torch.device) -> float:
    if dev.type == "cuda":
        return round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


WARMUP = {"n": 2}  # untimed runs before timing (0 in smoke mode)


def timed(fn, dev: torch.device, reps: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``reps`` runs after ``warmup`` (at most WARMUP) untimed ones."""
    for _ in range(min(warmup, WARMUP["n"])):
        fn()
    sync(dev)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync(dev)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def bf16_runs(dev: torch.device) -> bool:
    """Whether bf16 really runs here: on a GPU, or a CPU with native bf16. Elsewhere (smoke mode on a CPU without
    bf16 units) the bf16 rows compute in float32 and say so: emulated bf16 is many times slower, and no test runs it."""
    from rjcma.runtime import cpu_bf16

    return dev.type == "cuda" or cpu_bf16()


def ran(dev: torch.device, prec: str) -> str:
    """The precision a row computed in (``prec``, or float32 where bf16 would be emulated)."""
    return prec if prec != "bf16" or bf16_runs(dev) else "fp32 (no native bf16)"


def autocast(dev: torch.device, prec: str):
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=prec == "bf16" and bf16_runs(dev))


def paper_cfg(K: int, mode: str, smoke: bool, **over):
    from rjcma.config import load_config

    cfg = load_config("paper").replace(seq_len=K, stride=min(200, K), mode=mode, target="valence",
                                       encoder_init="seeded", weights_dir="", mixed_precision="bf16", **over)
    if smoke:
        cfg = cfg.replace(tcn_audio=[16, 16], tcn_visual=[16, 16], tcn_text=[16, 16], head_hidden=16)
    return cfg


def train_step(model, batch, prec: str, dev: torch.device):
    from rjcma.train.losses import ccc_loss

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=1e-3)

    def step():
        with autocast(dev, prec):
            pred = model(batch)["pred"]
        loss = ccc_loss(pred.float(), batch["labels"][..., :1], batch["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


# ---- sections --------------------------------------------------------------------------------------------------
def bench_fusion(dev, a) -> list[dict]:
    from rjcma.models.attention import RecursiveJointCrossModalAttention
    from rjcma.models.official import ReleasedFusion

    dims, B, K = [256, 128, 128], a.batch, a.K
    rows = []
    for prec in ("fp32", "bf16"):
        for name, mk in (("paper RJCMA (l=3)", lambda: RecursiveJointCrossModalAttention(dims, K, num_iterations=3)),
                         ("released DCNLayer (2 layers)",
                          lambda: ReleasedFusion(dims, seq_len=K, num_layers=2, dropout=0.6, compute_query=True))):
            torch.manual_seed(0)
            m = mk().to(dev).train()
            xs = [torch.randn(B, K, d, device=dev, requires_grad=True) for d in dims]

            def step(m=m, xs=xs, prec=prec):
                with autocast(dev, prec):
                    out = m(xs)
                    loss = out.float().square().mean() if torch.is_tensor(out) else sum(
                        o.float().square().mean() for o in out)
                loss.backward()
                m.zero_grad(set_to_none=True)

            reset_peak(dev)
            s = timed(step, dev, a.reps)
            rows.append({"variant": name, "precision": ran(dev, prec), "batch": B, "K": K, "ms": round(s * 1e3, 2),
                         "windows_per_s": round(B / s, 1), "peak_gib": peak_gib(dev)})
            del m, xs
    return rows


def _cached_batch(cfg, B: int, dev):
    K = cfg.K
    b = {m: torch.randn(B, K, cfg.model.input_dim(m), device=dev) for m in cfg.model.modalities}
    b["labels"] = torch.rand(B, K, 2, device=dev) * 2 - 1
    b["mask"] = torch.ones(B, K, dtype=torch.bool, device=dev)
    return b


def cached_rate(B: int, dev, a, reps: int) -> dict:
    from rjcma.train.trainable import build_trainable

    cfg = paper_cfg(a.K, "cached", a.smoke)
    torch.manual_seed(0)
    model = build_trainable(cfg).to(dev).train()
    reset_peak(dev)
    s = timed(train_step(model, _cached_batch(cfg, B, dev), "bf16", dev), dev, reps, warmup=1)
    return {"batch": B, "K": a.K, "windows_per_s": round(B / s, 1), "step_ms": round(s * 1e3, 2),
            "peak_gib": peak_gib(dev)}


def bench_cached(dev, a) -> list[dict]:
    rows = [cached_rate(a.batch, dev, a, a.reps)]
    if dev.type != "cuda":
        rows.append(cached_rate(a.batch * 2, dev, a, a.reps))
        return rows
    B, best = a.batch * 2, None
    while B <= a.max_batch and time.perf_counter() - T0 < a.budget * 0.45:
        try:
            best = cached_rate(B, dev, a, max(3, a.reps // 4))
            B *= 2
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    if best is not None:
        best["largest_that_fits"] = True
        rows.append(best)
    return rows


def e2e_model(a, dev):
    from rjcma.train.trainable import build_trainable, layer_groups, release_group

    cfg = paper_cfg(a.e2e_k, "end2end", a.smoke, store=tempfile.mkdtemp(prefix="rjcma_gpu_enc_"))
    torch.manual_seed(0)
    m = build_trainable(cfg)
    for g in range(len(layer_groups(m))):
        release_group(m, g)
    return cfg, m.to(dev).train()


def bench_end2end(dev, a) -> dict:
    cfg, m = e2e_model(a, dev)
    B, K = a.e2e_batch, a.e2e_k
    while True:  # the paper's batch of 12 windows, halved until it fits
        try:
            return _e2e_rate(cfg, m, B, K, dev, a)
        except torch.OutOfMemoryError:
            if B == 1:
                raise
            B = B // 2
            torch.cuda.empty_cache()


def _e2e_rate(cfg, m, B: int, K: int, dev, a) -> dict:
    b = {"faces": torch.randn(B, K, 3, 40, 40, device=dev), "logmel": torch.randn(B, K, 1, 96, 64, device=dev),
         "text": torch.randn(B, K, cfg.model.text_dim, device=dev),
         "labels": torch.rand(B, K, 2, device=dev) * 2 - 1, "mask": torch.ones(B, K, dtype=torch.bool, device=dev)}
    reset_peak(dev)
    s = timed(train_step(m, b, "bf16", dev), dev, max(1, a.reps // 2), warmup=1)
    shutil.rmtree(cfg.data.store, ignore_errors=True)
    return {"batch": B, "K": K, "frames_per_s": round(B * K / s, 1), "step_ms": round(s * 1e3, 1),
            "precision": ran(dev, "bf16"), "released_groups": "all", "peak_gib": peak_gib(dev)}


def bench_encoders(dev, a) -> list[dict]:
    from rjcma.models.backbones import IR50, VGGish, seeded_init

    rows = []
    for name, mk, shape in (("IR-50 (40x40)", IR50, (3, 40, 40)), ("VGGish (96x64)", VGGish, (1, 96, 64))):
        m = seeded_init(mk(), 0).to(dev).eval()
        x = torch.randn(a.enc_batch, *shape, device=dev)

        def fwd(m=m, x=x):
            with torch.inference_mode(), autocast(dev, "bf16"):
                m(x)

        reset_peak(dev)
        s = timed(fwd, dev, a.reps, warmup=1)
        rows.append({"encoder": name, "batch": a.enc_batch, "precision": ran(dev, "bf16"), "frames_per_s": round(a.enc_batch / s, 1),
                     "peak_gib": peak_gib(dev)})
        del m, x
    return rows


def write_e2e_store(root: Path, trials: int, frames: int, K: int) -> tuple[list[str], list[str]]:
    """Generated store with what end2end training reads (faces, logmel, bert, labels) + a fold-0 folds file."""
    from numpy.lib.format import open_memmap

    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (64, 48, 48, 3), dtype=np.uint8)
    mel = rng.standard_normal((64, 96, 64)).astype(np.float16)
    names = []
    for i in range(trials):
        name = f"{i:03d}-30-1280x720"
        d = root / name
        d.mkdir(parents=True)
        for key, blk in (("faces", face), ("logmel", mel)):
            mm = open_memmap(d / f"{key}.npy", mode="w+", dtype=blk.dtype, shape=(frames, *blk.shape[1:]))
            for s in range(0, frames, 64):
                mm[s:s + 64] = np.roll(blk, i, 0)[: min(64, frames - s)]
            mm.flush()
            del mm
        np.save(d / "bert.npy", rng.standard_normal((frames, 768)).astype(np.float16))
        t = np.arange(frames, dtype=np.float32)
        np.save(d / "labels.npy", (np.stack([np.sin(t / 97 + i), np.cos(t / 131 + i)], 1) * 0.6).astype(np.float32))
        np.save(d / "face_mask.npy", np.ones(frames, bool))
        (d / "meta.json").write_text(json.dumps({"N": frames, "partition": "train", "fps": 30.0, "complete": True}))
        names.append(name)
    n_val = max(1, trials // 6)  # the fold's 5:1 train/validation ratio
    train, val = names[:-n_val], names[-n_val:]
    (root / "folds.json").write_text(json.dumps({"folds": {"0": {"train": train, "validation": val}}}))
    return train, val


def bench_recipe(dev, a) -> dict:
    """Two epochs of `rjcma train --profile paper` (end2end, bf16) on a generated store."""
    from rjcma.train.loop import train_one

    tmp = Path(tempfile.mkdtemp(prefix="rjcma_gpu_recipe_"))
    try:
        train, val = write_e2e_store(tmp / "store", a.recipe_trials, a.recipe_frames, a.K)
        cfg = paper_cfg(a.K if not a.smoke else a.e2e_k, "end2end", a.smoke, store=str(tmp / "store"),
                        results_dir=str(tmp / "results"), max_epochs=2, num_workers=a.workers,
                        device="cuda" if dev.type == "cuda" else "cpu", fold=0)
        reset_peak(dev)
        t = time.perf_counter()
        m = train_one(cfg, run_dir=tmp / "run", progress=False, log=lambda *x: None)
        wall = time.perf_counter() - t
        import csv

        with open(tmp / "run" / "history.csv") as f:
            hist = list(csv.DictReader(f))
        secs = [float(r["seconds"]) for r in hist]
        seen = m["train_windows"] * cfg.K  # frames through the backbones per epoch (windows overlap)
        rate = seen / statistics.median(secs)
        # one Aff-Wild2 fold: fold-1 windows of the released chunks over 594 trials of Aff-Wild2's lengths
        lengths = scale.lengths_for(scale.TRIALS, scale.FRAMES)
        from rjcma.data.windows import window_starts

        n_test = round(scale.TRIALS * scale.TEST_SHARE)
        n_trval = scale.TRIALS - n_test
        wins = [len(window_starts(int(n), 300, 200)) for n in lengths[:n_trval]]
        # 5/6 of train+validation trained, 1/6 validated: the run's own train/validation ratio, so its epoch rate
        # (training, validation and the checkpoint together) carries over
        fold_windows = sum(wins) * 5 / 6
        epoch_s = fold_windows * 300 / rate
        return {"trials": a.recipe_trials, "frames_per_trial": a.recipe_frames, "K": cfg.K,
                "train_windows": m["train_windows"], "epochs": m["epochs"], "epoch_s": secs, "wall_s": round(wall, 1),
                "frames_per_s": round(rate, 1), "released_groups": m["released_groups"],
                "mixed_precision": m.get("mixed_precision"), "num_workers": a.workers,
                "projected_affwild2_fold_h": round(100 * epoch_s / 3600, 2),
                "projected_affwild2_epoch_min": round(epoch_s / 60, 2), "peak_gib": peak_gib(dev)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- report ----------------------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    L = [f"## GPU benchmark (`benchmarks/gpu.sh`), {res['date']}", "",
         f"{res['device']}, torch {res['torch']}, {res['cpus']} CPU cores; {res['wall_s']} s in all"
         + (" (**smoke mode on CPU: toy sizes, not a measurement**)" if res["smoke"] else "") + ".", ""]
    if "fusion" in res:
        L += ["| fusion fwd+bwd | precision | B x K | ms | windows/s | peak GiB |", "|---|---|---|---:|---:|---:|"]
        L += [f"| {r['variant']} | {r['precision']} | {r['batch']} x {r['K']} | {r['ms']} | {r['windows_per_s']:,} | "
              f"{r['peak_gib']} |" for r in res["fusion"]] + [""]
    if "cached" in res:
        L += ["| cached training (paper model, bf16) | windows/s | step ms | peak GiB |", "|---|---:|---:|---:|"]
        L += [f"| batch {r['batch']}{' (largest that fits)' if r.get('largest_that_fits') else ''}, K = {r['K']} | "
              f"{r['windows_per_s']:,} | {r['step_ms']} | {r['peak_gib']} |" for r in res["cached"]] + [""]
    rows = []
    if "end2end" in res:
        e = res["end2end"]
        rows.append(f"| end2end training step (IR-50 + VGGish, all groups released, bf16), {e['batch']} x K {e['K']} | "
                    f"{e['frames_per_s']:,} frames/s | {e['peak_gib']} |")
    for r in res.get("encoders", []):
        rows.append(f"| preprocessing encoder {r['encoder']}, batch {r['batch']}, bf16 | {r['frames_per_s']:,} frames/s | "
                    f"{r['peak_gib']} |")
    if "recipe" in res:
        r = res["recipe"]
        rows.append(f"| `rjcma train --profile paper`, 2 epochs, {r['trials']} x {r['frames_per_trial']} frames, "
                    f"{r['num_workers']} loader workers | {r['frames_per_s']:,} frames/s (epochs {r['epoch_s']} s) | "
                    f"{r['peak_gib']} |")
    if rows:
        L += ["| what | rate | peak GiB |", "|---|---:|---:|"] + rows + [""]
    if "recipe" in res:
        r = res["recipe"]
        L += [f"Projected paper-recipe fold at Aff-Wild2 scale (fold-1 windows, 100 epochs, from the recipe run's "
              f"frames/s): **{r['projected_affwild2_fold_h']} h** ({r['projected_affwild2_epoch_min']} min per epoch).", ""]
    t = res.get("targets", {})
    if t:
        L += ["Targets: " + "; ".join(f"{k} {'met' if v else 'not met'}" for k, v in t.items()) + ".", ""]
    for k, v in res.get("skipped", {}).items():
        L.append(f"- {k}: skipped ({v})")
    return "\n".join(L).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="_build/bench-gpu", help="folder for gpu.json and gpu.md")
    ap.add_argument("--smoke", action="store_true", help="every section at toy size on the CPU")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds; later sections are skipped past it")
    ap.add_argument("--sections", default="fusion,cached,end2end,encoders,recipe")
    args = ap.parse_args()
    gpu = torch.cuda.is_available() and not args.smoke
    dev = torch.device("cuda" if gpu else "cpu")
    WARMUP["n"] = 2 if gpu else 0
    a = argparse.Namespace(smoke=args.smoke, budget=args.budget, reps=20 if gpu else 1, batch=12,
                           K=300 if gpu else 16, max_batch=4096, e2e_batch=12 if gpu else 1, e2e_k=300 if gpu else 2,
                           enc_batch=512 if gpu else 4, workers=min(8, os.cpu_count() or 1) if gpu else 0,
                           recipe_trials=24 if gpu else 2, recipe_frames=3000 if gpu else 4)
    if not gpu and not args.smoke:  # `make bench` runs every script: nothing to measure here, not a failure
        print("gpu_bench: no CUDA device, nothing measured (benchmarks/gpu.sh on a GPU machine; --smoke for the "
              "CPU dry run)")
        return 0
    os.environ.pop("RJCMA_WEIGHTS_DIR", None)  # seeded encoders; no weight file is read
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    res: dict = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "smoke": args.smoke,
                 "device": torch.cuda.get_device_name(dev) if gpu else f"CPU ({platform.processor() or 'cpu'})",
                 "torch": torch.__version__, "cpus": os.cpu_count(), "skipped": {}}
    fns = {"fusion": bench_fusion, "cached": bench_cached, "end2end": bench_end2end, "encoders": bench_encoders,
           "recipe": bench_recipe}
    # the fraction of the budget a section may start at (the recipe needs about a third of it)
    start_by = {"fusion": 0.1, "cached": 0.3, "end2end": 0.5, "encoders": 0.6, "recipe": 0.65}
    for name in args.sections.split(","):
        el = time.perf_counter() - T0
        if not args.smoke and el > args.budget * start_by[name]:
            res["skipped"][name] = f"time budget: {el:.0f} s of {args.budget:.0f} s used"
            continue
        t = time.perf_counter()
        try:
            res[name] = fns[name](dev, a)
        except torch.OutOfMemoryError as e:
            res["skipped"][name] = f"out of memory: {str(e).splitlines()[0][:120]}"
        print(f"[{time.perf_counter() - T0:6.1f} s] {name}: {json.dumps(res.get(name, res['skipped'].get(name)))}",
              flush=True)
        res.setdefault("section_s", {})[name] = round(time.perf_counter() - t, 1)
    res["wall_s"] = round(time.perf_counter() - T0, 1)
    if gpu:
        res["targets"] = {
            "cached >= 2,000 windows/s": max((r["windows_per_s"] for r in res.get("cached", [])), default=0) >= 2000,
            "end2end >= 50,000 frames/s": res.get("end2end", {}).get("frames_per_s", 0) >= 50000,
            "projected fold < 1 h": res.get("recipe", {}).get("projected_affwild2_fold_h", 1e9) < 1.0,
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(res, indent=2))
    (out / "gpu.md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
