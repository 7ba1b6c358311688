"""Sliced Wasserstein distance (SWD) between two image sets, on Laplacian-pyramid patches.

Karras et al. 2018 ("Progressive Growing of GANs", Sec. 5 and Appendix D) compare the *local*
image statistics of two sets at several scales:

1. **Laplacian pyramid** (Burt & Adelson 1983): blur with the 5x5 binomial filter and subsample to
   get the next coarser image; each level keeps the detail lost by that step
   (``level = image - upsample(downsample(image))``); the last level is the coarsest image itself.
   Levels go from the full resolution down to 16x16 (64x64 images: levels 64, 32, 16).
2. **Patch descriptors**: from every level of every image, ``patches_per_image`` random 7x7
   neighbourhoods (7 x 7 x 3 = 147 numbers each). The descriptors of one set are normalised per
   colour channel by that set's own mean and standard deviation (as in the authors' code), so the
   distance compares shapes of local structure rather than overall brightness or contrast.
3. **Sliced Wasserstein distance** (Rabin et al. 2011): project both descriptor clouds onto
   random unit directions; in 1-D the Wasserstein-1 distance between two equally sized samples is
   the mean absolute difference of their *sorted* values. Average over ``dir_repeats x
   dirs_per_repeat`` directions.

Numbers are reported x1e3, as in the PGGAN paper's tables. Small values mean similar statistics
at that scale: the finest level sees texture and noise, the coarsest the colour layout.

This implementation is seeded (one :class:`torch.Generator` drives every random choice), so the
same inputs and seed always give the same numbers. It works on small sets (e.g. 64 images at
64x64): when the two sets differ in size, the larger descriptor set is randomly subsampled to the
smaller, because sorted samples must have equal counts.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import check_images

__all__ = ["laplacian_pyramid", "patch_descriptors", "sliced_wasserstein_1d", "sliced_wasserstein"]

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """5x5 binomial filter per channel, mirrored borders (scipy's ``mode='mirror'``)."""
    c = x.shape[1]
    k = (torch.outer(_BINOMIAL, _BINOMIAL) * gain).to(x.device, x.dtype)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k.expand(c, 1, 5, 5), groups=c)


def _down(x: torch.Tensor) -> torch.Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _up(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, 2 * h, 2 * w)
    z[:, :, ::2, ::2] = x  # zeros in between; the gain of 4 restores the mean brightness
    return _blur(z, gain=4.0)


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """``num_levels`` band-pass images, finest first; the last one is the blurred, subsampled base.

    Summing ``level[i] + up(level[i+1] ...)`` from the coarsest up rebuilds the input exactly.
    """
    check_images(images)
    h, w = images.shape[2:]
    if num_levels < 1 or h % 2 ** (num_levels - 1) or w % 2 ** (num_levels - 1):
        raise ValueError(f"a {num_levels}-level pyramid needs sides divisible by {2 ** max(num_levels - 1, 0)}, "
                         f"got {h}x{w}")
    levels, current = [], images.float()
    for _ in range(num_levels - 1):
        down = _down(current)
        levels.append(current - _up(down))
        current = down
    levels.append(current)
    return levels


def patch_descriptors(level: torch.Tensor, patches_per_image: int, patch_size: int = 7,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Random ``patch_size`` neighbourhoods of one pyramid level, normalised per channel over the
    whole set: ``(N * patches_per_image, C * patch_size**2)``."""
    n, c, h, w = level.shape
    if min(h, w) < patch_size:
        raise ValueError(f"pyramid level {h}x{w} is smaller than the {patch_size}x{patch_size} patches")
    count = n * patches_per_image
    img = torch.arange(n).repeat_interleave(patches_per_image)
    y = torch.randint(0, h - patch_size + 1, (count,), generator=generator)
    x = torch.randint(0, w - patch_size + 1, (count,), generator=generator)
    off = torch.arange(patch_size)
    rows = (y[:, None] + off)[:, :, None]  # (P, k, 1)
    cols = (x[:, None] + off)[:, None, :]  # (P, 1, k)
    lvl = level.cpu()
    patches = lvl[img[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (P, C, k, k)
    mean = patches.mean(dim=(0, 2, 3), keepdim=True)
    std = patches.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
    # A channel without variation (flat images at a detail level) stays all zeros instead of NaN.
    patches = (patches - mean) / std.clamp_min(1e-8)
    return patches.reshape(count, -1)


def sliced_wasserstein_1d(a: torch.Tensor, b: torch.Tensor, dir_repeats: int = 4, dirs_per_repeat: int = 128,
                          generator: torch.Generator | None = None) -> float:
    """Approximate Wasserstein-1 distance between two equally sized point clouds ``(P, D)``:
    the mean over random unit directions of the mean absolute difference of sorted projections."""
    if a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    total = 0.0
    for _ in range(dir_repeats):
        dirs = torch.randn(a.shape[1], dirs_per_repeat, generator=generator, dtype=a.dtype)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        pa = (a @ dirs).sort(dim=0).values
        pb = (b @ dirs).sort(dim=0).values
        total += float((pa - pb).abs().mean())
    return total / dir_repeats


def sliced_wasserstein(images_a: torch.Tensor, images_b: torch.Tensor, *, patches_per_image: int = 128,
                       patch_size: int = 7, min_resolution: int = 16, dir_repeats: int = 4,
                       dirs_per_repeat: int = 128, seed: int = 0, scale: float = 1e3) -> dict[str, float]:
    """SWD between two image sets ``(N, 3, H, W)`` (sizes may differ in N only), x ``scale``.

    Returns ``{"swd_64": ..., "swd_32": ..., "swd_16": ..., "swd_avg": ...}`` for 64x64 images: one
    entry per pyramid level named by its height (``"swd_64x32"`` for non-square levels), finest
    first, and their mean. Deterministic for a given ``seed``.
    """
    check_images(images_a, "images_a")
    check_images(images_b, "images_b")
    if images_a.shape[1:] != images_b.shape[1:]:
        raise ValueError(f"image sets must share (C, H, W), got {tuple(images_a.shape[1:])} and "
                         f"{tuple(images_b.shape[1:])}")
    h, w = images_a.shape[2:]
    if min(h, w) < min_resolution:
        raise ValueError(f"SWD needs images of at least {min_resolution}x{min_resolution} (min_resolution), "
                         f"got {h}x{w}")
    if min(len(images_a), len(images_b)) < 1 or patches_per_image < 1:
        raise ValueError("SWD needs at least one image per set and patches_per_image >= 1")
    num_levels = 1
    while min(h, w) // 2 ** num_levels >= min_resolution and h % 2 ** num_levels == 0 and w % 2 ** num_levels == 0:
        num_levels += 1
    gen = torch.Generator(device="cpu").manual_seed(seed)
    pyr_a = laplacian_pyramid(images_a, num_levels)
    pyr_b = laplacian_pyramid(images_b, num_levels)
    out: dict[str, float] = {}
    for la, lb in zip(pyr_a, pyr_b):
        da = patch_descriptors(la, patches_per_image, patch_size, gen)
        db = patch_descriptors(lb, patches_per_image, patch_size, gen)
        if len(da) != len(db):  # equal counts for the sorted comparison
            if len(da) > len(db):
                da = da[torch.randperm(len(da), generator=gen)[:len(db)]]
            else:
                db = db[torch.randperm(len(db), generator=gen)[:len(da)]]
        lh, lw = la.shape[2:]
        key = f"swd_{lh}" if lh == lw else f"swd_{lh}x{lw}"
        out[key] = scale * sliced_wasserstein_1d(da, db, dir_repeats, dirs_per_repeat, gen)
    out["swd_avg"] = sum(out.values()) / len(out)
    return out
