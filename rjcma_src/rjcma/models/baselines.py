"""Fusion baselines for the Table 2 analogue: unimodal, early concatenation, leader-follower attention.

Every fusion module here (and the attention fusions wrapped in :mod:`rjcma.models.rjcma`) has one interface:
``fusion(xs) -> (B, K, out_dim)`` where ``xs`` is a list of per-modality TCN outputs ``(B, K, d_m)`` in the order
the module was built with, and ``fusion.out_dim`` is the width the MLP head receives; ``fusion(xs, return_all=True)``
returns ``(out, extras)``: ``extras["features"]`` and ``extras["maps"]``, the attended features and maps per
iteration (empty lists for these baselines), and for gated fusions ``extras["gates"]``, the gate weights.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


def _check(xs: Sequence[torch.Tensor], dims: Sequence[int], who: str) -> None:
    if len(xs) != len(dims):
        raise ValueError(f"{who}: expected {len(dims)} modalities with widths {list(dims)}; got {len(xs)}")
    for i, (x, d) in enumerate(zip(xs, dims)):
        if x.dim() != 3 or x.shape[-1] != d:
            raise ValueError(f"{who}: modality {i} expected (B, K, {d}); got {tuple(x.shape)}")
    if len({tuple(x.shape[:2]) for x in xs}) != 1:
        raise ValueError(f"{who}: all modalities need the same (B, K); got {[tuple(x.shape[:2]) for x in xs]}")


def no_extras() -> dict[str, list]:
    """``extras`` of a fusion without iterations: no attended features, no maps."""
    return {"features": [], "maps": []}


class UnimodalFusion(nn.Module):
    """Identity over one modality: the unimodal baseline is TCN + head (Table 2, single-modality rows)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dims = [int(dim)]
        self.out_dim = int(dim)

    def forward(self, xs: Sequence[torch.Tensor], return_all: bool = False):
        _check(xs, self.dims, "UnimodalFusion")
        return (xs[0], no_extras()) if return_all else xs[0]  # (B, K, d_m)


class ConcatFusion(nn.Module):
    """Early (feature-level) fusion: concatenate the modalities per frame, no learned interaction."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = [int(d) for d in dims]
        self.out_dim = sum(self.dims)

    def forward(self, xs: Sequence[torch.Tensor], return_all: bool = False):
        _check(xs, self.dims, "ConcatFusion")
        out = torch.cat(list(xs), dim=-1)  # (B, K, d)
        return (out, no_extras()) if return_all else out


class LeaderFollowerFusion(nn.Module):
    """Leader-follower attention (Zhang et al., ABAW5 [42]), as the released ``LeaderFollowerAttentionNetwork``.

    Per frame, the M modalities are M tokens. Each token is projected to a query, key and value of width
    ``attn_dim`` (32 in the released code) by per-modality linear layers; a softmax attention over the M tokens
    mixes the values, a residual adds the token's own value and a LayerNorm over the (M, attn_dim) block
    normalises it. The output is the leader's TCN features (visual, by default) concatenated with the M attended
    follower vectors flattened: width ``d_leader + M * attn_dim``.

    Released detail kept: the score of token i for token j is ``key_i · query_j / sqrt(attn_dim)``, softmax over j
    (the released code names the projections the other way round; since both are learned linear maps this is
    ordinary scaled dot-product attention). Not kept: the released network's own linear regressor; here the common
    MLP head of :class:`rjcma.models.rjcma.RJCMAModel` follows every fusion.
    """

    def __init__(self, dims: Sequence[int], leader: int = 0, attn_dim: int = 32) -> None:
        super().__init__()
        self.dims = [int(d) for d in dims]
        if not 0 <= leader < len(self.dims):
            raise ValueError(f"LeaderFollowerFusion: leader index {leader} outside 0..{len(self.dims) - 1}")
        self.leader = int(leader)
        self.attn_dim = int(attn_dim)
        self.query = nn.ModuleList(nn.Linear(d, attn_dim) for d in self.dims)
        self.key = nn.ModuleList(nn.Linear(d, attn_dim) for d in self.dims)
        self.value = nn.ModuleList(nn.Linear(d, attn_dim) for d in self.dims)
        self.norm = nn.LayerNorm([len(self.dims), attn_dim])
        self.out_dim = self.dims[self.leader] + len(self.dims) * attn_dim

    def forward(self, xs: Sequence[torch.Tensor], return_scores: bool = False, return_all: bool = False):
        _check(xs, self.dims, "LeaderFollowerFusion")
        Q = torch.stack([f(x) for f, x in zip(self.query, xs)], dim=-2)  # (B, K, M, a)
        Kt = torch.stack([f(x) for f, x in zip(self.key, xs)], dim=-2)  # (B, K, M, a)
        V = torch.stack([f(x) for f, x in zip(self.value, xs)], dim=-2)  # (B, K, M, a)
        scores = torch.softmax(Kt @ Q.transpose(-1, -2) / math.sqrt(self.attn_dim), dim=-1)  # (B, K, M, M)
        follower = self.norm(scores @ V + V)  # (B, K, M, a)
        B, K = follower.shape[:2]
        out = torch.cat([xs[self.leader], follower.reshape(B, K, -1)], dim=-1)  # (B, K, d_lead + M a)
        if return_all:
            return out, no_extras()
        return (out, scores) if return_scores else out
