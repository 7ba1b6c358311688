"""Which blend should an edit use? Every compositing method against doing nothing, on true edits.

``python -m maskgan compare-blends`` (:func:`compare_blends`) renders SynthFaces' ground-truth edit
pairs with a run's generators and scores, against the true edited image, each way of turning the
rendering into an edit (:mod:`maskgan.composite`):

* ``no edit``: the input returned unchanged, the baseline every edit must beat;
* ``rerender``: the paper's edit, the DMN's output everywhere;
* ``hard`` / ``feather`` / ``laplacian`` / ``poisson``: the kit's composites, at the default margin
  (and ``margins=`` for a sweep of the default blend);
* ``opencv``: OpenCV's seamless cloning (``cv2.seamlessClone``, NORMAL_CLONE) on the same grown
  region, when ``opencv-python-headless`` is installed: the well-kept library a user would reach for.

For each: PSNR of the whole image, inside / outside the truth's edited region, in the seam band
around the composite's edge, the share of pairs beating no edit, the families whose mean beats no
edit, the share of pixels farther than the margin from every changed label that are kept bit for
bit, the milliseconds per face, and a paired t-test against the default blend over the pairs.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from ..composite import (BLENDS, DEFAULT_BLEND, RERENDER, changed_pixels, composite, default_feather, default_margin,
                         grow, seam_band)
from ..labels import one_hot
from ..metrics import psnr
from ..stats import paired_t_test
from ..text import format_table

__all__ = ["compare_blends", "format_blends_table", "opencv_available", "blend_examples_figure", "g_render"]

NO_EDIT = "no edit"
OPENCV = "opencv"


def opencv_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _opencv_clone(render: torch.Tensor, image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``cv2.seamlessClone`` (NORMAL_CLONE) of ``render`` into ``image`` over ``region``, per image."""
    import cv2

    def u8(x):
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()

    out = []
    for r, i, m in zip(render, image, region):
        mask = m.cpu().numpy().astype(np.uint8) * 255
        if not mask.any():
            out.append(i)
            continue
        ys, xs = np.nonzero(mask)
        center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        cloned = cv2.seamlessClone(u8(r), u8(i), mask, center, cv2.NORMAL_CLONE)
        out.append(torch.from_numpy(cloned).permute(2, 0, 1).float().to(i.device) / 127.5 - 1)
    return torch.stack(out)


def _methods(margins, opencv: bool) -> list[tuple[str, str, int | None]]:
    """``(name, blend, margin)`` of every row."""
    rows = [(NO_EDIT, NO_EDIT, None), (RERENDER, RERENDER, None)]
    rows += [(b, b, None) for b in BLENDS]
    for m in margins or ():
        rows.append((f"{DEFAULT_BLEND} margin {m}", DEFAULT_BLEND, int(m)))
    if opencv:
        rows.append((OPENCV, OPENCV, None))
    return rows


@torch.no_grad()
def compare_blends(generators: dict, size: int, n_edits: int = 40, margins=(), opencv: bool | None = None,
                   device="cpu", progress: bool = False) -> dict:
    """Score every blend (see the module docstring) for ``{label: DMN}`` generators on ``n_edits``
    SynthFaces test pairs per edit family at ``size`` px. Returns ``{"size", "pairs", "margin",
    "feather", "default", "families", "stages": {label: {method: {...}}}}`` (see :func:`format_blends_table`)."""
    from ..data.synthfaces import EDIT_FAMILIES
    from .run import BAND_WIDTH, REGION_DILATE, _edit_batch
    opencv = opencv_available() if opencv is None else opencv
    margin, feather = default_margin(size), default_feather(size)
    methods = _methods(margins, opencv)
    result = {"size": size, "pairs": n_edits * len(EDIT_FAMILIES), "pairs_per_family": n_edits, "margin": margin,
              "feather": feather, "band_width": BAND_WIDTH, "region_dilate_px": REGION_DILATE, "default": DEFAULT_BLEND,
              "families": list(EDIT_FAMILIES), "stages": {}}
    for stage, g in generators.items():
        per = {name: {"psnr": [], "inside": [], "outside": [], "band": [], "family": [], "kept": 0, "far": 0,
                      "seconds": 0.0} for name, _, _ in methods}
        for family in EDIT_FAMILIES:
            if progress:
                print(f"  {stage}: {family}", flush=True)
            b = _edit_batch(family, range(n_edits), size, device)
            render = g_render(g, b["image"], b["label"], b["edited_label"])
            changed = changed_pixels(b["label"], b["edited_label"])
            for name, blend, m in methods:
                band = b["band"] if m is None else seam_band(changed, m, BAND_WIDTH)
                t0 = time.perf_counter()
                if blend == NO_EDIT:
                    out = b["image"]
                elif blend == OPENCV:
                    out = _opencv_clone(render, b["image"], grow(changed, margin + 1))
                else:
                    out = composite(b["image"], render, b["label"], b["edited_label"], blend, margin=m).image
                rec = per[name]
                rec["seconds"] += time.perf_counter() - t0
                truth = b["edited_image"]
                rec["psnr"] += psnr(out, truth).tolist()
                rec["inside"] += psnr(out, truth, b["region"]).tolist()
                rec["outside"] += psnr(out, truth, ~b["region"]).tolist()
                rec["band"] += psnr(out, truth, band).tolist()
                rec["family"] += [family] * n_edits
                far = ~grow(changed, margin if m is None else m)
                rec["kept"] += int(((out == b["image"]) & far[:, None]).sum())
                rec["far"] += int(far.sum()) * 3
        result["stages"][stage] = _summarise(per, EDIT_FAMILIES)
    return result


def _nanmean(xs) -> float:
    a = np.asarray(xs, dtype=np.float64)
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def _summarise(per: dict, families) -> dict:
    base = np.asarray(per[NO_EDIT]["psnr"])
    fam = np.asarray(per[NO_EDIT]["family"])
    ref = per.get(DEFAULT_BLEND)
    out = {}
    for name, rec in per.items():
        p = np.asarray(rec["psnr"])
        entry = {"psnr": float(p.mean()), "psnr_inside": _nanmean(rec["inside"]), "psnr_outside": _nanmean(rec["outside"]),
                 "psnr_band": _nanmean(rec["band"]), "ms_per_face": 1000 * rec["seconds"] / len(p),
                 "kept_beyond_margin": rec["kept"] / max(rec["far"], 1)}
        if name != NO_EDIT:
            entry["beats_no_edit"] = float((p > base).mean())
            entry["families"] = {f: {"psnr": float(p[fam == f].mean()), "no_edit": float(base[fam == f].mean()),
                                     "beats_no_edit": float((p[fam == f] > base[fam == f]).mean())} for f in families}
            entry["families_beaten"] = [f for f, v in entry["families"].items() if v["psnr"] > v["no_edit"]]
            entry["families_lost"] = [f for f, v in entry["families"].items() if v["psnr"] <= v["no_edit"]]
        if ref is not None and name != DEFAULT_BLEND:
            test = paired_t_test(rec["psnr"], ref["psnr"])
            entry["vs_default"] = {"mean": test["mean"], "sd": test["sd"], "t": test["t"], "p": test["p"]}
        out[name] = entry
    return out


def format_blends_table(result: dict) -> str:
    """The comparison as text: one table per generator, one row per method."""
    lines = [f"Edits of SynthFaces test faces at {result['size']} px: {result['pairs']} ground-truth pairs "
             f"({result['pairs_per_family']} per family x {len(result['families'])} families), scored against the "
             f"true edited image. Composites: margin {result['margin']} px, feather {result['feather']} px; seam band "
             f"{result['band_width']} px either side of the composite's edge; region: the truth's edited region grown "
             f"by {result['region_dilate_px']} px. 'vs default': mean whole-image PSNR difference from "
             f"{result['default']!r} over the pairs, with a paired t-test."]
    for stage, rows in result["stages"].items():
        table = []
        for name, r in rows.items():
            vs = r.get("vs_default")
            table.append([
                name + (" (default)" if name == result["default"] else ""), f"{r['psnr']:.2f}",
                "-" if "beats_no_edit" not in r else f"{100 * r['beats_no_edit']:.1f}%",
                "-" if "families_beaten" not in r else f"{len(r['families_beaten'])}/{len(result['families'])}",
                f"{r['psnr_inside']:.2f}", f"{r['psnr_outside']:.2f}", f"{r['psnr_band']:.2f}",
                f"{r['kept_beyond_margin']:.4f}", f"{r['ms_per_face']:.2f}",
                "-" if vs is None else f"{vs['mean']:+.2f} dB, p={vs['p']:.2g}"])
        lines += ["", f"generator: {stage}", format_table(table, [
            "method", "PSNR dB", "pairs beating no edit", "families beating no edit", "inside", "outside", "seam band",
            "px beyond margin kept", "ms / face", "vs default"])]
        default = rows.get(result["default"])
        if default is not None and default.get("families_lost"):
            lost = ", ".join(f"{f} ({default['families'][f]['psnr']:.2f} vs {default['families'][f]['no_edit']:.2f} dB)"
                             for f in default["families_lost"])
            lines.append(f"families where {result['default']!r} does not beat no edit: {lost}")
    return "\n".join(lines)


@torch.no_grad()
def blend_examples_figure(generator, size: int, families=("smile", "close_eyes", "add_glasses", "hairstyle"),
                          index: int = 0, blend: str = DEFAULT_BLEND, title: str | None = None):
    """A grid, one SynthFaces test edit per row: the original, the true edit, the paper's full
    re-render, the composite (``blend``), and the error of each against the truth (brighter: worse;
    the same scale in both error columns)."""
    from ..data.synthfaces import edit_pair
    from ..viz import image_grid
    rows = []
    for family in families:
        p = edit_pair(family, "test", index, size)
        image, label, edited = p["image"][None], p["label"][None], p["edited_label"][None]
        render = g_render(generator, image, label, edited)
        comp = composite(image, render, label, edited, blend).image
        err = [((x - p["edited_image"][None]).abs().mean(1, keepdim=True) * 2).clamp(0, 1).expand(-1, 3, -1, -1)
               * 2 - 1 for x in (render, comp)]
        rows.append([p["image"], p["edited_image"], render[0], comp[0], err[0][0], err[1][0]])
    titles = ["original I^t", "true edit", "paper: re-render", f"composite ({blend})", "error, re-render",
              "error, composite"]
    return image_grid(rows, col_titles=titles, row_titles=list(families), cell=1.5,
                      title=title or f"SynthFaces test face {index}: the whole face re-rendered, or composited "
                                     "into the original")


def g_render(generator, image: torch.Tensor, label: torch.Tensor, edited: torch.Tensor) -> torch.Tensor:
    """``edited`` rendered by a DMN in the style of ``(image, label)``: the paper's edit."""
    return generator.render(one_hot(edited), generator.style(image, one_hot(label))).float()
