"""Evaluation metrics of the kit: pure functions on torch tensors, batch first.

Conventions: images are float ``(N, 3, H, W)`` in [-1, 1]; label maps are int64 ``(N, H, W)``
with the 19 CelebAMask-HQ classes (:data:`maskgan.labels.NUM_CLASSES`).

* does the generated image follow its mask? Parse it (:class:`maskgan.nn.parser.FaceParser`) and
  score the parse against the mask: :class:`SegmentationMeter`, :func:`pixel_accuracy`,
  :func:`mean_iou`, :func:`confusion_matrix` (:mod:`.segmentation`);
* how close is it to a reference image? :func:`psnr`, :func:`ssim`, both with ``mask=`` for a
  region (:mod:`.image`);
* is an edit local? :func:`edit_region` then :func:`inside_outside` (:mod:`.edits`, :mod:`.image`);
* is MaskVAE's manifold smooth? :func:`label_change_fraction` along a latent walk (:mod:`.edits`);
* do the image statistics of two sets match? :func:`sliced_wasserstein`, PGGAN's SWD (:mod:`.swd`);
* FID (Heusel et al. 2017): :func:`fid`, :func:`fid_available`, :func:`fid_from_features`,
  :func:`frechet_distance`, with the TensorFlow Inception rebuilt in :mod:`.inception` (:mod:`.fid`).

FID needs an external weights file (see :func:`fid_available`); everything else runs offline.
"""
from __future__ import annotations

from .edits import edit_region, grow_region, label_change_fraction
from .fid import (FID_WEIGHTS_FILE, FID_WEIGHTS_URL, default_inception_path, fid, fid_available, fid_from_features,
                  frechet_distance, gaussian_stats, inception_features, load_inception)
from .image import PAIR_KEYS, PSNR_CAP_DB, inside_outside, pair_scores, psnr, ssim, ssim_map
from .inception import InceptionV3Features
from .segmentation import SegmentationMeter, confusion_matrix, mean_iou, per_class_iou, pixel_accuracy
from .swd import laplacian_pyramid, sliced_wasserstein

#: Short alias of the FID feature extractor.
InceptionFeatures = InceptionV3Features

__all__ = [
    "confusion_matrix", "pixel_accuracy", "per_class_iou", "mean_iou", "SegmentationMeter",
    "PSNR_CAP_DB", "PAIR_KEYS", "psnr", "ssim", "ssim_map", "pair_scores", "inside_outside",
    "laplacian_pyramid", "sliced_wasserstein",
    "FID_WEIGHTS_FILE", "FID_WEIGHTS_URL", "default_inception_path", "fid_available", "load_inception",
    "gaussian_stats", "frechet_distance", "fid_from_features", "inception_features", "fid",
    "InceptionV3Features", "InceptionFeatures",
    "label_change_fraction", "edit_region", "grow_region",
]
