"""Causal temporal convolutional network (TCN) applied per modality before the fusion (paper §3.1–3.3, Fig. 1).

The paper says only that TCNs model the temporal dynamics of each modality's frame-level embeddings; the
architecture below is the one the released code uses (after Bai et al. 2018):

* ``len(channels)`` levels; level i uses dilation ``2**i``;
* each level has two weight-normalised ``Conv1d`` (kernel k, ``torch.nn.utils.parametrizations.weight_norm``),
  each padded by ``(k - 1) * dilation`` on both sides and *chomped* on the right, so output t only sees inputs
  at times ``<= t`` (causal); each followed by LeakyReLU and dropout;
* a residual connection, through a 1x1 ``Conv1d`` when the level changes the width, then LeakyReLU.

The model keeps sequences time-major, ``(B, K, C)``, like the rest of the package; the module transposes to the
``(B, C, K)`` layout ``Conv1d`` wants and back.

Initialisation: the released code calls ``xavier_uniform_`` on the *computed* weights of the old-style
``weight_norm``; the old hook recomputes them from ``g`` and ``v`` at the next forward pass, so those calls have no
effect and the convolutions train from PyTorch's default ``Conv1d`` initialisation. We use that default too (what
the released model actually ran). The 1x1 residual convolution is not weight-normalised, so its Xavier
initialisation (gain sqrt(2)) does take effect there, and we keep it.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

# TCN widths of the released configuration (its `configs.py`, keys video / logmel / bert), kernel 5,
# dropout 0.1. Kept for comparison (e.g. the TCN notebook); our profiles set their own widths in the config.
RELEASED_TCN_CHANNELS: dict[str, list[int]] = {
    "visual": [512, 512, 512, 512],
    "audio": [128, 128, 128, 128],
    "text": [512, 512, 512, 512],
}
RELEASED_TCN_KERNEL = 5
RELEASED_TCN_DROPOUT = 0.1


def receptive_field(kernel_size: int, levels: int) -> int:
    """Frames one output of a ``levels``-level TCN sees (itself included).

    Each level has two convolutions of dilation ``2**i``, each reaching ``(k - 1) * 2**i`` frames further back:
    ``R = 1 + 2 (k - 1) (2**levels - 1)``. E.g. k = 5: 9, 25, 57, 121 frames for 1..4 levels.
    """
    if kernel_size < 1 or levels < 0:
        raise ValueError(f"receptive_field needs kernel_size >= 1 and levels >= 0, got {kernel_size}, {levels}")
    return 1 + 2 * (kernel_size - 1) * (2**levels - 1)


class Chomp1d(nn.Module):
    """Drop the last ``chomp`` time steps: with symmetric padding of (k-1)·dilation this makes the conv causal."""

    def __init__(self, chomp: int) -> None:
        super().__init__()
        self.chomp = chomp

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, K + chomp) -> (B, C, K)
        return x[:, :, : -self.chomp].contiguous() if self.chomp > 0 else x


class TemporalBlock(nn.Module):
    """One TCN level: two causal, dilated, weight-normed convolutions and a residual connection."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation
        self.dilation = dilation
        self.conv1 = weight_norm(nn.Conv1d(n_in, n_out, kernel_size, padding=padding, dilation=dilation))
        self.chomp1 = Chomp1d(padding)
        self.act1 = nn.LeakyReLU()
        self.drop1 = nn.Dropout(dropout)
        self.conv2 = weight_norm(nn.Conv1d(n_out, n_out, kernel_size, padding=padding, dilation=dilation))
        self.chomp2 = Chomp1d(padding)
        self.act2 = nn.LeakyReLU()
        self.drop2 = nn.Dropout(dropout)
        self.net = nn.Sequential(
            self.conv1, self.chomp1, self.act1, self.drop1, self.conv2, self.chomp2, self.act2, self.drop2
        )
        # 1x1 convolution on the residual path only when the width changes
        self.downsample = nn.Conv1d(n_in, n_out, 1) if n_in != n_out else None
        if self.downsample is not None:
            nn.init.xavier_uniform_(self.downsample.weight, gain=math.sqrt(2))
        self.act = nn.LeakyReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, K) -> (B, C_out, K)
        res = x if self.downsample is None else self.downsample(x)
        return self.act(self.net(x) + res)


class TemporalConvNet(nn.Module):
    """Causal TCN over a time-major sequence: ``(B, K, in_dim) -> (B, K, channels[-1])``.

    Args:
        in_dim: width of the input features (the encoder's output, e.g. 512 for IR-50).
        channels: width of each level; ``len(channels)`` levels, level i with dilation ``2**i``.
        kernel_size: kernel of every convolution (released: 5).
        dropout: dropout after each convolution (released: 0.1).
    """

    def __init__(self, in_dim: int, channels: list[int], kernel_size: int = 5, dropout: float = 0.1) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1 or in_dim < 1 or kernel_size < 1:
            raise ValueError(
                f"TemporalConvNet needs in_dim >= 1, a non-empty list of positive channels and kernel_size >= 1; "
                f"got in_dim={in_dim}, channels={channels}, kernel_size={kernel_size}"
            )
        self.in_dim = int(in_dim)
        self.channels = channels
        self.kernel_size = int(kernel_size)
        widths = [self.in_dim, *channels]
        self.levels = nn.ModuleList(
            TemporalBlock(widths[i], widths[i + 1], self.kernel_size, dilation=2**i, dropout=dropout)
            for i in range(len(channels))
        )

    @property
    def out_dim(self) -> int:
        return self.channels[-1]

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.kernel_size, len(self.channels))

    def forward(self, x: torch.Tensor, return_levels: bool = False):
        """``x`` (B, K, in_dim) → (B, K, channels[-1]); with ``return_levels`` also the output of every level."""
        if x.dim() != 3 or x.shape[-1] != self.in_dim:
            raise ValueError(f"TemporalConvNet expects (B, K, {self.in_dim}); got {tuple(x.shape)}")
        h = x.transpose(1, 2)  # (B, C_in, K)
        outs = []
        for level in self.levels:
            h = level(h)  # (B, C_i, K)
            if return_levels:
                outs.append(h.transpose(1, 2))
        y = h.transpose(1, 2).contiguous()  # (B, K, C_out)
        return (y, outs) if return_levels else y
