"""One video: the face states and the speech become frames, aligned crops (jpgs) and an mp4 with its AAC track.

``cv2`` and ``av`` are imported where they are used: every ``rjcma`` command imports this package to build its
argument parser, and these two are slow to import.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.data.synth.design import VideoPlan, ema
from rjcma.data.synth.layout import AUDIO_RATE, ESPEAK_RATE, VIDEOS_DIR
from rjcma.data.synth.render import background, crop_affine, draw_face, face_events, render_states
from rjcma.data.synth.speech import track_index, upsample2
from rjcma.data.synth.truth import write_labels
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path
from rjcma.layout import CROP, FACES_DIR, face_file


def synth_video(vp: VideoPlan, out: Path, exe: str) -> dict[str, Any]:
    """Render one video: latents → speech → frames (+ aligned crops) → mp4; write labels and crops."""
    n, fps = vp.n_frames, float(vp.fps)
    frame_t = np.arange(n) / fps
    mouths = mouth_openings(vp, frame_t)
    slots = face_slots(vp)
    states = [render_states(tp, vp, slots[j], vp.rngs[2 + j], mouths[j]) for j, tp in enumerate(vp.trials)]
    events = [face_events(vp.rngs[4 + j], n, fps) for j in range(len(vp.trials))]
    bg = background(vp, vp.rngs[6])
    write_video(vp, out, states, events, bg)
    return write_labels(vp, out, frame_t, mouths, events)


def mouth_openings(vp: VideoPlan, frame_t: np.ndarray) -> list[np.ndarray]:
    """Mouth opening per trial: the envelope of its own speech around each frame time before the loudness gain
    that carries P (so the face shows when someone speaks, not how loud), 0 when silent or when the other subject
    speaks."""
    speech = vp.speech  # planned with the corpus (plan_corpus): the word parts of the labels depend on it
    track22 = speech["plain"]
    half = int(0.03 * ESPEAK_RATE)
    idx = track_index(frame_t, len(track22))
    sq = np.concatenate([[0.0], np.cumsum(track22.astype(np.float64) ** 2)])
    lo, hi = np.clip(idx - half, 0, len(track22)), np.clip(idx + half, 0, len(track22))
    rms = np.sqrt((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1))
    mouths = []
    for j, tp in enumerate(vp.trials):
        mine = speech["owner"][idx] == j
        mouths.append(np.where(mine, np.clip(rms / 0.18, 0, 1), 0.0))
    return mouths


def face_slots(vp: VideoPlan) -> list[tuple[float, float, float]]:
    """Centre x, centre y and half-width (px) of each face in the frame: two side by side, or one in the middle."""
    if len(vp.trials) == 2:
        return [(vp.width * 0.27, vp.height * 0.52, 38.0), (vp.width * 0.73, vp.height * 0.52, 38.0)]
    return [(vp.width * 0.5, vp.height * 0.53, 0.19 * vp.height)]


def write_video(vp: VideoPlan, out: Path, states: list[dict[str, np.ndarray]], events: list[np.ndarray],
                bg: np.ndarray) -> None:
    """Draw every frame, write the visible faces' aligned crops as jpgs and mux frames and audio into the mp4.

    x264 runs single-threaded with fixed settings, so the same frames give the same bytes (package docstring)."""
    import av

    n, fps = vp.n_frames, float(vp.fps)
    video_path = out / VIDEOS_DIR / f"{vp.name}.mp4"
    face_dirs = [out / FACES_DIR / tp.name for tp in vp.trials]
    for d in face_dirs:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    audio44 = upsample2(vp.speech["track"])
    n_audio = int(round(n / fps * AUDIO_RATE))
    audio44 = np.pad(audio44, (0, max(0, n_audio - len(audio44))))[:n_audio]
    crops_smooth = [(ema(s["cx"], 0.6), ema(s["cy"], 0.6), ema(s["roll"], 0.85)) for s in states]
    with atomic_path(video_path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as c:
            vs = c.add_stream("libx264", rate=vp.fps)
            vs.width, vs.height, vs.pix_fmt = vp.width, vp.height, "yuv420p"
            vs.options = {"preset": "veryfast", "crf": "21", "threads": "1"}
            vs.codec_context.thread_count = 1
            aus = c.add_stream("aac", rate=AUDIO_RATE)
            aus.layout = "mono"
            aus.options = {"b": "96k"}
            apos = 0
            for k in range(n):
                img = bg.copy()
                for j, tp in enumerate(vp.trials):
                    st = {key: float(v[k]) for key, v in states[j].items()}
                    draw_face(img, st, tp.identity, {0: "face", 1: "away", 2: "occluded"}[int(events[j][k])])
                for j in range(len(vp.trials)):
                    if not events[j][k]:  # no face found → no jpg (as in Aff-Wild2)
                        sx, sy, sr = crops_smooth[j]
                        _write_crop(img, sx[k], sy[k], states[j]["r"][k], 0.7 * sr[k], face_dirs[j] / face_file(k))
                frame = av.VideoFrame.from_ndarray(img, format="bgr24")
                frame.pts = k
                frame.time_base = 1 / vp.fps
                for pkt in vs.encode(frame):
                    c.mux(pkt)
                apos = _mux_audio(c, aus, audio44, apos, int(round((k + 1) / fps * AUDIO_RATE)), last=k == n - 1)
            for pkt in vs.encode(None):
                c.mux(pkt)
            for pkt in aus.encode(None):
                c.mux(pkt)


def _write_crop(img: np.ndarray, cx: float, cy: float, r: float, roll: float, path: Path) -> None:
    """The aligned 112 x 112 crop around (cx, cy) as a JPEG (quality 92), as the organisers' aligner gives."""
    import cv2

    A = crop_affine(cx, cy, r, roll)
    crop = cv2.warpAffine(img, A, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:  # pragma: no cover - OpenCV without JPEG support
        raise RjcmaError("OpenCV could not encode a JPEG; reinstall opencv-python-headless")
    path.write_bytes(buf.tobytes())


def _mux_audio(c: Any, aus: Any, audio44: np.ndarray, apos: int, target: int, last: bool, fsz: int = 1024) -> int:
    """Encode the audio up to sample ``target`` (the end of the current frame) in frames of ``fsz`` samples; the
    last video frame flushes the rest. Returns the new position."""
    import av

    while apos + fsz <= target or (last and apos < len(audio44)):
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
    return apos
