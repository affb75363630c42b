"""Punctuation restoration for recognisers that write none (Vosk), paper §4.2.1.

The paper restores punctuation with ``deepmultilingualpunctuation`` before BERT reads the transcript.
Here the model comes from a LOCAL directory (``preprocess.punctuation_model``; the paper's model is
``oliverguhr/fullstop-punctuation-multilang-large``, which users download once themselves); nothing is
fetched at run time. A bare name is found by the rule of :mod:`rjcma.assets` (``preprocess.weights_dir``, then
``$RJCMA_WEIGHTS_DIR``). The step is skipped when the recogniser already punctuates (Whisper, the demo) or when
``punctuation_model`` says so explicitly (``none``/``skip``). Preprocessing with a recogniser that writes no
punctuation (Vosk, the paper's) and no model configured is refused (:func:`punctuation_plan`): sentence
splitting before BERT reads the marks, so a silent skip would change every text feature.

Re-alignment (:func:`realign`) keeps every mark the model emits — ``. , ? - :`` and any other — and attaches
it to the word it follows (the word's ``punctuated`` field). The released code kept only ``.,!?;`` (dropping
``:`` and ``-``) and wrote each mark as its own 1 ms row (defect 3 of the book's chapter *Paper vs released code*).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from rjcma.assets import resolve_asset
from rjcma.data.words import Word
from rjcma.errors import MissingAssetError
from rjcma.preprocess.speech import Transcript, split_punctuation

log = logging.getLogger(__name__)

NO_MARK = ("0", "O", "", 0)  # the model's label for "no punctuation after this word"
SENTENCE_END = (".", "?", "!")
PAPER_MODEL = "oliverguhr/fullstop-punctuation-multilang-large"
PAPER_DIR = PAPER_MODEL.split("/")[1]  # the folder name the paper profile looks up under the weights folders
SKIP_VALUES = ("none", "skip")  # punctuation_model values that skip the step on purpose
_HINT = (
    f"download the paper's model {PAPER_MODEL} once (e.g. `huggingface-cli download {PAPER_MODEL} "
    f"--local-dir DIR`) and set preprocess.punctuation_model=DIR (or put it as {PAPER_DIR}/ under "
    "preprocess.weights_dir / $RJCMA_WEIGHTS_DIR), or set preprocess.punctuation_model=none to skip punctuation "
    "(sentences are then cut by length only)"
)


def is_skip(model_dir: str) -> bool:
    """``punctuation_model`` asks to skip the step on purpose (``none`` or ``skip``)."""
    return str(model_dir or "").strip().lower() in SKIP_VALUES


def skip_reason(model_dir: str = "", asr_punctuates: bool = False) -> str | None:
    """Why :func:`punctuate` would return the words unchanged (None when it will run the model)."""
    if asr_punctuates:
        return "skipped: the recogniser already writes punctuation"
    if is_skip(model_dir):
        return f"skipped: preprocess.punctuation_model={str(model_dir).strip()}"
    if not model_dir:
        return "skipped: no punctuation model configured (preprocess.punctuation_model is empty)"
    return None


def resolve_model_dir(model_dir: str, weights_dir: str = "") -> Path:
    """The punctuation model folder by the rule of :mod:`rjcma.assets`; one error line when it is missing."""
    d = resolve_asset(model_dir, weights_dir, what="punctuation model", hint=_HINT,
                      setting="preprocess.punctuation_model")
    if not (d / "config.json").is_file():
        raise MissingAssetError(f"{d}: not a token-classification model directory (config.json missing); {_HINT}")
    return d


def punctuation_plan(model_dir: str, weights_dir: str = "", asr_punctuates: bool = False) -> str | None:
    """The punctuation model folder preprocessing runs, or None when the step is skipped on purpose (the
    recogniser punctuates, or ``none``/``skip``). A recogniser without punctuation and an empty setting is
    refused: the paper restores punctuation before BERT (§4.2.1) and sentence splitting reads it."""
    if asr_punctuates or is_skip(model_dir):
        return None
    if not str(model_dir or "").strip():
        raise MissingAssetError(
            "preprocess.punctuation_model is empty but the recogniser writes no punctuation (Vosk); the paper "
            f"restores it before BERT (paper §4.2.1): {_HINT}"
        )
    return str(resolve_model_dir(model_dir, weights_dir))


def punctuate(words: Sequence[Word], model_dir: str = "", asr_punctuates: bool = False, *, device: str = "cpu",
              weights_dir: str = "") -> list[Word]:
    """Restore punctuation into each word's ``punctuated`` field (paper §4.2.1).

    Returned unchanged (and the reason logged; see :func:`skip_reason`) when the ASR already punctuates —
    ``asr_punctuates`` or a :class:`~rjcma.preprocess.speech.Transcript` whose ``punctuates`` is set — or
    when ``model_dir`` is empty, ``none`` or ``skip``. A configured but missing directory is an error.
    """
    asr_punctuates = asr_punctuates or bool(getattr(words, "punctuates", False))
    reason = skip_reason(model_dir, asr_punctuates)
    if reason:
        log.info("punctuation %s", reason)
        return words if isinstance(words, list) else list(words)
    if not words:
        return _like(words, [])
    model = load_punctuation_model(model_dir, device=device, weights_dir=weights_dir)
    # One clean token per word: the model's own preprocessing (marks not inside numbers removed), no spaces.
    tokens = [re.sub(r"(?<!\d)[.,;:!?](?!\d)", "", "".join(w.word.split())) or "_" for w in words]
    tagged = model.predict(tokens)  # [[token, label, score], ...], one per token (asserted by the package)
    return _like(words, realign(words, [(w.word, str(lab)) for w, (_tok, lab, *_s) in zip(words, tagged)]))


def _like(words: Sequence[Word], new: list[Word]) -> list[Word]:
    if isinstance(words, Transcript):
        return Transcript(new, backend=words.backend, model_dir=words.model_dir, punctuates=words.punctuates)
    return new


# ---- re-alignment (pure) ------------------------------------------------------------------------
def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def _parse_token(tok: Any) -> tuple[str, str, str]:
    """A token as (leading marks, core, trailing marks); tokens are ``"word,"`` strings or (word, label)."""
    if isinstance(tok, (tuple, list)):
        word, label = str(tok[0]), tok[1] if len(tok) > 1 else "0"
        lead, core, trail = split_punctuation(word)
        mark = "" if label in NO_MARK or str(label) in NO_MARK else str(label)
        return lead, core, trail + mark
    return split_punctuation(str(tok))


def realign(words: Sequence[Word], punctuated_tokens: Sequence[Any], capitalise: bool = True) -> list[Word]:
    """Attach the marks of a punctuated token sequence to the words they follow.

    ``punctuated_tokens``: the model's output either as strings (``"hello,"``, ``"world:"``, a lone ``"-"``)
    or as ``(word, label)`` pairs with label ``"0"`` for none. Tokens are matched to ``words`` in order by
    their letters and digits (insertions/deletions tolerated); a token that is only marks attaches to the
    preceding word. Every mark is kept. Times, words and confidences are unchanged and no row is added or
    removed; with ``capitalise`` the first word and every word after ``. ? !`` get a capital letter.
    """
    parsed = [_parse_token(t) for t in punctuated_tokens]
    cores = [(i, p) for i, p in enumerate(parsed) if p[1]]
    # marks of mark-only tokens go to the preceding core token (or lead the first one)
    extra_trail: dict[int, str] = {}
    lead_first = ""
    last = None
    for i, (lead, core, trail) in enumerate(parsed):
        if core:
            last = i
        elif last is None:
            lead_first += lead + trail
        else:
            extra_trail[last] = extra_trail.get(last, "") + lead + trail

    a = [_norm(w.word) for w in words]
    b = [_norm(p[1]) for _i, p in cores]
    match: dict[int, int] = {}  # word index -> token index
    sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op in ("equal", "replace"):
            for k in range(min(a1 - a0, b1 - b0)):
                match[a0 + k] = cores[b0 + k][0]
    # marks of unmatched tokens go to the word before them
    orphan: dict[int, str] = {}
    matched_tokens = set(match.values())
    tok_to_word = {t: w for w, t in match.items()}
    prev_word = None
    for ti, (lead, core, trail) in enumerate(parsed):
        if not core:
            continue
        if ti in tok_to_word:
            prev_word = tok_to_word[ti]
        elif ti not in matched_tokens and prev_word is not None:
            orphan[prev_word] = orphan.get(prev_word, "") + trail + extra_trail.get(ti, "")

    out: list[Word] = []
    sentence_start = True
    for wi, w in enumerate(words):
        text = w.word
        if wi in match:
            ti = match[wi]
            lead, _core, trail = parsed[ti]
            # marks the word already carries (a recogniser's "[4]") are not added a second time
            w_lead, _c, w_trail = split_punctuation(w.word)
            if w_lead and lead.endswith(w_lead):
                lead = lead[: len(lead) - len(w_lead)]
            if w_trail and trail.startswith(w_trail):
                trail = trail[len(w_trail):]
            lead = (lead_first if not out else "") + lead
            text = lead + w.word + trail + extra_trail.get(ti, "") + orphan.get(wi, "")
        if capitalise and sentence_start:
            text = _capitalise_first(text)
        sentence_start = text.rstrip("\"'”’)»").endswith(SENTENCE_END)
        out.append(replace(w, punctuated=text))
    return out


def _capitalise_first(s: str) -> str:
    for i, ch in enumerate(s):
        if ch.isalpha():
            return s[:i] + ch.upper() + s[i + 1 :]
    return s


# ---- the model ---------------------------------------------------------------------------------
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def load_punctuation_model(model_dir: str, device: str = "cpu", weights_dir: str = "") -> Any:
    """``deepmultilingualpunctuation.PunctuationModel`` over a local token-classification model, cached.

    The package builds ``transformers.pipeline("ner", model, ...)`` from its argument; given a directory,
    transformers reads it from disk. Newer transformers reject the package's ``grouped_entities``
    argument, so the same pipeline is built here (aggregation "none" = what that argument asked for).
    """
    d = resolve_model_dir(model_dir, weights_dir)
    key = (str(d.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            from deepmultilingualpunctuation import PunctuationModel
        except ImportError as e:
            raise MissingAssetError(
                "deepmultilingualpunctuation is not installed: pip install 'rjcma[punctuation]' "
                "(or set preprocess.punctuation_model=none to skip punctuation)"
            ) from e
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

        try:
            net = AutoModelForTokenClassification.from_pretrained(str(d), local_files_only=True)
            tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
        except (OSError, ValueError) as e:
            raise MissingAssetError(f"{d}: could not load the punctuation model ({e}); {_HINT}") from e
        model = PunctuationModel.__new__(PunctuationModel)
        model.pipe = pipeline(
            "token-classification",
            model=net,
            tokenizer=tok,
            aggregation_strategy="none",
            device=0 if device.startswith("cuda") else -1,
        )
        _CACHE[key] = model
        return model
