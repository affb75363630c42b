"""Figures of the audio chapter (notebook 03_audio): the VGGish front end."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rjcma.figures.style import legend_above, new_figure

PATCH_SECONDS = 0.96  # one VGGish patch: 96 log-mel frames of 10 ms


def audio_front_end(waveform, sample_rate: int, log_mel, patch, frame: int, fps: float, title: str = "",
                    dpi: int | None = None) -> Figure:
    """Waveform, full log-mel spectrogram (with the patch of ``frame`` outlined) and that 96x64 patch."""
    fig = new_figure(11, 5.4, dpi)
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1.2), height_ratios=(1, 1.6))
    ax0 = fig.add_subplot(gs[0, 0])
    t = np.arange(len(waveform)) / sample_rate
    ax0.plot(t, waveform, lw=0.4, label="waveform (16 kHz)")
    t0 = frame / fps
    ax0.axvspan(t0, t0 + PATCH_SECONDS, color="tab:orange", alpha=0.3, label=f"the patch of frame {frame}")
    ax0.set_xlim(0, t[-1] if len(t) else 1)
    ax0.set_ylabel("amplitude")
    ax0.set_xlabel("time (s)")
    legend_above(ax0, ncol=2)
    ax1 = fig.add_subplot(gs[1, 0], sharex=ax0)
    L = np.asarray(log_mel, dtype=np.float32)
    im = ax1.imshow(L.T, origin="lower", aspect="auto", extent=(0, len(L) / 100.0, 0, L.shape[1]), cmap="magma")
    ax1.add_patch(Rectangle((t0, 0), PATCH_SECONDS, L.shape[1], fill=False, ec="cyan", lw=1.5))
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("mel band")
    ax2 = fig.add_subplot(gs[:, 1])
    ax2.imshow(np.asarray(patch, np.float32).T, origin="lower", aspect="auto", cmap="magma")
    ax2.set_title(f"patch of frame {frame}\n96 x 64 ({t0:.2f}-{t0 + PATCH_SECONDS:.2f} s)", fontsize=8)
    ax2.set_xlabel("log-mel frame (10 ms)")
    ax2.set_ylabel("mel band")
    fig.colorbar(im, ax=ax2, label="log mel energy", location="bottom")
    fig.suptitle(title or "VGGish front end: waveform, log-mel, one frame's patch", fontsize=10)
    return fig
