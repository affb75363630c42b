"""Every figure of ``rjcma.figures`` on small made-up inputs: it returns a Figure with a title, every axis that shows
tick labels has a label, no legend covers any data area, and drawing touches no pyplot state (so a notebook keeps
its inline backend after ``rjcma predict`` code rendered a PNG)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rjcma.data.words import Word
from rjcma.figures import attention, audio, data, encoders, gating, inference, paper_vs_code, results, tcn, text
from rjcma.figures import training, visual
from rjcma.predict_outputs import PredictionResult
from rjcma.results_tables import Table
from rjcma.train.recipe import Recipe, simulate

RNG = np.random.default_rng(0)
N = 120


def _labels(n: int = N) -> np.ndarray:
    y = np.clip(RNG.normal(0, 0.4, size=(n, 2)), -1, 1).astype(np.float32)
    y[10:20] = np.nan
    return y


def _words() -> list[Word]:
    return [Word(0.2 + 0.5 * i, 0.6 + 0.5 * i, w, 0.3 + 0.1 * i, w + ",") for i, w in enumerate("a lovely day".split())]


def _result(people: int = 2) -> PredictionResult:
    t = np.arange(N) / 25.0
    faces = [np.r_[np.ones(N // 2, bool), np.zeros(N - N // 2, bool)]] + [np.ones(N, bool)] * (people - 1)
    speech = np.zeros(N, bool)
    speech[70:80] = True
    preds = [np.stack([np.sin(t + p), 0.5 * np.cos(t)], 1) for p in range(people)]
    return PredictionResult(Path("clip.mp4"), t, preds, faces, speech, [], {}, [])


def _synth_cols() -> tuple[dict, dict]:
    t = np.arange(N) / 25.0
    keys = ("face", "words", "heard_word_level", "prosody", "heard_prosody", "motion", "words_a",
            "heard_word_arousal", "valence_latent", "arousal_latent", "valence", "arousal")
    cols = {k: np.sin(t + i) * 0.5 for i, k in enumerate(keys)}
    cols.update(time=t, valid=np.ones(N), speaking=(t > 1).astype(float), face_event=(t > 4).astype(float))
    shares = {"face": 0.3, "words": 0.3, "prosody": 0.3, "motion": 0.1}
    design = {"latent_mean": {"valence": 0.1, "arousal": 0.2}, "latent_std": {"valence": 0.3, "arousal": 0.3},
              "shares": {"valence": shares, "arousal": shares}}
    return cols, design


def _ceilings() -> dict:
    measured = {k: 0.5 for k in ("visual", "audio", "text", "all", "oracle_latent")}
    return {"measured_ceiling_ccc": {"valence": measured, "arousal": measured},
            "designed_ceiling_ccc": {"valence": {"all": 0.8, "face": 0.5}, "arousal": {"all": 0.7, "prosody": 0.4}}}


def _history() -> list[dict]:
    return [{"epoch": e, "train_loss": 0.9 - 0.1 * e, "val_ccc_valence": 0.1 * e, "val_ccc_arousal": 0.05 * e,
             "val_ccc_mean": 0.07 * e, "lr": 1e-4 / (e + 1), "events": "plateau" if e == 2 else ""} for e in range(4)]


def _ccc_rows(key: str) -> list[dict]:
    return [{key: i, "model": f"m{i}", "fusion": "rjcma" if i == 0 else f"f{i}", "l": i + 1, "valence": 0.3,
             "arousal": 0.4, "mean": 0.35, "paper_valence": 0.4, "paper_arousal": 0.5, "paper_mean": 0.45,
             "fold": "0,1,2", "per_fold_valence": "0.1;0.2;0.3", "per_fold_arousal": "0.3;0.2;0.1"}
            for i in range(3)]


FIGURES = {
    "data.va_traces": lambda: data.va_traces(_labels(), 30.0),
    "data.va_histogram": lambda: data.va_histogram(_labels()),
    "data.window_tiling": lambda: data.window_tiling(N, 50, 25, sequence=np.arange(N), merged=np.arange(N)),
    "data.window_tiling short": lambda: data.window_tiling(20, 32, 16),
    "data.synth_signal_design": lambda: data.synth_signal_design(*_synth_cols()),
    "data.synth_ceilings": lambda: data.synth_ceilings(_ceilings()),
    "visual.face_strip": lambda: visual.face_strip(RNG.integers(0, 255, (30, 48, 48, 3), dtype=np.uint8),
                                                   np.arange(30) % 5 > 0, start=2, n=14, fps=25.0),
    "visual.face_mask_timeline": lambda: visual.face_mask_timeline(np.arange(N) % 7 > 0, _labels(), fps=25.0),
    "visual.encoder_input": lambda: visual.encoder_input(np.zeros((48, 48, 3), np.uint8), np.zeros((3, 40, 40)), 3),
    "audio.audio_front_end": lambda: audio.audio_front_end(RNG.normal(size=16000 * 3), 16000, RNG.normal(size=(298, 64)),
                                                           RNG.normal(size=(96, 64)), 10, 25.0),
    "text.word_timeline": lambda: text.word_timeline(_words(), RNG.normal(size=16000 * 2), 16000,
                                                     reference=[(0.1, 1.5, "a lovely day")]),
    "text.word_features": lambda: text.word_features(RNG.normal(size=(3, 16)), _words()),
    "text.words_on_frames": lambda: text.words_on_frames(np.r_[[-1] * 5, [0] * 10, [1] * 10, [-1] * 5],
                                                         RNG.normal(size=(30, 16)), 10.0),
    "encoders.feature_projections": lambda: encoders.feature_projections(
        {"visual": RNG.normal(size=(N, 8)), "audio": RNG.normal(size=(N, 4))}, _labels()),
    "tcn.dilation_diagram": lambda: tcn.dilation_diagram(3, 2),
    "tcn.receptive_fields": lambda: tcn.receptive_fields(marks={"ours": (5, 4, 121)}, K=300),
    "tcn.before_after": lambda: tcn.before_after(RNG.normal(size=(40, 8)), {"tcn": RNG.normal(size=(40, 4))}, fps=25.0),
    "tcn.causality": lambda: tcn.causality({"tcn": np.r_[np.zeros(10), np.ones(10)]}, 10, {"tcn": 5}),
    "attention.attention_heatmaps": lambda: attention.attention_heatmaps(
        [np.tanh(RNG.normal(size=(6, 6)))] * 2, [RNG.random((6, 3))] * 2, ["audio", "visual"]),
    "attention.recursion_effect": lambda: attention.recursion_effect(
        {"paper": {"audio": {"norm_ratio": [1, 1.2], "cosine": [1, 0.9]}}}, ["audio"]),
    "attention.residual_comparison": lambda: attention.residual_comparison(
        [RNG.normal(size=(6, 3))], {"paper": [RNG.normal(size=(6, 3))]}, ["audio"]),
    "gating.temperature_sweep": lambda: gating.temperature_sweep([0.3, -0.2, 0.1], np.logspace(-2, 2, 30),
                                                                 ["X(0)", "X(1)", "X(2)"]),
    "gating.gate_weights_over_time": lambda: gating.gate_weights_over_time(
        {m: RNG.dirichlet([1, 1, 1], N) for m in ("audio", "visual")}, ["X(0)", "X(1)", "X(2)"], 25.0,
        labels=_labels()),
    "gating.gate_weights_over_time no labels": lambda: gating.gate_weights_over_time(
        {"visual": RNG.dirichlet([1, 1], N)}, ["X(0)", "X(2)"], 25.0, no_face=np.arange(N) % 40 < 10),
    "training.schedule": lambda: training.schedule(
        simulate(Recipe(lr=1e-5, min_lr=1e-8, warmup_epochs=1, patience=1, factor=0.1, early_stop=9, max_epochs=12,
                        groups=2), [0.2, 0.3] + [0.25] * 10, n_steps=3), 3),
    "training.training_history": lambda: training.training_history(_history()),
    "training.prediction_vs_labels": lambda: training.prediction_vs_labels(_labels(), _labels()),
    "training.per_fold_comparison": lambda: training.per_fold_comparison(_ccc_rows("fold")),
    "training.ccc_bars": lambda: training.ccc_bars(_ccc_rows("model"), "model"),
    "training.recursion_ablation": lambda: training.recursion_ablation(_ccc_rows("l")),
    "results.table1_folds": lambda: results.table1_folds(Table("t", [], [], [])),
    "results.table3_recursions": lambda: results.table3_recursions([{"l": 1, "mean": 0.3, "fold": 1}], "demo"),
    "inference.prediction": lambda: inference.prediction(_result(), labels=_labels()),
    "inference.prediction one person": lambda: inference.prediction(_result(1)),
    "paper_vs_code.correlation_layouts": lambda: paper_vs_code.correlation_layouts(np.zeros((6, 6)), np.zeros((4, 9))),
    "paper_vs_code.last_word_features": lambda: paper_vs_code.last_word_features(
        RNG.normal(size=(30, 4)), RNG.normal(size=(30, 4)), _words(), 10.0),
}


def _data_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.axison]


def test_every_figure_function_is_exercised():
    """A figure function added to a chapter module without a case here fails this test."""
    import inspect

    modules = (attention, audio, data, encoders, gating, inference, paper_vs_code, results, tcn, text, training, visual)
    public = {f"{m.__name__.split('.')[-1]}.{n}" for m in modules for n, f in vars(m).items()
              if inspect.isfunction(f) and f.__module__ == m.__name__ and not n.startswith("_")
              and inspect.signature(f).return_annotation in ("Figure", Figure)}
    covered = {k.split(" ")[0] for k in FIGURES}
    assert public <= covered, f"figures without a test case: {sorted(public - covered)}"


@pytest.mark.parametrize("name", list(FIGURES))
def test_figure_has_title_labels_and_a_legend_that_covers_nothing(name):
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    fig = FIGURES[name]()
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == open_before, "the figure was registered with pyplot"
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    assert fig.get_suptitle().strip(), "no title"
    for i, ax in enumerate(_data_axes(fig)):
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
            if any(t.get_visible() and t.get_text() for t in ticks):
                assert label.strip(), f"axes {i}: the {axis} axis shows tick labels but has no label"
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for i, ax in enumerate(_data_axes(fig)):
            assert not box.overlaps(ax.get_window_extent(renderer)), f"a legend covers the data area of axes {i}"


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_text_of_a_figure_is_readable_in_the_book(name):
    """Shown in the book's text column (a 1280 px window), the figure's smallest text is at least MIN_TEXT_PX tall:
    a figure drawn wider than the column is shrunk, and its legends with it."""
    from rjcma.config import load_config
    from rjcma.figures.style import MIN_TEXT_PX, shown_text_px

    fig = FIGURES[name]()
    px = shown_text_px(fig, load_config("demo").book.figure_dpi)
    assert px >= MIN_TEXT_PX, f"{name}: its smallest text is {px:.1f} px tall on the page"


def test_the_readability_check_catches_a_wide_figure():
    from rjcma.figures.style import BOOK_COLUMN_PX, MIN_TEXT_PX, shown_text_px

    fig = Figure(figsize=(13, 3))  # drawn without new_figure's cap
    ax = fig.subplots()
    ax.plot([0, 1], label="x")
    ax.legend(fontsize=7)
    assert shown_text_px(fig, 110) < MIN_TEXT_PX
    assert shown_text_px(fig, 110) == pytest.approx(7 * 110 / 72 * BOOK_COLUMN_PX / (13 * 110))


def test_the_covering_check_catches_a_legend_inside_the_axes():
    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="line")
    leg = ax.legend(loc="upper left")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    assert leg.get_window_extent(canvas.get_renderer()).overlaps(ax.get_window_extent(canvas.get_renderer()))


@pytest.mark.parametrize("reference", [False, True])
def test_word_labels_never_overlap_in_a_dense_stretch(reference):
    """An utterance at three words a second in a 24 s trial, as the text chapter shows one: no two labels of the
    timeline's word row, nor of its script row, overlap on the page (two alternating rows did), and none is cut by
    the axes' edge (the first utterance starts at 0.1 s)."""
    said = "and then the quick brown fox jumped over all of the lazy dogs, which surprised everyone there".split()
    words = [Word(0.1 + 0.33 * i, 0.35 + 0.33 * i, w, 0.9, w) for i, w in enumerate(said)]
    parts = [words[i:i + 6] for i in range(0, len(words), 6)]  # the script: one span per utterance
    ref = [(p[0].start, p[-1].end, " ".join(w.word for w in p)) for p in parts] if reference else None
    fig = text.word_timeline(words, np.zeros(16000 * 24, np.float32), 16000, reference=ref)
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(110)
    canvas.draw()
    renderer = canvas.get_renderer()
    rows = fig.axes[1:3] if reference else fig.axes[1:2]
    for ax in rows:
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        assert len(boxes) == (len(words) if ax is fig.axes[1] else len(ref))
        clash = [(a_t.get_text(), b_t.get_text()) for i, (a_t, a) in enumerate(zip(ax.texts, boxes))
                 for b_t, b in list(zip(ax.texts, boxes))[i + 1:]
                 if a.overlaps(b) and min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1]
        assert not clash, f"{ax.get_ylabel()}: overlapping labels {clash[:5]}"
        edge = ax.get_window_extent(renderer)
        cut = [t.get_text() for t, b in zip(ax.texts, boxes) if b.x0 < edge.x0 - 0.5 or b.x1 > edge.x1 + 0.5]
        assert not cut, f"{ax.get_ylabel()}: labels cut by the axes' edge {cut}"


def test_rendering_the_predict_png_keeps_the_notebook_backend(tmp_path):
    """Rendering the PNG of ``rjcma predict`` leaves the process's backend alone: a notebook that scores a video
    (the inference chapter) shows its next figure inline. Run in a fresh interpreter with the notebooks' backend."""
    code = (
        "import matplotlib, numpy as np\n"
        "from pathlib import Path\n"
        "from rjcma.predict_outputs import PredictionResult\n"
        "from rjcma.report import png_bytes\n"
        "t = np.arange(50) / 25.0\n"
        "r = PredictionResult(Path('v.mp4'), t, [np.zeros((50, 2))], [np.ones(50, bool)], np.zeros(50, bool),"
        " [], {}, [])\n"
        "before = matplotlib.get_backend()\n"
        "assert png_bytes(r)[:4] == b'\\x89PNG'\n"
        "print(before, matplotlib.get_backend())\n"
    )
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "rjcma_src"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    before, after = proc.stdout.split()
    assert "inline" in before and after == before
