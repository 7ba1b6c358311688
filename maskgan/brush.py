"""The mask editor's brush, as pure functions on label maps (used by the app and by the evaluation's
user-like stroke edits, :mod:`maskgan.evaluation.strokes`).

A brush stroke is a polyline of points ``(x, y)`` in label-pixel coordinates (pixel ``[row, col]``
has its centre at ``x = col, y = row``); every pixel whose centre lies within ``radius`` of the
polyline takes the brush class. Consecutive points are joined by segments, so a fast drag leaves
no gaps. The functions return new arrays and never touch their input.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import DataError
from .labels import CLASS_IDS, CLASS_NAMES, NUM_CLASSES, validate_label_map

__all__ = ["class_id", "stroke_mask", "paint_stroke"]


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
    if (isinstance(radius, bool) or not isinstance(radius, (int, float, np.integer, np.floating))
            or not np.isfinite(radius) or radius < 0):
        raise DataError(f"brush radius must be a number >= 0 (in label pixels), got {radius!r}")
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
