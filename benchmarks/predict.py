"""Seconds per minute of video and peak memory of `rjcma predict` on generated talking-face videos of 1 and 10 minutes.

Targets (2 CPU cores, default settings): at most 30 s per minute of video; peak RSS at most 2 GiB at 10 minutes.

The videos are the demo generator's (``rjcma synth``: a rendered talking face with espeak-ng speech): one video of a
minute, and the same minute repeated ten times (``ffmpeg -f concat -c copy``, no re-encoding). Each length is scored
in its own process so its peak RSS is its own; a 1-second clip is scored first so the ASR and text models are loaded
before the timed run. Per stage: decode + faces, audio + log-mel, ASR, text features, the frozen encoders, the model;
and the face detector's frames per second.

    python benchmarks/predict.py [--minutes 1 10] [--checkpoint RESULT_FOLDER] [--threads 2] [--profile demo]

Default checkpoint: the model `make book` trains. Prints a table (wall and process CPU seconds per minute of video,
per stage: on a machine other jobs load, CPU seconds are the fairer figure) and writes
``benchmarks/out/predict.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def talking_face(minutes: int, work: Path) -> Path:
    """A generated talking-face video of ``minutes`` minutes (cached in ``work``)."""
    one = work / "talking-1min.mp4"
    if not one.is_file():
        from rjcma.data.synth import synthesize

        corpus = Path(synthesize(work / "corpus", videos=4, seconds=60.0, seed=3))
        video = sorted((corpus / "videos").rglob("*.mp4"))[-1]  # a single-subject video
        shutil.copy(video, one)
    if minutes == 1:
        return one
    out = work / f"talking-{minutes}min.mp4"
    if not out.is_file():
        lst = work / "concat.txt"
        lst.write_text("".join(f"file '{one.resolve()}'\n" for _ in range(minutes)))  # relative to the list
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy",
                        str(out)], check=True)
    return out


def clip(video: Path, out: Path, seconds: float = 1.0) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(video), "-t", str(seconds), "-c", "copy", str(out)],
                   check=True)
    return out


def score_one(video: Path, checkpoint: str | None, profile: str, sets: list[str]) -> dict:
    """Score ``video`` in this process: stage seconds, peak RSS (MiB)."""
    from rjcma.bundle import load_bundle
    from rjcma.config import load_config
    from rjcma.predict import predict_video

    cfg = load_config(profile, sets)
    t0 = time.perf_counter()
    bundle = load_bundle(checkpoint, sets, cfg=cfg)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        predict_video(clip(video, Path(tmp) / "warm.mp4"), bundle)
        warm_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    res = predict_video(video, bundle)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = res.summary
    return {"video": str(video), "frames": s["frames"], "duration_s": s["duration_s"], "seconds": s["seconds"],
            "cpu_seconds": s.get("cpu_seconds") or {k: float("nan") for k in s["seconds"]}, "wall_s": wall, "cpu_s": cpu, "load_s": load_s, "warmup_s": warm_s, "face_detection": s.get("face_detection"),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "encoder_precision": s["encoder_precision"], "frame_stride": s["encoders"].get("visual", {}).get(
                "frame_stride"), "persons": s["persons"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="benchmarks/out/predict_videos", help="where the generated videos are cached")
    ap.add_argument("--out", default="benchmarks/out/predict.json")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: score one video, print JSON
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    if args.one:
        print("RESULT " + json.dumps(score_one(Path(args.one), args.checkpoint, args.profile, args.set)))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in args.minutes:
        video = talking_face(m, work)
        cmd = [sys.executable, __file__, "--one", str(video), "--profile", args.profile, "--threads", str(args.threads)]
        cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
        for s in args.set:
            cmd += ["--set", s]
        load0 = os.getloadavg()[0]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
        if out.returncode or not line:
            print(out.stderr[-3000:], file=sys.stderr)
            return 2
        r = json.loads(line[0][7:])
        r["minutes"] = m
        r["load_average"] = [round(load0, 2), round(os.getloadavg()[0], 2)]  # before and after (1-minute average)
        r["seconds_per_minute"] = r["wall_s"] * 60.0 / r["duration_s"]
        r["cpu_seconds_per_minute"] = r["cpu_s"] * 60.0 / r["duration_s"]
        rows.append(r)
    try:
        load_avg = os.getloadavg()[0]
    except OSError:
        load_avg = None
    stages = list(rows[0]["seconds"])
    print(f"torch threads {args.threads}; load average {load_avg}; checkpoint {args.checkpoint or 'default'}")
    print(f"{'s per min of video':<28}" + "".join(f"{str(r['minutes']) + ' min':>16}" for r in rows))
    print(f"{'stage':<28}" + "".join(f"{'wall':>8}{'CPU':>8}" for _ in rows))
    for k in stages:
        print(f"{k:<28}" + "".join(f"{r['seconds'][k] * 60 / r['duration_s']:>8.1f}"
                                   f"{r['cpu_seconds'][k] * 60 / r['duration_s']:>8.1f}" for r in rows))
    print(f"{'total':<28}" + "".join(f"{r['seconds_per_minute']:>8.1f}{r['cpu_seconds_per_minute']:>8.1f}"
                                     for r in rows) + "   target: wall <= 30")
    print(f"{'load average (before-after)':<28}" + "".join(f"{'%.1f-%.1f' % tuple(r['load_average']):>16}"
                                                          for r in rows))
    print(f"{'peak RSS (MiB)':<28}" + "".join(f"{r['peak_rss_mib']:>16.0f}" for r in rows) + "   target <= 2048")
    fd = [r.get("face_detection") or {} for r in rows]
    print(f"{'face detection (frames/s)':<28}" + "".join(f"{f.get('frames_per_second') or 0:>16.1f}" for f in fd))
    outp = Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    outp.write_text(json.dumps({"runs": rows, "threads": args.threads, "load_average": load_avg}, indent=2) + "\n")
    ok = all(r["seconds_per_minute"] <= 30 for r in rows) and all(r["peak_rss_mib"] <= 2048 for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
