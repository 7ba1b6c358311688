"""Datasets: the procedural SynthFaces, prepared CelebAMask-HQ folders and any folder of faces, one sample format.

Every dataset returns ``{"image": float32 3xHxW in [-1, 1], "label": int64 HxW, "name": str}``.
:func:`build_dataset` turns a :class:`maskgan.config.DataConfig` into one of them;
:class:`FolderFaces` (:mod:`maskgan.data.folder`) reads a folder of images and label maps of any
size (the authors' demo samples, your own faces) for editing.
"""
from __future__ import annotations

from ..errors import DataError

__all__ = ["FolderFaces", "build_dataset", "label_statistics", "count_classes", "class_weights", "flip_draw", "BALANCE_SAMPLES"]



def __getattr__(name):
    # FolderFaces pulls in PIL and torch: load it only when asked for.
    if name == "FolderFaces":
        from .folder import FolderFaces
        return FolderFaces
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Training masks read to estimate the class frequencies of class-weighted cross-entropy.
BALANCE_SAMPLES = 256


def build_dataset(data_cfg, split: str = "train", *, train: bool = False, length: int | None = None):
    """The dataset a config names, for one split.

    ``synthfaces`` renders faces on the fly (``synth_train`` faces in train, ``synth_eval`` in val
    and test); ``celebamask-hq`` reads a folder prepared by ``data_prep/prepare_celebamask.py``.
    Horizontal flips (with left/right label swap) only when ``train`` and ``data_cfg.flip``.
    """
    flip = bool(train and data_cfg.flip)
    if data_cfg.dataset == "synthfaces":
        from .synthfaces import SynthFacesDataset
        n = length or (data_cfg.synth_train if split == "train" else data_cfg.synth_eval)
        return SynthFacesDataset(split=split, size=data_cfg.size, length=n, flip=flip)
    if data_cfg.dataset == "celebamask-hq":
        from .paired import PairedFolderDataset
        if not data_cfg.data_root:
            raise DataError("data.dataset is 'celebamask-hq' but data.data_root is empty: point it at a folder "
                             "prepared by `python data_prep/prepare_celebamask.py --src ARCHIVE --out FOLDER`")
        return PairedFolderDataset(data_cfg.data_root, split=split, size=data_cfg.size, flip=flip, max_items=length)
    raise DataError(f"unknown dataset {data_cfg.dataset!r}; expected synthfaces or celebamask-hq")


def count_classes(labels, n: int | None = None):
    """Class statistics over the first ``n`` label maps of ``labels`` (a kit dataset, or any
    sequence of ``H x W`` label maps): ``(pixels, presence, share)``, float64 tensors of 19 values:
    pixel counts, the number of maps containing each class, and the sum of per-map pixel shares.
    The one class counter of the kit: the class weights of the face parser and the MaskVAE, the
    statistics of notebook 00 and SynthFaces' class frequencies all use it."""
    import torch

    from ..labels import NUM_CLASSES
    n = min(len(labels) if n is None else n, len(labels))
    pixels = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    presence = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    share = torch.zeros(NUM_CLASSES, dtype=torch.float64)
    for i in range(n):
        item = labels[i]
        label = item["label"] if isinstance(item, dict) else torch.as_tensor(item)
        counts = torch.bincount(label.flatten().long(), minlength=NUM_CLASSES).double()
        pixels += counts
        presence += counts > 0
        share += counts / counts.sum()
    return pixels, presence, share


def class_weights(dataset, balance: float, samples: int = BALANCE_SAMPLES):
    """Cross-entropy weights ``freq_c ** -balance`` from the first ``samples`` masks of ``dataset``
    (the face parser's and the MaskVAE's class-weighted loss), normalised so that the average
    weight of a pixel is 1; ``None`` when ``balance == 0``. Classes rarer than 1e-4 (or absent
    from the sample) are weighted as if their frequency were 1e-4."""
    if balance == 0:
        return None
    counts, _, _ = count_classes(dataset, samples)
    freq = counts / counts.sum()
    w = freq.clamp_min(1e-4) ** -balance
    return (w / (w * freq).sum()).float()


def label_statistics(dataset, n: int | None = None) -> dict[str, dict[str, float]]:
    """Per class: ``presence`` (fraction of faces containing it) and ``share`` (mean fraction of
    pixels) over the first ``n`` faces of any kit dataset."""
    from ..labels import CLASS_NAMES
    n = min(n or len(dataset), len(dataset))
    _, present, share = count_classes(dataset, n)
    return {"presence": {c: float(present[k] / n) for k, c in enumerate(CLASS_NAMES)},
            "share": {c: float(share[k] / n) for k, c in enumerate(CLASS_NAMES)}}


def flip_draw(p: float, seed: int, epoch: int, index: int, stream: int = 0) -> bool:
    """Whether training sample ``index`` is mirrored in ``epoch``: a draw from its own random stream
    ``(seed, epoch, index)``, so it does not depend on which process or DataLoader worker loads the
    sample, and a resumed run draws exactly the flips of an uninterrupted one."""
    if p <= 0:
        return False
    if p >= 1:
        return True
    import numpy as np
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(stream), int(epoch), int(index)))
    return bool(np.random.default_rng(ss).random() < p)
