"""Word features and their frame alignment (paper §4.2.1, text modality).

Per word: the sum of the last four hidden states of a BERT-family encoder, its word pieces averaged to one
vector (as the released code). Then the frame shown at time t takes the vector of the word being spoken at t
(start < t ≤ end, the first such word), zeros where nobody speaks (:func:`words_at`, the one word-to-frame
alignment; preprocessing passes t_k = k / fps, prediction the stream's times; :func:`text_at` does both steps).
Unlike the released code, no token and no word is dropped (defect 4 of the book's chapter *Paper vs released code*:
the final token stayed zero and the last word row was lost), and long transcripts are cut into chunks the model
accepts, each word encoded (and output) exactly once.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from rjcma.data.words import Word
from rjcma.errors import RjcmaError
from rjcma.models.text_encoder import load_text_encoder
from rjcma.runtime import fixed_threads

N_LAST_LAYERS = 4  # hidden states summed per token (as the released code)
# torch threads of the text encoder, whatever the process's thread budget: with 1 and 2 threads the stored features
# (float16) differed in a few hundred values per trial; one thread is fast enough for a few hundred words per video
TEXT_THREADS = 1
MAX_TOKENS = 256  # longest sequence fed to the encoder (the released code's max length)
SENTENCE_END = (".", "?", "!")


# ---- chunking -----------------------------------------------------------------------------------
def sentence_spans(words: Sequence[Word]) -> list[tuple[int, int]]:
    """[start, end) word index ranges of sentences, ending after a word whose punctuated form ends in . ? !"""
    spans, s = [], 0
    for i, w in enumerate(words):
        if w.text.rstrip("\"'”’)»").endswith(SENTENCE_END):
            spans.append((s, i + 1))
            s = i + 1
    if s < len(words):
        spans.append((s, len(words)))
    return spans


def plan_chunks(
    n_pieces: Sequence[int], budget: int, sentences: Sequence[tuple[int, int]] | None = None, overlap: int | None = None
) -> list[tuple[int, int, int]]:
    """Chunks ``(context_start, out_start, end)`` over words with ``n_pieces[i]`` word pieces each.

    Each sentence is one chunk when it fits in ``budget`` pieces (as the released code encodes sentences);
    a longer one is cut by length, every piece after the first carrying up to ``overlap`` pieces of the
    preceding words as left context (encoded, not output). Words ``out_start..end-1`` of all chunks cover
    every word exactly once, in order.
    """
    n = len(n_pieces)
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    overlap = budget // 4 if overlap is None else overlap
    sentences = list(sentences) if sentences else [(0, n)]
    pieces = [max(1, int(p)) for p in n_pieces]
    chunks: list[tuple[int, int, int]] = []
    for s, e in sentences:
        if sum(pieces[s:e]) <= budget:
            chunks.append((s, s, e))
            continue
        out = s
        while out < e:
            ctx, used = out, 0
            room = min(overlap, budget - pieces[out])  # context never pushes the chunk over budget
            while ctx > s and used + pieces[ctx - 1] <= room:  # left context
                ctx -= 1
                used += pieces[ctx]
            end, total = out, used
            while end < e and (total + pieces[end] <= budget or end == out):  # at least one word
                total += pieces[end]
                end += 1
            chunks.append((ctx, out, end))
            out = end
    return chunks


# ---- word features ------------------------------------------------------------------------------
def word_features(
    words: Sequence[Word],
    model_dir: str = "",
    *,
    encoder=None,
    device: str = "cpu",
    max_tokens: int = MAX_TOKENS,
    batch_size: int = 16,
    overlap: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """One vector per word: Σ of the last 4 hidden states, pieces averaged → ``(n_words, d)`` float32.

    The punctuated text is read when present. ``encoder``: a loaded
    :class:`~rjcma.models.text_encoder.TextEncoder` (else loaded from ``model_dir``, cached per process).
    """
    enc = encoder if encoder is not None else load_text_encoder(model_dir, device=device)
    tok, model = enc.tokenizer, enc.model
    n = len(words)
    if n == 0:
        return np.zeros((0, enc.dim), np.float32)
    if enc.num_layers + 1 < N_LAST_LAYERS:
        raise RjcmaError(f"{enc.model_dir}: {enc.num_layers} layers; the sum of the last 4 hidden states needs >= 3")
    texts = [" ".join(w.text.split()) or tok.unk_token for w in words]
    max_len = min(int(max_tokens), enc.max_length)
    budget = max_len - tok.num_special_tokens_to_add(pair=False)
    n_pieces = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    texts = [t if k > 0 else tok.unk_token for t, k in zip(texts, n_pieces)]  # a word with no piece reads as [UNK]
    chunks = plan_chunks(n_pieces, budget, sentence_spans(words), overlap)

    out = np.zeros((n, enc.dim), np.float64)
    filled = np.zeros(n, bool)
    order = sorted(range(len(chunks)), key=lambda c: chunks[c][2] - chunks[c][0])  # similar lengths per batch
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    it: Iterable = batches
    if progress:
        it = tqdm(batches, desc="word features", unit="batch", leave=False)
    dev = next(model.parameters()).device
    with torch.inference_mode(), fixed_threads(TEXT_THREADS):
        for batch in it:
            spans = [chunks[c] for c in batch]
            b = tok(
                [texts[c0:e] for c0, _o, e in spans],
                is_split_into_words=True,
                padding=True,
                truncation=True,  # planned chunks fit; only a single word longer than the model is cut
                max_length=max_len,
                return_tensors="pt",
            )
            if b["input_ids"].shape[1] > max_len:
                raise RjcmaError(f"internal: chunk of {b['input_ids'].shape[1]} tokens exceeds {max_len}")
            hs = model(**{k: v.to(dev) for k, v in b.items()}).hidden_states
            T = torch.stack(hs[-N_LAST_LAYERS:], 0).sum(0).float().cpu().numpy()  # (B, L, d): Σ last 4 layers
            for j, (c0, o, e) in enumerate(spans):
                wid = np.array([-1 if w is None else w for w in b.word_ids(j)])  # local word index per token
                keep = (wid >= o - c0) & (wid < e - c0)
                idx = wid[keep] + c0
                sums = np.zeros((e - o, enc.dim))
                np.add.at(sums, idx - o, T[j][keep])
                counts = np.bincount(idx - o, minlength=e - o)
                if (counts == 0).any():
                    raise RjcmaError(f"internal: words {o}..{e} lost their word pieces")
                out[o:e] = sums / counts[:, None]  # mean over a word's pieces
                filled[o:e] = True
    if not filled.all():
        raise RjcmaError(f"internal: {int((~filled).sum())} words got no vector")
    return out.astype(np.float32)


def words_at(words: Sequence[Word], vectors: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(len(times), d): the frame shown at ``times[k]`` (s, increasing) takes the vector of the first word with
    start < t_k ≤ end, zeros elsewhere (paper §4.2.1, text modality: one vector per word, repeated over the frames
    it is spoken). ``vectors``: (n_words, d); the result has their dtype (float32 for non-float vectors)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) != len(words):
        raise ValueError(f"vectors must be (n_words={len(words)}, d), got {vectors.shape}")
    times = np.asarray(times, np.float64)
    out = np.zeros((len(times), vectors.shape[1]), vectors.dtype if vectors.dtype.kind == "f" else np.float32)
    taken = np.zeros(len(times), bool)
    for i, w in enumerate(words):
        lo = int(np.searchsorted(times, w.start, side="right"))  # first frame with t > start
        hi = int(np.searchsorted(times, w.end, side="right"))  # first frame with t > end
        if hi <= lo:
            continue
        free = ~taken[lo:hi]  # the first matching word wins
        out[lo:hi][free] = vectors[i]
        taken[lo:hi] = True
    return out


def word_index_at(words: Sequence[Word], times: np.ndarray) -> np.ndarray:
    """(len(times),) index of the word each frame takes in :func:`words_at`, −1 for none."""
    idx = words_at(words, np.arange(len(words), dtype=np.float64)[:, None] + 1, times)[:, 0]
    return idx.astype(np.int64) - 1


def text_at(words: Sequence[Word], times: np.ndarray, model_dir: str = "", weights_dir: str = "",
            device: str = "cpu") -> np.ndarray:
    """(len(times), d) float16: the text features of each frame time, as stored: :func:`word_features` of the words
    (the text model ``model_dir``, :func:`~rjcma.models.text_encoder.load_text_encoder`) at :func:`words_at`
    the times; zeros without words."""
    enc = load_text_encoder(model_dir, weights_dir=weights_dir, device=device)
    vec = word_features(words, encoder=enc) if words else np.zeros((0, enc.dim), np.float32)
    return words_at(words, vec, times).astype(np.float16)


# ---- normalisation --------------------------------------------------------------------------------
def standardise(train_arrays: Iterable[np.ndarray], eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over the rows of the TRAINING arrays only (defect 7 of the book's chapter *Paper vs
    released code*).

    Streams the arrays (memory-mapped store files stay on disk); apply as ``(x - mean) / std`` to every
    partition. Dimensions with std < eps get std 1.
    """
    n, s, ss = 0, None, None
    for a in train_arrays:
        a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
        if s is None:
            s, ss = np.zeros(a.shape[1]), np.zeros(a.shape[1])
        s += a.sum(0)
        ss += (a * a).sum(0)
        n += a.shape[0]
    if s is None or n == 0:
        raise RjcmaError("standardise: no training rows")
    mean = s / n
    var = np.maximum(ss / n - mean * mean, 0.0)
    std = np.sqrt(var)
    std[std < eps] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
