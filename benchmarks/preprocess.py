"""Preprocessing speed per stage on one demo video: frames per second and real-time factor.

    python benchmarks/preprocess.py [--corpus data/demo_corpus] [--threads 2] [--device cpu|cuda] [--precision fp32|bf16]

Targets: faces + log-mel + frozen visual/audio features >= 10x real time; ASR <= 0.3x real time
(seconds of compute per second of audio). Without a corpus, one demo video is synthesised in a temporary folder.
Stand-in encoders (seeded init) are used: speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default="data/demo_corpus")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--skip-asr", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from rjcma.data.abaw import find_corpus
    from rjcma.data.annotations import read_labels
    from rjcma.data.video_info import video_info
    from rjcma.encoders.logmel import frame_patches, log_mel
    from rjcma.models.backbones import IR50, VGGish, faces_to_tensor, seeded_init
    from rjcma.preprocess.audio import load_audio
    from rjcma.preprocess.faces.folder import faces_from_folder
    from rjcma.preprocess.faces.stream import faces_from_video

    root = Path(args.corpus)
    tmp = None
    if not root.exists():
        from rjcma.data.synth import synthesize

        tmp = tempfile.TemporaryDirectory()
        root = Path(synthesize(Path(tmp.name) / "c", videos=1, seconds=24.0, seed=7))
    corpus = find_corpus(root)
    trial = next(t for t in corpus.trials if t.annotation is not None and t.faces_dir is not None and t.video)
    info = video_info(trial.video)
    N = len(read_labels(trial.annotation))
    seconds = N / info.fps
    rows: list[tuple[str, float, float]] = []  # stage, seconds, frames/s

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        rows.append((name, dt, N / dt))
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        faces, mask, _ = timed("faces: cropped_aligned jpgs -> 48x48", lambda: faces_from_folder(trial.faces_dir, N))
        timed("faces: detect in video (every frame)", lambda: faces_from_video(trial.video, N, info.fps))
        wav = timed("audio: decode + 16 kHz mono (PyAV)", lambda: load_audio(trial.video))
        L = timed("audio: VGGish log-mel", lambda: log_mel(wav, 16000))
        patches = timed("audio: 96x64 patch per frame", lambda: frame_patches(L, info.fps, N, out=np.empty((N, 96, 64), np.float16)))

    dev = torch.device(args.device)
    vis = seeded_init(IR50(), 0).eval().to(dev)
    aud = seeded_init(VGGish(), 0).eval().to(dev)
    ctx = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext

    def run_visual():
        with torch.inference_mode(), ctx():
            for s in range(0, N, args.batch):
                vis(faces_to_tensor(faces[s:s + args.batch]).to(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def run_audio():
        with torch.inference_mode(), ctx():
            for s in range(0, N, args.batch):
                aud(torch.from_numpy(patches[s:s + args.batch].astype(np.float32))[:, None].to(dev))
        if dev.type == "cuda":
            torch.cuda.synchronize()

    with torch.inference_mode():  # warm-up
        vis(torch.zeros(2, 3, 40, 40, device=dev)), aud(torch.zeros(2, 1, 96, 64, device=dev))
    timed(f"features: IR-50 on 40x40 ({args.precision}, {dev.type})", run_visual)
    timed(f"features: VGGish on 96x64 ({args.precision}, {dev.type})", run_audio)

    core = [r for r in rows if not r[0].startswith("faces: detect")]
    total = sum(r[1] for r in core)
    asr_rtf = None
    if not args.skip_asr:
        from rjcma.preprocess.speech import transcribe

        transcribe(wav[:16000], 16000)  # load the model outside the timing
        t = time.perf_counter()
        words = transcribe(wav, 16000)
        asr_dt = time.perf_counter() - t
        asr_rtf = asr_dt / seconds
        rows.append((f"speech: ASR ({len(words)} words)", asr_dt, N / asr_dt))

    print(f"video {trial.video.name}: {N} frames at {info.fps:.2f} fps = {seconds:.1f} s; {args.threads} threads, "
          f"torch {torch.__version__}, device {args.device}")
    print(f"{'stage':52s} {'seconds':>9s} {'frames/s':>10s} {'x real time':>12s}")
    for name, dt, fps in rows:
        print(f"{name:52s} {dt:9.2f} {fps:10.1f} {seconds / dt:12.2f}")
    print(f"{'faces + log-mel + visual/audio features':52s} {total:9.2f} {N / total:10.1f} {seconds / total:12.2f}"
          f"   (target >= 10x real time)")
    if asr_rtf is not None:
        print(f"ASR real-time factor: {asr_rtf:.3f} (compute s per audio s; target <= 0.3)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
