"""SynthFaces: a procedural face dataset with the 19 CelebAMask-HQ classes and ground-truth edits.

Why: MaskGAN (Lee et al., CVPR 2020) edits a face by editing its semantic mask: the Dense Mapping
Network renders the edited mask in the style of the original image (Fig. 2), and Editing Behavior
Simulated Training (Algorithm 1) teaches it to do so for imperfect, user-like masks. On real data
there is no right answer for an edit, so its quality can only be judged by eye or by proxies.
SynthFaces renders faces from parameters: a :class:`Layout` (geometry, hence the label map) and a
:class:`Style` (appearance) plus a texture ``seed``. Re-rendering an *edited* layout with the same
style and seed gives the ground-truth edited image (:func:`edit_pair`), so an edit made by the model
can be compared pixel for pixel with the truth, inside and outside the edited region
(:func:`edit_region`).

* pure numpy, no downloads: :func:`render` draws any square size from 32 to 1024;
* the label map follows the CelebAMask-HQ merge order (:data:`maskgan.labels.MERGE_ORDER`);
* deterministic: face ``i`` of a split is a function of ``(base_seed, split, i)`` only, and the
  three splits draw from independent random streams (:func:`face_params`);
* on the fly (:class:`SynthFacesDataset`) or written to disk in the folder layout of
  :mod:`maskgan.data.layout` (:func:`materialise`), so one loader serves it and CelebAMask-HQ.

What it leaves out: faces are frontal cartoons (no pose beyond a small in-plane rotation, no
beards, no occluding hands); they teach the pipeline, not photorealism.
"""
from __future__ import annotations

import operator
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from maskgan.errors import DataError
from maskgan.io import atomic_save_png, atomic_write_json, read_json
from maskgan.labels import CLASS_NAMES, flip_labels
from maskgan.data.layout import META_FILE, PARAMS_DIR, SPLITS, split_dirs
from maskgan.data.synth.edits import EDIT_CLASSES, EDIT_FAMILIES, apply_edit, check_family
from maskgan.data.synth.params import Layout, Style, face_params, sample_layout, sample_style, split_key
from maskgan.data.synth.render import MAX_SIZE, MIN_SIZE, check_size, part_coverage, render, render_labels
from maskgan.data.tensors import image_to_tensor, label_to_tensor

__all__ = [
    "Layout", "Style", "sample_layout", "sample_style", "face_params", "render", "render_face",
    "face_name", "part_coverage", "EDIT_FAMILIES", "EDIT_CLASSES", "apply_edit", "edit_pair",
    "edit_region", "SynthFacesDataset",
    "materialise", "DEFAULT_COUNTS", "class_frequencies", "bench_render", "MIN_SIZE", "MAX_SIZE",
]

#: Faces per split written by :func:`materialise` when no counts are given.
DEFAULT_COUNTS: dict[str, int] = {"train": 10000, "val": 1000, "test": 1000}

_EDIT_STREAM = 1      # spawn-key suffix of the random stream that draws edits
_FLIP_STREAM = 1000   # ... and of the one that decides dataset flips


def face_name(split: str, index: int) -> str:
    """File stem of a face: ``<split>_<index:06d>``, e.g. ``train_000042``."""
    split_key(split)
    return f"{split}_{int(index):06d}"


def render_face(split: str, index: int, size: int, base_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render face ``index`` of ``split``: ``(image uint8 HxWx3, labels uint8 HxW)``."""
    layout, style, seed = face_params(split, index, base_seed)
    return render(layout, style, size, seed)


def edit_pair(family: str, split: str, index: int, size: int, base_seed: int = 0) -> dict:
    """An (original, edited) pair of face ``index`` with a shared style and seed.

    Returns a dict with the kit's sample tensors, ``image`` and ``edited_image`` (float32 3xHxW in
    [-1, 1]), ``label`` and ``edited_label`` (int64 HxW), and ``name``, ``layout``,
    ``edited_layout`` (:class:`Layout`), ``style``, ``seed``, ``family``. The original
    layout may differ from the sampled face when the edit needed a precondition (see
    :func:`apply_edit`). Deterministic in ``(family, split, index, base_seed)``.
    """
    check_family(family)
    layout, style, seed = face_params(split, index, base_seed)
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(split_key(split), int(index), _EDIT_STREAM,
                                                           EDIT_FAMILIES.index(family)))
    original, edited = apply_edit(layout, family, np.random.default_rng(ss))
    image, labels = render(original, style, size, seed)
    edited_image, edited_labels = render(edited, style, size, seed)
    return {"image": image_to_tensor(image), "label": label_to_tensor(labels),
            "edited_image": image_to_tensor(edited_image), "edited_label": label_to_tensor(edited_labels),
            "name": face_name(split, index), "layout": original, "edited_layout": edited, "style": style,
            "seed": seed, "family": family}


def edit_region(pair: dict) -> torch.Tensor:
    """Boolean HxW tensor of the pixels an edit may change: where the classes of its family
    (:data:`EDIT_CLASSES`) physically are in the original or the edited layout, hidden parts
    included (:func:`part_coverage`). Outside it (give or take a 1-2 px anti-aliased border) the
    ground-truth edited image equals the original, so an editing method should leave it alone."""
    size = pair["label"].shape[-1]
    mask = np.zeros((size, size), bool)
    for layout in (pair["layout"], pair["edited_layout"]):
        cov = part_coverage(layout, pair["style"], size, pair["seed"])
        for name in EDIT_CLASSES[pair["family"]]:
            if name in cov:
                mask |= cov[name] > 0
    return torch.from_numpy(mask)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise DataError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class SynthFacesDataset(Dataset):
    """SynthFaces rendered on the fly, ``length`` faces of one split.

    Items have exactly the format of :class:`maskgan.data.paired.PairedFolderDataset`:
    ``{"image": float32 3xHxW in [-1, 1], "label": int64 HxW (ids 0..18), "name": "train_000042"}``.
    With ``flip=True`` an item is mirrored with probability 0.5, decided per index from its own
    random stream (so an index always gives the same item), swapping l_/r_ classes with
    :func:`maskgan.labels.flip_labels`.
    """

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, base_seed: int = 0,
                 flip: bool = False):
        split_key(split)
        self.split, self.size = split, check_size(size)
        self.length = _positive_int("length", length)
        self.base_seed, self.flip = int(base_seed), bool(flip)
        face_params(split, 0, self.base_seed)  # validates base_seed early

    def __len__(self) -> int:
        return self.length

    def flipped(self, index: int) -> bool:
        """Whether item ``index`` is mirrored (always False without ``flip``)."""
        if not self.flip:
            return False
        ss = np.random.SeedSequence(self.base_seed, spawn_key=(split_key(self.split), index, _FLIP_STREAM))
        return bool(np.random.default_rng(ss).random() < 0.5)

    def _check(self, index) -> int:
        index = operator.index(index)
        if not 0 <= index < self.length:
            raise IndexError(f"SynthFacesDataset({self.split!r}) has {self.length} items; index {index} is out of range")
        return index

    def _item(self, index: int, flipped: bool) -> dict:
        image, labels = render_face(self.split, index, self.size, self.base_seed)
        if flipped:
            image, labels = image[:, ::-1], flip_labels(labels)
        return {"image": image_to_tensor(image), "label": label_to_tensor(labels), "name": face_name(self.split, index)}

    def __getitem__(self, index) -> dict:
        index = self._check(index)
        return self._item(index, self.flipped(index))

    def sample(self, index, *, epoch: int, seed: int) -> dict:
        """Item ``index`` as the training loop draws it in ``epoch``: mirrored (when ``flip``) by
        :func:`maskgan.data.flip_draw` of ``(seed, epoch, index)``, whatever process loads it."""
        from . import flip_draw
        index = self._check(index)
        return self._item(index, self.flip and flip_draw(0.5, seed, epoch, index, _FLIP_STREAM))

    def label(self, index) -> torch.Tensor:
        """The label map of item ``index`` alone (unflipped), without painting the image: what EBST
        needs of a reference face (``M^ref``)."""
        index = self._check(index)
        layout, style, seed = face_params(self.split, index, self.base_seed)
        return label_to_tensor(render_labels(layout, style, self.size, seed))


# --- writing to disk ---------------------------------------------------------------------------

def _paths(root: Path, split: str, name: str) -> tuple[Path, Path, Path]:
    images, masks = split_dirs(root, split)
    return images / f"{name}.png", masks / f"{name}.png", root / split / PARAMS_DIR / f"{name}.json"


def _write_faces(root: str, split: str, indices: list[int], size: int, base_seed: int) -> int:
    """Render and write faces (a process-pool task). The params file goes last: a face whose three
    files all exist is complete, since each file is written atomically."""
    root_p = Path(root)
    for index in indices:
        layout, style, seed = face_params(split, index, base_seed)
        image, labels = render(layout, style, size, seed)
        img_path, mask_path, params_path = _paths(root_p, split, face_name(split, index))
        atomic_save_png(img_path, image)
        atomic_save_png(mask_path, labels)
        atomic_write_json(params_path, {"layout": layout.to_dict(), "style": style.to_dict(), "seed": seed,
                                        "split": split, "index": index, "base_seed": base_seed})
    return len(indices)


def _check_counts(counts) -> dict[str, int]:
    if not isinstance(counts, dict):
        raise TypeError(f"counts must be a dict like {DEFAULT_COUNTS}, got {type(counts).__name__}")
    unknown = [k for k in counts if k not in SPLITS]
    if unknown:
        raise DataError(f"counts has unknown split(s) {unknown}; expected keys among {', '.join(SPLITS)}")
    out = {}
    for split in SPLITS:
        n = counts.get(split, 0)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise DataError(f"counts[{split!r}] must be a non-negative integer, got {n!r}")
        out[split] = int(n)
    return out


def _read_meta(root: Path, size: int, base_seed: int) -> tuple[dict[str, int], bool]:
    """``(counts, complete)`` recorded by an earlier run into ``root``; refuses a folder of other
    faces (another size or base seed)."""
    path = root / META_FILE
    if not path.exists():
        return {s: 0 for s in SPLITS}, True
    meta = read_json(path)
    for key, want in (("dataset", "synthfaces"), ("size", size), ("base_seed", base_seed)):
        if meta.get(key) != want:
            raise DataError(f"{path} has {key} = {meta.get(key)!r} but this run asks for {want!r}; "
                             f"materialise into another folder (faces of different settings do not mix)")
    return {s: int(meta.get("counts", {}).get(s, 0)) for s in SPLITS}, bool(meta.get("complete", False))


def materialise(root, counts: dict[str, int] | None = None, size: int = 128, base_seed: int = 0,
                workers: int = 1, progress: bool = True) -> dict:
    """Write SynthFaces to ``root`` in the layout of :mod:`maskgan.data.layout`.

    Per face ``<split>/images/<name>.png`` (RGB), ``<split>/masks/<name>.png`` (mode L, ids 0..18)
    and ``<split>/params/<name>.json`` (layout, style, seed); plus ``meta.json`` with ``dataset:
    "synthfaces"``, ``size``, ``counts``, ``base_seed`` and ``complete``. Resumable: faces whose three
    files exist are skipped, so an interrupted run continues where it stopped, and a deleted file is
    re-created. Asking for fewer faces than an earlier run never deletes any; ``meta.json`` keeps
    counting what the folder holds. ``workers > 1`` renders in a process pool.

    Returns ``{"written": {split: n}, "skipped": {split: n}}``.
    """
    from tqdm.auto import tqdm

    counts = _check_counts(DEFAULT_COUNTS if counts is None else counts)
    size, workers = check_size(size), _positive_int("workers", workers)
    root = Path(root)
    previous, previous_complete = _read_meta(root, size, int(base_seed))
    face_params("train", 0, base_seed)  # validates base_seed
    final = {s: max(counts[s], previous[s]) for s in SPLITS}
    meta = {"dataset": "synthfaces", "size": size, "base_seed": int(base_seed), "counts": final,
            "classes": list(CLASS_NAMES), "complete": False}
    atomic_write_json(root / META_FILE, meta)

    from ..io import remove_tmp_files
    for split in SPLITS:  # what a killed run left half-written (every file is written atomically)
        for folder in (*split_dirs(root, split), root / split / PARAMS_DIR):
            remove_tmp_files(folder)
    todo: dict[str, list[int]] = {}
    skipped = {}
    for split in SPLITS:
        missing = [i for i in range(counts[split])
                   if not all(p.exists() for p in _paths(root, split, face_name(split, i)))]
        todo[split], skipped[split] = missing, counts[split] - len(missing)
    total = sum(len(v) for v in todo.values())
    chunk = 16
    tasks = [(split, idx[k:k + chunk]) for split, idx in todo.items() for k in range(0, len(idx), chunk)]
    with tqdm(total=total, desc=f"SynthFaces -> {root}", unit="face", disable=not progress) as bar:
        if workers == 1 or len(tasks) <= 1:
            for split, idx in tasks:
                bar.update(_write_faces(str(root), split, idx, size, int(base_seed)))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(_write_faces, str(root), split, idx, size, int(base_seed)) for split, idx in tasks]
                for f in futures:
                    bar.update(f.result())
    # Every requested face now exists; faces beyond the request come from an earlier run.
    meta["complete"] = previous_complete or all(previous[s] <= counts[s] for s in SPLITS)
    atomic_write_json(root / META_FILE, meta)
    return {"written": {s: len(todo[s]) for s in SPLITS}, "skipped": skipped}


# --- reporting ---------------------------------------------------------------------------------

def class_frequencies(n: int = 1000, size: int = 64, split: str = "train", base_seed: int = 0) -> dict[str, float]:
    """Class statistics over the first ``n`` faces of ``split``.

    ``result[name]``: fraction of faces in which the class appears; ``result[name + "_share"]``: its
    mean share of the pixels. Useful to compare with CelebAMask-HQ and to check the sampler.
    """
    from . import count_classes
    n = _positive_int("n", n)
    ds = SynthFacesDataset(split, size=size, length=n, base_seed=base_seed)
    _, present, share = count_classes([ds.label(i) for i in range(n)])
    out = {name: float(present[c] / n) for c, name in enumerate(CLASS_NAMES)}
    out.update({f"{name}_share": float(share[c] / n) for c, name in enumerate(CLASS_NAMES)})
    return out


def bench_render(size: int = 128, n: int = 200) -> float:
    """Faces per second of sampling + rendering in this process (one core), after one warm-up."""
    n = _positive_int("n", n)
    render_face("train", 0, size)
    t0 = time.perf_counter()
    for i in range(n):
        render_face("train", i, size)
    return n / (time.perf_counter() - t0)
