"""``rjcma predict`` on the command line: files and folders of videos, resumable, one error line per bad video.

The scoring itself is :func:`rjcma.predict.predict_video`; this module finds the videos, checks the output folder
before any work, skips videos whose outputs are already there (same file, checkpoint and ``--fill``), shows
progress, and reports each failure as one line naming the file.
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
from rjcma.layout import VIDEO_SUFFIXES
from rjcma.predict import predict_video
from rjcma.predict_outputs import output_paths, write_outputs
from rjcma.preprocess.decode import probe


def _short(e: BaseException) -> str:
    """An unexpected error in one line: its type and the start of its message."""
    s = str(e).splitlines()[0][:160] if str(e) else ""
    return f"{type(e).__name__}: {s}" if s else type(e).__name__


def already_scored(video: Path, out_dir: Path, bundle: ModelBundle, fill: bool) -> bool:
    """Whether ``out_dir`` holds this video's complete outputs from this model, video file and ``--fill``."""
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
            and bool(js.get("fill")) == bool(fill))


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


def collect_videos(items: list[str]) -> list[Path]:
    """Video files from paths and folders (folders: every file with a video suffix, recursively, sorted)."""
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if not p.exists():
            raise RjcmaError(f"{p}: not found; give a video file or a folder of videos")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise RjcmaError(f"{p}: no video files ({', '.join(VIDEO_SUFFIXES[:5])}, ...) in this folder")
            out += found
        else:
            out.append(p)
    seen: dict[str, Path] = {}
    for p in out:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise RjcmaError(f"{p}: same name as {seen[p.stem]} (outputs are <stem>.csv); score them into "
                             "different --out folders")
        seen[p.stem] = p
    return list(dict.fromkeys(out))


def predict_many(videos: list[Path], bundle: ModelBundle, out_dir: Path, cfg: Config | None = None, dpi: int = 110,
                 progress: bool = True, debug: bool = False, log=print, fill: bool = False, force: bool = False
                 ) -> tuple[list[Path], dict[str, str], list[Path]]:
    """Score ``videos`` into ``out_dir``: (videos done, {video: error line}, videos skipped as already scored)."""
    done, skipped, failed = [], [], {}
    bar = tqdm(videos, desc="predict", unit="video", disable=not progress, dynamic_ncols=True)
    for v in bar:
        bar.set_postfix_str(v.name[-30:])
        if not force and already_scored(v, out_dir, bundle, fill):
            skipped.append(v)
            continue
        try:
            res = predict_video(v, bundle, cfg, fill=fill, progress=progress)
            write_outputs(res, out_dir, dpi)
            done.append(v)
            for w in res.warnings:
                log(f"warning: {w}")
        except RjcmaError as e:
            if debug or len(videos) == 1:
                raise
            failed[str(v)] = str(e)
        except Exception as e:  # noqa: BLE001 - any other failure of one video: one line, naming it
            if debug:
                raise
            err = RjcmaError(f"{v}: could not be scored ({_short(e)}); rerun with --debug for the details")
            if len(videos) == 1:
                raise err from e
            failed[str(v)] = str(err)
    bar.close()
    return done, failed, skipped


# ---- CLI ------------------------------------------------------------------------------------------------------------
def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s) or folder(s) of videos")
    p.add_argument("--checkpoint", default=None,
                   help="result folder (or its model.safetensors) of `rjcma train`/`rjcma cv`; default: the model "
                        "`make book` trains")
    p.add_argument("--out", required=True, help="output folder for <stem>.csv, .png, .json and .html")
    config_options(p, profile_help="config profile (locates the default checkpoint)")
    p.add_argument("--fill", action="store_true",
                   help="write the model's output also for frames with neither a face nor sound (default: empty)")
    p.add_argument("--force", action="store_true", help="score again videos whose outputs are already in --out")
    p.add_argument("--dpi", type=int, default=None, help="figure resolution (default: book.figure_dpi)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_predict(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    try:
        cfg = load_config(args.profile, args.set)
    except RjcmaError:  # the overrides are meant for the checkpoint's config (checked there, naming the file)
        cfg = load_config(args.profile)
    videos = collect_videos(args.videos)
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
                                         log=lambda s: print(s, file=sys.stderr), fill=args.fill, force=args.force)
    for v in done:
        print(f"{v} -> {out / (v.stem + '.csv')}")
    if skipped:
        print(f"{len(skipped)} video(s) already scored in {out} (--force scores them again)")
    for msg in failed.values():
        print(f"rjcma predict: error: {msg}", file=sys.stderr)
    if failed:
        print(f"rjcma predict: {len(failed)} of {len(videos)} video(s) failed; the others are in {out}",
              file=sys.stderr)
        return 2
    return 0
