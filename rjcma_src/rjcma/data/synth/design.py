"""The latent design of the demo corpus: variance shares, the lexicon, who speaks, and the latent parts of every
trial (smooth processes, normalised over the corpus, combined into the targets). The formulas are in the package
docstring (:mod:`rjcma.data.synth`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

# complementary by construction: each target is the sum of parts that each modality sees only in part (the package
# docstring); no channel holds more than 0.40 of a target's variance, all channels together 0.80
SHARES = {
    "valence": {"face": 0.40, "words": 0.40, "residual": 0.20},
    "arousal": {"prosody": 0.35, "motion": 0.35, "words": 0.10, "residual": 0.20},
}
# which latent parts each modality renders (what its features can see at best); the words are in the sound too, but
# the audio features (log-mel patches) do not decode them, so the audio channel counts prosody only
CHANNELS = {"visual": ("face", "motion"), "audio": ("prosody",), "text": ("words", "words_a")}
LATENT_MEAN = {"valence": 0.10, "arousal": 0.20}
LATENT_STD = {"valence": 0.38, "arousal": 0.32}
OFFSET_SHARE = 0.2  # share of each part's variance that is a per-trial constant (between-trial differences)
TAU = {"face": 2.5, "words": 4.0, "residual_v": 3.0, "prosody": 5.0, "motion": 2.5, "words_a": 4.0,
       "residual_a": 3.0}  # seconds
LAG_RANGE = (0.5, 1.0)  # annotator lag, seconds
NOISE_STD = 0.04  # annotation noise (absolute units)
NOISE_TAU = 0.3

# an affective lexicon on a 5 x 3 grid, like the valence/arousal norms of real words (e.g. Warriner et al. 2013):
# (valence level, arousal level) in units of the word parts' stds -> adjectives Whisper tiny.en recognises in
# espeak-ng's voice
LEXICON: dict[tuple[float, float], tuple[str, ...]] = {
    (-1.6, 1.2): ("furious", "terrified", "panicked"),
    (-1.6, 0.0): ("terrible", "awful", "horrible"),
    (-1.6, -1.2): ("miserable", "depressed", "hopeless"),
    (-0.7, 1.2): ("angry", "nervous", "stressed"),
    (-0.7, 0.0): ("upset", "unhappy", "disappointed"),
    (-0.7, -1.2): ("sad", "lonely", "bored"),
    (0.0, 1.2): ("surprised", "alert", "restless"),
    (0.0, 0.0): ("alright", "neutral", "okay", "normal"),
    (0.0, -1.2): ("sleepy", "quiet", "tired"),
    (0.7, 1.2): ("excited", "eager", "energetic"),
    (0.7, 0.0): ("happy", "good", "glad", "pleased"),
    (0.7, -1.2): ("calm", "relaxed", "comfortable"),
    (1.6, 1.2): ("thrilled", "ecstatic", "fantastic"),
    (1.6, 0.0): ("wonderful", "excellent", "amazing"),
    (1.6, -1.2): ("peaceful", "serene", "blissful"),
}
CLAUSES = ("I feel {}", "so {}", "really {}", "feeling {}", "very {}", "so {}", "{}")
VOICES_M = ("en-us+m3", "en-us+m1", "en-us+m7", "en-us")
VOICES_F = ("en-us+f2", "en-us+f1", "en-us+f4", "en-us+f3")


@dataclass
class Identity:
    """Who a subject looks and sounds like (nuisance variation the models must ignore)."""

    skin: tuple[int, int, int]  # BGR
    hair: tuple[int, int, int]
    scale: float
    dx: float
    dy: float
    eye_gap: float
    mouth_w: float
    voice: str
    pitch0: float


@dataclass
class TrialPlan:
    name: str
    video: str
    side: str  # "", "left", "right"
    partition: str
    subject: str
    identity: Identity
    lag: float = 0.0
    latents: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class VideoPlan:
    index: int
    name: str
    fps: Fraction
    n_frames: int
    width: int
    height: int
    partition: str
    trials: list[TrialPlan]
    seed_seq: Any = None
    rngs: list[np.random.Generator] = field(default_factory=list)
    speech: dict[str, Any] = field(default_factory=dict)  # plan_speech's output (planned with the corpus)


# ---- small signal helpers -----------------------------------------------------------------------------------------
def smooth_process(rng: np.random.Generator, n: int, dt: float, tau: float) -> np.ndarray:
    """Unit-variance smooth process: AR(1) (OU, time constant tau) filtered by a one-pole low-pass (tau/3)."""
    a = math.exp(-dt / tau)
    b = math.exp(-dt / (tau / 3.0))
    burn = int(5 * tau / dt) + 1
    eps = rng.standard_normal(n + burn)
    x = np.empty(n + burn)
    x[0] = eps[0]
    s = math.sqrt(1 - a * a)
    for k in range(1, n + burn):
        x[k] = a * x[k - 1] + s * eps[k]
    y = np.empty_like(x)
    y[0] = x[0]
    for k in range(1, n + burn):
        y[k] = b * y[k - 1] + (1 - b) * x[k]
    var = (1 - b) ** 2 / (1 - b * b) * (1 + a * b) / (1 - a * b)  # stationary variance of the cascade
    return y[burn:] / math.sqrt(var)


def part_signal(rng: np.random.Generator, n: int, dt: float, tau: float) -> np.ndarray:
    """A unit-variance part: per-trial offset (OFFSET_SHARE of the variance) + smooth process."""
    off = rng.standard_normal()
    return math.sqrt(OFFSET_SHARE) * off + math.sqrt(1 - OFFSET_SHARE) * smooth_process(rng, n, dt, tau)


def ema(x: np.ndarray, a: float) -> np.ndarray:
    y = np.empty_like(x)
    y[0] = x[0]
    for k in range(1, len(x)):
        y[k] = a * y[k - 1] + (1 - a) * x[k]
    return y


def lexicon_cell(w_v: float, w_a: float) -> tuple[float, float]:
    """The lexicon cell nearest to the word parts (valence W, arousal W_A): nearest level on each axis."""
    v_levels = np.array(sorted({v for v, _ in LEXICON}))
    a_levels = np.array(sorted({a for _, a in LEXICON}))
    return float(v_levels[np.argmin(np.abs(v_levels - w_v))]), float(a_levels[np.argmin(np.abs(a_levels - w_a))])


def random_identity(rng: np.random.Generator, female: bool) -> Identity:
    skins = [(180, 205, 240), (150, 185, 225), (120, 160, 210), (95, 130, 180), (70, 100, 150), (60, 80, 120)]
    hairs = [(30, 30, 35), (40, 60, 90), (60, 90, 140), (25, 25, 25), (120, 140, 160), (20, 40, 60)]
    voices = VOICES_F if female else VOICES_M
    return Identity(
        skin=tuple(int(c + rng.integers(-10, 11)) for c in skins[rng.integers(len(skins))]),
        hair=hairs[rng.integers(len(hairs))],
        scale=float(rng.uniform(0.88, 1.08)),
        dx=float(rng.uniform(-0.08, 0.08)),
        dy=float(rng.uniform(-0.05, 0.05)),
        eye_gap=float(rng.uniform(0.34, 0.42)),
        mouth_w=float(rng.uniform(0.30, 0.40)),
        voice=voices[rng.integers(len(voices))],
        pitch0=float(rng.uniform(35, 60)),
    )


# ---- latent parts ------------------------------------------------------------------------------------------------
# Gram-Schmidt order of normalise_parts: the parts the speech carries first (second pass: only z-scored, as said)
PARTS = ("words", "words_a", "prosody", "face", "motion", "residual_v", "residual_a")
SPOKEN = ("words", "words_a", "prosody")
WORD_TAU = 0.8  # seconds: how fast the impression of the last adjective said follows a new one (one-pole)


def make_latents(tp: TrialPlan, rng: np.random.Generator, n: int, fps: float) -> None:
    """Latent parts on the frame grid, with 1.5 s of history before frame 0 (for the annotator lag)."""
    dt = 1.0 / fps
    pre = int(math.ceil(1.5 * fps))
    m = n + pre
    tp.latents = {p: part_signal(rng, m, dt, TAU[p]) for p in PARTS}
    tp.latents["t"] = (np.arange(m) - pre) * dt
    tp.lag = float(rng.uniform(*LAG_RANGE))


def spoken_word_parts(tp: TrialPlan, words: list[dict]) -> None:
    """Replace the word parts W and W_A of a trial by what the subject said: the valence (arousal) level of the
    last lexicon adjective *this subject* finished saying, 0 before the first, followed by a one-pole low-pass
    (``WORD_TAU``). The intended parts that picked the adjectives stay as ``words_intent`` / ``words_a_intent``.

    Why: an annotator reacts to what is said, not to what the speaker meant to say; and with the intended parts in
    the labels the transcript told too little of W for the text channel to add to the face (the book's data
    chapter, *Demo corpus: version history*).
    """
    lat = tp.latents
    t = lat["t"]
    a = math.exp(-float(t[1] - t[0]) / WORD_TAU)
    for part, key in (("words", "valence_level"), ("words_a", "arousal_level")):
        lat[f"{part}_intent"] = lat[part]
        # the grid starts 1.5 s before frame 0, before any word, so the low-pass starts from 0
        lat[part] = ema(held_word_level(words, t, key, speaker=tp.name), a)


def normalise_parts(trials: list[TrialPlan], fixed: tuple[str, ...] = ()) -> None:
    """Make the seven parts orthogonal inside every trial (Gram–Schmidt in the order of PARTS with the uncentred
    inner product over the trial's frames, so per-trial offsets stay), then z-score each part over all frames of
    the corpus. With a dozen short trials, chance correlations between parts are otherwise large enough to flip a
    modality's sign on the validation set.

    ``fixed``: parts already rendered (the speech): they are not changed beyond the z-score, and the later parts
    are made orthogonal to them. After the second pass of :func:`plan_corpus` face, motion and the residuals are
    orthogonal to everything, so the valence shares hold exactly on the corpus; the spoken parts and prosody keep
    their chance correlations, so the arousal shares hold up to those."""
    sel = [tp.latents["t"] >= 0 for tp in trials]
    for tp, m in zip(trials, sel):
        done: list[str] = []
        for p in PARTS:
            for q in done if p not in fixed else ():  # remove the projection on earlier parts (uncentred, within this trial)
                a, b = tp.latents[p][m], tp.latents[q][m]
                if b @ b > 1e-12:  # a subject who said no adjective has a zero word part
                    tp.latents[p] = tp.latents[p] - float(a @ b / (b @ b)) * tp.latents[q]
            done.append(p)
    for p in PARTS:
        pooled = np.concatenate([tp.latents[p][m] for tp, m in zip(trials, sel)])
        mu, sd = float(pooled.mean()), float(pooled.std())
        for tp in trials:
            tp.latents[p] = (tp.latents[p] - mu) / (sd if sd > 0 else 1.0)


def combine_targets(tp: TrialPlan) -> None:
    """valence = face + words + residual, arousal = prosody + motion + words_a + residual (module docstring)."""
    lat, sv, sa = tp.latents, SHARES["valence"], SHARES["arousal"]
    lat["valence"] = LATENT_MEAN["valence"] + LATENT_STD["valence"] * (
        math.sqrt(sv["face"]) * lat["face"] + math.sqrt(sv["words"]) * lat["words"]
        + math.sqrt(sv["residual"]) * lat["residual_v"]
    )
    lat["arousal"] = LATENT_MEAN["arousal"] + LATENT_STD["arousal"] * (
        math.sqrt(sa["prosody"]) * lat["prosody"] + math.sqrt(sa["motion"]) * lat["motion"]
        + math.sqrt(sa["words"]) * lat["words_a"] + math.sqrt(sa["residual"]) * lat["residual_a"]
    )


def at_time(tp: TrialPlan, key: str, t: float | np.ndarray) -> Any:
    lat = tp.latents
    return np.interp(t, lat["t"], lat[key])


def held_word_level(words: list[dict], t: np.ndarray, key: str = "valence_level",
                     speaker: str | None = None) -> np.ndarray:
    """The ``key`` level (valence or arousal) of the latest lexicon word heard (said to its end) by each time; 0
    before the first. ``speaker``: only that trial's words; None: either speaker's (the transcript of a shared
    audio track holds both). ``words`` are in chronological order."""
    out = np.zeros(len(t))
    for w in words:
        if w.get(key) is not None and speaker in (None, w["speaker"]):
            out[t >= w["end"]] = w[key]
    return out
