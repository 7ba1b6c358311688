"""User-like edits: brush strokes of the kind the app paints, which SynthFaces' edit families never make.

The paper's claim for EBST (Sec. 3.3) is robustness to the masks *users* make: rough, partial,
misplaced parts, not the clean layouts of a dataset. SynthFaces' ground-truth edit families are
clean layouts, so they cannot test it. Here every test face gets 1-3 strokes painted with the app's
own brush (:func:`maskgan.brush.paint_stroke`): a random class, a random-walk polyline of 2-6
points, a brush radius of 1-4 px at 64 px (scaled with the image), starting half the time on the
painted class's own region (a part extended or thickened: "partial") and half the time anywhere on
the face (a part where no face has one: "misplaced"). The strokes of face ``i`` depend only on
``(seed, i)``, so every generator and every run sees the same edits.

There is no ground-truth image for such an edit, so two things are scored:

* **does the edit take?** the face parser reads the rendered face; its mIoU against the *edited*
  mask (whole image), and its accuracy on the stroke pixels alone (how many painted pixels come out
  as the painted class);
* **does the style survive?** PSNR against the *original* image away from the strokes (the strokes
  grown by :data:`~maskgan.evaluation.run.REGION_DILATE` px are left out), next to the same PSNR of the
  unedited reconstruction (the generator's own error there), so the drop is the edit's damage.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..brush import paint_stroke, stroke_mask
from ..composite import DEFAULT_BLEND, composite, default_margin, grow
from ..labels import CLASS_IDS, one_hot
from ..metrics import SegmentationMeter, grow_region, psnr

__all__ = ["STROKE_CLASSES", "user_strokes", "stroke_edits", "evaluate_strokes"]

#: The classes a user paints with, and how often (face parts far more than background or cloth).
STROKE_CLASSES: dict[str, float] = {
    "hair": 3, "skin": 2, "l_brow": 1, "r_brow": 1, "l_eye": 1, "r_eye": 1, "eye_g": 2, "nose": 1, "mouth": 2,
    "u_lip": 1, "l_lip": 1, "hat": 1, "l_ear": 0.5, "r_ear": 0.5, "neck": 0.5, "cloth": 0.5, "background": 1,
}
REGION_DILATE = 2  # as the SynthFaces edit regions (maskgan.evaluation.run.REGION_DILATE)


def user_strokes(label: np.ndarray, rng: np.random.Generator) -> list[tuple[list[tuple[float, float]], int, float]]:
    """1-3 strokes ``(points, class id, radius)`` for one face's label map (see the module docstring)."""
    h, w = label.shape
    scale = h / 64.0
    names = list(STROKE_CLASSES)
    p = np.array([STROKE_CLASSES[c] for c in names], dtype=np.float64)
    p /= p.sum()
    face = np.argwhere(label != CLASS_IDS["background"])
    if len(face) == 0:
        face = np.argwhere(np.ones_like(label, dtype=bool))
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        cls = CLASS_IDS[names[int(rng.choice(len(names), p=p))]]
        own = np.argwhere(label == cls)
        start = own if (len(own) and rng.random() < 0.5) else face  # partial (on its part) or misplaced
        y, x = start[int(rng.integers(len(start)))].astype(np.float64)
        pts = [(x, y)]
        heading = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(1, 6))):
            heading += rng.normal(0, 0.8)  # a rough, wandering line
            step = rng.uniform(2, 8) * scale
            x = float(np.clip(x + step * math.cos(heading), 0, w - 1))
            y = float(np.clip(y + step * math.sin(heading), 0, h - 1))
            pts.append((x, y))
        strokes.append((pts, cls, float(rng.integers(1, 5)) * scale))
    return strokes


def stroke_edits(labels: torch.Tensor, indices, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Edited label maps ``(N, H, W)`` and the stroke regions ``(N, H, W)`` bool, for faces ``indices``."""
    edited, regions = [], []
    for label, i in zip(labels.cpu().numpy(), indices):
        rng = np.random.default_rng([seed, int(i)])
        out, region = label.copy(), np.zeros(label.shape, dtype=bool)
        for pts, cls, radius in user_strokes(label, rng):
            out = paint_stroke(out, pts, cls, radius)
            region |= stroke_mask(label.shape, pts, radius)
        edited.append(torch.from_numpy(out))
        regions.append(torch.from_numpy(region))
    return torch.stack(edited).long(), torch.stack(regions)


@torch.no_grad()
def evaluate_strokes(generators: dict, dataset, parser, n: int = 100, seed: int = 0, batch_size: int = 32,
                     device="cpu", blend: str = DEFAULT_BLEND) -> dict:
    """Score ``{label: generator}`` on stroke-edited test faces (see the module docstring), as full
    re-renders and composited into the face (``blend``, :mod:`maskgan.composite`).

    Returns ``{"faces", "seed", "stroke_pixels_mean", "blend", "margin", "stages": {label: {"edited_mean_iou",
    "stroke_accuracy", "psnr_outside", "recon_psnr_outside", "composite_edited_mean_iou",
    "composite_stroke_accuracy", "composite_far_identical"}}}``; the last is the share of pixels farther
    than the composite's margin from every stroke that equal the input bit for bit (1.0 by design).
    """
    n = min(n, len(dataset))
    meters = {s: SegmentationMeter() for s in generators}
    comp_meters = {s: SegmentationMeter() for s in generators}
    hits = {s: 0 for s in generators}
    comp_hits = {s: 0 for s in generators}
    far_same = {s: 0 for s in generators}
    far_px = 0
    outside = {s: [] for s in generators}
    recon_outside = {s: [] for s in generators}
    stroke_px = 0
    for start in range(0, n, batch_size):
        idx = list(range(start, min(n, start + batch_size)))
        items = [dataset[i] for i in idx]
        image = torch.stack([it["image"] for it in items]).to(device)
        label = torch.stack([it["label"] for it in items]).to(device)
        edited, region = stroke_edits(label, idx, seed)
        edited, region = edited.to(device), region.to(device)
        keep = ~grow_region(region, REGION_DILATE)
        stroke_px += int(region.sum())
        margin = default_margin(int(label.shape[-1]))
        far = ~grow(region, margin)
        far_px += int(far.sum()) * 3
        for s, g in generators.items():
            style = g.style(image, one_hot(label))
            out = g.render(one_hot(edited), style).float()
            parse = parser.parse(out)
            meters[s].update(parse.cpu(), edited.cpu())
            hits[s] += int((parse == edited)[region].sum())
            outside[s].append(psnr(out, image, keep).cpu())
            recon = g.render(one_hot(label), style).float()
            recon_outside[s].append(psnr(recon, image, keep).cpu())
            comp = composite(image, out, label, edited, blend, margin=margin).image
            parse = parser.parse(comp)
            comp_meters[s].update(parse.cpu(), edited.cpu())
            comp_hits[s] += int((parse == edited)[region].sum())
            far_same[s] += int(((comp == image) & far[:, None]).sum())
    stages = {}
    for s in generators:
        seg = meters[s].compute()
        stages[s] = {"edited_mean_iou": seg["mean_iou"], "stroke_accuracy": hits[s] / max(stroke_px, 1),
                     "psnr_outside": float(torch.cat(outside[s]).nanmean()),
                     "recon_psnr_outside": float(torch.cat(recon_outside[s]).nanmean()),
                     "composite_edited_mean_iou": comp_meters[s].compute()["mean_iou"],
                     "composite_stroke_accuracy": comp_hits[s] / max(stroke_px, 1),
                     "composite_far_identical": far_same[s] / max(far_px, 1)}
    return {"faces": n, "seed": seed, "stroke_pixels_mean": stroke_px / max(n, 1), "region_dilate_px": REGION_DILATE,
            "blend": blend, "stages": stages}


def format_strokes_table(result: dict) -> str:
    """The stroke evaluation as a text table, one row per generator."""
    from ..text import format_table
    from .report import _name
    rows = []
    for s, v in result["stages"].items():
        rows.append([_name(s) + " re-render", f"{v['edited_mean_iou']:.3f}", f"{v['stroke_accuracy']:.3f}",
                     f"{v['psnr_outside']:.2f}", f"{v['recon_psnr_outside']:.2f}", "-"])
        if "composite_edited_mean_iou" in v:  # evaluations written before compositing have no such row
            rows.append([_name(s) + " composite", f"{v['composite_edited_mean_iou']:.3f}",
                         f"{v['composite_stroke_accuracy']:.3f}", "-", "-", f"{v['composite_far_identical']:.4f}"])
    head = (f"user-like stroke edits: {result['faces']} test faces, strokes seed {result['seed']}, "
            f"{result['stroke_pixels_mean']:.0f} painted px per face"
            + (f"; composite: blend {result['blend']!r}" if "blend" in result else ""))
    return head + "\n" + format_table(rows, ["generator", "parser mIoU vs edited mask", "stroke px parsed as painted",
                                             "PSNR away from strokes dB", "same, unedited recon dB",
                                             "px beyond margin kept exactly"])


@torch.no_grad()
def stroke_examples_figure(generators: dict, dataset, indices=(0, 1, 2, 3), seed: int = 0, title: str | None = None):
    """A grid: each row one test face, its stroke-edited mask, and every generator's rendering of it
    in the face's style (the strokes of :func:`stroke_edits`, so the same edits the numbers score)."""
    from ..viz import image_grid
    from .report import _name
    items = [dataset[i] for i in indices]
    image = torch.stack([it["image"] for it in items])
    label = torch.stack([it["label"] for it in items])
    edited, _ = stroke_edits(label, indices, seed)
    outs = {s: g.render(one_hot(edited), g.style(image, one_hot(label))).float() for s, g in generators.items()}
    rows = [[label[k], image[k], edited[k]] + [outs[s][k] for s in generators] for k in range(len(items))]
    return image_grid(rows, col_titles=["mask", "face", "strokes painted"] + [_name(s) for s in generators],
                      row_titles=[f"test {i}" for i in indices], cell=1.5,
                      title=title or "User-like stroke edits rendered in each face's own style")
