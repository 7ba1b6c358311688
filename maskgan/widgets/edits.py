"""Pure label-map edits behind the mask editor: brush strokes and one-click edits (paper Sec. 3.3).

MaskGAN edits a face by editing its semantic mask ``M^src`` and rendering it with the style of
the original pair ``(I^t, M^t)``. Everything a user does to the mask in the editor goes through
the functions here; they take a label map (H x W integer array, ids 0..18) and return a **new**
one, never touching their input, so they are testable without a browser and reusable in notebooks.

* :func:`stroke_mask` / :func:`paint_stroke`: a brush stroke is a polyline of points ``(x, y)``
  in label-pixel coordinates (pixel ``[row, col]`` has its centre at ``x = col, y = row``); every
  pixel whose centre lies within ``radius`` of the polyline takes the brush class. Consecutive
  points are joined by segments, so a fast drag leaves no gaps.
* :func:`close_mouth`: the inner mouth becomes lips (the upper half upper lip, the lower half lower lip).
* :func:`remove_class`: a part disappears and what lay under it is guessed from its neighbours
  (each removed pixel takes the class of the nearest remaining pixel).
* :func:`transplant_class` / :func:`swap_hair`: take one part (the hair) from a second face's mask,
  respecting the CelebAMask-HQ merge order (parts painted after hair, such as hat, neck and cloth,
  stay on top).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..brush import _label_array, class_id, paint_stroke, stroke_mask
from ..labels import CLASS_IDS

__all__ = ["stroke_mask", "paint_stroke", "close_mouth", "remove_class", "transplant_class", "swap_hair",
           "remove_glasses", "ONE_CLICK_EDITS", "class_id"]


def close_mouth(label) -> np.ndarray:
    """Close the mouth: inner-mouth pixels become lips, meeting in the middle.

    In each image column the mouth pixels above the column's mouth centre become upper lip and the
    others lower lip, so the two lips close over the gap. A face without visible mouth is returned
    unchanged (as a copy).
    """
    arr = _label_array(label)
    out = arr.copy()
    mouth = arr == CLASS_IDS["mouth"]
    if not mouth.any():
        return out
    rows = np.arange(arr.shape[0], dtype=np.float64)[:, None]
    count = mouth.sum(axis=0)
    centre = (mouth * rows).sum(axis=0) / np.maximum(count, 1)  # per column
    upper = mouth & (rows < centre[None, :])
    out[upper] = CLASS_IDS["u_lip"]
    out[mouth & ~upper] = CLASS_IDS["l_lip"]
    return out


def _fill_nearest(arr: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill ``hole`` pixels with the class of the nearest pixel outside it (4-neighbour growth)."""
    out = arr.copy()
    known = ~hole
    if not known.any():
        out[hole] = 0  # nothing to grow from: background
        return out
    while not known.all():
        grown = known.copy()
        for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
            src_known = np.roll(known, step, axis=axis)
            src_val = np.roll(out, step, axis=axis)
            # np.roll wraps around; forbid growth across the image border.
            edge = [slice(None), slice(None)]
            edge[axis] = slice(0, 1) if step == 1 else slice(-1, None)
            src_known[tuple(edge)] = False
            take = src_known & ~grown
            out[take] = src_val[take]
            grown |= take
        known = grown
    return out


def remove_class(label, cls: int | str) -> np.ndarray:
    """Remove a part: its pixels take the class of the nearest pixel of another class.

    What lay under the part is unknown; growing the surrounding classes into the hole is a good
    guess for a mask (skin closes over removed eyeglasses, background over removed hair outside the face).
    """
    arr = _label_array(label)
    cid = class_id(cls)
    if cid == 0:
        raise ValueError("cannot remove the background class (0): every pixel needs a class")
    hole = arr == cid
    if not hole.any():
        return arr.copy()
    return _fill_nearest(arr, hole)


def transplant_class(label, donor, cls: int | str) -> np.ndarray:
    """Take part ``cls`` from a second face's mask ``donor``: remove ours, paint theirs.

    Our own part is removed first (:func:`remove_class`); the donor's part is then painted with the
    CelebAMask-HQ merge order: it covers classes painted before it (skin, ears, ... for hair) and
    stays under classes painted after it (hat, earrings, necklace, neck, cloth for hair).
    """
    arr = _label_array(label)
    don = _label_array(donor, "donor label map")
    if arr.shape != don.shape:
        raise ValueError(f"the donor mask is {don.shape[0]}x{don.shape[1]} but the edited mask is "
                         f"{arr.shape[0]}x{arr.shape[1]}; they must have the same size")
    cid = class_id(cls)
    out = remove_class(arr, cid)
    out[(don == cid) & (out < cid)] = cid
    return out


def swap_hair(label, donor) -> np.ndarray:
    """Hairstyle from another face (Fig. 1 "hairstyle"): :func:`transplant_class` of ``"hair"``."""
    return transplant_class(label, donor, "hair")


def remove_glasses(label) -> np.ndarray:
    """Take the eyeglasses off: :func:`remove_class` of ``"eye_g"``."""
    return remove_class(label, "eye_g")


#: One-click edits of the mask editor: name -> function(label, donor) -> new label map.
ONE_CLICK_EDITS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "close mouth": lambda label, donor: close_mouth(label),
    "remove glasses": lambda label, donor: remove_glasses(label),
    "hair from other face": swap_hair,
}
