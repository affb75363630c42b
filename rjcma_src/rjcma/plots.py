"""Figures used by the notebooks and the book (matplotlib, no display needed).

Each function takes arrays/results and returns a matplotlib Figure; notebooks call these instead of plotting inline.
"""

from __future__ import annotations

# No backend is forced here: headless processes fall back to Agg, and notebooks keep inline figures.


# ---- TCN (notebook 06a_tcn; owner: models helper) ------------------------------------------------------------------
def tcn_dilation_diagram(kernel_size: int, levels: int, steps: int | None = None, dpi: int = 110):
    """Which inputs feed the last output of a causal dilated TCN: one row per convolution, edges of the cone.

    Rows: the input, then two convolutions per level (dilation 2**i, kernel ``kernel_size``). Every node is a time
    step; the edges drawn are the connections that reach the last output, so the bottom row's coloured nodes are
    its receptive field (``rjcma.models.tcn.receptive_field``).
    """
    import matplotlib.pyplot as plt

    from rjcma.models.tcn import receptive_field

    R = receptive_field(kernel_size, levels)
    T = steps or min(R + 6, 140)
    dil = [2**i for i in range(levels) for _ in (0, 1)]  # two convolutions per level
    rows = len(dil) + 1
    fig, ax = plt.subplots(figsize=(min(13, 3 + 0.09 * T), 1.1 + 0.55 * rows), dpi=dpi)
    # backwards from the last output: the set of active nodes per row
    active = [set() for _ in range(rows)]
    active[-1] = {T - 1}
    for r in range(rows - 1, 0, -1):
        d = dil[r - 1]
        for t in active[r]:
            for j in range(kernel_size):
                s = t - j * d
                if s >= 0:
                    active[r - 1].add(s)
                    ax.plot([s, t], [r - 1, r], color="tab:blue", lw=0.6, alpha=0.5, zorder=1)
    for r in range(rows):
        xs = list(range(T))
        on = [t in active[r] for t in xs]
        ax.scatter(xs, [r] * T, s=9, c=["tab:orange" if o else "0.82" for o in on], zorder=2)
    labels = ["input"] + [f"level {i // 2 + 1} conv {i % 2 + 1} (d={d})" for i, d in enumerate(dil)]
    ax.set_yticks(range(rows), labels, fontsize=8)
    ax.set_xlabel("time step (frame)")
    ax.set_title(f"causal dilated TCN, kernel {kernel_size}, {levels} levels: the last output sees {R} frames")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def tcn_receptive_field(
    kernel_sizes=(3, 5, 7),
    max_levels: int = 6,
    marks: dict | None = None,
    K: int | None = None,
    dpi: int = 110,
):
    """Receptive field (frames) against the number of levels for several kernels.

    ``marks``: ``{label: (kernel_size, levels, measured_frames)}`` drawn as points (e.g. the configured TCN and the
    released one, measured from gradients); ``K``: the window length, drawn as a horizontal line.
    """
    import matplotlib.pyplot as plt

    from rjcma.models.tcn import receptive_field

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=dpi)
    L = list(range(1, max_levels + 1))
    for k in kernel_sizes:
        ax.plot(L, [receptive_field(k, n) for n in L], marker="o", ms=3, label=f"kernel {k}: 1+2(k-1)(2^L-1)")
    for i, (label, (_k, n, measured)) in enumerate((marks or {}).items()):
        ax.scatter([n], [measured], s=90, marker="*Ds^"[i % 4], zorder=3, label=f"{label} (measured)")
    if K:
        ax.axhline(K, color="0.4", ls="--", lw=1)
        ax.text(L[0], K * 1.08, f"window K = {K}", color="0.3", fontsize=8)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("levels L (dilations 1, 2, …, 2^(L-1))")
    ax.set_ylabel("receptive field (frames)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def tcn_before_after(x, outputs: dict, fps: float | None = None, channels: int = 64, dpi: int = 110):
    """Heat maps of a feature sequence ``x`` (K, d) and of TCN outputs ``{label: (K, c)}``, plus a few channels.

    Each map shows at most ``channels`` channels, standardised per channel over time so their dynamics compare.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    seqs = {"input features": np.asarray(x, dtype=np.float32), **{k: np.asarray(v) for k, v in outputs.items()}}
    n = len(seqs)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 5.6), dpi=dpi, gridspec_kw={"height_ratios": [2, 1]})
    axes = np.asarray(axes).reshape(2, n)
    for j, (label, s) in enumerate(seqs.items()):
        s = s[:, :channels]
        z = (s - s.mean(0)) / (s.std(0) + 1e-6)
        t = np.arange(len(s)) / fps if fps else np.arange(len(s))
        axes[0, j].imshow(z.T, aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5, interpolation="nearest",
                          extent=[t[0], t[-1], s.shape[1] - 0.5, -0.5])
        axes[0, j].set_title(f"{label}\n{tuple(np.asarray(seqs[label]).shape)}", fontsize=9)
        axes[0, j].set_ylabel("channel")
        for c in range(min(3, s.shape[1])):
            axes[1, j].plot(t, z[:, c], lw=0.9, label=f"ch {c}")
        axes[1, j].set_xlabel("time (s)" if fps else "frame")
        axes[1, j].set_ylabel("standardised")
        axes[1, j].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def tcn_causality(diffs: dict, t0: int, rfs: dict | None = None, dpi: int = 110):
    """|Δ output| per frame after perturbing the input at frame ``t0``: zero before t0 (causal), non-zero for a
    receptive field after it. ``diffs``: ``{label: (K,)}``; ``rfs``: ``{label: receptive field}`` shaded."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7.5, 3.0), dpi=dpi)
    for label, d in diffs.items():
        d = np.asarray(d)
        line = ax.plot(np.arange(len(d)), d / (d.max() + 1e-12), lw=1.2, label=label)[0]
        if rfs and label in rfs:
            ax.axvspan(t0, min(len(d) - 1, t0 + rfs[label] - 1), color=line.get_color(), alpha=0.08)
    ax.axvline(t0, color="k", lw=0.8, ls=":")
    ax.text(t0, 1.05, f" input changed at frame {t0}", fontsize=8, va="bottom")
    ax.set_xlabel("output frame")
    ax.set_ylabel("|Δ output| / max (symlog)")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_ylim(0, 1.6)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---- text modality (notebook 04_text; owner: speech/text helper) ------------------------------------
def plot_word_timeline(words, waveform, sample_rate, reference=None, title="", dpi=110):
    """The waveform with one box per recognised word (start..end), labelled with its punctuated text and
    shaded by ASR confidence; ``reference``: optional (start, end, text) spans drawn underneath (e.g. the
    demo corpus's script). Returns the Figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.asarray(waveform, dtype=np.float32)
    t_end = max(len(x) / float(sample_rate), max((w.end for w in words), default=0.0))
    rows = 3 if reference else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11, 1.6 * rows + 0.8), sharex=True, dpi=dpi,
                             gridspec_kw={"height_ratios": [2, 1.2] + ([0.8] if reference else [])})
    ax = axes[0]
    # min/max envelope per 10 ms keeps the plot light for long files
    hop = max(1, int(sample_rate // 100))
    n = len(x) // hop
    if n:
        env = x[: n * hop].reshape(n, hop)
        tt = (np.arange(n) + 0.5) * hop / sample_rate
        ax.fill_between(tt, env.min(1), env.max(1), color="0.55", lw=0)
    for w in words:
        ax.axvspan(w.start, w.end, color="tab:blue", alpha=0.12, lw=0)
    ax.set_ylabel("waveform")
    ax.set_title(title or "recognised words over the audio")
    ax = axes[1]
    cmap = plt.get_cmap("viridis")
    for i, w in enumerate(words):
        y = i % 2
        ax.barh(y, max(w.end - w.start, 1e-3), left=w.start, height=0.8, color=cmap(w.confidence), edgecolor="k", lw=0.3)
        ax.text((w.start + w.end) / 2, y, w.punctuated, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks([])
    ax.set_ylim(-0.6, 1.6)
    ax.set_ylabel("words")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=list(axes), label="ASR confidence", fraction=0.025, pad=0.01)
    if reference:
        ax = axes[2]
        for s, e, txt in reference:
            ax.barh(0, e - s, left=s, height=0.8, color="0.85", edgecolor="0.4", lw=0.4)
            ax.text((s + e) / 2, 0, txt, ha="center", va="center", fontsize=6, clip_on=True)
        ax.set_yticks([])
        ax.set_ylabel("script")
    axes[-1].set_xlim(0, t_end)
    axes[-1].set_xlabel("time (s)")
    return fig


def plot_word_features(vectors, words, max_words=40, title="", dpi=110):
    """Heat map of per-word feature vectors (rows: words, columns: dimensions), clipped at ±3 robust std."""
    import matplotlib.pyplot as plt
    import numpy as np

    v = np.asarray(vectors, dtype=np.float32)[:max_words]
    labels = [w.punctuated for w in words][:max_words]
    fig, ax = plt.subplots(figsize=(11, 0.18 * max(len(v), 4) + 1.4), dpi=dpi)
    if len(v):
        z = (v - v.mean(0)) / (v.std(0) + 1e-6)
        im = ax.imshow(np.clip(z, -3, 3), aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="z-score per dimension", fraction=0.025, pad=0.01)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel(f"feature dimension (d = {v.shape[1] if v.ndim == 2 else 0})")
    ax.set_title(title or "word features: sum of the last four hidden layers, pieces averaged")
    return fig


def plot_words_on_frames(word_index, frame_vectors, fps, words=None, title="", dpi=110):
    """How words spread over video frames: the word each frame takes (−1: none) and the (N, d) frame
    features (first 64 dimensions) with zeros where nobody speaks."""
    import matplotlib.pyplot as plt
    import numpy as np

    idx = np.asarray(word_index)
    f = np.asarray(frame_vectors, dtype=np.float32)
    t = np.arange(len(idx)) / float(fps)
    fig, axes = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True, dpi=dpi, gridspec_kw={"height_ratios": [1, 2]})
    ax = axes[0]
    ax.step(t, np.where(idx >= 0, idx, np.nan), where="post", color="tab:blue", lw=1)
    silent = idx < 0
    ax.fill_between(t, 0, 1, where=silent, transform=ax.get_xaxis_transform(), color="0.9", step="post", lw=0,
                    label="no word (zeros)")
    ax.set_ylabel("word index")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(title or f"words → frames (frame k at t = k/fps, fps = {fps:g})")
    ax = axes[1]
    d = min(64, f.shape[1]) if f.ndim == 2 else 0
    if d:
        lim = float(np.percentile(np.abs(f[:, :d]), 99)) or 1.0
        ax.imshow(f[:, :d].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                  extent=(0, len(idx) / float(fps), d, 0))
    ax.set_ylabel(f"dims 0..{d - 1}")
    ax.set_xlabel("time (s)")
    return fig


# ---- data (notebook 01_data; owner: corpus reader helper) ----------------------------------------------------------
def _nan_runs(mask):
    """(start, stop) index pairs of the runs where ``mask`` is True."""
    import numpy as np

    m = np.concatenate(([False], np.asarray(mask, bool), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[0::2], edges[1::2]))


def va_traces(labels, fps: float, title: str = "", dpi: int = 110):
    """Valence and arousal of one trial over time; the frames annotated −5 (NaN) are shaded grey."""
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.asarray(labels, dtype=np.float32)
    t = np.arange(len(y)) / float(fps)
    fig, axes = plt.subplots(2, 1, figsize=(11, 4.2), sharex=True, dpi=dpi)
    for ax, col, name, color in zip(axes, (0, 1), ("valence", "arousal"), ("tab:blue", "tab:red")):
        ax.plot(t, y[:, col], color=color, lw=1)
        for i, (a, b) in enumerate(_nan_runs(np.isnan(y[:, col]))):
            ax.axvspan(a / fps, b / fps, color="0.85", lw=0, label=None if i else "−5 (not annotated)")
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel(name)
        if np.isnan(y[:, col]).any():
            ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel(f"time (s), frame k at k / fps, fps = {fps:g}")
    axes[0].set_title(title or f"{len(y)} annotated frames, {int(np.isnan(y[:, 0]).sum())} marked −5")
    return fig


def va_histogram(labels, bins: int = 40, title: str = "", dpi: int = 110):
    """2-D histogram of (valence, arousal) over all annotated frames (log colour scale)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import LogNorm

    y = np.asarray(labels, dtype=np.float32).reshape(-1, 2)
    y = y[~np.isnan(y).any(axis=1)]
    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=dpi)
    h = ax.hist2d(y[:, 0], y[:, 1], bins=bins, range=[[-1, 1], [-1, 1]], cmap="viridis", norm=LogNorm(), cmin=1)
    fig.colorbar(h[3], ax=ax, label="frames")
    ax.axhline(0, color="w", lw=0.5)
    ax.axvline(0, color="w", lw=0.5)
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    ax.set_aspect("equal")
    ax.set_title(title or f"{len(y):,} annotated frames")
    return fig


def window_tiling(n: int, K: int, stride: int, sequence=None, merged=None, title: str = "", dpi: int = 110):  # noqa: N803
    """How windows of K frames (stride ``stride``, one extra aligned to the end) tile a trial of n frames, how many
    windows cover each frame, and — given ``sequence`` and ``merged`` — the merge of the windows back onto it."""
    import matplotlib.pyplot as plt
    import numpy as np

    from rjcma.data.windows import window_starts

    starts = window_starts(n, K, stride)
    rows = 3 if sequence is not None else 2
    ratios = [max(2, len(starts)) * 0.35, 1] + ([2] if rows == 3 else [])
    fig, axes = plt.subplots(rows, 1, figsize=(11, 1.3 + sum(ratios) * 0.55), sharex=True, dpi=dpi,
                             gridspec_kw={"height_ratios": ratios})
    ax = axes[0]
    for i, s in enumerate(starts):
        real = min(K, n - s)
        extra = s % stride != 0
        ax.barh(i, real, left=s, height=0.6, color="tab:orange" if extra else "tab:blue", alpha=0.8)
        if real < K:
            ax.barh(i, K - real, left=s + real, height=0.6, color="none", edgecolor="0.5", hatch="///", lw=0.5)
        ax.text(s + 2, i, f"start {s}", va="center", fontsize=7, color="w")
    ax.axvline(n, color="k", lw=0.8)
    ax.set_ylim(len(starts) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_ylabel("windows")
    ax.set_title(title or f"n = {n} frames, K = {K}, stride {stride}: {len(starts)} windows "
                 f"(orange: aligned to the end; hatched: padding, masked)")
    count = np.zeros(n, int)
    for s in starts:
        count[s : s + K] += 1
    axes[1].step(np.arange(n), count, where="post", color="0.3")
    axes[1].set_ylabel("windows\nper frame")
    axes[1].set_ylim(0, count.max() + 0.5)
    if rows == 3:
        ax = axes[2]
        ax.plot(np.arange(n), np.asarray(sequence), color="0.6", lw=3, label="sequence")
        if merged is not None:
            ax.plot(np.arange(n), np.asarray(merged), color="tab:green", lw=1, ls="--", label="windows merged back")
        ax.legend(loc="upper right", fontsize=7)
        ax.set_ylabel("value")
    axes[-1].set_xlabel("frame")
    axes[-1].set_xlim(0, max(n, K) + 1)
    return fig


# ---- attention equations (notebook 06b_equations; owner: attention helper) ----------------------------------------
def attention_heatmaps(C_list, H_list, names, title: str = "", dpi: int = 110):
    """Top row: the joint cross-correlation matrices C_m (K×K, eqs 2–4); bottom row: the attention maps H_m.

    ``C_list[m]`` is (K, K) as in the paper (rows: time steps of X_m, columns: time steps of J); ``H_list[m]``
    is given time-major (K, d_m) as the package returns it and drawn in the paper's d_m × K layout.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    M = len(names)
    fig, axes = plt.subplots(2, M, figsize=(3.4 * M, 6.4), dpi=dpi, squeeze=False)
    for m, name in enumerate(names):
        C = np.asarray(C_list[m])
        im = axes[0, m].imshow(C, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        axes[0, m].set_title(f"$C_{{{name[0]}}}$ ({C.shape[0]}×{C.shape[1]})")
        axes[0, m].set_xlabel("time step of J")
        axes[0, m].set_ylabel(f"time step of $X_{{{name[0]}}}$")
        fig.colorbar(im, ax=axes[0, m], fraction=0.046)
        H = np.asarray(H_list[m]).T  # (d_m, K)
        im = axes[1, m].imshow(H, cmap="magma", aspect="auto", interpolation="nearest")
        axes[1, m].set_title(f"$H_{{{name[0]}}}$ ({H.shape[0]}×{H.shape[1]})")
        axes[1, m].set_xlabel("time step")
        axes[1, m].set_ylabel("feature")
        fig.colorbar(im, ax=axes[1, m], fraction=0.046)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def recursion_effect(stats: dict, names, dpi: int = 110):
    """How features change over iterations: ‖X^(l)‖/‖X^(0)‖ (left) and cos(X^(l), X^(0)) (right).

    ``stats[variant][modality]`` is a dict with lists ``"norm_ratio"`` and ``"cosine"``, index 0 = the input.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=dpi)
    styles = ["-", "--", ":", "-."]
    for v, (variant, per_mod) in enumerate(stats.items()):
        for m, name in enumerate(names):
            s = per_mod[name]
            x = list(range(len(s["norm_ratio"])))
            kw = dict(ls=styles[v % len(styles)], marker="o", color=f"C{m}", label=f"{variant}: {name}")
            axes[0].plot(x, s["norm_ratio"], **kw)
            axes[1].plot(x, s["cosine"], **kw)
    axes[0].set_ylabel(r"$\|X^{(l)}\| / \|X^{(0)}\|$")
    axes[1].set_ylabel(r"$\cos(X^{(l)}, X^{(0)})$")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("iteration / layer l (0 = input)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def residual_comparison(inputs, outputs: dict, names, dpi: int = 110):
    """Per modality, what each variant adds to its input, X_out − X_in, as a (feature × time) heat map.

    ``inputs[m]`` and ``outputs[variant][m]`` are time-major (K, d_m) arrays.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    variants = list(outputs)
    fig, axes = plt.subplots(len(variants), len(names), figsize=(3.4 * len(names), 2.8 * len(variants)),
                             dpi=dpi, squeeze=False)
    for m, name in enumerate(names):
        diffs = [np.asarray(outputs[v][m]) - np.asarray(inputs[m]) for v in variants]
        lim = max(float(np.abs(d).max()) for d in diffs) or 1.0
        for r, (v, diff) in enumerate(zip(variants, diffs)):
            im = axes[r, m].imshow(diff.T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
            axes[r, m].set_title(f"{v}: {name}", fontsize=9)
            axes[r, m].set_xlabel("time step")
            axes[r, m].set_ylabel("feature")
            fig.colorbar(im, ax=axes[r, m], fraction=0.046)
    fig.suptitle(r"what each variant adds to its input, $X_{out} - X_{in}$ (feature × time)")
    fig.tight_layout()
    return fig


# ---- demo corpus design (notebook 01_data / the book's data chapter; owner: synth helper) -----------------------------
def synth_signal_design(cols: dict, design: dict, title: str = "", dpi: int = 110):
    """How one synthetic trial's labels are made (``rjcma.data.synth``): each latent part scaled by its weight in
    the target (so the parts plus the residual add up to the latent), what the channels show, and the written
    label (the latent delayed by the annotator's lag, plus noise; gaps are -5 rows).

    ``cols``: the arrays of ``SYNTH_TRUTH/<trial>.csv`` (:func:`rjcma.data.synth.read_truth_trial`);
    ``design``: ``SYNTH_TRUTH.json["design"]``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    t = np.asarray(cols["time"])
    valid = np.asarray(cols["valid"]) > 0.5
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.6), dpi=dpi, sharex=True)
    rows = [
        ("valence", [("face", "face", "face part (mouth, brows)", "tab:orange"),
                     ("words", "words", "word part", "tab:green"),
                     ("heard_word_level", "words", "level of the last adjective heard", "tab:olive")]),
        ("arousal", [("prosody", "prosody", "prosody part (rate, pitch, loudness)", "tab:purple"),
                     ("heard_prosody", "prosody", "prosody of the current utterance", "tab:pink"),
                     ("motion", "motion", "motion part (eyes, blinks, head)", "tab:brown"),
                     ("words_a", "words", "arousal word part", "tab:green"),
                     ("heard_word_arousal", "words", "arousal level of the last adjective heard", "tab:olive")]),
    ]
    for ax, (target, parts) in zip(axes, rows):
        mean, std = design["latent_mean"][target], design["latent_std"][target]
        shares = design["shares"][target]
        for key, part, label, color in parts:
            w = std * np.sqrt(shares[part])
            ls = "--" if key.startswith("heard") else "-"
            ax.plot(t, mean + w * np.asarray(cols[key]), ls, color=color, lw=1.0,
                    label=f"mean + {label} ({shares[part]:.0%} of the variance)")
        ax.plot(t, cols[f"{target}_latent"], color="0.55", lw=1.0, label=f"latent {target} (all parts + residual)")
        ax.plot(t, np.where(valid, cols[target], np.nan), color="k", lw=1.6, label="label (lagged + noise)")
        lo, hi = -1.05, 1.05
        speaking = np.asarray(cols["speaking"]) > 0
        ax.fill_between(t, lo, hi, where=speaking, color="tab:blue", alpha=0.07, lw=0, label="this subject speaks")
        hidden = np.asarray(cols["face_event"]) > 0
        ax.fill_between(t, lo, hi, where=hidden, color="tab:red", alpha=0.2, lw=0, label="face hidden (no jpg)")
        ax.set_ylim(lo, hi)
        ax.set_ylabel(target)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title(title or "synthetic trial: latent parts, channels and label")
    fig.tight_layout()
    return fig


def synth_ceilings(truth: dict, dpi: int = 110):
    """Designed and measured CCC ceilings of the demo corpus per modality (``SYNTH_TRUTH.json``)."""
    import matplotlib.pyplot as plt
    import numpy as np

    measured = truth["measured_ceiling_ccc"]
    designed = truth["designed_ceiling_ccc"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), dpi=dpi, sharey=True)
    for ax, target in zip(axes, ("valence", "arousal")):
        m = measured[target]
        names = ["visual", "audio", "text", "all", "oracle_latent"]
        vals = [m[k] for k in names]
        x = np.arange(len(names))
        bars = ax.bar(x, vals, color=["tab:orange", "tab:purple", "tab:green", "tab:blue", "0.6"])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(x, ["visual", "audio", "text", "all three", "latent\n(oracle)"], fontsize=8)
        d = designed[target]
        ax.axhline(d["all"], color="tab:blue", ls="--", lw=1, label=f"designed, all parts ({d['all']:.2f})")
        for k, v in d.items():
            if k != "all":
                ax.axhline(v, color="0.4", ls=":", lw=1, label=f"designed, {k} only ({v:.2f})")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{target}: best linear predictor from rendered signals", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0].set_ylabel("CCC (train + validation)")
    fig.tight_layout()
    return fig


# ---- inference (notebook 12_inference, `rjcma predict`; owner: inference helper) -----------------------------------
def prediction_figure(times, pred, face_mask=None, labels=None, title: str = "", dpi: int = 110):
    """Predicted valence and arousal over time (left) and the trajectory in the valence–arousal plane (right).

    ``times`` (N,) seconds; ``pred`` (N, 2) [valence, arousal] (NaN columns are skipped); ``face_mask`` (N,) shades
    the stretches without a detected face; ``labels`` (N, 2) adds the annotation as dashed lines.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    t = np.asarray(times, dtype=float)
    p = np.asarray(pred, dtype=float)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), dpi=dpi, gridspec_kw={"width_ratios": [2.2, 1]})
    colours = {"valence": "tab:blue", "arousal": "tab:red"}
    for j, name in enumerate(("valence", "arousal")):
        if not np.isnan(p[:, j]).all():
            ax.plot(t, p[:, j], color=colours[name], lw=1.2, label=f"{name} (predicted)")
        if labels is not None:
            y = np.asarray(labels, dtype=float)[:, j]
            if not np.isnan(y).all():
                ax.plot(t[: len(y)], y[: len(t)], color=colours[name], lw=1, ls="--", alpha=0.7,
                        label=f"{name} (annotation)")
    if face_mask is not None:
        m = np.asarray(face_mask, dtype=bool)
        if len(m) == len(t) and (~m).any():
            ax.fill_between(t, -1, 1, where=~m, color="0.85", step="mid", label="no face detected", zorder=0)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(t[0] if len(t) else 0, t[-1] if len(t) > 1 else 1)
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("value in [-1, 1]")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False)
    fig.suptitle(title or "per-frame prediction", fontsize=9)
    v, a = p[:, 0], p[:, 1]
    if not (np.isnan(v).all() or np.isnan(a).all()):
        sc = ax2.scatter(v, a, c=t, s=4, cmap="viridis")
        ax2.plot(v, a, color="0.5", lw=0.4, alpha=0.6)
        fig.colorbar(sc, ax=ax2, label="time (s)", fraction=0.046, pad=0.04)
    else:
        ax2.text(0, 0, "the model predicts one target only", ha="center", va="center", fontsize=8)
    ax2.add_patch(plt.Circle((0, 0), 1.0, fill=False, color="0.7", lw=0.8))
    ax2.axhline(0, color="0.7", lw=0.6)
    ax2.axvline(0, color="0.7", lw=0.6)
    ax2.set_xlim(-1.05, 1.05)
    ax2.set_ylim(-1.05, 1.05)
    ax2.set_aspect("equal")
    ax2.set_xlabel("valence")
    ax2.set_ylabel("arousal")
    ax2.set_title("valence–arousal trajectory", fontsize=9)
    for a_ in (ax, ax2):
        for side in ("top", "right"):
            a_.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def predict_stage_times(seconds: dict, video_seconds: float, dpi: int = 110):
    """Seconds per minute of video by stage of `rjcma predict` (horizontal bars), with the 60 s target line."""
    import matplotlib.pyplot as plt

    names = list(seconds)
    per_min = [seconds[k] * 60.0 / max(video_seconds, 1e-9) for k in names]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.2), dpi=dpi)
    bars = ax.barh(names[::-1], per_min[::-1], color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.axvline(60, color="tab:red", ls="--", lw=1, label="target: 60 s per minute of video (total)")
    ax.set_xlabel("seconds per minute of video")
    ax.set_title(f"total {sum(per_min):.1f} s per minute of video", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


# ---- preprocessing: faces, audio, encoder features (notebooks 02, 03, 05) -------------------------------------
def face_strip(faces, mask, start: int = 0, n: int = 16, fps: float | None = None, title: str = "", dpi: int = 110):
    """A row of ``n`` consecutive 48x48 face crops from row ``start``; masked rows (no face) framed in red."""
    import matplotlib.pyplot as plt

    n = max(1, min(n, len(faces) - start))
    cols = min(n, 12)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.95, rows * 1.2), dpi=dpi, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        k = start + i
        ax.imshow(faces[k])
        ok = bool(mask[k])
        for s in ax.spines.values():
            s.set_edgecolor("tab:green" if ok else "tab:red")
            s.set_linewidth(2)
        label = f"{k}" if fps is None else f"{k}\n{k / fps:.2f}s"
        ax.set_xlabel(label + ("" if ok else " ✗"), fontsize=7, color="black" if ok else "tab:red")
    fig.suptitle(title or "face crops (row k = jpg k+1; red: no face, black frame)", fontsize=9)
    fig.tight_layout()
    return fig


def face_mask_timeline(mask, labels=None, fps: float = 30.0, title: str = "", dpi: int = 110):
    """Face mask over time beside the annotation validity (rows with -5 labels)."""
    import matplotlib.pyplot as plt
    import numpy as np

    t = np.arange(len(mask)) / fps
    fig, ax = plt.subplots(figsize=(8, 1.6), dpi=dpi)
    ax.fill_between(t, 0, np.asarray(mask, float), step="post", alpha=0.6, label="face found")
    if labels is not None:
        valid = ~np.isnan(np.asarray(labels)).any(axis=1)
        ax.fill_between(t, 1.1, 1.1 + 0.5 * valid, step="post", alpha=0.6, color="tab:orange", label="label valid")
    ax.set_yticks([])
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    ax.set_title(title or "faces and labels over time", fontsize=9)
    fig.tight_layout()
    return fig


def audio_front_end(waveform, sample_rate: int, log_mel, patch, frame: int, fps: float, title: str = "", dpi: int = 110):
    """Waveform, full log-mel spectrogram (with the patch of ``frame`` outlined) and that 96x64 patch."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(10, 5.2), dpi=dpi)
    gs = fig.add_gridspec(2, 2, width_ratios=(4, 1.2), height_ratios=(1, 1.6))
    ax0 = fig.add_subplot(gs[0, 0])
    t = np.arange(len(waveform)) / sample_rate
    ax0.plot(t, waveform, lw=0.4)
    t0 = frame / fps
    ax0.axvspan(t0, t0 + 0.96, color="tab:orange", alpha=0.3, label=f"patch of frame {frame}")
    ax0.set_xlim(0, t[-1] if len(t) else 1)
    ax0.set_ylabel("amplitude")
    ax0.legend(loc="upper right", fontsize=7)
    ax1 = fig.add_subplot(gs[1, 0], sharex=ax0)
    L = np.asarray(log_mel, dtype=np.float32)
    ax1.imshow(L.T, origin="lower", aspect="auto", extent=(0, len(L) / 100.0, 0, L.shape[1]), cmap="magma")
    ax1.add_patch(Rectangle((t0, 0), 0.96, L.shape[1], fill=False, ec="cyan", lw=1.5))
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("mel band")
    ax2 = fig.add_subplot(gs[:, 1])
    ax2.imshow(np.asarray(patch, np.float32).T, origin="lower", aspect="auto", cmap="magma")
    ax2.set_title(f"patch of frame {frame}\n96 x 64 ({t0:.2f}-{t0 + 0.96:.2f} s)", fontsize=8)
    ax2.set_xlabel("log-mel frame (10 ms)")
    ax2.set_ylabel("mel band")
    fig.suptitle(title or "VGGish front end: waveform, log-mel, one frame's patch", fontsize=10)
    fig.tight_layout()
    return fig


def pca_2d(X):
    """First two principal components of the rows of ``X`` (numpy SVD) and the explained variance ratios."""
    import numpy as np

    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0, keepdims=True)
    U, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    var = S ** 2 / max((S ** 2).sum(), 1e-12)
    return Xc @ Vt[:2].T, var[:2]


def feature_projections(features: dict, labels, title: str = "", dpi: int = 110, max_points: int = 4000, seed: int = 0):
    """For each named (N, d) feature matrix: its 2-D PCA coloured by valence (top row) and by arousal (bottom row)."""
    import matplotlib.pyplot as plt
    import numpy as np

    labels = np.asarray(labels, dtype=np.float32)
    names = list(features)
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 6.2), dpi=dpi, squeeze=False)
    rng = np.random.default_rng(seed)
    for j, name in enumerate(names):
        X = np.asarray(features[name], dtype=np.float32)
        ok = ~np.isnan(labels).any(axis=1)
        idx = np.flatnonzero(ok)
        if len(idx) > max_points:
            idx = np.sort(rng.choice(idx, max_points, replace=False))
        Z, var = pca_2d(X[idx])
        for i, (target, cmap) in enumerate((("valence", "coolwarm"), ("arousal", "viridis"))):
            ax = axes[i, j]
            sc = ax.scatter(Z[:, 0], Z[:, 1], c=labels[idx, i], s=4, cmap=cmap, vmin=-1, vmax=1, alpha=0.8)
            ax.set_title(f"{name} — {target}", fontsize=9)
            ax.set_xlabel(f"PC1 ({var[0]:.0%})", fontsize=8)
            ax.set_ylabel(f"PC2 ({var[1]:.0%})", fontsize=8)
            ax.tick_params(labelsize=7)
            fig.colorbar(sc, ax=ax, fraction=0.046)
    fig.suptitle(title or "encoder features (PCA) coloured by the labels", fontsize=10)
    fig.tight_layout()
    return fig


# ---- training and result tables (notebooks 07-10) -----------------------------------------------------
def training_history(rows, title: str = "", dpi: int = 110):
    """Loss, validation CCC and learning rate over epochs (history.csv rows as dicts); release/plateau/reload events
    marked as vertical lines."""
    import matplotlib.pyplot as plt
    import numpy as np

    ep = np.array([int(r["epoch"]) for r in rows])

    def col(k):
        return np.array([float(r[k]) if r.get(k) not in ("", None) else np.nan for r in rows])

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), dpi=dpi)
    axes[0].plot(ep, col("train_loss"), "o-", label="train loss (1 − CCC)")
    axes[0].set_xlabel("epoch"), axes[0].set_title("training loss")
    for k, c in (("val_ccc_valence", "C0"), ("val_ccc_arousal", "C1"), ("val_ccc_mean", "k")):
        y = col(k)
        if np.isfinite(y).any():
            axes[1].plot(ep, y, "o-", color=c, label=k.replace("val_ccc_", ""))
    axes[1].set_xlabel("epoch"), axes[1].set_title("validation CCC"), axes[1].legend(fontsize=8)
    axes[2].semilogy(ep, col("lr"), "o-")
    axes[2].set_xlabel("epoch"), axes[2].set_title("learning rate (end of epoch)")
    styles = {"release": ("C3", "-"), "plateau": ("C2", "--"), "stop": ("k", ":")}
    for r in rows:
        for ev in str(r.get("events", "")).split(";"):
            kind = ev.split(":")[0]
            if kind in styles:
                for ax in axes:
                    ax.axvline(int(r["epoch"]) + 0.5, color=styles[kind][0], ls=styles[kind][1], lw=0.8, alpha=0.7)
    axes[0].plot([], [], color="C3", label="release"), axes[0].plot([], [], "C2--", label="plateau (lr × factor)")
    axes[0].plot([], [], "k:", label="stop")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def prediction_vs_labels(pred, labels, targets=("valence", "arousal"), fps: float = 30.0, title: str = "", dpi: int = 110):
    """Per-frame predictions (N, 2) against labels (N, 2) (NaN gaps left blank) for one trial."""
    import matplotlib.pyplot as plt
    import numpy as np

    pred, labels = np.asarray(pred, float), np.asarray(labels, float)
    t = np.arange(len(labels)) / fps
    fig, axes = plt.subplots(len(targets), 1, figsize=(10, 2.4 * len(targets)), dpi=dpi, sharex=True, squeeze=False)
    for ax, (j, name) in zip(axes[:, 0], enumerate(targets)):
        ax.plot(t, labels[:, j], color="0.3", lw=1.2, label="label")
        if np.isfinite(pred[:, j]).any():
            ax.plot(t, pred[:, j], color=f"C{j}", lw=1.2, label="prediction")
        ax.set_ylabel(name), ax.set_ylim(-1.05, 1.05), ax.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


def per_fold_comparison(rows, dpi: int = 110):
    """Per-fold validation CCC of each model of a ``compare --folds`` summary (rows with ``per_fold_<target>``):
    one panel per target, folds on x, RJCMA drawn thick, each model's mean over the folds as a dashed line."""
    import matplotlib.pyplot as plt
    import numpy as np

    targets = [t for t in ("valence", "arousal") if rows and f"per_fold_{t}" in rows[0]]
    fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 3.4), dpi=dpi, sharey=True, squeeze=False)
    folds = str(rows[0]["fold"]).split(",") if rows else []
    for ax, t in zip(axes[0], targets):
        for i, r in enumerate(rows):
            vals = [float(x) for x in r[f"per_fold_{t}"].split(";")]
            ours = r["fusion"] == "rjcma"
            color = "k" if ours else f"C{i}"
            ax.plot(range(len(vals)), vals, "o-", color=color, lw=2.2 if ours else 1.0, ms=4,
                    label=f"{r['model']} (mean {r[t]:.2f})")
            ax.axhline(r[t], color=color, ls="--", lw=0.8, alpha=0.7)
        ax.set_xticks(range(len(folds)), folds)
        ax.set_xlabel("fold")
        ax.set_title(f"{t}: validation CCC per fold", fontsize=9)
        ax.axhline(0, color="0.5", lw=0.5)
        ax.legend(fontsize=7)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[0][0].set_ylabel("CCC")
    fig.tight_layout()
    return fig


def ccc_table_bars(rows, key: str, title: str = "", paper: bool = True, dpi: int = 110):
    """Grouped bars of valence/arousal CCC per row (cv/ablate/compare summaries), the paper's numbers as markers."""
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [str(r[key]) for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.0 * len(rows) + 2), 3.4), dpi=dpi)
    for j, (t, c) in enumerate((("valence", "C0"), ("arousal", "C1"))):
        ax.bar(x + (j - 0.5) * 0.38, [r[t] for r in rows], width=0.36, color=c, label=f"{t} (ours)")
        if paper:
            pv = [r.get(f"paper_{t}") for r in rows]
            xs = [xi + (j - 0.5) * 0.38 for xi, v in zip(x, pv) if v is not None]
            if xs:
                ax.plot(xs, [v for v in pv if v is not None], "k_", ms=18, mew=2, label=f"{t} (paper)" if j == 0 else None)
    ax.set_xticks(x, labels, rotation=30 if max(len(s) for s in labels) > 6 else 0, ha="right" if max(len(s) for s in labels) > 6 else "center")
    ax.set_ylabel("CCC"), ax.axhline(0, color="0.5", lw=0.5), ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
