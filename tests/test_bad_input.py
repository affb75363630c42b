"""Bad input for `rjcma predict` (and the corpus reader): every row of book/_generated/bad_input_table.md is a test here.

An error is one line naming the file and what to do, a non-zero exit, no traceback unless --debug, and nothing
half-written in --out. Odd but usable videos (no audio track, silence, no face, a face in some frames, variable
frame rate, under a second) are scored, with a warning where the table says so. The videos are made here with PyAV
(small frames, a second or two) from the tiny demo corpus, so the whole file runs in well under a minute and a half
once the session's tiny store exists.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from media import source, write_media

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "book" / "_generated" / "bad_input_table.md"


# ---- fixtures ----------------------------------------------------------------------------------------------------
_MODEL: dict[str, Path] = {}  # trained once per session: test_predict_real uses the same model


@pytest.fixture(scope="module")
def ckpt(tiny_cfg, tiny_store, tmp_path_factory) -> Path:
    """A 1-epoch tiny model trained on the tiny store (K = 32), in its own result folder (tests that alter a
    checkpoint alter a copy)."""
    from rjcma.train.loop import train_one

    if "run" not in _MODEL:
        run = tmp_path_factory.mktemp("bad_input_model") / "run"
        train_one(tiny_cfg.replace(max_epochs=1, early_stop=1), run_dir=run, progress=False, log=lambda *a: None)
        assert (run / "model.safetensors").is_file() and (run / "model.json").is_file()
        _MODEL["run"] = run
    return _MODEL["run"]


@pytest.fixture(scope="module")
def videos(tiny_corpus, tmp_path_factory) -> dict[str, Path]:
    """The odd-but-usable videos of the table, one per case, in one folder."""
    d = tmp_path_factory.mktemp("odd_videos")
    frames, speech, fps = source(tiny_corpus)
    n = len(frames)
    rng = np.random.default_rng(0)
    grey = np.full_like(frames, 128)
    noise = rng.integers(90, 160, frames.shape, dtype=np.uint8)
    half = frames.copy()
    half[n // 2:] = grey[n // 2:]
    t = np.cumsum(np.r_[0.0, np.where(np.arange(n - 1) % 3 == 0, 0.08, 0.03)])  # gaps of 30 and 80 ms
    out = {
        "no_audio": write_media(d / "no_audio.mp4", frames, fps),
        "silence": write_media(d / "silence.mp4", frames, fps, [np.zeros_like(speech)], tail=True),
        "no_face": write_media(d / "no_face.mp4", noise, fps, [speech], tail=True),
        "some_faces": write_media(d / "some_faces.mp4", half, fps, [speech], tail=True),
        "vfr": write_media(d / "vfr.mkv", frames, fps, [speech], times=t, tail=True),
        "short": write_media(d / "short.mp4", frames[:12], fps, [speech[: int(12 / fps * 16000)]], tail=True),
    }
    return out


def predict(args: list[str], capsys) -> tuple[int, str, str]:
    """`rjcma predict ...` in-process through the CLI entry point: (exit code, stdout, stderr)."""
    from rjcma.cli import main

    capsys.readouterr()
    rc = main(["predict", "--quiet", *[str(a) for a in args]])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def scored(videos, ckpt, tmp_path_factory):
    """All odd videos scored in one call (one model load): the output folder and the command's stderr."""
    from rjcma.cli import main

    out = tmp_path_factory.mktemp("scored")
    folder = next(iter(videos.values())).parent
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["predict", str(folder), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"])
    assert rc == 0, err.getvalue()
    return out, err.getvalue()


def outputs(out: Path, stem: str, person: int | None = 0) -> tuple[np.ndarray, dict]:
    """The CSV rows of one person (None: all rows) and the JSON of a scored video."""
    for ext in ("csv", "png", "json", "html"):
        assert (out / f"{stem}.{ext}").is_file(), f"{stem}.{ext} missing"
    rows = np.atleast_1d(np.genfromtxt(out / f"{stem}.csv", delimiter=",", names=True))
    if person is not None:
        rows = rows[rows["person"] == person]
    return rows, json.loads((out / f"{stem}.json").read_text())


def assert_honest(rows: np.ndarray) -> None:
    """A value exactly where the row has evidence (a face or sound), empty elsewhere."""
    evidence = (rows["face"] == 1) | (rows["speech"] == 1)
    for k in ("valence", "arousal"):
        assert np.isfinite(rows[k][evidence]).all() and np.isnan(rows[k][~evidence]).all()
        assert (np.abs(rows[k][evidence]) <= 1).all()


def assert_one_line_error(rc: int, err: str, must_name: str | Path, out: Path | None = None) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert lines[0].startswith("rjcma predict: error: ")
    assert "Traceback" not in err
    assert str(must_name) in lines[0], lines[0]
    if out is not None:
        assert_nothing_written(out)
    return lines[0]


def assert_nothing_written(out: Path) -> None:
    left = [p.name for p in out.iterdir()] if out.exists() else []
    assert left == [], f"left in --out: {left}"


# ---- 1-5: files that are not (readable) videos -------------------------------------------------------------------
def test_missing_path(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = predict([tmp_path / "nope.mp4", "--checkpoint", ckpt, "--out", out], capsys)
    line = assert_one_line_error(rc, err, tmp_path / "nope.mp4", out)
    assert "not found" in line


def test_empty_file(ckpt, tmp_path, capsys):
    (tmp_path / "empty.mp4").write_bytes(b"")
    out = tmp_path / "out"
    rc, _, err = predict([tmp_path / "empty.mp4", "--checkpoint", ckpt, "--out", out], capsys)
    assert "empty" in assert_one_line_error(rc, err, tmp_path / "empty.mp4", out)


def test_truncated_video(ckpt, videos, tmp_path, capsys):
    data = videos["no_audio"].read_bytes()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    rc, _, err = predict([bad, "--checkpoint", ckpt, "--out", out], capsys)
    line = assert_one_line_error(rc, err, bad, out)
    assert "incomplete file (the index written at the end is missing)" in line  # an MP4's index is written last
    assert not any(x in line for x in ("Errno", "avcodec_", "avformat_", "()"))


def test_non_video_file(ckpt, tmp_path, capsys):
    bad = tmp_path / "notes.mp4"
    bad.write_text("valence,arousal\n0.1,0.2\n" * 50)
    out = tmp_path / "out"
    rc, _, err = predict([bad, "--checkpoint", ckpt, "--out", out], capsys)
    assert "not a readable video" in assert_one_line_error(rc, err, bad, out)


def test_unreadable_codec(ckpt, videos, tmp_path, capsys):
    """A Matroska file whose codec id no FFmpeg decoder knows."""
    good = write_media(tmp_path / "ok.mkv", np.zeros((5, 48, 64, 3), np.uint8), vcodec="mpeg4")
    data = good.read_bytes()
    assert b"V_MPEG4/ISO/ASP" in data
    bad = tmp_path / "codec.mkv"
    bad.write_bytes(data.replace(b"V_MPEG4/ISO/ASP", b"V_QQQQQ/ISO/ASP"))
    out = tmp_path / "out"
    rc, _, err = predict([bad, "--checkpoint", ckpt, "--out", out], capsys)
    assert "codec" in assert_one_line_error(rc, err, bad, out)


# ---- 6-11: odd but usable videos are scored ----------------------------------------------------------------------
def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def test_video_without_audio_track(scored, videos):
    out, err = scored
    rows, js = outputs(out, "no_audio")
    assert len(rows) == _frames(videos["no_audio"])
    assert js["has_audio"] is False
    assert any("no audio track" in w for w in js["warnings"])
    assert "no audio track" in err  # also printed as a warning
    assert (rows["speech"] == 0).all() and rows["face"].any()
    assert_honest(rows)


def test_silence(scored):
    rows, js = outputs(scored[0], "silence")
    assert js["has_audio"] is True and js["words"] == 0
    assert any("silent" in w for w in js["warnings"])
    assert (rows["speech"] == 0).all()
    assert_honest(rows)


def test_no_face_anywhere(scored):
    rows, js = outputs(scored[0], "no_face")
    assert js["faces_found"] == 0 and js["persons"] == 1 and (rows["face"] == 0).all()
    assert any("no face" in w for w in js["warnings"])
    assert rows["speech"].any()  # the speech is evidence: those frames are scored from audio and text
    assert_honest(rows)


def test_face_in_only_some_frames(scored, videos):
    rows, js = outputs(scored[0], "some_faces")
    n = len(rows)
    assert 0 < rows["face"].sum() < n
    assert any("face was found in" in w for w in js["warnings"])
    assert_honest(rows)


def test_variable_frame_rate(scored, videos):
    rows, js = outputs(scored[0], "vfr")
    assert len(rows) == _frames(videos["vfr"])  # one row per decoded frame
    gaps = np.diff(rows["time_s"])
    assert gaps.min() == pytest.approx(0.03, abs=0.002) and gaps.max() == pytest.approx(0.08, abs=0.002)
    assert any("variable frame rate" in w for w in js["warnings"])


def test_very_short_video(scored, ckpt):
    rows, js = outputs(scored[0], "short")
    assert len(rows) == 12 < js["model"]["K"]  # shorter than K = 32: one padded, masked window
    assert js["model"]["windows"] == 1 and js["duration_s"] < 1.0
    assert any("very short" in w for w in js["warnings"])
    assert_honest(rows)


# ---- 12-15: checkpoints and model files --------------------------------------------------------------------------
def _copy_ckpt(ckpt: Path, dst: Path) -> Path:
    shutil.copytree(ckpt, dst)
    return dst


def _edit_json(folder: Path, fn) -> None:
    info = json.loads((folder / "model.json").read_text())
    fn(info)
    (folder / "model.json").write_text(json.dumps(info))


def test_checkpoint_of_another_K(ckpt, videos, tmp_path, capsys):  # noqa: N802
    out = tmp_path / "out"
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out, "--set", "seq_len=64"], capsys)
    line = assert_one_line_error(rc, err, ckpt / "model.safetensors", out)
    assert "K: checkpoint 32 vs config 64" in line
    # a model.json that claims another K than its weights were trained with
    other = _copy_ckpt(ckpt, tmp_path / "k64")
    _edit_json(other, lambda i: (i["config"]["data"].update(seq_len=64, stride=32), i["widths"].update(K=64)))
    rc, _, err = predict([videos["short"], "--checkpoint", other, "--out", out], capsys)
    assert "do not fit" in assert_one_line_error(rc, err, other / "model.safetensors", out)


def test_checkpoint_of_other_widths(ckpt, videos, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out, "--set", "tcn_audio=[32,32]"], capsys)
    assert "tcn" in assert_one_line_error(rc, err, ckpt / "model.safetensors", out)
    other = _copy_ckpt(ckpt, tmp_path / "wide")
    _edit_json(other, lambda i: (i["config"]["model"].update(head_hidden=128), i["widths"].update(head_hidden=128)))
    rc, _, err = predict([videos["short"], "--checkpoint", other, "--out", out], capsys)
    assert "do not fit" in assert_one_line_error(rc, err, other / "model.safetensors", out)


def test_checkpoint_that_is_not_ours(ckpt, videos, tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    out = tmp_path / "out"
    # random tensors under our file names
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    save_file({"weight": torch.randn(4, 4)}, str(foreign / "model.safetensors"))
    shutil.copy(ckpt / "model.json", foreign / "model.json")
    rc, _, err = predict([videos["short"], "--checkpoint", foreign, "--out", out], capsys)
    assert_one_line_error(rc, err, foreign / "model.safetensors", out)
    # garbage bytes as model.safetensors
    (foreign / "model.safetensors").write_bytes(os.urandom(2048))
    rc, _, err = predict([videos["short"], "--checkpoint", foreign, "--out", out], capsys)
    assert "not a loadable rjcma checkpoint" in assert_one_line_error(rc, err, foreign / "model.safetensors", out)
    # a safetensors file without model.json
    lone = tmp_path / "lone"
    lone.mkdir()
    save_file({"weight": torch.randn(2)}, str(lone / "model.safetensors"))
    rc, _, err = predict([videos["short"], "--checkpoint", lone / "model.safetensors", "--out", out], capsys)
    assert_one_line_error(rc, err, lone / "model.json", out)
    # a .pth is never unpickled
    pth = tmp_path / "model.pth"
    torch.save({"w": torch.zeros(2)}, pth)
    rc, _, err = predict([videos["short"], "--checkpoint", pth, "--out", out], capsys)
    assert "never loaded" in assert_one_line_error(rc, err, pth, out)
    # a model.json that is not JSON
    bad_json = _copy_ckpt(ckpt, tmp_path / "badjson")
    (bad_json / "model.json").write_text("{not json")
    rc, _, err = predict([videos["short"], "--checkpoint", bad_json, "--out", out], capsys)
    assert_one_line_error(rc, err, bad_json / "model.json", out)


def test_no_checkpoint_says_how_to_get_one(videos, tmp_path, capsys):
    out = tmp_path / "out"
    rc, _, err = predict([videos["short"], "--out", out, "--set", f"results_dir={tmp_path / 'none'}"], capsys)
    line = assert_one_line_error(rc, err, tmp_path / "none", out)
    assert "make book" in line and "rjcma cv" in line


def test_missing_weights_or_model_directories(ckpt, videos, tmp_path, capsys):
    out = tmp_path / "out"
    nowhere = tmp_path / "no_such_asr_model"
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out, "--set", f"asr_model={nowhere}"],
                         capsys)
    assert_one_line_error(rc, err, nowhere, out)
    nowhere = tmp_path / "no_such_text_model"
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out, "--set", f"text_model={nowhere}"],
                         capsys)
    assert_one_line_error(rc, err, nowhere, out)
    # the stand-in encoder weights the model was trained on are gone (the checkpoint points at an empty store)
    moved = _copy_ckpt(ckpt, tmp_path / "moved")
    empty_store = tmp_path / "empty_store"
    _edit_json(moved, lambda i: i["config"]["data"].update(store=str(empty_store)))
    rc, _, err = predict([videos["short"], "--checkpoint", moved, "--out", out], capsys)
    line = assert_one_line_error(rc, err, empty_store / "_encoders", out)
    assert "rjcma preprocess" in line
    # pretrained weights configured but the file is not there
    wd = tmp_path / "weights"
    wd.mkdir()
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out, "--set", f"weights_dir={wd}"], capsys)
    assert_one_line_error(rc, err, wd, out)


def test_encoder_weights_that_differ_from_training_are_refused(ckpt, tiny_cfg, videos, tmp_path, capsys):
    """Exactly the encoder weights the model was trained on: a stand-in file whose SHA-256 is not the one the
    store's meta.json records is refused."""
    src = Path(tiny_cfg.data.store)
    store = tmp_path / "store_view"
    store.mkdir()
    (store / "_encoders").symlink_to(src / "_encoders")
    for meta in sorted(src.glob("*/meta.json")):
        info = json.loads(meta.read_text())
        info["encoders"]["audio"]["sha256"] = "0" * 64  # the store says the audio features came from other weights
        (store / meta.parent.name).mkdir()
        (store / meta.parent.name / "meta.json").write_text(json.dumps(info))
    moved = _copy_ckpt(ckpt, tmp_path / "moved")
    _edit_json(moved, lambda i: i["config"]["data"].update(store=str(store)))
    out = tmp_path / "out"
    rc, _, err = predict([videos["short"], "--checkpoint", moved, "--out", out], capsys)
    assert "not the ones" in assert_one_line_error(rc, err, store / "_encoders" / "vggish", out)


# ---- 16: malformed annotation files (through the reader) ----------------------------------------------------------
@pytest.mark.parametrize(
    "content, line",
    [("valence,arousal\n0.1,0.2\n0.3\n", 3), ("valence,arousal\n0.1,zero\n", 2), ("v,a\n0.1,0.2\n", 1),
     ("valence,arousal\n0.1,1.7\n", 2)],
)
def test_malformed_annotation_files(tiny_corpus, tmp_path, capsys, content, line):
    from rjcma.cli import main

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus, ignore=shutil.ignore_patterns("cropped_aligned", "SYNTH_TRUTH*"))
    ann = sorted(corpus.rglob("Train_Set/*.txt"))[0]
    ann.write_text(content)
    capsys.readouterr()
    rc = main(["preprocess", "--corpus", str(corpus), "--store", str(tmp_path / "store"), "--stages", "labels",
               "--no-progress"])
    out, err = capsys.readouterr()
    assert rc != 0
    assert f"{ann}:{line}:" in out + err
    assert "Traceback" not in out + err
    assert not (tmp_path / "store" / ann.stem / "labels.npy").exists()
    assert not list((tmp_path / "store").rglob("*.tmp"))


# ---- 17-18: output folder ---------------------------------------------------------------------------------------------
def test_read_only_output_directory(ckpt, videos, tmp_path, capsys, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permissions: make every file creation there fail as a read-only mount does
        import tempfile

        real = tempfile.mkstemp

        def mkstemp(*a, **k):
            if Path(k.get("dir", "")) == out:
                raise PermissionError(errno.EROFS, os.strerror(errno.EROFS))
            return real(*a, **k)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    try:
        rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out], capsys)
        assert "writable" in assert_one_line_error(rc, err, out, out)
    finally:
        out.chmod(0o755)


@pytest.mark.parametrize("fail_on", ["csv", "png", "json", "html"])
def test_full_output_directory(ckpt, videos, tmp_path, capsys, monkeypatch, fail_on):
    """ENOSPC while the outputs are written: none of the three files (nor a temporary one) stays."""
    import rjcma.io as rio

    out = tmp_path / "full"
    real = os.fsync
    count = {"n": 0}
    order = ["csv", "png", "json", "html"]

    def fsync(fd):
        count["n"] += 1
        if count["n"] == order.index(fail_on) + 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(rio.os, "fsync", fsync)
    rc, _, err = predict([videos["short"], "--checkpoint", ckpt, "--out", out], capsys)
    assert "No space left" in assert_one_line_error(rc, err, out / f"short.{fail_on}", out)


# ---- behaviour of the command around the cases ----------------------------------------------------------------------
def test_one_bad_video_among_good_ones(ckpt, videos, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out"
    rc, stdout, err = predict([videos["short"], bad, "--checkpoint", ckpt, "--out", out], capsys)
    assert rc == 2
    assert sorted(p.name for p in out.iterdir()) == ["short.csv", "short.html", "short.json", "short.png"]
    errors = [ln for ln in err.splitlines() if ln.startswith("rjcma predict: error:")]
    assert len(errors) == 1 and str(bad) in errors[0]
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    cmd = [sys.executable, "-m", "rjcma.cli", "predict", str(bad), "--out", str(tmp_path / "o"), "--quiet"]
    plain = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert [ln for ln in plain.stderr.splitlines() if ln.strip()] == [
        f"rjcma predict: error: {bad}: empty file (0 bytes); copy the video again"]
    dbg = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert dbg.returncode != 0 and "Traceback" in dbg.stderr and "RjcmaError" in dbg.stderr


def test_outputs_of_a_normal_video(scored, videos):
    """The regular outputs: CSV columns, a PNG, and a JSON that names the encoders, the ASR and the checkpoint."""
    rows, js = outputs(scored[0], "some_faces")
    assert rows.dtype.names == ("frame", "time_s", "person", "valence", "arousal", "face", "speech")
    assert (rows["frame"] == np.arange(len(rows))).all()
    assert js["decode"]["video"]["bad_packets"] == 0 and js["decode"]["audio"]["frames"] > 0
    assert (scored[0] / "some_faces.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert js["asr"]["backend"] == "whisper" and js["words"] > 0
    assert set(js["encoders"]) == {"visual", "audio", "text"}
    assert js["encoders"]["visual"]["verified_against_store"] is True
    assert set(js["seconds"]) == {"decode+faces", "audio+logmel", "asr", "text", "encoders", "model"}


# ---- the written table -------------------------------------------------------------------------------------------
def test_the_table_lists_every_case_and_each_has_a_test():
    text = TABLE.read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("|") and not set(ln) <= set("|-: ")]
    rows = rows[1:]  # header
    assert len(rows) >= 15
    names = set(globals())
    for r in rows:
        tests = re.findall(r"`(test_[a-z0-9_A-Z]+)`", r)
        assert tests, f"no test named in row: {r}"
        for t in tests:
            assert t in names, f"{t} named in the table but not defined in {__file__}"
