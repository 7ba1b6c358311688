"""Looking inside the spatial-aware style encoder (paper Sec. 3.1, Fig. 2, Eq. 1-2), for notebook 05.

The style encoder reads the target image, and twice modulates its features with SFT (Eq. 1):
``out = gamma(A) * F + beta(A)`` with ``A`` the label encoder's features of the target mask at 1/4
size, then again with ``B`` at the bottom. The modulation is *spatial*: gamma and beta differ from
pixel to pixel according to which face part is there, so the encoder can collect "the colour of
the hair" from hair pixels and "the skin tone" from skin pixels. Global pooling then turns the
modulated features into the AdaIN parameters (Eq. 2) of the backbone's residual blocks.

These functions expose each piece: the gamma/beta maps, the AdaIN vector, and three experiments
(swapping styles, bypassing an SFT layer, editing one region of the condition mask).
"""
from __future__ import annotations

import torch

from .labels import CLASS_IDS, one_hot

__all__ = ["sft_maps", "adain_parameters", "style_swap", "bypass_sft", "condition_edit", "top_channels"]


def _batch(image: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    image = image.unsqueeze(0) if image.dim() == 3 else image
    label = label.unsqueeze(0) if label.dim() == 2 else label
    return image, one_hot(label)


@torch.no_grad()
def sft_maps(dmn, image: torch.Tensor, label: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"A": (gamma, beta), "B": (gamma, beta)}`` of one face, each ``(C, h, w)`` (Eq. 1)."""
    image, mask = _batch(image, label)
    feat_a, feat_b = dmn.label_encoder(mask)
    enc = dmn.style_encoder
    return {"A": tuple(t[0] for t in enc.sft_a.modulation(feat_a)),
            "B": tuple(t[0] for t in enc.sft_b.modulation(feat_b))}


def top_channels(gamma: torch.Tensor, k: int = 4) -> list[int]:
    """The ``k`` channels whose gamma varies most across the image (the most *spatial* ones)."""
    return gamma.flatten(1).std(1).topk(min(k, gamma.shape[0])).indices.tolist()


@torch.no_grad()
def adain_parameters(dmn, image: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
    """The AdaIN vector of a face split per block: ``{"block0.norm1.gamma": (C,), ...}`` (Eq. 2)."""
    image, mask = _batch(image, label)
    style = dmn.style(image, mask)
    out = {}
    for b, pairs in enumerate(dmn.backbone.split_style(style)):
        for n, (gamma, beta) in enumerate(pairs, 1):
            out[f"block{b}.norm{n}.gamma"] = gamma[0]
            out[f"block{b}.norm{n}.beta"] = beta[0]
    return out


@torch.no_grad()
def style_swap(dmn, face_a: tuple, face_b: tuple) -> dict[str, torch.Tensor]:
    """Render each face's mask with its own and with the other face's style.

    Keys: ``a_in_a``, ``a_in_b`` (a's layout, b's style), ``b_in_b``, ``b_in_a``.
    """
    (img_a, mask_a), (img_b, mask_b) = _batch(*face_a), _batch(*face_b)
    s_a, s_b = dmn.style(img_a, mask_a), dmn.style(img_b, mask_b)
    return {"a_in_a": dmn.render(mask_a, s_a)[0], "a_in_b": dmn.render(mask_a, s_b)[0],
            "b_in_b": dmn.render(mask_b, s_b)[0], "b_in_a": dmn.render(mask_b, s_a)[0]}


@torch.no_grad()
def bypass_sft(dmn, image: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
    """The face re-rendered with SFT A, B, or both replaced by the identity (gamma 1, beta 0).

    Keys ``full``, ``no_A``, ``no_B``, ``no_AB``; and ``*_style_change``: relative L2 change of the
    AdaIN vector, showing how much each SFT layer contributes to the style.
    """
    image, mask = _batch(image, label)
    full = dmn.style(image, mask)
    out = {"full": dmn.render(mask, full)[0]}
    for name, which in (("no_A", ("A",)), ("no_B", ("B",)), ("no_AB", ("A", "B"))):
        style = dmn.style(image, mask, bypass_sft=which)
        out[name] = dmn.render(mask, style)[0]
        out[f"{name}_style_change"] = ((style - full).norm() / full.norm().clamp_min(1e-8)).item()
    return out


@torch.no_grad()
def condition_edit(dmn, image: torch.Tensor, label: torch.Tensor, region: str = "hair",
                   becomes: str = "background") -> dict[str, torch.Tensor]:
    """Relabel one region of the *condition* mask (the one the style encoder sees), keep the image
    and the rendered layout: how does the style read from that region change the output?"""
    image, mask = _batch(image, label)
    lab = mask.argmax(1)
    edited = lab.clone()
    edited[lab == CLASS_IDS[region]] = CLASS_IDS[becomes]
    s_orig, s_edit = dmn.style(image, mask), dmn.style(image, one_hot(edited))
    a, b = dmn.render(mask, s_orig)[0], dmn.render(mask, s_edit)[0]
    return {"condition": edited[0], "original": a, "edited_condition": b, "difference": (a - b).abs().mean(0)}
