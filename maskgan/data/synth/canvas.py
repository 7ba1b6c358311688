"""Drawing machinery of the SynthFaces renderer: the face frame, soft coverage, textures.

Every shape is an implicit function in face units (negative inside). Its *soft coverage* at a pixel
is ``clip(0.5 - d * pixels_per_unit, 0, 1)`` with ``d`` an approximate signed distance: 1 inside,
0 outside and a one-pixel ramp across the edge, which anti-aliases the image. The label map takes
coverage > 0.5.

Speed: a shape is only evaluated inside its bounding box (:meth:`Frame.box`), coordinate vectors are
cached per image size, and everything is vectorised numpy on float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Frame", "Piece", "Textures", "coverage", "ellipse_sd", "lambert", "pixel_centres"]

F32 = np.float32


@lru_cache(maxsize=32)
def pixel_centres(size: int) -> np.ndarray:
    """Pixel centres as fractions of the image side, ``(i + 0.5) / size`` (cached, read-only)."""
    c = (np.arange(size, dtype=F32) + F32(0.5)) / F32(size)
    c.setflags(write=False)
    return c


@lru_cache(maxsize=32)
def _upsampler(size: int, n: int) -> np.ndarray:
    """``size x n`` bilinear interpolation matrix: ``M @ G @ M.T`` upsamples an n x n grid."""
    pos = pixel_centres(size) * (n - 1)
    i0 = np.minimum(pos.astype(np.int64), n - 2)
    f = pos - i0
    m = np.zeros((size, n), F32)
    m[np.arange(size), i0] = 1 - f
    m[np.arange(size), i0 + 1] = f
    m.setflags(write=False)
    return m


class Frame:
    """The face frame: face units (1 = half-width of the face), origin at the face centre, y down.

    ``local(box)`` gives face coordinates ``(a, b)`` of the pixels of an image box; ``box(...)``
    turns a rectangle in face units into the pixel box covering it (after rotation), padded by two
    pixels so anti-aliased edges are never cut.
    """

    def __init__(self, cx: float, cy: float, scale: float, angle_deg: float, size: int):
        self.size = size
        self.cx, self.cy, self.scale = cx, cy, scale
        t = math.radians(angle_deg)
        self.cos, self.sin = math.cos(t), math.sin(t)
        self.ppu = scale * size  # pixels per face unit

    def box(self, x0: float, y0: float, x1: float, y1: float, pad: int = 2):
        """Pixel box ``(row slice, col slice)`` covering the face-unit rectangle, or None if outside."""
        xs = np.array([x0, x1, x0, x1])
        ys = np.array([y0, y0, y1, y1])
        px = (self.cx + self.scale * (self.cos * xs - self.sin * ys)) * self.size
        py = (self.cy + self.scale * (self.sin * xs + self.cos * ys)) * self.size
        c0, c1 = max(int(px.min()) - pad, 0), min(int(math.ceil(px.max())) + pad, self.size)
        r0, r1 = max(int(py.min()) - pad, 0), min(int(math.ceil(py.max())) + pad, self.size)
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def local(self, box):
        """Face coordinates ``(a, b)`` (float32 arrays, box-shaped) of the pixel centres in ``box``."""
        rows, cols = box
        pc = pixel_centres(self.size)
        dx = (pc[cols] - F32(self.cx))[None, :]
        dy = (pc[rows] - F32(self.cy))[:, None]
        k = F32(1.0 / self.scale)
        c, s = F32(self.cos) * k, F32(self.sin) * k
        return c * dx + s * dy, c * dy - s * dx


def coverage(d: np.ndarray, ppu: float) -> np.ndarray:
    """Soft coverage from a signed distance ``d`` in face units (in place on ``d``)."""
    d *= F32(-ppu)
    d += F32(0.5)
    return np.clip(d, 0.0, 1.0, out=d)


def ellipse_sd(a, b, x: float, y: float, rx, ry) -> np.ndarray:
    """Approximate signed distance to an ellipse: ``(k - 1) / |grad k|`` with ``k`` the ellipse
    radius; exact on circles and near the edge, which is all anti-aliasing needs."""
    u = (a - F32(x)) / rx
    v = (b - F32(y)) / ry
    k2 = u * u + v * v
    g2 = (u / rx) ** 2 + (v / ry) ** 2
    k = np.sqrt(k2)
    return (k2 - k) / np.sqrt(g2 + F32(1e-6))


def lambert(nx, ny, light: tuple, ambient: float = 0.55):
    """Diffuse shading ``ambient + (1 - ambient) * max(0, n . l)`` of a unit normal field
    ``(nx, ny, nz)`` with nz implied (``sqrt(1 - nx^2 - ny^2)``) and light direction ``light``."""
    lx, ly, lz = light
    nz = np.sqrt(np.maximum(F32(1.0) - nx * nx - ny * ny, F32(0.0)))
    d = nx * F32(lx) + ny * F32(ly) + nz * F32(lz)
    return np.maximum(d, F32(0.0)) * F32(1.0 - ambient) + F32(ambient)


@dataclass
class Piece:
    """One drawn part of a face.

    ``key`` names the drawing layer (``"hair_back"``, ``"lashes"``, ``"l_eye"``...), ``label`` the
    class it annotates (None for paint-only layers such as lash lines). ``cov`` is the soft shape
    coverage inside the pixel ``box``; the label map uses it. The image gets ``color``
    (3 x h x w) painted over with alpha ``alpha`` (default: ``cov``), or, when ``multiply`` is
    given instead, the pixels below multiplied by it where ``cov`` says (shading, e.g. the nose).
    """
    key: str
    label: str | None
    box: tuple
    cov: np.ndarray
    color: np.ndarray | None = None
    multiply: np.ndarray | None = None
    alpha: np.ndarray | None = None


class Textures:
    """Layout-independent texture fields of one render: functions of (pixel, seed) only.

    ``grain`` is per-pixel noise, ``low`` a smooth field (a 5 x 5 random grid, bilinear), and
    ``strands`` a 1-D random table that hair looks up by strand angle. Because none of them depends
    on the layout, an edited layout re-rendered with the same seed keeps identical texture outside
    the edited parts."""

    def __init__(self, size: int, seed: int):
        rng = np.random.default_rng(seed)
        self.grain = rng.random((size, size), dtype=F32)  # uniform, rescaled to mean 0, std 1
        self.grain -= F32(0.5)
        self.grain *= F32(math.sqrt(12.0))
        m = _upsampler(size, 5)
        self.low = m @ rng.standard_normal((5, 5), dtype=F32) @ m.T
        self.strands = rng.random(1025, dtype=F32)
        self.strands[-1] = self.strands[0]  # wrap around

    def strand(self, angle: np.ndarray, count: float) -> np.ndarray:
        """Strand brightness in [0, 1] at ``angle`` (radians), ``count`` strands per turn."""
        table = self.strands
        count = int(min(max(count, 8), 1024))  # an integer count keeps the pattern seamless at +-pi
        t = (angle * F32(count / (2 * math.pi))) % F32(count)
        i = t.astype(np.int32)
        f = t - i
        lo = table[i]
        return lo + f * (table[i + 1] - lo)
