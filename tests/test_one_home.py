"""Each fact has one home that the rest of the package reads: the fusion registry, the CCC, the paper's numbers, the
corpus layout, run-folder names and the frozen-encoder rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rjcma import config, layout, metrics, paper_numbers, results_tables
from rjcma.data.synth import ceilings
from rjcma.fusions import FUSIONS, MODALITIES
from rjcma.models.rjcma import FUSION_BUILDERS, build_model, fusion_modalities, keep_frozen_in_eval
from rjcma.train import cv, losses, results


def test_the_fusion_registry_drives_config_model_compare_and_book():
    assert config.FUSIONS == tuple(FUSIONS) and config.MODALITIES == MODALITIES
    assert {f.builder for f in FUSIONS.values()} == set(FUSION_BUILDERS)
    assert [m[1] for m in cv.COMPARE_MODELS] == list(FUSIONS)
    assert [m[0] for m in cv.COMPARE_MODELS] == [f.run_label for f in FUSIONS.values()]
    assert results_tables.FUSION_LABELS == {n: f.label for n, f in FUSIONS.items()}
    with pytest.raises(config.RjcmaError, match="model.fusion must be one of"):
        config.load_config("demo").replace(fusion="no-such-fusion")


@pytest.mark.parametrize("name", list(FUSIONS))
def test_every_registered_fusion_builds_and_reads_its_modalities(name):
    spec = FUSIONS[name]
    cfg = config.load_config("demo").replace(fusion=name, modalities=spec.compare_modalities(), seq_len=6, stride=3)
    mods = fusion_modalities(cfg)
    assert mods == (list(spec.modalities) if spec.modalities else spec.compare_modalities())
    model = build_model(cfg).eval()
    assert list(model.tcn) == mods
    dims = {"audio": 128, "visual": 512, "text": 384}
    out = model({m: torch.randn(2, 6, dims[m]) for m in mods})
    assert out["pred"].shape == (2, 6, 2)
    if spec.builder in ("joint-attention", "gated-joint-attention"):  # l blocks: JCA one, others num_iterations
        assert len(out["maps"]) == (spec.iterations or cfg.model.num_iterations)
    else:
        assert spec.builder.startswith("released") or out["maps"] == []


def test_one_ccc():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    x = 0.7 * y + rng.normal(scale=0.5, size=200) + 0.2
    ref = metrics.ccc(x, y)
    mx, my, vx, vy, cxy = x.mean(), y.mean(), x.var(), y.var(), np.mean((x - x.mean()) * (y - y.mean()))
    assert ref == pytest.approx(2 * cxy / (vx + vy + (mx - my) ** 2), rel=1e-12)
    assert ceilings.ccc is metrics.ccc  # the generator's ceilings use it
    rho, usable = losses.ccc_per_sequence(torch.tensor(x)[None, :, None], torch.tensor(y)[None, :, None])
    assert usable.all() and float(rho) == pytest.approx(ref, rel=1e-6)


def test_one_copy_of_the_paper_numbers():
    assert cv.PAPER_TABLE1 == {f: (r["valence"], r["arousal"]) for f, r in paper_numbers.TABLE1_FOLDS.items()}
    assert cv.PAPER_TABLE3[3] == (paper_numbers.TABLE3_RECURSIONS[3]["valence"], paper_numbers.TABLE3_RECURSIONS[3]["arousal"])
    assert cv.PAPER_TABLE2["rjcma"] == (0.455, 0.652)  # Table 2, RJCMA row, validation columns
    assert set(cv.PAPER_TABLE2) == {m["fusion"] for m in paper_numbers.TABLE2_METHODS if m["fusion"]} <= set(FUSIONS)


def test_one_layout_for_reader_writer_and_prediction():
    assert {".mp4", ".avi", ".mkv", ".mts", ".ogv"} <= set(layout.VIDEO_SUFFIXES)
    assert len(set(layout.VIDEO_SUFFIXES)) == len(layout.VIDEO_SUFFIXES)
    assert layout.FACES_DIR.startswith(layout.FACES_PREFIX)  # the reader finds the folder the generator writes
    assert layout.face_file(0) == "00001.jpg"


def test_one_run_name():
    cfg = config.load_config("demo").replace(fusion="unimodal:audio", modalities=["audio"], fold=2, seed=5)
    assert results.run_id(cfg) == "unimodal-audio_a_l3_both_fold2_s5"
    assert results.default_run_dir(cfg, "cv").name == results.run_id(cfg)
    assert results.default_run_dir(cfg.replace(run_name="mine")).name == "mine"
    assert results.default_checkpoint(cfg).name == results.run_id(cfg.replace(fold=0))


def test_one_frozen_encoder_rule():
    enc = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 3))
    for p in enc.parameters():
        p.requires_grad_(False)
    enc.train()
    keep_frozen_in_eval(enc)
    assert not enc.training
    enc[2].weight.requires_grad_(True)  # partly released: only the frozen batch norm stays in eval mode
    enc.train()
    keep_frozen_in_eval(enc)
    assert enc.training and enc[0].training and not enc[1].training
