"""The kit's tensor conventions for one face: images float32 ``3 x H x W`` in [-1, 1] (the DMN's
tanh range), label maps int64 ``H x W``."""
from __future__ import annotations

import numpy as np
import torch
from maskgan.errors import DataError

__all__ = ["image_to_tensor", "label_to_tensor"]


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> float32 ``3 x H x W`` in [-1, 1]."""
    arr = np.ascontiguousarray(image)
    if not arr.flags.writeable:  # e.g. np.asarray of a PIL image: torch wants memory it may write
        arr = arr.copy()
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"expected a uint8 RGB image (H, W, 3), got {arr.dtype} {arr.shape}")
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def label_to_tensor(label: np.ndarray) -> torch.Tensor:
    """Integer ``H x W`` label map -> int64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))
