"""``rjcma predict`` on the command line: files and folders of videos (and sound files), resumable, one error line
per bad file.

The scoring itself is :func:`rjcma.scoring.predict_video`; this module finds the files (in a folder: every video and
sound file, :data:`rjcma.layout.VIDEO_SUFFIXES` and :data:`~rjcma.layout.AUDIO_SUFFIXES`), checks the output folder
before any work, skips files whose outputs are already there (same file, checkpoint, ``--fill``, smoothing and row
rate), shows progress, prints each failure as one line naming the file when it happens, and closes with a summary:
how many were scored, skipped as done and failed, and every file of a folder it did not score, with why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from tqdm.auto import tqdm

from rjcma.bundle import ModelBundle, load_bundle
from rjcma.cli.options import config_options
from rjcma.config import Config, load_config
from rjcma.errors import RjcmaError
from rjcma.layout import AUDIO_SUFFIXES, VIDEO_SUFFIXES
from rjcma.predict_outputs import output_paths, write_outputs
from rjcma.preprocess.decode import plain, probe
from rjcma.scoring import AUDIO_ONLY_FPS, predict_video
from rjcma.train.smoothing import WIDTH_S

MEDIA_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES


def _short(e: BaseException) -> str:
    """An unexpected error in one line: its type and the start of its message, without library internals."""
    s = plain(e)
    return f"{type(e).__name__}: {s}" if s and s != type(e).__name__ else type(e).__name__


def already_scored(video: Path, out_dir: Path, bundle: ModelBundle, fill: bool, smooth: bool = True,
                   fps: float | None = None) -> bool:
    """Whether ``out_dir`` holds this video's complete outputs from this model, video file, ``--fill``,
    smoothing and row rate."""
    paths = output_paths(out_dir, video.stem)
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        js = json.loads(paths["json"].read_text())
        st = video.stat()
    except (OSError, ValueError):
        return False
    return (js.get("size_bytes") == st.st_size and js.get("mtime_ns") == st.st_mtime_ns
            and js.get("config_hash") == bundle.config_hash and js.get("checkpoint") == str(bundle.checkpoint)
            and bool(js.get("fill")) == bool(fill)
            and (js.get("smoothing") or {}).get("width_s") == (WIDTH_S if smooth else 0.0)
            and js.get("row_fps") in (None, float(fps or AUDIO_ONLY_FPS)))


def check_video_file(path: Path) -> None:
    """Cheap checks before decoding: exists, is a file, not empty."""
    if not path.exists():
        raise RjcmaError(f"{path}: not found; give a video file or a folder of videos")
    if not path.is_file():
        raise RjcmaError(f"{path}: not a regular file; give a video file or a folder of videos")
    if path.stat().st_size == 0:
        raise RjcmaError(f"{path}: empty file (0 bytes); copy the video again")


def check_output_dir(out: Path) -> None:
    """Create ``out`` and make sure files can be written there (before any work is done)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RjcmaError(f"{out}: cannot create the output folder ({e.strerror}); choose a writable --out") from e
    if not out.is_dir():
        raise RjcmaError(f"{out}: exists and is not a folder; choose another --out")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rjcma-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise RjcmaError(f"{out}: cannot write here ({e.strerror}); choose a writable --out") from e


def collect_videos(items: list[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(the video and sound files of ``items``, the files of its folders that are neither, with why). A folder gives
    every file with a video or sound suffix, recursively, sorted; a file named alone is taken whatever its suffix."""
    out: list[Path] = []
    passed: list[tuple[Path, str]] = []
    for it in items:
        p = Path(it)
        if not p.exists():
            raise RjcmaError(f"{p}: not found; give a video file or a folder of videos")
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
            found = [q for q in files if q.suffix.lower() in MEDIA_SUFFIXES]
            passed += [(q, f"not a video or sound file (suffix '{q.suffix or 'none'}')") for q in files
                       if q.suffix.lower() not in MEDIA_SUFFIXES]
            if not found:
                raise RjcmaError(f"{p}: no video or sound files ({', '.join(VIDEO_SUFFIXES[:4])}, "
                                 f"{', '.join(AUDIO_SUFFIXES[:3])}, ...) in this folder")
            out += found
        else:
            out.append(p)
    seen: dict[str, Path] = {}
    for p in out:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise RjcmaError(f"{p}: same name as {seen[p.stem]} (outputs are <stem>.csv); score them into "
                             "different --out folders")
        seen[p.stem] = p
    return list(dict.fromkeys(out)), passed


def predict_many(videos: list[Path], bundle: ModelBundle, out_dir: Path, cfg: Config | None = None, dpi: int = 110,
                 progress: bool = True, debug: bool = False, log=print, fill: bool = False, force: bool = False,
                 smooth: bool = True, fps: float | None = None) -> tuple[list[Path], dict[str, str], list[Path]]:
    """Score ``videos`` into ``out_dir``: (files done, {file: error line}, files skipped as already scored). Each
    warning and each error is passed to ``log`` when it happens."""
    done, skipped, failed = [], [], {}
    bar = tqdm(videos, desc="predict", unit="file", disable=not progress, dynamic_ncols=True)
    for v in bar:
        bar.set_postfix_str(v.name[-30:])
        if not force and already_scored(v, out_dir, bundle, fill, smooth, fps):
            skipped.append(v)
            continue
        try:
            res = predict_video(v, bundle, cfg, fill=fill, progress=progress, smooth_output=smooth, fps=fps)
            write_outputs(res, out_dir, dpi)
            done.append(v)
            for w in res.warnings:
                log(f"warning: {w}")
        except RjcmaError as e:
            if debug or len(videos) == 1:
                raise
            failed[str(v)] = str(e)
            log(f"rjcma predict: error: {e}")
        except Exception as e:  # noqa: BLE001 - any other failure of one video: one line, naming it
            if debug:
                raise
            err = RjcmaError(f"{v}: could not be scored ({_short(e)}); rerun with --debug for the details")
            if len(videos) == 1:
                raise err from e
            failed[str(v)] = str(err)
            log(f"rjcma predict: error: {err}")
    bar.close()
    return done, failed, skipped


# ---- CLI ------------------------------------------------------------------------------------------------------------
def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help="video or sound file(s), or folder(s) of them (every video and sound file inside is scored)")
    p.add_argument("--checkpoint", default=None,
                   help="result folder (or its model.safetensors) of `rjcma train`/`rjcma cv`; default: the model "
                        "`make book` trains")
    p.add_argument("--out", required=True, help="output folder for <stem>.csv, .png, .json and .html")
    config_options(p, profile_help="config profile (locates the default checkpoint)")
    p.add_argument("--fill", action="store_true",
                   help="write the model's output also for frames with neither a face nor sound (default: empty)")
    p.add_argument("--force", action="store_true", help="score again videos whose outputs are already in --out")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True,
                   help=f"filter the output over {WIDTH_S:g} s, as smooth as the labels (--no-smooth: the raw model "
                        "output; the width was chosen on validation data)")
    p.add_argument("--fps", type=float, default=None,
                   help="rows a second for a file without video (default 30, Aff-Wild2's annotation rate)")
    p.add_argument("--dpi", type=int, default=None, help="figure resolution (default: book.figure_dpi)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_predict(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    try:
        cfg = load_config(args.profile, args.set)
    except RjcmaError:  # the overrides are meant for the checkpoint's config (checked there, naming the file)
        cfg = load_config(args.profile)
    videos, passed = collect_videos(args.videos)
    if args.fps is not None and not args.fps > 0:
        raise RjcmaError(f"--fps {args.fps:g}: give a positive number of rows a second")
    for v in videos:  # cheap checks first: a typo fails before the model loads
        check_video_file(v)
    if len(videos) == 1:
        probe(videos[0])  # not a video / unreadable codec: say so before loading the model
    out = Path(args.out)
    check_output_dir(out)
    try:
        bundle = load_bundle(args.checkpoint, args.set, cfg=cfg)
    except RjcmaError:
        raise
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        raise RjcmaError(f"{args.checkpoint or 'default checkpoint'}: could not be loaded ({_short(e)}); "
                         "rerun with --debug for the details") from e
    dpi = args.dpi or int(cfg.book.figure_dpi)
    done, failed, skipped = predict_many(videos, bundle, out, None, dpi=dpi, progress=not args.quiet, debug=debug,
                                         log=lambda s: print(s, file=sys.stderr), fill=args.fill, force=args.force,
                                         smooth=args.smooth, fps=args.fps)
    for v in done:
        print(f"{v} -> {out / (v.stem + '.csv')}")
    if len(videos) + len(passed) > 1:
        _closing_summary(videos, done, skipped, failed, passed, out)
    return 2 if failed else 0


def _closing_summary(videos, done, skipped, failed, passed, out: Path) -> None:
    """How many files were scored, skipped as done and failed; every file not scored, with why (stderr)."""
    err = lambda s: print(s, file=sys.stderr)  # noqa: E731
    print(f"rjcma predict: {len(done)} scored, {len(skipped)} already scored in {out} (--force scores them again), "
          f"{len(failed)} failed, {len(passed)} passed over")
    for v in skipped:
        print(f"  skipped: {v}: already scored")
    for msg in failed.values():
        err(f"  failed: {msg}")
    for p, why in passed:
        err(f"  passed over: {p}: {why}")
    if failed:
        err(f"rjcma predict: {len(failed)} of {len(videos)} file(s) failed; the others are in {out}")
