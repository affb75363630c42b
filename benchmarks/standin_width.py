"""The visual stand-in's width and pretraining faces against its cost and what its features hold.

    python benchmarks/standin_width.py [--threads 2] [--variants 1.0:3000,0.5:3000,0.5:6000] [--held-out 1200]

For each ``width:faces`` variant, builds the demo's visual stand-in (IR-50 at that channel width, the
synthetic-pretrain recipe of :mod:`rjcma.encoders.standins` on that many faces, seed 0), times the build and the
encoding of held-out faces (another seed of the pretraining renderer: new identities), and reads each expression
parameter back from the features with a ridge regression fitted on two thirds of the held-out faces and scored
(Pearson r) on the last third. Prints a Markdown table. The recipe's own setting is marked; nothing is cached or
written.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rjcma.encoders import standins as S
from rjcma.models.backbones import encode_faces


def ridge_r(F: np.ndarray, y: np.ndarray, n_fit: int, lam: float = 1e-2) -> float:
    """Pearson r on rows n_fit: of a ridge read-out fitted on rows :n_fit (standardised features)."""
    mu, sd = F[:n_fit].mean(0), F[:n_fit].std(0) + 1e-6
    Z = (F - mu) / sd
    w = np.linalg.solve(Z[:n_fit].T @ Z[:n_fit] + lam * n_fit * np.eye(Z.shape[1]),
                        Z[:n_fit].T @ (y[:n_fit] - y[:n_fit].mean()))
    return float(np.corrcoef(Z[n_fit:] @ w, y[n_fit:])[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="1.0:3000,0.5:3000,0.5:6000", help="width:faces,...")
    ap.add_argument("--held-out", type=int, default=1200)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    imgs, P = S.pretrain_faces(args.held_out, 999)
    n_fit = args.held_out * 2 // 3
    params = ("smile", "brow", "eye", "mouth", "raise")
    recipe = (S.STAND_IN_WIDTH, S.PRETRAIN_FACES)
    print(f"Visual stand-in variants, float32, {args.threads} thread(s), torch {torch.__version__}; read-out on "
          f"{args.held_out - n_fit} held-out faces\n")
    print("| width | faces | build s | encode ms/face | " + " | ".join(params) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * len(params))
    for v in args.variants.split(","):
        width, faces = float(v.split(":")[0]), int(v.split(":")[1])
        S.STAND_IN_WIDTH, S.PRETRAIN_FACES = width, faces  # this process only
        t0 = time.perf_counter()
        m = S._make_stand_in("ir50", "synthetic-pretrain", 0)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        F = encode_faces(m, imgs)
        per_face = (time.perf_counter() - t0) / len(imgs) * 1000
        r = [ridge_r(F, P[:, S.PRETRAIN_PARAMS.index(k)], n_fit) for k in params]
        mark = " (recipe)" if (width, faces) == recipe else ""
        print(f"| {width:g}{mark} | {faces} | {build:.0f} | {per_face:.1f} | " + " | ".join(f"{x:.3f}" for x in r)
              + " |", flush=True)
    S.STAND_IN_WIDTH, S.PRETRAIN_FACES = recipe


if __name__ == "__main__":
    main()
