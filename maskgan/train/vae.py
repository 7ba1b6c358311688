"""MaskVAE pretraining (paper Sec. 3.2, Eq. 3-5): learn a manifold of face masks.

Each step encodes one-hot masks, samples ``z = mu + sigma * eps`` (the reparameterisation trick),
decodes class logits and minimises per-pixel cross-entropy + ``lambda_KL`` x KL. The trained
MaskVAE is frozen afterwards: EBST (Algorithm 1) uses its latent space to simulate edits, and the
interactive widgets use it to interpolate between two faces' masks.
"""
from __future__ import annotations

import torch

from ..labels import one_hot
from ..losses import maskvae_loss
from ..nn import build_maskvae, interpolate, logits_to_labels
from .loop import Trainer

__all__ = ["MaskVAETrainer"]


class MaskVAETrainer(Trainer):
    stage = "vae"

    def build(self) -> None:
        self.nets["maskvae"] = build_maskvae(self.cfg)
        self.make_optimizer("vae", self.nets["maskvae"].parameters(), self.tc.vae_lr)
        self.weights = self.class_weights(self.cfg.model.loss.vae_class_balance)  # None at 0 (Eq. 3)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        target = batch["label"]
        with self.autocast():
            logits, mu, logvar = self.nets["maskvae"](one_hot(target))
            terms = maskvae_loss(logits.float(), target, mu.float(), logvar.float(), self.cfg.model.loss.lambda_kl,
                                 self.weights)
        self.optimize("vae", terms["total"])
        terms["pixel_acc"] = (logits.detach().argmax(1) == target).float().mean()
        return terms

    @torch.no_grad()
    def samples(self, batch: dict):
        vae = self.raw("maskvae")
        was_training = vae.training
        vae.eval()
        labels = batch["label"]
        recon = logits_to_labels(vae(one_hot(labels))[0])
        z = vae.encode(one_hot(labels[:2]))[0]
        # last row: decoded interpolation / extrapolation between the first two masks, t = -0.5 .. 1.5
        strip = [logits_to_labels(vae.decode(interpolate(z[:1], z[1:2], t)))[0] for t in (-0.5, 0, 1 / 3, 2 / 3, 1, 1.5)]
        vae.train(was_training)
        pairs = [[labels[i], recon[i]] for i in range(len(labels))]
        rows = [sum(pairs[i:i + 3], []) for i in range(0, len(pairs), 3)] + [strip]  # 3 (mask, recon) pairs a row
        return rows, ["mask", "reconstruction"] * 3

