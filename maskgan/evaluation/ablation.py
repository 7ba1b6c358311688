"""The paper's ablation on SynthFaces: Pix2PixHD-m vs DMN (stage I) vs DMN + EBST, one command.

MaskGAN's Sec. 4 compares the full method with a Pix2PixHD-m baseline and with the DMN trained
without EBST, and claims that EBST makes the DMN robust to edited masks. On SynthFaces the kit can
test that claim against ground-truth edits:

* (a) ``p2p``: the mask-only generator (:mod:`maskgan.nn.baseline`), stage I's losses, ``dmn_steps`` steps;
* (b) ``dmn``: the DMN after stage I only;
* (c) ``ebst``: the DMN after EBST (Algorithm 1), which starts from (b). (c) has therefore had
  *more* generator updates than (b) (:func:`maskgan.evaluation.run.training_record` records them
  next to the numbers), so
* (b') ``dmn_matched``: stage I alone for ``dmn_steps + 2 x ebst_steps`` steps, as many generator
  updates as (c) had in total, is the control: (c) against (b') measures the simulated edits, not
  the extra training. (At the cpu preset on SynthFaces, b' matched or beat c: see the README.)

:func:`run_ablation` trains whatever the run directory lacks, in dependency order (the MaskVAE and
the stage-I DMN before EBST), resuming unfinished stages, then calls :func:`evaluate_run`.
"""
from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..train.checkpoint import latest_checkpoint

__all__ = ["ABLATION_STAGES", "stage_total_steps", "stage_is_complete", "run_ablation"]

#: Everything the ablation needs, in training order (EBST reads the MaskVAE and the stage-I DMN).
ABLATION_STAGES: tuple[str, ...] = ("vae", "dmn", "ebst", "p2p", "dmn_matched", "parser")


def stage_total_steps(stage: str, cfg: Config) -> int:
    """The configured length of a training stage (p2p trains as long as stage I; dmn_matched as many
    generator updates as stage I + EBST, each EBST iteration counting two)."""
    tc = cfg.train
    table = {"vae": tc.vae_steps, "dmn": tc.dmn_steps, "ebst": tc.ebst_steps, "p2p": tc.dmn_steps,
             "dmn_matched": tc.dmn_steps + 2 * tc.ebst_steps, "parser": tc.parser_steps}
    if stage not in table:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(table)}")
    return table[stage]


def stage_is_complete(run_dir: Path | str, stage: str, cfg: Config) -> bool:
    """Whether ``<run_dir>/<stage>`` holds a checkpoint at (or past) the configured number of steps."""
    ckpt = latest_checkpoint(Path(run_dir) / stage)
    return ckpt is not None and int(ckpt.name.rsplit("_", 1)[1]) >= stage_total_steps(stage, cfg)


def run_ablation(run_dir: Path | str, cfg: Config, *, n: int | None = None, n_edits: int | None = None,
                 device: str | None = None, progress: bool = True) -> dict:
    """Train the missing stages of the ablation with ``cfg`` into ``run_dir``, then evaluate it.

    A stage without a checkpoint is trained from scratch; one with an unfinished checkpoint is
    resumed (its saved config must equal ``cfg``, or training stops with the differences); a
    finished one is kept. Returns :func:`maskgan.evaluation.evaluate_run`'s result (also written to
    ``metrics.json``), plus ``trained_now``: the stages this call trained.
    """
    from ..train import train
    from .run import evaluate_run
    run_dir = Path(run_dir)
    trained = []
    for stage in ABLATION_STAGES:
        if stage_is_complete(run_dir, stage, cfg):
            if progress:
                print(f"{stage}: already trained, kept")
            continue
        resume = latest_checkpoint(run_dir / stage) is not None
        if progress:
            print(f"{stage}: {'resuming' if resume else 'training'} ({stage_total_steps(stage, cfg)} steps)")
        train(stage, cfg, run_dir, resume=resume, device=device, progress=progress)
        trained.append(stage)
    result = evaluate_run(run_dir, n, n_edits=n_edits, device=device, cfg=cfg, progress=progress)
    return {**result, "trained_now": trained}
