"""Forward+backward time of the fusion: the paper's RJCMA (l = 3) vs the released DCNLayer variant.

Shapes are the released ones: batch 12, K = 300, widths 256/128/128 (visual/audio/text in the released order).
Both run in training mode (the released variant's dropout active), float32, and the time covers the forward
pass, a scalar loss and the backward pass. Prints a markdown table (median and interquartile range of
``--repeats`` runs after ``--warmup`` untimed ones).

    python benchmarks/fusion.py                      # CPU, and CUDA when available
    python benchmarks/fusion.py --device cpu --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rjcma.models.attention import RecursiveJointCrossModalAttention
from rjcma.models.official import ReleasedFusion


def _time(fn, device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def bench(device: torch.device, batch: int, K: int, dims: list[int], repeats: int, warmup: int) -> list[dict]:
    torch.manual_seed(0)
    variants = {
        "paper RJCMA (l=3)": RecursiveJointCrossModalAttention(dims, K, num_iterations=3),
        "released DCNLayer (2 layers)": ReleasedFusion(dims, seq_len=K, num_layers=2, dropout=0.6, compute_query=True),
    }
    xs = [torch.randn(batch, K, d, device=device, requires_grad=True) for d in dims]
    rows = []
    for name, module in variants.items():
        module = module.to(device).train()

        def step(module=module):
            out = module(xs)
            loss = out.square().mean() if torch.is_tensor(out) else sum(o.square().mean() for o in out)
            loss.backward()
            module.zero_grad(set_to_none=True)

        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:  # matmul FLOPs of one forward+backward
            step()
        gflop = counter.get_total_flops() / 1e9
        ms = _time(step, device, repeats, warmup)
        q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
        rows.append(
            {
                "variant": name,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
                "params": sum(p.numel() for p in module.parameters()),
                "gflop": gflop,
                "median_ms": statistics.median(ms),
                "iqr_ms": q[2] - q[0],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu, plus cuda when available)")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--seq-len", type=int, default=300, help="K")
    ap.add_argument("--dims", default="256,128,128", help="comma-separated widths d_m")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dims = [int(x) for x in args.dims.split(",")]
    if args.device == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    rows = []
    for dev in devices:
        rows += bench(torch.device(dev), args.batch, args.seq_len, dims, args.repeats, args.warmup)
    print(f"Fusion forward+backward, B={args.batch}, K={args.seq_len}, dims={'/'.join(map(str, dims))}, "
          f"float32, train mode, median of {args.repeats} (torch {torch.__version__})\n")
    print("| variant | device | parameters | GFLOP (fwd+bwd) | median ms | IQR ms | GFLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['device']} | {r['params']:,} | {r['gflop']:.1f} | {r['median_ms']:.1f} | "
              f"{r['iqr_ms']:.1f} | {r['gflop'] / r['median_ms'] * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
