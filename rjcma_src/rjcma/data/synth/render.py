"""Drawing the faces: background, the parametric face (valence: mouth and brows; arousal: eyes, brows, head motion),
the aligned 112 x 112 crop, face events (turned away, occluded) and the per-frame face states of a trial."""

from __future__ import annotations

import math

import numpy as np

from rjcma.data.synth.design import Identity, TrialPlan, VideoPlan, at_time, smooth_process
from rjcma.layout import CROP


def background(vp: VideoPlan, rng: np.random.Generator) -> np.ndarray:
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


def crop_affine(cx: float, cy: float, r: float, roll: float) -> np.ndarray:
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
