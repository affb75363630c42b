"""The offline HTML report of `rjcma predict` (rjcma.report): drawn from a result made here, opened in headless
Chromium (Debian's `/usr/bin/chromium` through Playwright, as tests/test_browser.py): clicking a trace seeks the
video and moves the cursor, playback moves it too, and no request leaves the machine."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def _video(path: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 128, 96, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.full((96, 128, 3), (5 * i) % 255, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def _result(video: Path, n: int = 100, fps: float = 25.0):
    from rjcma.predict_outputs import PredictionResult

    t = np.arange(n) / fps
    faces = [np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)], np.ones(n, bool)]
    speech = np.zeros(n, bool)
    speech[60:70] = True
    preds = []
    for j, f in enumerate(faces):
        p = np.stack([np.sin(t + j), np.cos(t) * 0.5], 1).astype(np.float32)
        p[~(f | speech)] = np.nan
        preds.append(p)
    summary = {"frames": n, "duration_s": n / fps, "persons": 2, "codec": "h264", "fill": False,
               "checkpoint": "run", "model": {"fusion": "rjcma", "modalities": ["visual", "audio", "text"]},
               "people": [{"person": j, "face_frames": int(f.sum()), "no_evidence_frames": int((~(f | speech)).sum()),
                           "valence": {"mean": float(np.nanmean(preds[j][:, 0]))},
                           "arousal": {"mean": float(np.nanmean(preds[j][:, 1]))}} for j, f in enumerate(faces)]}
    return PredictionResult(video, t, preds, faces, speech, [], summary, ["a warning <with> markup"])


def test_report_is_one_offline_file(tmp_path):
    from rjcma.figures.inference import spans
    from rjcma.report import html_report, png_bytes

    video = _video(tmp_path / "clip.mp4")
    res = _result(video)
    page = html_report(res, tmp_path / "out" / "clip.html")
    code = page.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a link
    assert "http://" not in code and "https://" not in code and "//cdn" not in code  # no CDN, no external link
    assert 'src="../clip.mp4"' in page  # linked relative to the report, not copied or re-encoded
    assert "a warning &lt;with&gt; markup" in page
    assert "default-src 'none'" in page
    assert png_bytes(res)[:8] == b"\x89PNG\r\n\x1a\n"
    assert spans(np.array([0, 1, 1, 0, 1], bool), np.arange(5) * 1.0) == [(1.0, 3.0), (4.0, 5.0)]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_in_chromium_seeks_and_follows_playback(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    from rjcma.report import html_report

    video = _video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    html = out / "clip.html"
    html.write_text(html_report(_result(video), html))
    requests: list[str] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.goto(html.as_uri(), wait_until="load")
            cursor = page.locator("#trace1 .cursor")
            assert float(cursor.get_attribute("x1")) == 0.0
            assert page.locator("#trace0 .blind").count() >= 1  # the span without evidence is marked
            box = page.locator("#trace1").bounding_box()
            page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
            t = page.evaluate("() => window.rjcmaReport.time()")
            assert t == pytest.approx(0.75 * 4.0, abs=0.05)
            assert float(cursor.get_attribute("x1")) == pytest.approx(0.75 * 760, abs=5)
            playable = page.evaluate("() => document.getElementById('video').canPlayType('video/mp4; codecs=\"avc1.42E01E\"')")
            print("chromium plays H.264:", bool(playable))
            if playable:  # this chromium plays H.264: the video itself was sought, and playback moves the cursor
                page.wait_for_function("() => document.getElementById('video').readyState >= 1", timeout=20000)
                page.wait_for_function("() => Math.abs(document.getElementById('video').currentTime - 3.0) < 0.1",
                                       timeout=20000)
                page.evaluate("() => { const v = document.getElementById('video'); v.muted = true;"
                              " v.currentTime = 0.5; return v.play(); }")
                page.wait_for_function("() => window.rjcmaReport.time() > 0.7", timeout=20000)
                page.evaluate("() => document.getElementById('video').pause()")
                assert 0.0 < float(cursor.get_attribute("x1")) < 0.75 * 760
        finally:
            browser.close()
    assert not errors, errors
    assert requests and all(u.startswith("file://") for u in requests), requests


def test_smoothed_result_shows_the_raw_output_too(tmp_path):
    """A smoothed prediction: the PNG and the report draw the model's raw output faintly behind it, and say the
    width; an unsmoothed one draws one trace per target."""
    import json
    from dataclasses import replace

    from rjcma.figures.inference import prediction
    from rjcma.report import html_report
    from rjcma.train.smoothing import smooth

    res = _result(_video(tmp_path / "clip.mp4"))
    rng = np.random.default_rng(0)
    raw = [p + 0.2 * rng.standard_normal(p.shape).astype(np.float32) for p in res.preds]
    smoothed = replace(res, preds=[smooth(r, 9) for r in raw], raw=raw,
                       summary={**res.summary, "smoothing": {"width_s": 0.36, "width_frames": 9}})
    labels = [ln.get_label() for ax in prediction(smoothed).axes for ln in ax.get_lines()]
    assert sum("raw model output" in s for s in labels) == 4  # valence and arousal of each of the two people
    assert not any("raw model output" in s for ax in prediction(res).axes for s in
                   (ln.get_label() for ln in ax.get_lines()))
    page = html_report(smoothed, tmp_path / "clip.html")
    data = json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
    assert len(data["people"][0]["raw_valence"]) == len(data["t"]) and "smoothed over 0.36 s" in page
    assert "raw_valence" not in json.loads(html_report(res, tmp_path / "c.html").split(
        '<script id="data" type="application/json">')[1].split("</script>")[0])["people"][0]
