"""Input checks shared by the metrics: clear errors that name the value and what was expected."""
from __future__ import annotations

import torch

__all__ = ["check_images", "check_pair", "check_labels", "as_pixel_mask", "to_unit_range"]


def check_images(x, name: str = "images") -> torch.Tensor:
    """A float image batch ``(N, C, H, W)``; raises naming ``name`` and the shape it got."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, H, W) in [-1, 1], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [-1, 1], got dtype {x.dtype}")
    return x


def check_pair(a, b, names: tuple[str, str] = ("a", "b")) -> tuple[torch.Tensor, torch.Tensor]:
    """Two image batches of identical shape (compared pixel by pixel)."""
    check_images(a, names[0])
    check_images(b, names[1])
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")
    return a, b


def check_labels(x, name: str = "labels", num_classes: int | None = None) -> torch.Tensor:
    """An integer label-map tensor (any shape); with ``num_classes``, values must lie in 0..num_classes-1."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be an integer torch.Tensor of class ids, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids (e.g. int64), got dtype {x.dtype}")
    if num_classes is not None and x.numel():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= num_classes:
            bad = torch.unique(x[(x < 0) | (x >= num_classes)])[:10].tolist()
            raise ValueError(f"{name} has class id(s) {bad}; expected 0..{num_classes - 1}")
    return x


def as_pixel_mask(mask, n: int, h: int, w: int, name: str = "mask") -> torch.Tensor:
    """A region mask as bool ``(N, 1, H, W)``.

    Accepts bool or 0/1 tensors of shape ``(H, W)`` (shared by every image), ``(N, H, W)`` or
    ``(N, 1, H, W)``.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (bool or 0/1), got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"{name} must be boolean or hold only 0 and 1, got values "
                             f"{torch.unique(mask)[:10].tolist()}")
        mask = mask != 0
    shape = tuple(mask.shape)
    if mask.dim() == 2:
        mask = mask[None]  # one mask shared by every image
    if mask.dim() == 3:
        mask = mask[:, None]
    if mask.dim() != 4 or mask.shape[1] != 1 or tuple(mask.shape[2:]) != (h, w) or mask.shape[0] not in (1, n):
        raise ValueError(f"{name} must have shape (H, W), (N, H, W) or (N, 1, H, W) with N={n}, H={h}, W={w}; "
                         f"got {shape}")
    return mask.expand(n, 1, h, w)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> [0, 1] (the range PSNR and SSIM are defined on, data range 1)."""
    return (x.float() + 1.0) / 2.0
