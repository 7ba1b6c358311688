"""Presenting an evaluation: the text table of notebook 06 and its figures.

* :func:`format_eval_table` turns an :class:`~maskgan.evaluation.records.Evaluation` (or the
  ``eval`` section of ``metrics.json``) into plain-text tables: one row per metric, one column per
  generator stage, with the training steps on top so that unequal training is visible next to
  the numbers; then edit PSNR per family, with the "no edit" floor (the unedited original against
  the truth).
* :func:`eval_figures` draws edit PSNR per family (inside and outside the edited region), mask
  fidelity per stage, and example edits (original, ground-truth edit, each stage's edit), and
  saves them as ``<run_dir>/figures/06_*.png``.
* :func:`read_ablation` reads the ablation of *this* run in words: which column is best, EBST
  against stage I and against the equal-updates control in dB, and the one-seed caveat.
"""
from __future__ import annotations

import textwrap
from typing import Callable, Sequence

import torch

from ..stages import generator_stages, get_stage
from ..text import format_table
from .records import Evaluation, StageEval

__all__ = ["stage_title", "as_evaluation", "format_eval_table", "eval_figures", "read_ablation", "ABLATION_LETTERS"]


def stage_title(stage: str) -> str:
    """Column title of a stage, e.g. ``"ebst (EBST)"``."""
    return f"{stage} ({get_stage(stage).title})"


def as_evaluation(metrics) -> Evaluation:
    """An :class:`Evaluation` from itself, from ``metrics.json``'s dict, or from its ``eval`` section."""
    if isinstance(metrics, Evaluation):
        return metrics
    m = metrics.get("eval", metrics) if isinstance(metrics, dict) else None
    if not isinstance(m, dict) or "stages" not in m:
        raise ValueError("format_eval_table expects the result of maskgan.evaluation.evaluate_run "
                         "(or a metrics.json with an 'eval' section): run `python -m maskgan evaluate --run-dir DIR`")
    return Evaluation.from_dict(m)


def _cell(v, fmt: str = "{:.3f}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return fmt.format(v)
    return str(v)


def _maybe(obj, attr: str):
    return None if obj is None else getattr(obj, attr)


def _edit_rows(name: str, attr: str) -> list:
    """The rows of one way of editing (``name``: "re-render" or "composite"; ``attr``: its StageEval
    field), each next to the unchanged input's value where it has one."""
    def row(what: str, key: str, fmt: str, reference: bool = True):
        return (f"edit, {name}: {what}", lambda s: _maybe(getattr(s, attr), key),
                (lambda e: _maybe(e.reference.no_edit, key)) if reference else (lambda e: None), fmt)
    return [row("PSNR dB", "psnr", "{:.2f}"), row("share beating no edit", "beats_no_edit", "{:.3f}", False),
            row("PSNR inside region", "psnr_inside", "{:.2f}"), row("PSNR outside region", "psnr_outside", "{:.2f}"),
            row("PSNR seam band", "psnr_band", "{:.2f}"), row("SSIM", "ssim", "{:.3f}")]


#: (title, value of a stage, value of the reference column, format)
_ROWS: list[tuple[str, Callable[[StageEval], object], Callable[[Evaluation], object], str]] = [
    ("training steps (this stage)", lambda s: s.training["steps"], lambda e: None, "{}"),
    ("generator updates (total)", lambda s: s.training["generator_updates"], lambda e: None, "{}"),
    ("recon: parser pixel acc", lambda s: s.recon_parse.pixel_accuracy, lambda e: e.parser.real_test.pixel_accuracy,
     "{:.3f}"),
    ("recon: parser mIoU", lambda s: s.recon_parse.mean_iou, lambda e: e.parser.real_test.mean_iou, "{:.3f}"),
    ("recon: PSNR dB", lambda s: s.recon_psnr, lambda e: None, "{:.2f}"),
    ("recon: SSIM", lambda s: s.recon_ssim, lambda e: None, "{:.3f}"),
    ("edited masks: parser pixel acc", lambda s: _maybe(s.edited_parse, "pixel_accuracy"),
     lambda e: _maybe(e.reference.parser_real_edits, "pixel_accuracy"), "{:.3f}"),
    ("edited masks: parser mIoU", lambda s: _maybe(s.edited_parse, "mean_iou"),
     lambda e: _maybe(e.reference.parser_real_edits, "mean_iou"), "{:.3f}"),
    ("mIoU drop, recon -> edited", lambda s: s.miou_drop, lambda e: None, "{:.3f}"),
    *_edit_rows("re-render", "edit"),
    *_edit_rows("composite", "edit_composite"),
    ("edited masks, composite: parser mIoU", lambda s: _maybe(s.edited_parse_composite, "mean_iou"),
     lambda e: _maybe(e.reference.parser_real_edits, "mean_iou"), "{:.3f}"),
    ("SWD x1e3 (avg), recon vs real", lambda s: s.swd.get("swd_avg"),
     lambda e: e.reference.swd_real_val_vs_test.get("swd_avg"), "{:.1f}"),
    ("FID, recon vs real", lambda s: s.fid, lambda e: None, "{:.2f}"),
]


def _family_tables(e: Evaluation, stages: list[str]) -> list[str]:
    """Per edit family: whole-image PSNR of no edit, each stage's re-render and composite (with the
    share of pairs beating no edit); then inside / outside the region and the seam band."""
    def whole(d):
        if d is None or d.psnr is None:
            return "-"
        beats = "" if d.beats_no_edit is None else f" ({100 * d.beats_no_edit:.0f}%)"
        return f"{d.psnr:.1f}{beats}"

    def sides(d):
        return "/".join(_cell(_maybe(d, k), "{:.1f}") for k in ("psnr_inside", "psnr_outside", "psnr_band"))

    composited = any(e.stages[s].edit_composite is not None for s in stages)
    head = ["edit PSNR dB (% of pairs beating no edit)", "no edit"]
    for s in stages:
        head += [f"{s} re-render"] + ([f"{s} composite"] if composited else [])
    rows, rows_io = [], []
    for f in e.edit_families:
        ref = e.reference.no_edit_families.get(f)
        row, row_io = [f, whole(ref)], [f, sides(ref)]
        for s in stages:
            st = e.stages[s]
            row.append(whole(st.edit_families.get(f)))
            row_io.append(sides(st.edit_families.get(f)))
            if composited:
                row.append(whole(st.edit_composite_families.get(f)))
                row_io.append(sides(st.edit_composite_families.get(f)))
        rows.append(row)
        rows_io.append(row_io)
    head_io = ["inside / outside region / seam band, dB"] + head[1:]
    how = ""
    if e.composite:
        c = e.composite
        how = (f"composite: blend {c['blend']!r}, margin {c['margin']} px, feather {c['feather']} px; seam band: "
               f"{c['band_width']} px either side of the composite's edge")
    return [format_table(rows, head), "", format_table(rows_io, head_io)] + ([how] if how else [])


def format_eval_table(metrics) -> str:
    """Plain-text tables of an evaluation (see the module docstring)."""
    e = as_evaluation(metrics)
    stages = list(e.stages)
    header = ["metric"] + [stage_title(s) for s in stages] + ["reference"]
    rows = []
    for title, value, ref, fmt in _ROWS:
        values = [value(e.stages[s]) for s in stages]
        if all(v is None for v in values) and not title.startswith("FID"):
            continue
        rows.append([title] + [_cell(v, fmt) for v in values] + [_cell(ref(e), fmt)])
    lines = [f"Evaluation on {e.dataset} ({e.split} split, {e.image_size} px): {e.num_faces} faces"
             + (f", {e.edit_pairs_per_family} edit pairs x {len(e.edit_families)} families"
                if e.edit_pairs_per_family else "") + f"; training seed {e.seed}, SWD seed {e.swd_seed}",
             f"Face parser: {e.parser.steps} steps; on real test images pixel acc "
             f"{_cell(e.parser.real_test.pixel_accuracy)}, mIoU {_cell(e.parser.real_test.mean_iou)}",
             "reference column: parser on real images (the ceiling of mask fidelity); the unedited original vs the "
             "truth ('no edit': the score of doing nothing, which an edit must beat); SWD between real val and real "
             "test images (its floor)",
             "", format_table(rows, header)]
    if not e.fid_available:
        lines += ["", f"FID skipped: {e.fid_note}"]
    if e.edits_skipped:
        lines += ["", f"Edit fidelity skipped: {e.edits_skipped}"]
    if e.edit_families:
        lines += ["", *_family_tables(e, stages)]
    if e.strokes:
        from .strokes import format_strokes_table
        lines += ["", format_strokes_table(e.strokes)]
    v = e.maskvae
    if v is not None:
        lines += ["", f"MaskVAE ({v.steps} steps): held-out reconstruction pixel acc {_cell(v.recon_pixel_accuracy)}, "
                      f"mIoU {_cell(v.recon_mean_iou)} ({v.recon_n} masks); interpolation over {v.interp_steps} steps "
                      f"({v.interp_pairs} pairs): label change per step mean {_cell(v.interp_change_mean, '{:.4f}')}, "
                      f"max {_cell(v.interp_change_max, '{:.4f}')}, max / even share "
                      f"{_cell(v.interp_max_over_even, '{:.2f}')}"]
    elif e.maskvae_skipped:
        lines += ["", f"MaskVAE skipped: {e.maskvae_skipped}"]
    return "\n".join(lines)


# --- figures ----------------------------------------------------------------------------------

def _ordered(e: Evaluation) -> list[str]:
    """The evaluated stages in the ablation's order ((a), (b), (c), then the controls)."""
    return [s for s in generator_stages() if s in e.stages] + [s for s in e.stages if s not in generator_stages()]


def _edit_psnr_figure(e: Evaluation):
    import matplotlib.pyplot as plt
    import numpy as np
    families, stages = e.edit_families, _ordered(e)
    series = [("no edit", [e.reference.no_edit_families.get(f) for f in families])] + \
             [(_name(s), [e.stages[s].edit_families.get(f) for f in families]) for s in stages]
    fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(families) + 2), 6), sharex=True)
    x = np.arange(len(families))
    width = 0.8 / len(series)
    panels = ((axes[0], "psnr_inside", "inside the edited region (grey: the unedited original)"),
              (axes[1], "psnr_outside", "outside the edited region (the unedited original is identical there)"))
    for ax, key, title in panels:
        for k, (name, entries) in enumerate(series):
            if name == "no edit" and key == "psnr_outside":
                continue  # 100 dB (the cap): it would only squash the other bars
            vals = [np.nan if _maybe(d, key) is None else getattr(d, key) for d in entries]
            ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=name,
                   color="0.75" if name == "no edit" else None)
        ax.set_ylabel("PSNR vs ground truth (dB)")
        ax.set_title(f"Edit fidelity per family, {title}", fontsize=10)
    axes[0].legend(fontsize=8, ncol=min(len(series), 3))
    axes[1].set_xticks(x, families, rotation=30, ha="right", fontsize=8)
    fig.tight_layout()
    return fig


def _mask_fidelity_figure(e: Evaluation):
    import matplotlib.pyplot as plt
    import numpy as np
    stages = _ordered(e)
    recon = [e.stages[s].recon_parse.mean_iou for s in stages]
    edited = [_maybe(e.stages[s].edited_parse, "mean_iou") for s in stages]
    fig, ax = plt.subplots(figsize=(1.6 * len(stages) + 2.5, 3.2))
    x = np.arange(len(stages))
    ax.bar(x - 0.2, [np.nan if v is None else v for v in recon], 0.4, label="reconstruction (M^t)")
    if any(v is not None for v in edited):
        ax.bar(x + 0.2, [np.nan if v is None else v for v in edited], 0.4, label="edited masks")
    real = e.parser.real_test.mean_iou
    if real is not None:
        ax.axhline(real, color="k", ls="--", lw=1, label="parser on real images")
    ax.set_xticks(x, ["\n".join(textwrap.wrap(_name(s), 18)) for s in stages], fontsize=8)
    ax.set_ylabel("parser mIoU vs the input mask")
    ax.set_ylim(0, 1)
    ax.set_title("Mask fidelity (semantic-level evaluation, Sec. 4)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


@torch.no_grad()
def _examples_figure(run, stages: Sequence[str], families: Sequence[str], index: int, size: int, device):
    from ..data.synthfaces import edit_pair
    from ..labels import one_hot
    from ..viz import image_grid
    gens = {s: run.generator(s, device)[0] for s in stages}
    rows = []
    for family in families:
        p = edit_pair(family, "test", index, size)
        image, label, edited = p["image"][None].to(device), p["label"][None].to(device), p["edited_label"][None].to(device)
        row = [p["label"], p["image"], p["edited_label"], p["edited_image"]]
        for g in gens.values():
            row.append(g.render(one_hot(edited), g.style(image, one_hot(label)))[0].cpu())
        rows.append(row)
    titles = ["mask M^t", "original I^t", "edited mask", "ground-truth edit"] + [
        "\n".join(textwrap.wrap(_name(s), 18)) for s in stages]
    return image_grid(rows, col_titles=titles, row_titles=list(families), cell=1.6,
                      title=f"SynthFaces test face {index}: edits rendered in the original's style")


def eval_figures(run_dir, metrics=None, *,
                 families: Sequence[str] = ("smile", "close_eyes", "add_glasses", "hairstyle", "add_hat", "move_scale"),
                 index: int = 0, device: str = "cpu", save: bool = True) -> dict:
    """The figures of notebook 06, as ``{name: matplotlib Figure}``; saved to ``<run_dir>/figures/<name>.png``.

    ``metrics``: :func:`evaluate_run`'s result (default: the ``eval`` section of ``metrics.json``).
    ``06_edit_psnr`` and ``06_edit_examples`` need SynthFaces (ground-truth edits); ``index`` picks
    the test face of the examples.
    """
    from ..run import Run
    from ..viz import save_figure
    run = run_dir if isinstance(run_dir, Run) else Run(run_dir)
    e = as_evaluation(metrics if metrics is not None else run.read_metrics())
    figs = {"06_mask_fidelity": _mask_fidelity_figure(e)}
    if e.edit_families:
        figs["06_edit_psnr"] = _edit_psnr_figure(e)
        figs["06_edit_examples"] = _examples_figure(run, _ordered(e), families, index, e.image_size, device)
    if save:
        for name, fig in figs.items():
            save_figure(fig, run.figure_path(name))
    return figs


# --- reading the ablation ---------------------------------------------------------------------

#: The ablation's columns as README and notebook 06 letter them (Sec. 4 of the paper, plus the control).
ABLATION_LETTERS = {"p2p": "(a)", "dmn": "(b)", "ebst": "(c)", "dmn_matched": "(b')", "dmn_continued": "(b'')"}
#: The equal-updates controls: stage I from scratch for EBST's total updates, and stage I continued
#: from stage I for EBST's updates with EBST's fresh schedule.
CONTROLS = ("dmn_matched", "dmn_continued")
_PSNR_TIE, _MIOU_TIE = 0.1, 0.005  # differences below these are read as "about equal"


def _edit_psnr(s: StageEval):
    return _maybe(s.edit, "psnr")


def _edit_miou(s: StageEval):
    return _maybe(s.edited_parse, "mean_iou")


def _name(stage: str) -> str:
    return f"{ABLATION_LETTERS.get(stage, '')} {get_stage(stage).title}".strip()


def _diff(a, b, fmt: str) -> str:
    return "n/a" if a is None or b is None else fmt.format(a - b)


def _best(e: Evaluation, value) -> tuple[str, float] | None:
    scored = [(s, value(st)) for s, st in e.stages.items() if value(st) is not None]
    return max(scored, key=lambda x: x[1]) if scored else None


def _standing(psnr_a, psnr_b, miou_a, miou_b) -> str:
    """``"ahead on edit PSNR and behind on edited-mask mIoU"``: a against b, ties below the thresholds."""
    def word(a, b, tie):
        if a is None or b is None:
            return None
        return "ahead" if a - b > tie else "behind" if b - a > tie else "level"
    parts = [(word(psnr_a, psnr_b, _PSNR_TIE), "edit PSNR"), (word(miou_a, miou_b, _MIOU_TIE), "edited-mask mIoU")]
    parts = [(w, what) for w, what in parts if w is not None]
    if len(parts) == 2 and parts[0][0] == parts[1][0]:
        return f"{parts[0][0]} on both"
    return " and ".join(f"{w} on {what}" for w, what in parts) or "not comparable (no edit numbers)"


def _ablation_rows(e: Evaluation) -> str:
    rows = []
    for stage, s in e.stages.items():
        inside, outside = _maybe(s.edit, "psnr_inside"), _maybe(s.edit, "psnr_outside")
        comp = s.edit_composite
        rows.append([_name(stage), _cell(s.training.get("generator_updates"), "{}"),
                     _cell(_edit_psnr(s), "{:.2f}") + (f" ({_cell(inside, '{:.2f}')} / {_cell(outside, '{:.2f}')})"
                                                      if s.edit is not None else ""),
                     "-" if comp is None else f"{_cell(comp.psnr, '{:.2f}')} ({_cell(comp.beats_no_edit, '{:.2f}')})",
                     _cell(_edit_miou(s)), _cell(s.recon_parse.mean_iou), _cell(s.swd.get("swd_avg"), "{:.1f}")])
    no_edit = e.reference.no_edit
    if no_edit is not None:
        rows.append(["no edit (the input unchanged)", "-", f"{_cell(no_edit.psnr, '{:.2f}')} ({_cell(no_edit.psnr_inside, '{:.2f}')}"
                     f" / {_cell(no_edit.psnr_outside, '{:.2f}')})", "-", "-", "-", "-"])
    return format_table(rows, ["column", "generator updates", "re-render edit PSNR dB (inside / outside)",
                               "composite edit PSNR dB (share beating no edit)", "edited-mask mIoU", "recon mIoU",
                               "SWD x1e3"])


def _against_control(c: StageEval, m: StageEval, control: str) -> list[str]:
    """Sentences reading EBST (c) against one equal-updates control."""
    text = []
    dp = None if _edit_psnr(c) is None or _edit_psnr(m) is None else _edit_psnr(c) - _edit_psnr(m)
    dm = None if _edit_miou(c) is None or _edit_miou(m) is None else _edit_miou(c) - _edit_miou(m)
    uc, um = c.training.get("generator_updates"), m.training.get("generator_updates")
    same = "both with" if uc == um else "with"
    text.append(f"EBST against the control {_name(control)} ({same} {uc}" + ("" if uc == um else f" and {um}")
                + f" generator updates): {_diff(_edit_psnr(c), _edit_psnr(m), '{:+.2f}')} dB, "
                f"{_diff(_edit_miou(c), _edit_miou(m), '{:+.3f}')} mIoU.")
    if dp is not None:
        if dp > _PSNR_TIE and (dm is None or dm > -_MIOU_TIE):
            text.append("EBST beats this control: here the simulated edits add something that more stage-I "
                        "training does not.")
        elif dp < -_PSNR_TIE or (dm is not None and dm < -_MIOU_TIE):
            text.append("This control does as well or better: at this budget EBST's difference from stage I is "
                        "explained by its extra generator updates, not by the simulated edits.")
        else:
            text.append("EBST and this control are within 0.1 dB and 0.005 mIoU: no effect of the simulated edits "
                        "beyond the extra training is visible here.")
    if uc != um:
        text.append(f"(The two did not have the same number of updates, so this is not the equal-updates "
                    f"comparison; train {control} with the run's step counts.)")
    return text


def _strokes_sentences(e: Evaluation) -> list[str]:
    """EBST against stage I and the controls on the user-like stroke edits (the paper's claim)."""
    st = (e.strokes or {}).get("stages", {})
    if "ebst" not in st:
        return []
    c = st["ebst"]
    out = []
    for other in ("dmn", *CONTROLS):
        if other not in st:
            continue
        o = st[other]
        out.append(f"On user-like strokes, EBST against {_name(other)}: {c['edited_mean_iou'] - o['edited_mean_iou']:+.3f} "
                   f"mIoU against the edited mask, {c['stroke_accuracy'] - o['stroke_accuracy']:+.3f} of the stroke "
                   f"pixels parsed as painted, {c['psnr_outside'] - o['psnr_outside']:+.2f} dB away from the strokes.")
    return out


def _composite_sentences(e: Evaluation) -> list[str]:
    """Every generator's re-render and composite against doing nothing."""
    ref = e.reference.no_edit
    comp = {s: st.edit_composite for s, st in e.stages.items() if st.edit_composite is not None}
    if ref is None or ref.psnr is None or not comp:
        return []
    full = {s: e.stages[s].edit for s in comp}
    lost = [s for s in comp if full[s] is not None and full[s].psnr is not None and full[s].psnr < ref.psnr]
    best = max(comp, key=lambda s: comp[s].psnr if comp[s].psnr is not None else float("-inf"))
    text = [f"Against doing nothing (the input unchanged scores {ref.psnr:.2f} dB against the true edits):"]
    if lost:
        text.append(f"the paper's full re-render scores below it for {', '.join(_name(s) for s in lost)}, because a "
                    "global style vector cannot reproduce the untouched part of the face;")
    text.append(f"composited into the input ({e.composite['blend'] if e.composite else 'default'} blend), the best "
                f"generator, {_name(best)}, scores {comp[best].psnr:.2f} dB ({comp[best].psnr - ref.psnr:+.2f} dB) and "
                f"beats doing nothing in {100 * (comp[best].beats_no_edit or 0):.0f}% of the pairs.")
    return text


def read_ablation(metrics, table: bool = True, width: int | None = 110) -> str:
    """What *this run's* ablation says, in words: which generator is best on edit PSNR and on the
    parser's mIoU of edited masks, (c) EBST against (b) stage I and against (b') the equal-updates
    control, the differences in dB, and how much one seed can tell. ``metrics``: an
    :class:`Evaluation` (or ``metrics.json``). With ``table``, a compact table of the columns first;
    the paragraph is wrapped at ``width`` characters (``None``: one line).

    The reading is mechanical on purpose: differences under 0.1 dB / 0.005 mIoU count as equal."""
    e = as_evaluation(metrics)
    st = e.stages
    out = []
    if table:
        missing = [s for s in ABLATION_LETTERS if s not in st]
        out += [_ablation_rows(e)]
        if missing:
            out += [f"not in this run: {', '.join(_name(s) for s in missing)} "
                    "(`python -m maskgan ablation --run-dir <this run>` trains and evaluates them)"]
        out += [""]
    text = []
    psnr_ok = any(_edit_psnr(s) is not None for s in st.values())
    best_psnr, best_miou = _best(e, _edit_psnr), _best(e, _edit_miou)
    if psnr_ok and best_psnr:
        text.append(f"In this run the best generator on edit PSNR is {_name(best_psnr[0])} ({best_psnr[1]:.2f} dB)"
                    + (f", and on the parser's mIoU of edited masks {_name(best_miou[0])} ({best_miou[1]:.3f})."
                       if best_miou else "."))
    else:
        best = _best(e, lambda s: s.recon_parse.mean_iou)
        text.append("This run has no edit-fidelity numbers (they need SynthFaces' ground-truth edits and eval.edits > 0)"
                    + (f"; on reconstructions the parser's mIoU is best for {_name(best[0])} ({best[1]:.3f})."
                       if best else "."))
    if "p2p" in st and "dmn" in st:
        a, b = st["p2p"], st["dmn"]
        text.append(f"The style encoder: {_name('dmn')} is {_diff(_edit_psnr(b), _edit_psnr(a), '{:+.2f}')} dB and "
                    f"{_diff(_edit_miou(b), _edit_miou(a), '{:+.3f}')} mIoU against {_name('p2p')}, the same backbone "
                    "fed by the mask alone.")
    if "ebst" in st and "dmn" in st:
        b, c = st["dmn"], st["ebst"]
        text.append(
            f"EBST against stage I: {_diff(_edit_psnr(c), _edit_psnr(b), '{:+.2f}')} dB edit PSNR (inside the edited "
            f"region {_diff(_maybe(c.edit, 'psnr_inside'), _maybe(b.edit, 'psnr_inside'), '{:+.2f}')} dB, outside "
            f"{_diff(_maybe(c.edit, 'psnr_outside'), _maybe(b.edit, 'psnr_outside'), '{:+.2f}')} dB), "
            f"{_diff(_edit_miou(c), _edit_miou(b), '{:+.3f}')} edited-mask mIoU: EBST is "
            f"{_standing(_edit_psnr(c), _edit_psnr(b), _edit_miou(c), _edit_miou(b))} (EBST had "
            f"{c.training.get('generator_updates')} generator updates, stage I {b.training.get('generator_updates')}).")
    controls = [k for k in CONTROLS if k in st]
    for k in controls if "ebst" in st else ():
        text += _against_control(st["ebst"], st[k], k)
    if "ebst" in st and not controls:
        text.append("Without a control (b') or (b''), EBST's difference from stage I mixes the simulated edits with "
                    "the extra training; `python -m maskgan ablation` trains them: stage I alone for as many updates "
                    "as EBST.")
    text += _strokes_sentences(e)
    text += _composite_sentences(e)
    pairs = f" and {e.edit_pairs_per_family} edit pairs per family" if e.edit_pairs_per_family else ""
    text.append(f"One training seed ({e.seed}), {e.num_faces} test faces{pairs}: differences of a few tenths of a dB "
                "or a few thousandths of mIoU can change sign with another seed, so read this as an anecdote, not a "
                "finding, until it holds over several seeds.")
    paragraph = " ".join(text)
    if width:
        paragraph = textwrap.fill(paragraph, width)
    return "\n".join(out) + paragraph
