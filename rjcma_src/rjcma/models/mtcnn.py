"""MTCNN's three networks (Zhang et al. 2016, "Joint Face Detection and Alignment using Multitask Cascaded
Convolutional Networks"), written from the paper's architecture figure, and a loader for the released weights.

* ``PNet`` (proposal): fully convolutional, 12 x 12 receptive field, stride 2; per location a face probability and
  a box offset.
* ``RNet`` (refine): 24 x 24 crops; face probability and box offset.
* ``ONet`` (output): 48 x 48 crops; face probability, box offset and five landmarks (left eye, right eye, nose,
  left and right mouth corner).

The weights are the original Caffe models as converted for PyTorch in ``facenet-pytorch`` (MIT), which ships them
as the plain ``state_dict`` files ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (28 kB, 0.4 MB, 1.6 MB). Parameter names
and shapes here equal those files, so they load with ``torch.load(..., weights_only=True)`` and a strict
``load_state_dict``; nothing of facenet-pytorch is imported. Two conventions of that conversion matter and are
kept: inputs are RGB scaled as ``(x - 127.5) / 128``, and the fully connected layers read the last feature map
flattened in (width, height, channel) order, the memory order of the converted model (the Caffe original ran on
transposed images).

The pipeline around the networks (image pyramid, non-maximum suppression, box regression, crops) is in
:mod:`rjcma.preprocess.faces`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from rjcma.errors import MissingAssetError, RjcmaError

# (x - 127.5) / 128, the normalisation the released weights were trained with
PIXEL_MEAN = 127.5
PIXEL_SCALE = 1.0 / 128.0


def _flatten_whc(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, W*H*C): the flattening order of the converted fully connected weights."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal network: conv3-10, max-pool 2, conv3-16, conv3-32, then 1x1 heads (2 classes, 4 box offsets)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not face
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets (dx0, dy0, dx1, dy1) in units of the 12-px cell

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 3, H, W) normalised -> (offsets (N, 4, h, w), face probability (N, h, w))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


class RNet(nn.Module):
    """Refinement network on 24 x 24 crops: conv3-28, pool3/2, conv3-48, pool3/2, conv2-64, fc128, heads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(3 * 3 * 64, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, 3, 24, 24) -> (offsets (N, 4), face probability (N,))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_whc(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output network on 48 x 48 crops: conv3-32, pool, conv3-64, pool, conv3-64, pool, conv2-128, fc256, heads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(3 * 3 * 128, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)  # landmarks: x of the five points, then y, relative to the box

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, 3, 48, 48) -> (offsets (N, 4), landmarks (N, 10), face probability (N,))."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_whc(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


WEIGHT_FILES = {"pnet": "pnet.pt", "rnet": "rnet.pt", "onet": "onet.pt"}


def load_mtcnn(weights_dir: str | Path, device: str | torch.device = "cpu") -> tuple[PNet, RNet, ONet]:
    """The three networks with the weights of ``weights_dir`` (pnet.pt, rnet.pt, onet.pt), in eval mode.

    Raises MissingAssetError when a file is missing and RjcmaError when one does not match the architecture.
    """
    weights_dir = Path(weights_dir)
    for name in WEIGHT_FILES.values():
        if not (weights_dir / name).is_file():
            raise MissingAssetError(f"{weights_dir / name}: MTCNN weight file missing; "
                                    "run  pip install --no-deps facenet-pytorch==2.6.0")
    nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, WEIGHT_FILES.values()):
        path = weights_dir / name
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(sd, strict=True)
        except Exception as e:  # wrong file, truncated download, other architecture
            first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
            raise RjcmaError(f"{path}: not MTCNN weights of the expected layout ({first}); "
                             "reinstall with  pip install --no-deps --force-reinstall facenet-pytorch") from e
        net.eval().requires_grad_(False).to(device)
    return nets
