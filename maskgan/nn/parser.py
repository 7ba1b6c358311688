"""A small face parser: a U-Net from face images to the 19 CelebAMask-HQ classes.

MaskGAN's paper scores *how well a generated face follows its mask* by running a face-parsing
network on the generated image and comparing its labels with the mask that was asked for (the
authors used a parser trained on CelebAMask-HQ). The kit needs the same instrument, trained on the
kit's own data, so this is a deliberately small U-Net (Ronneberger et al. 2015, "U-Net:
Convolutional Networks for Biomedical Image Segmentation"):

* encoder: ``depth + 1`` levels of (3x3 conv -> BatchNorm -> ReLU) x 2, widths ``base * 2**level``,
  with a 2x2 max-pool between levels (so the input sides must be multiples of ``2**depth``);
* decoder: at each level, upsample (bilinear, or a 2x2 transposed conv), concatenate the encoder
  features of the same resolution (the *skip connection* that keeps boundaries sharp), then the
  same double conv;
* head: 1x1 conv to 19-class **logits** at full resolution (train with cross-entropy;
  :meth:`FaceParser.parse` takes the argmax).

Input: images in [-1, 1], ``(N, 3, H, W)``. With ``base=16, depth=4`` it has 1,964,403 parameters
(bilinear decoder) and trains on 64x64 SynthFaces on a CPU in a minute or two.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..labels import NUM_CLASSES
from .layers import check_side

__all__ = ["FaceParser", "DoubleConv"]


class DoubleConv(nn.Sequential):
    """(3x3 conv -> BatchNorm -> ReLU) x 2, the unit of every U-Net level (the conv bias is
    redundant before BatchNorm and left out)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class _Up(nn.Module):
    """Decoder level: upsample x2, concatenate the skip features, double conv."""

    def __init__(self, c_low: int, c_skip: int, mode: str):
        super().__init__()
        if mode == "transposed":
            self.up = nn.ConvTranspose2d(c_low, c_skip, 2, stride=2)
            c_up = c_skip
        else:  # bilinear: no parameters; the double conv mixes the channels
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
            c_up = c_low
        self.conv = DoubleConv(c_up + c_skip, c_skip)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class FaceParser(nn.Module):
    """U-Net face parser: ``forward(images in [-1, 1]) -> logits (N, num_classes, H, W)``.

    ``base``: channels of the first level (doubled at each level down); ``depth``: number of 2x
    downsamplings (H and W must be multiples of ``2**depth``); ``up``: ``"bilinear"`` or
    ``"transposed"`` upsampling in the decoder.
    """

    UP_MODES = ("bilinear", "transposed")

    def __init__(self, num_classes: int = NUM_CLASSES, base: int = 16, depth: int = 4, in_channels: int = 3,
                 up: str = "bilinear"):
        super().__init__()
        if up not in self.UP_MODES:
            raise ValueError(f"FaceParser up={up!r}; expected one of {', '.join(self.UP_MODES)}")
        for name, value, least in (("num_classes", num_classes, 2), ("base", base, 1), ("depth", depth, 1),
                                   ("in_channels", in_channels, 1)):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"FaceParser {name} must be an integer >= {least}, got {value!r}")
        self.num_classes, self.depth, self.in_channels = num_classes, depth, in_channels
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([DoubleConv(in_channels, widths[0])] +
                                  [DoubleConv(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([_Up(widths[i + 1], widths[i], up) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless both sides are multiples of ``2**depth``."""
        check_side(f"FaceParser (depth={self.depth})", height, width, 2 ** self.depth, 2 ** self.depth,
                   " (resize the images or use a smaller depth)")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"FaceParser expects images of shape (N, {self.in_channels}, H, W) in [-1, 1], "
                             f"got {tuple(images.shape)}")
        self.check_size(images.shape[2], images.shape[3])
        skips = []
        x = images
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)

    @torch.no_grad()
    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """Label maps ``(N, H, W)`` int64: the most likely class per pixel. Runs in eval mode
        (BatchNorm uses its running statistics) and restores the previous mode afterwards."""
        was_training = self.training
        self.eval()
        try:
            return self(images).argmax(dim=1)
        finally:
            self.train(was_training)
