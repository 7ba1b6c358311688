"""Measures on sequences and pairs of label maps: MaskVAE smoothness and the edited region.

**Interpolation smoothness.** MaskVAE (paper Sec. 3.2) is meant to give a *smooth* manifold of
masks: walking in a straight line between two latent codes should morph one mask into the other a
little at a time. :func:`label_change_fraction` measures this on the decoded masks of such a walk:
the fraction of pixels whose label changes between neighbouring steps. A smooth walk spreads the
change evenly (low maximum); a jump shows up as one large step.

**Edited region.** To check that an edit changes only what the user changed, compare the output
with the reference inside and outside the region whose label changed (:func:`edit_region`, then
:func:`maskgan.metrics.image.inside_outside`). The region is dilated by a few pixels because a
generator legitimately repaints a thin band around a moved boundary.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ._common import check_labels

__all__ = ["label_change_fraction", "edit_region", "grow_region"]


def label_change_fraction(label_maps: torch.Tensor | Sequence[torch.Tensor]) -> dict:
    """Fraction of pixels changing label between consecutive steps of a sequence of label maps.

    ``label_maps``: a tensor ``(T, H, W)`` or ``(T, N, H, W)`` (T steps, optionally a batch of N
    walks), or a list of T label maps of one shape. Returns ``{"mean": float, "max": float,
    "per_step": tensor (T - 1,)}``, where step t compares map t with map t + 1 over all pixels
    (of all N walks).
    """
    if not isinstance(label_maps, torch.Tensor):
        maps = list(label_maps)
        if not maps:
            raise ValueError("label_change_fraction needs at least 2 label maps, got an empty sequence")
        shapes = {tuple(m.shape) for m in maps if isinstance(m, torch.Tensor)}
        if len(shapes) != 1 or not all(isinstance(m, torch.Tensor) for m in maps):
            raise ValueError(f"label maps of a sequence must be tensors of one shape, got shapes {sorted(shapes)}")
        label_maps = torch.stack(maps)
    check_labels(label_maps, "label_maps")
    if label_maps.dim() not in (3, 4):
        raise ValueError(f"label_maps must be (T, H, W) or (T, N, H, W), got {tuple(label_maps.shape)}")
    if label_maps.shape[0] < 2:
        raise ValueError(f"label_change_fraction needs at least 2 steps, got {label_maps.shape[0]}")
    changed = label_maps[1:] != label_maps[:-1]
    per_step = changed.flatten(1).double().mean(1).cpu()
    return {"mean": float(per_step.mean()), "max": float(per_step.max()), "per_step": per_step}


def edit_region(before_labels: torch.Tensor, after_labels: torch.Tensor, dilate: int = 2) -> torch.Tensor:
    """Bool mask of the pixels whose label changed, grown by ``dilate`` px (square neighbourhood).

    Shapes ``(H, W)`` or ``(N, H, W)``; the result has the same shape. ``dilate=0`` gives exactly
    the changed pixels.
    """
    check_labels(before_labels, "before_labels")
    check_labels(after_labels, "after_labels")
    if before_labels.shape != after_labels.shape:
        raise ValueError(f"before_labels and after_labels must have the same shape, got "
                         f"{tuple(before_labels.shape)} and {tuple(after_labels.shape)}")
    if before_labels.dim() not in (2, 3):
        raise ValueError(f"label maps must be (H, W) or (N, H, W), got {tuple(before_labels.shape)}")
    if not isinstance(dilate, int) or dilate < 0:
        raise ValueError(f"dilate must be a non-negative number of pixels, got {dilate!r}")
    return grow_region(before_labels != after_labels, dilate)


def grow_region(region: torch.Tensor, px: int) -> torch.Tensor:
    """A bool region ``(H, W)`` or ``(N, H, W)`` grown by ``px`` pixels (square neighbourhood)."""
    if px <= 0:
        return region.bool()
    x = region.float().reshape(-1, 1, *region.shape[-2:])
    grown = F.max_pool2d(x, kernel_size=2 * px + 1, stride=1, padding=px) > 0
    return grown.reshape(region.shape)
