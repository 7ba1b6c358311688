"""The EBST study over training seeds: the ablation's numbers as mean +- std over several runs.

One run of the ablation is an anecdote: the README measured run-to-run differences as large as the
EBST-versus-stage-I difference. A *study* is several evaluated runs that differ only in their
training seed (``python -m maskgan evaluate`` wrote each one's ``metrics.json``); :func:`study`
collects every generator's numbers over the runs and :func:`format_study` prints them as
``mean +- std (n)`` (sample standard deviation; a generator present in fewer runs says so), for
the two kinds of edits of the paper's claim: SynthFaces' ground-truth edit families, and the
user-like stroke edits (:mod:`maskgan.evaluation.strokes`). EBST's difference from every other
generator is taken per run and tested with a two-sided one-sample t-test (:func:`difference_test`,
n - 1 degrees of freedom): at n = 3 a difference needs |t| > 4.30 for p < 0.05, where the "two
standard errors" rule would accept p = 0.18::

    python -m maskgan study --run-dir runs/s0 --run-dir runs/s1 --run-dir runs/s2
"""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import StageMissing
from ..run import Run
from ..stages import generator_stages
from ..stats import t_test
from ..text import format_table
from .records import Evaluation
from .report import CONTROLS, _name, as_evaluation

__all__ = ["STUDY_METRICS", "ALPHA", "study", "format_study", "read_study", "difference_test"]

#: ``(key, title, how to read it from an Evaluation's stage, format)``.
STUDY_METRICS = (
    ("edit_psnr", "edit PSNR vs truth dB (re-render)", lambda e, s: _get(e.stages[s].edit, "psnr"), "{:.2f}"),
    ("edit_beats", "re-render: pairs beating no edit", lambda e, s: _get(e.stages[s].edit, "beats_no_edit"),
     "{:.3f}"),
    ("composite_psnr", "edit PSNR vs truth dB (composite)",
     lambda e, s: _get(getattr(e.stages[s], "edit_composite", None), "psnr"), "{:.2f}"),
    ("composite_beats", "composite: pairs beating no edit",
     lambda e, s: _get(getattr(e.stages[s], "edit_composite", None), "beats_no_edit"), "{:.3f}"),
    ("edited_miou", "edited-mask mIoU", lambda e, s: _get(e.stages[s].edited_parse, "mean_iou"), "{:.3f}"),
    ("recon_psnr", "recon PSNR dB", lambda e, s: e.stages[s].recon_psnr, "{:.2f}"),
    ("recon_miou", "recon mIoU", lambda e, s: e.stages[s].recon_parse.mean_iou, "{:.3f}"),
    ("stroke_miou", "strokes: mIoU vs edited mask", lambda e, s: _stroke(e, s, "edited_mean_iou"), "{:.3f}"),
    ("stroke_accuracy", "strokes: stroke px as painted", lambda e, s: _stroke(e, s, "stroke_accuracy"), "{:.3f}"),
    ("stroke_psnr_outside", "strokes: PSNR away dB", lambda e, s: _stroke(e, s, "psnr_outside"), "{:.2f}"),
    ("stroke_composite_miou", "strokes, composite: mIoU vs edited mask",
     lambda e, s: _stroke(e, s, "composite_edited_mean_iou"), "{:.3f}"),
)
#: Significance level of the verdicts (two-sided t-test over the runs' paired differences).
ALPHA = 0.05


def _get(obj, attr):
    return None if obj is None else getattr(obj, attr, None)


def _stroke(e: Evaluation, stage: str, key: str):
    return ((e.strokes or {}).get("stages", {}).get(stage) or {}).get(key)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def study(evaluations: dict[str, Evaluation | dict]) -> dict:
    """``{run name: Evaluation}`` -> ``{"runs": [...], "seeds": [...], "stages": {stage: {metric:
    {"mean", "std", "n", "values"}}}, "differences": {...}}``. Differences (EBST minus each other
    generator) are taken per run, then averaged, so a seed's shared luck cancels."""
    evals = {name: as_evaluation(e) for name, e in evaluations.items()}
    if not evals:
        raise StageMissing("a study needs at least one evaluated run")
    stages: dict[str, dict] = {}
    present = {s for e in evals.values() for s in e.stages}
    order = [s for s in generator_stages() if s in present] + sorted(present - set(generator_stages()))
    for stage in order:
        stages[stage] = {}
        for key, _, read, _ in STUDY_METRICS:
            values = [read(e, stage) for e in evals.values() if stage in e.stages]
            values = [float(v) for v in values if v is not None and math.isfinite(v)]
            if values:
                mean, std = _mean_std(values)
                stages[stage][key] = {"mean": mean, "std": std, "n": len(values), "values": values}
    differences: dict[str, dict] = {}
    for other in [s for s in order if s != "ebst"]:
        diff = {}
        for key, _, read, _ in STUDY_METRICS:
            d = [read(e, "ebst") - read(e, other) for e in evals.values()
                 if "ebst" in e.stages and other in e.stages and read(e, "ebst") is not None
                 and read(e, other) is not None]
            if d:
                mean, std = _mean_std(d)
                diff[key] = {"mean": mean, "std": std, "n": len(d), "values": d}
        if diff:
            differences[other] = diff
    return {"runs": list(evals), "seeds": [e.seed for e in evals.values()], "stages": stages,
            "differences": differences}


def _cell(entry: dict | None, fmt: str, signed: bool = False) -> str:
    if not entry:
        return "-"
    f = fmt.replace("{:", "{:+") if signed else fmt
    out = f.format(entry["mean"])
    if entry["std"] is not None:
        out += " +- " + fmt.format(entry["std"])
    return out + f" ({entry['n']})"


def format_study(result: dict) -> str:
    """The study as two text tables: each generator's numbers, and EBST minus each other generator."""
    stages = list(result["stages"])
    rows = [[title] + [_cell(result["stages"][s].get(key), fmt) for s in stages]
            for key, title, _, fmt in STUDY_METRICS]
    lines = [f"{len(result['runs'])} runs (training seeds {', '.join(map(str, result['seeds']))}); "
             "mean +- sample std (number of runs)", "",
             format_table(rows, ["metric"] + [_name(s) for s in stages])]
    if result["differences"]:
        others = list(result["differences"])
        rows = [[title] + [f"{_cell(result['differences'][o].get(key), fmt, signed=True)} "
                           f"{_test_cell(result['differences'][o].get(key))}".strip() for o in others]
                for key, title, _, fmt in STUDY_METRICS if any(key in result["differences"][o] for o in others)]
        lines += ["", "EBST minus each generator, per run, then averaged; p: two-sided t-test of the per-run "
                      "differences (n - 1 degrees of freedom):", "",
                  format_table(rows, ["metric"] + [f"(c) EBST - {_name(o)}" for o in others])]
        for control in CONTROLS:
            d = result["differences"].get(control, {})
            if "stroke_miou" in d and "edit_psnr" in d:
                lines += ["", _verdict(d, control)]
        design = result.get("design")
        if design and design.get("shared_stage_one"):
            lines += ["", "Design: the runs share one MaskVAE, face parser and stage I; each seed trains only EBST "
                          "and (b'') from it, and EBST starts with fresh optimizers at the peak learning rate. The "
                          "spread is over that last phase, so a finding is about this schedule, not about the method."]
    return "\n".join(lines)


def difference_test(entry: dict) -> dict:
    """The t-test of a difference's per-run values (:func:`maskgan.stats.t_test`): ``{"t", "df", "p"}``."""
    return t_test(entry["values"])


def _test_cell(entry: dict | None) -> str:
    if not entry or entry.get("n", 0) < 2:
        return "-"
    t = difference_test(entry)
    return f"p={t['p']:.2g}"


def _verdict(d: dict, control: str) -> str:
    """One sentence: is EBST's difference from a control significant (t-test at :data:`ALPHA`)?"""
    parts = []
    for key, what in (("edit_psnr", "edit PSNR"), ("edited_miou", "edited-mask mIoU"),
                      ("stroke_miou", "stroke-edit mIoU"), ("stroke_accuracy", "stroke pixels as painted"),
                      ("stroke_psnr_outside", "PSNR away from strokes")):
        e = d.get(key)
        if not e:
            continue
        if e["std"] is None:
            parts.append(f"{what}: one run, no test")
            continue
        t = difference_test(e)
        if t["p"] < ALPHA:
            parts.append(f"{what}: {'EBST better' if e['mean'] > 0 else 'EBST worse'} (p = {t['p']:.2g})")
        else:
            parts.append(f"{what}: no significant difference (p = {t['p']:.2g})")
    return (f"Against {_name(control)}, two-sided t-test over {d[next(iter(d))]['n']} runs at p < {ALPHA}: "
            + "; ".join(parts) + ".")


def read_study(run_dirs) -> dict:
    """:func:`study` of the ``eval`` sections of the runs' ``metrics.json`` (run ``evaluate`` first)."""
    evals = {}
    for d in run_dirs:
        run = Run(d)
        metrics = run.read_metrics().get("eval")
        if not metrics:
            raise StageMissing(f"{Path(d) / 'metrics.json'} has no evaluation; run "
                               f"`python -m maskgan evaluate --run-dir {d}` first")
        evals[str(d)] = Evaluation.from_dict(metrics)
    return study(evals)


def run_study(root: Path | str, cfg, seeds=(0, 1, 2), *, vary_stage_one: bool = False, n: int | None = None,
              n_edits: int | None = None, device: str | None = None, progress: bool = True) -> dict:
    """Train and evaluate the study into ``root/seed_<s>/`` for every seed, then :func:`read_study`.

    The first seed's run trains every stage (:func:`~maskgan.evaluation.ablation.run_ablation`). The
    other seeds share its MaskVAE, face parser and -- unless ``vary_stage_one`` -- its stage I, and train
    with their own seed what starts from stage I: EBST and the control ``dmn_continued``. That is the
    study the README reports on a CPU (the seeds vary the last phase; one stage I); with
    ``vary_stage_one`` (a GPU's budget) every seed also trains its own stage I, baseline and
    ``dmn_matched``. Stages already trained are kept, so an interrupted study resumes.
    """
    import shutil

    from ..train import train
    from .ablation import run_ablation
    from .run import evaluate_run
    root = Path(root)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise StageMissing("a study needs at least one seed")
    dirs = [root / f"seed_{s}" for s in seeds]
    first = Run(dirs[0])
    run_ablation(first.path, cfg.with_overrides({"seed": seeds[0]}), n=n, n_edits=n_edits, device=device,
                 progress=progress)
    shared = ("vae", "parser") if vary_stage_one else ("vae", "parser", "dmn")
    for seed, d in zip(seeds[1:], dirs[1:]):
        run = Run(d)
        scfg = cfg.with_overrides({"seed": seed})
        for stage in shared:
            if not run.has(stage):
                shutil.copytree(first.stage_dir(stage), run.stage_dir(stage), dirs_exist_ok=True)
        if vary_stage_one:
            run_ablation(run.path, scfg, n=n, n_edits=n_edits, device=device, progress=progress)
            continue
        for stage in ("ebst", "dmn_continued"):
            if not run.is_complete(stage, scfg):
                train(stage, scfg, run.path, resume=run.has(stage), device=device, progress=progress)
        evaluate_run(run, n, n_edits=n_edits, device=device, cfg=scfg, progress=progress)
    result = read_study(dirs)
    result["design"] = {"shared_stage_one": not vary_stage_one and len(seeds) > 1}
    return result
