"""Dense Mapping Network training: stage I alone (pretraining) and EBST (paper Sec. 3.3, Algorithm 1).

**Stage I** (:class:`DMNTrainer`): ``I^out = DMN(M^t; style of (I^t, M^t))`` is pushed towards
``I^t`` with Eq. 6, ``L = L_adv + lambda_feat L_feat + lambda_percept L_percept``, while the
multi-scale discriminator learns real ``(M^t, I^t)`` against fake ``(M^t, I^out)``.

**Editing Behavior Simulated Training** (:class:`EBSTTrainer`) alternates, every iteration,

1. stage I as above (optimizer ``G``), and
2. stage II (optimizer ``GB``: DMN and alpha blender together): with the frozen MaskVAE,
   ``z^t = Enc(M^t)``, ``z^ref = Enc(M^ref)`` for a randomly chosen other training mask,
   ``z^inter = z^t + (z^ref - z^t) / lambda_inter`` and ``z^outer = z^t - (z^ref - z^t) / lambda_inter``
   (``lambda_inter = 2.5``), decoded to one-hot masks ``M^inter``, ``M^outer``. The DMN renders
   both with the style of ``(I^t, M^t)``; the blender mixes them, ``I^blend = alpha I^inter +
   (1 - alpha) I^outer``, and Eq. 6 pulls ``I^blend`` towards ``(I^t, M^t)``. The simulated edits
   teach the DMN to keep the style when the mask moves away from the one the image came with.

The discriminator sees ``I^out`` and ``I^blend`` as fakes. Fake and real go through D in one batch
(one call: consistent normalisation statistics, and one forward per backward under DDP); in
generator updates D is called without its DDP wrapper and with frozen weights, so only the
generator's gradients are synchronised.
"""
from __future__ import annotations

import torch

from ..labels import one_hot
from ..losses import discriminator_loss, generator_loss
from ..nn import build_blender, build_discriminator, build_dmn, build_maskvae, build_vgg, simulated_codes
from ..stages import get_stage
from ..errors import StageMissing, TrainingError
from .loop import SampleKey, Trainer

__all__ = ["DMNTrainer", "MatchedDMNTrainer", "ContinuedDMNTrainer", "EBSTTrainer"]


def _split(outputs, n: int):
    """Cut D's outputs of a (fake, real) batch into the fake and the real halves."""
    return ([[f[:n] for f in scale] for scale in outputs], [[f[n:] for f in scale] for scale in outputs])


class DMNTrainer(Trainer):
    """Stage I: the DMN learns to render ``(M^t, I^t)`` back into ``I^t`` (Eq. 6)."""

    stage = "dmn"

    def build(self) -> None:
        self.nets["dmn"] = build_dmn(self.cfg)
        self.nets["disc"] = build_discriminator(self.cfg)
        self.vgg = build_vgg(self.cfg)
        if self.vgg is not None:
            self.vgg.to(self.device)
        self.make_optimizer("G", self.nets["dmn"].parameters(), self.tc.lr)
        self.make_optimizer("D", self.nets["disc"].parameters(), self.tc.lr)

    def start_from_pretrained(self) -> None:
        """Load the weights of the stage this one starts from (``Stage.starts_from``: stage I's DMN and
        D; a blender where the start has one, as an imported generator may). A resumed run then
        restores its own checkpoint over them. Without a start, say so: training begins at random."""
        start = self.run.latest(self.spec.starts_from)
        if start is not None:
            for net in ("dmn", "disc", "blender"):  # an imported generator may come with a blender and no D
                if net in self.nets and start.weights(net).exists():
                    start.load(net, self.nets[net])
        else:
            print(f"note: {self.run.stage_dir(self.spec.starts_from)} has no checkpoint; {self.spec.title} starts "
                  f"from a randomly initialised DMN (the paper pretrains it with stage I first: "
                  f"`{get_stage(self.spec.starts_from).command(self.run_dir, self.cfg)}`)")

    def gan_update(self, mask: torch.Tensor, fake: torch.Tensor, real: torch.Tensor, g_opt: str,
                   prefix: str) -> dict[str, torch.Tensor]:
        """One generator update (optimizer ``g_opt``) and one discriminator update for ``fake``.

        ``fake`` was produced inside autocast and carries the generator's graph.
        """
        n, loss_cfg = fake.shape[0], self.cfg.model.loss
        disc = self.raw("disc")
        disc.requires_grad_(False)  # generator update: D's weights are fixed
        with self.autocast():
            pred_fake, pred_real = _split(disc(torch.cat([mask, mask]), torch.cat([fake, real])), n)
            g = generator_loss(pred_fake, pred_real, fake.float(), real, self.vgg, loss_cfg)
        self.optimize(g_opt, g["total"])
        disc.requires_grad_(True)
        with self.autocast():
            pred_fake, pred_real = _split(self.nets["disc"](torch.cat([mask, mask]),
                                                            torch.cat([fake.detach(), real])), n)
            d = discriminator_loss(pred_real, pred_fake, loss_cfg)
        self.optimize("D", d["total"])
        return {**{f"{prefix}g/{k}": v for k, v in g.items()}, **{f"{prefix}d/{k}": v for k, v in d.items()}}

    def stage_one(self, mask: torch.Tensor, image: torch.Tensor, prefix: str = "") -> dict[str, torch.Tensor]:
        with self.autocast():
            fake = self.nets["dmn"](mask, image)
        return self.gan_update(mask, fake, image, "G", prefix)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.stage_one(one_hot(batch["label"]), batch["image"])

    @torch.no_grad()
    def samples(self, batch: dict):
        dmn = self.raw("dmn")
        dmn.eval()
        fake = dmn(one_hot(batch["label"]), batch["image"])
        dmn.train()
        rows = [[batch["label"][i], batch["image"][i], fake[i]] for i in range(len(fake))]
        rows = [sum(rows[i:i + 2], []) for i in range(0, len(rows), 2)]  # 2 faces a row
        return rows, ["mask M^t", "image I^t", "DMN output"] * 2


class ContinuedDMNTrainer(DMNTrainer):
    """Stage ``dmn_continued``: stage I *continued* from the pretrained stage I for ``2 x ebst_steps``
    steps, with a fresh optimizer and LR schedule exactly as EBST starts (:meth:`start_from_pretrained`).
    It gets as many generator updates as EBST and the same schedule shape, and no simulated edits:
    EBST against this control isolates Algorithm 1's stage II (maskgan.evaluation)."""

    stage = "dmn_continued"

    def build(self) -> None:
        super().build()
        self.start_from_pretrained()


class MatchedDMNTrainer(DMNTrainer):
    """Stage ``dmn_matched``: stage I alone for as many generator updates as EBST gets in total
    (``dmn_steps + 2 x ebst_steps``: every EBST iteration updates the DMN twice; the budget is
    declared in :mod:`maskgan.stages`). The control of the ablation that tells the simulated edits
    apart from the extra training (maskgan.evaluation)."""

    stage = "dmn_matched"


class EBSTTrainer(DMNTrainer):
    """Algorithm 1: stage I and stage II alternate every iteration; the MaskVAE stays frozen."""

    stage = "ebst"

    def build(self) -> None:
        super().build()
        for need in self.spec.needs:  # the MaskVAE (Algorithm 1 encodes and decodes masks with it)
            if not self.run.has(need):
                raise StageMissing(f"EBST needs a trained MaskVAE, and {self.run.stage_dir(need)} has no checkpoint. "
                                   f"To train it, {get_stage(need).how_to_train(self.run_dir, self.cfg)}; then train EBST again.")
        vae_ckpt = self.run.require("vae")
        self.vae = vae_ckpt.load("maskvae", build_maskvae(self.cfg)).to(self.device).eval()
        self.vae.requires_grad_(False)
        self.nets["blender"] = build_blender(self.cfg)
        self.start_from_pretrained()
        self.make_optimizer("GB", list(self.nets["dmn"].parameters()) + list(self.nets["blender"].parameters()),
                            self.tc.lr)

    def batch_keys(self, step: int) -> list[SampleKey]:
        """The step's faces, then one reference mask ``M^ref`` per face: another training face chosen at
        random (seeded by the step), loaded as a label map alone by the data loader."""
        keys = super().batch_keys(step)
        n = len(self.dataset)
        chosen = {k.index for k in keys}
        if n <= len(chosen):
            raise TrainingError(f"EBST draws reference masks from other training faces, but the dataset has only "
                                f"{n} faces for a batch of {len(chosen)}")
        g = torch.Generator().manual_seed(self.cfg.seed * 7_919 + step)
        refs = []
        while len(refs) < len(keys):
            j = int(torch.randint(n, (1,), generator=g))
            if j not in chosen:
                refs.append(SampleKey(j, keys[0].epoch, ref=True))
        return keys + refs

    @torch.no_grad()
    def simulated_edits(self, mask: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Algorithm 1, lines 2-3: ``(M^inter, M^outer)`` decoded from the MaskVAE latent space."""
        _, _, z_inter, z_outer = simulated_codes(self.vae, mask, ref, self.tc.lambda_inter)
        return self.vae.decode_onehot(torch.cat([z_inter, z_outer])).chunk(2)

    def stage_two(self, mask: torch.Tensor, image: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
        m_inter, m_outer = self.simulated_edits(mask, ref)
        with self.autocast():
            # both edited masks in one DMN call, each with the style of (I^t, M^t)
            both = self.nets["dmn"](torch.cat([m_inter, m_outer]), torch.cat([image, image]),
                                    image_mask=torch.cat([mask, mask]))
            i_inter, i_outer = both.chunk(2)
            blend, _alpha = self.nets["blender"](i_inter, i_outer)
        return self.gan_update(mask, blend, image, "GB", "s2/")

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        mask, image = one_hot(batch["label"]), batch["image"]
        terms = self.stage_one(mask, image, "s1/")
        terms.update(self.stage_two(mask, image, one_hot(batch["ref_label"])))
        return terms

    @torch.no_grad()
    def samples(self, batch: dict):
        dmn, blender = self.raw("dmn"), self.raw("blender")
        dmn.eval()
        blender.eval()
        mask, image = one_hot(batch["label"]), batch["image"]
        ref = one_hot(batch["label"].roll(1, dims=0))
        m_inter, m_outer = self.simulated_edits(mask, ref)
        out = dmn(mask, image)
        i_inter = dmn.render(m_inter, dmn.style(image, mask))
        i_outer = dmn.render(m_outer, dmn.style(image, mask))
        blend, alpha = blender(i_inter, i_outer)
        dmn.train()
        blender.train()
        rows = [[batch["label"][i], image[i], out[i], m_inter[i].argmax(0), i_inter[i], m_outer[i].argmax(0),
                 i_outer[i], alpha[i] * 2 - 1, blend[i]] for i in range(min(4, len(image)))]
        return rows, ["M^t", "I^t", "I^out", "M^inter", "I^inter", "M^outer", "I^outer", "alpha", "I^blend"]
