"""The shared first cell of every numbered notebook: the config and the run directory.

    cfg, run = setup(preset, run_dir, data=data, data_root=data_root, device=device, seed=seed,
                     overrides=overrides)

``cfg`` is the preset with the notebook's choices on top (:func:`maskgan.config.make_config`);
``run`` is the :class:`maskgan.run.Run` every notebook of a pipeline shares.

Notebooks 04-06 also work without the earlier ones: :func:`use_pretrained` copies the models shipped
with the kit (``pretrained/``, :mod:`maskgan.pretrained`) into the run for the stages it lacks, when
they were trained with this config's networks, and says so.
"""
from __future__ import annotations

import shutil

from .config import Config, make_config
from .device import choose_threads
from .errors import MaskGANError
from .io import atomic_write_json
from .pretrained import DEFAULT_PRETRAINED, pretrained_label, pretrained_run, read_record
from .run import Run
from .stages import get_stage, identity

__all__ = ["setup", "use_pretrained", "PRETRAINED_MARK", "SMOKE_NOTE"]

#: Written into a stage folder copied from the shipped models (what it is and where it came from).
PRETRAINED_MARK = "pretrained.json"
#: Said by every notebook at the smoke preset, whose pictures would otherwise look like a broken kit.
SMOKE_NOTE = ("note: the smoke preset only checks that the code runs (tiny networks, a few training steps): its "
              "masks and faces are noise. Learn from the cpu preset (the default); at it, notebooks 04-06 take "
              "the kit's shipped models for the stages a run lacks.")


def setup(preset: str, run_dir: str, *, data: str = "", data_root: str = "", device: str = "auto", seed: int = 0,
          overrides: dict | None = None) -> tuple[Config, Run]:
    cfg = make_config(preset, data=data, data_root=data_root, device=device, seed=seed, overrides=overrides)
    choose_threads()  # the free cores (or $MASKGAN_THREADS / OMP_NUM_THREADS): graceful next to other work
    run = Run(run_dir, cfg=cfg)  # its hints ("train X first") carry this preset and these overrides
    run.path.mkdir(parents=True, exist_ok=True)
    # the run directory as the parameters cell gave it (relative to the notebook): no machine path in
    # the notebooks and screenshots that are shared
    print(f"preset {preset}: {cfg.data.dataset} at {cfg.data.size}x{cfg.data.size}, run directory {run.path}")
    if preset == "smoke":
        print(SMOKE_NOTE)
    return cfg, run


def use_pretrained(run: Run, cfg: Config, stages, name: str = DEFAULT_PRETRAINED) -> list[str]:
    """Copy the shipped models of ``stages`` into ``run`` where it has no checkpoint of its own.

    A stage is copied only when its shipped config has the identity ``cfg`` asks for (same networks,
    data and losses; step counts may differ); otherwise the run keeps lacking it and the next cell
    says what to train. The copied stage folder carries :data:`PRETRAINED_MARK`, and one line per
    copied stage is printed. Returns the stages copied now.
    """
    missing = [s for s in stages if not run.has(s)]
    if not missing:
        return []
    try:
        shipped = pretrained_run(name)
        record = read_record(name)
    except MaskGANError as e:  # no shipped models (or damaged): the notebook's own messages take over
        print(f"no shipped models to fall back on ({e})")
        return []
    copied = []
    for stage in missing:
        entry = record["stages"].get(stage)
        if entry is None:
            continue
        theirs = identity(stage, shipped.config(stage))
        ours = identity(stage, cfg)
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if differ:
            print(f"{stage}: the shipped {get_stage(stage).title} was trained with another config "
                  f"({', '.join(differ[:4])}{' ...' if len(differ) > 4 else ''}); not used")
            continue
        dest = run.stage_dir(stage)
        shutil.copytree(shipped.stage_dir(stage), dest, dirs_exist_ok=True)
        atomic_write_json(dest / PRETRAINED_MARK, {"from": f"pretrained/{name}", "step": entry["step"],
                                                   "label": pretrained_label(name)})
        copied.append(stage)
        print(f"{stage}: no checkpoint in this run, so the {get_stage(stage).title} is the kit's shipped one "
              f"(step {entry['step']}; {pretrained_label(name)})")
    return copied
