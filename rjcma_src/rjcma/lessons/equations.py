"""The equations chapter (notebook 06b_equations): correlated inputs, the commented lines of the modules, and the
exercises' checks."""

from __future__ import annotations

import inspect
from typing import Sequence

import torch

from rjcma.lessons.checks import Verdict, check_value
from rjcma.models.attention import RecursiveJointCrossModalAttention


def correlated_inputs(K: int, dims: Sequence[int], seed: int, rank: int = 3) -> list[torch.Tensor]:  # noqa: N803
    """One window of smooth (1, K, d_m) sequences sharing a low-rank latent, so the modalities really correlate;
    unit variance per channel."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, K, rank, generator=g).cumsum(1)
    xs = []
    for d_m in dims:
        x = z @ torch.randn(rank, d_m, generator=g) + 0.5 * torch.randn(1, K, d_m, generator=g).cumsum(1)
        xs.append((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6))
    return xs


def show_code(fn, marker: str) -> None:
    """Print the lines of ``fn``'s source that carry ``marker`` (a comment line with the line after it)."""
    lines = inspect.getsource(fn).splitlines()
    for i, line in enumerate(lines):
        if marker in line:
            print(line.strip())
            if line.strip().startswith("#") and i + 1 < len(lines):
                print(lines[i + 1].strip())


def check_ca_entry(answer: float | None, block, xs) -> Verdict:
    """Exercise: entry (0, 1) of the audio correlation matrix C_a of ``block`` on the inputs ``xs`` (eqs 1-2)."""
    with torch.no_grad():
        _, maps = block(xs, return_maps=True)
    return check_value("C_a[0, 1]", answer, float(maps["C"][0][0, 0, 1]), 1e-9, "the module's value")


def check_shared_parameters(answer: tuple[int, int] | None, dims: Sequence[int], K: int, l: int) -> Verdict:  # noqa: E741,N803
    """Exercise: parameters of an l-iteration fusion with separate and with shared weights."""
    want = tuple(sum(p.numel() for p in RecursiveJointCrossModalAttention(list(dims), K, l, share).parameters())
                 for share in (False, True))
    return check_value(f"parameters (separate, shared) at l = {l}", None if answer is None else tuple(answer), want,
                       0, "sharing keeps one block for every iteration")
