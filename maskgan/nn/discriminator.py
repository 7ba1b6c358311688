"""Multi-scale PatchGAN discriminator (paper Sec. 3.4, Eq. 7-8; Pix2PixHD's design).

Each scale is a PatchGAN on ``concat(one-hot mask, image)`` (19 + 3 = 22 channels): a 4x4
stride-2 conv (no norm) and ``n_layers - 1`` more stride-2 convs, then one stride-1 conv (all
InstanceNorm without affine, LeakyReLU 0.2), then a 4x4 stride-1 conv to a 1-channel map of
per-patch scores (logits; no sigmoid). The second scale sees the input average-pooled by 3x3
stride 2 (padding excluded from the average).

The forward pass returns the output of **every** layer of every scale, because the feature
matching loss (Eq. 8) compares D's intermediate features on real and fake images:
``outputs[scale][layer]``, with ``outputs[scale][-1]`` the prediction. 5,568,386 parameters at the
demo's widths (2 scales, 3 layers, ndf 64).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import InstanceNorm2d, init_weights

__all__ = ["PatchDiscriminator", "MultiScaleDiscriminator"]


class PatchDiscriminator(nn.Module):
    """One PatchGAN scale; ``forward(x)`` returns the list of all ``n_layers + 2`` layer outputs."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, max_ch: int = 512):
        super().__init__()
        pad = 2  # ceil((4 - 1) / 2), as Pix2PixHD
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, pad), nn.LeakyReLU(0.2))]
        c = ndf
        for n in range(1, n_layers + 1):
            c_next = min(c * 2, max_ch)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(c, c_next, 4, stride, pad), InstanceNorm2d(c_next), nn.LeakyReLU(0.2)))
            c = c_next
        layers.append(nn.Sequential(nn.Conv2d(c, 1, 4, 1, pad)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs at successively halved resolutions.

    ``forward(mask, image)`` concatenates the one-hot mask and the image (conditional GAN, Eq. 7)
    and returns ``list (per scale, full resolution first) of list (per layer) of tensors``.
    """

    def __init__(self, in_channels: int = 22, ndf: int = 64, n_layers: int = 3, num_D: int = 2, max_ch: int = 512):
        super().__init__()
        self.in_channels, self.n_layers, self.num_D = in_channels, n_layers, num_D
        self.scales = nn.ModuleList(PatchDiscriminator(in_channels, ndf, n_layers, max_ch) for _ in range(num_D))
        init_weights(self)

    def forward(self, mask: torch.Tensor, image: torch.Tensor) -> list[list[torch.Tensor]]:
        if mask.dim() != 4 or image.dim() != 4 or mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
            raise ValueError(f"discriminator: mask {tuple(mask.shape)} and image {tuple(image.shape)} must be "
                             f"(N, C, H, W) with the same N, H and W")
        x = torch.cat([mask, image], dim=1)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"discriminator expects mask + image = {self.in_channels} channels, got "
                             f"{mask.shape[1]} + {image.shape[1]} = {x.shape[1]}")
        outputs = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(scale(x))
        return outputs
