"""Stand-in encoder weights for the demo: the pretrained checkpoints cannot ship with this package.

The architectures are those of :mod:`rjcma.models.backbones`; this module gives them weights without any download,
chosen by ``preprocess.encoder_init``:

* ``"seeded"``: frozen at a seeded initialisation (:func:`rjcma.models.backbones.seeded_init`). Deterministic, but
  the features are random projections of the input.
* ``"synthetic-pretrain"`` (the demo default): the seeded network, adapted on a separate synthetic task that never
  sees the corpus, its labels or its subjects.

  - Visual: :data:`PRETRAIN_FACES` faces from :func:`pretrain_faces`, a small facial-expression data set drawn with
    the demo corpus's face renderer but with new random identities, backgrounds, sizes and poses and with every
    expression parameter drawn independently. Two steps. (1) The batch-norm statistics of the seeded body are
    calibrated on 512 of these faces (:func:`calibrate_batch_norm`): with default statistics the activations grow
    through the 24 residual units to ~1e5 and the 5 x 5 output maps mostly encode brightness and position. (2) The
    output layer (BN2d, Linear 12800 -> 512, BN1d) learns to regress the expression (smile, brow tilt, eye opening,
    mouth opening, brow raise) and the alignment residue (roll, shift) from the frozen body's maps (12 epochs of
    Adam). This is the demo's analogue of an IR-50 pretrained on facial expressions. On the demo store a linear
    probe (one trial held out at a time) from the features to the generator's face part went from r = 0.42 with
    the previous stand-in (192 faces, default body statistics, head position and brightness among the targets) to
    0.92, and to its motion part from 0.65 to 0.89.
    The body keeps the released IR-50's width (:data:`STAND_IN_WIDTH`): at half width (a quarter of the arithmetic)
    on twice the faces, the demo's preprocessing took 131 s less on two cores and the read-out of the expression
    stayed within .06 per parameter, but over three training seeds the fusion's valence advantage over the best
    single modality fell (``benchmarks/RESULTS.md``, "Issue 24, fourth pass"), so the demo does not use it.
  - Audio: 256 one-second harmonic tones (:func:`synth_tones`) with random pitch, loudness, syllable-like amplitude
    modulation and noise; VGGish's last FC (4096 -> 128) learns to regress them from the frozen seeded layers
    below. Its outputs are then centred and scaled over the tones (folded into the layer): a random 4096 -> 128
    layer leaves per-dimension offsets about five times the signal's spread, and a TCN reading raw features learns
    around them only slowly (the audio-only model's arousal CCC over the six demo folds went from 0.28 to 0.34).

  Cost: about two and a half minutes on 2 CPU cores with AVX-512, three and a half with AVX2 only, once per
  machine: the weights are cached (:func:`rjcma.encoders.build.stand_in_cache_dir`) and copied into each store.
  Limits: the body below the output layer stays random and the tasks are small, so these features are far weaker
  and narrower than the pretrained checkpoints'; the book's numbers on the demo corpus show the pipeline, not
  Aff-Wild2 performance.

Stand-in weights are written as safetensors to ``<store>/_encoders/<name>-<init>-seed<seed>.safetensors``
(deterministic, reused by later runs; :mod:`rjcma.encoders.build`) and their SHA-256 goes into each trial's meta.json.

The recipe uses the demo generator's renderer (:mod:`rjcma.data.synth`) and VGGish's front end
(:mod:`rjcma.encoders.logmel`); the architectures (:mod:`rjcma.models.backbones`) stay free of both.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from rjcma.data.synth.design import random_identity
from rjcma.data.synth.render import crop_affine, draw_face
from rjcma.encoders.logmel import log_mel
from rjcma.errors import RjcmaError
from rjcma.layout import CROP
from rjcma.models.backbones import IR50, VGGish, ResNet50Face, faces_to_tensor, seeded_init
from rjcma.runtime import fixed_threads

PRETRAIN_FACES = 3000  # faces of the visual stand-in's expression pretraining
STAND_IN_WIDTH = 1.0  # channel width of the visual stand-in's IR-50, 1 = released (benchmarks/standin_width.py)
# torch threads of every stand-in build, whatever the machine's cores: the batch-norm calibration and the Adam fits
# sum over threads, so 1 and 2 threads gave different weights (the same thread count gives the same bytes)
STAND_IN_THREADS = 2
# version of the recipe: stand-in files of another version are rebuilt (rjcma.encoders.build)
# 4: built with a fixed thread count, so every machine builds the same bytes; 5: float32 everywhere (4 ran the IR-50
# feature maps in bf16 where the CPU had native bf16, so the stand-in's bytes depended on the CPU class)
STAND_IN_VERSION = "5"


# ---- pretraining data ------------------------------------------------------------------------------------------
PRETRAIN_PARAMS = ("smile", "brow", "eye", "mouth", "raise", "roll_residual", "shift_x", "shift_y")


def pretrain_faces(n: int, seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A face-expression data set for the visual stand-in's pretraining: (uint8 (n, size, size, 3), float32 (n, 8)).

    Each face is drawn by :func:`rjcma.data.synth.draw_face`, the demo corpus's renderer, with a new random
    identity, background, size and pose, and with every expression parameter drawn independently and
    uniformly, so none of the corpus's latent processes, labels or identities enters it. It then goes the way of a
    corpus face: aligned 112 x 112 crop with a small random misalignment, JPEG (quality 92), PIL resize to
    ``size``. The targets (columns in :data:`PRETRAIN_PARAMS`) are the expression (smile, brow tilt, eye
    opening, mouth opening, brow raise) and the alignment residue (roll, shift) that a real face encoder also
    reports. This is the demo's analogue of pretraining IR-50 on a facial-expression corpus.
    """
    rng = np.random.default_rng(seed)
    S = 176
    imgs = np.zeros((n, size, size, 3), dtype=np.uint8)
    P = np.zeros((n, len(PRETRAIN_PARAMS)), dtype=np.float32)
    for i in range(n):
        ident = random_identity(rng, bool(rng.integers(2)))
        img = np.empty((S, S, 3), np.uint8)
        img[:] = rng.integers(40, 220, 3)
        for _ in range(3):
            x0, y0 = (int(v) for v in rng.integers(0, S, 2))
            w, h = (int(v) for v in rng.integers(20, 90, 2))
            cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), tuple(int(c) for c in rng.integers(40, 220, 3)), -1)
        r = float(rng.uniform(30, 50))
        st = {"cx": S / 2 + rng.normal(0, 3), "cy": S / 2 + rng.normal(0, 3), "r": r, "roll": rng.uniform(-10, 10),
              "smile": rng.uniform(-1.2, 1.2), "brow": rng.uniform(-1.2, 1.2), "eye": rng.uniform(0, 1) ** 0.7,
              "mouth": rng.uniform(0, 1) * float(rng.random() < 0.7), "raise": rng.uniform(0, 1),
              "gaze": rng.normal()}
        draw_face(img, st, ident, "face")
        dx, dy = rng.normal(0, 0.06 * r, 2)
        crop_roll = st["roll"] * rng.uniform(0.5, 1.0)
        A = crop_affine(st["cx"] + dx, st["cy"] + dy, r, crop_roll)
        crop = cv2.warpAffine(img, A, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:  # pragma: no cover - OpenCV without JPEG support
            raise RjcmaError("OpenCV could not encode a JPEG; reinstall opencv-python-headless")
        imgs[i] = np.asarray(Image.open(io.BytesIO(buf.tobytes())).convert("RGB").resize((size, size)))
        P[i] = (st["smile"], st["brow"], st["eye"], st["mouth"], st["raise"], (st["roll"] - crop_roll) / 5,
                dx / r * 10, dy / r * 10)
    return imgs, P


def synth_tones(n: int, seed: int, seconds: float = 1.0, sr: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """n harmonic tones with random pitch/loudness/AM rate/noise -> (log-mel patches (n, 96, 64), params (n, 4))."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    X = np.zeros((n, 96, 64), dtype=np.float32)
    P = np.zeros((n, 4), dtype=np.float32)
    for i in range(n):
        lf0, ldb, am, noise = rng.uniform(-1, 1, 4)
        f0 = 150.0 * 2.0 ** (lf0 * 1.2)
        amp = 10 ** ((-23 + 17 * ldb) / 20)
        rate = 5 + 3 * am
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 1.3 * t))) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 12))
        env = 0.5 * (1 + np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.3))) ** 2
        x = amp * x / 3 * env + 10 ** ((-50 + 15 * noise) / 20) * rng.standard_normal(len(t))
        X[i] = log_mel(x, sr)[:96]
        P[i] = (lf0, ldb, am, noise)
    return X, P


# ---- pretraining -----------------------------------------------------------------------------------------------
def _fit_head(embed: nn.Module, feats: torch.Tensor, targets: torch.Tensor, seed: int, epochs: int = 200,
              batch: int = 0, lr: float = 3e-3, weight_decay: float = 1e-4) -> None:
    """Train ``embed`` (+ a throw-away linear head) to regress ``targets`` from fixed ``feats`` (Adam; ``batch`` 0 =
    full batch, else shuffled minibatches of that size)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    out_dim = embed(feats[:2]).shape[1]
    head = nn.Linear(out_dim, targets.shape[1])
    opt = torch.optim.Adam(list(embed.parameters()) + list(head.parameters()), lr=lr, weight_decay=weight_decay)
    n = len(feats)
    batch = batch or n
    embed.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for s in range(0, n - batch // 2, batch):  # no tiny last batch (batch norm)
            idx = order[s:s + batch]
            opt.zero_grad()
            loss = F.mse_loss(head(embed(feats[idx])), targets[idx])
            loss.backward()
            opt.step()
    embed.eval()


@torch.no_grad()
def calibrate_batch_norm(module: nn.Module, forward, batches) -> None:
    """Set the running statistics of the batch norms in ``module`` to their averages over ``forward(x)`` for x in
    ``batches`` (train mode, cumulative average; each layer sees the already normalised output of the layers
    before it). A seeded IR-50 body with default statistics lets activations grow through its 24 residual units
    (to ~1e5), which drowns the small details of a face; calibrated, they stay O(1)."""
    mods = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in mods:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    module.train()
    for x in batches:
        forward(x)
    for m in mods:
        m.momentum = 0.1
    module.eval()


class _IR50Out(nn.Module):
    def __init__(self, enc: IR50):
        super().__init__()
        self.enc = enc

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.enc.output_layer(m), dim=1) * 10.0


def stand_in_shell(name: str, state_dict: dict | None = None) -> nn.Module:
    """The architecture of stand-in ``name`` without weights (what a stand-in file loads into); given the file's
    ``state_dict``, an IR-50 takes the width the file was made with."""
    if name == "ir50":
        width = STAND_IN_WIDTH
        if state_dict is not None and "input_layer.0.weight" in state_dict:
            width = state_dict["input_layer.0.weight"].shape[0] / 64
        return IR50(width=min(1.0, width))
    if name == "resnet50":
        return ResNet50Face()
    if name == "vggish":
        return VGGish()
    raise RjcmaError(f"unknown encoder {name!r}; choose ir50, resnet50 or vggish")


def make_stand_in(name: str, init: str, seed: int) -> nn.Module:
    """Build the stand-in encoder ``name`` ("ir50", "resnet50", "vggish") for ``init`` ("seeded"/"synthetic-pretrain"),
    with :data:`STAND_IN_THREADS` torch threads (restored afterwards)."""
    with fixed_threads(STAND_IN_THREADS):
        return _make_stand_in(name, init, seed)


def _make_stand_in(name: str, init: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    if name == "ir50":
        m = seeded_init(stand_in_shell("ir50"), seed).eval()
        if init == "synthetic-pretrain":
            imgs, P = pretrain_faces(PRETRAIN_FACES, seed + 1)
            chunks = [faces_to_tensor(imgs[i:i + 128]) for i in range(0, len(imgs), 128)]
            body = nn.Sequential(m.input_layer, m.body)
            calibrate_batch_norm(body, body, chunks[:4])  # 512 faces
            with torch.inference_mode():  # float32 on every CPU: the same stand-in bytes on every machine
                maps = torch.cat([m.features_map(x) for x in chunks])
            z = torch.from_numpy((P - P.mean(0)) / P.std(0))  # standardised targets: equal weight per parameter
            _fit_head(_IR50Out(m), maps.clone(), z, seed, epochs=12, batch=128, lr=1e-3, weight_decay=1e-3)
    elif name == "resnet50":
        m = seeded_init(ResNet50Face(), seed).eval()
    elif name == "vggish":
        m = seeded_init(VGGish(), seed).eval()
        with torch.no_grad():  # keep the seeded FC activations O(1): scale the last layer to unit-ish outputs
            m.embeddings[4].weight.mul_(0.5)
        if init == "synthetic-pretrain":
            X, P = synth_tones(256, seed + 2)
            with torch.inference_mode():
                h = m.embeddings[:4](m.conv_features(torch.from_numpy(X)[:, None]))  # (n, 4096), frozen layers
                hs = h.std().clamp_min(1e-6)
            _fit_head(m.embeddings[4], (h / hs).clone(), torch.from_numpy(P), seed, epochs=150)
            with torch.no_grad():  # fold the normalisation of h into the layer
                m.embeddings[4].weight.div_(hs)
                # and centre/scale the outputs over the tones: a random 4096 -> 128 layer leaves per-dimension
                # offsets ~5x the signal's spread, which a TCN reading raw features learns around only slowly
                y = m.embeddings[4](h)
                mu, sd = y.mean(0), y.std(0).clamp_min(1e-6)
                m.embeddings[4].weight.div_(sd[:, None])
                m.embeddings[4].bias.sub_(mu).div_(sd)
    else:
        raise RjcmaError(f"unknown encoder {name!r}; choose ir50, resnet50 or vggish")
    for p in m.parameters():
        p.requires_grad_(False)
    return m.eval()
