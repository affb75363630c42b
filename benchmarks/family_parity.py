"""Parity of our GRJCA, HGRJCA and DCA (``rjcma.models.official_family``) with the released modules themselves.

The released code has no licence file, so it is not part of this repository: give the paths of local checkouts of
praveena2j/GRJCA and praveena2j/Dynamic-CrossAttention (outside this repository). Their ``models/`` folders are
imported from there as packages; nothing of them is copied. Each released module is built at its released sizes,
its weights are moved off the released initialisation (whose biases are all zero) by seeded noise, its state-dict is
loaded into ours (``load_released_weights``: the keys it reads, the released parts it skips), and both run the same
inputs in eval mode, float32. The figure is max |ours − released| / max |released| over the fused output.

* GRJCA, HGRJCA: ``GRJCA_cam()`` / ``HGRJCA_cam()`` (visual 256, audio 128, K = 300, 2 layers) called as
  ``(video, audio)``; their output is the fused ``[Y_v; Y_a]``.
* DCA: ``CAM()`` (512 / 512, K = 16, 2 layers) is a whole model (LSTM front ends, an audio-guided visual attention,
  the fusion, an LSTM and two heads). It runs on audio ``(B, 16, 512)`` and visual ``(B, 16, 49·512)`` features;
  forward hooks take the fusion's inputs (the front ends' outputs, entering ``coattn``) and its output (the input
  of ``Joint``), and ours runs on those inputs.

    git -C /path/to/mirror/of/GRJCA worktree add ../grjca_src HEAD          # or: git archive HEAD | tar -x -C ../grjca_src
    python benchmarks/family_parity.py --grjca ../grjca_src --dca ../dca_src

Without the two paths it prints how to run it and exits 0 (``make bench`` runs every script without arguments).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import types
from pathlib import Path

import torch
from torch import nn

from rjcma.models.official import load_released_weights
from rjcma.models.official_family import ReleasedDynamicFusion, ReleasedGatedFusion, ReleasedHierarchicalGatedFusion

LIMIT = 1e-5


def import_released(checkout: Path, package: str, module: str) -> types.ModuleType:
    """``<checkout>/models/<module>.py`` imported as ``<package>.<module>`` (its relative imports resolve there)."""
    models = checkout / "models"
    if not (models / f"{module}.py").is_file():
        sys.exit(f"{checkout}: no models/{module}.py; give the root of a checkout of the released repository")
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [str(models)]  # a namespace for the released models/ folder, which has no __init__.py
        sys.modules[package] = pkg
    return importlib.import_module(f"{package}.{module}")


def build_released(checkout: Path, package: str, module: str, cls: str, seed: int) -> nn.Module:
    """The released module, its weights moved off the released initialisation by seeded noise, in eval mode."""
    with contextlib.redirect_stdout(io.StringIO()):  # the released init_weights prints a line
        net = getattr(import_released(checkout, package, module), cls)()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g).to(p.device))
    return net.cpu().eval()


def compare(name: str, released: nn.Module, ours: nn.Module, run) -> dict:
    """Load the released state-dict into ours, run both (``run`` returns (released out, ours inputs)), report."""
    prefix, skipped = load_released_weights(ours, released.state_dict())
    loaded = len(ours.state_dict())
    params = dict(released.named_parameters())
    n_skipped = sum(p.numel() for k, p in params.items() if k in set(skipped))
    ours.eval()
    with torch.no_grad():
        ref, xs = run()
        out = ours(xs)
    rel = float((out - ref).abs().max() / ref.abs().max())
    parts = sorted({k.split(".")[0] for k in skipped})
    return {"member": name, "keys": len(released.state_dict()), "loaded": loaded, "skipped": len(skipped),
            "parts": parts, "params_skipped": n_skipped, "params": sum(p.numel() for p in params.values()),
            "shape": tuple(out.shape), "rel": rel, "prefix": prefix}


def run_grjca(checkout: Path, batch: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed + 1)
    video, audio = torch.randn(batch, 300, 256, generator=g), torch.randn(batch, 300, 128, generator=g)
    rows = []
    for name, module, cls, ours in (("GRJCA", "GRJCA", "GRJCA_cam", ReleasedGatedFusion((256, 128))),
                                    ("HGRJCA", "HGRJCA", "HGRJCA_cam", ReleasedHierarchicalGatedFusion((256, 128)))):
        released = build_released(checkout, "released_grjca_models", module, cls, seed)
        rows.append(compare(name, released, ours, lambda: (released(video, audio), [video, audio])))
    return rows


def run_dca(checkout: Path, batch: int, seed: int) -> dict:
    released = build_released(checkout, "released_dca_models", "orig_cam", "CAM", seed)
    g = torch.Generator().manual_seed(seed + 2)
    audio, visual = torch.randn(batch, 16, 512, generator=g), torch.randn(batch, 16, 49 * 512, generator=g)
    seen: dict[str, object] = {}
    released.coattn.register_forward_hook(lambda m, inp, out: seen.__setitem__("fusion_in", list(inp)))
    released.Joint.register_forward_hook(lambda m, inp, out: seen.__setitem__("fusion_out", inp[0]))

    def run():
        released(audio, visual)  # CAM(audio, video); the fusion inside is coattn(video, audio)
        return seen["fusion_out"], seen["fusion_in"]

    return compare("DCA", released, ReleasedDynamicFusion((512, 512)), run)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grjca", type=Path, help="root of a checkout of praveena2j/GRJCA")
    ap.add_argument("--dca", type=Path, help="root of a checkout of praveena2j/Dynamic-CrossAttention")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.grjca is None or args.dca is None:
        print("family_parity: skipped; give --grjca and --dca, the roots of local checkouts of praveena2j/GRJCA and "
              "praveena2j/Dynamic-CrossAttention (see the docstring)")
        return 0
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    rows = run_grjca(args.grjca, args.batch, args.seed) + [run_dca(args.dca, args.batch, args.seed)]
    print(f"torch {torch.__version__}, CPU, float32, eval mode, batch {args.batch}, seed {args.seed}\n")
    print("| member | output | released keys | loaded | skipped (released parts not built here) "
          "| parameters skipped | max rel. difference |")
    print("|---|---|---:|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['member']} | {r['shape']} | {r['keys']} | {r['loaded']} | {r['skipped']}: "
              f"{', '.join(r['parts'])} | {r['params_skipped']:,} of {r['params']:,} | {r['rel']:.2e} |")
    bad = [r["member"] for r in rows if not r["rel"] < LIMIT]
    if bad:
        print(f"\nFAILED: {', '.join(bad)} differ by {LIMIT:g} or more")
        return 1
    print(f"\nall below {LIMIT:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
