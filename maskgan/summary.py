"""The summary printed at the end of ``make demo``: what ran, how long, the metrics, the figures."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .config import flatten
from .io import read_json
from .run import Run
from .text import format_table

__all__ = ["print_summary"]


def print_summary(run_dir: Path | str, results: Sequence) -> str:
    """Print (and return) the demo summary for a run directory."""
    run = Run(run_dir)
    parts = ["", "== MaskGAN kit: demo summary ==", ""]
    state = read_json(run.pipeline_file) if run.pipeline_file.exists() else {"notebooks": {}}
    rows = []
    for r in results:
        recorded = state["notebooks"].get(r.name, {}).get("seconds", 0.0)
        rows.append((r.name, r.status, f"{(r.seconds or recorded):.1f}"))
    total = sum(float(r[2]) for r in rows)
    rows.append(("total", "", f"{total:.1f}"))
    parts.append(format_table(rows, ("notebook", "status", "seconds")))
    metrics = run.read_metrics()
    if metrics:
        if "eval" in metrics:
            from .evaluation import format_eval_table
            parts += ["", format_eval_table(metrics)]
        else:
            scalars = [(k, v) for k, v in flatten(metrics).items() if isinstance(v, (int, float, str)) and len(str(v)) < 60]
            parts += ["", format_table(scalars, ("metric", "value"))]
        parts += [f"(all numbers: {run.metrics_file})"]
        if "eval" in metrics:
            parts += _next_to_shipped(metrics["eval"])
    else:
        parts += ["", "(no metrics.json yet: the evaluation notebook writes it)"]
    figures = sorted((run.path / "figures").glob("*.png")) if (run.path / "figures").is_dir() else []
    parts += ["", f"Figures ({len(figures)}) in {run.path / 'figures'}:"]
    parts += [f"  {f.name}" for f in figures]
    parts += ["(the demo leaves the checkout as it is: `make figures` copies them to figures/ for the README)"]
    text = "\n".join(parts)
    print(text)
    return text


def _next_to_shipped(ev: dict) -> list[str]:
    """This run's stage I and EBST next to the shipped (pretrained) ones, on the headline numbers."""
    from .errors import MaskGANError
    from .pretrained import pretrained_label, read_record
    from .stages import generator_stages, get_stage
    try:
        shipped = read_record()["evaluation"]
    except MaskGANError:
        return []
    def get(e, stage, *keys):
        v = e["stages"].get(stage)
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v
    def stroke(e, stage):
        return ((e.get("strokes") or {}).get("stages", {}).get(stage) or {}).get("edited_mean_iou")
    method = [s for s in generator_stages() if get_stage(s).role == "generator"]  # stage I, EBST
    rows = []
    for title, read, fmt in (("recon PSNR dB", lambda e, s: get(e, s, "recon_psnr"), "{:.2f}"),
                             ("edit PSNR vs truth dB", lambda e, s: get(e, s, "edit", "psnr"), "{:.2f}"),
                             ("recon parser mIoU", lambda e, s: get(e, s, "recon_parse", "mean_iou"), "{:.3f}"),
                             ("strokes: mIoU vs edited mask", stroke, "{:.3f}")):
        cells = []
        for e in (ev, shipped):
            for stage in method:
                v = read(e, stage) if stage in e["stages"] else None
                cells.append("-" if v is None else fmt.format(v))
        rows.append([title] + cells)
    header = ["metric"] + [f"{get_stage(s).title}, {who}" for who in ("this run", "pretrained") for s in method]
    note = (f"(each mIoU is read by its own run's face parser: {ev['parser']['steps']} steps here, "
            f"{shipped['parser']['steps']} for the shipped models; the PSNRs need no parser)")
    return ["", "This demo next to the shipped models (" + pretrained_label() + "):", format_table(rows, header), note]
