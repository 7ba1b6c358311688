"""Typed results of an evaluation: what :func:`maskgan.evaluation.evaluate_run` measures.

Every number has a named field, so the report (:mod:`.report`) reads attributes, and a renamed or
missing metric is an error, not a silent ``-``. :meth:`Evaluation.to_dict` gives the JSON written
to ``metrics.json`` (section ``eval``); :meth:`Evaluation.from_dict` reads it back.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

__all__ = ["Segmentation", "PairFidelity", "StageEval", "ParserRecord", "Reference", "MaskVAEEval", "Evaluation"]


@dataclass
class Segmentation:
    """A face parser's reading of images against their masks (Sec. 4's segmentation accuracy)."""
    pixel_accuracy: float | None
    mean_iou: float | None
    mean_accuracy: float | None
    n: int = 0  # images


@dataclass
class PairFidelity:
    """PSNR (dB) / SSIM of outputs against reference images: whole image, and inside / outside the
    edited region (dilated, see :data:`maskgan.evaluation.run.REGION_DILATE`)."""
    psnr: float | None
    ssim: float | None
    psnr_inside: float | None
    psnr_outside: float | None
    ssim_inside: float | None
    ssim_outside: float | None
    n: int = 0  # image pairs
    psnr_band: float | None = None  # PSNR in the seam band around the composite's edge (composite.seam_band)
    beats_no_edit: float | None = None  # share of pairs whose whole-image PSNR beats the unedited original's


@dataclass
class StageEval:
    """Everything measured for one generator stage."""
    training: dict  # Run.training_record: steps, generator_updates (, pretrained_<stage>_steps)
    recon_psnr: float | None  # reconstructions of test faces against the real images
    recon_ssim: float | None
    recon_parse: Segmentation  # parser on reconstructions against M^t
    swd: dict[str, float]  # SWD x1e3 of reconstructions vs real test images, per level and "swd_avg"
    fid: float | None = None  # FID of reconstructions vs real test images (None: no Inception file)
    edited_parse: Segmentation | None = None  # parser on edits against the edited masks (SynthFaces)
    edit: PairFidelity | None = None  # full re-renders (the paper's edit) against the ground-truth edits
    edit_families: dict[str, PairFidelity] = field(default_factory=dict)
    edit_families_parse: dict[str, Segmentation] = field(default_factory=dict)
    # the same edits composited into the input (maskgan.composite; Evaluation.composite says how)
    edit_composite: PairFidelity | None = None
    edit_composite_families: dict[str, PairFidelity] = field(default_factory=dict)
    edited_parse_composite: Segmentation | None = None

    @property
    def miou_drop(self) -> float | None:
        """How much parser mIoU falls from reconstructions to edited masks (EBST claims to shrink it)."""
        if self.edited_parse is None or self.recon_parse.mean_iou is None or self.edited_parse.mean_iou is None:
            return None
        return self.recon_parse.mean_iou - self.edited_parse.mean_iou


@dataclass
class ParserRecord:
    steps: int
    checkpoint: str
    real_test: Segmentation  # the parser on real test images: the ceiling of mask fidelity
    training_seconds: float | None = None  # when this evaluation trained it


@dataclass
class Reference:
    """Numbers that make the others readable."""
    swd_real_val_vs_test: dict[str, float]  # SWD between two real sets: its floor
    swd_real_n: int
    parser_real_edits: Segmentation | None = None  # parser on the ground-truth edited images
    no_edit: PairFidelity | None = None  # the unedited original vs the ground-truth edit: the floor
    no_edit_families: dict[str, PairFidelity] = field(default_factory=dict)


@dataclass
class MaskVAEEval:
    steps: int
    recon_pixel_accuracy: float | None  # held-out reconstruction (z = mu) against the input mask
    recon_mean_iou: float | None
    recon_n: int
    interp_pairs: int  # interpolation smoothness: label change between consecutive decoded steps
    interp_steps: int
    interp_change_mean: float | None
    interp_change_max: float | None
    interp_endpoint_change: float | None
    interp_max_over_even: float | None  # 1: evenly spread; k: one step carries k times its share


@dataclass
class Evaluation:
    dataset: str
    split: str
    image_size: int
    num_faces: int
    seed: int
    swd_seed: int
    swd_patches: int
    test_faces: str
    parser: ParserRecord
    reference: Reference
    fid_available: bool
    fid_note: str
    stages: dict[str, StageEval]
    edit_pairs_per_family: int = 0
    edit_families: list[str] = field(default_factory=list)
    region_dilate_px: int | None = None
    composite: dict | None = None  # {"blend", "margin", "feather", "band_width"} of the composited edits
    edits_skipped: str | None = None
    maskvae: MaskVAEEval | None = None
    maskvae_skipped: str | None = None
    strokes: dict | None = None  # user-like stroke edits (maskgan.evaluation.strokes)
    seconds: float | None = None
    trained_now: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON types (NaN and inf become None)."""
        return _clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "Evaluation":
        return _build(cls, data, "eval")


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # tensors, numpy scalars
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _build(tp, value, where: str):
    """``value`` (JSON) as an instance of the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a dict for {tp.__name__}, got {type(value).__name__} (an "
                             "evaluation written by another version of the kit: run `python -m maskgan evaluate` again)")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        missing = [f.name for f in dataclasses.fields(tp) if f.name not in value
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{where}: missing {', '.join(missing)} (an evaluation written by another version of "
                             "the kit: run `python -m maskgan evaluate` again)")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items() if k in names})
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _build(args[0], value, where)
    if origin is dict:
        _, item = typing.get_args(tp)
        return {k: _build(item, v, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_build(item, v, where) for v in value]
    return value
