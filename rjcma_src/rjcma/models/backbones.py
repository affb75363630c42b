"""Frame-level encoders: IR-50 (faces), torchvision ResNet-50 (faces, option) and VGGish (log-mel patches).

Paper §4.2.1. The architectures follow the released code's choices (the book's chapter *Paper vs released code*):

* ``IR50``: ArcFace-style improved-residual ResNet-50 (units 3/4/14/3 of ``bottleneck_IR``), first stage with stride
  1 so a 40 x 40 crop ends as a 5 x 5 map; output layer BN2d(512) -> Dropout(0.4) -> Linear(512*5*5 -> 512) ->
  BN1d(512), then L2 normalisation. Parameter names equal the released ``Backbone`` so ``res50_ir_0.887.pth``
  (keys ``backbone.*`` plus an 8-class ``logits`` head, which is dropped) loads after stripping the prefix.
  ``width`` < 1 scales every stage's channels (same units, strides and 512-d embedding), for a lighter stand-in
  (:data:`rjcma.encoders.standins.STAND_IN_WIDTH`; ``benchmarks/standin_width.py``); a released checkpoint needs 1.
* ``VGGish``: conv 64-M-128-M-256-256-M-512-512-M, FC 12288 -> 4096 -> 4096 -> 128 with no final ReLU and no PCA;
  parameter names equal torchvggish's (``features.{0,3,6,8,11,13}``, ``embeddings.{0,2,4}``), so
  ``vggish-10086976.pth`` loads unchanged.
* ``ResNet50Face``: torchvision's ResNet-50 without its classifier (2048-d pooled features); loads torchvision's
  ImageNet checkpoint layout (``fc.*`` dropped).

Checkpoints are read with ``torch.load(..., weights_only=True)`` and checked key by key and shape by shape.

**Weights.** Which file an encoder loads (the released checkpoints of a weights folder, or the demo's stand-ins,
which cannot ship with this package) is decided by the encoders layer (:mod:`rjcma.encoders.build`); these models
take tensors and know nothing of the data that adapts them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from rjcma.errors import MissingAssetError, RjcmaError

IR50_FILE = "res50_ir_0.887.pth"
VGGISH_FILE = "vggish-10086976.pth"
RESNET50_FILE = "resnet50-0676ba61.pth"
WHERE = {
    IR50_FILE: "the IR-50 face backbone distributed with the released RJCMA code (see its README: pretrained "
    "backbones for Aff-Wild2)",
    VGGISH_FILE: "the torchvggish release v0.1 (github.com/harritaylor/torchvggish, releases)",
    RESNET50_FILE: "torchvision's ImageNet ResNet-50 weights (ResNet50_Weights.IMAGENET1K_V1)",
}
ENCODER_DIMS = {"ir50": 512, "resnet50": 2048, "vggish": 128}


# ---- IR-50 -----------------------------------------------------------------------------------------------------
class _Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class BottleneckIR(nn.Module):
    """Improved residual unit: BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN, plus a (projected) shortcut."""

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


IR50_STAGES = ((64, 64, 3, 1), (64, 128, 4, 2), (128, 256, 14, 2), (256, 512, 3, 2))  # in, depth, units, stride


def ir50_channels(width: float, channels: int) -> int:
    """Channels of an IR-50 layer of the released width ``channels`` at width factor ``width``."""
    return max(1, int(round(channels * width)))


class IR50(nn.Module):
    """IR-50 for 40 x 40 faces -> 512-d L2-normalised embedding (the released face backbone); ``width`` scales the
    channels of every stage (1 = released; the arithmetic falls with its square)."""

    def __init__(self, input_size: int = 40, drop_ratio: float = 0.4, embedding_dim: int = 512, width: float = 1.0):
        super().__init__()
        if not 0 < width <= 1:
            raise ValueError(f"IR50: width must be in (0, 1], got {width}")
        self.input_size = input_size
        self.width = float(width)
        c = lambda n: ir50_channels(width, n)  # noqa: E731
        self.input_layer = nn.Sequential(nn.Conv2d(3, c(64), 3, 1, 1, bias=False), nn.BatchNorm2d(c(64)),
                                         nn.PReLU(c(64)))
        units: list[nn.Module] = []
        self.stage_of_unit: list[int] = []
        for s, (cin, depth, n, stride) in enumerate(IR50_STAGES):
            cin, depth = c(cin), c(depth)
            for u in range(n):
                units.append(BottleneckIR(cin if u == 0 else depth, depth, stride if u == 0 else 1))
                self.stage_of_unit.append(s)
        self.body = nn.Sequential(*units)
        side = input_size
        for _, _, _, stride in IR50_STAGES:
            side = (side - 1) // stride + 1
        self.map_side = side  # 5 for 40 x 40
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(c(512)), nn.Dropout(drop_ratio), _Flatten(),
            nn.Linear(c(512) * side * side, embedding_dim), nn.BatchNorm1d(embedding_dim))

    def features_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.input_layer(x))  # (B, 512 * width, 5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 40, 40) -> (B, 512)
        return F.normalize(self.output_layer(self.features_map(x)), p=2, dim=1)


# ---- ResNet-50 (torchvision) -----------------------------------------------------------------------------------
class ResNet50Face(nn.Module):
    """torchvision ResNet-50 trunk -> 2048-d pooled features (the ``fc`` classifier removed)."""

    def __init__(self):
        super().__init__()
        from torchvision.models import resnet50

        self.net = resnet50(weights=None)
        self.net.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 2048)
        return self.net(x)


# ---- VGGish ----------------------------------------------------------------------------------------------------
class VGGish(nn.Module):
    """VGGish on (B, 1, 96, 64) log-mel patches -> (B, 128); no final ReLU, no PCA (as the released code uses it)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, 128))

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x[:, None]
        x = self.features(x)  # (B, 512, 6, 4)
        # channel-last flatten, as the TF original: (B, 6, 4, 512)
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 96, 64) -> (B, 128)
        return self.embeddings(self.conv_features(x))


# ---- layer groups (gradual release, paper §4.2.2) ---------------------------------------------------------------
def layer_groups(encoder: nn.Module) -> list[list[nn.Module]]:
    """The three groups released one after another, in release order (paper §4.2.2; groups as the released code).

    IR-50: [output layer], [stage 4], [last three units of stage 3]. VGGish: [FC 4096->128], [FC 4096->4096],
    [FC 12288->4096]. ResNet-50: [layer4 last block], [layer4 first blocks], [layer3 last two blocks].
    """
    enc = getattr(encoder, "module", encoder)
    if isinstance(enc, IR50):
        stage4 = [u for u, s in zip(enc.body, enc.stage_of_unit) if s == 3]
        stage3 = [u for u, s in zip(enc.body, enc.stage_of_unit) if s == 2]
        return [[enc.output_layer], stage4, stage3[-3:]]
    if isinstance(enc, VGGish):
        e = enc.embeddings
        return [[e[4]], [e[2]], [e[0]]]
    if isinstance(enc, ResNet50Face):
        l3, l4 = enc.net.layer3, enc.net.layer4
        return [[l4[2]], [l4[0], l4[1]], [l3[4], l3[5]]]
    raise TypeError(f"no layer groups defined for {type(enc).__name__}")


# ---- checkpoint loading ----------------------------------------------------------------------------------------
def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise MissingAssetError(f"{path}: weights file missing; obtain {WHERE.get(path.name, path.name)} and put it there "
                                f"(folder = preprocess.weights_dir or $RJCMA_WEIGHTS_DIR)")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise RjcmaError(f"{path}: not a loadable weights-only checkpoint ({str(e).splitlines()[0][:200]}); "
                         "only plain state dicts are accepted") from e
    for k in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and k in obj and isinstance(obj[k], dict):
            obj = obj[k]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise RjcmaError(f"{path}: does not hold a state dict of tensors")
    return obj


def _strip(sd: dict[str, torch.Tensor], prefixes: tuple[str, ...], drop: tuple[str, ...]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        changed = True
        while changed:
            changed = False
            for p in prefixes:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        if any(k.startswith(d) for d in drop):
            continue
        out[k] = v
    return out


def load_checked(model: nn.Module, sd: dict[str, torch.Tensor], path: Path, ignore: tuple[str, ...] = ()) -> None:
    """Load ``sd`` into ``model`` after checking every key and shape; one error listing what differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not any(k.startswith(i) for i in ignore)]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:3]))
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        raise RjcmaError(f"{path}: does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict({k: sd[k] for k in own if k in sd}, strict=False)


def load_ir50(path: str | Path, input_size: int = 40) -> IR50:
    """IR-50 from a ``res50_ir_0.887.pth``-style file (``backbone.`` prefix stripped, ``logits`` head dropped)."""
    path = Path(path)
    sd = _strip(_read_state_dict(path), ("module.", "backbone.", "model."), ("logits",))
    m = IR50(input_size=input_size)
    load_checked(m, sd, path)
    return m


def load_vggish(path: str | Path) -> VGGish:
    """VGGish from a torchvggish ``vggish-10086976.pth``-style file (``pproc`` PCA parameters ignored)."""
    path = Path(path)
    sd = _strip(_read_state_dict(path), ("module.", "backbone."), ("pproc", "pca_"))
    m = VGGish()
    load_checked(m, sd, path)
    return m


def load_resnet50(path: str | Path) -> ResNet50Face:
    path = Path(path)
    sd = _strip(_read_state_dict(path), ("module.",), ("fc.",))
    sd = {("net." + k if not k.startswith("net.") else k): v for k, v in sd.items()}
    m = ResNet50Face()
    load_checked(m, sd, path)
    return m


# ---- stand-ins -------------------------------------------------------------------------------------------------
def seeded_init(model: nn.Module, seed: int) -> nn.Module:
    """Deterministic Kaiming-normal init (fan_out, ReLU gain) of convs and linears; BN at defaults."""
    g = torch.Generator().manual_seed(int(seed))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_out = m.weight.shape[0] * (m.weight[0, 0].numel() if m.weight.dim() > 2 else 1)
            fan = fan_out if isinstance(m, nn.Conv2d) else m.weight.shape[1]
            with torch.no_grad():
                m.weight.normal_(0.0, (2.0 / fan) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.reset_parameters()
            m.reset_running_stats()
        elif isinstance(m, nn.PReLU):
            with torch.no_grad():
                m.weight.fill_(0.25)
    return model


def faces_to_tensor(faces: np.ndarray, crop: int = 40) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float32 (B, 3, crop, crop): the face encoders' input. Centre crop (the evaluation
    transform of the released recipe), /255, then (x - 0.5) / 0.5 (paper §4.2.2: mean and std 0.5)."""
    faces = np.asarray(faces)
    h, w = faces.shape[-3], faces.shape[-2]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    x = torch.from_numpy(np.ascontiguousarray(faces[..., y0:y0 + crop, x0:x0 + crop, :]))
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return x.sub_(0.5).div_(0.5)


@torch.inference_mode()
def encode_faces(encoder: nn.Module, faces: np.ndarray, batch: int = 128, crop: int = 40) -> np.ndarray:
    """uint8 faces (N, 48, 48, 3) -> float32 (N, d): centre crop 40, /255, (x-0.5)/0.5, encoder in eval mode."""
    encoder.eval()
    out = []
    for s in range(0, len(faces), batch):
        out.append(encoder(faces_to_tensor(np.asarray(faces[s:s + batch]), crop)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, _dim(encoder)), np.float32)


@torch.inference_mode()
def encode_logmel(encoder: nn.Module, patches: np.ndarray, batch: int = 128) -> np.ndarray:
    """log-mel patches (N, 96, 64) -> float32 (N, 128), encoder in eval mode."""
    encoder.eval()
    out = []
    for s in range(0, len(patches), batch):
        x = torch.from_numpy(np.asarray(patches[s:s + batch], dtype=np.float32))[:, None]
        out.append(encoder(x).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, _dim(encoder)), np.float32)


def _dim(encoder: nn.Module) -> int:
    info = getattr(encoder, "rjcma_info", None)
    return info.dim if info else 0
