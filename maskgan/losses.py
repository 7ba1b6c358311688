"""MaskGAN's losses (paper Eq. 3-9) as pure functions that return named terms.

* **Adversarial** (Eq. 7): ``"lsgan"`` (least squares, the authors' demo default), ``"hinge"``, or
  ``"original"`` (Eq. 7's log form, computed on logits with ``binary_cross_entropy_with_logits``;
  the generator side is the usual non-saturating ``-log D(fake)``). Each has a generator side
  (:func:`gan_generator_loss`) and a discriminator side (:func:`gan_discriminator_loss`). Like the
  demo, the loss of each discriminator scale is averaged over patches and the scales are *summed*.
* **Feature matching** (Eq. 8, :func:`feature_matching_loss`): L1 between the discriminator's
  features on the fake and the (detached) real image, every layer but the prediction, each term
  weighted ``4 / (n_layers + 1) / num_D`` (Pix2PixHD's weighting, kept by the demo).
* **Perceptual** (Eq. 9, :func:`perceptual_loss`): L1 between VGG-19 relu1_1..relu5_1 features of
  fake and (detached) real, layer weights 1/32, 1/16, 1/8, 1/4, 1.
* **MaskVAE** (Eq. 3-5, :func:`maskvae_loss`): per-pixel cross-entropy + ``lambda_KL`` x KL.

The generator objective (Eq. 6) ``L = L_adv + lambda_feat L_feat + lambda_percept L_percept`` is
assembled by :func:`generator_loss`; the discriminator's by :func:`discriminator_loss`. Both return
a dict of the *unweighted* terms plus ``"total"`` (weighted, the one to call ``backward`` on).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "GAN_MODES", "VGG_LAYER_WEIGHTS", "gan_generator_loss", "gan_discriminator_loss", "feature_matching_loss",
    "perceptual_loss", "kl_divergence", "maskvae_loss", "generator_loss", "discriminator_loss",
]

GAN_MODES: tuple[str, ...] = ("lsgan", "hinge", "original")
#: Weights of relu1_1 .. relu5_1 in the perceptual loss (as the demo / Pix2PixHD).
VGG_LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def _predictions(outputs) -> list[torch.Tensor]:
    """The per-scale predictions of a discriminator output: ``outputs[scale][-1]``.

    Also accepts a list of prediction tensors or a single tensor.
    """
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    preds = [o[-1] if isinstance(o, (list, tuple)) else o for o in outputs]
    if not preds or not all(isinstance(p, torch.Tensor) for p in preds):
        raise TypeError("expected discriminator outputs: a tensor, a list of tensors, or a list (per scale) of "
                        "lists (per layer) of tensors")
    return preds


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown gan_mode {mode!r}; expected one of {', '.join(GAN_MODES)}")


def _real_fake_term(pred: torch.Tensor, real: bool, mode: str, for_discriminator: bool) -> torch.Tensor:
    if mode == "lsgan":
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))
    if mode == "original":
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, 1.0 if real else 0.0))
    # hinge
    if not for_discriminator:
        return -pred.mean()
    return F.relu(1.0 - pred).mean() if real else F.relu(1.0 + pred).mean()


def gan_generator_loss(pred_fake, mode: str = "lsgan") -> torch.Tensor:
    """Generator side of Eq. 7 on D's outputs for fake images, summed over scales.

    lsgan: ``mean((D(fake) - 1)^2)``; hinge: ``-mean(D(fake))``; original: ``BCE(D(fake), 1)``.
    """
    _check_mode(mode)
    return sum(_real_fake_term(p, True, mode, for_discriminator=False) for p in _predictions(pred_fake))


def gan_discriminator_loss(pred_real, pred_fake, mode: str = "lsgan") -> dict[str, torch.Tensor]:
    """Discriminator side of Eq. 7: ``{"real", "fake"}``, each summed over scales.

    Pass the outputs for fake images computed on *detached* fakes. lsgan: ``mean((D(real)-1)^2)``
    and ``mean(D(fake)^2)``; hinge: ``mean(relu(1 - D(real)))`` and ``mean(relu(1 + D(fake)))``;
    original: ``BCE(D(real), 1)`` and ``BCE(D(fake), 0)``.
    """
    _check_mode(mode)
    return {
        "real": sum(_real_fake_term(p, True, mode, True) for p in _predictions(pred_real)),
        "fake": sum(_real_fake_term(p, False, mode, True) for p in _predictions(pred_fake)),
    }


def feature_matching_loss(feats_fake: Sequence[Sequence[torch.Tensor]],
                          feats_real: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """Discriminator feature matching, Eq. 8.

    ``feats_*[scale][layer]`` as returned by :class:`maskgan.nn.MultiScaleDiscriminator`. For each
    scale and each layer except the last (the prediction): ``L1(fake, real.detach())`` weighted by
    ``4 / (n_layers + 1) / num_D``, where a scale with ``n_layers`` stride layers has ``n_layers + 2``
    outputs.
    """
    if len(feats_fake) != len(feats_real) or not feats_fake:
        raise ValueError(f"feature matching needs the same number of scales for fake and real, got "
                         f"{len(feats_fake)} and {len(feats_real)}")
    num_d = len(feats_fake)
    total = feats_fake[0][0].new_zeros(())
    for fake, real in zip(feats_fake, feats_real):
        if len(fake) != len(real) or len(fake) < 2:
            raise ValueError(f"feature matching needs at least 2 layer outputs per scale, the same for fake and "
                             f"real; got {len(fake)} and {len(real)}")
        n_layers = len(fake) - 2
        weight = 4.0 / (n_layers + 1) / num_d
        for f, r in zip(fake[:-1], real[:-1]):
            total = total + weight * F.l1_loss(f, r.detach())
    return total


def perceptual_loss(vgg, fake: torch.Tensor, real: torch.Tensor,
                    layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS) -> torch.Tensor:
    """VGG perceptual loss, Eq. 9: ``sum_i w_i L1(VGG_i(fake), VGG_i(real))``, real detached.

    ``vgg`` is a :class:`maskgan.nn.VGG19Features` (or anything returning a list of feature maps).
    """
    if fake.shape != real.shape:
        raise ValueError(f"perceptual loss: fake {tuple(fake.shape)} and real {tuple(real.shape)} differ in shape")
    if len(layer_weights) != 5:
        raise ValueError(f"perceptual loss: {len(layer_weights)} layer weights for the 5 VGG layers relu1_1..relu5_1")
    # layers after the last non-zero weight are not computed at all
    n = max((i + 1 for i, w in enumerate(layer_weights) if w), default=0)
    if n == 0:
        return fake.new_zeros(())
    feats_fake = vgg(fake, n_layers=n)
    with torch.no_grad():
        feats_real = vgg(real, n_layers=n)
    return sum(w * F.l1_loss(f, r.detach()) for w, f, r in zip(layer_weights, feats_fake, feats_real))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` in the log-variance form (Eq. 4-5):
    ``-0.5 * sum(1 + logvar - mu^2 - exp(logvar))``.

    Reduction: **summed over latent dimensions, averaged over the batch** (the KL of one sample's
    latent code, independent of batch size). The demo ships no MaskVAE training code, so this is
    our choice; with ``lambda_KL = 1e-5`` and a per-pixel *mean* cross-entropy it keeps the KL a
    gentle regulariser, as the paper intends.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"kl_divergence: mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).flatten(1).sum(1).mean()


def maskvae_loss(logits: torch.Tensor, target: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                 lambda_kl: float = 1e-5, class_weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """MaskVAE objective, Eq. 3: ``{"ce", "kl", "total" = ce + lambda_kl * kl}``.

    ``target`` is a label map ``(N, H, W)`` of class ids or a one-hot mask ``(N, C, H, W)``; ``ce``
    is the per-pixel cross-entropy averaged over pixels and batch, weighted per class by
    ``class_weights`` when given (not in the paper; see ``LossConfig.vae_class_balance``).
    """
    if target.dim() == 4:
        target = target.argmax(dim=1)
    if target.shape != (logits.shape[0],) + tuple(logits.shape[2:]):
        raise ValueError(f"maskvae_loss: logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match; "
                         f"expected a target label map of shape {(logits.shape[0],) + tuple(logits.shape[2:])}")
    ce = F.cross_entropy(logits, target.long(), weight=class_weights)
    kl = kl_divergence(mu, logvar)
    return {"ce": ce, "kl": kl, "total": ce + lambda_kl * kl}


def generator_loss(pred_fake, pred_real, fake: torch.Tensor, real: torch.Tensor, vgg, cfg) -> dict[str, torch.Tensor]:
    """Eq. 6 for the generator: ``{"gan", "feat", "percept", "l1", "total"}``.

    ``pred_fake`` = D(mask, fake) *not* detached (gradients must reach the generator);
    ``pred_real`` = D(mask, real) (used for feature matching; detached inside). ``vgg`` may be
    ``None`` (``vgg_weights="none"``): ``percept`` is then 0. ``cfg`` is a
    :class:`maskgan.config.LossConfig` (``gan_mode``, ``lambda_feat``, ``lambda_percept``,
    ``lambda_l1``, ``vgg_layer_weights``).
    ``total = gan + lambda_feat * feat + lambda_percept * percept + lambda_l1 * l1``; the pixel L1
    term is not in the paper (``lambda_l1 = 0`` there); the ``cpu`` preset uses it instead of a VGG
    it cannot download (see :func:`maskgan.config` ``_cpu``).
    """
    gan = gan_generator_loss(pred_fake, cfg.gan_mode)
    feat = feature_matching_loss(pred_fake, pred_real) if cfg.lambda_feat else gan.new_zeros(())
    percept = (perceptual_loss(vgg, fake, real, cfg.vgg_layer_weights)
               if vgg is not None and cfg.lambda_percept else gan.new_zeros(()))
    l1 = (fake - real).abs().mean() if cfg.lambda_l1 else gan.new_zeros(())
    total = gan + cfg.lambda_feat * feat + cfg.lambda_percept * percept + cfg.lambda_l1 * l1
    return {"gan": gan, "feat": feat, "percept": percept, "l1": l1, "total": total}


def discriminator_loss(pred_real, pred_fake, cfg) -> dict[str, torch.Tensor]:
    """Eq. 7 for the discriminator: ``{"real", "fake", "total" = 0.5 * (real + fake)}``
    (the 0.5 as in Pix2PixHD's training script). ``pred_fake`` must come from detached fakes."""
    terms = gan_discriminator_loss(pred_real, pred_fake, cfg.gan_mode)
    terms["total"] = 0.5 * (terms["real"] + terms["fake"])
    return terms
