"""Offline demo corpus in the Aff-Wild2 (6th ABAW, VA track) layout: ``rjcma synth``.

Nothing here is Aff-Wild2 data. The generator writes a small corpus with the organisers' folder layout
(FACTS §1) so that the reader, the preprocessing, training and the book run on it unchanged:

```
<out>/6th ABAW Annotations/VA_Estimation_Challenge/Train_Set/<trial>.txt        header "valence,arousal"
<out>/6th ABAW Annotations/VA_Estimation_Challenge/Validation_Set/<trial>.txt   one row per frame, -5 = unannotated
<out>/names_of_videos_in_each_test_set/
      Valence_Arousal_Estimation_Challenge_test_set_release.txt                 test trial names, one per line
<out>/cropped_aligned/<trial>/00001.jpg ...                                     112x112 aligned faces, 1-based;
                                                                                no jpg where the face is turned away
                                                                                or occluded
<out>/videos/batch1/<video>.mp4                                                 H.264 + AAC 44.1 kHz mono,
                                                                                25 / 30 / 29.97 fps
<out>/subject_map.csv                                                           optional map trial,subject
<out>/SYNTH_TRUTH.json, <out>/SYNTH_TRUTH/<trial>.csv                           extra (not Aff-Wild2): generator
                                                                                parameters, latents, ceilings
```

Video ``1-…`` shows two subjects side by side: trials ``<video>_left`` and ``<video>_right`` have their own
annotation file and face folder and share the video's audio (they take turns speaking). The last video(s) form
the test set: video and faces, no annotations. Video names follow Aff-Wild2's ``<id>-<fps>-<W>x<H>`` style.

Signal design (paper §1: valence and arousal are expressed across modalities)
-----------------------------------------------------------------------------
Every trial (subject) has seven latent parts on the video's frame grid, each a smooth Gaussian process (an
Ornstein–Uhlenbeck process low-pass filtered once more; time constants 2.5–5 s) plus a per-trial offset (20 % of
its variance), except the word parts, which follow the adjectives said (below). The parts are made orthogonal
inside every trial and scaled to unit variance over the corpus (:func:`normalise_parts`), so the shares below
hold on the generated corpus itself, in every fold (for arousal up to the chance correlation of prosody and the
spoken arousal words, which the speech fixes together). The two
targets are sums of parts, each part visible in one channel only::

    valence latent V(t) = m_V + s_V * ( sqrt(0.45) F(t) + sqrt(0.35) W(t)                     + sqrt(0.20) R_V(t) )
    arousal latent A(t) = m_A + s_A * ( sqrt(0.40) P(t) + sqrt(0.25) M(t) + sqrt(0.15) W_A(t) + sqrt(0.20) R_A(t) )

- ``F`` face part of valence: mouth curvature (smile / frown) and brow angle of the rendered face (visual).
- ``W``, ``W_A`` word parts: what the subject says. The speaker picks English adjectives from a 5 x 3
  valence-arousal lexicon (``LEXICON``, "furious" … "blissful", like the valence/arousal norms of real words)
  whose cell is the nearest to a smooth *intended* pair (``words_intent``, ``words_a_intent`` in the truth files)
  at the time of the word. ``W`` (``W_A``) is then the valence (arousal) level of the last adjective this
  subject finished saying, held until the next one and followed with a 0.8 s one-pole lag (text; the audio
  carries the same words acoustically).
- ``P`` prosody part of arousal: espeak-ng speaking rate and pitch per utterance, loudness continuously
  (about ±5 dB per standard deviation), and shorter pauses when ``P`` is high (audio). The mouth opening follows
  the loudness envelope of the speech, so the video also carries a little of ``P``.
- ``M`` motion part of arousal: eye opening, brow height, blink rate, head-roll oscillation and jitter amplitude
  (visual).
- ``R_V``, ``R_A`` residuals: not shown anywhere, so no model can predict them.

Why the word parts are the spoken words (generator version 6): in version 5 the labels held the intended
parts, of which an adjective every few seconds, quantised and interrupted by pauses and the partner's turns,
told little: the best linear predictor from the transcript reached CCC 0.10 on the validation trials against a
designed 0.51, so fusion could add little to the face on valence, whatever the model. To keep the rendered speech
as it was planned, the second normalisation pass only z-scores the spoken parts and prosody and makes face,
motion and the residuals orthogonal to them (:func:`normalise_parts`).

Why the words carry arousal too (generator version 5): in version 4 they carried valence only, so for arousal the
text stream was pure nuisance, and a fused model trained on a dozen subjects learned per-trial offsets from it.
On the demo folds audio + visual fusion then beat the visual model on arousal while the three-modality RJCMA fell
below it. Real words have both valence and arousal, and the shares now make audio the main arousal channel and
the face the main valence channel, as on Aff-Wild2.

Annotation: the label of frame k is the latent at time ``t_k - lag`` (an annotator's reaction lag, 0.5–1.0 s
per trial) plus smooth annotation noise (std 0.04), clipped to [-1, 1] and written with three decimals. Runs of
``-5`` rows (unannotated) appear at the start of one trial and inside some others; frames with the face turned
away or occluded have no jpg (but keep their annotation, as in Aff-Wild2).

Designed ceilings (variance shares; CCC of the best predictor that sees the parts, 2 s / (1 + s + n) with the
noise share n): valence face 0.45 → 0.62, words 0.35 → 0.51, all 0.80 → 0.88; arousal prosody 0.40 → 0.57,
motion 0.25 → 0.40, words 0.15 → 0.26, all 0.80 → 0.88. So each target needs two or three modalities to approach
its ceiling, and each modality alone stays well below it. ``SYNTH_TRUTH.json`` also holds *measured* ceilings: the
CCC of the best linear predictor (least squares, one global delay) from the signals actually rendered (the
quantised words held until the next adjective, the per-utterance prosody including the partner's turns in the
two-subject video, the face and motion parts) against the written labels, per modality (visual = face + motion,
audio = prosody, text = words) and for all three: ``measured_ceiling_ccc`` fitted and scored on train +
validation, and ``measured_ceiling_ccc_validation`` fitted on train and scored on validation. The file holds the
figures of each generated corpus. Real models see these signals through encoders and ASR and reach less.

Completion: ``SYNTH_TRUTH.json`` is written last. A folder without it (an interrupted run) is cleared and
rewritten by the next ``rjcma synth``; a finished corpus with the same arguments is left as it is.

Determinism: the same seed gives byte-identical annotation files, jpgs, truth files and mp4 files on the same
FFmpeg/x264/espeak-ng build (x264 runs single-threaded with fixed settings). Frame widths are multiples of 128:
FFmpeg pads frame rows to 64 bytes, and with a chroma width that is not a multiple of 64 (e.g. 320 px → 160)
x264's output depended on the uninitialised padding, so the same frames gave different mp4 bytes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import subprocess
import time
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.config import usable_cpus
from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.io import atomic_path, atomic_write_json, atomic_write_text

# ---- layout ----------------------------------------------------------------------------------------
ANNOTATIONS_DIR = "6th ABAW Annotations"
VA_DIR = "VA_Estimation_Challenge"
PARTITION_DIRS = {"train": "Train_Set", "validation": "Validation_Set"}
TEST_LIST_DIR = "names_of_videos_in_each_test_set"  # as in the ABAW releases; rjcma.data.abaw finds it anywhere
TEST_LIST_NAME = "Valence_Arousal_Estimation_Challenge_test_set_release.txt"
FACES_DIR = "cropped_aligned"
VIDEOS_DIR = "videos/batch1"
SUBJECT_MAP_NAME = "subject_map.csv"
TRUTH_JSON = "SYNTH_TRUTH.json"
TRUTH_DIR = "SYNTH_TRUTH"
CROP = 112  # organisers' aligned crops are 112x112
FPS_CYCLE = (Fraction(30), Fraction(25), Fraction(30000, 1001))
AUDIO_RATE = 44100  # AAC sample rate; espeak-ng speaks at 22050 Hz, upsampled x2
ESPEAK_RATE = 22050
MIN_VIDEOS = 4
GENERATOR_VERSION = 6  # bump when the output for a given seed changes

# ---- signal design ---------------------------------------------------------------------------------
SHARES = {
    "valence": {"face": 0.45, "words": 0.35, "residual": 0.20},
    "arousal": {"prosody": 0.40, "motion": 0.25, "words": 0.15, "residual": 0.20},
}
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


# ---- small signal helpers -------------------------------------------------------------------------
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


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Concordance correlation coefficient with population moments (1/N)."""
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    return float(2 * cov / (vx + vy + (mx - my) ** 2))


def _level_of(w_v: float, w_a: float) -> tuple[float, float]:
    """The lexicon cell nearest to the word parts (valence W, arousal W_A): nearest level on each axis."""
    v_levels = np.array(sorted({v for v, _ in LEXICON}))
    a_levels = np.array(sorted({a for _, a in LEXICON}))
    return float(v_levels[np.argmin(np.abs(v_levels - w_v))]), float(a_levels[np.argmin(np.abs(a_levels - w_a))])


# ---- planning --------------------------------------------------------------------------------------
def _identity(rng: np.random.Generator, female: bool) -> Identity:
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


def plan_corpus(videos: int, seconds: float, seed: int, exe: str | None = None) -> list[VideoPlan]:
    """Partition, names, frame rates, lengths, identities, latents and speech of every video (no rendering).

    Order: latents, normalised over the corpus; the speech of every video (adjectives picked by the intended word
    parts, prosody by P; espeak-ng gives the durations, about 2 s for the demo corpus); the word parts replaced by
    what each subject actually said (:func:`spoken_word_parts`); normalised again; the targets combined.
    ``exe``: the espeak-ng executable (found on PATH when None).
    """
    if videos < MIN_VIDEOS:
        raise RjcmaError(
            f"--videos must be >= {MIN_VIDEOS} (train, validation, test and the left/right pair); "
            f"got {videos}"
        )
    if not seconds >= 2.0:
        raise RjcmaError(f"--seconds must be >= 2, got {seconds}")
    root = np.random.SeedSequence([seed, 20260])
    rng = np.random.default_rng(root.spawn(1)[0])
    children = root.spawn(videos + 1)[1:]
    n_test = max(1, round(0.1 * videos))
    n_val = max(1, round(0.25 * (videos - n_test)))
    n_train = videos - n_test - n_val
    # one subject appears in two training videos (exercises subject-aware folds) when there are enough
    repeat = (2, n_train - 1) if n_train >= 5 else None
    plans: list[VideoPlan] = []
    identities: dict[int, Identity] = {}
    for i in range(videos):
        part = "train" if i < n_train else ("validation" if i < n_train + n_val else "test")
        fps = FPS_CYCLE[i % len(FPS_CYCLE)]
        dur = seconds * float(rng.uniform(0.85, 1.15))
        n = max(int(round(dur * float(fps))), 2 * int(float(fps)))
        pair = i == 0
        w, h = (384, 216) if pair else (384, 288)  # widths: multiples of 128 (see the module docstring)
        name = f"{i + 1}-{round(float(fps))}-{w}x{h}"
        trials = []
        sides = ("left", "right") if pair else ("",)
        for j, side in enumerate(sides):
            female = bool(rng.integers(2)) if not pair else (j == 1)
            ident = _identity(rng, female)
            subj = f"S{i + 1:03d}{side[:1].upper()}"
            if repeat and i == repeat[1]:
                ident, subj = identities[repeat[0]], f"S{repeat[0] + 1:03d}"
            identities[i] = ident
            tname = f"{name}_{side}" if side else name
            trials.append(TrialPlan(tname, name, side, part, subj, ident))
        plans.append(VideoPlan(i, name, fps, n, w, h, part, trials, children[i]))
    for vp in plans:  # latents first (cheap), normalised over the corpus, then each video is rendered
        vp.rngs = [np.random.default_rng(s) for s in vp.seed_seq.spawn(10)]
        for tp in vp.trials:
            make_latents(tp, vp.rngs[0], vp.n_frames, float(vp.fps))
    all_trials = [tp for vp in plans for tp in vp.trials]
    normalise_parts(all_trials)
    exe = exe or espeak_available()
    for vp in plans:
        vp.speech = plan_speech(vp, vp.rngs[1], exe)
        for tp in vp.trials:
            spoken_word_parts(tp, vp.speech["words"])
    # the spoken word parts replace the intended ones. What the speech fixed (the spoken parts and prosody) is only
    # z-scored; face, motion and the residuals, not rendered yet, are made orthogonal to it again
    normalise_parts(all_trials, fixed=SPOKEN)
    for tp in all_trials:
        combine_targets(tp)
    return plans


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

    Why (generator version 6): with the intended parts in the labels, the words told only part of W — an
    adjective every few seconds, quantised to five levels, and in a two-subject video the partner's turns in
    between — and the best linear predictor from the transcript reached CCC 0.10 on the validation trials
    against a designed 0.51. The text channel then could not add to the face, by design rather than by model.
    An annotator, too, reacts to what is said, not to what the speaker meant to say.
    """
    lat = tp.latents
    t = lat["t"]
    a = math.exp(-float(t[1] - t[0]) / WORD_TAU)
    for part, key in (("words", "valence_level"), ("words_a", "arousal_level")):
        lat[f"{part}_intent"] = lat[part]
        # the grid starts 1.5 s before frame 0, before any word, so the low-pass starts from 0
        lat[part] = _ema(_held_word_level(words, t, key, speaker=tp.name), a)


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


# ---- speech ----------------------------------------------------------------------------------------
def espeak_available() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingAssetError(
            "espeak-ng: not found on PATH; install it (`sudo apt-get install espeak-ng`, or "
            "`conda install -c conda-forge espeak-ng`) or run `make setup`"
        )
    return exe


def speak(text: str, voice: str, speed: int, pitch: int, exe: str = "espeak-ng") -> np.ndarray:
    """espeak-ng → float32 mono at 22050 Hz."""
    try:
        out = subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", "100", "--stdout", text],
            check=True, capture_output=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise MissingAssetError(f"espeak-ng: failed to speak {text!r} ({e}); check the espeak-ng install") from e
    with wave.open(io.BytesIO(out)) as w:
        if w.getframerate() != ESPEAK_RATE or w.getsampwidth() != 2:
            raise RjcmaError(f"espeak-ng: unexpected output format ({w.getframerate()} Hz); reinstall espeak-ng")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def _voiced_span(x: np.ndarray, rate: int) -> tuple[int, int]:
    env = np.abs(x)
    idx = np.flatnonzero(env > 0.02)
    if idx.size == 0:
        return 0, len(x)
    return int(idx[0]), int(idx[-1]) + 1


def _syllables(word: str) -> int:
    v = "aeiouy"
    n, prev = 0, False
    for ch in word.lower():
        isv = ch in v
        n += isv and not prev
        prev = isv
    return max(1, n - (word.endswith("e") and n > 1))


def plan_speech(vp: VideoPlan, rng: np.random.Generator, exe: str) -> dict[str, Any]:
    """Utterances placed on the timeline: words follow W and W_A, rate/pitch/loudness follow P (arousal)."""
    T = vp.n_frames / float(vp.fps)
    track = np.zeros(int(round(T * ESPEAK_RATE)) + 1, np.float32)
    owner = np.full(track.size, -1, np.int8)  # which trial (index in vp.trials) speaks at each sample
    utterances, words = [], []
    t = float(rng.uniform(0.15, 0.6))
    spk = 0
    while t < T - 0.6:
        if len(vp.trials) > 1 and rng.random() < 0.5:
            spk = 1 - spk
        tp = vp.trials[spk]
        p = float(at_time(tp, "prosody", t))
        speed = int(np.clip(round(165 + 40 * p), 100, 260))
        pitch = int(np.clip(round(tp.identity.pitch0 + 15 * p), 0, 99))
        n_clauses = int(rng.integers(2, 4))
        while True:  # near the end, shorten the utterance until it fits (no long silent tail)
            sec_per_word = 60.0 / speed
            texts, picked, tw = [], [], t + 0.1
            for _ in range(n_clauses):
                tmpl = CLAUSES[rng.integers(len(CLAUSES))]
                n_fill = len(tmpl.split()) - 1
                tw += n_fill * sec_per_word
                level = _level_of(float(at_time(tp, "words", tw)), float(at_time(tp, "words_a", tw)))
                word = LEXICON[level][rng.integers(len(LEXICON[level]))]
                texts.append(tmpl.format(word))
                picked.append((word, level))
                tw += 1.4 * sec_per_word
            text = ", ".join(texts) + "."
            wav = speak(text, tp.identity.voice, speed, pitch, exe)
            a, b = _voiced_span(wav, ESPEAK_RATE)
            wav = wav[a:b]
            d = len(wav) / ESPEAK_RATE
            if t + d <= T - 0.1 or n_clauses == 1:
                break
            n_clauses -= 1
        if t + d > T - 0.1:
            break
        # loudness follows P continuously (about +-5 dB per std) over the utterance
        ts = t + np.arange(len(wav)) / ESPEAK_RATE
        gain = 0.55 * 10 ** (5.0 * at_time(tp, "prosody", ts) / 20.0)
        i0 = int(round(t * ESPEAK_RATE))
        seg = track[i0 : i0 + len(wav)]
        seg += (wav * gain)[: len(seg)]
        owner[i0 : i0 + len(seg)] = spk
        # word times: voiced span split in proportion to syllables (+ a short gap per word)
        all_words = text.replace(",", "").replace(".", "").split()
        syl = np.array([_syllables(w) + 0.6 for w in all_words], float)
        edges = t + d * np.concatenate([[0], np.cumsum(syl) / syl.sum()])
        levels = dict(picked)
        for k, w in enumerate(all_words):
            lv = levels.get(w)
            words.append(
                {"start": round(float(edges[k]), 3), "end": round(float(edges[k + 1]), 3), "word": w,
                 "speaker": tp.name, "valence_level": None if lv is None else lv[0],
                 "arousal_level": None if lv is None else lv[1]}
            )
        utterances.append(
            {"start": round(t, 3), "end": round(t + d, 3), "speaker": tp.name, "text": text, "voice": tp.identity.voice,
             "speed_wpm": speed, "pitch": pitch, "prosody": round(p, 4)}
        )
        pause = float(np.clip(0.4 - 0.15 * p + rng.uniform(-0.1, 0.2), 0.15, 0.9))
        t += d + pause
    # room tone keeps the track from being digitally silent
    track += (rng.standard_normal(track.size) * 0.002).astype(np.float32)
    return {"track": track, "owner": owner, "utterances": utterances, "words": words}


def upsample2(x: np.ndarray) -> np.ndarray:
    """Exact band-limited x2 upsampling (22050 → 44100 Hz) by zero-padding the spectrum."""
    n = len(x)
    X = np.fft.rfft(x.astype(np.float64))
    Y = np.zeros(n + 1, np.complex128)
    Y[: len(X)] = X
    y = np.fft.irfft(Y, 2 * n) * 2.0
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# ---- rendering ------------------------------------------------------------------------------------
def _background(vp: VideoPlan, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = vp.height, vp.width
    c0 = rng.integers(60, 200, 3)
    c1 = rng.integers(60, 200, 3)
    g = np.linspace(0, 1, h)[:, None, None]
    bg = (c0[None, None, :] * (1 - g) + c1[None, None, :] * g) * np.ones((1, w, 1))
    bg = bg.astype(np.uint8)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        col = tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(bg, (x0, y0), (x0 + int(rng.integers(20, 90)), y0 + int(rng.integers(20, 90))), col, -1)
    return cv2.GaussianBlur(bg, (5, 5), 0)


SH = 4  # cv2 fixed-point shift (1/16 px)


def _pt(cx: float, cy: float, r: float, ca: float, sa: float, u: float, v: float) -> tuple[int, int]:
    x = cx + r * (u * ca - v * sa)
    y = cy + r * (u * sa + v * ca)
    return int(round(x * 16)), int(round(y * 16))


def draw_face(img: np.ndarray, st: dict[str, float], ident: Identity, mode: str) -> None:
    """Draw one face. st: cx, cy, r (half-width in px), roll (deg), smile, brow, eye (opening 0..1), mouth (0..1)."""
    import cv2

    cx, cy, r, roll = st["cx"], st["cy"], st["r"], st["roll"]
    ca, sa = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    P = lambda u, v: _pt(cx, cy, r, ca, sa, u, v)  # noqa: E731
    R = lambda a: int(round(a * r * 16))  # noqa: E731
    AA = cv2.LINE_AA
    skin, hair = ident.skin, ident.hair
    dark = tuple(int(c * 0.55) for c in skin)
    # ears, hair, face
    for s in (-1, 1):
        cv2.ellipse(img, P(0.95 * s, 0.05), (R(0.16), R(0.26)), roll, 0, 360, dark, -1, AA, SH)
    if mode == "away":  # turned away: the back of the head
        cv2.ellipse(img, P(0, -0.1), (R(1.02), R(1.25)), roll, 0, 360, hair, -1, AA, SH)
        return
    cv2.ellipse(img, P(0, -0.35), (R(1.04), R(0.95)), roll, 180, 360, hair, -1, AA, SH)
    cv2.ellipse(img, P(0, 0.08), (R(0.93), R(1.17)), roll, 0, 360, skin, -1, AA, SH)
    cv2.ellipse(img, P(0, -0.55), (R(0.85), R(0.42)), roll, 195, 345, hair, -1, AA, SH)
    # eyes (opening: arousal motion part; blinks close them)
    eg = ident.eye_gap
    for s in (-1, 1):
        h = max(0.012, 0.15 * st["eye"])
        cv2.ellipse(img, P(s * eg, -0.12), (R(0.16), R(h)), roll, 0, 360, (245, 245, 245), -1, AA, SH)
        if st["eye"] > 0.25:
            cv2.circle(img, P(s * eg + 0.02 * st.get("gaze", 0.0), -0.12), R(min(0.075, h)), (40, 30, 20), -1, AA, SH)
        cv2.ellipse(img, P(s * eg, -0.12), (R(0.16), R(h)), roll, 0, 360, dark, max(1, int(r * 0.03)), AA, SH)
        # brows: inner end lowered for negative valence (frown), raised/arched for positive
        b = st["brow"]
        up = 0.10 * (st["raise"] - 0.5)  # brows higher with arousal (wide-eyed), tilt with valence
        inner = P(s * (eg - 0.2), -0.33 + 0.10 * b - up)
        mid = P(s * eg, -0.40 - 0.04 * b - up)
        outer = P(s * (eg + 0.22), -0.33 - 0.02 * b - up)
        cv2.polylines(img, [np.array([inner, mid, outer], np.int32)], False, hair, max(2, int(r * 0.07)), AA, SH)
    # nose
    cv2.polylines(img, [np.array([P(0, -0.02), P(-0.06, 0.26), P(0.05, 0.29)], np.int32)], False, dark,
                  max(1, int(r * 0.03)), AA, SH)
    # mouth: corners up for positive valence (smile), down for negative; opening follows the speech envelope
    mw, sm, op = ident.mouth_w * (1 + 0.12 * st["smile"]), st["smile"], st["mouth"]
    xs = np.linspace(-1, 1, 13)
    upper = [P(mw * x, 0.58 - 0.24 * sm * (x * x - 0.35) - 0.02 * op) for x in xs]
    lower = [P(mw * x, 0.58 - 0.24 * sm * (x * x - 0.35) + 0.26 * op * (1 - x * x) + 0.01) for x in xs]
    poly = np.array(upper + lower[::-1], np.int32)
    cv2.fillPoly(img, [poly], (40, 30, 120), AA, SH)
    cv2.polylines(img, [poly], True, (70, 60, 160), max(2, int(r * 0.05)), AA, SH)
    if mode == "occluded":  # a hand/object in front of the face
        cv2.ellipse(img, P(0.1, 0.3), (R(0.9), R(0.75)), roll + 20, 0, 360, (90, 110, 150), -1, AA, SH)


def _crop_affine(cx: float, cy: float, r: float, roll: float) -> np.ndarray:
    """Frame → aligned 112x112 crop (what a face aligner would give): centre, scale and roll removed."""
    side = 2.7 * r
    s = CROP / side
    th = math.radians(roll)
    c, si = math.cos(th), math.sin(th)
    # crop = s * R(-roll) (p - centre) + CROP/2 ; centre slightly above the face centre so the chin fits
    ox, oy = cx + 0.12 * r * (-si), cy + 0.12 * r * c
    A = np.array([[s * c, s * si, 0.0], [-s * si, s * c, 0.0]])
    A[:, 2] = np.array([CROP / 2, CROP / 2]) - A[:, :2] @ np.array([ox, oy])
    return A


PRETRAIN_PARAMS = ("smile", "brow", "eye", "mouth", "raise", "roll_residual", "shift_x", "shift_y")


def pretrain_faces(n: int, seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A face-expression data set for the visual stand-in's pretraining: (uint8 (n, size, size, 3), float32 (n, 8)).

    Each face is drawn by :func:`draw_face`, the demo corpus's renderer, with a new random identity
    (:func:`_identity`), background, size and pose, and with every expression parameter drawn independently and
    uniformly, so none of the corpus's latent processes, labels or identities enters it. It then goes the way of a
    corpus face: aligned 112 x 112 crop with a small random misalignment, JPEG (quality 92), PIL resize to
    ``size``. The targets (columns in :data:`PRETRAIN_PARAMS`) are the expression (smile, brow tilt, eye
    opening, mouth opening, brow raise) and the alignment residue (roll, shift) that a real face encoder also
    reports. This is the demo's analogue of pretraining IR-50 on a facial-expression corpus.
    """
    import cv2
    from PIL import Image

    rng = np.random.default_rng(seed)
    S = 176
    imgs = np.zeros((n, size, size, 3), dtype=np.uint8)
    P = np.zeros((n, len(PRETRAIN_PARAMS)), dtype=np.float32)
    for i in range(n):
        ident = _identity(rng, bool(rng.integers(2)))
        img = np.empty((S, S, 3), np.uint8)
        img[:] = rng.integers(40, 220, 3)
        for _ in range(3):
            x0, y0 = (int(v) for v in rng.integers(0, S, 2))
            w, h = (int(v) for v in rng.integers(20, 90, 2))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), tuple(int(c) for c in rng.integers(40, 220, 3)), -1)
        r = float(rng.uniform(30, 50))
        st = {"cx": S / 2 + rng.normal(0, 3), "cy": S / 2 + rng.normal(0, 3), "r": r, "roll": rng.uniform(-10, 10),
              "smile": rng.uniform(-1.2, 1.2), "brow": rng.uniform(-1.2, 1.2), "eye": rng.uniform(0, 1) ** 0.7,
              "mouth": rng.uniform(0, 1) * float(rng.random() < 0.7), "raise": rng.uniform(0, 1),
              "gaze": rng.normal()}
        draw_face(img, st, ident, "face")
        dx, dy = rng.normal(0, 0.06 * r, 2)
        crop_roll = st["roll"] * rng.uniform(0.5, 1.0)
        A = _crop_affine(st["cx"] + dx, st["cy"] + dy, r, crop_roll)
        crop = cv2.warpAffine(img, A, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:  # pragma: no cover - OpenCV without JPEG support
            raise RjcmaError("OpenCV could not encode a JPEG; reinstall opencv-python-headless")
        imgs[i] = np.asarray(Image.open(io.BytesIO(buf.tobytes())).convert("RGB").resize((size, size)))
        P[i] = (st["smile"], st["brow"], st["eye"], st["mouth"], st["raise"], (st["roll"] - crop_roll) / 5,
                dx / r * 10, dy / r * 10)
    return imgs, P


def face_events(rng: np.random.Generator, n: int, fps: float) -> np.ndarray:
    """Per frame: 0 visible, 1 turned away, 2 occluded (1–2 short events per trial)."""
    ev = np.zeros(n, np.int8)
    for _ in range(int(rng.integers(1, 3))):
        L = int(rng.uniform(0.25, 0.7) * fps)
        s = int(rng.integers(int(0.1 * n), max(int(0.1 * n) + 1, n - L - 1)))
        ev[s : s + L] = int(rng.integers(1, 3))
    return ev


def render_states(tp: TrialPlan, vp: VideoPlan, slot: tuple[float, float, float], rng: np.random.Generator,
                  mouth_env: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame face parameters of one trial from its latents (valence face part, arousal motion part)."""
    fps = float(vp.fps)
    n = vp.n_frames
    t = np.arange(n) / fps
    F = at_time(tp, "face", t)
    M = at_time(tp, "motion", t)
    sig = 1 / (1 + np.exp(-1.3 * M))  # 0..1 activation of the motion part
    # blinks: Poisson-ish, rate grows with M
    eye = 0.25 + 0.75 * sig
    k = 0
    while k < n:
        rate = 0.15 + 0.7 * sig[k]
        if rng.random() < rate / fps:
            eye[k : k + 4] *= np.array([0.35, 0.05, 0.05, 0.4])[: len(eye[k : k + 4])]
            k += 6
        k += 1
    phase = np.cumsum(2 * np.pi * (0.4 + 0.5 * sig) / fps) + rng.uniform(0, 2 * np.pi)
    roll = (2.0 + 8.0 * sig) * np.sin(phase)
    jit = 0.010 + 0.045 * sig
    sway = np.stack([smooth_process(rng, n, 1 / fps, 0.6) for _ in range(2)], 1)
    cx0, cy0, r0 = slot
    r = r0 * tp.identity.scale
    cx = cx0 + r0 * tp.identity.dx + r * (0.25 * sway[:, 0] * jit / 0.03 + rng.standard_normal(n) * jit)
    cy = cy0 + r0 * tp.identity.dy + r * (0.15 * sway[:, 1] * jit / 0.03 + rng.standard_normal(n) * jit * 0.7)
    return {
        "cx": cx, "cy": cy, "r": np.full(n, r), "roll": roll, "smile": np.clip(F / 1.6, -1.2, 1.2),
        "brow": np.clip(F / 1.6, -1.2, 1.2), "eye": np.clip(eye, 0, 1), "mouth": mouth_env,
        "raise": sig,
        "gaze": smooth_process(rng, n, 1 / fps, 1.0),
    }


def _ema(x: np.ndarray, a: float) -> np.ndarray:
    y = np.empty_like(x)
    y[0] = x[0]
    for k in range(1, len(x)):
        y[k] = a * y[k - 1] + (1 - a) * x[k]
    return y


# ---- one video ------------------------------------------------------------------------------------
def synth_video(vp: VideoPlan, out: Path, exe: str) -> dict[str, Any]:
    """Render one video: latents → speech → frames (+ aligned crops) → mp4; write labels and crops."""
    import av
    import cv2

    rngs = vp.rngs
    fps = float(vp.fps)
    n = vp.n_frames
    speech = vp.speech  # planned with the corpus (plan_corpus): the word parts of the labels depend on it
    track22 = speech["track"]
    # mouth opening per trial: loudness envelope of its own speech around each frame time
    frame_t = np.arange(n) / fps
    half = int(0.03 * ESPEAK_RATE)
    idx = np.clip((frame_t * ESPEAK_RATE).astype(int), 0, len(track22) - 1)
    sq = np.concatenate([[0.0], np.cumsum(track22.astype(np.float64) ** 2)])
    lo, hi = np.clip(idx - half, 0, len(track22)), np.clip(idx + half, 0, len(track22))
    rms = np.sqrt((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1))
    mouths = []
    for j, tp in enumerate(vp.trials):
        mine = speech["owner"][idx] == j
        mouths.append(np.where(mine, np.clip(rms / 0.18, 0, 1), 0.0))
    # layout of the face(s) in the frame
    if len(vp.trials) == 2:
        slots = [(vp.width * 0.27, vp.height * 0.52, 38.0), (vp.width * 0.73, vp.height * 0.52, 38.0)]
    else:
        slots = [(vp.width * 0.5, vp.height * 0.53, 0.19 * vp.height)]
    states = [render_states(tp, vp, slots[j], rngs[2 + j], mouths[j]) for j, tp in enumerate(vp.trials)]
    events = [face_events(rngs[4 + j], n, fps) for j in range(len(vp.trials))]
    bg = _background(vp, rngs[6])

    video_path = out / VIDEOS_DIR / f"{vp.name}.mp4"
    face_dirs = [out / FACES_DIR / tp.name for tp in vp.trials]
    for d in face_dirs:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    audio44 = upsample2(track22)
    n_audio = int(round(n / fps * AUDIO_RATE))
    audio44 = np.pad(audio44, (0, max(0, n_audio - len(audio44))))[:n_audio]
    with atomic_path(video_path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as c:
            vs = c.add_stream("libx264", rate=vp.fps)
            vs.width, vs.height, vs.pix_fmt = vp.width, vp.height, "yuv420p"
            vs.options = {"preset": "veryfast", "crf": "21", "threads": "1"}
            vs.codec_context.thread_count = 1
            aus = c.add_stream("aac", rate=AUDIO_RATE)
            aus.layout = "mono"
            aus.options = {"b": "96k"}
            fsz = 1024
            apos = 0
            crops_smooth = [
                (_ema(s["cx"], 0.6), _ema(s["cy"], 0.6), _ema(s["roll"], 0.85)) for s in states
            ]
            for k in range(n):
                img = bg.copy()
                for j, tp in enumerate(vp.trials):
                    st = {key: float(v[k]) for key, v in states[j].items()}
                    mode = {0: "face", 1: "away", 2: "occluded"}[int(events[j][k])]
                    draw_face(img, st, tp.identity, mode)
                for j, tp in enumerate(vp.trials):
                    if events[j][k]:
                        continue  # no face found → no jpg (as in Aff-Wild2)
                    sx, sy, sr = crops_smooth[j]
                    A = _crop_affine(sx[k], sy[k], states[j]["r"][k], 0.7 * sr[k])
                    crop = cv2.warpAffine(img, A, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
                    if not ok:  # pragma: no cover - OpenCV without JPEG support
                        raise RjcmaError("OpenCV could not encode a JPEG; reinstall opencv-python-headless")
                    (face_dirs[j] / f"{k + 1:05d}.jpg").write_bytes(buf.tobytes())
                frame = av.VideoFrame.from_ndarray(img, format="bgr24")
                frame.pts = k
                frame.time_base = 1 / vp.fps
                for pkt in vs.encode(frame):
                    c.mux(pkt)
                # audio up to the end of this frame
                target = int(round((k + 1) / fps * AUDIO_RATE))
                while apos + fsz <= target or (k == n - 1 and apos < n_audio):
                    chunk = audio44[apos : apos + fsz]
                    if len(chunk) == 0:
                        break
                    af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                    af.sample_rate = AUDIO_RATE
                    af.pts = apos
                    af.time_base = Fraction(1, AUDIO_RATE)
                    for pkt in aus.encode(af):
                        c.mux(pkt)
                    apos += len(chunk)
            for pkt in vs.encode(None):
                c.mux(pkt)
            for pkt in aus.encode(None):
                c.mux(pkt)

    # labels: latent delayed by the annotator's lag + smooth noise, clipped, -5 runs
    result = {"video": vp.name, "fps": float(vp.fps), "fps_fraction": str(vp.fps), "n_frames": n,
              "width": vp.width, "height": vp.height, "partition": vp.partition,
              "audio_rate": AUDIO_RATE, "utterances": speech["utterances"], "words": speech["words"],
              "trials": []}
    text_obs = _held_word_level(speech["words"], frame_t)
    text_obs_a = _held_word_level(speech["words"], frame_t, "arousal_level")
    pros_obs = _heard_prosody(speech["utterances"], vp, frame_t)
    for j, tp in enumerate(vp.trials):
        lab_rng = rngs[7 + j]
        tl = frame_t - tp.lag
        V = at_time(tp, "valence", tl)
        A = at_time(tp, "arousal", tl)
        noise = NOISE_STD * np.stack([smooth_process(lab_rng, n, 1 / fps, NOISE_TAU) for _ in range(2)], 1)
        lab = np.clip(np.stack([V, A], 1) + noise, -1, 1)
        lab = np.round(lab, 3)
        invalid = np.zeros(n, bool)
        if vp.partition != "test":
            if vp.index == 1:  # a run of -5 at the very start of one trial
                invalid[: int(rng_int(lab_rng, 0.4, 0.8) * fps)] = True
            if lab_rng.random() < 0.5 or vp.index in (1, 2):
                L = int(rng_int(lab_rng, 0.3, 0.9) * fps)
                s = int(lab_rng.integers(int(0.3 * n), int(0.7 * n)))
                invalid[s : s + L] = True
        face_v = at_time(tp, "face", frame_t)
        motion = at_time(tp, "motion", frame_t)
        truth_rows = {
            "frame": np.arange(n), "time": frame_t, "valence": lab[:, 0], "arousal": lab[:, 1], "valid": ~invalid,
            "valence_latent": at_time(tp, "valence", frame_t), "arousal_latent": at_time(tp, "arousal", frame_t),
            "face": face_v, "words": at_time(tp, "words", frame_t), "residual_v": at_time(tp, "residual_v", frame_t),
            "prosody": at_time(tp, "prosody", frame_t), "motion": motion,
            "words_a": at_time(tp, "words_a", frame_t), "residual_a": at_time(tp, "residual_a", frame_t),
            "words_intent": at_time(tp, "words_intent", frame_t),
            "words_a_intent": at_time(tp, "words_a_intent", frame_t),
            "heard_word_level": text_obs, "heard_word_arousal": text_obs_a, "heard_prosody": pros_obs,
            "speaking": (speech["owner"][idx] == j).astype(int), "mouth": mouths[j],
            "face_event": events[j],
        }
        if vp.partition != "test":
            lines = ["valence,arousal"]
            for k in range(n):
                lines.append("-5,-5" if invalid[k] else f"{lab[k, 0]:.3f},{lab[k, 1]:.3f}")
            path = out / ANNOTATIONS_DIR / VA_DIR / PARTITION_DIRS[vp.partition] / f"{tp.name}.txt"
            atomic_write_text(path, "\n".join(lines) + "\n")
        _write_truth_csv(out / TRUTH_DIR / f"{tp.name}.csv", truth_rows)
        result["trials"].append({
            "name": tp.name, "side": tp.side, "subject": tp.subject, "partition": tp.partition,
            "annotator_lag_s": round(tp.lag, 4), "voice": tp.identity.voice,
            "missing_jpgs": int((events[j] > 0).sum()), "invalid_rows": int(invalid.sum()),
            "invalid_at_start": int(np.argmin(invalid)) if invalid[0] else 0,
            "latent_mean": {"valence": round(float(V.mean()), 4), "arousal": round(float(A.mean()), 4)},
            "latent_std": {"valence": round(float(V.std()), 4), "arousal": round(float(A.std()), 4)},
            "words_spoken": sum(1 for w in speech["words"] if w["speaker"] == tp.name),
        })
    return result


def rng_int(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _held_word_level(words: list[dict], t: np.ndarray, key: str = "valence_level",
                     speaker: str | None = None) -> np.ndarray:
    """The ``key`` level (valence or arousal) of the latest lexicon word heard (said to its end) by each time; 0
    before the first. ``speaker``: only that trial's words; None: either speaker's (the transcript of a shared
    audio track holds both). ``words`` are in chronological order."""
    out = np.zeros(len(t))
    for w in words:
        if w.get(key) is not None and speaker in (None, w["speaker"]):
            out[t >= w["end"]] = w[key]
    return out


def _heard_prosody(utts: list[dict], vp: VideoPlan, t: np.ndarray) -> np.ndarray:
    """What the voice tells about P at each frame: the speaker's P while someone speaks (loudness follows it
    continuously; rate and pitch per utterance), the last heard value in pauses, 0 before the first utterance."""
    out = np.zeros(len(t))
    by_name = {tp.name: tp for tp in vp.trials}
    for u in utts:
        during = (t >= u["start"]) & (t < u["end"])
        out[during] = 0.5 * u["prosody"] + 0.5 * at_time(by_name[u["speaker"]], "prosody", t[during])
        after = t >= u["end"]
        if during.any():
            out[after] = out[np.flatnonzero(during)[-1]]
    return out


def _write_truth_csv(path: Path, cols: dict[str, np.ndarray]) -> None:
    keys = list(cols)
    n = len(cols["frame"])
    lines = [",".join(keys)]
    for k in range(n):
        row = []
        for key in keys:
            v = cols[key][k]
            row.append(str(int(v)) if isinstance(v, (np.integer, np.bool_, bool, int)) else f"{float(v):.4f}")
        lines.append(",".join(row))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_truth_trial(root: str | Path, trial: str) -> dict[str, np.ndarray]:
    """The per-frame truth table of one trial (``SYNTH_TRUTH/<trial>.csv``) as arrays (for the book's figures)."""
    import csv

    path = Path(root) / TRUTH_DIR / f"{trial}.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; this is written only by `rjcma synth` (not part of Aff-Wild2)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def read_truth(root: str | Path) -> dict[str, Any]:
    """``SYNTH_TRUTH.json`` of a demo corpus (design, per-trial facts, ceilings)."""
    path = Path(root) / TRUTH_JSON
    try:
        return json.loads(path.read_text())
    except OSError:
        raise RjcmaError(f"{path}: missing; this is written only by `rjcma synth` (not part of Aff-Wild2)") from None


# ---- ceilings ---------------------------------------------------------------------------------------
def designed_ceilings() -> dict[str, dict[str, float]]:
    """CCC of the best predictor that sees given parts exactly: 2 s / (1 + s + n), s = variance share."""
    out: dict[str, dict[str, float]] = {}
    for target, shares in SHARES.items():
        nshare = (NOISE_STD / LATENT_STD[target]) ** 2
        parts = [k for k in shares if k != "residual"]
        d = {p: shares[p] for p in parts}
        d["all"] = sum(shares[p] for p in parts)
        out[target] = {k: round(2 * s / (1 + s + nshare), 3) for k, s in d.items()}
    return out


def measured_ceilings(root: Path, trials: list[dict], evaluate_on: str = "train+validation") -> dict[str, Any]:
    """CCC of the least-squares linear predictor from the rendered signals (one global delay, chosen on the fit).

    ``evaluate_on="train+validation"``: fitted and scored on all annotated frames (an in-sample ceiling with 2–3
    coefficients); ``"validation"``: fitted on the training trials, scored on the validation trials (what a model
    trained on the official split could reach at best with these signals).
    """
    import csv

    by_part: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for tr in trials:
        if tr["partition"] == "test":
            continue
        with open(root / TRUTH_DIR / f"{tr['name']}.csv") as f:
            rows = list(csv.DictReader(f))
        cols: dict[str, Any] = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
        cols["_lag"], cols["_fps"] = tr["annotator_lag_s"], tr["fps"]
        by_part[tr["partition"]].append(cols)
    fit = by_part["train"] + (by_part["validation"] if evaluate_on == "train+validation" else [])
    score = by_part["validation"] if evaluate_on == "validation" else fit
    sets = {
        "valence": {"visual": ["face", "motion"], "audio": ["heard_prosody"], "text": ["heard_word_level"]},
        "arousal": {"visual": ["motion", "face"], "audio": ["heard_prosody"], "text": ["heard_word_arousal"]},
    }
    out: dict[str, Any] = {}
    for target, mods in sets.items():
        feats_all = sorted({f for fs in mods.values() for f in fs})
        # one global delay (a causal model can learn one fixed delay), chosen on the fitting trials
        lag = max((0.5, 0.75, 1.0), key=lambda d: _fit_ccc(fit, fit, feats_all, target, d))
        res: dict[str, float] = {m: round(_fit_ccc(fit, score, fs, target, lag), 3) for m, fs in mods.items()}
        res["all"] = round(_fit_ccc(fit, score, feats_all, target, lag), 3)
        res["oracle_latent"] = round(_oracle(score, target), 3)
        res["lag_used_s"] = lag
        out[target] = res
    return out


def _stack(trs: list[dict], feats: list[str], target: str, lag: float):
    X, y = [], []
    for cols in trs:
        sh = int(round(lag * cols["_fps"]))
        valid = cols["valid"] > 0.5
        f = np.stack([cols[k] for k in feats], 1)
        f = np.concatenate([np.repeat(f[:1], sh, 0), f[: len(f) - sh]], 0) if sh else f  # causal delay
        X.append(f[valid])
        y.append(cols[target][valid])
    X = np.concatenate(X)
    return np.concatenate([X, np.ones((len(X), 1))], 1), np.concatenate(y)


def _fit_ccc(fit: list[dict], score: list[dict], feats: list[str], target: str, lag: float) -> float:
    X, y = _stack(fit, feats, target, lag)
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    Xs, ys = _stack(score, feats, target, lag)
    return ccc(Xs @ w, ys)


def _oracle(trs, target) -> float:
    """Labels vs the noise-free latent delayed by each trial's annotator lag: only noise and clipping limit it."""
    p, y = [], []
    for cols in trs:
        v = cols["valid"] > 0.5
        y.append(cols[target][v])
        delayed = np.interp(cols["time"] - cols["_lag"], cols["time"], cols[f"{target}_latent"])
        p.append(delayed[v])
    return float("nan") if not p else ccc(np.concatenate(p), np.concatenate(y))


# ---- entry points ----------------------------------------------------------------------------------
def synthesize(out: str | Path, videos: int = 12, seconds: float = 24.0, seed: int = 7,
               progress: bool = True, workers: int | None = None) -> Path:
    """Write the demo corpus below ``out`` and return its root (DESIGN §1; layout in the module docstring).

    ``workers``: processes rendering videos in parallel (None = up to 2 for corpora over 3,000 frames). The output
    does not depend on it. A rerun with the same arguments into a finished corpus returns at once.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    exe = espeak_available()
    generator = {"module": "rjcma.data.synth", "version": GENERATOR_VERSION, "videos": videos,
                 "seconds": seconds, "seed": seed}
    if _up_to_date(out, generator):
        if progress:
            print(f"rjcma synth: {out} already holds this corpus (same seed and size); nothing to do")
        return out
    plans = plan_corpus(videos, seconds, seed, exe)
    _clear(out)
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    for part in PARTITION_DIRS.values():
        (out / ANNOTATIONS_DIR / VA_DIR / part).mkdir(parents=True, exist_ok=True)
    total_frames = sum(vp.n_frames for vp in plans)
    if workers is None:
        workers = min(2, usable_cpus(), len(plans)) if total_frames > 3000 else 1
    bar = tqdm(total=len(plans), desc="synth videos", unit="video", disable=not progress)
    if workers <= 1:
        results = []
        for vp in plans:
            results.append(synth_video(vp, out, exe))
            bar.update()
    else:  # videos are independent given their plans: same bytes whatever the order
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        done: dict[int, dict[str, Any]] = {}
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_video_job, vp, out, exe): vp.index for vp in plans}
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                bar.update()
        results = [done[vp.index] for vp in plans]
    bar.close()
    trials = [dict(tr, fps=r["fps"]) for r in results for tr in r["trials"]]
    test_names = [tr["name"] for tr in trials if tr["partition"] == "test"]
    atomic_write_text(out / TEST_LIST_DIR / TEST_LIST_NAME, "\n".join(test_names) + "\n")
    atomic_write_text(
        out / SUBJECT_MAP_NAME, "trial,subject\n" + "".join(f"{tr['name']},{tr['subject']}\n" for tr in trials)
    )
    truth = {
        "about": "Extra file of the synthetic demo corpus (rjcma synth); not part of the Aff-Wild2 layout.",
        "generator": generator,
        "design": {
            "shares": SHARES, "latent_mean": LATENT_MEAN, "latent_std": LATENT_STD, "offset_share": OFFSET_SHARE,
            "tau_s": TAU, "annotator_lag_s": LAG_RANGE, "annotation_noise_std": NOISE_STD,
            "lexicon": {f"{v},{a}": list(ws) for (v, a), ws in LEXICON.items()},
            "channels": {
                "face": "valence: mouth curvature and brow angle (visual)",
                "words": "valence (W) and arousal (W_A): adjective chosen from a 5 x 3 valence-arousal lexicon by "
                         "the nearest cell (text; audio carries the same words acoustically)",
                "prosody": "arousal: espeak-ng rate and pitch per utterance, loudness, pause length (audio)",
                "motion": "arousal: eye opening, brow height, blink rate, head roll and jitter amplitude (visual)",
                "residual": "not rendered anywhere",
            },
        },
        "designed_ceiling_ccc": designed_ceilings(),
        "measured_ceiling_ccc": measured_ceilings(out, trials),
        "measured_ceiling_ccc_validation": measured_ceilings(out, trials, evaluate_on="validation"),
        "videos": results,
    }
    atomic_write_json(out / TRUTH_JSON, truth)
    if progress:
        print(f"rjcma synth: {len(trials)} trials in {len(plans)} videos written to {out} "
              f"({time.perf_counter() - t0:.1f} s)")
    return out


def _video_job(vp: VideoPlan, out: Path, exe: str) -> dict[str, Any]:
    import cv2

    cv2.setNumThreads(1)
    return synth_video(vp, out, exe)


MANAGED = (ANNOTATIONS_DIR, TEST_LIST_DIR, FACES_DIR, "videos", TRUTH_DIR, SUBJECT_MAP_NAME)


def _up_to_date(out: Path, generator: dict[str, Any]) -> bool:
    """A complete corpus (SYNTH_TRUTH.json is written last) made with the same generator, size and seed."""
    try:
        return json.loads((out / TRUTH_JSON).read_text())["generator"] == generator
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _clear(out: Path) -> None:
    """Remove an earlier demo corpus's folders; refuse to write into a folder that holds anything else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise RjcmaError(f"{out}: exists and is not a folder; choose another --out")
    entries = [p for p in out.iterdir() if p.name != TRUTH_JSON]
    if not entries and not (out / TRUTH_JSON).exists():
        return
    foreign = [p.name for p in entries if p.name not in MANAGED and not p.name.startswith(".")]
    if foreign:
        raise RjcmaError(
            f"{out}: not empty and not a demo corpus (holds {foreign[0]!r}); choose an empty or new --out folder"
        )
    (out / TRUTH_JSON).unlink(missing_ok=True)
    for name in MANAGED:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (the corpus root)")
    p.add_argument("--videos", type=int, default=12, help=f"number of videos (>= {MIN_VIDEOS}; default 12)")
    p.add_argument("--seconds", type=float, default=24.0, help="mean length of a video in seconds (default 24)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: up to 2 for big corpora)")


def run_synth(args: argparse.Namespace) -> int:
    synthesize(args.out, videos=args.videos, seconds=args.seconds, seed=args.seed, workers=args.workers)
    return 0
