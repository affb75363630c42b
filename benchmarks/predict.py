"""Seconds per minute of video of `rjcma predict`, by stage, on 2 CPU cores (issue 6 benchmark; target <= 60 s).

Stages: decode + face detection, audio + log-mel, ASR, text features, the frozen encoders, the model. Loading the
checkpoint and the encoders (once per command) is reported separately. A 1-second clip of the same video is scored
first so the ASR and text models are loaded before the timed run.

    python benchmarks/predict.py [--video V] [--checkpoint RESULT_FOLDER] [--threads 2] [--profile demo]

Defaults: the first test video of the profile's corpus and the model `make book` trains. Prints a table and writes
``benchmarks/out/predict.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def clip(video: Path, seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``video`` (frames and audio), re-encoded with PyAV."""
    import av
    import numpy as np

    from rjcma.preprocess.audio import load_audio

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or 25)
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(int(seconds * fps)), c.decode(s))]
    wav = load_audio(video, 16000)[: int(seconds * 16000)]
    with av.open(str(out), "w") as c:
        vs = c.add_stream("libx264", rate=int(round(fps)))
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        aus = c.add_stream("aac", rate=16000)
        aus.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16)
        for i in range(0, len(pcm), 1024):
            af = av.AudioFrame.from_ndarray(pcm[None, i:i + 1024], format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, i
            for p in aus.encode(af):
                c.mux(p)
        for p in aus.encode():
            c.mux(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=None)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/out/predict.json")
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    import cv2

    cv2.setNumThreads(args.threads)
    from rjcma.config import load_config
    from rjcma.data.abaw import load_corpus
    from rjcma.predict import STAGES, load_bundle, predict_video

    cfg = load_config(args.profile, args.set)
    if args.video:
        video = Path(args.video)
    else:
        corpus = load_corpus(cfg)
        trial = (corpus.partition("test") or corpus.trials)[0]
        video = Path(trial.video)
    t0 = time.perf_counter()
    bundle = load_bundle(args.checkpoint, args.set, cfg=cfg)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        predict_video(clip(video, 1.0, Path(tmp) / "warm.mp4"), bundle)  # loads ASR and text models
        warm_s = time.perf_counter() - t0
    res = predict_video(video, bundle)
    secs = res.summary["seconds"]
    dur = float(res.summary["duration_s"])
    per_min = {k: secs[k] * 60.0 / dur for k in STAGES}
    total = sum(per_min.values())
    try:
        load_avg = os.getloadavg()[0]
    except OSError:
        load_avg = None
    print(f"video {video} ({res.summary['frames']} frames, {dur:.1f} s, {res.summary['width']}x{res.summary['height']}); "
          f"checkpoint {bundle.checkpoint} (K={bundle.K}); torch threads {torch.get_num_threads()}; "
          f"load average {load_avg}")
    print(f"{'stage':<16} {'seconds':>9} {'s per min of video':>20}")
    for k in STAGES:
        print(f"{k:<16} {secs[k]:>9.2f} {per_min[k]:>20.1f}")
    print(f"{'total':<16} {sum(secs[k] for k in STAGES):>9.2f} {total:>20.1f}   target <= 60 "
          f"({'met' if total <= 60 else 'NOT met'})")
    print(f"once per command: loading checkpoint + encoders {load_s:.1f} s; ASR/text model warm-up {warm_s:.1f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"video": str(video), "frames": res.summary["frames"], "duration_s": dur,
                               "seconds": secs, "seconds_per_minute": per_min, "total_per_minute": total,
                               "load_seconds": load_s, "warmup_seconds": warm_s, "threads": args.threads,
                               "load_average": load_avg, "encoder_precision": res.summary["encoder_precision"]},
                              indent=2) + "\n")
    return 0 if total <= 60 else 1


if __name__ == "__main__":
    sys.exit(main())
