"""Training: every stage of :mod:`maskgan.stages`, one API for notebooks and the command line.

    from maskgan.config import Config
    from maskgan.train import train
    summary = train("vae", Config.preset("cpu"), "runs/demo")     # then "dmn", then "ebst"
    train("dmn", cfg, "runs/demo", resume=True, extend_to=3000)     # a finished run, trained longer

A run directory holds one folder per stage (:class:`maskgan.run.Run` knows the layout). EBST reads
the MaskVAE (and, when present, the stage-I DMN) of the same run directory. Three more stages
serve the evaluation (Sec. 4): ``parser`` (the face parser that scores generated faces,
:mod:`.parser`), ``p2p`` (the Pix2PixHD-m baseline, :mod:`.baseline`) and ``dmn_matched`` (stage I
for as many generator updates as EBST, :mod:`.gan`).
"""
from __future__ import annotations

from pathlib import Path

from ..stages import get_stage
from .loop import Trainer, collate

__all__ = ["train", "make_trainer", "prepared_trainer", "Trainer"]


def make_trainer(stage: str, cfg, run_dir: Path | str, **kwargs) -> Trainer:
    """The trainer of a registered stage (:mod:`maskgan.stages`) for ``cfg`` and ``run_dir``."""
    return get_stage(stage).trainer_class()(cfg, run_dir, **kwargs)


def train(stage: str, cfg, run_dir: Path | str, *, resume: bool = False, steps: int | None = None,
          extend_to: int | None = None, device: str | None = None, progress: bool = True, validate: bool = True) -> dict:
    """Train one stage on the configured training split; returns the summary (also in summary.json).

    ``steps``: stop at this step (at most the schedule's total); ``extend_to``: give a finished (or
    running) stage a new, longer LR schedule ending at this step and train to it. A prepared
    folder dataset is checked file by file first (``validate``; cached).
    """
    from ..data import build_dataset
    dataset = build_dataset(cfg.data, "train", train=True)
    if validate and hasattr(dataset, "validate"):
        dataset.validate(workers=max(1, cfg.data.num_workers), progress=progress)
    trainer = make_trainer(stage, cfg, run_dir, resume=resume, device=device, progress=progress, extend_to=extend_to)
    return trainer.fit(dataset, steps=steps)


def prepared_trainer(stage: str, cfg, run_dir: Path | str, *, device: str | None = None, dataset=None):
    """A trainer with its networks built and on the device, and one training batch, for timing or
    inspecting single steps without the loop: ``trainer, batch = prepared_trainer("dmn", cfg, tmp)``,
    then ``trainer.train_step(batch)``. EBST needs a MaskVAE checkpoint in ``run_dir``."""
    from ..data import build_dataset
    from .loop import DataOrder
    dataset = dataset if dataset is not None else build_dataset(cfg.data, "train", train=True)
    trainer = make_trainer(stage, cfg, run_dir, device=device, progress=False)
    trainer.dataset = dataset  # before build(): class weights and EBST's M^ref come from it
    trainer.build()
    trainer.prepare_nets()
    trainer.order = DataOrder(len(dataset), trainer.batch_size, cfg.seed)
    from .loop import _Keyed
    keyed = _Keyed(dataset, cfg.seed)
    batch = trainer.to_device(collate([keyed[k] for k in trainer.batch_keys(0)]))
    return trainer, batch
