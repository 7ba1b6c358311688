"""Datasets: the procedural SynthFaces and prepared CelebAMask-HQ folders, one sample format.

Every dataset returns ``{"image": float32 3xHxW in [-1, 1], "label": int64 HxW, "name": str}``.
:func:`build_dataset` turns a :class:`maskgan.config.DataConfig` into one of them.
"""
from __future__ import annotations

__all__ = ["build_dataset", "label_statistics"]


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
            raise ValueError("data.dataset is 'celebamask-hq' but data.data_root is empty: point it at a folder "
                             "prepared by `python data_prep/prepare_celebamask.py --src ARCHIVE --out FOLDER`")
        return PairedFolderDataset(data_cfg.data_root, split=split, size=data_cfg.size, flip=flip, max_items=length)
    raise ValueError(f"unknown dataset {data_cfg.dataset!r}; expected synthfaces or celebamask-hq")


def label_statistics(dataset, n: int | None = None) -> dict[str, dict[str, float]]:
    """Per class: ``presence`` (fraction of faces containing it) and ``share`` (mean fraction of
    pixels) over the first ``n`` faces of any kit dataset."""
    import torch

    from ..labels import CLASS_NAMES, NUM_CLASSES
    n = min(n or len(dataset), len(dataset))
    present = torch.zeros(NUM_CLASSES)
    share = torch.zeros(NUM_CLASSES)
    for i in range(n):
        counts = torch.bincount(dataset[i]["label"].flatten(), minlength=NUM_CLASSES).float()
        present += counts > 0
        share += counts / counts.sum()
    return {"presence": {c: float(present[k] / n) for k, c in enumerate(CLASS_NAMES)},
            "share": {c: float(share[k] / n) for k, c in enumerate(CLASS_NAMES)}}
