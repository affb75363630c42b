"""Text modality: punctuation re-alignment, BERT-family word features, words → frame times, words.csv.

Covers defects 3 (punctuation marks dropped), 4 (final token/word dropped) and 7 (normalisation
statistics from each partition instead of the training set).
"""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pytest

from rjcma.data.words import Word, read_words_csv, write_words_csv
from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.models import text_encoder
from rjcma.preprocess import punctuation, text
from rjcma.preprocess.speech import Transcript


def _words(tokens: list[str], step: float = 0.5, dur: float = 0.4) -> list[Word]:
    return [Word(i * step, i * step + dur, t, 0.9) for i, t in enumerate(tokens)]


@pytest.fixture(scope="module")
def enc():
    return text_encoder.load_text_encoder()  # the offline default: all-MiniLM-L6-v2


# ---- punctuation ---------------------------------------------------------------------------------
def test_realign_keeps_colon_and_dash():
    ws = _words("note this well the plan is simple we go".split())
    # the model's output as text tokens, with a lone mark
    r = punctuation.realign(ws, ["note", "this", "well:", "the", "plan", "is", "simple", "-", "we", "go."])
    assert [w.punctuated for w in r] == ["Note", "this", "well:", "the", "plan", "is", "simple-", "we", "go."]
    # ... and as (word, label) pairs, the form PunctuationModel.predict returns
    labels = ["0", "0", ":", "0", "0", "0", "-", "0", "."]
    r2 = punctuation.realign(ws, [(w.word, lab) for w, lab in zip(ws, labels)])
    assert [w.punctuated for w in r2] == [w.punctuated for w in r]
    # no rows added or removed, times/words/confidences untouched (the released code made 1 ms mark rows)
    assert [(w.start, w.end, w.word, w.confidence) for w in r] == [(w.start, w.end, w.word, w.confidence) for w in ws]


def test_realign_tolerates_mismatched_tokens():
    ws = _words("so what do we do now".split())
    r = punctuation.realign(ws, ["so,", "what", "uh,", "do", "we", "do", "now?"], capitalise=False)
    # an inserted token's mark goes to the word before it; every mark survives
    assert [w.punctuated for w in r] == ["so,", "what,", "do", "we", "do", "now?"]
    r = punctuation.realign(ws, ["so", "what:", "we", "now-"], capitalise=False)
    assert [w.punctuated for w in r] == ["so", "what:", "do", "we", "do", "now-"]


def test_punctuate_skips_cleanly_without_model(caplog):
    ws = _words("hello there".split())
    caplog.set_level("INFO", logger="rjcma.preprocess.punctuation")
    assert punctuation.punctuate(ws) == ws
    assert "no punctuation model configured" in caplog.text
    assert punctuation.skip_reason("", False).startswith("skipped")
    # a recogniser that punctuates (Whisper) skips it too, even with a model configured
    t = Transcript(ws, backend="whisper", punctuates=True)
    assert punctuation.punctuate(t, model_dir="/does/not/matter") == ws
    assert punctuation.punctuate(ws, model_dir="/does/not/matter", asr_punctuates=True) == ws
    assert punctuation.skip_reason("/x", False) is None


def test_punctuate_missing_model_dir(tmp_path):
    with pytest.raises(MissingAssetError, match=str(tmp_path / "nope")):
        punctuation.punctuate(_words(["hi"]), model_dir=str(tmp_path / "nope"))


@pytest.mark.parametrize("mark", [":", "-"])
def test_punctuate_with_local_model_keeps_mark(tmp_path, enc, mark):
    """A tiny local token-classification model (labels of the paper's model) forced to emit `mark`."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    labels = ["0", ".", ",", "?", "-", ":"]
    cfg = BertConfig(
        vocab_size=enc.tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
    )
    m = BertForTokenClassification(cfg)
    with torch.no_grad():
        m.classifier.weight.zero_()
        m.classifier.bias.copy_(torch.tensor([10.0 if l == mark else 0.0 for l in labels]))
    m.save_pretrained(tmp_path)
    enc.tokenizer.save_pretrained(tmp_path)
    ws = Transcript(_words("well here is the plan".split()), backend="vosk")
    out = punctuation.punctuate(ws, model_dir=str(tmp_path))
    assert isinstance(out, Transcript) and out.backend == "vosk"
    assert [w.punctuated for w in out] == ["Well" + mark, "here" + mark, "is" + mark, "the" + mark, "plan" + mark]
    assert [w.word for w in out] == [w.word for w in ws]


# ---- word features --------------------------------------------------------------------------------
def _direct(enc, sentence_words: list[str]) -> np.ndarray:
    """Independent computation: one forward pass of the sentence, sum of the last 4 hidden states, pieces
    assigned to words by character offsets and averaged."""
    import torch

    s = " ".join(sentence_words)
    b = enc.tokenizer(s, return_offsets_mapping=True, return_tensors="pt")
    offs = b.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        hs = enc.model(**b, output_hidden_states=True).hidden_states
    assert len(hs) == enc.num_layers + 1
    tok = (hs[-1] + hs[-2] + hs[-3] + hs[-4])[0].numpy()
    bounds, p = [], 0
    for w in sentence_words:
        bounds.append((p, p + len(w)))
        p += len(w) + 1
    out = np.zeros((len(sentence_words), tok.shape[1]))
    for i, (a, z) in enumerate(bounds):
        rows = [k for k, (s0, s1) in enumerate(offs) if s1 > s0 and s0 >= a and s1 <= z]
        out[i] = tok[rows].mean(0)
    return out


def test_word_features_sum_of_last_four_layers(enc):
    toks = "Hello, world: this is unbelievably short-lived.".split()
    v = text.word_features(_words(toks), encoder=enc)
    assert v.shape == (len(toks), enc.dim) == (len(toks), 384) and v.dtype == np.float32
    np.testing.assert_allclose(v, _direct(enc, toks), rtol=1e-4, atol=1e-4)


def test_final_word_kept(enc):
    """Defect 4: the released code left the final token's vector at zero and dropped the last word row."""
    toks = "we will meet again tomorrow".split()
    ws = _words(toks)
    v = text.word_features(ws, encoder=enc)
    assert len(v) == len(ws) and np.all(np.linalg.norm(v, axis=1) > 1)
    np.testing.assert_allclose(v[-1], _direct(enc, toks)[-1], rtol=1e-4, atol=1e-4)
    frames = text.words_at(ws, v, np.arange(30) / 10)
    np.testing.assert_array_equal(frames[int(ws[-1].end * 10)], v[-1])  # the last word reaches its frames


def test_sentences_encoded_separately(enc):
    toks = "It rained all day. We stayed inside? Yes".split()
    ws = _words(toks)
    v = text.word_features(ws, encoder=enc)
    np.testing.assert_allclose(v[:4], _direct(enc, toks[:4]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v[4:7], _direct(enc, toks[4:7]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(v[7:], _direct(enc, toks[7:]), rtol=1e-4, atol=1e-4)


def test_long_transcript_chunked_one_vector_per_word(enc):
    rng = random.Random(0)
    vocab = "the quick brown fox jumps over a lazy dog while everyone watches quietly unbelievable".split()
    ws = _words([rng.choice(vocab) for _ in range(400)], step=0.3, dur=0.25)  # no punctuation: one long run
    v = text.word_features(ws, encoder=enc, max_tokens=48)
    assert v.shape == (400, enc.dim) and np.all(np.linalg.norm(v, axis=1) > 1)
    # words far from chunk edges barely depend on where the cut falls
    v2 = text.word_features(ws, encoder=enc, max_tokens=64)
    cos = np.sum(v * v2, 1) / np.linalg.norm(v, axis=1) / np.linalg.norm(v2, axis=1)
    assert np.median(cos) > 0.9


def test_plan_chunks_covers_every_word_once():
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(1, 60)
        pieces = [rng.randint(1, 6) for _ in range(n)]
        budget = rng.randint(1, 20)
        cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 5)))) if n > 1 else []
        sents = list(zip([0] + cuts, cuts + [n]))
        chunks = text.plan_chunks(pieces, budget, sents, overlap=rng.randint(0, 8))
        covered = [i for _c, o, e in chunks for i in range(o, e)]
        assert covered == list(range(n))
        for c, o, e in chunks:
            assert c <= o < e
            assert sum(pieces[c:e]) <= budget or (e - o == 1 and c == o)  # only a giant lone word overflows
            assert any(s <= c and e <= z for s, z in sents)  # never across a sentence boundary


def test_word_features_empty_and_odd_words(enc):
    assert text.word_features([], encoder=enc).shape == (0, enc.dim)
    ws = _words(["ok", "", "\u200b", "fine"])  # empty / zero-width words still get a vector ([UNK])
    v = text.word_features(ws, encoder=enc)
    assert v.shape == (4, enc.dim) and np.all(np.linalg.norm(v, axis=1) > 0)


# ---- words at frame times -------------------------------------------------------------------------
def test_words_at_boundaries():
    ws = [Word(0.1, 0.3, "a"), Word(0.25, 0.5, "b"), Word(0.7, 0.7, "c"), Word(0.9, 1.5, "d")]
    vec = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    times = np.arange(12) / 10  # t = 0.0, 0.1, ..., 1.1
    f = text.words_at(ws, vec, times)
    # t=0.1 is not > start 0.1; 0.2, 0.3 → a (first match wins at 0.3); 0.4, 0.5 → b; 0.7 zero-length → none;
    # t=0.9 is not > start 0.9; 1.0, 1.1 → d
    assert f[:, 0].tolist() == [0, 0, 1, 1, 2, 2, 0, 0, 0, 0, 4, 4]
    assert f.shape == (12, 1) and f.dtype == np.float32
    assert text.word_index_at(ws, times).tolist() == [-1, -1, 0, 0, 1, 1, -1, -1, -1, -1, 3, 3]
    # uneven times (a variable frame rate) follow the same rule
    vfr = np.array([0.0, 0.12, 0.26, 0.31, 0.6, 0.95, 1.4])
    assert text.word_index_at(ws, vfr).tolist() == [-1, 0, 0, 1, -1, 3, 3]


def test_words_at_no_words_and_errors():
    assert not text.words_at([], np.zeros((0, 8), np.float32), np.arange(5) / 30).any()
    assert text.words_at([], np.zeros((0, 8), np.float32), np.arange(5) / 30).shape == (5, 8)
    with pytest.raises(ValueError):
        text.words_at([Word(0, 1, "a")], np.zeros((2, 8)), np.arange(5) / 30)


def test_text_at_is_word_features_at_the_times_as_stored(enc):
    ws = _words("so this is how it ends".split())
    times = np.arange(90) / 30
    X = text.text_at(ws, times)
    assert X.dtype == np.float16 and X.shape == (90, enc.dim) and X.any()
    np.testing.assert_array_equal(X, text.words_at(ws, text.word_features(ws, encoder=enc), times).astype(np.float16))
    none = text.text_at([], times)
    assert none.shape == (90, enc.dim) and not none.any()


# ---- words.csv -------------------------------------------------------------------------------------
def test_words_csv_round_trip(tmp_path):
    ws = [Word(0.0, 0.42, "hello", 0.5, 'Hello,'), Word(0.5, 0.9, "say", 1.0, '"say":'), Word(1.0, 1.2, "x", 0.0)]
    p = tmp_path / "t" / "words.csv"
    write_words_csv(p, ws)
    assert p.read_text().splitlines()[0] == "start,end,word,confidence,punctuated"
    assert read_words_csv(p) == ws
    assert not [f for f in os.listdir(p.parent) if f.endswith(".tmp")]
    write_words_csv(p, [])
    assert read_words_csv(p) == []


def test_words_csv_errors_name_file_and_line(tmp_path):
    p = tmp_path / "words.csv"
    p.write_text("start,end,word,confidence,punctuated\n0.0,0.5,hi,1.0,hi\n0.6,abc,there,1.0,there\n")
    with pytest.raises(RjcmaError, match=r"words\.csv:3:"):
        read_words_csv(p)
    p.write_text("a,b\n")
    with pytest.raises(RjcmaError, match=r"words\.csv:1: header"):
        read_words_csv(p)
    with pytest.raises(RjcmaError, match="missing"):
        read_words_csv(tmp_path / "none.csv")


# ---- normalisation (defect 7) ---------------------------------------------------------------------
def test_standardise_uses_training_rows_only():
    rng = np.random.default_rng(0)
    train = [rng.normal(2.0, 3.0, (50, 4)), rng.normal(2.0, 3.0, (70, 4))]
    mean, std = text.standardise(iter(train))
    allrows = np.concatenate(train)
    np.testing.assert_allclose(mean, allrows.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, allrows.std(0), rtol=1e-5)  # population std over training rows
    val = rng.normal(-5.0, 1.0, (30, 4))  # a shifted partition keeps its shift after training-set scaling
    assert ((val - mean) / std).mean() < -1
    m2, s2 = text.standardise([np.ones((3, 2))])
    assert s2.tolist() == [1.0, 1.0]  # constant dims are not divided by ~0
    with pytest.raises(RjcmaError):
        text.standardise([])


# ---- model directories -----------------------------------------------------------------------------
def test_text_model_dirs(tmp_path, monkeypatch, enc):
    assert enc.model_dir == text_encoder.default_model_dir() and enc.num_layers == 6
    with pytest.raises(MissingAssetError, match=str(tmp_path / "bert")):
        text_encoder.resolve_model_dir(tmp_path / "bert")
    with pytest.raises(MissingAssetError, match="config.json missing"):
        text_encoder.resolve_model_dir(tmp_path)
    with pytest.raises(MissingAssetError, match="bert-base-uncased"):
        text.word_features(_words(["hi"]), model_dir=str(tmp_path / "nope"))
    # a bare name is looked up under $RJCMA_WEIGHTS_DIR (the paper profile's bert-base-uncased)
    d = tmp_path / "weights" / "bert-base-uncased"
    d.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        os.symlink(enc.model_dir / f, d / f)
    monkeypatch.setenv("RJCMA_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert text_encoder.resolve_model_dir("bert-base-uncased") == d
    shutil.rmtree(d)
    with pytest.raises(MissingAssetError):
        text_encoder.resolve_model_dir("bert-base-uncased")
    assert len(text_encoder.weights_hash(enc.model_dir)) == 16
