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

from rjcma import __version__
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
    raw: list[np.ndarray] | None = None  # per person (N, 2): the model's output before smoothing (None: not kept)

    @property
    def stem(self) -> str:
        return self.video.stem

    def columns(self) -> dict[str, np.ndarray]:
        """The CSV's columns, rows frame by frame and person by person within a frame."""
        n, m = len(self.times), len(self.preds)
        preds = np.stack(self.preds, 1).reshape(n * m, 2) if n else np.zeros((0, 2), np.float32)
        return {"frame": np.repeat(np.arange(n), m), "time_s": np.repeat(np.asarray(self.times, np.float64), m),
                "person": np.tile(np.arange(m), n), "valence": preds[:, 0], "arousal": preds[:, 1],
                "face": np.stack(self.faces, 1).reshape(-1).astype(np.int64) if n else np.zeros(0, np.int64),
                "speech": np.repeat(np.asarray(self.speech, np.int64), m)}

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


def _stats(x: np.ndarray) -> dict[str, float | None]:
    if np.isnan(x).all():
        return {"mean": None, "std": None, "min": None, "max": None}
    return {k: float(f(x)) for k, f in (("mean", np.nanmean), ("std", np.nanstd), ("min", np.nanmin),
                                         ("max", np.nanmax))}


def _truncated(counts) -> dict[str, Any] | None:
    """Where a stream that ends early stops, against what its container declares (None: it does not)."""
    if not counts.truncated:
        return None
    return {"stream": counts.stream, "decoded_s": round(counts.decoded_seconds, 3),
            "declared_s": round(counts.declared_seconds, 3), "decoded_frames": counts.frames,
            "declared_frames": counts.declared_frames or None,
            "missing_fraction": round(1.0 - counts.decoded_seconds / counts.declared_seconds, 4)}


def summary(r, face_sets, speech, preds, blind, fill, extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON of one scored video from its route ``r`` (:class:`rjcma.scoring.VideoRoute`): the file and what
    was decoded of it against what its container declares, the people, the evidence, what ran, the warnings and
    the seconds per stage. ``extra``: the smoothing, the row rate of a file without video, the model's windows."""
    b, path, times, mcfg = r.b, r.video, r.times, r.b.cfg
    n, words = len(times), r.word_list
    return {
        "video": str(path), "size_bytes": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "frames": n,
        "duration_s": round(r.duration, 4),
        "mean_fps": round((n - 1) / float(times[-1]), 4) if n > 1 and times[-1] > 0 else None,
        "row_fps": extra["row_fps"], **r.info.summary(),
        "decode": {"video": r.vcounts.as_dict(), "audio": r.acounts.as_dict()},
        "truncated": _truncated(r.vcounts) or _truncated(r.acounts),
        "face_detector": r.detector, "face_detection": r.fd, "persons": len(face_sets),
        "faces_found": int(sum(int(m.sum()) for m in face_sets)),
        "faces_fraction": round(float(np.mean([m.mean() for m in face_sets])), 4) if n else 0.0,
        "speech_fraction": round(float(speech.mean()), 4) if n else 0.0,
        "words": len(words), "transcript": " ".join(getattr(w, "text", str(w)) for w in words)[:2000],
        "asr": r.asr_info, "encoders": b.encoder_info, "encoder_precision": b.precision if r.cached else "fp32",
        "store_precision": b.store_precision,
        "checkpoint": str(b.checkpoint), "config_hash": b.config_hash, "fill": bool(fill),
        "smoothing": extra["smoothing"],
        "model": {"fusion": mcfg.model.fusion, "modalities": list(b.modalities), "targets": b.targets, "K": b.K,
                  "stride": int(mcfg.data.stride), "windows": extra["windows"], "mode": mcfg.train.mode},
        "people": [{"person": j, "face_frames": int(m.sum()), "no_evidence_frames": blind[j],
                    "valence": _stats(preds[j][:, 0]), "arousal": _stats(preds[j][:, 1])}
                   for j, m in enumerate(face_sets)],
        "valence": _stats(preds[0][:, 0]), "arousal": _stats(preds[0][:, 1]),
        "warnings": r.notes, "seconds": {k: round(v, 3) for k, v in r.secs.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in r.cpu.items()}, "rjcma_version": __version__,
    }


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
