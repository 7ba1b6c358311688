"""The Alpha Blender of Editing Behavior Simulated Training (Algorithm 1, stage II; Fig. 3).

Given two DMN renderings of the same style, ``I^inter`` (from the interpolated mask) and
``I^outer`` (from the extrapolated one), the blender predicts a per-pixel, per-RGB-channel
``alpha`` in (0, 1) and blends them::

    I^blend = alpha * I^inter + (1 - alpha) * I^outer

``I^blend`` is trained to match the target image, which teaches the DMN to stay consistent under
the mask changes a user would make. The network is a small Pix2PixHD global generator on the
6-channel concatenation: 7x7 conv (ngf 32) -> 3 stride-2 convs -> 3 residual blocks
(InstanceNorm) -> 3 transposed convs -> 7x7 conv to 3 channels -> sigmoid; 4,329,443 parameters at
the demo's widths.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import ResnetBlock, check_side, downsampling, init_weights, rgb_head, stem, upsampling

__all__ = ["AlphaBlender"]


class AlphaBlender(nn.Module):
    """``forward(a, b) -> (blend, alpha)`` with ``blend = alpha * a + (1 - alpha) * b``."""

    def __init__(self, ngf: int = 32, n_down: int = 3, n_blocks: int = 3, channels: int = 3):
        super().__init__()
        self.n_down, self.channels = n_down, channels
        dim = ngf * 2 ** n_down
        self.net = nn.Sequential(
            stem(2 * channels, ngf), downsampling(ngf, n_down),
            *[ResnetBlock(dim) for _ in range(n_blocks)],
            upsampling(ngf, n_down), rgb_head(ngf, channels, nn.Sigmoid()))
        init_weights(self)

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless the sides are multiples of ``2**n_down`` with a bottleneck >= 2."""
        check_side(f"AlphaBlender (n_down={self.n_down})", height, width, 2 ** self.n_down, 2 ** (self.n_down + 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if a.shape != b.shape:
            raise ValueError(f"AlphaBlender: the two images differ in shape, {tuple(a.shape)} vs {tuple(b.shape)}")
        if a.dim() != 4 or a.shape[1] != self.channels:
            raise ValueError(f"AlphaBlender expects images of shape (N, {self.channels}, H, W), got {tuple(a.shape)}")
        self.check_size(a.shape[2], a.shape[3])
        alpha = self.net(torch.cat([a, b], dim=1))
        return alpha * a + (1 - alpha) * b, alpha
