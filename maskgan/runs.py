"""What a run directory holds, and which notebook writes what.

    runs/demo/
      vae/ dmn/ ebst/        one folder per training stage (checkpoints/, samples/, log.jsonl, summary.json)
      figures/NN_*.png       figures saved by notebook NN
      metrics.json           numbers recorded by the notebooks (sections: data, maskvae, dmn, ebst, eval)
      notebooks/             executed copies (papermill)

Later notebooks read what earlier ones wrote; :func:`require_stage` fails with a message naming
the notebook to run first.
"""
from __future__ import annotations

import json
from pathlib import Path

from .io import atomic_write_json, read_json

__all__ = ["STAGE_NOTEBOOK", "require_stage", "record_metrics", "read_metrics", "read_log", "figure_path",
           "latest_sample"]

#: Training stage -> the notebook that trains it.
STAGE_NOTEBOOK = {"vae": "01_maskvae_pretraining", "dmn": "02_ebst_stage1", "ebst": "03_ebst_stage2"}


def require_stage(run_dir: Path | str, stage: str) -> Path:
    """The latest checkpoint of ``stage`` in ``run_dir``, or an error naming the notebook to run first."""
    from .train.checkpoint import latest_checkpoint
    ckpt = latest_checkpoint(Path(run_dir) / stage)
    if ckpt is None:
        raise FileNotFoundError(
            f"{Path(run_dir) / stage} has no checkpoint: run notebook {STAGE_NOTEBOOK[stage]}.ipynb first "
            f"with the same run_dir (or `python -m maskgan pipeline --only {STAGE_NOTEBOOK[stage][:2]} "
            f"--run-dir {run_dir}`)")
    return ckpt


def record_metrics(run_dir: Path | str, section: str, values: dict) -> dict:
    """Merge ``values`` into ``metrics.json`` under ``section`` (atomic); returns the whole file."""
    path = Path(run_dir) / "metrics.json"
    metrics = read_json(path) if path.exists() else {}
    metrics[section] = {**metrics.get(section, {}), **values}
    atomic_write_json(path, metrics)
    return metrics


def read_metrics(run_dir: Path | str) -> dict:
    path = Path(run_dir) / "metrics.json"
    return read_json(path) if path.exists() else {}


def read_log(run_dir: Path | str, stage: str) -> list[dict]:
    """The ``log.jsonl`` records of a stage (one dict per logged step)."""
    path = Path(run_dir) / stage / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def figure_path(run_dir: Path | str, name: str) -> Path:
    """Where a notebook saves a figure: ``<run_dir>/figures/<name>.png`` (name starts with NN_)."""
    return Path(run_dir) / "figures" / f"{name}.png"


def latest_sample(run_dir: Path | str, stage: str) -> Path:
    """The newest sample grid a stage saved during training (``<stage>/samples/step_*.png``)."""
    found = sorted((Path(run_dir) / stage / "samples").glob("step_*.png"))
    if not found:
        raise FileNotFoundError(f"{Path(run_dir) / stage / 'samples'} has no sample grid yet: "
                                f"run notebook {STAGE_NOTEBOOK.get(stage, stage)} first")
    return found[-1]
