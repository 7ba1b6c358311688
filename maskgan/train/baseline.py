"""Training the ablation's baseline, Pix2PixHD-m (stage ``p2p``): stage I's losses without the style path.

The baseline (:class:`maskgan.nn.baseline.MaskOnlyGenerator`) learns ``M^t -> I^t`` with exactly
the objective of DMN stage I (Eq. 6: ``L_adv + lambda_feat L_feat + lambda_percept L_percept``,
the same multi-scale discriminator on concat(mask, image)), the same optimizer settings and the
same number of steps (``train.dmn_steps``). The only difference from :class:`DMNTrainer` is the
generator: it never sees ``I^t``, so it cannot copy its style. That isolates what the
spatial-aware style encoder contributes when the ablation compares p2p with ``dmn`` and ``ebst``.
"""
from __future__ import annotations

import torch

from ..labels import one_hot
from ..nn import build_discriminator, build_vgg
from ..nn.baseline import build_p2p
from .gan import DMNTrainer

__all__ = ["P2PTrainer"]


class P2PTrainer(DMNTrainer):
    """Stage ``p2p``: the mask-only generator with the Eq. 6 losses, ``train.dmn_steps`` steps."""

    stage = "p2p"  # as many steps as stage I (maskgan.stages): the comparison with "dmn" is like for like

    def build(self) -> None:
        self.nets["p2p"] = build_p2p(self.cfg)
        self.nets["disc"] = build_discriminator(self.cfg)
        self.vgg = build_vgg(self.cfg)
        if self.vgg is not None:
            self.vgg.to(self.device)
        self.make_optimizer("G", self.nets["p2p"].parameters(), self.tc.lr)
        self.make_optimizer("D", self.nets["disc"].parameters(), self.tc.lr)

    def stage_one(self, mask: torch.Tensor, image: torch.Tensor, prefix: str = "") -> dict[str, torch.Tensor]:
        with self.autocast():
            fake = self.nets["p2p"](mask)  # no style: the image is only the target
        return self.gan_update(mask, fake, image, "G", prefix)

    @torch.no_grad()
    def samples(self, batch: dict):
        net = self.raw("p2p")
        net.eval()
        fake = net(one_hot(batch["label"]))
        net.train()
        rows = [[batch["label"][i], batch["image"][i], fake[i]] for i in range(len(fake))]
        rows = [sum(rows[i:i + 2], []) for i in range(0, len(rows), 2)]  # 2 faces a row
        return rows, ["mask M^t", "image I^t", "p2p output"] * 2
