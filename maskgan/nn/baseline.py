"""The mask-only baseline of the ablation: a Pix2PixHD global generator without a style encoder.

MaskGAN's Sec. 4 compares the Dense Mapping Network with **Pix2PixHD-m**, a Pix2PixHD generator
(Wang et al. 2018, "High-Resolution Image Synthesis and Semantic Manipulation with Conditional
GANs") trained on the same face masks. The kit's reading of that baseline, for the ablation on
SynthFaces (the paper's variant may differ in details it does not spell out): **the DMN backbone
with plain InstanceNorm residual blocks and no style input**. It is the DMN minus the
spatial-aware style encoder (and its label encoder), so any difference in the ablation comes from
the style path alone:

* same stem, same ``n_down`` stride-2 convs, same number of residual blocks, same transposed-conv
  upsampling and tanh head as :class:`maskgan.nn.dmn.Backbone`;
* the residual blocks are :class:`maskgan.nn.layers.ResnetBlock` (InstanceNorm without affine)
  instead of :class:`~maskgan.nn.layers.AdaINResnetBlock` (Eq. 2): nothing tells it *whose* face
  to draw, so for a given mask it always draws the same face, the average appearance the losses
  pull it to.

It is trained as stage ``p2p`` (:class:`maskgan.train.baseline.P2PTrainer`) with the losses of
stage I (Eq. 6) and the same discriminator. To be evaluated by the same code as the DMN it has the
DMN's interface: :meth:`MaskOnlyGenerator.style` returns an empty style vector and
:meth:`MaskOnlyGenerator.render` ignores it; ``forward(mask, image)`` accepts and ignores the image.
"""
from __future__ import annotations

import torch
from torch import nn

from ..labels import NUM_CLASSES
from .layers import ResnetBlock, check_side, downsampling, init_weights, rgb_head, stem, upsampling

__all__ = ["MaskOnlyGenerator", "build_p2p"]


class MaskOnlyGenerator(nn.Module):
    """Pix2PixHD-m: one-hot mask -> RGB in [-1, 1], with no style input.

    ``forward(mask, image=None, image_mask=None)``: ``image`` and ``image_mask`` are accepted so
    that the generator can stand in for a :class:`~maskgan.nn.dmn.DenseMappingNetwork`, and are
    ignored (only their shapes are checked). Widths follow the DMN backbone: ``ngf`` after the
    7x7 stem, ``ngf * 2**n_down`` at the bottleneck, ``n_blocks`` residual blocks there.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ngf: int = 64, n_down: int = 4, n_blocks: int = 4):
        super().__init__()
        for name, value in (("ngf", ngf), ("n_down", n_down), ("n_blocks", n_blocks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MaskOnlyGenerator {name} must be an integer >= 1, got {value!r}")
        self.num_classes, self.ngf, self.n_down, self.n_blocks = num_classes, ngf, n_down, n_blocks
        self.dim = ngf * 2 ** n_down
        self.stem = stem(num_classes, ngf)
        self.down = downsampling(ngf, n_down)
        self.blocks = nn.Sequential(*[ResnetBlock(self.dim) for _ in range(n_blocks)])
        self.up = upsampling(ngf, n_down)
        self.head = rgb_head(ngf, 3, nn.Tanh())
        init_weights(self)  # N(0, 0.02) conv weights, as the DMN

    #: A style vector of this generator has no entries (it has no style path).
    n_style_params = 0

    def check_size(self, height: int, width: int) -> None:
        """Sides must be multiples of ``2**n_down`` with a bottleneck of at least 2 px (the
        residual blocks reflection-pad by 1)."""
        check_side(f"MaskOnlyGenerator (n_down={self.n_down})", height, width, 2 ** self.n_down, 2 ** (self.n_down + 1))

    def _check_mask(self, mask: torch.Tensor) -> None:
        if mask.dim() != 4 or mask.shape[1] != self.num_classes:
            raise ValueError(f"MaskOnlyGenerator expects a one-hot mask of shape (N, {self.num_classes}, H, W), "
                             f"got {tuple(mask.shape)} (turn a label map into one with maskgan.labels.one_hot)")
        self.check_size(mask.shape[2], mask.shape[3])

    def style(self, image: torch.Tensor, image_mask: torch.Tensor) -> torch.Tensor:
        """An empty ``(N, 0)`` style: the baseline has no style encoder (DMN-compatible interface)."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected an RGB image batch (N, 3, H, W), got {tuple(image.shape)}")
        return image.new_zeros(image.shape[0], 0)

    def render(self, mask: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """The image of ``mask``; ``style`` is ignored (DMN-compatible interface)."""
        self._check_mask(mask)
        h = self.down(self.stem(mask))
        return self.head(self.up(self.blocks(h)))

    def forward(self, mask: torch.Tensor, image: torch.Tensor | None = None,
                image_mask: torch.Tensor | None = None) -> torch.Tensor:
        if image is not None and (image.dim() != 4 or image.shape[0] != mask.shape[0]):
            raise ValueError(f"MaskOnlyGenerator: image of shape {tuple(image.shape)} does not match a batch of "
                             f"{mask.shape[0]} masks (the image is ignored, but must belong to the masks)")
        return self.render(mask)


def build_p2p(cfg) -> MaskOnlyGenerator:
    """The baseline at the widths of ``cfg.model.dmn`` (ngf, n_down, n_blocks); checks ``cfg.data.size``."""
    d = cfg.model.dmn
    net = MaskOnlyGenerator(NUM_CLASSES, ngf=d.ngf, n_down=d.n_down, n_blocks=d.n_blocks)
    net.check_size(cfg.data.size, cfg.data.size)
    return net
