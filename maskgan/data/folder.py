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
single-channel PNG (mode ``L`` or ``P``, as the authors' samples are, or 16-bit); a colour
visualisation is refused.

**Pixels as a viewer shows them.** Every picture is read by :func:`read_rgb` (masks by
:func:`read_label_ids`): EXIF orientation applied, 16-bit values scaled to 8 bits, transparency
composited over white, palette / 1-bit / CMYK converted; ``docs/image-formats.md`` has the table.
The kit's other readers (uploads, :mod:`maskgan.photo`, prepared folders) use the same functions.

Sizes: each image is centre-cropped to a square (when it is not one) and resized to ``size`` with
LANCZOS (``resample="bicubic"``: as the authors' demo does); its mask is cropped by the same
fraction and resized with NEAREST (no new ids appear). An image and its mask need the same aspect
ratio, not the same resolution (1024² + 512² is fine).

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
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from maskgan.data.tensors import image_to_tensor
from maskgan.errors import DataError, DataMissing, LabelError
from maskgan.labels import NUM_CLASSES, validate_label_map

__all__ = ["FolderFaces", "MASK_SUBDIR", "MASK_SUFFIX", "RESAMPLE", "ALPHA_BACKGROUND", "open_image", "oriented",
           "as_rgb", "read_rgb", "read_label_ids", "read_face", "read_image", "read_mask", "match_files"]

#: Subfolder holding ``<name>.png`` masks of the images beside it.
MASK_SUBDIR = "masks"
#: ``<name>_mask.png`` is the mask of ``<name>.<ext>``.
MASK_SUFFIX = "_mask"
_IMAGE_EXTS = (".jpg", ".jpeg", ".png")
_MASK_MODES = ("L", "P", "I;16", "I;16L", "I;16B", "I;16N", "I")


def _what(source) -> str:
    return str(source) if not isinstance(source, (bytes, bytearray)) else "the uploaded file"


def open_image(source, name: str) -> Image.Image:
    """A PIL image from a path or bytes, fully read, *as stored* (errors name ``name``). Readers of
    faces use :func:`read_rgb` / :func:`read_label_ids`, which also apply the EXIF orientation."""
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
        im.load()
    except FileNotFoundError:
        raise DataMissing(f"{name} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{name} is a folder; expected a JPEG or PNG file") from None
    except PermissionError as e:
        raise DataError(f"{name} cannot be opened ({e.strerror}); check its permissions") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" would show a Python repr
        why = "not a picture format Pillow reads" if isinstance(e, UnidentifiedImageError) else e
        raise DataError(f"{name} cannot be read as an image ({why}); expected a JPEG or PNG file") from None
    return im


# --- pixels as a viewer shows them (docs/image-formats.md) --------------------------------------

#: Transparent pixels are composited over this colour (a page's white, where viewers show them).
ALPHA_BACKGROUND = (255, 255, 255)
#: Single-channel modes of more than 8 bits (16-bit PNG/TIFF; ``I`` is 32-bit, read as 16-bit).
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
_PLAIN_MODES = ("RGB", "L", "1", "P", "CMYK", "YCbCr")
#: Resampling filters of :func:`read_image`: LANCZOS (the kit's), BICUBIC (the authors' demo reads
#: its faces with it; :meth:`maskgan.editing.Editor.open_faces` uses it for their imported generator).
RESAMPLE = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC}


def _resample(resample: str) -> int:
    if resample not in RESAMPLE:
        raise DataError(f"resample must be one of {', '.join(RESAMPLE)}, got {resample!r}")
    return RESAMPLE[resample]


def oriented(im: Image.Image, name: str) -> Image.Image:
    """``im`` turned as its EXIF ``Orientation`` tag says (all 8 values; Pillow's
    ``ImageOps.exif_transpose``), i.e. as a photo viewer shows it."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on a damaged EXIF block
        raise DataError(f"{name} has damaged EXIF data ({type(e).__name__}: {e}), so its orientation is "
                        "unknown; save it again without EXIF (any image editor's 'export')") from None


def _wide_values(im: Image.Image, name: str) -> np.ndarray:
    """The values of a 16-bit (or ``I``) single-channel image as uint16 (errors name ``name``)."""
    arr = np.asarray(im)
    if im.mode == "I" and arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
        raise DataError(f"{name} is a 32-bit integer image with values {int(arr.min())}..{int(arr.max())}; "
                        "expected 8- or 16-bit values (0..65535)")
    return arr.astype(np.uint16)


def _to_rgb(im: Image.Image, name: str) -> Image.Image:
    """8-bit RGB of any supported mode: 16-bit scaled (not clipped), alpha composited over
    :data:`ALPHA_BACKGROUND`, palette / 1-bit / CMYK converted by Pillow; float and other modes refused."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im
    if mode in _WIDE_MODES:
        wide = _wide_values(im, name).astype(np.uint32)
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # 65535 -> 255, 32768 -> 128
        return Image.fromarray(np.repeat(gray[..., None], 3, axis=2))
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, (*ALPHA_BACKGROUND, 255)), rgba).convert("RGB")
    if mode in _PLAIN_MODES:
        return im.convert("RGB")
    what = "floating-point values" if mode == "F" else "not a photo format"
    raise DataError(f"{name} is a mode {mode!r} image ({what}), which the kit does not read; save it as an 8- or "
                    "16-bit RGB or grayscale PNG or JPEG (see docs/image-formats.md)")


def read_rgb(source, name: str | None = None) -> Image.Image:
    """The picture in a file (path or bytes) **as a viewer shows it**, at full resolution, as an
    8-bit RGB PIL image: EXIF orientation applied, 16-bit values scaled to 8 bits, transparency
    composited over white, palette / 1-bit / CMYK converted (docs/image-formats.md has the table).
    The one image reader of the kit: folders of faces, uploads, photos and prepared datasets."""
    name = name or _what(source)
    with open_image(source, name) as im:
        return as_rgb(im, name)


def as_rgb(im: Image.Image, name: str = "image") -> Image.Image:
    """An opened PIL image as :func:`read_rgb` returns it (EXIF orientation applied, 8-bit RGB)."""
    return _to_rgb(oriented(im, name), name)


def read_label_ids(source, name: str | None = None) -> np.ndarray:
    """A label map file (path or bytes) as its uint8 ``H x W`` class ids, EXIF orientation applied
    (like its image). Single-channel files only: mode ``L``, ``P`` (the palette indices are the ids)
    or 16-bit ``I;16`` / ``I`` (the values are the ids, not scaled). Values outside 0..18 raise
    :class:`~maskgan.errors.LabelError` naming the file; a colour picture a :class:`DataError`."""
    name = name or _what(source)
    with open_image(source, name) as raw:
        im = oriented(raw, name)
    if im.mode not in _MASK_MODES:
        raise DataError(f"{name} is a mode {im.mode!r} image; a mask must be a single-channel label map (a PNG of mode "
                        f"'L', 'P' or 16-bit 'I;16') of CelebAMask-HQ class ids 0..{NUM_CLASSES - 1}, not a colour "
                        "visualisation")
    arr = _wide_values(im, name) if im.mode in _WIDE_MODES else np.asarray(im)
    validate_label_map(arr, source=name)
    return arr.astype(np.uint8)


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


def _image_tensor(im: Image.Image, size: int, resample: str) -> torch.Tensor:
    """An RGB PIL image -> ``3 x size x size`` in [-1, 1]: centre square, resized with ``resample``."""
    im = _crop_fraction(im, _square_box(*im.size))
    if im.size != (size, size):
        im = im.resize((size, size), _resample(resample))
    return image_to_tensor(np.asarray(im, dtype=np.uint8))


def read_image(source, size: int, name: str | None = None, resample: str = "lanczos") -> torch.Tensor:
    """An image (path or bytes, read by :func:`read_rgb`) -> ``3 x size x size`` in [-1, 1]: centre
    square, resized with ``resample`` (``"lanczos"``, the kit's; ``"bicubic"``, the authors' demo's)."""
    _resample(resample)
    return _image_tensor(read_rgb(source, name), size, resample)


def _mask_tensor(ids: np.ndarray, size: int, name: str, image_size: tuple[int, int] | None) -> torch.Tensor:
    height, width = ids.shape
    if image_size is not None and abs(width * image_size[1] - height * image_size[0]) > max(width, height):
        raise DataError(f"{name} is {width}x{height} but its image is {image_size[0]}x{image_size[1]} (as shown, "
                        "after EXIF orientation); an image and its mask must have the same aspect ratio")
    mask = _crop_fraction(Image.fromarray(ids), _square_box(width, height))
    if mask.size != (size, size):
        mask = mask.resize((size, size), Image.NEAREST)
    return torch.from_numpy(np.asarray(mask).astype(np.int64))


def read_mask(source, size: int, name: str | None = None, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A label map (path or bytes; single channel, ids 0..18, see :func:`read_label_ids`) -> int64
    ``size x size`` (NEAREST).

    ``image_size`` (width, height) of its image as shown: the aspect ratios must agree. Errors name
    the file, the offending mode or values, and what was expected."""
    name = name or _what(source)
    try:
        ids = read_label_ids(source, name)
    except LabelError as e:
        raise DataError(f"{e} (background 0 .. cloth 18, see maskgan.labels.CLASS_NAMES)") from None
    return _mask_tensor(ids, size, name, image_size)


def read_face(image, mask, size: int, name: str, image_name: str | None = None,
              mask_name: str | None = None, resample: str = "lanczos") -> dict:
    """One kit item from an image and its mask (paths or bytes, e.g. an upload), both as shown
    (EXIF orientation applied)."""
    image_name, mask_name = image_name or _what(image), mask_name or _what(mask)
    _resample(resample)
    rgb = read_rgb(image, image_name)
    label = read_mask(mask, size, mask_name, image_size=rgb.size)
    return {"image": _image_tensor(rgb, size, resample), "label": label, "name": str(name)}


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
    ``resample``: the filter that resizes images, ``"lanczos"`` (the kit's) or ``"bicubic"`` (what the
    authors' demo uses; for their imported generator).
    Items are read on access; a file that cannot be read is a :class:`~maskgan.errors.DataError`
    naming it.
    """

    def __init__(self, root, size: int, photo: Callable[[Image.Image, int, str], dict] | None = None,
                 resample: str = "lanczos"):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise DataError(f"size must be a positive number of pixels, got {size!r}")
        _resample(resample)
        self.root, self.size, self.photo, self.resample = Path(root), int(size), photo, resample
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
            return read_face(path, self.masks[name], self.size, name, resample=self.resample)
        item = self.photo(read_rgb(path, str(path)), self.size, str(path))
        return {"image": item["image"], "label": item["label"], "name": name}

    def problems(self) -> list[str]:
        """Read every file of the folder once (each image at full resolution, each mask with its ids and
        aspect ratio; images without a mask are read, not parsed) and return what is wrong, one line per
        file (empty: every face can be used). ``make app``'s pre-check calls it, so a bad file is named
        before the page opens, not in a widget callback."""
        found = []
        for name in self.names:
            path = self.images[name]
            try:
                if name in self.masks:
                    read_face(path, self.masks[name], self.size, name, resample=self.resample)
                else:
                    read_rgb(path, str(path))
            except DataError as e:
                found.append(str(e))
        return found

    def __repr__(self) -> str:
        parsed = f", {len(self.unmasked)} parsed" if self.unmasked else ""
        how = "" if self.resample == "lanczos" else f", resample={self.resample!r}"
        return f"FolderFaces({str(self.root)!r}, {len(self)} faces{parsed}, size={self.size}{how})"
