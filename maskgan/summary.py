"""The summary printed at the end of ``make demo``: what ran, how long, the metrics, the figures."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .io import read_json

__all__ = ["flatten_metrics", "format_table", "print_summary"]


def flatten_metrics(metrics: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``{"vae": {"miou": 0.8}}`` -> ``[("vae.miou", 0.8)]`` (nested dicts joined with dots)."""
    rows = []
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            rows.extend(flatten_metrics(value, name))
        else:
            rows.append((name, value))
    return rows


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain-text table with aligned columns; floats get 4 significant digits."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    text = [[cell(v) for v in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text)) if text else len(str(h)) for i, h in enumerate(header)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(header, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in text]
    return "\n".join(out)


def print_summary(run_dir: Path | str, results: Sequence, published: Sequence[Path] = ()) -> str:
    """Print (and return) the demo summary for a run directory."""
    run_dir = Path(run_dir)
    parts = ["", "== MaskGAN kit: demo summary ==", ""]
    state = read_json(run_dir / "pipeline.json") if (run_dir / "pipeline.json").exists() else {"notebooks": {}}
    rows = []
    for r in results:
        recorded = state["notebooks"].get(r.name, {}).get("seconds", 0.0)
        rows.append((r.name, r.status, f"{(r.seconds or recorded):.1f}"))
    total = sum(float(r[2]) for r in rows)
    rows.append(("total", "", f"{total:.1f}"))
    parts.append(format_table(rows, ("notebook", "status", "seconds")))
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists():
        metrics = read_json(metrics_file)
        if "eval" in metrics:
            from .evaluation import format_eval_table
            parts += ["", format_eval_table(metrics)]
        else:
            scalars = [(k, v) for k, v in flatten_metrics(metrics) if isinstance(v, (int, float, str)) and len(str(v)) < 60]
            parts += ["", format_table(scalars, ("metric", "value"))]
        parts += [f"(all numbers: {metrics_file})"]
    else:
        parts += ["", "(no metrics.json yet: the evaluation notebook writes it)"]
    figures = sorted((run_dir / "figures").glob("*.png")) if (run_dir / "figures").is_dir() else []
    parts += ["", f"Figures ({len(figures)}) in {run_dir / 'figures'}:"]
    parts += [f"  {f.name}" for f in figures]
    if published:
        parts += [f"Copied to {Path(published[0]).parent}/ for the README."]
    text = "\n".join(parts)
    print(text)
    return text
