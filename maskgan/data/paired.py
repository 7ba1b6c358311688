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

from maskgan.errors import DataError, DataMissing
from maskgan.io import atomic_write_json, read_json
from maskgan.labels import flip_labels
from maskgan.data.folder import read_label_ids, read_rgb
from maskgan.data.layout import IMAGE_EXTS, META_FILE, split_dirs
from maskgan.data.tensors import image_to_tensor

__all__ = ["PairedFolderDataset", "load_image", "load_label_map", "validate_pairs"]

_HOW_TO_MAKE = ("run `python data_prep/prepare_celebamask.py --src ARCHIVE --out ROOT` (CelebAMask-HQ, "
                "see data_prep/README.md) or materialise SynthFaces into ROOT")


def _resize_to(im: Image.Image, size: int | None, resample, path) -> Image.Image:
    if size is None or im.size == (size, size):
        return im
    if im.width != im.height:
        raise DataError(f"{path} is {im.width}x{im.height}; resizing to {size}x{size} needs a square image")
    return im.resize((size, size), resample, **({"reducing_gap": 3.0} if resample == Image.LANCZOS else {}))


def _image_tensor(rgb: Image.Image, size: int | None, path) -> torch.Tensor:
    return image_to_tensor(np.asarray(_resize_to(rgb, size, Image.LANCZOS, path), dtype=np.uint8))


def _label_tensor(ids: np.ndarray, size: int | None, path) -> torch.Tensor:
    if size is not None and ids.shape != (size, size):
        ids = np.asarray(_resize_to(Image.fromarray(ids), size, Image.NEAREST, path))
    return torch.from_numpy(ids.astype(np.int64))


def load_image(path, size: int | None = None) -> torch.Tensor:
    """Read an image as a float32 ``3 x H x W`` tensor in [-1, 1], as a viewer shows it
    (:func:`maskgan.data.folder.read_rgb`: EXIF orientation, 16-bit scaled); LANCZOS-resized to ``size``."""
    return _image_tensor(read_rgb(path, str(path)), size, path)


def load_label_map(path, size: int | None = None) -> torch.Tensor:
    """Read a label map (single channel, ids 0..18; 8- or 16-bit, see
    :func:`maskgan.data.folder.read_label_ids`) as an int64 ``H x W`` tensor.

    Values outside 0..18 raise :class:`maskgan.labels.LabelError` naming the file and values; a
    colour (RGB) mask raises a ValueError (convert colour masks to ids first). Resizing to
    ``size`` uses NEAREST, so no new ids appear.
    """
    return _label_tensor(read_label_ids(path, str(path)), size, path)


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
            raise DataError(f"flip must be True/False or a probability in [0, 1], got {flip!r}")
        if max_items is not None and int(max_items) < 1:
            raise DataError(f"max_items must be a positive number or None, got {max_items!r}")
        self.images_dir, self.masks_dir = split_dirs(self.root, split)
        for folder in (self.images_dir, self.masks_dir):
            if not folder.is_dir():
                raise DataMissing(f"{folder} not found: {self.root} is not a prepared dataset with a "
                                        f"'{split}' split; {_HOW_TO_MAKE}")
        images = self._list(self.images_dir, IMAGE_EXTS)
        masks = self._list(self.masks_dir, (".png",))
        if not images and not masks:
            raise DataMissing(f"{self.root / split} has no image/mask pairs; {_HOW_TO_MAKE}")
        only_images, only_masks = sorted(images.keys() - masks.keys()), sorted(masks.keys() - images.keys())
        if only_images or only_masks:
            raise DataError(f"{self.root / split}: unmatched files; images without a mask: "
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
                raise DataError(f"{folder}: {found[path.stem].name} and {path.name} share the name {path.stem!r}")
            else:
                found[path.stem] = path
        if strays:
            raise DataError(f"{folder} holds files that are not {'/'.join(exts)}: {_shorten(strays)}")
        return found

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        name = self.names[i]
        image_path, mask_path = self._images[name], self._masks[name]
        rgb, ids = read_rgb(image_path, str(image_path)), read_label_ids(mask_path, str(mask_path))
        if rgb.size != (ids.shape[1], ids.shape[0]):
            raise DataError(f"{image_path} is {rgb.width}x{rgb.height} but {mask_path} is "
                            f"{ids.shape[1]}x{ids.shape[0]}; an image and its mask must have the same size")
        return _image_tensor(rgb, self.size, image_path), _label_tensor(ids, self.size, mask_path), name

    def _item(self, image, label, name, flipped: bool) -> dict:
        if flipped:
            image = image.flip(-1)
            label = flip_labels(label)
        return {"image": image.contiguous(), "label": label.contiguous(), "name": name}

    def __getitem__(self, i: int) -> dict:
        """Pair ``i``; with ``flip`` mirrored at random (``torch.rand``)."""
        image, label, name = self._load(i)
        return self._item(image, label, name, self.flip_p > 0 and float(torch.rand(())) < self.flip_p)

    def sample(self, i: int, *, epoch: int, seed: int) -> dict:
        """Pair ``i`` as the training loop draws it in ``epoch``: mirrored by
        :func:`maskgan.data.flip_draw` of ``(seed, epoch, i)``, the same in any DataLoader worker."""
        from . import flip_draw
        image, label, name = self._load(i)
        return self._item(image, label, name, flip_draw(self.flip_p, seed, epoch, i))

    def label(self, i: int) -> torch.Tensor:
        """The label map of pair ``i`` alone (unflipped), e.g. EBST's reference mask ``M^ref``."""
        return load_label_map(self._masks[self.names[i]], self.size)

    def validate(self, workers: int = 0, cache: bool = True, progress: bool = True) -> dict:
        """Read every file of the split once (image header and size, mask values 0..18) and raise
        one :class:`DataError` listing every bad file. Results are cached in
        ``<root>/<split>/.validated.json`` by file size and mtime, so a second call is cheap."""
        return validate_pairs(self, workers=workers, cache=cache, progress=progress)

    def __repr__(self) -> str:
        return (f"PairedFolderDataset({str(self.root)!r}, split={self.split!r}, {len(self)} pairs, "
                f"size={self.size}, flip_p={self.flip_p})")


def _shorten(names: list[str], n: int = 10) -> str:
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def _check_pair(args: tuple[str, str, int | None]) -> str | None:
    """The problem with one (image, mask) pair, naming the file, or None (a process-pool task)."""
    image_path, mask_path, size = args
    try:
        image_size = read_rgb(image_path, str(image_path)).size
    except Exception as e:  # noqa: BLE001 - every problem of a file is reported with its name
        return str(e) if str(image_path) in str(e) else f"{image_path}: {e}"
    try:
        ids = read_label_ids(mask_path, str(mask_path))
        mask_size = (ids.shape[1], ids.shape[0])
    except Exception as e:  # noqa: BLE001
        return str(e) if str(mask_path) in str(e) else f"{mask_path}: {e}"
    if image_size != mask_size:
        return f"{image_path} is {image_size[0]}x{image_size[1]} but {mask_path} is {mask_size[0]}x{mask_size[1]}"
    return None


def validate_pairs(ds: "PairedFolderDataset", workers: int = 0, cache: bool = True, progress: bool = True) -> dict:
    """See :meth:`PairedFolderDataset.validate`; returns ``{"checked", "cached", "problems"}``."""
    import os
    cache_path = ds.root / ds.split / ".validated.json"
    known = {}
    if cache and cache_path.exists():
        try:
            known = read_json(cache_path)
        except ValueError:
            known = {}

    def stamp(path: Path) -> str:
        st = path.stat()
        return f"{st.st_size}:{st.st_mtime_ns}"
    todo, stamps = [], {}
    for name in ds.names:
        ip, mp = ds._images[name], ds._masks[name]
        stamps[name] = f"{stamp(ip)}|{stamp(mp)}"
        if known.get(name) != stamps[name]:
            todo.append((name, (str(ip), str(mp), ds.size)))
    problems: list[str] = []
    if todo:
        from tqdm.auto import tqdm
        args = [a for _, a in todo]
        if workers and workers > 1 and len(todo) > 64:
            from concurrent.futures import ProcessPoolExecutor
            with ProcessPoolExecutor(workers) as pool:
                results = list(tqdm(pool.map(_check_pair, args, chunksize=64), total=len(args),
                                    desc=f"checking {ds.split} files", disable=not progress))
        else:
            results = [_check_pair(a) for a in tqdm(args, desc=f"checking {ds.split} files",
                                                    disable=not progress or len(args) < 200)]
        for (name, _), problem in zip(todo, results):
            if problem is None:
                known[name] = stamps[name]
            else:
                known.pop(name, None)
                problems.append(problem)
        if cache and os.access(cache_path.parent, os.W_OK):
            atomic_write_json(cache_path, known)
    if problems:
        raise DataError(f"{ds.root / ds.split}: {len(problems)} of {len(ds.names)} pairs are unreadable or "
                        f"invalid; fix or remove them:\n  " + "\n  ".join(problems[:50])
                        + (f"\n  ... ({len(problems)} in all)" if len(problems) > 50 else ""))
    return {"checked": len(todo), "cached": len(ds.names) - len(todo), "problems": []}
