"""The PNG and the offline HTML report of one scored video (`rjcma predict`).

The report is one self-contained file next to the CSV: the video (linked, not copied), the valence and arousal
traces of every person with a cursor that follows playback, click-to-seek on the traces, the valence–arousal
trajectory with the current point, the frames without evidence shaded, and the warnings. It draws with inline SVG
and a few lines of inline JavaScript: no library, no CDN, and a Content-Security-Policy that forbids any request
but the linked video, so it opens offline and nothing leaves the machine.
"""

from __future__ import annotations

import html
import json
import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from rjcma.figures.inference import COLOURS, prediction, spans
from rjcma.figures.style import png_bytes as figure_png
from rjcma.io import atomic_path
from rjcma.preprocess.decode import decode_audio, iter_video, probe

MAX_POINTS = 3000  # points per trace drawn (longer videos are subsampled for drawing; the CSV has every frame)
BROWSER_CODECS = ("h264", "vp8", "vp9", "av1", "theora")  # what Chromium plays in mp4/webm/ogg without plug-ins


def png_bytes(result, dpi: int = 110) -> bytes:
    """The PNG of ``rjcma predict``: :func:`rjcma.figures.inference.prediction` rendered by Agg (no backend is
    selected, so a notebook that scores a video keeps its inline figures)."""
    return figure_png(prediction(result, dpi=dpi))


# ---- HTML -------------------------------------------------------------------------------------------------------------
def _thin(n: int) -> np.ndarray:
    return np.arange(n) if n <= MAX_POINTS else np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(int))


def _num(x: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in x]


def _raw_traces(result, j: int, idx: np.ndarray) -> dict[str, list]:
    """Person ``j``'s raw model output (before smoothing), drawn faintly behind the smoothed traces."""
    raw = getattr(result, "raw", None)
    if not raw:
        return {}
    return {"raw_valence": _num(raw[j][idx, 0]), "raw_arousal": _num(raw[j][idx, 1])}


def report_data(result, html_path: Path, video: Path | None = None) -> dict[str, Any]:
    """What the page draws: subsampled times and traces, spans without evidence, the video's relative link
    (``video``: a browser-playable copy to link instead of the original)."""
    t = np.asarray(result.times, float)
    idx = _thin(len(t))
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.04
    rel = os.path.relpath(Path(video or result.video).resolve(), Path(html_path).resolve().parent)
    s = result.summary
    return {
        "video": quote(Path(rel).as_posix()), "name": Path(result.video).name,
        "duration": float(t[-1] + step) if len(t) else 0.0, "t": _num(t[idx]),
        "people": [{"valence": _num(p[idx, 0]), "arousal": _num(p[idx, 1]), **_raw_traces(result, j, idx),
                    "blind": spans(~(result.faces[j] | result.speech), t), "noface": spans(~result.faces[j], t)}
                   for j, p in enumerate(result.preds)],
        "playable": video is not None or (s.get("codec") or "") in BROWSER_CODECS,
        "codec": s.get("codec"),
    }


_CSS = """body{font:14px system-ui,sans-serif;margin:1.2em;max-width:1100px;color:#222}
video{max-width:100%;max-height:360px;background:#000}svg{display:block;margin:.3em 0}
.trace{cursor:crosshair;border:1px solid #ccc}.warn{color:#8a5300}.note{color:#555;font-size:12px}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}"""

_JS = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const W = 760, H = 120, VA = 260;
const video = document.getElementById('video');
const state = {t: 0};
const svgNS = 'http://www.w3.org/2000/svg';
function el(tag, attrs, parent) {
  const e = document.createElementNS(svgNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
const X = t => D.duration > 0 ? t / D.duration * W : 0;
const Y = v => (1 - v) / 2 * H;
function path(ts, vs, fx, fy) {
  let d = '', pen = false;
  for (let i = 0; i < ts.length; i++) {
    if (vs[i] === null || (Array.isArray(ts) && ts[i] === null)) { pen = false; continue; }
    d += (pen ? 'L' : 'M') + fx(i).toFixed(1) + ' ' + fy(i).toFixed(1) + ' ';
    pen = true;
  }
  return d;
}
const cursors = [], dots = [];
D.people.forEach((p, j) => {
  const box = document.getElementById('traces');
  const h = document.createElement('div');
  h.textContent = 'person ' + j;
  box.appendChild(h);
  const s = el('svg', {width: W, height: H, class: 'trace', id: 'trace' + j});
  box.appendChild(s);
  p.noface.forEach(([a, b]) => el('rect', {x: X(a), y: 0, width: Math.max(1, X(b) - X(a)), height: H, fill: '#f0f0f0'}, s));
  p.blind.forEach(([a, b]) => el('rect', {x: X(a), y: 0, width: Math.max(1, X(b) - X(a)), height: H, fill: '#d9d9d9', class: 'blind'}, s));
  el('line', {x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: '#999', 'stroke-width': 0.5}, s);
  [['raw_valence', '#1f77b4'], ['raw_arousal', '#d62728']].forEach(([k, c]) => { if (p[k]) el('path',
    {d: path(D.t, p[k], i => X(D.t[i]), i => Y(p[k][i])), stroke: c, fill: 'none', 'stroke-opacity': 0.3, class: 'raw'}, s); });
  el('path', {d: path(D.t, p.valence, i => X(D.t[i]), i => Y(p.valence[i])), stroke: '#1f77b4', fill: 'none'}, s);
  el('path', {d: path(D.t, p.arousal, i => X(D.t[i]), i => Y(p.arousal[i])), stroke: '#d62728', fill: 'none'}, s);
  cursors.push(el('line', {x1: 0, x2: 0, y1: 0, y2: H, stroke: '#000', 'stroke-width': 1.5, class: 'cursor'}, s));
  s.addEventListener('click', ev => {
    const r = s.getBoundingClientRect();
    seek((ev.clientX - r.left) / r.width * D.duration);
  });
});
const va = document.getElementById('va');
el('line', {x1: 0, x2: VA, y1: VA / 2, y2: VA / 2, stroke: '#999', 'stroke-width': 0.5}, va);
el('line', {x1: VA / 2, x2: VA / 2, y1: 0, y2: VA, stroke: '#999', 'stroke-width': 0.5}, va);
const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2'];
D.people.forEach((p, j) => {
  const c = colours[j % colours.length];
  el('path', {d: path(D.t, p.valence.map((v, i) => v === null || p.arousal[i] === null ? null : v),
              i => (p.valence[i] + 1) / 2 * VA, i => (1 - p.arousal[i]) / 2 * VA),
              stroke: c, fill: 'none', 'stroke-opacity': 0.6}, va);
  dots.push(el('circle', {r: 5, cx: VA / 2, cy: VA / 2, fill: c, stroke: '#000', visibility: 'hidden'}, va));
});
function index(t) {
  let lo = 0, hi = D.t.length - 1;
  while (lo < hi) { const m = (lo + hi + 1) >> 1; if (D.t[m] <= t) lo = m; else hi = m - 1; }
  return lo;
}
function draw(t) {
  state.t = t;
  cursors.forEach(c => { c.setAttribute('x1', X(t)); c.setAttribute('x2', X(t)); });
  const i = index(t);
  D.people.forEach((p, j) => {
    const v = p.valence[i], a = p.arousal[i];
    dots[j].setAttribute('visibility', v === null || a === null ? 'hidden' : 'visible');
    if (v !== null && a !== null) { dots[j].setAttribute('cx', (v + 1) / 2 * VA); dots[j].setAttribute('cy', (1 - a) / 2 * VA); }
  });
  document.getElementById('now').textContent = t.toFixed(2) + ' s';
}
function seek(t) {
  t = Math.max(0, Math.min(D.duration, t));
  try { video.currentTime = t; } catch (e) {}
  draw(t);
}
function follow() { draw(video.currentTime); if (!video.paused && !video.ended) requestAnimationFrame(follow); }
video.addEventListener('play', () => requestAnimationFrame(follow));
video.addEventListener('seeked', () => draw(video.currentTime));
video.addEventListener('timeupdate', () => draw(video.currentTime));
window.rjcmaReport = {seek: seek, time: () => state.t, duration: D.duration};
draw(0);
"""


def html_report(result, html_path: str | Path, video: str | Path | None = None) -> str:
    """The report page of ``result`` as it will be written to ``html_path`` (the video, or the browser-playable copy
    ``video``, is linked relative to it)."""
    d = report_data(result, Path(html_path), Path(video) if video else None)
    s = result.summary
    warn = "".join(f"<li class=warn>{html.escape(w)}</li>" for w in result.warnings) or "<li>none</li>"
    rows = "".join(
        f"<tr><td>{p['person']}</td><td>{p['face_frames']}</td><td>{p['no_evidence_frames']}</td>"
        f"<td>{_fmt(p['valence']['mean'])}</td><td>{_fmt(p['arousal']['mean'])}</td></tr>" for p in s["people"])
    note = "" if video is None else (
        f"<p class=note>Browsers do not play {html.escape(str(d['codec']))} video: the player shows a reduced "
        f"H.264 copy (<code>{html.escape(Path(video).name)}</code>) of <code>{html.escape(d['name'])}</code>.</p>")
    data = json.dumps(d).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; media-src 'self' file: blob:; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{html.escape(d['name'])}: valence and arousal</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(d['name'])}</h1>
<p class=note>{s['frames']} frames, {s['duration_s']:.2f} s, {s['persons']} person(s); model {html.escape(str(s['model']['fusion']))}
 ({html.escape(', '.join(s['model']['modalities']))}) from <code>{html.escape(str(s['checkpoint']))}</code>.
 Click a trace to jump there; the black line follows the video. Dark grey: neither a face nor sound (no value
 {'filled in' if s.get('fill') else 'written'}); light grey: no face.</p>
{note}
<video id="video" src="{html.escape(d['video'])}" controls preload="metadata"></video>
<p>time <span id="now">0.00 s</span> · <span style="color:{COLOURS['valence']}">valence</span>
 · <span style="color:{COLOURS['arousal']}">arousal</span>{_smoothing_note(s)}</p>
<div id="traces"></div>
<h2>Valence–arousal trajectory</h2>
<svg id="va" width="260" height="260" style="border:1px solid #ccc"></svg>
<p class=note>horizontal: valence −1 … 1; vertical: arousal −1 (bottom) … 1 (top)</p>
<h2>People</h2>
<table><tr><th>person</th><th>frames with a face</th><th>frames without evidence</th><th>mean valence</th>
<th>mean arousal</th></tr>{rows}</table>
<h2>Warnings</h2><ul>{warn}</ul>
<script id="data" type="application/json">{data}</script>
<script>{_JS}</script>
</body></html>
"""


def _smoothing_note(s: dict) -> str:
    w = (s.get("smoothing") or {}).get("width_s")
    return f" (smoothed over {w:g} s; faint: the model's raw output)" if w else ""


def _fmt(x) -> str:
    return "–" if x is None else f"{x:+.3f}"


def web_copy(video: str | Path, dst: str | Path, max_side: int = 480) -> Path:
    """An H.264 + AAC copy of ``video`` that any browser plays (for codecs it does not, e.g. MPEG-4 Part 2 or MJPEG
    from cameras): upright, at most ``max_side`` pixels, the decoded frames at their own times, 16 kHz mono audio.
    Written atomically."""
    import av  # PyAV: imported where a video is written, as rjcma.preprocess.decode does

    video, dst = Path(video), Path(dst)
    info = probe(video)
    s = min(1.0, max_side / max(info.width, info.height, 1))
    W, H = max(2, int(info.width * s) // 2 * 2), max(2, int(info.height * s) // 2 * 2)
    with atomic_path(dst) as tmp, av.open(str(tmp), "w", format="mp4") as c:
        vs = c.add_stream("libx264", rate=int(round(info.container_fps or 25)))
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 1000)
        vs.options = {"preset": "veryfast", "crf": "26"}
        a = None
        if info.has_audio:  # every stream before the first packet (the header lists them)
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        last = -1
        for t, rgb in iter_video(video):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(W, H)
            pts = max(last + 1, int(round(t * 1000)))
            f.pts, f.time_base, last = pts, Fraction(1, 1000), pts
            for p in vs.encode(f):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if a is not None:
            with warnings.catch_warnings():  # what the decoder skipped is reported with the prediction already
                warnings.simplefilter("ignore")
                pcm = decode_audio(video, 16000)
            for s0 in range(0, len(pcm), 1024):
                af = av.AudioFrame.from_ndarray(pcm[None, s0:s0 + 1024].copy(), format="s16", layout="mono")
                af.sample_rate, af.pts = 16000, s0
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return dst
