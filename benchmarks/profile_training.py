"""Where one demo training run's time goes, on the float32 path (issue: profile before changing).

One RJCMA run of the demo profile (target both, fold 0, the demo store) for a few epochs, timed part by part with
manual timers (one thread, as ``rjcma experiments`` runs each run):

* data loading: the training loader's batches (reading the store, windowing, collating);
* forward and backward of each block: the three TCNs (with their BatchNorm), the fusion (the joint cross-modal
  attention, l = 3 recursions), the regressor head; backward times come from gradient hooks at the blocks'
  boundaries;
* of the fusion, the share of the products with a K x K factor (``X W_c``, ``H W_h``, the K x K attention maps),
  from a ``torch.profiler`` pass over the same steps (forward and backward ops whose shapes hold K twice);
* the loss, the optimizer step, the evaluation of the validation fold (once per epoch), and what is left of the
  epoch's wall time (Python overhead of the loop).

Prints a table (seconds per epoch and share of the epoch). Needs the demo store (``rjcma preprocess --profile
demo``). Usage: ``python benchmarks/profile_training.py [--epochs 2] [--set key=value ...]``.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import torch

from rjcma.config import load_config
from rjcma.runtime import fixed_threads
from rjcma.train.evaluation import TARGET_COLUMNS
from rjcma.train.loop import train_loader, validate
from rjcma.train.losses import ccc_loss
from rjcma.train.run import start_run
from rjcma.train.trainable import set_train_mode


def timed_step(net, batch: dict, cols: list[int], sec: dict[str, float]) -> torch.Tensor:
    """One forward + backward of the cached-mode model, block by block (the order of ``RJCMAModel.forward``);
    backward block times from gradient hooks at the blocks' boundaries (the head's input, the fusion's inputs)."""
    now = time.perf_counter
    xs, mods = [], net.modalities
    for m in mods:
        t0 = now()
        x = net.tcn[m](batch[m].float())
        x = net.bn[m](x.transpose(1, 2)).transpose(1, 2)
        sec[f"TCN+BN {m} forward"] += now() - t0
        xs.append(x)
    t0 = now()
    fused, _ = net.fusion(xs, return_all=True)
    t1 = now()
    pred = net.head(fused)
    t2 = now()
    sec["fusion forward"] += t1 - t0
    sec["head forward"] += t2 - t1
    loss = ccc_loss(pred.float(), batch["labels"][..., cols], batch["mask"])
    marks: dict[str, float] = {}

    def mark(name: str):
        def hook(_grad: torch.Tensor) -> None:  # returns nothing: the gradient is left as it is
            marks.setdefault(name, now())
        return hook

    fused.register_hook(mark("head done"))
    for m, x in zip(mods, xs):
        x.register_hook(mark(f"fusion done {m}"))
    t3 = now()
    loss.backward()
    t4 = now()
    fusion_done = max(v for k, v in marks.items() if k.startswith("fusion done"))
    sec["loss forward"] += t3 - t2
    sec["head backward (with the loss's)"] += marks["head done"] - t3
    sec["fusion backward"] += fusion_done - marks["head done"]
    sec["TCN+BN backward (all three)"] += t4 - fusion_done
    return loss


def kk_share(run, batches: list[dict], K: int) -> tuple[float, float]:
    """Of the matrix products' self time in forward + backward (torch.profiler), the share in products with a K x K
    factor (the fusion's W_c, W_h and attention maps); and that time's share of every op's self time."""
    from torch.profiler import ProfilerActivity, profile

    cols = [TARGET_COLUMNS[t] for t in run.cfg.targets]
    set_train_mode(run.net, True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for batch in batches:
            pred = run.model(batch)["pred"]
            loss = ccc_loss(pred.float(), batch["labels"][..., cols], batch["mask"])
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
    kk = mm = every = 0.0
    for ev in prof.key_averages(group_by_input_shape=True):
        t = ev.self_cpu_time_total
        every += t
        if ev.key not in ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm"):
            continue
        mm += t
        dims = [d for s in (ev.input_shapes or []) for d in (s or [])]
        if dims.count(K) >= 2:
            kk += t
    return kk / mm if mm else float("nan"), kk / every if every else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    cfg = load_config("demo", sets=[f"fold={args.fold}", "mixed_precision=no", *args.set])
    with fixed_threads(int(cfg.train.threads)), tempfile.TemporaryDirectory() as tmp:
        run = start_run(cfg, Path(tmp) / "run", log=lambda *a: None)
        net = run.net
        cols = [TARGET_COLUMNS[t] for t in cfg.targets]
        sec: dict[str, float] = collections.defaultdict(float)
        epoch_s = 0.0
        steps = windows = 0
        for epoch in range(args.epochs):
            t_epoch = time.perf_counter()
            loader = train_loader(run, epoch)
            set_train_mode(net, True)
            it = iter(loader)
            while True:
                t0 = time.perf_counter()
                batch = next(it, None)
                sec["data loading"] += time.perf_counter() - t0
                if batch is None:
                    break
                run.optimizer.zero_grad(set_to_none=True)
                timed_step(net, batch, cols, sec)
                t0 = time.perf_counter()
                run.optimizer.step()
                sec["optimizer step (Adam)"] += time.perf_counter() - t0
                steps += 1
                windows += len(batch["trial"])
            t0 = time.perf_counter()
            validate(run)
            sec["evaluation (validation fold, once per epoch)"] += time.perf_counter() - t0
            epoch_s += time.perf_counter() - t_epoch
        batches = [b for _, b in zip(range(3), train_loader(run, 0))]
        share, share_all = kk_share(run, batches, cfg.K)
        threads = torch.get_num_threads()
    n = args.epochs
    order = ["data loading", *[f"TCN+BN {m} forward" for m in net.modalities], "fusion forward", "head forward",
             "loss forward", "head backward (with the loss's)", "fusion backward", "TCN+BN backward (all three)",
             "optimizer step (Adam)", "evaluation (validation fold, once per epoch)"]
    rows = [(k, sec[k]) for k in order]
    rows.append(("Python overhead (epoch wall time minus the above)", epoch_s - sum(sec.values())))
    print(f"Demo training profile, fp32, {threads} thread(s), {torch.__version__}: RJCMA, target "
          f"{cfg.train.target}, fold {cfg.train.fold}, K {cfg.K}, stride {cfg.data.stride}, batch {cfg.train.batch_size}"
          f"; {steps // n} steps ({windows // n} windows) per epoch, {n} epochs")
    print()
    print("| part | s / epoch | share of the epoch |")
    print("|---|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s / n:.2f} | {100 * s / epoch_s:.0f} % |")
    print(f"| **epoch** | **{epoch_s / n:.2f}** | 100 % |")
    print()
    print(f"torch.profiler over 3 training steps (forward + backward): {100 * share:.0f} % of the matrix products' time "
          f"is in products with a K x K factor (K = {cfg.K}), {100 * share_all:.0f} % of all ops' time.")


if __name__ == "__main__":
    main()
