"""The shared first cell of every numbered notebook: the config and the run directory.

    cfg, run = setup(preset, run_dir, data=data, data_root=data_root, device=device, seed=seed,
                     overrides=overrides)

``cfg`` is the preset with the notebook's choices on top (:func:`maskgan.config.make_config`);
``run`` is the :class:`maskgan.run.Run` every notebook of a pipeline shares.
"""
from __future__ import annotations

from .config import Config, make_config
from .run import Run

__all__ = ["setup"]


def setup(preset: str, run_dir: str, *, data: str = "", data_root: str = "", device: str = "auto", seed: int = 0,
          overrides: dict | None = None) -> tuple[Config, Run]:
    cfg = make_config(preset, data=data, data_root=data_root, device=device, seed=seed, overrides=overrides)
    run = Run(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    print(f"preset {preset}: {cfg.data.dataset} at {cfg.data.size}x{cfg.data.size}, "
          f"run directory {run.path.resolve()}")
    return cfg, run
