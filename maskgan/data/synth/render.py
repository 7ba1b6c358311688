"""Render a SynthFaces face: ``(layout, style, seed) -> (RGB image, label map)``.

Two orders are at work, as in a real annotated photo:

* the **image** is composited back to front, in physical depth order (:data:`DEPTH_ORDER`): hair
  behind the head, then neck, body, ears, face, features, hair in front, glasses, hat, earrings;
* the **label map** is merged the way CelebAMask-HQ merges its per-part annotation PNGs: parts
  painted in :data:`maskgan.labels.MERGE_ORDER`, a later part overwriting an earlier one. Each
  part's "annotation" is what an annotator would outline: its own coverage, minus the parts that are
  physically in front of it yet come *earlier* in the merge order (:data:`OCCLUDED_BY`), e.g. the
  ears minus the face, the neck minus a necklace lying on it. Eyeglass lenses are transparent, so
  eyes and brows keep their labels through them, exactly as the merge order (eye_g before l_eye)
  makes it in the real data.

Grain, background mottling and the random table behind hair strands are functions of pixel
coordinates, style and seed only (:class:`~maskgan.data.synth.canvas.Textures`); the shading of a
part, and the direction of hair strands, follow that part's own shape in the face frame (which only
a move of the whole face changes). No part looks at another part. Hence re-rendering an edited
layout with the same style and seed changes pixels only where the edited parts are or were (plus a
one-pixel anti-aliased border): a ground-truth edit (:func:`part_coverage` gives those regions).
"""
from __future__ import annotations

import math

import numpy as np

from maskgan.errors import DataError
from maskgan.labels import CLASS_IDS, MERGE_ORDER
from maskgan.data.synth import outer, parts
from maskgan.data.synth.canvas import F32, Frame, Piece, Textures, pixel_centres
from maskgan.data.synth.params import Layout, Style

__all__ = ["render", "render_labels", "part_coverage", "MIN_SIZE", "MAX_SIZE", "DEPTH_ORDER", "OCCLUDED_BY", "check_size"]

MIN_SIZE, MAX_SIZE = 32, 1024

#: Back-to-front compositing order of the drawing layers (piece keys).
DEPTH_ORDER: tuple[str, ...] = (
    "hair_back", "neck", "neck_l", "cloth", "l_ear", "r_ear", "skin", "nose", "l_eye", "r_eye",
    "lashes", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "hair_front", "eye_g", "hat", "ear_r",
)

#: Layers physically in front of a layer although their class comes earlier in MERGE_ORDER: they
#: are cut out of that layer's annotation. ("ears" stands for both l_ear and r_ear.)
OCCLUDED_BY: dict[str, tuple[str, ...]] = {
    "l_ear": ("skin", "eye_g"), "r_ear": ("skin", "eye_g"),
    "hair_back": ("skin", "ears", "eye_g"),
    "hair_front": ("eye_g",),
    "neck_l": ("hair_front",),
    "neck": ("skin", "neck_l", "hair_front", "ear_r"),
    "cloth": ("skin", "hair_front", "ear_r"),
}
_OCCLUDERS = {"skin": "skin", "l_ear": "ears", "r_ear": "ears", "eye_g": "eye_g",
              "hair_front": "hair_front", "neck_l": "neck_l", "ear_r": "ear_r"}

_PART_FUNCTIONS = (parts.skin, parts.ears, parts.nose, parts.eyes, parts.brows, parts.mouth,
                   outer.hair, outer.hat, outer.glasses, outer.earrings, outer.necklace, outer.neck,
                   outer.cloth)
_DEPTH = {k: i for i, k in enumerate(DEPTH_ORDER)}
_MERGE = {name: i for i, name in enumerate(MERGE_ORDER)}


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise DataError(f"SynthFaces renders square images of {MIN_SIZE} to {MAX_SIZE} pixels; got size {size!r}")
    return int(size)


def _light(style: Style) -> tuple[float, float, float]:
    """Unit light direction: azimuth ``light_angle`` in the image plane, tilted by strength."""
    h = min(0.85, 1.4 * style.light_strength)
    t = math.radians(style.light_angle)
    return math.cos(t) * h, math.sin(t) * h, math.sqrt(1.0 - h * h)


def _background(style: Style, size: int, tex: Textures) -> np.ndarray:
    """Flat colour or linear gradient, with a faint smooth mottling (image coordinates only)."""
    bg = np.asarray(style.bg, F32).reshape(3, 1, 1)
    img = np.empty((3, size, size), F32)  # channel-first: fast broadcasting of h x w fields
    shade = F32(0.025) * tex.low
    if style.background == "gradient":
        pc = pixel_centres(size) - F32(0.5)
        t = math.radians(style.bg_angle)
        ramp = np.clip(F32(0.5) + pc[None, :] * F32(math.cos(t)) + pc[:, None] * F32(math.sin(t)), 0, 1)
        np.multiply(ramp[None], np.asarray(style.bg2, F32).reshape(3, 1, 1) - bg, out=img)
        img += bg
    else:
        img[:] = bg
    img += shade[None]
    return img


def _pieces(layout: Layout, style: Style, size: int, tex: Textures) -> list[Piece]:
    fr = Frame(layout.cx, layout.cy, layout.scale, layout.angle, size)
    light = _light(style)
    out: list[Piece] = []
    for fn in _PART_FUNCTIONS:
        out.extend(fn(fr, layout, style, tex, light))
    return out


def _composite(img: np.ndarray, pieces: list[Piece]) -> None:
    """Paint pieces back to front (:data:`DEPTH_ORDER`), alpha-blending each with its coverage."""
    for p in sorted(pieces, key=lambda p: _DEPTH[p.key]):
        region = img[(slice(None),) + p.box]
        if p.multiply is not None:
            region *= F32(1.0) - p.cov * (F32(1.0) - p.multiply)
        else:
            alpha = p.cov if p.alpha is None else p.alpha
            delta = np.subtract(p.color, region, out=p.color)  # the piece's colour is not reused
            delta *= alpha
            region += delta


def _merge_labels(pieces: list[Piece], size: int) -> np.ndarray:
    """Label map: annotations (coverage minus :data:`OCCLUDED_BY`) painted in MERGE_ORDER."""
    occ: dict[str, np.ndarray] = {}
    for p in pieces:
        name = _OCCLUDERS.get(p.key)
        if name is not None:
            buf = occ.setdefault(name, np.zeros((size, size), F32))
            np.maximum(buf[p.box], p.cov, out=buf[p.box])
    labels = np.zeros((size, size), np.uint8)
    labelled = [p for p in pieces if p.label is not None]
    for p in sorted(labelled, key=lambda p: (_MERGE[p.label], _DEPTH[p.key])):
        ann = p.cov
        for o in OCCLUDED_BY.get(p.key, ()):
            if o in occ:
                ann = ann * (F32(1.0) - occ[o][p.box])
        labels[p.box][ann > 0.5] = CLASS_IDS[p.label]
    return labels


def render(layout: Layout, style: Style, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one face at ``size`` x ``size`` (32..1024): ``(image uint8 HxWx3, labels uint8 HxW)``.

    Deterministic: the same ``(layout, style, size, seed)`` gives the same arrays, bit for bit.
    """
    size = check_size(size)
    if not isinstance(layout, Layout) or not isinstance(style, Style):
        raise TypeError(f"render expects (Layout, Style, size, seed), got ({type(layout).__name__}, "
                        f"{type(style).__name__}, ...)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"render: seed must be a non-negative integer, got {seed!r}")
    tex = Textures(size, int(seed))
    pieces = _pieces(layout, style, size, tex)
    img = _background(style, size, tex)
    _composite(img, pieces)
    labels = _merge_labels(pieces, size)
    img += tex.grain * F32(style.grain)
    img *= F32(255.0)
    img += F32(0.5)
    np.clip(img, 0.0, 255.0, out=img)
    return np.ascontiguousarray(img.astype(np.uint8).transpose(1, 2, 0)), labels


def render_labels(layout: Layout, style: Style, size: int, seed: int) -> np.ndarray:
    """The label map of :func:`render` alone (uint8 HxW, bit for bit the same), without painting the image."""
    size = check_size(size)
    return _merge_labels(_pieces(layout, style, size, Textures(size, int(seed))), size)


def part_coverage(layout: Layout, style: Style, size: int, seed: int) -> dict[str, np.ndarray]:
    """Where each class physically is: its soft coverage (HxW float32 in [0, 1]) *before*
    occlusion, for the classes the face has. Hidden parts count (hair behind the neck, eyes behind
    lenses), which makes this the region an edit of those classes may touch in the image."""
    size = check_size(size)
    out: dict[str, np.ndarray] = {}
    for p in _pieces(layout, style, size, Textures(size, int(seed))):
        if p.label is not None:
            buf = out.setdefault(p.label, np.zeros((size, size), F32))
            np.maximum(buf[p.box], p.cov, out=buf[p.box])
    return out
