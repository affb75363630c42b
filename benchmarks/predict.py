"""Seconds per minute of video and peak memory of `rjcma predict`: one person in 720p and three people in one frame,
on this CPU's own path and on an imitated CPU without native bf16.

Targets (2 CPU cores, no native bf16): one person in 720p at most 60 s of wall time per minute of video, three
persons at most 120 s; peak memory flat in the video's length (``--seconds 60 600`` compares 1 and 10 minutes).

The videos are the demo generator's (``rjcma synth``: rendered talking faces with espeak-ng speech), made once into
``--work``: ``one`` is a single-subject video upscaled to 960 x 720; ``three`` puts three single-subject videos side
by side in a 720 x 528 frame (each face about its demo size), with the first one's sound. A longer video repeats the
minute (``ffmpeg -f concat -c copy``). Each run scores one video in a fresh process after a 1-second warm-up clip (the
ASR and text models loaded), with ``--threads`` torch threads; ``--isa avx2`` imitates a CPU without bf16
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 CT2_FORCE_CPU_ISA=AVX2``). Per stage it prints wall and process
CPU seconds per minute of video, with the face stage split into decode, detect, track and align (CPU seconds), and
the seconds to write the four outputs. On a machine other jobs load, compare CPU seconds, or runs side by side.

    python benchmarks/predict.py --videos one three --isa native avx2 [--seconds 60] [--checkpoint DIR]

Default checkpoint: the model `make book` trains. Writes ``benchmarks/out/predict.json``.

``--precision-check``: the frozen encoders in float32 instead of the store's bf16 (what ``rjcma predict`` runs on a
CPU without native bf16): every cross-validation fold's validation trials re-encoded from the store's faces and
log-mel patches both ways and scored by that fold's model; prints the CCC of each and their difference.
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

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"}
TARGET = {"one": 60.0, "three": 120.0}  # s of wall time per minute of video, 2 cores without native bf16


def _ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


def demo_minute(work: Path) -> list[Path]:
    """Single-subject demo videos of a minute (384 x 288), generated once."""
    corpus = work / "corpus"
    if not (corpus / "videos").is_dir():
        from rjcma.data.synth import synthesize

        synthesize(corpus, videos=5, seconds=60.0, seed=3, progress=False)
    return [v for v in sorted((corpus / "videos").rglob("*.mp4")) if "384x288" in v.name][:3]


def make_video(kind: str, seconds: int, work: Path) -> Path:
    """The ``one`` or ``three`` video of ``seconds`` (cached in ``work``)."""
    out = work / f"{kind}-{seconds}s.mp4"
    if out.is_file():
        return out
    minute = work / f"{kind}-60s.mp4"
    if seconds < 60 and not minute.is_file():  # a short run needs no whole minute
        minute = work / f"{kind}-{seconds}s.mp4"
    if not minute.is_file():
        src, part = demo_minute(work), minute.with_suffix(".part.mp4")  # renamed when complete
        t = ["-t", str(min(seconds, 60))]
        if kind == "one":
            _ffmpeg("-i", src[0], *t, "-vf", "scale=960:720", "-c:v", "libx264", "-preset", "veryfast", "-c:a",
                    "aac", part)
        else:
            # one frame rate for the three (the demo's videos are at 25 and 30 fps), or hstack never ends
            cols = ";".join(f"[{i}:v]fps=30,crop=216:288,scale=240:320[v{i}]" for i in range(3))
            _ffmpeg(*sum((["-i", str(v)] for v in src), []), "-filter_complex",
                    f"{cols};[v0][v1][v2]hstack=3:shortest=1,pad=720:528:0:104[v]", "-map", "[v]", "-map", "0:a",
                    *t, "-frames:v", str(30 * min(seconds, 60)), "-c:v", "libx264", "-preset", "veryfast",
                    "-c:a", "aac", part)
        part.replace(minute)
    if minute == out or seconds == 60:
        return minute
    lst, part = work / f"concat-{kind}.txt", work / f"{kind}-{seconds}s.part.mp4"
    lst.write_text("".join(f"file '{minute.resolve()}'\n" for _ in range(-(-seconds // 60))))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", lst, "-t", seconds, "-c", "copy", part)
    part.replace(out)
    return out


def score_one(video: Path, checkpoint: str | None, profile: str, sets: list[str]) -> dict:
    """Score ``video`` in this process: stage seconds, the face stage's steps, writing, peak RSS (MiB)."""
    from rjcma.bundle import load_bundle
    from rjcma.config import load_config
    from rjcma.predict_outputs import write_outputs
    from rjcma.scoring import predict_video

    cfg = load_config(profile, sets)
    t0 = time.perf_counter()
    bundle = load_bundle(checkpoint, sets, cfg=cfg)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.mp4"
        _ffmpeg("-i", video, "-t", "1", "-c", "copy", warm)
        predict_video(warm, bundle)
        t0, c0 = time.perf_counter(), time.process_time()
        res = predict_video(video, bundle)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        w0, c0 = time.perf_counter(), time.process_time()
        write_outputs(res, Path(tmp) / "out", int(cfg.book.figure_dpi))
        write = [time.perf_counter() - w0, time.process_time() - c0]
    s = res.summary
    return {"video": str(video), "frames": s["frames"], "duration_s": s["duration_s"], "seconds": s["seconds"],
            "cpu_seconds": s["cpu_seconds"], "faces": (s.get("face_detection") or {}).get("cpu_seconds", {}),
            "write": write, "wall_s": wall, "cpu_s": cpu, "load_s": load_s, "persons": s["persons"],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "encoder_precision": s["encoder_precision"], "face_detection": s.get("face_detection")}


def _run(kind: str, seconds: int, isa: str, args) -> dict:
    video = make_video(kind, seconds, Path(args.work))
    cmd = [sys.executable, __file__, "--one", str(video), "--profile", args.profile, "--threads", str(args.threads)]
    cmd += ["--checkpoint", args.checkpoint] if args.checkpoint else []
    for s in args.set:
        cmd += ["--set", s]
    env = {**os.environ, **(AVX2 if isa == "avx2" else {}), "OMP_NUM_THREADS": str(args.threads)}
    load0 = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not line:
        raise SystemExit(out.stderr[-3000:])
    r = json.loads(line[0][7:])
    per_min = 60.0 / r["duration_s"]
    r.update(kind=kind, isa=isa, seconds_of_video=seconds, load_average=[round(load0, 2),
             round(os.getloadavg()[0], 2)], seconds_per_minute=r["wall_s"] * per_min,
             cpu_seconds_per_minute=r["cpu_s"] * per_min)
    return r


def _table(rows: list[dict]) -> None:
    """Wall / CPU seconds per minute of video per stage, one column pair per run."""
    head = [f"{r['kind']} {r['isa']} {r['seconds_of_video']}s" for r in rows]
    print(f"{'s per minute of video':<26}" + "".join(f"{h:>18}" for h in head))
    print(f"{'stage':<26}" + "".join(f"{'wall':>9}{'CPU':>9}" for _ in rows))
    per = [60.0 / r["duration_s"] for r in rows]
    for k in rows[0]["seconds"]:
        print(f"{k:<26}" + "".join(f"{r['seconds'][k] * m:>9.1f}{r['cpu_seconds'][k] * m:>9.1f}"
                                   for r, m in zip(rows, per)))
        if k == "decode+faces":
            for step in ("decode", "detect", "track", "align"):
                print(f"{'  ' + step:<26}" + "".join(f"{'':>9}{r['faces'].get(step, 0) * m:>9.1f}"
                                                     for r, m in zip(rows, per)))
    print(f"{'write outputs':<26}" + "".join(f"{r['write'][0] * m:>9.1f}{r['write'][1] * m:>9.1f}"
                                             for r, m in zip(rows, per)))
    print(f"{'total (predict_video)':<26}" + "".join(f"{r['seconds_per_minute']:>9.1f}{r['cpu_seconds_per_minute']:>9.1f}"
                                                    for r in rows))
    print(f"{'target, wall':<26}" + "".join(f"{TARGET[r['kind']]:>18.0f}" for r in rows))
    print(f"{'persons':<26}" + "".join(f"{r['persons']:>18d}" for r in rows))
    print(f"{'encoder precision':<26}" + "".join(f"{r['encoder_precision']:>18}" for r in rows))
    print(f"{'peak RSS (MiB)':<26}" + "".join(f"{r['peak_rss_mib']:>18.0f}" for r in rows))
    print(f"{'load (before-after)':<26}" + "".join(f"{'%.1f-%.1f' % tuple(r['load_average']):>18}" for r in rows))


def precision_check(profile: str, folds: list[int]) -> list[dict]:
    """CCC of each fold's model on its validation trials with bf16 and with float32 encoder features."""
    from functools import partial

    import numpy as np

    from rjcma.bundle import load_bundle
    from rjcma.config import load_config
    from rjcma.data.folds import fold_split
    from rjcma.data.store import Store
    from rjcma.encoders.encode import encode_rows
    from rjcma.metrics import ccc
    from rjcma.models.backbones import encode_faces, encode_logmel
    from rjcma.scoring import run_model
    from rjcma.train.results import default_checkpoint

    cfg = load_config(profile)
    store, rows = Store(Path(cfg.data.store)), []
    for k in folds:
        ckpt = default_checkpoint(cfg).parent / default_checkpoint(cfg).name.replace("fold0", f"fold{k}")
        b = load_bundle(ckpt, cfg=cfg)
        preds: dict[str, list] = {"bf16": [], "fp32": []}
        labels = []
        for name in fold_split(cfg, k)["validation"]:
            n = len(store.load(name, "labels"))
            text = (np.asarray(store.load(name, "bert"), np.float32) - b.text_stats["mean"]) / b.text_stats["std"]
            for prec in preds:
                feats = {}
                for kind, key, fn in (("visual", "faces", encode_faces), ("audio", "logmel", encode_logmel)):
                    info, arr = b.encoder_info[kind], store.load(name, key)
                    feats[kind] = encode_rows(b.encoders[kind], partial(fn, batch=128), lambda r, a=arr: a[r], n,
                                              int(info["dim"]), int(info["frame_stride"]), prec).astype(np.float32)
                preds[prec].append(run_model(b, {**feats, "text": text}, n)[0])
            labels.append(np.asarray(store.load(name, "labels"), np.float32))
        y = np.concatenate(labels)
        row = {"fold": k}
        for prec, ps in preds.items():
            x = np.concatenate(ps)
            row[prec] = [float(ccc(x[:, j], y[:, j])) for j in range(x.shape[1])]
        row["difference"] = [abs(a - c) for a, c in zip(row["bf16"], row["fp32"])]
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", nargs="+", default=["one", "three"], choices=["one", "three"])
    ap.add_argument("--isa", nargs="+", default=["native", "avx2"], choices=["native", "avx2"])
    ap.add_argument("--seconds", type=int, nargs="+", default=[60])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="benchmarks/out/predict_videos", help="where the generated videos are cached")
    ap.add_argument("--out", default="benchmarks/out/predict.json")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: score one video, print JSON
    ap.add_argument("--precision-check", type=int, nargs="*", default=None, metavar="FOLD",
                    help="bf16 against float32 encoder features on these folds' validation trials (default: all six)")
    args = ap.parse_args(argv)
    if args.precision_check is not None:
        rows = precision_check(args.profile, args.precision_check or list(range(6)))
        worst = max(max(r["difference"]) for r in rows)
        print(f"largest CCC difference, bf16 against float32 features: {worst:.4f} (allowed: 0.01)")
        return 0 if worst <= 0.01 else 1
    if args.one:
        import torch

        torch.set_num_threads(args.threads)
        print("RESULT " + json.dumps(score_one(Path(args.one), args.checkpoint, args.profile, args.set)))
        return 0
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg not found")
    Path(args.work).mkdir(parents=True, exist_ok=True)
    rows = [_run(k, s, isa, args) for s in args.seconds for k in args.videos for isa in args.isa]
    print(f"torch threads {args.threads}; checkpoint {args.checkpoint or 'default'}")
    _table(rows)
    outp = Path(args.out)
    outp.parent.mkdir(parents=True, exist_ok=True)
    outp.write_text(json.dumps({"runs": rows, "threads": args.threads}, indent=2) + "\n")
    ok = all(r["seconds_per_minute"] <= TARGET[r["kind"]] for r in rows if r["isa"] == "avx2")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
