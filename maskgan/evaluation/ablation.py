"""The paper's ablation on SynthFaces: Pix2PixHD-m vs DMN (stage I) vs DMN + EBST, one command.

MaskGAN's Sec. 4 compares the full method with a Pix2PixHD-m baseline and with the DMN trained
without EBST, and claims that EBST makes the DMN robust to edited masks. On SynthFaces the kit can
test that claim against ground-truth edits:

* (a) ``p2p``: the mask-only generator (:mod:`maskgan.nn.baseline`), stage I's losses, ``dmn_steps`` steps;
* (b) ``dmn``: the DMN after stage I only;
* (c) ``ebst``: the DMN after EBST (Algorithm 1), which starts from (b). (c) has therefore had
  *more* generator updates than (b) (:meth:`maskgan.run.Run.training_record` records them next
  to the numbers), so
* (b') ``dmn_matched``: stage I alone for ``dmn_steps + 2 x ebst_steps`` steps, as many generator
  updates as (c) had in total, is the control: (c) against (b') measures the simulated edits, not
  the extra training. (At the cpu preset on SynthFaces, b' matched or beat c: see the README.)
* (b'') ``dmn_continued``: stage I *continued* from (b) for ``2 x ebst_steps`` steps with a fresh
  optimizer and schedule, exactly as EBST starts from (b): the same updates, the same schedule
  shape, no simulated edits. Cheaper than (b') and the closer control for a converged (b).

Every generator is also scored on user-like stroke edits (:mod:`maskgan.evaluation.strokes`), the
kind of edit the paper says EBST is for.

:func:`run_ablation` trains every registered stage the run directory lacks, in registration
order (the MaskVAE and the stage-I DMN before EBST), resuming unfinished ones, then calls
:func:`evaluate_run`.
"""
from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..run import Run
from ..stages import STAGES

__all__ = ["run_ablation"]


def run_ablation(run_dir: Path | str, cfg: Config, *, n: int | None = None, n_edits: int | None = None,
                 device: str | None = None, progress: bool = True):
    """Train the missing stages of the ablation with ``cfg`` into ``run_dir``, then evaluate it.

    A stage without a checkpoint is trained from scratch; one with an unfinished checkpoint is
    resumed (its saved config must agree with ``cfg`` on the stage's identity, or training stops
    with the differences); a finished one is kept. Returns :func:`maskgan.evaluation.evaluate_run`'s
    :class:`~maskgan.evaluation.records.Evaluation`, with ``trained_now``: the stages this call trained.
    """
    from ..train import train
    from .run import evaluate_run
    run = Run(run_dir)
    trained = []
    for stage in STAGES.values():
        if run.is_complete(stage, cfg):
            if progress:
                print(f"{stage.name}: already trained, kept")
            continue
        resume = run.has(stage)
        if progress:
            print(f"{stage.name}: {'resuming' if resume else 'training'} ({stage.steps(cfg)} steps)")
        train(stage.name, cfg, run.path, resume=resume, device=device, progress=progress)
        trained.append(stage.name)
    result = evaluate_run(run, n, n_edits=n_edits, device=device, cfg=cfg, progress=progress)
    result.trained_now = trained
    return result
