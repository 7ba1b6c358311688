"""Learning curves: every kept checkpoint of a stage, measured as the evaluation measures a stage.

Has a model stopped learning, or was it stopped too early? Train with checkpoints kept along the
way (``--set cadence.checkpoint_every=1000 --set cadence.keep_checkpoints=100``), then

    python -m maskgan curves --run-dir runs/curve --stage dmn      # or --stage vae

measures each checkpoint on the same test faces and edits, with one face parser, and writes
``<run>/curves/<stage>.json`` and ``<run>/figures/curve_<stage>.png``:

* generator stages: reconstruction PSNR, edit PSNR against the ground truth (SynthFaces), parser
  mIoU on reconstructions and on edited masks (the parser's own mIoU on real images is the
  ceiling, drawn as a line), and SWD against real test images, against generator updates;
* the MaskVAE: held-out reconstruction mIoU and pixel accuracy against steps.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..device import resolve_device
from ..errors import StageMissing
from ..io import atomic_write_json
from ..run import Run
from ..stages import get_stage

__all__ = ["learning_curve", "curve_figure"]


def _points(run: Run, stage: str, every: int):
    ckpts = sorted(run.checkpoints(stage), key=lambda c: c.step)
    if not ckpts:
        raise StageMissing(f"{run.stage_dir(stage)} has no checkpoints to draw a curve from; train it with "
                           f"`--set cadence.keep_checkpoints=100` so the checkpoints along the way are kept")
    chosen = [c for i, c in enumerate(ckpts) if i % every == 0 or c is ckpts[-1]]
    for c in chosen:
        c.verify()
    return chosen


def learning_curve(run_dir: Path | str | Run, stage: str, *, cfg: Config | None = None, n: int | None = None,
                   n_edits: int | None = None, every: int = 1, device=None, progress: bool = True) -> dict:
    """Measure every ``every``-th kept checkpoint of ``stage`` (and the last); returns the curve and
    writes it to ``<run>/curves/<stage>.json`` and ``<run>/figures/curve_<stage>.png``."""
    from ..nn import build_net
    from .run import ensure_parser, evaluate_maskvae, evaluation_config, measure
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    st = get_stage(stage)
    points = _points(run, st.name, every)
    base = points[-1].config()
    cfg = cfg or (evaluation_config(run) if st.generator else base)
    device = resolve_device(device or "cpu")
    rows = []
    if st.generator is None:
        if st.name != "vae":
            raise StageMissing(f"learning curves are drawn for generator stages and the MaskVAE, not {st.name!r}")
        from ..data import build_dataset
        test = build_dataset(base.data, "test")
        for c in points:
            vae = c.load("maskvae", build_net("maskvae", c.config())).to(device).eval()
            scores = evaluate_maskvae(vae, test, n=n or 200, device=device)
            rows.append({"step": c.step, "recon_mean_iou": scores["mean_iou"],
                         "recon_pixel_accuracy": scores["pixel_accuracy"]})
            if progress:
                print(f"{st.name} step {c.step}: held-out mIoU {scores['mean_iou']:.3f}")
        curve = {"stage": st.name, "points": rows, "test_masks": min(n or 200, len(test))}
    else:
        torch.manual_seed(cfg.seed)
        parser, parser_info = ensure_parser(run, cfg, device, True, progress)
        pre = run.step(st.starts_from) if st.starts_from else 0
        gens = {}
        for c in points:
            gcfg = c.config()
            net = c.load(st.generator, build_net(st.generator, gcfg)).to(device).eval()
            gens[f"{st.name}@{c.step}"] = (net, gcfg, {"steps": c.step, "generator_updates":
                                                       pre + st.updates_per_step * c.step})
        if progress:
            print(f"measuring {len(gens)} checkpoints of {st.name} (steps {points[0].step}..{points[-1].step})")
        with torch.no_grad():
            result = measure(run, gens, cfg, device, parser, parser_info, n, n_edits, progress=progress, maskvae=False)
        for label, e in result.stages.items():
            rows.append({"step": e.training["steps"], "generator_updates": e.training["generator_updates"],
                         "recon_psnr": e.recon_psnr, "recon_mean_iou": e.recon_parse.mean_iou,
                         "edit_psnr": e.edit.psnr if e.edit else None,
                         "edit_psnr_inside": e.edit.psnr_inside if e.edit else None,
                         "edit_psnr_outside": e.edit.psnr_outside if e.edit else None,
                         "edited_mean_iou": e.edited_parse.mean_iou if e.edited_parse else None,
                         "swd": e.swd.get("swd_avg")})
        curve = {"stage": st.name, "points": rows, "num_faces": result.num_faces,
                 "edit_pairs_per_family": result.edit_pairs_per_family,
                 "parser": {"steps": result.parser.steps, "real_mean_iou": result.parser.real_test.mean_iou,
                            "real_pixel_accuracy": result.parser.real_test.pixel_accuracy},
                 "swd_real_floor": result.reference.swd_real_val_vs_test.get("swd_avg"),
                 "no_edit_psnr": result.reference.no_edit.psnr if result.reference.no_edit else None}
    atomic_write_json(run.path / "curves" / f"{st.name}.json", curve)
    fig = curve_figure(curve)
    from ..viz import save_figure
    save_figure(fig, run.figure_path(f"curve_{st.name}"))
    return curve


def curve_figure(curve: dict, title: str | None = None):
    """The curve of :func:`learning_curve` as a figure (one panel per metric)."""
    import matplotlib.pyplot as plt
    pts = curve["points"]
    if curve["stage"] == "vae":
        fig, ax = plt.subplots(figsize=(5, 3.2))
        x = [p["step"] for p in pts]
        ax.plot(x, [p["recon_mean_iou"] for p in pts], "o-", label="mIoU")
        ax.plot(x, [p["recon_pixel_accuracy"] for p in pts], "s-", label="pixel accuracy")
        ax.set_xlabel("MaskVAE steps")
        ax.set_ylim(0, 1)
        ax.set_title(title or f"MaskVAE held-out reconstruction ({curve['test_masks']} test masks)", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return fig
    x = [p["generator_updates"] for p in pts]
    panels = [("PSNR (dB)", [("reconstruction", "recon_psnr"), ("edit vs truth", "edit_psnr")]),
              ("parser mIoU", [("reconstructions", "recon_mean_iou"), ("edited masks", "edited_mean_iou")]),
              ("SWD x1e3 vs real", [("reconstructions", "swd")])]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, (ylabel, series) in zip(axes, panels):
        for name, key in series:
            ys = [p.get(key) for p in pts]
            if any(v is not None for v in ys):
                ax.plot(x, [float("nan") if v is None else v for v in ys], "o-", ms=3, label=name)
        ax.set_xlabel("generator updates")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    real = curve.get("parser", {}).get("real_mean_iou")
    if real is not None:
        axes[1].axhline(real, color="k", ls="--", lw=1, label="parser on real images")
    if curve.get("swd_real_floor") is not None:
        axes[2].axhline(curve["swd_real_floor"], color="k", ls="--", lw=1, label="real vs real")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title or f"Learning curve of {curve['stage']} ({curve.get('num_faces')} test faces, "
                          f"{curve.get('edit_pairs_per_family')} edits per family)", fontsize=10)
    fig.tight_layout()
    return fig
