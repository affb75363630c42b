"""Training throughput at Aff-Wild2 shapes with generated tensors (benchmark).

* ``cached``: the RJCMA fusion model of the paper profile (K = 300, TCN 4×256, d = 128/512/768) on cached
  features; windows/s of full optimisation steps at batch 12 and at the largest batch that fits (GPU: doubling
  until out of memory; CPU: the batches given by --cpu-batches).
* ``end2end``: IR-50 on 40×40 face crops + VGGish on 96×64 log-mel patches in front of the same model, all
  layer groups released (the most expensive phase of the recipe); frames/s of full optimisation steps.
* bf16 autocast on CUDA (``--precision``), fp32 on CPU; peak memory (CUDA: max allocated; CPU: max RSS).
* From the measured rates, the projected time of one fold of the paper recipe at Aff-Wild2 scale.

Usage::

    python benchmarks/train_throughput.py                 # CUDA when available, else CPU with small counts
    python benchmarks/train_throughput.py --device cpu --iters 2 --e2e-batch 1 --e2e-k 300
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

# Aff-Wild2 (6th ABAW; the book's chapter *Data format*): ~2.99M frames in 594 videos, 162 of them test -> ~2.17M train+validation frames.
AFFWILD2_TRAINVAL_FRAMES = 2_990_000 * (594 - 162) / 594
STRIDE = 200


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (max allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (max RSS of the process)"


def _cfg(K: int, mode: str):
    from rjcma.config import load_config

    return load_config("paper").replace(seq_len=K, stride=min(STRIDE, K), mode=mode, target="valence",
                                        encoder_init="seeded", mixed_precision="no")


def _step_fn(model, batch, device, precision, train=True):
    from rjcma.train.losses import ccc_loss

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5, weight_decay=1e-3)
    dtype = torch.bfloat16 if precision == "bf16" else None

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(batch)["pred"]
        loss = ccc_loss(out.float(), batch["labels"][..., :1], batch["mask"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _time(step, device, iters: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return (time.perf_counter() - t) / iters


def cached_rate(B: int, K: int, device, precision: str, iters: int) -> tuple[float, str]:
    from rjcma.train.trainable import build_trainable

    cfg = _cfg(K, "cached")
    model = build_trainable(cfg).to(device).train()
    batch = {m: torch.randn(B, K, cfg.model.input_dim(m), device=device) for m in cfg.model.modalities}
    batch["labels"] = torch.rand(B, K, 2, device=device) * 2 - 1
    batch["mask"] = torch.ones(B, K, dtype=torch.bool, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sec = _time(_step_fn(model, batch, device, precision), device, iters)
    return B / sec, _peak(device)


def end2end_rate(B: int, K: int, device, precision: str, iters: int) -> tuple[float, str]:
    from rjcma.train.trainable import build_trainable, layer_groups, release_group

    cfg = _cfg(K, "end2end")
    model = build_trainable(cfg)
    for g in range(len(layer_groups(model))):
        release_group(model, g)
    model.to(device).train()
    batch = {
        "faces": torch.randn(B, K, 3, 40, 40, device=device),
        "logmel": torch.randn(B, K, 1, 96, 64, device=device),
        "text": torch.randn(B, K, cfg.model.text_dim, device=device),
        "labels": torch.rand(B, K, 2, device=device) * 2 - 1,
        "mask": torch.ones(B, K, dtype=torch.bool, device=device),
    }
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sec = _time(_step_fn(model, batch, device, precision), device, iters)
    return B * K / sec, _peak(device)


def largest_batch(device, precision: str, K: int, start: int = 12, limit: int = 4096) -> int:
    """Doubling search for the largest cached batch that fits in GPU memory."""
    best, B = start, start
    while B <= limit:
        try:
            cached_rate(B, K, device, precision, iters=1)
            best = B
            B *= 2
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--iters", type=int, default=None, help="timed steps (default 20 on CUDA, 2 on CPU)")
    ap.add_argument("--K", type=int, default=300)
    ap.add_argument("--cpu-batches", default="12,24")
    ap.add_argument("--e2e-batch", type=int, default=None, help="windows per end2end step (default 12 CUDA, 1 CPU)")
    ap.add_argument("--e2e-k", type=int, default=None, help="frames per end2end window (default 300 CUDA, 50 CPU)")
    ap.add_argument("--epochs", type=int, default=100, help="epochs for the projection (paper: at most 100)")
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = ap.parse_args()

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          (args.device if args.device != "auto" else "cpu"))
    precision = ("bf16" if device.type == "cuda" else "fp32") if args.precision == "auto" else args.precision
    gpu = device.type == "cuda"
    iters = args.iters or (20 if gpu else 2)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    res: dict = {"device": name, "precision": precision, "torch": torch.__version__, "K": args.K, "iters": iters}
    print(f"device: {name}, precision {precision}, torch {torch.__version__}, K={args.K}, {iters} timed steps")

    batches = [12]
    if gpu:
        batches.append(largest_batch(device, precision, args.K))
    else:
        batches = [int(b) for b in args.cpu_batches.split(",")]
    res["cached"] = []
    for B in batches:
        rate, peak = cached_rate(B, args.K, device, precision, iters)
        res["cached"].append({"batch": B, "windows_per_s": round(rate, 2), "peak": peak})
        print(f"cached   batch {B:>5}: {rate:10.1f} windows/s   peak {peak}")

    eB = args.e2e_batch or (12 if gpu else 1)
    eK = args.e2e_k or (300 if gpu else 50)
    frate, fpeak = end2end_rate(eB, eK, device, precision, max(1, iters // 2 if not gpu else iters))
    res["end2end"] = {"batch": eB, "K": eK, "frames_per_s": round(frate, 1), "peak": fpeak}
    print(f"end2end  batch {eB} x K {eK}: {frate:10.1f} frames/s   peak {fpeak}")

    # projection: one fold = 5/6 of train+validation frames trained (windows of K with stride 200 -> each frame is
    # seen K/stride = 1.5 times), 1/6 evaluated (forward only ~ 1/3 of a training step), up to --epochs epochs
    train_frames = AFFWILD2_TRAINVAL_FRAMES * 5 / 6 * (args.K / STRIDE)
    val_frames = AFFWILD2_TRAINVAL_FRAMES / 6 * (args.K / STRIDE)
    epoch_s = train_frames / frate + val_frames / (3 * frate)
    res["projection"] = {
        "train_frames_per_epoch": int(train_frames),
        "epoch_hours_end2end": round(epoch_s / 3600, 3),
        "fold_hours_end2end": round(args.epochs * epoch_s / 3600, 2),
        "epochs": args.epochs,
        "epoch_minutes_cached": round((train_frames / args.K) / res["cached"][0]["windows_per_s"] / 60, 3),
    }
    p = res["projection"]
    print(f"projection (Aff-Wild2, one fold, {args.epochs} epochs): end2end {p['fold_hours_end2end']} h "
          f"({p['epoch_hours_end2end']} h/epoch); cached features: {p['epoch_minutes_cached']} min/epoch")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
