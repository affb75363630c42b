"""What `rjcma predict` writes for one video: the per-frame, per-person result and its four files, all or none.

:class:`PredictionResult` holds the predictions (NaN where there was no evidence, unless filled), the evidence
flags and the summary; :func:`write_outputs` writes ``<stem>.csv`` (``frame,time_s,person,valence,arousal,face,
speech``), ``.png``, ``.json`` and ``.html`` (the offline report, :mod:`rjcma.report`), each atomically, removing
those it wrote when one fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.io import atomic_write_bytes
from rjcma.report import BROWSER_CODECS, html_report, png_bytes, web_copy

OUTPUTS = ("csv", "png", "json", "html")


@dataclass
class PredictionResult:
    """Per-frame, per-person predictions of one video and what produced them."""

    video: Path
    times: np.ndarray  # (N,) s, presentation time of each decoded frame
    preds: list[np.ndarray]  # per person (N, 2) [valence, arousal]; NaN where no evidence (unless filled)
    faces: list[np.ndarray]  # per person (N,) bool
    speech: np.ndarray  # (N,) bool, shared
    words: list
    summary: dict[str, Any]
    warnings: list[str]

    @property
    def stem(self) -> str:
        return self.video.stem

    def csv_text(self) -> str:
        lines = ["frame,time_s,person,valence,arousal,face,speech"]
        f = lambda x: "" if np.isnan(x) else f"{x:.6f}"  # noqa: E731
        for k in range(len(self.times)):
            for p, pred in enumerate(self.preds):
                lines.append(f"{k},{self.times[k]:.4f},{p},{f(pred[k, 0])},{f(pred[k, 1])},{int(self.faces[p][k])},"
                             f"{int(self.speech[k])}")
        return "\n".join(lines) + "\n"

    def json_text(self) -> str:
        return json.dumps(self.summary, indent=2, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    return o.tolist() if isinstance(o, np.ndarray) else str(o)


def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    return {k: Path(out_dir) / f"{stem}.{k}" for k in OUTPUTS}


def write_outputs(result: PredictionResult, out_dir: str | Path, dpi: int = 110) -> dict[str, Path]:
    """``<stem>.csv/.png/.json/.html`` in ``out_dir``, all or none: each is written atomically (rjcma.io) and, if
    any write fails, the files of this video written by this call are removed again."""
    paths = output_paths(Path(out_dir), result.stem)
    existed = {k: p.exists() for k, p in paths.items()}
    written: list[str] = []
    web = None
    if result.summary.get("has_video") and result.summary.get("codec") not in BROWSER_CODECS:
        paths["web"] = web = Path(out_dir) / f"{result.stem}.web.mp4"  # a copy the report's player can play
        existed["web"] = web.exists()
    blobs = {"csv": result.csv_text().encode(), "png": png_bytes(result, dpi), "json": result.json_text().encode(),
             "html": html_report(result, paths["html"], web).encode()}
    try:
        if web is not None:
            web_copy(result.video, web)
            written.append("web")
        for k in OUTPUTS:
            atomic_write_bytes(paths[k], blobs[k])
            written.append(k)
    except BaseException:
        for k in written:
            if not existed[k]:
                paths[k].unlink(missing_ok=True)
        raise
    return paths
