"""MaskVAE, paper Sec. 3.2 and Eq. 3-5: a variational autoencoder over one-hot face masks.

Its latent space is a smooth *manifold of masks*: decoding points between (and slightly beyond)
two encoded masks gives plausible in-between layouts. Editing Behavior Simulated Training
(Algorithm 1) uses exactly that to simulate user edits of a target mask ``M^t`` towards a
reference mask ``M^ref``::

    z_inter = z_t + (z_ref - z_t) / 2.5   ->  interpolate(z_t, z_ref,  0.4)
    z_outer = z_t - (z_ref - z_t) / 2.5   ->  interpolate(z_t, z_ref, -0.4)

Architecture (as the authors' demo, which builds it for 512x512):

* encoder: ``log2(size/4)`` x [4x4 stride-2 conv -> BatchNorm -> LeakyReLU(0.2)], widths ``base``,
  ``2 base``, ... (2048 channels at 4x4 for 512 / base 32), then two linear heads: ``mu`` and
  ``logvar`` (the log-variance form: ``std = exp(0.5 * logvar)``);
* decoder: linear ``latent -> C x 4 x 4`` + ReLU, then [nearest x2 upsample -> replication pad 1 ->
  3x3 conv -> BatchNorm(eps 1e-3) -> LeakyReLU(0.2)] back to width ``base``, and a last
  upsample-pad-conv to ``num_classes`` **logits** (no activation; the loss is a per-pixel
  cross-entropy, :func:`maskgan.losses.maskvae_loss`).

A decoded mask is ``argmax`` over classes, then one-hot again (:func:`logits_to_onehot`) before it
is fed to the DMN. Weights keep PyTorch's default initialisation, as in the demo.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..labels import NUM_CLASSES, one_hot

__all__ = ["MaskVAE", "interpolate", "simulated_codes", "logits_to_labels", "logits_to_onehot"]


def logits_to_labels(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` class logits -> ``(N, H, W)`` int64 label map (argmax over classes)."""
    if logits.dim() != 4:
        raise ValueError(f"expected logits of shape (N, C, H, W), got {tuple(logits.shape)}")
    return logits.argmax(dim=1)


def logits_to_onehot(logits: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` logits -> one-hot ``(N, C, H, W)`` float mask (argmax, then one-hot).

    Not differentiable (argmax), as in the paper: the DMN receives a clean discrete mask.
    """
    return one_hot(logits_to_labels(logits), num_classes=logits.shape[1], dtype=logits.dtype)


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, t) -> torch.Tensor:
    """``z_a + t * (z_b - z_a)``: ``t = 0`` gives ``z_a``, ``t = 1`` gives ``z_b``.

    ``t`` may lie outside [0, 1] (extrapolation: EBST's ``z_outer`` is ``t = -0.4``, ``z_inter`` is
    ``t = 1 / lambda_inter = 0.4``). ``t`` is a number, or a tensor of shape ``(N,)`` for one value
    per sample.
    """
    if z_a.shape != z_b.shape:
        raise ValueError(f"interpolate: latents have different shapes {tuple(z_a.shape)} and {tuple(z_b.shape)}")
    if isinstance(t, torch.Tensor) and t.dim() == 1:
        t = t.to(z_a).view(-1, *([1] * (z_a.dim() - 1)))
    return z_a + t * (z_b - z_a)


def simulated_codes(vae, mask: torch.Tensor, ref: torch.Tensor, lambda_inter: float):
    """Algorithm 1, lines 1-2: ``(z^t, z^ref, z^inter, z^outer)`` for one-hot masks ``M^t`` and ``M^ref``:
    the encoder means, ``z^inter = z^t + (z^ref - z^t) / lambda_inter`` and
    ``z^outer = z^t - (z^ref - z^t) / lambda_inter``. EBST decodes the last two into its simulated edits."""
    z_t, z_ref = vae.encode(mask)[0], vae.encode(ref)[0]
    t = 1.0 / lambda_inter
    return z_t, z_ref, interpolate(z_t, z_ref, t), interpolate(z_t, z_ref, -t)


class MaskVAE(nn.Module):
    """Variational autoencoder of one-hot masks (Sec. 3.2). ``size`` must be a power of two >= 8.

    ``forward(onehot) -> (logits, mu, logvar)``. In training mode ``z`` is sampled
    (:meth:`reparameterize`); in eval mode ``z = mu`` (deterministic reconstructions).
    """

    def __init__(self, size: int = 512, base_ch: int = 32, latent_dim: int = 1024, num_classes: int = NUM_CLASSES):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"MaskVAE needs a power-of-two mask size >= 8 (its encoder halves it down to 4x4); got {size}")
        self.size, self.base_ch, self.latent_dim, self.num_classes = size, base_ch, latent_dim, num_classes
        self.depth = int(math.log2(size // 4))  # stride-2 convs from size to 4x4
        self.top_ch = base_ch * 2 ** (self.depth - 1)  # width at 4x4

        enc: list[nn.Module] = []
        c_in = num_classes
        for i in range(self.depth):
            c_out = base_ch * 2 ** i
            enc.append(nn.Sequential(nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.encoder = nn.Sequential(*enc)
        flat = self.top_ch * 4 * 4
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_logvar = nn.Linear(flat, latent_dim)

        self.fc_dec = nn.Linear(latent_dim, flat)
        dec: list[nn.Module] = []
        c_in = self.top_ch
        for _ in range(self.depth - 1):
            dec.append(nn.Sequential(
                nn.Upsample(scale_factor=2, mode="nearest"), nn.ReplicationPad2d(1), nn.Conv2d(c_in, c_in // 2, 3),
                nn.BatchNorm2d(c_in // 2, eps=1e-3), nn.LeakyReLU(0.2)))
            c_in //= 2
        dec.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReplicationPad2d(1),
                                 nn.Conv2d(c_in, num_classes, 3)))
        self.decoder = nn.Sequential(*dec)

    def _check_mask(self, onehot: torch.Tensor) -> None:
        if onehot.dim() != 4 or onehot.shape[1] != self.num_classes:
            got = f"{onehot.shape[1]} channels" if onehot.dim() == 4 else f"shape {tuple(onehot.shape)}"
            raise ValueError(f"MaskVAE expects a {self.num_classes}-channel one-hot mask (N, {self.num_classes}, H, W), "
                             f"got {got} (turn a label map into one with maskgan.labels.one_hot)")
        if tuple(onehot.shape[2:]) != (self.size, self.size):
            raise ValueError(f"MaskVAE was built for {self.size}x{self.size} masks, got "
                             f"{onehot.shape[2]}x{onehot.shape[3]} (build one with size={onehot.shape[2]} or resize the mask)")

    def encode(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One-hot mask ``(N, C, size, size)`` -> ``(mu, logvar)``, each ``(N, latent_dim)`` (Eq. 3)."""
        self._check_mask(onehot)
        h = self.encoder(onehot).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``z = mu + exp(0.5 * logvar) * eps``, ``eps ~ N(0, I)`` (differentiable in mu, logvar)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(N, latent_dim)`` -> class logits ``(N, num_classes, size, size)``."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"MaskVAE.decode expects latents of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        h = torch.relu(self.fc_dec(z)).view(z.shape[0], self.top_ch, 4, 4)
        return self.decoder(h)

    def decode_onehot(self, z: torch.Tensor) -> torch.Tensor:
        """Latent -> one-hot mask (argmax, then one-hot), ready for the DMN."""
        return logits_to_onehot(self.decode(z))

    interpolate = staticmethod(interpolate)

    def forward(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(onehot)
        z = self.reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar
