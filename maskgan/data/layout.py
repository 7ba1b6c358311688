"""The prepared-folder layout shared by CelebAMask-HQ (after ``data_prep``) and SynthFaces.

Both datasets are written to disk in one layout, so one loader (:mod:`maskgan.data.paired`)
serves both::

    ROOT/
      meta.json                  {"dataset": "celebamask-hq" | "synthfaces", "size": 256,
                                  "counts": {"train": n, "val": n, "test": n}, ...}
      train/images/<name>.png    RGB uint8, size x size (.jpg also accepted)
      train/masks/<name>.png     label map, mode "L", values 0..18, size x size (nearest resize)
      val/...  test/...

``<name>`` is the same for an image and its mask (CelebAMask-HQ: the 5-digit image index, e.g.
``00012``; SynthFaces: ``<split>_<index>`` with 6 digits). SynthFaces also writes
``<split>/params/<name>.json`` with the layout and style the face was rendered from.
"""
from __future__ import annotations

from pathlib import Path
from maskgan.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")
META_FILE = "meta.json"
IMAGE_DIR = "images"
MASK_DIR = "masks"
PARAMS_DIR = "params"
IMAGE_EXTS: tuple[str, ...] = (".png", ".jpg", ".jpeg")


def split_dirs(root, split: str) -> tuple[Path, Path]:
    """``(images_dir, masks_dir)`` of a split, with a clear error for an unknown split name."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root = Path(root)
    return root / split / IMAGE_DIR, root / split / MASK_DIR
