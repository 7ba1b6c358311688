"""Segmentation scores of label maps: confusion matrix, pixel accuracy, per-class and mean IoU.

MaskGAN's paper measures how well a generated face *follows its mask* by parsing the generated
image with a face parser and comparing the parsed labels with the input mask (its "segmentation"
accuracy in its evaluation tables; the kit's parser is :class:`maskgan.nn.parser.FaceParser`). The same
scores compare a MaskVAE reconstruction with its input mask.

Everything is computed from one confusion matrix ``cm`` (rows: target class, columns: predicted
class), so scores **accumulate exactly over batches**: summing the matrices of two batches gives
the matrix of both together (:class:`SegmentationMeter`). With ``tp = diag(cm)``:

* pixel accuracy = ``sum(tp) / sum(cm)``;
* IoU of class c = ``tp_c / (row_c + col_c - tp_c)`` (intersection over union of the target and
  predicted regions of c);
* mean IoU averages IoU over the classes that appear in the target *or* the prediction (a class
  absent from both has IoU 0/0, which is undefined and skipped: ``ignore_absent=True``, the usual
  convention of face-parsing benchmarks). ``ignore_absent=False`` counts such classes as IoU 1
  (both agree the class is absent), which averages over all ``num_classes``.
"""
from __future__ import annotations

import math

import torch

from ..labels import CLASS_NAMES, NUM_CLASSES
from ._common import check_labels

__all__ = ["confusion_matrix", "pixel_accuracy", "per_class_iou", "mean_iou", "SegmentationMeter"]


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES,
                     ignore_index: int | None = None) -> torch.Tensor:
    """``(num_classes, num_classes)`` int64 counts: entry ``[t, p]`` = pixels of class t predicted as p.

    ``pred`` and ``target`` are integer label maps of the same shape (e.g. ``(N, H, W)``). Pixels
    whose target equals ``ignore_index`` (e.g. 255 for "unlabelled") are left out.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    check_labels(pred, "pred")
    check_labels(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    check_labels(pred, "pred", num_classes)
    check_labels(target, "target", num_classes)
    flat = target * num_classes + pred  # one bin per (target, pred) pair
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _accuracy_from_cm(cm: torch.Tensor) -> float:
    total = int(cm.sum())
    return float(cm.diag().sum()) / total if total else math.nan


def _iou_from_cm(cm: torch.Tensor) -> torch.Tensor:
    """Per-class IoU as float64, NaN where the class is absent from target and prediction."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))


def _mean_iou_from_iou(iou: torch.Tensor, ignore_absent: bool) -> float:
    if not ignore_absent:
        return float(torch.nan_to_num(iou, nan=1.0).mean())
    present = ~torch.isnan(iou)
    return float(iou[present].mean()) if bool(present.any()) else math.nan


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None) -> float:
    """Fraction of pixels whose predicted class equals the target class (NaN for zero pixels)."""
    check_labels(pred, "pred")
    check_labels(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    return float((pred == target).double().mean()) if target.numel() else math.nan


def per_class_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES,
                  ignore_index: int | None = None) -> torch.Tensor:
    """IoU of every class, float64 ``(num_classes,)``; NaN for a class in neither map."""
    return _iou_from_cm(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES, ignore_absent: bool = True,
             ignore_index: int | None = None) -> float:
    """Mean IoU over the classes present in ``target`` or ``pred`` (see the module docstring)."""
    return _mean_iou_from_iou(per_class_iou(pred, target, num_classes, ignore_index), ignore_absent)


class SegmentationMeter:
    """Accumulates a confusion matrix over batches; :meth:`compute` gives the scores of all of them.

    >>> meter = SegmentationMeter()
    >>> for pred, target in batches:            # doctest: +SKIP
    ...     meter.update(pred, target)
    >>> meter.compute()["mean_iou"]             # doctest: +SKIP

    Scores come from the summed matrix, so they equal the scores of one big batch (a mean of
    per-batch mIoUs would not). ``class_names`` label the per-class entries (CelebAMask-HQ names
    by default when ``num_classes == 19``, else ``"0"``, ``"1"``, ...).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int | None = None,
                 class_names: tuple[str, ...] | None = None):
        if class_names is None:
            class_names = CLASS_NAMES if num_classes == NUM_CLASSES else tuple(str(i) for i in range(num_classes))
        if len(class_names) != num_classes:
            raise ValueError(f"class_names has {len(class_names)} names for num_classes={num_classes}")
        self.num_classes, self.ignore_index, self.class_names = num_classes, ignore_index, tuple(class_names)
        self.reset()

    def reset(self) -> None:
        self.cm = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> "SegmentationMeter":
        """Add one batch of label maps (same shape, integer class ids)."""
        self.cm += confusion_matrix(pred, target, self.num_classes, self.ignore_index).cpu()
        return self

    @property
    def num_pixels(self) -> int:
        return int(self.cm.sum())

    def compute(self, ignore_absent: bool = True) -> dict:
        """``pixel_accuracy``, ``mean_accuracy`` (mean per-class recall over target classes),
        ``mean_iou``, ``per_class_iou`` (name -> IoU, ``None`` for absent classes) and ``num_pixels``.

        Plain Python numbers, ready for ``metrics.json``.
        """
        iou = _iou_from_cm(self.cm)
        rows = self.cm.sum(1).double()
        recall = self.cm.diag().double()[rows > 0] / rows[rows > 0]
        return {
            "pixel_accuracy": _accuracy_from_cm(self.cm),
            "mean_accuracy": float(recall.mean()) if recall.numel() else math.nan,
            "mean_iou": _mean_iou_from_iou(iou, ignore_absent),
            "per_class_iou": {name: (None if math.isnan(v) else v) for name, v in zip(self.class_names, iou.tolist())},
            "num_pixels": self.num_pixels,
        }
