"""Edits that change only what the user changed: composite the DMN's rendering into the original.

MaskGAN renders an edited mask ``M^src`` *whole*, from one global style vector (the AdaIN
parameters of Eq. 2, computed from ``(I^t, M^t)``). A global vector cannot hold every detail of one
face, so the rendering differs from the input everywhere, also where the user changed nothing: on
the kit's SynthFaces test edits the full re-render scores 22.8 dB against the true edit, while
returning the input unchanged scores 29.4 dB (``python -m maskgan compare-blends --pretrained``).
The authors' answer to their users (CelebAMask-HQ issues #18 and #64) was to composite: keep the
real image where the mask did not change and take the generated pixels only where it did.

This module does that. The **edited region** is where the label changed (:func:`changed_pixels`),
grown by ``margin`` px with a round brush (:func:`grow`). Its **alpha** (:func:`edit_alpha`) is 1 on
the changed pixels, falls linearly over the last ``feather`` px of the margin, and is exactly 0
farther than ``margin`` px from every changed pixel, so those pixels of the result are the input's
own values, bit for bit. Blends (:data:`BLENDS`), all given the same alpha:

* ``"hard"``: paste the rendering inside the grown region (``feather`` ignored: alpha is 0 or 1);
* ``"feather"``: ``alpha * render + (1 - alpha) * input``;
* ``"laplacian"``: Laplacian-pyramid (multi-band) blending (Burt and Adelson 1983): every band of
  the two images blended with the alpha smoothed to that band's scale, then cut to the region;
* ``"poisson"``: gradient-domain (Poisson) cloning (Perez, Gangnet and Blake 2003): inside the region
  grown by one more pixel the result has the rendering's gradients and meets the input on the
  region's border, which removes colour offsets; then feathered like ``"feather"``. Solved by
  conjugate gradients on the 5-point Laplacian (:func:`poisson_clone`).

The default (:data:`DEFAULT_BLEND`, with :func:`default_margin`) was chosen by measurement on the
shipped SynthFaces models; ``docs/editing.md`` has the table and the command. ``"rerender"``
(:data:`RERENDER`) is the paper's full re-rendering, kept for the reproduction and the ablation.

:func:`composite` returns a :class:`Composite`: the result and the two pieces that make it,
``alpha`` and ``layer`` (``result = alpha * layer + (1 - alpha) * input``), so that the edit can be
pasted into a photo at another resolution (:func:`maskgan.photo.paste_back`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .errors import ConfigError, DataError

__all__ = ["BLENDS", "RERENDER", "DEFAULT_BLEND", "Composite", "default_margin", "default_feather",
           "changed_pixels", "grow", "edit_alpha", "seam_band", "laplacian_blend", "poisson_clone", "composite",
           "check_blend"]

#: The paper's full re-rendering: the DMN's output everywhere (no compositing).
RERENDER = "rerender"
#: Compositing methods of :func:`composite`.
BLENDS: tuple[str, ...] = ("hard", "feather", "laplacian", "poisson")
#: The blend :meth:`maskgan.editing.Editor.edit` uses unless told otherwise (see docs/editing.md).
DEFAULT_BLEND = "poisson"


class Composite(NamedTuple):
    """An edit composited into its input: ``image = alpha * layer + (1 - alpha) * input``.

    ``image`` and ``layer`` are ``(N, 3, H, W)`` in [-1, 1]; ``alpha`` is ``(N, H, W)`` in [0, 1],
    exactly 0 where the input is kept; ``render`` is the DMN's full rendering it was made from."""
    image: torch.Tensor
    alpha: torch.Tensor
    layer: torch.Tensor
    render: torch.Tensor


def default_margin(size: int) -> int:
    """Pixels by which the changed region grows at image side ``size``: 1 px at 64 px, scaling with
    the side (8 px at 512 px), because a generator repaints a band around a moved boundary whose
    width grows with the resolution."""
    return max(1, round(int(size) / 64))


def default_feather(size: int) -> int:
    """Width of the alpha ramp at image side ``size``: the whole margin (see :func:`default_margin`)."""
    return default_margin(size)


def check_blend(blend: str, allow_rerender: bool = True) -> str:
    """``blend`` if it names a method (and ``"rerender"`` when allowed), else a :class:`ConfigError`."""
    names = BLENDS + ((RERENDER,) if allow_rerender else ())
    if not isinstance(blend, str) or blend not in names:
        raise ConfigError(f"unknown blend {blend!r}; expected one of {', '.join(names)} "
                          f"({RERENDER!r} is the paper's full re-render)")
    return blend


def _check_px(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a whole number of pixels >= 0, got {value!r}")
    return value


def changed_pixels(label: torch.Tensor, edited_label: torch.Tensor) -> torch.Tensor:
    """Bool ``(N, H, W)`` (or ``(H, W)``): where the edited label map differs from the original."""
    if label.shape != edited_label.shape:
        raise DataError(f"the label map is {tuple(label.shape)} but the edited one is {tuple(edited_label.shape)}; "
                        "an edit keeps the size of its mask")
    return label != edited_label


def _sq_distance(region: torch.Tensor, limit: int) -> torch.Tensor:
    """Squared Euclidean distance ``(N, H, W)`` from every pixel to the nearest pixel of the bool
    ``region`` (0 on it), exact up to ``limit`` px and ``limit**2 + 1`` beyond. Separable (Felzenszwalb
    and Huttenlocher 2012) with the minimum taken over a window of +-``limit``: 2 (2 limit + 1)
    shifted minima instead of a disk convolution per distance."""
    far = float(limit * limit + 1)
    f = torch.where(region.reshape(-1, *region.shape[-2:]), 0.0, far)
    for dim in (1, 2):
        n = f.shape[dim]
        pad = [0, 0, 0, 0]
        pad[(2 - dim) * 2:(2 - dim) * 2 + 2] = [limit, limit]  # F.pad counts from the last dimension
        padded = F.pad(f, tuple(pad), value=far)
        best = f.clone()
        for k in range(-limit, limit + 1):
            if k:
                best = torch.minimum(best, padded.narrow(dim, limit + k, n) + float(k * k))
        f = best.clamp_(max=far)
    return f.reshape(region.shape)


def grow(region: torch.Tensor, px: int) -> torch.Tensor:
    """A bool region ``(H, W)`` or ``(N, H, W)`` grown by ``px`` pixels with a round brush (every pixel
    within Euclidean distance ``px`` of the region joins it)."""
    px = _check_px("px", px)
    if px == 0:
        return region.bool()
    return _sq_distance(region.bool(), px) <= px * px


def edit_alpha(changed: torch.Tensor, margin: int, feather: int) -> torch.Tensor:
    """Alpha ``(N, H, W)`` in [0, 1] of an edit whose changed pixels are ``changed``: 1 on them; on the
    ring ``k`` px out (1 <= k <= margin; ring k holds the pixels within distance k but not k - 1)
    ``min(1, (margin + 1 - k) / (feather + 1))``; 0 beyond ``margin``. ``feather=0`` is a hard edge at
    ``margin``."""
    margin, feather = _check_px("margin", margin), _check_px("feather", feather)
    if margin == 0:
        return changed.float()
    sq = _sq_distance(changed.bool(), margin)
    ring = torch.ceil(torch.sqrt((sq - 0.5).clamp(min=0)))  # smallest k with sq <= k^2 (sq is an integer)
    alpha = ((margin + 1 - ring) / (feather + 1)).clamp(0, 1)
    return torch.where(sq > margin * margin, 0.0, torch.where(sq == 0, 1.0, alpha))


def seam_band(changed: torch.Tensor, margin: int, width: int = 1) -> torch.Tensor:
    """The pixels within ``width`` px of the edge of the region ``grow(changed, margin)``, on both
    sides: where a hard paste leaves its seam. Scoring every blend on these pixels measures seams."""
    inner = grow(changed, margin - width) if margin >= width else torch.zeros_like(changed, dtype=torch.bool)
    return grow(changed, margin + width) & ~inner


def _batch(x: torch.Tensor, dims: int) -> torch.Tensor:
    return x.unsqueeze(0) if x.dim() == dims else x


def laplacian_blend(a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor, levels: int) -> torch.Tensor:
    """Multi-band blend of images ``a`` (where alpha is 1) and ``b`` (where it is 0), ``(N, C, H, W)``:
    the Laplacian pyramids of both mixed level by level with the Gaussian pyramid of ``alpha``
    ``(N, H, W)``, then collapsed (Burt and Adelson 1983). ``levels`` bands below full resolution."""
    def down(x):
        return F.avg_pool2d(x, 2, ceil_mode=True)

    def up(x, shape):
        return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)

    ga, pa, pb = [alpha[:, None]], [a], [b]
    for _ in range(levels):
        if min(pa[-1].shape[-2:]) < 2:
            break
        ga.append(down(ga[-1]))
        pa.append(down(pa[-1]))
        pb.append(down(pb[-1]))
    out = ga[-1] * pa[-1] + (1 - ga[-1]) * pb[-1]
    for lvl in range(len(pa) - 2, -1, -1):
        shape = pa[lvl].shape[-2:]
        band_a = pa[lvl] - up(pa[lvl + 1], shape)
        band_b = pb[lvl] - up(pb[lvl + 1], shape)
        out = up(out, shape) + ga[lvl] * band_a + (1 - ga[lvl]) * band_b
    return out


def _laplace(x: torch.Tensor) -> torch.Tensor:
    """5-point Laplacian, mirrored at the image border (no flux through it)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * x


def poisson_clone(source: torch.Tensor, target: torch.Tensor, region: torch.Tensor, max_iter: int = 1000,
                  tol: float = 1e-4, _coarse: bool = True) -> torch.Tensor:
    """Gradient-domain cloning (Perez et al. 2003, Eq. 7 with the guidance field of ``source``):
    ``(N, C, H, W)`` images, ``region`` bool ``(N, H, W)``. Inside the region the result ``f`` solves
    ``laplace(f) = laplace(source)``; outside it ``f = target`` (Dirichlet boundary).

    ``f = source + h`` where the correction ``h`` is harmonic inside the region and equals
    ``target - source`` on its border: a smooth field, so it is first solved at half the resolution
    (recursively, down to 32 px) and upsampled as the starting point; then conjugate gradients on
    the unknown pixels until the residual falls below ``tol`` (RMS per pixel) or ``max_iter``."""
    if not region.any():
        return target.clone()
    m = region[:, None].to(source.dtype).expand_as(source)
    keep = target * (1 - m)
    h, w = source.shape[-2:]
    if _coarse and min(h, w) >= 64:
        half = (lambda x: F.avg_pool2d(x, 2, ceil_mode=True))
        coarse_region = F.max_pool2d(region[:, None].float(), 2, ceil_mode=True)[:, 0] > 0
        coarse = poisson_clone(half(source), half(target), coarse_region, max_iter, tol * 2)
        offset = F.interpolate(coarse - half(source), size=(h, w), mode="bilinear", align_corners=False)
        x = (source + offset) * m
    else:
        ring = (grow(region, 1) & ~region)[:, None].to(source.dtype)
        count = ring.flatten(2).sum(2).clamp_min(1)
        shift = ((target - source) * ring).flatten(2).sum(2) / count  # mean colour offset on the border
        x = (source + shift[..., None, None]) * m

    def op(u):  # -laplace restricted to the unknowns: symmetric positive definite
        return -_laplace(u * m) * m

    rhs = -(_laplace(source) - _laplace(keep)) * m
    r = rhs - op(x)
    p = r.clone()
    rs = (r * r).flatten(1).sum(1)
    n_unknown = m.flatten(1).sum(1).clamp_min(1)
    for _ in range(max_iter):
        if bool((rs / n_unknown).sqrt().max() < tol):
            break
        ap = op(p)
        step = rs / (p * ap).flatten(1).sum(1).clamp_min(1e-30)
        x = x + step[:, None, None, None] * p
        r = r - step[:, None, None, None] * ap
        rs_new = (r * r).flatten(1).sum(1)
        p = r + (rs_new / rs.clamp_min(1e-30))[:, None, None, None] * p
        rs = rs_new
    return torch.where(region[:, None], x, target)


def _box(region: torch.Tensor, pad: int) -> tuple[slice, slice] | None:
    """Rows and columns of the bounding box of a batch of regions, grown by ``pad`` (within the image)."""
    any_y, any_x = region.any(0).any(1), region.any(0).any(0)
    if not bool(any_y.any()):
        return None
    ys, xs = torch.nonzero(any_y).flatten(), torch.nonzero(any_x).flatten()
    h, w = region.shape[-2:]
    return (slice(max(0, int(ys[0]) - pad), min(h, int(ys[-1]) + 1 + pad)),
            slice(max(0, int(xs[0]) - pad), min(w, int(xs[-1]) + 1 + pad)))


def _blend_in_box(image, render, changed, blend: str, margin: int, feather: int) -> Composite:
    """The blend, computed only in the box around the edit (what lies beyond it is the input)."""
    levels = 2 + int(math.log2(max(1, margin)))
    context = {"hard": 0, "feather": 0, "poisson": 2, "laplacian": 2 ** (levels + 1)}[blend]
    box = _box(changed, margin + 1 + context)
    alpha = torch.zeros_like(changed, dtype=image.dtype)
    if box is None:  # nothing changed: the input itself
        return Composite(image.clone(), alpha, image.clone(), render)
    ys, xs = box
    img, ren, chg = image[..., ys, xs], render[..., ys, xs], changed[..., ys, xs]
    a = edit_alpha(chg, margin, 0 if blend == "hard" else feather)
    layer = ren
    if blend == "poisson":
        layer = poisson_clone(ren, img, grow(chg, margin + 1))
    elif blend == "laplacian":
        layer = laplacian_blend(ren, img, a, levels)
        a = (a > 0).to(image.dtype)  # the pyramid did the feathering: cut to the region
    a4, layer = a[:, None], layer.clamp(-1, 1)
    result, full_layer = image.clone(), render.clone()
    # alpha 0: the input's own values, bit for bit
    result[..., ys, xs] = torch.where(a4 > 0, a4 * layer + (1 - a4) * img, img)
    full_layer[..., ys, xs] = layer
    alpha[..., ys, xs] = a
    return Composite(result, alpha, full_layer, render)


def composite(image: torch.Tensor, render: torch.Tensor, label: torch.Tensor, edited_label: torch.Tensor,
              blend: str = DEFAULT_BLEND, margin: int | None = None, feather: int | None = None) -> Composite:
    """Composite ``render`` (the DMN's rendering of ``edited_label``) into ``image`` (the face whose
    mask is ``label``): see the module docstring. Images ``(3, H, W)`` or ``(N, 3, H, W)`` in [-1, 1],
    label maps ``(H, W)`` or ``(N, H, W)``. ``margin`` / ``feather`` in pixels (None: the defaults for
    this size). ``blend="rerender"`` returns the rendering itself (alpha 1 everywhere)."""
    check_blend(blend)
    single = image.dim() == 3
    image, render = _batch(image, 3).float(), _batch(render, 3).float().to(image.device)
    label, edited_label = _batch(label, 2).to(image.device), _batch(edited_label, 2).to(image.device)
    if image.shape != render.shape or image.shape[-2:] != label.shape[-2:] or image.shape[0] != label.shape[0]:
        raise DataError(f"composite needs an image, a rendering and label maps of one size; got image "
                        f"{tuple(image.shape)}, rendering {tuple(render.shape)}, labels {tuple(label.shape)}")
    size = int(image.shape[-1])
    margin = default_margin(size) if margin is None else _check_px("margin", margin)
    feather = default_feather(size) if feather is None else _check_px("feather", feather)
    changed = changed_pixels(label, edited_label)
    if blend == RERENDER:
        alpha = torch.ones_like(changed, dtype=image.dtype)
        out = Composite(render, alpha, render, render)
    else:
        out = _blend_in_box(image, render, changed, blend, margin, feather)
    if single:
        return Composite(*(t[0] for t in out))
    return out
