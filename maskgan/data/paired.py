"""Paired (image, label map) folders: one loader for prepared CelebAMask-HQ and materialised SynthFaces.

MaskGAN trains on pairs ``(I^t, M^t)`` (paper Sec. 3, Fig. 2): a face image and its semantic mask.
Both datasets of the kit are stored in the layout of :mod:`maskgan.data.layout`, and this module
reads that layout. An item is exactly::

    {"image": float32 tensor 3 x H x W in [-1, 1],   # the generator's tanh range
     "label": int64 tensor H x W with ids 0..18,     # one-hot it with maskgan.labels.one_hot
     "name":  str}                                   # e.g. "00012"

Checks happen where they are cheap: at construction, that the split exists and every image has a
mask and vice versa; at load time, per item, that the sizes agree and the label ids are 0..18
(errors name the file). An optional horizontal flip swaps left/right classes
(:func:`maskgan.labels.flip_labels`), without which flipping would corrupt the labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from maskgan.io import read_json
from maskgan.labels import flip_labels, validate_label_map
from maskgan.data.layout import IMAGE_EXTS, META_FILE, split_dirs
from maskgan.data.tensors import image_to_tensor

__all__ = ["PairedFolderDataset", "load_image", "load_label_map"]

_HOW_TO_MAKE = ("run `python data_prep/prepare_celebamask.py --src ARCHIVE --out ROOT` (CelebAMask-HQ, "
                "see data_prep/README.md) or materialise SynthFaces into ROOT")


def _resize_to(im: Image.Image, size: int | None, resample, path) -> Image.Image:
    if size is None or im.size == (size, size):
        return im
    if im.width != im.height:
        raise ValueError(f"{path} is {im.width}x{im.height}; resizing to {size}x{size} needs a square image")
    return im.resize((size, size), resample, **({"reducing_gap": 3.0} if resample == Image.LANCZOS else {}))


def load_image(path, size: int | None = None) -> torch.Tensor:
    """Read an RGB image as a float32 ``3 x H x W`` tensor in [-1, 1]; LANCZOS-resized to ``size``."""
    with Image.open(path) as im:
        im = _resize_to(im.convert("RGB"), size, Image.LANCZOS, path)
        arr = np.asarray(im, dtype=np.uint8)
    return image_to_tensor(arr)


def load_label_map(path, size: int | None = None) -> torch.Tensor:
    """Read a label map (single channel, ids 0..18) as an int64 ``H x W`` tensor.

    Values outside 0..18 raise :class:`maskgan.labels.LabelError` naming the file and values; a
    colour (RGB) mask raises a ValueError (convert colour masks to ids first). Resizing to
    ``size`` uses NEAREST, so no new ids appear.
    """
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"{path} is a mode {im.mode!r} image; expected a single-channel label map "
                             f"(mode 'L') of class ids 0..18, not a colour visualisation")
        arr = np.asarray(im)
        validate_label_map(arr, source=str(path))
        if size is not None and im.size != (size, size):
            arr = np.asarray(_resize_to(Image.fromarray(arr.astype(np.uint8)), size, Image.NEAREST, path))
    return torch.from_numpy(arr.astype(np.int64))


class PairedFolderDataset(Dataset):
    """Image / label-map pairs of one split of a prepared folder (``maskgan.data.layout``).

    ``size``: output side; ``None`` keeps the stored size, another value resizes on the fly
    (images LANCZOS, label maps NEAREST). ``flip``: ``True`` flips horizontally with p = 0.5
    (``torch.rand``, so seeds and DataLoader workers behave), a float sets p; left/right classes are
    swapped. ``max_items``: only the first N pairs by name (smoke runs).
    """

    def __init__(self, root, split: str = "train", size: int | None = None, flip: bool | float = False,
                 max_items: int | None = None):
        self.root = Path(root)
        self.split = split
        self.size = None if size is None else int(size)
        self.flip_p = 0.5 if flip is True else float(flip)
        if not 0.0 <= self.flip_p <= 1.0:
            raise ValueError(f"flip must be True/False or a probability in [0, 1], got {flip!r}")
        if max_items is not None and int(max_items) < 1:
            raise ValueError(f"max_items must be a positive number or None, got {max_items!r}")
        self.images_dir, self.masks_dir = split_dirs(self.root, split)
        for folder in (self.images_dir, self.masks_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder} not found: {self.root} is not a prepared dataset with a "
                                        f"'{split}' split; {_HOW_TO_MAKE}")
        images = self._list(self.images_dir, IMAGE_EXTS)
        masks = self._list(self.masks_dir, (".png",))
        if not images and not masks:
            raise FileNotFoundError(f"{self.root / split} has no image/mask pairs; {_HOW_TO_MAKE}")
        only_images, only_masks = sorted(images.keys() - masks.keys()), sorted(masks.keys() - images.keys())
        if only_images or only_masks:
            raise ValueError(f"{self.root / split}: unmatched files; images without a mask: "
                             f"{_shorten(only_images)}; masks without an image: {_shorten(only_masks)}")
        self.names = sorted(images)[: None if max_items is None else int(max_items)]
        self._images, self._masks = images, masks
        meta_path = self.root / META_FILE
        self.meta: dict | None = read_json(meta_path) if meta_path.exists() else None

    @staticmethod
    def _list(folder: Path, exts: tuple[str, ...]) -> dict[str, Path]:
        """``{name: path}`` of the files in ``folder``; anything else there is an error, not skipped."""
        found: dict[str, Path] = {}
        strays = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):  # hidden files and atomic-write leftovers
                continue
            if path.suffix.lower() not in exts or not path.is_file():
                strays.append(path.name)
            elif path.stem in found:
                raise ValueError(f"{folder}: {found[path.stem].name} and {path.name} share the name {path.stem!r}")
            else:
                found[path.stem] = path
        if strays:
            raise ValueError(f"{folder} holds files that are not {'/'.join(exts)}: {_shorten(strays)}")
        return found

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        name = self.names[i]
        image_path, mask_path = self._images[name], self._masks[name]
        with Image.open(image_path) as im, Image.open(mask_path) as mk:
            if im.size != mk.size:
                raise ValueError(f"{image_path} is {im.width}x{im.height} but {mask_path} is "
                                 f"{mk.width}x{mk.height}; an image and its mask must have the same size")
        image = load_image(image_path, self.size)
        label = load_label_map(mask_path, self.size)
        if self.flip_p > 0 and float(torch.rand(())) < self.flip_p:
            image = image.flip(-1)
            label = flip_labels(label)
        return {"image": image.contiguous(), "label": label.contiguous(), "name": name}

    def __repr__(self) -> str:
        return (f"PairedFolderDataset({str(self.root)!r}, split={self.split!r}, {len(self)} pairs, "
                f"size={self.size}, flip_p={self.flip_p})")


def _shorten(names: list[str], n: int = 10) -> str:
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
