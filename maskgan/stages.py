"""The training stages of a run, declared once each.

A *stage* is one thing the kit trains into a run directory: the MaskVAE, the DMN's stage-I
pretraining, EBST (Algorithm 1), and, for the evaluation (Sec. 4), the face parser, the
Pix2PixHD-m baseline and the equal-updates control. One :class:`Stage` declaration says
everything the rest of the kit needs to know about it:

* its name, title and trainer (a :class:`maskgan.train.loop.Trainer` subclass, named lazily so this
  module sits below the training code);
* its step budget and batch size as functions of the config;
* the networks its checkpoints hold (``<net>.safetensors``) and which of them renders faces;
* the stages it needs (EBST needs the MaskVAE) and the one it starts from (EBST from stage I);
* the config keys that are its *identity*: a checkpoint resumes only under a config that agrees
  on them (cadence, evaluation and step counts never block a resume);
* the notebook and the command that train it, for messages.

Adding a stage is one :func:`register` call and one trainer class; the command line, the run
directory (:class:`maskgan.run.Run`), the evaluation and the error messages pick it up.

A note on words: a *stage* here is a training stage. EBST's Algorithm 1 has two phases of its own,
"stage I" (reconstruction) and "stage II" (simulated edits + blender); the ``dmn`` stage is stage I
run alone, as pretraining, and the ``ebst`` stage alternates both.
"""
from __future__ import annotations

import importlib
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import Config, flatten
from .errors import ConfigError

__all__ = ["Stage", "STAGES", "register", "unregister", "get_stage", "generator_stages",
           "method_stages", "identity", "run_options", "ROLES"]

#: What a stage produces: the mask manifold, the method's generator, the ablation's baseline and
#: control generators, or the evaluation's face parser.
ROLES: tuple[str, ...] = ("mask", "generator", "baseline", "control", "parser")

#: Config keys that are never part of a stage's identity: performance knobs and step counts
#: (training longer is ``--extend-to``; the schedule total is stored in the checkpoint).
NOT_IDENTITY: tuple[str, ...] = ("data.num_workers", "train.channels_last", "train.compile", "train.vae_steps",
                                 "train.dmn_steps", "train.ebst_steps", "parser.steps")


@dataclass(frozen=True)
class Stage:
    name: str  # folder name in the run directory and CLI name
    title: str  # short human title, e.g. "EBST" (tables, progress bars, messages)
    role: str  # one of ROLES
    trainer: str | type  # Trainer subclass, or "module:Class" imported on first use
    steps: Callable[[Config], int]  # configured number of training steps (the LR schedule's length)
    batch_size: Callable[[Config], int]  # batch per process
    nets: tuple[str, ...]  # networks saved in each checkpoint as <net>.safetensors
    identity: tuple[str, ...]  # dotted config keys (or prefixes) that must match to resume
    generator: str | None = None  # the net that renders faces (has style() and render())
    needs: tuple[str, ...] = ()  # stages that must hold a checkpoint before this one trains
    starts_from: str | None = None  # stage whose weights it starts from when present (EBST <- dmn)
    updates_per_step: int = 1  # generator updates per step (an EBST iteration updates the DMN twice)
    notebook: str | None = None  # the notebook that trains it (without .ipynb)
    summary: str = ""  # one line: what the stage does, with the paper reference
    shipped: tuple[str, ...] | None = None  # nets the kit's pretrained/ copy keeps (default: the generator/first)

    def trainer_class(self) -> type:
        if isinstance(self.trainer, str):
            module, _, name = self.trainer.partition(":")
            return getattr(importlib.import_module(module), name)
        return self.trainer

    def weights_file(self, net: str | None = None) -> str:
        """``<net>.safetensors`` for ``net`` (default: the generator, else the first saved net)."""
        net = net or self.generator or self.nets[0]
        if net not in self.nets:
            raise ConfigError(f"stage {self.name!r} saves {', '.join(self.nets)}; it has no net {net!r}")
        return f"{net}.safetensors"

    def shipped_nets(self) -> tuple[str, ...]:
        """The networks a shipped copy of this stage keeps: what renders or parses, and what continuing
        its training needs (stage I's D, so EBST can start from shipped weights; EBST's blender)."""
        return self.shipped or ((self.generator,) if self.generator else self.nets[:1])

    def command(self, run_dir, cfg: Config | None = None) -> str:
        """The command that trains this stage into ``run_dir``, with the options that give ``cfg``
        (:func:`run_options`): a hint must train what the run was configured for, not the default preset."""
        return _cli(f"train {self.name}", run_dir, cfg)

    def how_to_train(self, run_dir, cfg: Config | None = None) -> str:
        """One sentence naming the notebook (if any) and the command that train this stage, both
        carrying the preset and overrides of ``cfg`` (the run's config, when the caller has it)."""
        cmd = f"`{self.command(run_dir, cfg)}`"
        if self.notebook:
            return (f"run notebook {self.notebook}.ipynb with the same parameters "
                    f"(`{_cli(f'pipeline --only {self.notebook[:2]}', run_dir, cfg)}`), or {cmd}")
        return f"run {cmd}"


def _cli(command: str, run_dir, cfg: Config | None) -> str:
    # The folder as an absolute path: a hint printed by a notebook kernel (working directory
    # notebooks/) is run from a terminal elsewhere. "RUN_DIR" and other placeholders stay as they are.
    folder = Path(run_dir)
    where = os.path.abspath(folder) if folder.exists() else str(folder)
    options = run_options(cfg)
    return f"python -m maskgan {command} --run-dir {shlex.quote(where)}" + (f" {options}" if options else "")


#: Config keys that have an option of their own on the command line (the others go through --set).
_OPTION_OF = {"data.dataset": "--data", "data.data_root": "--data-root", "device": "--device", "seed": "--seed"}


def run_options(cfg: Config | dict | None) -> str:
    """The command-line options that give ``cfg`` back, shell-quoted: ``--preset NAME`` (the preset
    that needs the fewest changes), then ``--data``, ``--data-root``, ``--device``, ``--seed`` and one
    ``--set KEY=VALUE`` for every other key where ``cfg`` differs from that preset. ``""`` for None.

    ``python -m maskgan train STAGE --run-dir R <these options>`` builds exactly ``cfg``, so a
    "train X first" hint trains what the run needs (a ``smoke`` run's MaskVAE at ``smoke``, not at
    the default ``cpu`` preset, whose weights would not load into it)."""
    if cfg is None:
        return ""
    from .config import PRESETS
    flat = flatten(cfg.to_dict() if isinstance(cfg, Config) else cfg)
    best = None
    for name, build in PRESETS.items():
        base = flatten(build().to_dict())
        differ = {k: v for k, v in flat.items() if base.get(k) != v}
        if best is None or len(differ) < len(best[1]):
            best = (name, differ)
    name, differ = best
    words = ["--preset", name]
    for key, option in _OPTION_OF.items():
        if differ.get(key) not in (None, ""):  # an empty value means "the preset's" to these options: --set it
            words += [option, str(differ.pop(key))]
    for key, value in sorted(differ.items()):
        words += ["--set", f"{key}={_set_value(value)}"]
    return " ".join(shlex.quote(w) for w in words)


def _set_value(value) -> str:
    """``--set`` reads a value as JSON, else as a string: a string that would read as JSON is quoted."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError:
            return value
    return json.dumps(value)


#: Stage name -> declaration, in training order (also the order of the ablation's columns).
STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add a stage to the registry (a name may be declared once)."""
    if stage.role not in ROLES:
        raise ConfigError(f"stage {stage.name!r}: role {stage.role!r} is not one of {', '.join(ROLES)}")
    if stage.name in STAGES:
        raise ConfigError(f"a stage named {stage.name!r} is already registered")
    unknown = [s for s in (*stage.needs, *([stage.starts_from] if stage.starts_from else [])) if s not in STAGES]
    if unknown:
        raise ConfigError(f"stage {stage.name!r} depends on unregistered stage(s) {', '.join(unknown)}")
    STAGES[stage.name] = stage
    return stage


def unregister(name: str) -> None:
    """Remove a stage (tests that declare a toy stage clean up with it)."""
    STAGES.pop(name, None)


def get_stage(name: str) -> Stage:
    if isinstance(name, Stage):
        return name
    if name not in STAGES:
        raise ConfigError(f"unknown training stage {name!r}; stages are {', '.join(STAGES)}")
    return STAGES[name]


def generator_stages() -> list[str]:
    """Every stage that renders faces, in ablation order: baseline, method, control."""
    order = {"baseline": 0, "generator": 1, "control": 2}
    gens = [s for s in STAGES.values() if s.generator is not None]
    return [s.name for s in sorted(gens, key=lambda s: order.get(s.role, 3))]


def method_stages() -> list[str]:
    """The paper's method in training order: the MaskVAE, then the generator stages (stage I, EBST)."""
    return [s.name for s in STAGES.values() if s.role in ("mask", "generator")]


def identity(stage: Stage | str, config: Config | dict) -> dict[str, object]:
    """The flattened config keys that identify ``stage``'s weights (see :class:`Stage`)."""
    stage = get_stage(stage)
    flat = flatten(config.to_dict() if isinstance(config, Config) else config)
    return {k: v for k, v in flat.items() if k not in NOT_IDENTITY
            and any(k == p or k.startswith(p + ".") for p in stage.identity)}


# --- the kit's stages ---------------------------------------------------------------------------

_OPTIM = ("train.betas", "train.lr_decay_fraction", "train.amp", "seed", "data")
_GAN = ("model.discriminator", "model.loss", "train.batch_size", "train.lr", *_OPTIM)

register(Stage(
    name="vae", title="MaskVAE", role="mask", trainer="maskgan.train.vae:MaskVAETrainer",
    steps=lambda c: c.train.vae_steps, batch_size=lambda c: c.train.vae_batch_size, nets=("maskvae",),
    identity=("model.maskvae", "model.loss.lambda_kl", "model.loss.vae_class_balance", "train.vae_batch_size",
              "train.vae_lr", *_OPTIM),
    notebook="01_maskvae_pretraining", summary="MaskVAE pretraining, the manifold of masks (Sec. 3.2, Eq. 3-5)"))
register(Stage(
    name="dmn", title="stage I", role="generator", trainer="maskgan.train.gan:DMNTrainer",
    steps=lambda c: c.train.dmn_steps, batch_size=lambda c: c.train.batch_size, nets=("dmn", "disc"),
    generator="dmn", identity=("model.dmn", *_GAN), notebook="03_dmn_stage1", shipped=("dmn", "disc"),
    summary="DMN pretraining with EBST's stage I alone (Sec. 3.1, Eq. 6-9)"))
register(Stage(
    name="ebst", title="EBST", role="generator", trainer="maskgan.train.gan:EBSTTrainer",
    steps=lambda c: c.train.ebst_steps, batch_size=lambda c: c.train.batch_size, nets=("dmn", "disc", "blender"),
    generator="dmn", identity=("model.dmn", "model.blender", "model.maskvae", "train.lambda_inter", *_GAN),
    needs=("vae",), starts_from="dmn", updates_per_step=2, notebook="04_ebst", shipped=("dmn", "blender"),
    summary="Editing Behavior Simulated Training, stage I and stage II alternating (Sec. 3.3, Algorithm 1)"))
register(Stage(
    name="p2p", title="Pix2PixHD-m", role="baseline", trainer="maskgan.train.baseline:P2PTrainer",
    steps=lambda c: c.train.dmn_steps, batch_size=lambda c: c.train.batch_size, nets=("p2p", "disc"),
    generator="p2p", identity=("model.dmn", *_GAN),
    summary="the ablation's baseline: the mask-only generator with stage I's losses (Sec. 4)"))
register(Stage(
    name="dmn_matched", title="stage I, EBST's updates", role="control", trainer="maskgan.train.gan:MatchedDMNTrainer",
    steps=lambda c: c.train.dmn_steps + 2 * c.train.ebst_steps, batch_size=lambda c: c.train.batch_size,
    nets=("dmn", "disc"), generator="dmn", identity=("model.dmn", *_GAN),
    summary="the ablation's control: stage I alone for as many generator updates as EBST in total"))
register(Stage(
    name="dmn_continued", title="stage I continued", role="control", trainer="maskgan.train.gan:ContinuedDMNTrainer",
    steps=lambda c: 2 * c.train.ebst_steps, batch_size=lambda c: c.train.batch_size, nets=("dmn", "disc"),
    generator="dmn", identity=("model.dmn", *_GAN), starts_from="dmn",
    summary="the ablation's second control: stage I continued from stage I for EBST's 2 x ebst_steps updates, "
            "with EBST's fresh schedule"))
register(Stage(
    name="parser", title="face parser", role="parser", trainer="maskgan.train.parser:ParserTrainer",
    steps=lambda c: c.parser.steps, batch_size=lambda c: c.parser.batch_size, nets=("parser",),
    identity=("parser", "train.betas", "train.lr_decay_fraction", "train.amp", "seed", "data"),
    summary="the face parser that scores generated faces (Sec. 4)"))
