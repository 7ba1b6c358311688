"""The Dense Mapping Network (DMN), paper Sec. 3.1 and Fig. 2: a mask-to-face generator whose
*style* comes from a reference image and whose *layout* comes from a (possibly edited) mask.

Three parts, each its own module here:

* :class:`LabelEncoder` reads the target mask ``M^t`` and produces two condition feature maps,
  ``A`` at 1/4 and ``B`` at 1/32 of the input size (64 channels at the paper's widths).
* :class:`StyleEncoder` ("spatial-aware style encoder") reads the target image ``I^t``; after two
  stride-2 convs its features are modulated by **SFT** with ``A`` (Eq. 1), after three more by SFT
  with ``B``; global average pooling and a 1x1 conv give the AdaIN parameter vector.
* :class:`Backbone`, the Pix2PixHD global generator on the one-hot mask, with **AdaIN** residual
  blocks (Eq. 2) that take that vector: ``I^out = G_A(Enc_style(I^t, M^t), M^t)``.

Editing (Sec. 3.3) keeps the style of ``(I^t, M^t)`` and renders an edited mask ``M^src``; hence the
separate :meth:`DenseMappingNetwork.style` and :meth:`DenseMappingNetwork.render`.

At the paper widths (ngf 64, 4 downsamplings, 4 blocks, encoder width 16, 5 encoder downsamplings)
the parameter counts equal the authors' demo: backbone 88,111,363, style encoder 1,338,464, label
encoder 252,768, total 89,702,595.
"""
from __future__ import annotations

import torch
from torch import nn

from ..labels import NUM_CLASSES
from .layers import AdaINResnetBlock, SFT, check_side, conv_block, downsampling, init_weights, rgb_head, stem, upsampling

__all__ = ["Backbone", "LabelEncoder", "StyleEncoder", "DenseMappingNetwork"]


class Backbone(nn.Module):
    """Pix2PixHD global generator with AdaIN residual blocks: one-hot mask + style vector -> RGB in [-1, 1].

    Stem (7x7, ngf) -> ``n_down`` stride-2 convs (width ``ngf * 2**n_down`` at the bottom) ->
    ``n_blocks`` :class:`AdaINResnetBlock` -> ``n_down`` transposed convs -> 7x7 conv -> tanh.
    InstanceNorm without affine everywhere except the AdaIN blocks.

    Style vector layout (``(N, n_style_params)``), the same as the demo's so its weights could be
    mapped: for each AdaIN layer in order (block 0 norm 1, block 0 norm 2, block 1 norm 1, ...),
    ``C`` values of ``beta`` (the demo's "mean", Eq. 2's y) followed by ``C`` of ``gamma`` ("std", x).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ngf: int = 64, n_down: int = 4, n_blocks: int = 4):
        super().__init__()
        self.num_classes, self.ngf, self.n_down, self.n_blocks = num_classes, ngf, n_down, n_blocks
        self.dim = ngf * 2 ** n_down  # bottleneck width
        self.stem = stem(num_classes, ngf)
        self.down = downsampling(ngf, n_down)
        self.blocks = nn.ModuleList(AdaINResnetBlock(self.dim) for _ in range(n_blocks))
        self.up = upsampling(ngf, n_down)
        self.head = rgb_head(ngf, 3, nn.Tanh())

    @property
    def n_style_params(self) -> int:
        """Length of the AdaIN parameter vector: blocks x 2 norms x (beta + gamma) x bottleneck width."""
        return self.n_blocks * AdaINResnetBlock.n_norms * 2 * self.dim

    def split_style(self, style: torch.Tensor) -> list[tuple[tuple[torch.Tensor, torch.Tensor], ...]]:
        """Cut the ``(N, n_style_params)`` vector into per-block ``((gamma1, beta1), (gamma2, beta2))``."""
        c = self.dim
        chunks = style.reshape(style.shape[0], -1, 2, c)  # (N, norms, [beta, gamma], C)
        pairs = [(chunks[:, k, 1], chunks[:, k, 0]) for k in range(chunks.shape[1])]
        return [tuple(pairs[b * 2:(b + 1) * 2]) for b in range(self.n_blocks)]

    def forward(self, mask: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if style.dim() != 2 or style.shape[1] != self.n_style_params:
            raise ValueError(
                f"style parameters must have shape (N, {self.n_style_params}) = (N, {self.n_blocks} blocks x "
                f"2 norms x (mean + std) x {self.dim} channels), got {tuple(style.shape)}")
        h = self.down(self.stem(mask))
        for block, params in zip(self.blocks, self.split_style(style)):
            h = block(h, params)
        return self.head(self.up(h))


class LabelEncoder(nn.Module):
    """Mask features ``(A, B)`` that condition the style encoder's two SFT layers (Fig. 2).

    7x7 conv (num_classes -> ch) -> 4x4 s2 (-> 2ch) -> 4x4 s2 (-> 4ch, no activation) = ``A`` at 1/4
    size; then ReLU and ``n_down - 2`` more 4x4 s2 convs (ReLU between, none after the last) = ``B``
    at ``1/2**n_down``. Reflection padding, no normalisation (as the demo).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ch: int = 16, n_down: int = 5):
        super().__init__()
        if n_down < 3:
            raise ValueError(f"LabelEncoder needs n_down >= 3 (2 convs before SFT A, at least 1 before SFT B), got {n_down}")
        self.out_channels = 4 * ch
        self.to_a = nn.Sequential(
            conv_block(num_classes, ch, 7, 1, 3), conv_block(ch, 2 * ch, 4, 2, 1),
            conv_block(2 * ch, 4 * ch, 4, 2, 1, act=None))
        tail: list[nn.Module] = [nn.ReLU()]
        for i in range(n_down - 2):
            last = i == n_down - 3
            tail.append(conv_block(4 * ch, 4 * ch, 4, 2, 1, act=None if last else "relu"))
        self.to_b = nn.Sequential(*tail)

    def forward(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.to_a(mask)
        return a, self.to_b(a)


class StyleEncoder(nn.Module):
    """Spatial-aware style encoder (Fig. 2): image + mask features -> AdaIN parameter vector.

    7x7 conv (3 -> ch) -> 4x4 s2 (-> 2ch) -> 4x4 s2 (-> 4ch) -> **SFT with A** -> ``n_down - 2`` x
    4x4 s2 (4ch) -> **SFT with B** -> global average pool -> 1x1 conv to ``n_style_params``. ReLU
    after every conv but the last; reflection padding; no normalisation (as the demo).
    """

    def __init__(self, n_style_params: int, ch: int = 16, n_down: int = 5, in_channels: int = 3):
        super().__init__()
        if n_down < 3:
            raise ValueError(f"StyleEncoder needs n_down >= 3, got {n_down}")
        w = 4 * ch
        self.head = nn.Sequential(conv_block(in_channels, ch, 7, 1, 3), conv_block(ch, 2 * ch, 4, 2, 1),
                                  conv_block(2 * ch, w, 4, 2, 1))
        self.sft_a = SFT(w)
        self.middle = nn.Sequential(*[conv_block(w, w, 4, 2, 1) for _ in range(n_down - 2)])
        self.sft_b = SFT(w)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.to_params = nn.Conv2d(w, n_style_params, 1)

    def forward(self, image: torch.Tensor, feat_a: torch.Tensor, feat_b: torch.Tensor,
                bypass_sft: tuple[str, ...] = ()) -> torch.Tensor:
        """``bypass_sft`` names SFT layers ("A", "B") to replace by the identity (gamma = 1, beta = 0):
        an ablation for inspection (notebook 05), never used in training."""
        h = self.head(image)
        h = h if "A" in bypass_sft else self.sft_a(h, feat_a)
        h = self.middle(h)
        h = h if "B" in bypass_sft else self.sft_b(h, feat_b)
        return self.to_params(self.pool(h)).flatten(1)


class DenseMappingNetwork(nn.Module):
    """The DMN: ``forward(mask, image, image_mask=None)`` renders ``mask`` in the style of ``image``.

    * :meth:`style` ``(image, image_mask) -> (N, P)`` AdaIN parameters (label encoder + style encoder);
    * :meth:`render` ``(mask, style) -> image`` (the backbone); a style of batch 1 is broadcast to
      every mask, so one reference style can be computed once and reused for many edits;
    * :meth:`forward` = ``render(mask, style(image, image_mask or mask))``.

    Masks are one-hot ``(N, num_classes, H, W)`` floats; images are RGB in [-1, 1], same ``H, W``.

    ``encoder_init``: the demo initialises every conv with N(0, 0.02) (``"demo"``). The two encoders
    have no normalisation layers, so through their seven convs the image signal shrinks about
    100-fold: at initialisation the style vector is nearly the same for every image (measured at
    the cpu preset: its spread across a batch is 0.0004, against 0.12 with ``"kaiming"``) and the
    DMN first learns to ignore the style. ``"kaiming"`` (the default, a deliberate deviation; no
    parameter count changes) uses He-normal weights and zero biases in the encoders only.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ngf: int = 64, n_down: int = 4, n_blocks: int = 4,
                 enc_ch: int = 16, enc_n_down: int = 5, encoder_init: str = "kaiming"):
        super().__init__()
        self.num_classes, self.n_down, self.enc_n_down = num_classes, n_down, enc_n_down
        self.backbone = Backbone(num_classes, ngf, n_down, n_blocks)
        self.label_encoder = LabelEncoder(num_classes, enc_ch, enc_n_down)
        self.style_encoder = StyleEncoder(self.backbone.n_style_params, enc_ch, enc_n_down)
        init_weights(self.backbone)
        init_weights(self.label_encoder, scheme=encoder_init)
        init_weights(self.style_encoder, scheme=encoder_init)

    @property
    def n_style_params(self) -> int:
        return self.backbone.n_style_params

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per part (``backbone``, ``style_encoder``, ``label_encoder``) and ``total``."""
        parts = {name: sum(p.numel() for p in getattr(self, name).parameters())
                 for name in ("backbone", "style_encoder", "label_encoder")}
        parts["total"] = sum(parts.values())
        return parts

    # --- input checks ------------------------------------------------------------------------
    def min_size(self) -> int:
        """Smallest side the network accepts; every side must also be a multiple of it.

        The backbone halves the size ``n_down`` times and its residual blocks reflection-pad by 1
        (needs a bottleneck of at least 2); the encoders halve it ``enc_n_down`` times.
        """
        return max(2 ** (self.n_down + 1), 2 ** self.enc_n_down)

    def check_size(self, height: int, width: int) -> None:
        """Raise a ValueError unless ``height`` x ``width`` fits this network."""
        check_side(f"DMN (n_down={self.n_down}, enc_n_down={self.enc_n_down})", height, width,
                   max(2 ** self.n_down, 2 ** self.enc_n_down), self.min_size())

    def _check_mask(self, mask: torch.Tensor, what: str = "mask") -> None:
        if mask.dim() != 4:
            raise ValueError(f"DMN expects a {what} of shape (N, {self.num_classes}, H, W) (one-hot), "
                             f"got shape {tuple(mask.shape)}")
        if mask.shape[1] != self.num_classes:
            raise ValueError(f"DMN expects a {self.num_classes}-channel one-hot {what}, got {mask.shape[1]} channels "
                             f"(turn a label map into one with maskgan.labels.one_hot)")
        self.check_size(mask.shape[2], mask.shape[3])

    def _check_image(self, image: torch.Tensor, mask: torch.Tensor) -> None:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"DMN expects an RGB image of shape (N, 3, H, W) in [-1, 1], got shape {tuple(image.shape)}")
        if image.shape[2:] != mask.shape[2:]:
            raise ValueError(f"DMN: the image is {image.shape[2]}x{image.shape[3]} but its mask is "
                             f"{mask.shape[2]}x{mask.shape[3]}; they must have the same size")
        if image.shape[0] != mask.shape[0]:
            raise ValueError(f"DMN: {image.shape[0]} images but {mask.shape[0]} masks; the batch sizes must match")

    # --- the three entry points -------------------------------------------------------------
    def style(self, image: torch.Tensor, image_mask: torch.Tensor, bypass_sft: tuple[str, ...] = ()) -> torch.Tensor:
        """AdaIN parameters ``(N, n_style_params)`` of ``image`` given its own one-hot mask (Fig. 2).
        ``bypass_sft`` (inspection only): SFT layers "A" / "B" to skip."""
        self._check_mask(image_mask, "image mask")
        self._check_image(image, image_mask)
        feat_a, feat_b = self.label_encoder(image_mask)
        return self.style_encoder(image, feat_a, feat_b, bypass_sft)

    def render(self, mask: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Generate an image of layout ``mask`` with the AdaIN parameters ``style`` (from :meth:`style`)."""
        self._check_mask(mask)
        if style.dim() == 2 and style.shape[0] == 1 and mask.shape[0] > 1:
            style = style.expand(mask.shape[0], -1)
        if style.dim() == 2 and style.shape[0] != mask.shape[0]:
            raise ValueError(f"DMN.render: {style.shape[0]} style vectors for {mask.shape[0]} masks; "
                             f"give one per mask or a single one to share")
        return self.backbone(mask, style)

    def forward(self, mask: torch.Tensor, image: torch.Tensor, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Render ``mask`` in the style of ``(image, image_mask)``; ``image_mask`` defaults to ``mask``
        (training, Sec. 3.1: ``I^out = G_A(Enc_style(I^t, M^t), M^t)``)."""
        self._check_mask(mask)  # the layout mask first: its errors name it
        return self.render(mask, self.style(image, mask if image_mask is None else image_mask))
