"""The face parser as a training stage: the instrument of MaskGAN's semantic-level evaluation.

MaskGAN's Sec. 4 judges whether a generated face *follows its mask* by segmenting the generated
image with a face parser and comparing the parse with the mask the face was generated from (its
"segmentation accuracy"; the authors' parser was trained on CelebAMask-HQ). The kit trains its own
parser, :class:`maskgan.nn.parser.FaceParser` (a small U-Net), on the training split of the run's
own dataset, as stage ``parser``: per-pixel cross-entropy on ``image -> label``. Being a
:class:`~maskgan.train.loop.Trainer`, it gets checkpoints, resume, logs and sample grids for free.

**Class balance.** Background, skin, hair and cloth cover ~90 % of a face's pixels; eyes, brows
and lips under 1 % each. With plain cross-entropy a small parser learns the big regions first and
the small parts late (64-px SynthFaces, ``base=8``: 400 steps of plain cross-entropy gave mIoU 0.28
on 100 test faces, every small part at IoU 0). The loss therefore weights class ``c`` by
``freq_c ** -parser_balance`` (0.5: inverse square root of its pixel frequency, estimated on up to
:data:`maskgan.data.BALANCE_SAMPLES` training masks; weights normalised to a mean of 1 per pixel); at the
``cpu`` preset's settings (500 steps, lr 4e-3) that parser reaches mIoU 0.71, pixel accuracy 0.97.
``parser.balance = 0`` is plain cross-entropy.

A parser is only a fair judge where it is accurate on *real* images, so
:func:`maskgan.evaluation.evaluate_run` scores it on the real (rendered) test images first and
records that number next to the scores of the generated images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nn import build_parser
from .loop import Trainer

__all__ = ["ParserTrainer"]

class ParserTrainer(Trainer):
    """Stage ``parser``: cross-entropy between the parser's logits on ``I^t`` and the mask ``M^t``."""

    stage = "parser"

    def build(self) -> None:
        self.nets["parser"] = build_parser(self.cfg)
        self.make_optimizer("parser", self.nets["parser"].parameters(), self.cfg.parser.lr)
        self.weights = self.class_weights(self.cfg.parser.balance)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        target = batch["label"]
        with self.autocast():
            logits = self.nets["parser"](batch["image"])
            loss = F.cross_entropy(logits.float(), target, weight=self.weights)
        self.optimize("parser", loss)
        return {"total": loss, "pixel_acc": (logits.detach().argmax(1) == target).float().mean()}

    @torch.no_grad()
    def samples(self, batch: dict):
        parse = self.raw("parser").parse(batch["image"])  # eval mode inside, training mode restored
        rows = [[batch["image"][i], batch["label"][i], parse[i]] for i in range(len(parse))]
        rows = [sum(rows[i:i + 2], []) for i in range(0, len(rows), 2)]  # 2 faces a row
        return rows, ["image", "mask", "parse"] * 2
