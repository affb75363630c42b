"""Planning a corpus before anything is rendered: partitions, names, frame rates, identities, latents, speech."""

from __future__ import annotations

import numpy as np

from rjcma.data.synth.design import (
    SPOKEN,
    Identity,
    TrialPlan,
    VideoPlan,
    random_identity,
    combine_targets,
    make_latents,
    normalise_parts,
    spoken_word_parts,
)
from rjcma.data.synth.layout import FPS_CYCLE, MIN_VIDEOS
from rjcma.data.synth.speech import espeak_available, plan_speech
from rjcma.errors import RjcmaError


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
            ident = random_identity(rng, female)
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
