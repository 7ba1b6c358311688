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
:data:`BALANCE_SAMPLES` training masks; weights normalised to a mean of 1 per pixel); at the
``cpu`` preset's settings (500 steps, lr 4e-3) that parser reaches mIoU 0.71, pixel accuracy 0.97.
``parser_balance = 0`` is plain cross-entropy.

A parser is only a fair judge where it is accurate on *real* images, so :func:`evaluate_parser`
scores it on the real (rendered) test images first; :func:`maskgan.evaluation.evaluate_run`
records that number next to the scores of the generated images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..labels import NUM_CLASSES
from ..nn.parser import FaceParser
from .loop import Trainer

__all__ = ["ParserTrainer", "build_parser", "evaluate_parser", "class_weights", "BALANCE_SAMPLES"]

#: Training masks read to estimate the class frequencies of the balanced loss.
BALANCE_SAMPLES = 256


def build_parser(cfg) -> FaceParser:
    """The FaceParser of ``cfg.train`` (``parser_base``, ``parser_depth``); checks ``cfg.data.size`` fits."""
    tc = cfg.train
    net = FaceParser(base=tc.parser_base, depth=tc.parser_depth)
    net.check_size(cfg.data.size, cfg.data.size)
    return net


def class_weights(dataset, balance: float, num_classes: int = NUM_CLASSES,
                  samples: int = BALANCE_SAMPLES) -> torch.Tensor | None:
    """Cross-entropy weights ``freq_c ** -balance`` from the first ``samples`` masks of ``dataset``,
    normalised so that the average weight of a pixel is 1; ``None`` when ``balance == 0``. Classes
    rarer than 1e-4 (or absent from the sample) are weighted as if their frequency were 1e-4."""
    if balance == 0:
        return None
    counts = torch.zeros(num_classes, dtype=torch.float64)
    for i in range(min(samples, len(dataset))):
        counts += torch.bincount(dataset[i]["label"].flatten(), minlength=num_classes).double()
    freq = counts / counts.sum()
    w = freq.clamp_min(1e-4) ** -balance
    return (w / (w * freq).sum()).float()


class ParserTrainer(Trainer):
    """Stage ``parser``: cross-entropy between the parser's logits on ``I^t`` and the mask ``M^t``."""

    stage = "parser"

    @property
    def batch_size(self) -> int:
        return self.tc.parser_batch_size

    def total_steps(self) -> int:
        return self.tc.parser_steps

    def build(self) -> None:
        self.nets["parser"] = build_parser(self.cfg)
        self.saved = ["parser"]
        self.make_optimizer("parser", self.nets["parser"].parameters(), self.tc.parser_lr)
        self.weights = self.class_weights(self.tc.parser_balance)

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


@torch.no_grad()
def evaluate_parser(parser: FaceParser, dataset, n: int = 200, batch_size: int = 32, device=None) -> dict:
    """Pixel accuracy and mIoU of ``parser`` on the first ``n`` items of ``dataset`` (real images
    against their own masks), via :class:`maskgan.metrics.SegmentationMeter`. ``num_images`` is added."""
    from ..metrics import SegmentationMeter
    device = device or next(parser.parameters()).device
    meter = SegmentationMeter()
    n = min(n, len(dataset))
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        images = torch.stack([it["image"] for it in items]).to(device)
        labels = torch.stack([it["label"] for it in items]).to(device)
        meter.update(parser.parse(images), labels)
    return {**meter.compute(), "num_images": n}
