"""A tiny CelebAMask-HQ archive in the exact official layout, for tests.

    ROOT/CelebA-HQ-img/{i}.jpg                                  photos (image_size², JPEG)
    ROOT/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png  one PNG per present part (mask_size²)
    ROOT/CelebA-HQ-to-CelebA-mapping.txt                        header 'idx orig_idx orig_file' + rows

What it exercises on purpose:
* faces on both sides of both split boundaries (``BOUNDARY_ORIG_IDX``: orig_idx 162769/162770 and
  182636/182637, i.e. CelebA files 162770/162771 and 182637/182638);
* absent parts (eyeglasses, hat, ears only on some faces) and one face in folder ``1/`` (idx 2000);
* overlapping parts, so that the merge order matters (hair over skin, eyes over eyeglasses, hat over
  hair, cloth over neck);
* storage modes: ``nose`` is saved as RGB, ``hair`` as mode "1", everything else as "L" (0/255).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: 0-based CelebA indices of the first four faces: both sides of the val and test boundaries.
BOUNDARY_ORIG_IDX = (162769, 162770, 182636, 182637)
#: Further orig_idx values, cycled for the remaining faces (train, val, test, first and last file).
OTHER_ORIG_IDX = (119613, 170000, 190000, 0, 202598, 5000, 30000, 100000)


def fixture_indices(n: int) -> list[int]:
    """CelebA-HQ indices of an ``n``-face fixture: ``0 .. n-2`` and ``2000`` (second mask folder)."""
    return list(range(n - 1)) + [2000]


def _other_orig_idx(j: int) -> int:
    """``OTHER_ORIG_IDX`` cycled, nudged by one per cycle so that no CelebA photo is used twice."""
    base, cycle = OTHER_ORIG_IDX[j % len(OTHER_ORIG_IDX)], j // len(OTHER_ORIG_IDX)
    return base + cycle if base + cycle <= 202598 else base - cycle


def _part_shapes(idx: int, s: int) -> dict[str, np.ndarray]:
    """Boolean part masks of face ``idx`` on an ``s x s`` grid (deterministic per idx)."""
    rng = np.random.default_rng(idx)
    yy, xx = np.mgrid[0:s, 0:s] / s
    dx, dy = rng.uniform(-0.05, 0.05, size=2)
    cx, cy = 0.5 + dx, 0.5 + dy

    def box(x0, x1, y0, y1):
        return (xx >= x0 + dx) & (xx < x1 + dx) & (yy >= y0 + dy) & (yy < y1 + dy)

    parts = {
        "skin": ((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.38) ** 2 < 1,
        "nose": box(0.45, 0.55, 0.45, 0.62),
        "l_eye": box(0.28, 0.42, 0.38, 0.45),
        "r_eye": box(0.58, 0.72, 0.38, 0.45),
        "l_brow": box(0.28, 0.42, 0.31, 0.35),
        "r_brow": box(0.58, 0.72, 0.31, 0.35),
        "u_lip": box(0.40, 0.60, 0.68, 0.72),
        "l_lip": box(0.40, 0.60, 0.72, 0.77),
        "mouth": box(0.43, 0.57, 0.70, 0.74),            # under both lips: lips overwrite it
        "hair": (yy < 0.3 + dy) & (((xx - cx) / 0.38) ** 2 + ((yy - cy) / 0.5) ** 2 < 1),
        "neck": box(0.40, 0.60, 0.82, 1.0),
        "cloth": box(0.15, 0.85, 0.92, 1.0),             # over the neck
    }
    if idx % 2 == 0:
        parts["eye_g"] = box(0.24, 0.76, 0.36, 0.47)      # under the eyes, over skin and nose
    if idx % 3 == 0:
        parts["hat"] = (yy < 0.18 + dy) & (xx > 0.2) & (xx < 0.8)  # over the hair
    if idx % 3 != 1:
        parts["l_ear"] = box(0.14, 0.22, 0.40, 0.55)
        parts["r_ear"] = box(0.78, 0.86, 0.40, 0.55)
    return parts


def _save_part(path: Path, name: str, mask: np.ndarray) -> None:
    values = mask.astype(np.uint8) * 255
    if name == "nose":
        Image.fromarray(np.stack([values] * 3, axis=-1), mode="RGB").save(path)
    elif name == "hair":
        Image.fromarray(values).convert("1").save(path)
    else:
        Image.fromarray(values, mode="L").save(path)


def make_celebamask_archive(root, n: int = 10, image_size: int = 64, mask_size: int = 32) -> Path:
    """Write an ``n``-face archive (``n >= 5``) in the official layout under ``root``; returns ``root``.

    Face ``k`` (k-th in :func:`fixture_indices`) takes orig_idx ``BOUNDARY_ORIG_IDX[k]`` for
    ``k < 4``, then cycles through ``OTHER_ORIG_IDX`` (every orig_idx is distinct).
    """
    if n < 5:
        raise ValueError(f"the fixture needs n >= 5 faces (4 at the split boundaries + folder 1), got {n}")
    root = Path(root)
    img_dir = root / "CelebA-HQ-img"
    img_dir.mkdir(parents=True, exist_ok=True)
    lines = ["idx         orig_idx    orig_file"]  # the official header, column-aligned like the original
    for k, idx in enumerate(fixture_indices(n)):
        orig = BOUNDARY_ORIG_IDX[k] if k < 4 else _other_orig_idx(k - 4)
        lines.append(f"{idx:<11d} {orig:<11d} {orig + 1:06d}.jpg")
        part_dir = root / "CelebAMask-HQ-mask-anno" / str(idx // 2000)
        part_dir.mkdir(parents=True, exist_ok=True)
        parts = _part_shapes(idx, mask_size)
        label = np.zeros((mask_size, mask_size), dtype=np.uint8)
        for i, (name, mask) in enumerate(parts.items()):
            _save_part(part_dir / f"{idx:05d}_{name}.png", name, mask)
            label[mask] = i + 1
        # The photo: a colour per region (any colours do) plus noise, upsampled to image_size.
        colours = np.random.default_rng(1000 + idx).integers(0, 256, size=(32, 3), dtype=np.uint8)
        small = Image.fromarray(colours[label])
        photo = np.asarray(small.resize((image_size, image_size), Image.BILINEAR)).astype(np.int16)
        photo = photo + np.random.default_rng(idx).integers(-8, 9, size=photo.shape)
        Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(img_dir / f"{idx}.jpg", quality=95)
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    return root
