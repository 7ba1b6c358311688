"""The CelebAMask-HQ authors' own face parser (a U-Net), with the key layout of their checkpoint.

The CelebAMask-HQ repository (switchablenorms/CelebAMask-HQ, folder ``face_parsing``) trains a
plain U-Net (Ronneberger et al. 2015) on 512x512 images and released it as ``model.pth``. This is
the kit's own implementation of that network, with attribute names chosen so their state dict
loads strictly (see :func:`maskgan.interop.faceparsing.load_authors_parser`). Its labels are the
kit's own ids (the same 19-class merge order, :mod:`maskgan.labels`), so no remapping is needed.

Widths ``[64, 128, 256, 512, 1024] / 4 = [16, 32, 64, 128, 256]``:

* encoder ``conv1 .. conv4``, ``center``: (3x3 conv with bias -> BatchNorm -> ReLU) x 2, a 2x2
  max-pool between levels (keys ``convK.conv1.0`` conv, ``convK.conv1.1`` BatchNorm, ``convK.conv2.*``);
* decoder ``up_concat4 .. up_concat1``: a 2x2 stride-2 transposed conv (``up``) of the lower level,
  concatenated *after* the skip features, then the same double conv (``conv``);
* ``final``: 1x1 conv to 19 logits. Input: RGB in [-1, 1], sides multiples of 16.

(The kit's :class:`maskgan.nn.parser.FaceParser` is a different, smaller U-Net trained by the kit.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AuthorsUNet"]


class _DoubleConv(nn.Module):
    """``conv1``, ``conv2``: each Sequential(3x3 conv with bias, BatchNorm, ReLU)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class _Up(nn.Module):
    """Transposed-conv upsampling of the lower level, skip features first in the concatenation."""

    def __init__(self, c_low: int, c_out: int):
        super().__init__()
        self.conv = _DoubleConv(c_low, c_out)
        self.up = nn.ConvTranspose2d(c_low, c_out, 2, stride=2)

    def forward(self, skip: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        up = self.up(low)
        offset = up.shape[2] - skip.shape[2]  # 0 for sides that are multiples of 16; kept for parity
        if offset:
            skip = F.pad(skip, [offset // 2] * 4)
        return self.conv(torch.cat([skip, up], dim=1))


class AuthorsUNet(nn.Module):
    """``forward(images in [-1, 1]) -> logits (N, 19, H, W)`` in the kit's class ids."""

    def __init__(self, num_classes: int = 19, in_channels: int = 3, feature_scale: int = 4):
        super().__init__()
        w = [c // feature_scale for c in (64, 128, 256, 512, 1024)]
        self.conv1 = _DoubleConv(in_channels, w[0])
        self.conv2 = _DoubleConv(w[0], w[1])
        self.conv3 = _DoubleConv(w[1], w[2])
        self.conv4 = _DoubleConv(w[2], w[3])
        self.center = _DoubleConv(w[3], w[4])
        self.up_concat4 = _Up(w[4], w[3])
        self.up_concat3 = _Up(w[3], w[2])
        self.up_concat2 = _Up(w[2], w[1])
        self.up_concat1 = _Up(w[1], w[0])
        self.final = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.conv1.conv1[0].in_channels:
            raise ValueError(f"AuthorsUNet expects RGB images (N, 3, H, W) in [-1, 1], got shape {tuple(x.shape)}")
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(c1, 2))
        c3 = self.conv3(F.max_pool2d(c2, 2))
        c4 = self.conv4(F.max_pool2d(c3, 2))
        h = self.center(F.max_pool2d(c4, 2))
        h = self.up_concat4(c4, h)
        h = self.up_concat3(c3, h)
        h = self.up_concat2(c2, h)
        return self.final(self.up_concat1(c1, h))
