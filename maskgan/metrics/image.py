"""Pixel fidelity of images: PSNR and SSIM, on whole images or inside a region mask.

Both compare two image batches ``(N, 3, H, W)`` in the kit's range [-1, 1]; both first map the
images to [0, 1] and use a data range of 1, the convention of published PSNR/SSIM numbers. Both
return **one value per image** (a tensor of N values); average them yourself or use
:func:`inside_outside`.

**Masked variants.** An edit should change the image inside the edited region and leave it alone
outside (:func:`maskgan.metrics.edits.edit_region` finds that region from the masks before and
after the edit). ``mask=`` restricts a metric to the pixels where the mask is true, so
``psnr(out, ref, mask=region)`` and ``psnr(out, ref, mask=~region)`` score the two sides.

**PSNR and infinity.** ``PSNR = 10 log10(1 / MSE)``; identical images have MSE 0 and an infinite
PSNR. Averages over a data set must stay finite, so values are capped at :data:`PSNR_CAP_DB` by
default: 100 dB, an MSE of 1e-10, which only (near-)identical images reach (one pixel off by one
8-bit grey level in a 256x256 image already gives about 101 dB). ``cap=None`` keeps ``inf``.
An empty mask gives NaN (there is nothing to compare).

**SSIM** (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from error visibility
to structural similarity", Eq. 13): local means, variances and covariance under an 11x11 Gaussian
window (sigma 1.5), ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, L = 1::

    SSIM(x, y) = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

computed per colour channel and averaged over channels and positions. As in the authors' MATLAB
code the window only visits positions where it fits entirely ('valid' filtering): the SSIM map is
``(H - 10) x (W - 10)``, one value per pixel at least 5 px from the border. With a mask, the map is
averaged over the masked pixels of that interior, so ``mask=all ones`` gives exactly ``ssim()``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._common import as_pixel_mask, check_pair, to_unit_range

__all__ = ["PSNR_CAP_DB", "SSIM_WINDOW", "SSIM_SIGMA", "PAIR_KEYS", "psnr", "ssim", "ssim_map", "pair_scores",
           "inside_outside"]

#: PSNR of identical images (and upper bound of every PSNR value unless ``cap=None``), in dB.
PSNR_CAP_DB = 100.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
         cap: float | None = PSNR_CAP_DB) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image pair, on [0, 1]-rescaled images: ``(N,)``.

    ``mask`` (bool or 0/1; ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``) restricts the mean
    squared error to the masked pixels (all channels). Values are capped at ``cap`` dB (identical
    images give exactly ``cap``); ``cap=None`` keeps ``inf``. Empty mask -> NaN.
    """
    check_pair(a, b)
    n, _, h, w = a.shape
    sq = (to_unit_range(a) - to_unit_range(b)).square()
    if mask is None:
        mse = sq.flatten(1).mean(1)
    else:
        m = as_pixel_mask(mask, n, h, w).to(sq.device).float()
        count = m.flatten(1).sum(1) * a.shape[1]
        mse = (sq * m).flatten(1).sum(1) / count  # 0/0 -> NaN for an empty mask
    out = 10.0 * torch.log10(1.0 / mse)
    if cap is not None:
        out = out.clamp(max=cap)  # NaN (empty mask) stays NaN
    return out


def _gaussian_window(size: int, sigma: float, device, dtype) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of every channel on its own."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ssim_map(a: torch.Tensor, b: torch.Tensor, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-pixel, per-channel SSIM ``(N, C, H - window + 1, W - window + 1)`` (Wang et al. 2004, Eq. 13)."""
    check_pair(a, b)
    if window % 2 == 0 or window < 1:
        raise ValueError(f"SSIM window must be an odd positive size, got {window}")
    if min(a.shape[2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels (the window size), "
                         f"got {a.shape[2]}x{a.shape[3]}")
    x, y = to_unit_range(a), to_unit_range(b)
    g = _gaussian_window(window, sigma, x.device, x.dtype)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2  # (K L)^2 with data range L = 1
    mu_x, mu_y = _filter(x, g), _filter(y, g)
    var_x = _filter(x * x, g) - mu_x.square()
    var_y = _filter(y * y, g) - mu_y.square()
    cov = _filter(x * y, g) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2))


def ssim(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None, window: int = SSIM_WINDOW,
         sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Structural similarity of each image pair, ``(N,)``: the SSIM map averaged over channels and
    positions (only masked positions when ``mask`` is given; NaN if none of them is at least
    ``window // 2`` px from the border). 1 means identical."""
    smap = ssim_map(a, b, window, sigma).mean(1)  # mean over channels: (N, h, w)
    if mask is None:
        return smap.flatten(1).mean(1)
    n, _, h, w = a.shape
    r = window // 2
    m = as_pixel_mask(mask, n, h, w)[:, 0, r:h - r, r:w - r].to(smap.device).float()
    return (smap * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def _nanmean(x: torch.Tensor) -> float:
    keep = ~torch.isnan(x)
    return float(x[keep].mean()) if bool(keep.any()) else math.nan


#: The scores of :func:`pair_scores`, in order.
PAIR_KEYS: tuple[str, ...] = ("psnr", "ssim", "psnr_inside", "psnr_outside", "ssim_inside", "ssim_outside")


def pair_scores(output: torch.Tensor, reference: torch.Tensor, region: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image (``(N,)`` tensors): PSNR and SSIM over the whole image, inside ``region`` and
    outside it (keys :data:`PAIR_KEYS`; NaN where a side is empty)."""
    check_pair(output, reference, ("output", "reference"))
    n, _, h, w = output.shape
    inside = as_pixel_mask(region, n, h, w, "region")
    return {"psnr": psnr(output, reference), "ssim": ssim(output, reference),
            "psnr_inside": psnr(output, reference, inside), "psnr_outside": psnr(output, reference, ~inside),
            "ssim_inside": ssim(output, reference, inside), "ssim_outside": ssim(output, reference, ~inside)}


def inside_outside(output: torch.Tensor, reference: torch.Tensor, region: torch.Tensor) -> dict[str, float]:
    """PSNR and SSIM inside and outside ``region``, averaged over the batch.

    ``region`` is a bool mask (e.g. from :func:`~maskgan.metrics.edits.edit_region`). Images whose
    region (or complement) is empty are left out of that average. Keys: ``psnr_inside``,
    ``psnr_outside``, ``ssim_inside``, ``ssim_outside`` (PSNR capped at :data:`PSNR_CAP_DB`).
    """
    scores = pair_scores(output, reference, region)
    return {k: _nanmean(scores[k]) for k in ("psnr_inside", "psnr_outside", "ssim_inside", "ssim_outside")}
