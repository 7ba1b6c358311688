"""Evaluation of a run directory, and the paper's ablation on SynthFaces (MaskGAN Sec. 4).

MaskGAN's Sec. 4 evaluates *semantic-level* fidelity: a face parser segments each generated face
and the parse is compared with the mask the face was generated from, so a face that does not
follow its (possibly edited) mask scores low; FID measures how real the faces look. Its ablation
compares the full method with a Pix2PixHD-m baseline and with the DMN trained without EBST, and
claims that EBST makes the DMN **robust to edited masks**. SynthFaces adds what real data cannot
give: the ground-truth image of every edit, so edit quality is measured against the truth.

    from maskgan.evaluation import evaluate_run, format_eval_table, eval_figures
    result = evaluate_run("runs/demo")           # trains the parser if needed; writes metrics.json
    print(format_eval_table(result))
    result.stages["ebst"].edit.psnr              # typed records (maskgan.evaluation.records)
    figures = eval_figures("runs/demo", result)  # saved under runs/demo/figures/06_*.png

What :func:`evaluate_run` measures, for every generator stage in the run (``p2p``, ``dmn``, ``ebst``,
``dmn_matched``, ``dmn_continued``: every stage of :mod:`maskgan.stages` that renders faces):

* **mask fidelity** (Sec. 4's segmentation accuracy): parser pixel accuracy and mIoU of
  reconstructions ``DMN(M^t, style of (I^t, M^t))`` against ``M^t``, and of edits (an edited mask
  rendered in the original's style) against the edited mask;
* **edit fidelity** (SynthFaces only): PSNR / SSIM of the edit against the ground-truth edited
  render, per edit family, also inside and outside the edited region;
* **distribution**: SWD of reconstructions against real test images; FID when the Inception
  weights file is available (otherwise recorded as skipped, with how to get it);
* **user-like stroke edits** (:mod:`.strokes`): brush strokes as the app paints them, scored by the
  parser against the edited mask and by PSNR against the original away from the strokes;
* **MaskVAE**: held-out reconstruction mIoU and the smoothness of latent interpolations;
* references that make the numbers readable: the parser on real images (the ceiling of mask
  fidelity), the unedited original against the ground-truth edit ("no edit", the floor of edit
  fidelity), and SWD between two real sets (the floor of SWD).

:func:`run_ablation` trains whatever the ablation lacks (every registered stage), then evaluates;
:func:`learning_curve` measures every kept checkpoint of a stage (``python -m maskgan curves``).
"""
from __future__ import annotations

from .ablation import run_ablation
from .curves import curve_figure, learning_curve
from .records import Evaluation, MaskVAEEval, PairFidelity, Segmentation, StageEval
from .report import as_evaluation, eval_figures, format_eval_table, read_ablation, stage_title
from .run import evaluate_maskvae, evaluate_run, evaluation_config

__all__ = ["evaluate_run", "evaluation_config", "evaluate_maskvae", "format_eval_table", "eval_figures",
           "run_ablation", "read_ablation", "stage_title", "as_evaluation", "Evaluation", "StageEval", "Segmentation",
           "PairFidelity", "MaskVAEEval", "learning_curve", "curve_figure"]
