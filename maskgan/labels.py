"""The 19 CelebAMask-HQ classes: ids, names, merge order, palette, one-hot encoding.

CelebAMask-HQ annotates 18 face parts, one binary PNG per part. A label map merges them into one
image of ids 0..18 (0 is background). The id of a part is its position in :data:`MERGE_ORDER` plus
one, and parts are painted in that order, so a later part overwrites an earlier one where they
overlap (hair over skin, eyeglasses over eyes, hat over hair, cloth over neck).

Several label orders circulate for this dataset; this one is the order of the authors' own
preprocessing script, which is also the order the released MaskGAN models were trained with.
"""
from __future__ import annotations

import numpy as np

from .errors import LabelError

__all__ = [
    "NUM_CLASSES", "MERGE_ORDER", "CLASS_NAMES", "CLASS_IDS", "PALETTE", "FLIP_SWAP",
    "LabelError", "validate_label_map", "colorize", "one_hot", "flip_labels", "label_of",
]

#: Parts in the order they are painted when merging the per-part PNGs (later overwrites earlier).
MERGE_ORDER: tuple[str, ...] = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)

#: Names by id: ``CLASS_NAMES[0] == "background"``, ``CLASS_NAMES[1] == "skin"``, ...
CLASS_NAMES: tuple[str, ...] = ("background",) + MERGE_ORDER

#: Ids by name.
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

NUM_CLASSES: int = len(CLASS_NAMES)  # 19

#: Display palette, one RGB triple per id (the colours of the CelebAMask-HQ figures).
PALETTE: np.ndarray = np.array([
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204),
    (0, 255, 255), (51, 255, 255), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0),
    (0, 0, 153), (0, 0, 204), (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51),
    (0, 204, 0),
], dtype=np.uint8)

#: Classes that trade places under a horizontal flip (left eye becomes right eye, ...).
FLIP_SWAP: tuple[tuple[str, str], ...] = (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"))

# Lookup table id -> id after a horizontal flip.
_FLIP_LUT = np.arange(NUM_CLASSES, dtype=np.uint8)
for _a, _b in FLIP_SWAP:
    _FLIP_LUT[CLASS_IDS[_a]], _FLIP_LUT[CLASS_IDS[_b]] = CLASS_IDS[_b], CLASS_IDS[_a]


def label_of(name: str) -> int:
    """Id of a class by name, with an error listing the valid names."""
    try:
        return CLASS_IDS[name]
    except KeyError:
        raise KeyError(f"unknown class {name!r}; CelebAMask-HQ classes are {', '.join(CLASS_NAMES)}") from None


def _bad_values(values) -> list[int]:
    vals = np.unique(np.asarray(values))
    return [int(v) for v in vals if v < 0 or v >= NUM_CLASSES or v != int(v)]


def validate_label_map(label_map, source: str | None = None) -> None:
    """Raise :class:`LabelError` naming the offending values if any value is outside 0..18.

    ``source`` (a file name, say) is included in the message so the user knows where to look.
    """
    try:
        import torch
        if isinstance(label_map, torch.Tensor):
            if label_map.is_floating_point():
                bad_mask = (label_map < 0) | (label_map >= NUM_CLASSES) | (label_map != label_map.round())
            else:
                bad_mask = (label_map < 0) | (label_map >= NUM_CLASSES)
            if not bool(bad_mask.any()):
                return
            label_map = label_map[bad_mask].detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency, but labels work without it
        pass
    arr = np.asarray(label_map)
    if arr.size == 0:
        return
    if np.issubdtype(arr.dtype, np.integer) and arr.min() >= 0 and arr.max() < NUM_CLASSES:
        return
    bad = _bad_values(arr)
    if bad:
        where = f"{source} has" if source else "label map has"
        shown = ", ".join(str(v) for v in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise LabelError(f"{where} label value(s) {shown}; CelebAMask-HQ labels are 0..{NUM_CLASSES - 1}")


def colorize(label_map) -> np.ndarray:
    """Colour a label map (H x W, any integer array or tensor) with :data:`PALETTE` -> uint8 H x W x 3."""
    if hasattr(label_map, "detach"):
        label_map = label_map.detach().cpu().numpy()
    arr = np.asarray(label_map)
    validate_label_map(arr)
    return PALETTE[arr.astype(np.int64)]


def one_hot(label_map, num_classes: int = NUM_CLASSES, dtype=None):
    """One-hot encode label maps as a float tensor on the label map's device.

    ``(H, W) -> (19, H, W)`` and ``(N, H, W) -> (N, 19, H, W)``; a ``(N, 1, H, W)`` input is
    squeezed first. Values outside 0..18 raise :class:`LabelError` naming them.
    """
    import torch
    if not isinstance(label_map, torch.Tensor):
        label_map = torch.from_numpy(np.ascontiguousarray(label_map))
    if label_map.dim() == 4:
        if label_map.shape[1] != 1:
            raise ValueError(f"one_hot expects a label map (H, W), (N, H, W) or (N, 1, H, W); got shape {tuple(label_map.shape)}")
        label_map = label_map[:, 0]
    if label_map.dim() not in (2, 3):
        raise ValueError(f"one_hot expects a label map (H, W), (N, H, W) or (N, 1, H, W); got shape {tuple(label_map.shape)}")
    validate_label_map(label_map)
    idx = label_map.long()
    out = torch.zeros((num_classes,) + tuple(idx.shape), dtype=dtype or torch.float32, device=idx.device)
    out.scatter_(0, idx.unsqueeze(0), 1.0)
    return out.movedim(0, -3)  # class axis just before H, W


def flip_labels(label_map):
    """Horizontally flip a label map and swap left/right classes (l_eye <-> r_eye, ...).

    A plain flip would leave the left eye labelled ``l_eye`` on the right side of the face,
    which corrupts training data; every flip of CelebAMask-HQ masks must go through this.
    Works on numpy arrays and torch tensors; the last axis is the width.
    """
    try:
        import torch
        if isinstance(label_map, torch.Tensor):
            lut = torch.from_numpy(_FLIP_LUT).to(label_map.device)
            return lut[label_map.long().flip(-1)].to(label_map.dtype)
    except ImportError:  # pragma: no cover
        pass
    arr = np.asarray(label_map)
    return _FLIP_LUT[arr[..., ::-1]].astype(arr.dtype)
