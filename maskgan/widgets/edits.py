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

from typing import Callable, Sequence

import numpy as np

from ..labels import CLASS_IDS, CLASS_NAMES, NUM_CLASSES, validate_label_map

__all__ = ["stroke_mask", "paint_stroke", "close_mouth", "remove_class", "transplant_class", "swap_hair",
           "remove_glasses", "ONE_CLICK_EDITS", "class_id"]


def class_id(cls: int | str) -> int:
    """A class given by id (0..18) or name (``"hair"``) -> its id, with an error listing the valid ones."""
    if isinstance(cls, str):
        if cls not in CLASS_IDS:
            raise ValueError(f"unknown class {cls!r}; classes are {', '.join(CLASS_NAMES)}")
        return CLASS_IDS[cls]
    if isinstance(cls, bool) or not isinstance(cls, (int, np.integer)) or not 0 <= int(cls) < NUM_CLASSES:
        raise ValueError(f"class {cls!r} is not a class id; expected an integer 0..{NUM_CLASSES - 1} or a name "
                         f"({', '.join(CLASS_NAMES)})")
    return int(cls)


def _label_array(label, what: str = "label map") -> np.ndarray:
    if hasattr(label, "detach"):
        label = label.detach().cpu().numpy()
    arr = np.asarray(label)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H x W), got shape {arr.shape}")
    validate_label_map(arr, what)
    return arr


def _points(points) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.shape == (2,):
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"stroke points must be a non-empty sequence of (x, y) pairs, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("stroke points must be finite numbers")
    return pts


def stroke_mask(shape: tuple[int, int], points: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """Boolean H x W mask of the pixels a brush of ``radius`` covers along the polyline ``points``.

    A pixel is covered when the distance from its centre ``(x=col, y=row)`` to the nearest point of
    the polyline is at most ``radius`` (so ``radius=0`` on an integer point covers exactly one pixel).
    """
    if radius is None or not np.isfinite(radius) or radius < 0:
        raise ValueError(f"brush radius must be a number >= 0 (in label pixels), got {radius!r}")
    h, w = int(shape[0]), int(shape[1])
    pts = _points(points)
    # Only look at the bounding box of the stroke (plus the radius): cheap even at 512 x 512.
    x0 = max(int(np.floor(pts[:, 0].min() - radius)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + radius)) + 1, w)
    y0 = max(int(np.floor(pts[:, 1].min() - radius)), 0)
    y1 = min(int(np.ceil(pts[:, 1].max() + radius)) + 1, h)
    out = np.zeros((h, w), dtype=bool)
    if x0 >= x1 or y0 >= y1:
        return out
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    r2 = radius * radius + 1e-9  # tolerance: a pixel exactly at the radius counts as covered
    hit = (xs - pts[0, 0]) ** 2 + (ys - pts[0, 1]) ** 2 <= r2
    for (ax, ay), (bx, by) in zip(pts[:-1], pts[1:]):
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        # Projection of each pixel centre onto the segment, clamped to its ends.
        t = np.zeros_like(xs) if seg2 == 0 else np.clip(((xs - ax) * dx + (ys - ay) * dy) / seg2, 0.0, 1.0)
        hit |= (xs - (ax + t * dx)) ** 2 + (ys - (ay + t * dy)) ** 2 <= r2
    out[y0:y1, x0:x1] = hit
    return out


def paint_stroke(label, points: Sequence[Sequence[float]], cls: int | str, radius: float) -> np.ndarray:
    """A new label map: ``label`` with the pixels of the stroke (:func:`stroke_mask`) set to ``cls``.

    ``label``: H x W ids (numpy or torch); ``points``: ``[(x, y), ...]`` in label pixels;
    ``cls``: class id or name; ``radius``: brush radius in label pixels (>= 0). The input is unchanged.
    """
    arr = _label_array(label)
    cid = class_id(cls)
    out = arr.copy()
    out[stroke_mask(arr.shape, points, radius)] = cid
    return out


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
