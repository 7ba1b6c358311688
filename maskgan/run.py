"""A run directory, and the only code that knows its layout.

::

    runs/demo/
      vae/ dmn/ ebst/ ...     one folder per training stage (maskgan.stages):
        checkpoints/            step_NNNNNNN/ folders + latest.json (maskgan.checkpoint)
        samples/step_*.png      sample grids written during training
        log.jsonl               one line of loss terms every cadence.log_every steps
        config.json summary.json .lock
      figures/NN_*.png        figures saved by notebook NN
      metrics.json            numbers recorded by the notebooks and the evaluation
      notebooks/ pipeline.json executed copies and the pipeline's record (maskgan.pipeline)

    run = Run("runs/demo")
    ckpt = run.require("ebst")                     # or StageMissing naming notebook and command
    dmn, cfg, ckpt = run.generator("ebst")         # eval mode, on the CPU
    run.record_metrics("eval", {...}); run.figure_path("06_edits")
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

from .checkpoint import Checkpoint, StageLock, find_checkpoint, list_checkpoints
from .config import Config
from .errors import StageMissing
from .io import atomic_write_json, read_json
from .stages import Stage, generator_stages, get_stage

__all__ = ["Run", "read_jsonl"]


def read_jsonl(path: Path | str) -> list[dict]:
    """The records of a JSON-lines file. A damaged *last* line (a write cut short by a kill or a full
    disk) is dropped with a warning naming the file; damage anywhere else is an error."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                warnings.warn(f"{path}: dropping a damaged last line ({len(line)} characters: {e})", stacklevel=2)
                break
            from .errors import DataError
            raise DataError(f"{path} line {i + 1} is not JSON ({e}); the file is damaged") from None
    return records


class Run:
    """A run directory: its stages' checkpoints, configs, networks, logs, metrics and figures."""

    def __init__(self, path: Path | str, report: Callable[[str], None] | None = print, cfg=None):
        self.path = Path(path)
        self.report = report  # where one-line notes go (a skipped damaged checkpoint, ...)
        self.cfg = cfg  # the Config this run is used with (a notebook's, a trainer's): "train X first" hints carry it

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # --- stages and checkpoints -------------------------------------------------------------
    def stage_dir(self, stage: str | Stage) -> Path:
        return self.path / get_stage(stage).name

    def checkpoints(self, stage: str | Stage) -> list[Checkpoint]:
        """Every checkpoint of a stage, newest first (not verified)."""
        return list_checkpoints(self.stage_dir(stage))

    def has(self, stage: str | Stage) -> bool:
        """Whether the stage has any checkpoint (cheap: nothing is verified)."""
        return bool(self.checkpoints(stage))

    def latest(self, stage: str | Stage) -> Checkpoint | None:
        """The newest intact checkpoint of a stage (damaged ones are skipped with a note), or None."""
        return find_checkpoint(self.stage_dir(stage), report=self.report)

    def require(self, stage: str | Stage) -> Checkpoint:
        """The newest intact checkpoint of a stage, or :class:`StageMissing` saying how to train it."""
        st = get_stage(stage)
        ckpt = self.latest(st)
        if ckpt is None:
            raise StageMissing(f"{self.stage_dir(st)} has no checkpoint: the {st.title} ({st.name}) is not trained "
                               f"yet. To train it, {st.how_to_train(self.path, self.cfg)}.")
        return ckpt

    def step(self, stage: str | Stage) -> int:
        """Steps trained so far (0 when the stage has no checkpoint)."""
        ckpt = self.latest(stage)
        return ckpt.step if ckpt is not None else 0

    def config(self, stage: str | Stage) -> Config:
        return self.require(stage).config()

    def is_complete(self, stage: str | Stage, cfg: Config) -> bool:
        """Whether the stage is trained to (at least) the step count ``cfg`` configures for it."""
        st = get_stage(stage)
        ckpt = self.latest(st)
        return ckpt is not None and ckpt.step >= st.steps(cfg)

    def load_net(self, stage: str | Stage, net: str | None = None, device="cpu"):
        """``(network in eval mode, its Config, its Checkpoint)``: ``net`` of a stage's newest
        intact checkpoint (default: the stage's generator, else its first network)."""
        from .nn import build_net
        st = get_stage(stage)
        net = net or st.generator or st.nets[0]
        ckpt = self.require(st)
        cfg = ckpt.config()
        module = ckpt.load(net, build_net(net, cfg))
        return module.to(device).eval(), cfg, ckpt

    def generator(self, stage: str | Stage, device="cpu"):
        """A generator stage's face renderer (has ``style`` and ``render``), its Config and Checkpoint."""
        st = get_stage(stage)
        if st.generator is None:
            raise StageMissing(f"stage {st.name!r} ({st.title}) renders no faces; generator stages are "
                               f"{', '.join(generator_stages())}")
        return self.load_net(st, st.generator, device)

    def maskvae(self, device="cpu"):
        """The trained MaskVAE (eval mode), or StageMissing naming notebook 01."""
        return self.load_net("vae", "maskvae", device)[0]

    def trained(self, stages=None) -> list[str]:
        """The stages (default: every generator stage, ablation order) that have a checkpoint."""
        return [s for s in (stages or generator_stages()) if self.has(s)]

    def editing_stage(self) -> str | None:
        """The stage an editor uses by default: the method's most trained generator (EBST, then stage I)."""
        method = [s for s in generator_stages() if get_stage(s).role == "generator"]
        return next((s for s in reversed(method) if self.has(s)), None)

    def training_record(self, stage: str | Stage) -> dict:
        """How much training a generator stage has had: its steps and its generator updates. A stage
        that starts from another one (EBST from stage I) adds that one's steps (those of its
        checkpoint present now), and counts ``updates_per_step`` updates a step (Algorithm 1: an
        EBST iteration updates the DMN twice)."""
        st = get_stage(stage)
        steps = self.require(st).step
        if st.starts_from is None:
            return {"steps": steps, "generator_updates": steps * st.updates_per_step}
        pre = self.step(st.starts_from)
        return {"steps": steps, f"pretrained_{st.starts_from}_steps": pre,
                "generator_updates": pre + st.updates_per_step * steps}

    def lock(self, stage: str | Stage) -> StageLock:
        return StageLock(self.stage_dir(stage), report=self.report)

    # --- records ------------------------------------------------------------------------------
    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    def read_metrics(self) -> dict:
        return read_json(self.metrics_file) if self.metrics_file.exists() else {}

    def record_metrics(self, section: str, values: dict) -> dict:
        """Merge ``values`` into ``metrics.json`` under ``section`` (atomic); returns the whole file."""
        metrics = self.read_metrics()
        metrics[section] = {**metrics.get(section, {}), **values}
        atomic_write_json(self.metrics_file, metrics)
        return metrics

    def log_file(self, stage: str | Stage) -> Path:
        return self.stage_dir(stage) / "log.jsonl"

    def read_log(self, stage: str | Stage) -> list[dict]:
        """The ``log.jsonl`` records of a stage (one dict per logged step)."""
        return read_jsonl(self.log_file(stage))

    def figure_path(self, name: str) -> Path:
        """Where a notebook saves a figure: ``<run>/figures/<name>.png`` (name starts with NN_)."""
        return self.path / "figures" / f"{name}.png"

    def latest_sample(self, stage: str | Stage) -> Path:
        """The newest sample grid a stage saved during training."""
        st = get_stage(stage)
        found = sorted((self.stage_dir(st) / "samples").glob("step_*.png"))
        if not found:
            raise StageMissing(f"{self.stage_dir(st) / 'samples'} has no sample grid yet. To train the "
                               f"{st.title}, {st.how_to_train(self.path, self.cfg)}.")
        return found[-1]

    @property
    def pipeline_file(self) -> Path:
        return self.path / "pipeline.json"

    @property
    def notebooks_dir(self) -> Path:
        return self.path / "notebooks"
