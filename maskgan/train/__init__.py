"""Training: MaskVAE pretraining, DMN stage I, and EBST (Algorithm 1), one API for notebooks and CLI.

    from maskgan.config import Config
    from maskgan.train import train
    summary = train("vae", Config.preset("cpu"), "runs/demo")     # then "dmn", then "ebst"

A run directory holds one folder per stage (``vae/``, ``dmn/``, ``ebst/``) with ``log.jsonl``,
``samples/``, ``checkpoints/`` and ``summary.json``; EBST reads the MaskVAE (and, when present, the
stage-I DMN) of the same run directory. Two more stages serve the evaluation (Sec. 4):
``parser`` (the face parser that scores generated faces, :mod:`.parser`) and ``p2p`` (the
Pix2PixHD-m baseline of the ablation, :mod:`.baseline`).
"""
from __future__ import annotations

from pathlib import Path

from .baseline import P2PTrainer
from .checkpoint import CheckpointError, latest_checkpoint, load_weights
from .gan import DMNTrainer, EBSTTrainer, MatchedDMNTrainer
from .loop import Trainer, TrainingError
from .parser import ParserTrainer, evaluate_parser
from .vae import MaskVAETrainer, evaluate_maskvae

__all__ = ["STAGES", "train", "make_trainer", "prepared_trainer", "Trainer", "TrainingError", "CheckpointError", "MaskVAETrainer",
           "DMNTrainer", "EBSTTrainer", "MatchedDMNTrainer", "ParserTrainer", "P2PTrainer", "evaluate_maskvae", "evaluate_parser",
           "latest_checkpoint", "load_weights"]

#: Stage name -> trainer class.
STAGES: dict[str, type[Trainer]] = {"vae": MaskVAETrainer, "dmn": DMNTrainer, "ebst": EBSTTrainer,
                                    "parser": ParserTrainer, "p2p": P2PTrainer, "dmn_matched": MatchedDMNTrainer}


def make_trainer(stage: str, cfg, run_dir: Path | str, **kwargs) -> Trainer:
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; stages are {', '.join(STAGES)}")
    return STAGES[stage](cfg, run_dir, **kwargs)


def train(stage: str, cfg, run_dir: Path | str, *, resume: bool = False, steps: int | None = None,
          device: str | None = None, progress: bool = True) -> dict:
    """Train one stage on the configured training split; returns the summary (also in summary.json)."""
    from ..data import build_dataset
    trainer = make_trainer(stage, cfg, run_dir, resume=resume, device=device, progress=progress)
    return trainer.fit(build_dataset(cfg.data, "train", train=True), steps=steps)


def prepared_trainer(stage: str, cfg, run_dir: Path | str, *, device: str | None = None, dataset=None):
    """A trainer with its networks built and on the device, and one training batch, for timing or
    inspecting single steps without the loop: ``trainer, batch = prepared_trainer("dmn", cfg, tmp)``,
    then ``trainer.train_step(batch)``. EBST needs a MaskVAE checkpoint in ``run_dir``."""
    from ..data import build_dataset
    from .loop import _collate
    dataset = dataset if dataset is not None else build_dataset(cfg.data, "train", train=True)
    trainer = make_trainer(stage, cfg, run_dir, device=device, progress=False)
    trainer.dataset = dataset  # before build(): class weights and EBST's M^ref come from it
    trainer.build()
    trainer._prepare_nets()
    batch = trainer.to_device(_collate([dataset[i] for i in range(trainer.batch_size)]))
    return trainer, batch
