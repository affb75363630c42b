"""Writing a whole corpus (``rjcma synth``): plan, render every video (in parallel when large), then the test list,
the subject map and, last, ``SYNTH_TRUTH.json``; reruns of a finished corpus return at once."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rjcma.data.synth.ceilings import designed_ceilings, designed_explained, explained_variance, measured_ceilings
from rjcma.data.synth.design import CHANNELS, LAG_RANGE, LATENT_MEAN, LATENT_STD, LEXICON, NOISE_STD, OFFSET_SHARE, SHARES, TAU, VideoPlan
from rjcma.data.synth.layout import GENERATOR_VERSION, MANAGED, TRUTH_JSON
from rjcma.data.synth.mux import synth_video
from rjcma.data.synth.plan import plan_corpus
from rjcma.data.synth.speech import espeak_available
from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_json, atomic_write_text
from rjcma.layout import ANNOTATIONS_DIR, PARTITION_DIRS, SUBJECT_MAP_NAME, TEST_LIST_DIR, TEST_LIST_NAME, VA_DIR
from rjcma.runtime import usable_cpus


def synthesize(out: str | Path, videos: int = 12, seconds: float = 24.0, seed: int = 7,
               progress: bool = True, workers: int | None = None) -> Path:
    """Write the demo corpus below ``out`` and return its root (the tree: :mod:`rjcma.data.synth`).

    ``workers``: processes rendering videos in parallel (None = up to 2 for corpora over 3,000 frames). The output
    does not depend on it. A rerun with the same arguments into a finished corpus returns at once.
    """
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
    results = _render_all(plans, out, exe, workers, progress)
    trials = [dict(tr, fps=r["fps"]) for r in results for tr in r["trials"]]
    test_names = [tr["name"] for tr in trials if tr["partition"] == "test"]
    atomic_write_text(out / TEST_LIST_DIR / TEST_LIST_NAME, "\n".join(test_names) + "\n")
    atomic_write_text(
        out / SUBJECT_MAP_NAME, "trial,subject\n" + "".join(f"{tr['name']},{tr['subject']}\n" for tr in trials)
    )
    atomic_write_json(out / TRUTH_JSON, _truth(out, generator, trials, results))
    if progress:
        print(f"rjcma synth: {len(trials)} trials in {len(plans)} videos written to {out} "
              f"({time.perf_counter() - t0:.1f} s)")
    return out


def _render_all(plans: list[VideoPlan], out: Path, exe: str, workers: int | None, progress: bool) -> list[dict]:
    """Render every video (``synth_video``), in ``workers`` processes; results in the order of ``plans``."""
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
        done: dict[int, dict[str, Any]] = {}
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_video_job, vp, out, exe): vp.index for vp in plans}
            for fut in as_completed(futures):
                done[futures[fut]] = fut.result()
                bar.update()
        results = [done[vp.index] for vp in plans]
    bar.close()
    return results


def _truth(out: Path, generator: dict[str, Any], trials: list[dict], results: list[dict]) -> dict[str, Any]:
    """The content of ``SYNTH_TRUTH.json``: generator, design, designed and measured ceilings, every video."""
    return {
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
                "prosody": "arousal: espeak-ng pitch per utterance and loudness (audio only: the mouth follows the "
                           "speech before its loudness gain; rate and pauses are nuisances)",
                "motion": "arousal: eye opening, brow height, blink rate, head roll and jitter amplitude (visual)",
                "residual": "not rendered anywhere",
            },
            "modalities": {m: list(parts) for m, parts in CHANNELS.items()},
        },
        "designed_explained_variance": designed_explained(),
        "explained_variance": explained_variance(out, trials),
        "designed_ceiling_ccc": designed_ceilings(),
        "measured_ceiling_ccc": measured_ceilings(out, trials),
        "measured_ceiling_ccc_validation": measured_ceilings(out, trials, evaluate_on="validation"),
        "videos": results,
    }


def _video_job(vp: VideoPlan, out: Path, exe: str) -> dict[str, Any]:
    import cv2

    cv2.setNumThreads(1)
    return synth_video(vp, out, exe)


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
