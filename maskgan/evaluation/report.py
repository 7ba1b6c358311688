"""Presenting an evaluation: the text table of notebook 06 and its figures.

* :func:`format_eval_table` turns :func:`~maskgan.evaluation.evaluate_run`'s dict (or a whole
  ``metrics.json``) into plain-text tables: one row per metric, one column per generator stage,
  with the training steps on top so that unequal training is visible next to the numbers; then
  edit PSNR per family, with the "no edit" floor (the unedited original against the truth).
* :func:`eval_figures` draws edit PSNR per family (inside and outside the edited region), mask
  fidelity per stage, and example edits (original, ground-truth edit, each stage's edit), and
  saves them as ``<run_dir>/figures/06_*.png``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..summary import format_table

__all__ = ["STAGE_TITLES", "format_eval_table", "eval_figures"]

#: Column titles of the generator stages.
STAGE_TITLES: dict[str, str] = {"p2p": "p2p (Pix2PixHD-m)", "dmn": "dmn (stage I)", "ebst": "ebst (EBST)",
                                "dmn_matched": "dmn_matched (stage I, EBST's updates)"}


def _eval_section(metrics: dict) -> dict:
    m = metrics.get("eval", metrics) if isinstance(metrics, dict) else None
    if not isinstance(m, dict) or "stages" not in m:
        raise ValueError("format_eval_table expects the dict returned by maskgan.evaluation.evaluate_run "
                         "(or a metrics.json with an 'eval' section): run `python -m maskgan evaluate --run-dir DIR`")
    return m


def _get(d: dict, path: str):
    for key in path.split("."):
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _cell(v, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


_ROWS = [  # (title, path inside a stage entry, format)
    ("training steps (this stage)", "training.steps", "{}"),
    ("generator updates (total)", "training.generator_updates", "{}"),
    ("recon: parser pixel acc", "recon.pixel_accuracy", "{:.3f}"),
    ("recon: parser mIoU", "recon.mean_iou", "{:.3f}"),
    ("recon: PSNR dB", "recon.psnr", "{:.2f}"),
    ("recon: SSIM", "recon.ssim", "{:.3f}"),
    ("edited masks: parser pixel acc", "edited_masks.pixel_accuracy", "{:.3f}"),
    ("edited masks: parser mIoU", "edited_masks.mean_iou", "{:.3f}"),
    ("mIoU drop, recon -> edited", "edited_masks.miou_drop_vs_recon", "{:.3f}"),
    ("edit vs truth: PSNR dB", "edit.psnr", "{:.2f}"),
    ("edit vs truth: PSNR inside region", "edit.psnr_inside", "{:.2f}"),
    ("edit vs truth: PSNR outside region", "edit.psnr_outside", "{:.2f}"),
    ("edit vs truth: SSIM", "edit.ssim", "{:.3f}"),
    ("edit vs truth: SSIM inside region", "edit.ssim_inside", "{:.3f}"),
    ("edit vs truth: SSIM outside region", "edit.ssim_outside", "{:.3f}"),
    ("SWD x1e3 (avg), recon vs real", "swd.swd_avg", "{:.1f}"),
    ("FID, recon vs real", "fid", "{:.2f}"),
]


def format_eval_table(metrics: dict) -> str:
    """Plain-text tables of an evaluation (see the module docstring)."""
    m = _eval_section(metrics)
    stages = list(m["stages"])
    header = ["metric"] + [STAGE_TITLES.get(s, s) for s in stages] + ["reference"]
    ref = m.get("reference", {})
    refs = {"recon.pixel_accuracy": _get(m, "parser.real_test.pixel_accuracy"),
            "recon.mean_iou": _get(m, "parser.real_test.mean_iou"),
            "edited_masks.pixel_accuracy": _get(ref, "parser_real_edits.pixel_accuracy"),
            "edited_masks.mean_iou": _get(ref, "parser_real_edits.mean_iou"),
            "edit.psnr": _get(ref, "no_edit.edit.psnr"),
            "edit.psnr_inside": _get(ref, "no_edit.edit.psnr_inside"),
            "edit.psnr_outside": _get(ref, "no_edit.edit.psnr_outside"), "edit.ssim": _get(ref, "no_edit.edit.ssim"),
            "edit.ssim_inside": _get(ref, "no_edit.edit.ssim_inside"),
            "edit.ssim_outside": _get(ref, "no_edit.edit.ssim_outside"),
            "swd.swd_avg": _get(ref, "swd_real_val_vs_test.swd_avg")}
    rows = []
    for title, path, fmt in _ROWS:
        values = [_get(m["stages"][s], path) for s in stages]
        if all(v is None for v in values) and path != "fid":
            continue
        rows.append([title] + [_cell(v, fmt) for v in values] + [_cell(refs.get(path), fmt)])
    lines = [f"Evaluation on {m['dataset']} ({m['split']} split, {m['image_size']} px): {m['num_faces']} faces"
             + (f", {m['edit_pairs_per_family']} edit pairs x {len(m['edit_families'])} families"
                if m.get("edit_pairs_per_family") else "") + f"; training seed {m['seed']}, SWD seed {m['swd_seed']}",
             f"Face parser: {_get(m, 'parser.steps')} steps; on real test images pixel acc "
             f"{_cell(_get(m, 'parser.real_test.pixel_accuracy'))}, mIoU {_cell(_get(m, 'parser.real_test.mean_iou'))}",
             "reference column: parser on real images (the ceiling of mask fidelity); the unedited original vs the "
             "truth ('no edit', the floor of edit fidelity); SWD between real val and real test images (its floor)",
             "", format_table(rows, header)]
    if not m["fid"]["available"]:
        lines += ["", f"FID skipped: {m['fid']['note']}"]
    if m.get("edits_skipped"):
        lines += ["", f"Edit fidelity skipped: {m['edits_skipped']}"]
    if m.get("edit_families"):
        fam_header = ["edit PSNR dB inside / outside region", "no edit"] + [STAGE_TITLES.get(s, s) for s in stages]
        fam_rows = []
        for f in m["edit_families"]:
            def pair(d):
                return f"{_cell(_get(d, 'psnr_inside'), '{:.1f}')} / {_cell(_get(d, 'psnr_outside'), '{:.1f}')}"
            fam_rows.append([f, pair(_get(ref, f"no_edit.edit_families.{f}"))]
                            + [pair(_get(m["stages"][s], f"edit_families.{f}")) for s in stages])
        lines += ["", format_table(fam_rows, fam_header)]
    vae = m.get("maskvae", {})
    if "recon_mean_iou" in vae:
        lines += ["", f"MaskVAE ({vae['steps']} steps): held-out reconstruction pixel acc "
                      f"{_cell(vae['recon_pixel_accuracy'])}, mIoU {_cell(vae['recon_mean_iou'])} "
                      f"({vae['recon_n']} masks); "
                      f"interpolation over {vae['interp_steps']} steps ({vae['interp_pairs']} pairs): label change per "
                      f"step mean {_cell(vae['interp_change_mean'], '{:.4f}')}, max "
                      f"{_cell(vae['interp_change_max'], '{:.4f}')}, max / even share "
                      f"{_cell(vae['interp_max_over_even'], '{:.2f}')}"]
    elif vae.get("skipped"):
        lines += ["", f"MaskVAE skipped: {vae['skipped']}"]
    return "\n".join(lines)


# --- figures ----------------------------------------------------------------------------------

def _edit_psnr_figure(m: dict):
    import matplotlib.pyplot as plt
    import numpy as np
    families, stages = m["edit_families"], list(m["stages"])
    ref = _get(m, "reference.no_edit.edit_families") or {}
    series = [("no edit", [_get(ref, f"{f}") for f in families])] + \
             [(STAGE_TITLES.get(s, s), [_get(m["stages"][s], f"edit_families.{f}") for f in families]) for s in stages]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(families) + 2), 6), sharex=True)
    x = np.arange(len(families))
    width = 0.8 / len(series)
    panels = ((axes[0], "psnr_inside", "inside the edited region (grey: the unedited original)"),
              (axes[1], "psnr_outside", "outside the edited region (the unedited original is identical there)"))
    for ax, key, title in panels:
        for k, (name, entries) in enumerate(series):
            if name == "no edit" and key == "psnr_outside":
                continue  # 100 dB (the cap): it would only squash the other bars
            vals = [np.nan if e is None or e.get(key) is None else e[key] for e in entries]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=name,
                   color="0.75" if name == "no edit" else None)
        ax.set_ylabel("PSNR vs ground truth (dB)")
        ax.set_title(f"Edit fidelity per family, {title}", fontsize=10)
    axes[0].legend(fontsize=8, ncol=len(series))
    axes[1].set_xticks(x, families, rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    return fig


def _mask_fidelity_figure(m: dict):
    import matplotlib.pyplot as plt
    import numpy as np
    stages = list(m["stages"])
    recon = [_get(m["stages"][s], "recon.mean_iou") for s in stages]
    edited = [_get(m["stages"][s], "edited_masks.mean_iou") for s in stages]
    fig, ax = plt.subplots(figsize=(1.6 * len(stages) + 2.5, 3.2))
    x = np.arange(len(stages))
    ax.bar(x - 0.2, [np.nan if v is None else v for v in recon], 0.4, label="reconstruction (M^t)")
    if any(v is not None for v in edited):
        ax.bar(x + 0.2, [np.nan if v is None else v for v in edited], 0.4, label="edited masks")
    real = _get(m, "parser.real_test.mean_iou")
    if real is not None:
        ax.axhline(real, color="k", ls="--", lw=1, label="parser on real images")
    ax.set_xticks(x, [STAGE_TITLES.get(s, s) for s in stages], fontsize=8)
    ax.set_ylabel("parser mIoU vs the input mask")
    ax.set_ylim(0, 1)
    ax.set_title("Mask fidelity (semantic-level evaluation, Sec. 4)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


@torch.no_grad()
def _examples_figure(run_dir: Path, stages: Sequence[str], families: Sequence[str], index: int, size: int, device):
    from ..data.synthfaces import edit_pair
    from ..labels import one_hot
    from ..viz import image_grid
    from .run import load_generator
    gens = {s: load_generator(run_dir, s, device)[0] for s in stages}
    rows = []
    for family in families:
        p = edit_pair(family, "test", index, size)
        image = torch.from_numpy(p["image"]).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        label = torch.from_numpy(p["labels"].astype("int64"))[None].to(device)
        edited = torch.from_numpy(p["edited_labels"].astype("int64"))[None].to(device)
        row = [p["labels"].astype("int64"), p["image"], p["edited_labels"].astype("int64"), p["edited_image"]]
        for s, g in gens.items():
            row.append(g.render(one_hot(edited), g.style(image, one_hot(label)))[0].cpu())
        rows.append(row)
    titles = ["mask M^t", "original I^t", "edited mask", "ground-truth edit"] + \
             [f"edit: {STAGE_TITLES.get(s, s)}" for s in stages]
    return image_grid(rows, col_titles=titles, row_titles=list(families), cell=1.6,
                      title=f"SynthFaces test face {index}: edits rendered in the original's style")


def eval_figures(run_dir: Path | str, metrics: dict | None = None, *,
                 families: Sequence[str] = ("smile", "close_eyes", "add_glasses", "hairstyle", "add_hat", "move_scale"),
                 index: int = 0, device: str = "cpu", save: bool = True) -> dict:
    """The figures of notebook 06, as ``{name: matplotlib Figure}``; saved to ``<run_dir>/figures/<name>.png``.

    ``metrics``: :func:`evaluate_run`'s result (default: the ``eval`` section of ``metrics.json``).
    ``06_edit_psnr`` and ``06_edit_examples`` need SynthFaces (ground-truth edits); ``index`` picks
    the test face of the examples.
    """
    from ..runs import figure_path, read_metrics
    from ..viz import save_figure
    run_dir = Path(run_dir)
    m = _eval_section(metrics if metrics is not None else read_metrics(run_dir))
    figs = {"06_mask_fidelity": _mask_fidelity_figure(m)}
    if m.get("edit_families"):
        figs["06_edit_psnr"] = _edit_psnr_figure(m)
        figs["06_edit_examples"] = _examples_figure(run_dir, list(m["stages"]), families, index, m["image_size"],
                                                    device)
    if save:
        for name, fig in figs.items():
            save_figure(fig, figure_path(run_dir, name))
    return figs
