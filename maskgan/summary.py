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
    else:
        parts += ["", "(no metrics.json yet: the evaluation notebook writes it)"]
    figures = sorted((run.path / "figures").glob("*.png")) if (run.path / "figures").is_dir() else []
    parts += ["", f"Figures ({len(figures)}) in {run.path / 'figures'}:"]
    parts += [f"  {f.name}" for f in figures]
    parts += ["(the demo leaves the checkout as it is: `make figures` copies them to figures/ for the README)"]
    text = "\n".join(parts)
    print(text)
    return text
