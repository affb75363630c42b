"""Each fact has one home that the rest of the package reads: the fusion registry, the CCC, the paper's numbers, the
corpus layout, run-folder names and the frozen-encoder rule."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import rjcma
from rjcma import config, layout, metrics, paper_numbers
from rjcma.fusions import FUSIONS
from rjcma.models.rjcma import FUSION_BUILDERS, build_model, fusion_modalities, keep_frozen_in_eval
from rjcma.train import cv, losses, results

PACKAGE = Path(rjcma.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE.rglob("*.py")}


def literal_homes(values: set) -> set[str]:
    """The modules of the package in which any of ``values`` is written as a literal."""
    return {name for name, tree in _modules().items()
            if any(isinstance(n, ast.Constant) and type(n.value) in (str, float) and n.value in values
                   for n in ast.walk(tree))}


def function_homes(name: str) -> set[str]:
    """The modules that define a module-level function called ``name``."""
    return {m for m, tree in _modules().items()
            if any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)}


def _floats(x):
    if isinstance(x, dict):
        x = list(x.values())
    if isinstance(x, (list, tuple)):
        return {f for v in x for f in _floats(v)}
    return {x} if isinstance(x, float) else set()


def test_the_home_finders_see_a_copy(monkeypatch):
    """A second definition or a copied literal is found (what the tests below rely on)."""
    fake = {"a.py": ast.parse("def ccc(x):\n    return 0.455\n"), "b.py": ast.parse("X = 'JCA [21]'\n")}
    monkeypatch.setattr(sys.modules[__name__], "_modules", lambda: fake)
    assert function_homes("ccc") == {"a.py"} and literal_homes({0.455}) == {"a.py"}
    assert literal_homes({"JCA [21]"}) == {"b.py"}


def test_the_fusion_registry_drives_config_model_compare_and_book():
    assert {f.builder for f in FUSIONS.values()} == set(FUSION_BUILDERS)
    assert [m[1] for m in cv.COMPARE_MODELS] == list(FUSIONS), "the comparison runs every registered fusion"
    labels = {s for f in FUSIONS.values() for s in (f.label, f.run_label)}
    assert literal_homes(labels) == {"fusions.py"}, "a fusion's label spelled out outside the registry"
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
    assert function_homes("ccc") == function_homes("concordance") == {"metrics.py"}
    rho, usable = losses.ccc_per_sequence(torch.tensor(x)[None, :, None], torch.tensor(y)[None, :, None])
    assert usable.all() and float(rho) == pytest.approx(ref, rel=1e-6)


def test_one_copy_of_the_paper_numbers():
    assert cv.PAPER_TABLE2["rjcma"] == (0.455, 0.652)  # Table 2, RJCMA row, validation columns
    assert set(cv.PAPER_TABLE2) == {m["fusion"] for m in paper_numbers.TABLE2_METHODS if m["fusion"]} <= set(FUSIONS)
    tables = (paper_numbers.TABLE1_FOLDS, paper_numbers.TABLE2_METHODS, paper_numbers.TABLE3_RECURSIONS,
              paper_numbers.TABLE4_TEST)
    distinctive = {v for v in _floats(tables) if len(repr(v).split(".")[-1]) >= 3}  # 0.455, not 0.5
    assert distinctive and literal_homes(distinctive) == {"paper_numbers.py"}


def test_one_layout_for_reader_writer_and_prediction():
    assert {".mp4", ".avi", ".mkv", ".mts", ".ogv"} <= set(layout.VIDEO_SUFFIXES)
    assert len(set(layout.VIDEO_SUFFIXES)) == len(layout.VIDEO_SUFFIXES)
    assert layout.FACES_DIR.startswith(layout.FACES_PREFIX)  # the reader finds the folder the generator writes
    # (FACES_DIR is left out: preprocess/pipeline.py also uses the word as the name of a faces source in meta.json)
    names = {layout.VA_DIR, layout.ANNOTATIONS_DIR, layout.TEST_LIST_NAME,
             *layout.PARTITION_DIRS.values(), *(s for s in layout.VIDEO_SUFFIXES if s != ".mp4")}
    assert literal_homes(names) == {"layout.py"}, "a name of the corpus layout spelled out outside rjcma/layout.py"
    assert layout.face_file(0) == "00001.jpg"


def test_one_run_name():
    cfg = config.load_config("demo").replace(fusion="unimodal:audio", modalities=["audio"], fold=2, seed=5)
    assert function_homes("run_id") == {"train/results.py"}
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
