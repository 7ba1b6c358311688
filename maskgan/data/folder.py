"""Faces from any folder: image + label-map pairs, the authors' demo samples, and bare photos.

MaskGAN edits a face through its mask, so every face needs a pair ``(I^t, M^t)``. This module reads
the common "image + label map" folder layouts into the kit's items (the same dicts as every kit
dataset)::

    {"image": float32 3 x size x size in [-1, 1], "label": int64 size x size, ids 0..18, "name": str}

**Which file is the mask of which image** (one rule, checked for every file of the folder):

1. ``FOLDER/masks/<name>.png`` is the mask of ``FOLDER/<name>.<jpg|jpeg|png>``;
2. ``FOLDER/<name>_mask.png`` is the mask of ``FOLDER/<name>.<jpg|jpeg|png>``;
3. ``FOLDER/<name>.png`` is the mask of ``FOLDER/<name>.<jpg|jpeg>`` (the CelebAMask-HQ authors'
   demo sample layout: ``N.jpg`` at 1024² next to ``N.png``, its 512² label map).

Any other ``.png`` is an image. An image with two masks, a mask without an image and a file of
another kind are errors (hidden files, starting with ``.``, are skipped); nothing is dropped
silently. Masks hold CelebAMask-HQ ids 0..18 in the kit's order (:mod:`maskgan.labels`) in a
single-channel PNG (mode ``L`` or ``P``, as the authors' samples are); a colour visualisation is
refused.

Sizes: each image is centre-cropped to a square (when it is not one) and resized to ``size`` with
LANCZOS; its mask is cropped by the same fraction and resized with NEAREST (no new ids appear). An
image and its mask need the same aspect ratio, not the same resolution (1024² + 512² is fine).

Images without a mask are allowed only with ``photo=``: a callable ``photo(pil_rgb, size, file_name) ->
{"image", "label"}`` that crops and parses the photo (:func:`maskgan.photo.open_faces` passes one
built from a face parser). Without it they are an error that lists them.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from maskgan.data.tensors import image_to_tensor
from maskgan.errors import DataError, DataMissing
from maskgan.labels import NUM_CLASSES

__all__ = ["FolderFaces", "MASK_SUBDIR", "MASK_SUFFIX", "open_image", "read_face", "read_image", "read_mask", "match_files"]

#: Subfolder holding ``<name>.png`` masks of the images beside it.
MASK_SUBDIR = "masks"
#: ``<name>_mask.png`` is the mask of ``<name>.<ext>``.
MASK_SUFFIX = "_mask"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_MASK_MODES = ("L", "P")


def _what(source) -> str:
    return str(source) if not isinstance(source, (bytes, bytearray)) else "the uploaded file"


def open_image(source, name: str) -> Image.Image:
    """A PIL image from a path or bytes, fully read (errors name ``name``)."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        im.load()
    except FileNotFoundError:
        raise DataMissing(f"{name} does not exist") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{name} cannot be read as an image ({e}); expected a JPEG or PNG file") from None
    return im


def _square_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centred square of a ``width x height`` picture, as fractions ``(left, top, right, bottom)``."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left / width, top / height, (left + side) / width, (top + side) / height


def _crop_fraction(im: Image.Image, box) -> Image.Image:
    if box == (0.0, 0.0, 1.0, 1.0):
        return im
    w, h = im.size
    return im.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))


def read_image(source, size: int, name: str | None = None) -> torch.Tensor:
    """An RGB image (path or bytes) -> ``3 x size x size`` in [-1, 1]: centre square, LANCZOS resize."""
    name = name or _what(source)
    im = open_image(source, name).convert("RGB")
    im = _crop_fraction(im, _square_box(*im.size))
    if im.size != (size, size):
        im = im.resize((size, size), Image.LANCZOS)
    return image_to_tensor(np.asarray(im, dtype=np.uint8))


def read_mask(source, size: int, name: str | None = None, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A label map (path or bytes; single channel, ids 0..18) -> int64 ``size x size`` (NEAREST).

    ``image_size`` (width, height) of its image: the aspect ratios must agree. Errors name the file,
    the offending mode or values, and what was expected."""
    name = name or _what(source)
    im = open_image(source, name)
    if im.mode not in _MASK_MODES:
        raise DataError(f"{name} is a mode {im.mode!r} image; a mask must be a single-channel PNG (mode 'L' or "
                        f"'P') of CelebAMask-HQ class ids 0..{NUM_CLASSES - 1}, not a colour visualisation")
    if image_size is not None and abs(im.width * image_size[1] - im.height * image_size[0]) > max(im.size):
        raise DataError(f"{name} is {im.width}x{im.height} but its image is {image_size[0]}x{image_size[1]}; "
                        "an image and its mask must have the same aspect ratio")
    arr = np.asarray(im)  # mode P: the palette indices are the ids
    bad = np.unique(arr[arr >= NUM_CLASSES])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:10]) + (", ..." if bad.size > 10 else "")
        raise DataError(f"{name} has label value(s) {shown}; CelebAMask-HQ labels are 0..{NUM_CLASSES - 1} "
                        "(background 0 .. cloth 18, see maskgan.labels.CLASS_NAMES)")
    mask = _crop_fraction(Image.fromarray(arr.astype(np.uint8), mode="L"), _square_box(*im.size))
    if mask.size != (size, size):
        mask = mask.resize((size, size), Image.NEAREST)
    return torch.from_numpy(np.asarray(mask).astype(np.int64))


def read_face(image, mask, size: int, name: str, image_name: str | None = None,
              mask_name: str | None = None) -> dict:
    """One kit item from an image and its mask (paths or bytes, e.g. an upload)."""
    image_name, mask_name = image_name or _what(image), mask_name or _what(mask)
    with open_image(image, image_name) as im:
        image_size = im.size
    label = read_mask(mask, size, mask_name, image_size=image_size)
    return {"image": read_image(image, size, image_name), "label": label, "name": str(name)}


def match_files(root) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(images, masks)``, each ``{name: path}``, by the module's rule; an error lists every
    file that fits no rule, every mask without an image and every image with two masks."""
    root = Path(root)
    if not root.is_dir():
        raise DataMissing(f"faces folder {root} does not exist; expected a folder of <name>.jpg images with "
                          "<name>.png masks (the authors' samples), masks/<name>.png or <name>_mask.png")
    files = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    strays = [p.name + ("/" if p.is_dir() else "") for p in files
              if not (p.is_file() and p.suffix.lower() in _IMAGE_EXTS) and not (p.is_dir() and p.name == MASK_SUBDIR)]
    files = [p for p in files if p.is_file() and p.suffix.lower() in _IMAGE_EXTS]
    jpeg_stems = {p.stem for p in files if p.suffix.lower() in (".jpg", ".jpeg")}
    images: dict[str, Path] = {}
    masks: dict[str, list[Path]] = {}
    for p in files:
        if p.suffix.lower() == ".png" and p.stem.endswith(MASK_SUFFIX) and len(p.stem) > len(MASK_SUFFIX):
            masks.setdefault(p.stem[: -len(MASK_SUFFIX)], []).append(p)
        elif p.suffix.lower() == ".png" and p.stem in jpeg_stems:
            masks.setdefault(p.stem, []).append(p)
        elif p.stem in images:
            raise DataError(f"{root}: {images[p.stem].name} and {p.name} are both images named {p.stem!r}")
        else:
            images[p.stem] = p
    sub = root / MASK_SUBDIR
    if sub.is_dir():
        for p in sorted(sub.iterdir()):
            if p.name.startswith("."):
                continue
            if p.is_file() and p.suffix.lower() == ".png":
                masks.setdefault(p.stem, []).append(p)
            else:
                strays.append(f"{MASK_SUBDIR}/{p.name}")
    problems = []
    if strays:
        problems.append(f"files that are neither .jpg/.jpeg/.png images nor masks: {_shorten(strays)}")
    doubles = [f"{n} ({', '.join(str(m.relative_to(root)) for m in ms)})" for n, ms in masks.items() if len(ms) > 1]
    if doubles:
        problems.append(f"images with more than one mask: {_shorten(doubles)}")
    orphans = [str(ms[0].relative_to(root)) for n, ms in masks.items() if n not in images]
    if orphans:
        problems.append(f"masks without an image: {_shorten(orphans)}")
    if problems:
        raise DataError(f"faces folder {root}: " + "; ".join(problems) + ". The rule: masks/<name>.png, "
                        "<name>_mask.png, or <name>.png next to <name>.jpg is the mask of image <name>")
    if not images:
        raise DataMissing(f"faces folder {root} holds no images (.jpg, .jpeg, .png)")
    return images, {n: ms[0] for n, ms in masks.items()}


def _shorten(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


class FolderFaces(Dataset):
    """The faces of a folder (see the module docstring for the layout), at ``size`` x ``size``.

    ``photo``: ``photo(pil_rgb_image, size, file_name) -> {"image", "label"}`` for images without a mask (e.g.
    :func:`maskgan.photo.open_faces` with a face parser); without it such images are an error.
    Items are read on access; a file that cannot be read is a :class:`~maskgan.errors.DataError`
    naming it.
    """

    def __init__(self, root, size: int, photo: Callable[[Image.Image, int, str], dict] | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DataError(f"size must be a positive number of pixels, got {size!r}")
        self.root, self.size, self.photo = Path(root), int(size), photo
        self.images, self.masks = match_files(self.root)
        self.names = sorted(self.images)
        self.unmasked = [n for n in self.names if n not in self.masks]
        if self.unmasked and photo is None:
            raise DataError(f"faces folder {self.root}: images without a mask: "
                            f"{_shorten([self.images[n].name for n in self.unmasked])}; add each mask "
                            "(<name>.png next to <name>.jpg, masks/<name>.png or <name>_mask.png, ids 0..18) "
                            "or pass a face parser to parse them (maskgan.photo.open_faces(folder, size, parser), "
                            "or --parser / parser= in the app)")

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        name = self.names[i]
        path = self.images[name]
        if name in self.masks:
            return read_face(path, self.masks[name], self.size, name)
        with open_image(path, str(path)) as im:
            item = self.photo(im.convert("RGB"), self.size, str(path))
        return {"image": item["image"], "label": item["label"], "name": name}

    def __repr__(self) -> str:
        parsed = f", {len(self.unmasked)} parsed" if self.unmasked else ""
        return f"FolderFaces({str(self.root)!r}, {len(self)} faces{parsed}, size={self.size})"
