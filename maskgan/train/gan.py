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
from ..nn import build_blender, build_discriminator, build_dmn, build_maskvae, build_vgg, interpolate
from .checkpoint import latest_checkpoint, load_weights
from .loop import Trainer, TrainingError

__all__ = ["DMNTrainer", "MatchedDMNTrainer", "EBSTTrainer"]


def _split(outputs, n: int):
    """Cut D's outputs of a (fake, real) batch into the fake and the real halves."""
    return ([[f[:n] for f in scale] for scale in outputs], [[f[n:] for f in scale] for scale in outputs])


class DMNTrainer(Trainer):
    """Stage I: the DMN learns to render ``(M^t, I^t)`` back into ``I^t`` (Eq. 6)."""

    stage = "dmn"

    def total_steps(self) -> int:
        return self.tc.dmn_steps

    def build(self) -> None:
        self.nets["dmn"] = build_dmn(self.cfg)
        self.nets["disc"] = build_discriminator(self.cfg)
        self.vgg = build_vgg(self.cfg)
        if self.vgg is not None:
            self.vgg.to(self.device)
        self.saved = ["dmn", "disc"]
        self.make_optimizer("G", self.nets["dmn"].parameters(), self.tc.lr)
        self.make_optimizer("D", self.nets["disc"].parameters(), self.tc.lr)

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
        return {**{f"{prefix}g_{k}": v for k, v in g.items()}, **{f"{prefix}d_{k}": v for k, v in d.items()}}

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


class MatchedDMNTrainer(DMNTrainer):
    """Stage ``dmn_matched``: stage I alone for as many generator updates as EBST gets in total
    (``dmn_steps + 2 x ebst_steps``: every EBST iteration updates the DMN twice). The control of the
    ablation that tells the simulated edits apart from the extra training (maskgan.evaluation)."""

    stage = "dmn_matched"

    def total_steps(self) -> int:
        return self.tc.dmn_steps + 2 * self.tc.ebst_steps


class EBSTTrainer(DMNTrainer):
    """Algorithm 1: stage I and stage II alternate every iteration; the MaskVAE stays frozen."""

    stage = "ebst"

    def total_steps(self) -> int:
        return self.tc.ebst_steps

    def build(self) -> None:
        super().build()
        vae_ckpt = latest_checkpoint(self.run_dir / "vae")
        if vae_ckpt is None:
            raise TrainingError(
                f"EBST needs a trained MaskVAE, and {self.run_dir / 'vae'} has no checkpoint: run "
                f"`python -m maskgan train vae --run-dir {self.run_dir}` (notebook 01) first")
        self.vae = load_weights(build_maskvae(self.cfg), vae_ckpt / "maskvae.safetensors").to(self.device).eval()
        self.vae.requires_grad_(False)
        dmn_ckpt = latest_checkpoint(self.run_dir / "dmn")
        if dmn_ckpt is not None:  # start from the stage-I pretrained DMN and D, as the paper does
            load_weights(self.nets["dmn"], dmn_ckpt / "dmn.safetensors")
            load_weights(self.nets["disc"], dmn_ckpt / "disc.safetensors")
        else:
            print(f"note: {self.run_dir / 'dmn'} has no checkpoint; EBST starts from a randomly initialised DMN "
                  "(the paper pretrains it with stage I first: `python -m maskgan train dmn`)")
        self.nets["blender"] = build_blender(self.cfg)
        self.saved = ["dmn", "disc", "blender"]
        self.make_optimizer("GB", list(self.nets["dmn"].parameters()) + list(self.nets["blender"].parameters()),
                            self.tc.lr)

    def _reference_masks(self, batch: dict, dataset) -> torch.Tensor:
        """M^ref: for each face, another training mask chosen at random (seeded by the step)."""
        g = torch.Generator().manual_seed(self.cfg.seed * 7_919 + self.step)
        names = set(batch["name"])
        if len(dataset) <= len(names):
            raise TrainingError(f"EBST draws reference masks from other training faces, but the dataset has only "
                                f"{len(dataset)} faces for a batch of {len(names)}")
        refs = []
        while len(refs) < len(batch["name"]):
            sample = dataset[int(torch.randint(len(dataset), (1,), generator=g))]
            if sample["name"] not in names:
                refs.append(sample["label"])
        return one_hot(torch.stack(refs).to(self.device))

    @torch.no_grad()
    def simulated_edits(self, mask: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Algorithm 1, lines 2-3: ``(M^inter, M^outer)`` decoded from the MaskVAE latent space."""
        z_t, z_ref = self.vae.encode(mask)[0], self.vae.encode(ref)[0]
        t = 1.0 / self.tc.lambda_inter  # z_inter = z_t + (z_ref - z_t) / lambda_inter
        both = self.vae.decode_onehot(torch.cat([interpolate(z_t, z_ref, t), interpolate(z_t, z_ref, -t)]))
        return both.chunk(2)

    def stage_two(self, mask: torch.Tensor, image: torch.Tensor, ref: torch.Tensor) -> dict[str, torch.Tensor]:
        m_inter, m_outer = self.simulated_edits(mask, ref)
        with self.autocast():
            # both edited masks in one DMN call, each with the style of (I^t, M^t)
            both = self.nets["dmn"](torch.cat([m_inter, m_outer]), torch.cat([image, image]),
                                    image_mask=torch.cat([mask, mask]))
            i_inter, i_outer = both.chunk(2)
            blend, _alpha = self.nets["blender"](i_inter, i_outer)
        return self.gan_update(mask, blend, image, "GB", "s2_")

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        mask, image = one_hot(batch["label"]), batch["image"]
        terms = self.stage_one(mask, image, "s1_")
        terms.update(self.stage_two(mask, image, self._reference_masks(batch, self.dataset)))
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
