"""Building blocks shared by the MaskGAN networks: SFT (Eq. 1), functional AdaIN (Eq. 2), and the
convolution / residual / encoder-decoder pieces of the Pix2PixHD-style generators.

**SFT** (spatial feature transform, paper Eq. 1) modulates a feature map ``F`` with a per-pixel
scale and shift predicted from a *condition* feature map (here: features of the target mask):
``SFT(F | psi) = gamma(psi) * F + beta(psi)``. Both ``gamma`` and ``beta`` come from two 1x1
convolutions with a LeakyReLU(0.1) between them. It is the *plain* ``gamma``, not ``1 + gamma``:
at initialisation the style encoder therefore does not pass features through unchanged.

**AdaIN** (adaptive instance normalisation, paper Eq. 2) normalises each channel of each sample to
zero mean and unit variance over its spatial positions, then applies a scale ``x`` and shift ``y``
that come from somewhere else (here: the style encoder)::

    AdaIN(z, x, y) = x * (z - mu(z)) / sigma(z) + y

In this kit AdaIN is a *function* of its parameters (:func:`adain`): the style parameters are
passed in at every call and never stored in module attributes. One reference image's style can be
computed once and reused for many masks (see :meth:`maskgan.nn.dmn.DenseMappingNetwork.render`).

**Precision.** Every layer here keeps the dtype and memory format it is given, so a network runs
in bfloat16 and channels-last from end to end (:mod:`maskgan.precision`) with no float32 round trip
between layers: instance norm and AdaIN are one ``group_norm`` call with one group per channel (the
same statistics, accumulated in float32 even on bfloat16 input; about ten times faster on a CPU than
``instance_norm``, which reshapes the batch first), and the padding layers opt out of autocast,
which would otherwise compute every reflection pad of a bfloat16 network in float32.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "adain", "instance_norm", "InstanceNorm2d", "ReflectionPad2d", "ReplicationPad2d", "SFT", "conv_block",
    "ResnetBlock", "AdaINResnetBlock", "stem", "downsampling", "upsampling", "rgb_head", "init_weights",
    "count_parameters",
]

#: Epsilon inside the square root of AdaIN's variance, as in the authors' demo (and InstanceNorm2d).
ADAIN_EPS = 1e-5


def _channels_last_slow(x: torch.Tensor) -> bool:
    """Whether ``group_norm`` would take its slow channels-last path on ``x``: torch's channels-last
    kernel is the fastest for one sample without gradients (the editor's frames) but several times
    slower than the plain layout for a batch, and its backward is (``docs/speed.md``)."""
    return not x.is_contiguous() and (x.shape[0] > 1 or (x.requires_grad and torch.is_grad_enabled()))


def instance_norm(x: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Instance normalisation without affine parameters (``nn.InstanceNorm2d``'s default), in the
    dtype and memory format of ``x``: ``group_norm`` with one group per channel normalises every
    sample and channel over ``H, W``, exactly as instance norm (float32 statistics for bfloat16)."""
    if _channels_last_slow(x):
        return F.group_norm(x.contiguous(), x.shape[1], eps=eps).contiguous(memory_format=torch.channels_last)
    return F.group_norm(x, x.shape[1], eps=eps)


def _affine_dtype(x: torch.Tensor, p: torch.Tensor) -> torch.dtype:
    """The dtype for norm parameters ``p`` next to features ``x``: float32 parameters stay float32
    beside bfloat16 features on the CPU (its group_norm takes them mixed and applies them in float32);
    anything else takes the features' dtype."""
    if p.dtype == x.dtype or (p.dtype == torch.float32 and x.device.type == "cpu"):
        return p.dtype
    return x.dtype


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = ADAIN_EPS) -> torch.Tensor:
    """Adaptive instance normalisation, paper Eq. 2: ``gamma * (x - mu(x)) / sigma(x) + beta``.

    ``x`` is ``(N, C, H, W)``; ``gamma`` (the paper's x, "std") and ``beta`` (the paper's y, "mean")
    are ``(N, C)``. ``mu`` and ``sigma`` are per sample and channel over ``H, W``; ``sigma`` uses
    the biased variance plus ``eps`` under the square root (as ``nn.InstanceNorm2d``). The result has
    the dtype and memory format of ``x``. One sample (editing: a cached style, one frame) is one fused
    ``group_norm`` call whose per-channel affine is this sample's ``gamma, beta``; a batch (training)
    is normalised in one call and scaled in a second.
    """
    if x.dim() != 4:
        raise ValueError(f"adain expects features (N, C, H, W), got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if tuple(p.shape) != (n, c):
            raise ValueError(f"adain {name} must have shape (N, C) = ({n}, {c}), got {tuple(p.shape)}")
    if n == 1 and not _channels_last_slow(x):
        dtype = _affine_dtype(x, gamma)
        return F.group_norm(x, c, gamma[0].to(dtype), beta[0].to(dtype), eps)
    gamma, beta = gamma.to(x.dtype)[:, :, None, None], beta.to(x.dtype)[:, :, None, None]
    return torch.addcmul(beta, instance_norm(x, eps), gamma)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` (same arguments, no parameters or buffers without ``affine`` or running
    statistics, so state dicts are unchanged) computed by :func:`instance_norm`: it keeps bfloat16
    and channels-last inputs as they are and is faster in float32 too."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not self.affine and not self.track_running_stats:
            return instance_norm(x, self.eps)
        return super().forward(x)


def _outside_autocast(x: torch.Tensor):
    """A context in which ``x``'s device runs ops in their inputs' dtypes (autocast off there)."""
    kind = x.device.type
    try:
        on = torch.is_autocast_enabled(kind)
    except RuntimeError:  # a device type without autocast (``meta``: the shape tracing of maskgan.diagrams)
        on = False
    return torch.autocast(kind, enabled=False) if on else nullcontext()


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that pads in its input's dtype under autocast. CPU autocast lists
    reflection padding among its float32 ops, so a bfloat16 network would convert every activation
    to float32 for the pad and back to bfloat16 for the next conv (a third of a 512² frame's time,
    issue 23's profile). Padding only copies values: bfloat16 loses nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _outside_autocast(x):
            return super().forward(x)


class ReplicationPad2d(nn.ReplicationPad2d):
    """``nn.ReplicationPad2d`` in its input's dtype under autocast (see :class:`ReflectionPad2d`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with _outside_autocast(x):
            return super().forward(x)


class SFT(nn.Module):
    """Spatial feature transform layer, paper Eq. 1: ``out = gamma(cond) * features + beta(cond)``.

    ``gamma`` and ``beta`` are each predicted by 1x1 conv -> LeakyReLU(0.1) -> 1x1 conv from the
    condition features (the label encoder's features of the target mask). 4 x (C*C + C) parameters.
    """

    def __init__(self, channels: int = 64, cond_channels: int | None = None, slope: float = 0.1):
        super().__init__()
        cond_channels = channels if cond_channels is None else cond_channels
        self.channels = channels
        self.gamma = nn.Sequential(nn.Conv2d(cond_channels, channels, 1), nn.LeakyReLU(slope),
                                   nn.Conv2d(channels, channels, 1))
        self.beta = nn.Sequential(nn.Conv2d(cond_channels, channels, 1), nn.LeakyReLU(slope),
                                  nn.Conv2d(channels, channels, 1))

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-pixel ``(gamma, beta)`` maps predicted from the condition features."""
        return self.gamma(cond), self.beta(cond)

    def forward(self, features: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if features.shape[-2:] != cond.shape[-2:]:
            raise ValueError(f"SFT: features are {tuple(features.shape[-2:])} but the condition is "
                             f"{tuple(cond.shape[-2:])}; both must have the same height and width")
        gamma, beta = self.modulation(cond)
        return gamma * features + beta


def conv_block(in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
               act: str | None = "relu", pad: str = "reflect") -> nn.Sequential:
    """Explicit padding -> Conv2d (with bias) -> optional activation; no normalisation.

    The style and label encoders are stacks of these (the demo's encoders use no norm layers).
    ``act``: ``"relu"``, ``"lrelu"`` (slope 0.2) or ``None``.
    """
    pads = {"reflect": ReflectionPad2d, "replicate": ReplicationPad2d, "zero": nn.ZeroPad2d}
    if pad not in pads:
        raise ValueError(f"unknown padding {pad!r}; expected one of {', '.join(pads)}")
    layers: list[nn.Module] = [pads[pad](padding), nn.Conv2d(in_ch, out_ch, kernel, stride)]
    if act == "relu":
        layers.append(nn.ReLU())
    elif act == "lrelu":
        layers.append(nn.LeakyReLU(0.2))
    elif act is not None:
        raise ValueError(f"unknown activation {act!r}; expected 'relu', 'lrelu' or None")
    return nn.Sequential(*layers)


class ResnetBlock(nn.Module):
    """Residual block ``x + [pad-conv3x3-IN-ReLU-pad-conv3x3-IN](x)`` (InstanceNorm without affine).

    Used by the alpha blender; the DMN backbone uses :class:`AdaINResnetBlock` instead.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(
            ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm2d(dim), nn.ReLU(),
            ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AdaINResnetBlock(nn.Module):
    """Residual block whose two normalisations are AdaIN (Eq. 2), the DMN backbone's core (Fig. 2).

    ``x + [pad-conv3x3-AdaIN-ReLU-pad-conv3x3-AdaIN](x)``. The AdaIN parameters of both norms are
    passed to :meth:`forward` as ``((gamma1, beta1), (gamma2, beta2))``, each ``(N, dim)``.
    """

    #: AdaIN layers per block.
    n_norms = 2

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.pad1, self.conv1 = ReflectionPad2d(1), nn.Conv2d(dim, dim, 3)
        self.pad2, self.conv2 = ReflectionPad2d(1), nn.Conv2d(dim, dim, 3)

    def forward(self, x: torch.Tensor, style: tuple[tuple[torch.Tensor, torch.Tensor], ...]) -> torch.Tensor:
        (g1, b1), (g2, b2) = style
        h = F.relu_(adain(self.conv1(self.pad1(x)), g1, b1))
        h = adain(self.conv2(self.pad2(h)), g2, b2)
        return x + h


# --- Pix2PixHD global-generator pieces (DMN backbone and alpha blender share them) ---------------

def stem(in_ch: int, ngf: int) -> nn.Sequential:
    """ReflectionPad(3) -> 7x7 conv -> InstanceNorm -> ReLU at full resolution."""
    return nn.Sequential(ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7), InstanceNorm2d(ngf), nn.ReLU(inplace=True))


def downsampling(ngf: int, n_down: int) -> nn.Sequential:
    """``n_down`` x (3x3 stride-2 conv, padding 1 -> InstanceNorm -> ReLU), doubling the width each time."""
    layers: list[nn.Module] = []
    for i in range(n_down):
        c = ngf * 2 ** i
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), InstanceNorm2d(2 * c), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def upsampling(ngf: int, n_down: int) -> nn.Sequential:
    """``n_down`` x (3x3 stride-2 transposed conv -> InstanceNorm -> ReLU), halving the width each time."""
    layers: list[nn.Module] = []
    for i in range(n_down):
        c = ngf * 2 ** (n_down - i)
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1),
                   InstanceNorm2d(c // 2), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def rgb_head(ngf: int, out_ch: int, final: nn.Module) -> nn.Sequential:
    """ReflectionPad(3) -> 7x7 conv to ``out_ch`` -> ``final`` (Tanh for images, Sigmoid for alpha)."""
    return nn.Sequential(ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), final)


def init_weights(module: nn.Module, std: float = 0.02, scheme: str = "demo") -> nn.Module:
    """Initialise every ``nn.Conv2d`` of ``module``; everything else keeps PyTorch's default.

    ``scheme="demo"``: the demo's weights ~ N(0, std) (the demo matches class names containing
    ``Conv2d``, which excludes ``ConvTranspose2d``; so do we). Applied to the DMN backbone, the
    blender and the discriminator. ``scheme="kaiming"``: He-normal weights for ReLU (fan-in) and
    zero biases, for stacks without normalisation (the DMN's encoders, see ``DenseMappingNetwork``).
    """
    if scheme not in ("demo", "kaiming"):
        raise ValueError(f"unknown init scheme {scheme!r}; expected 'demo' or 'kaiming'")
    for m in module.modules():
        if type(m) is nn.Conv2d:
            if scheme == "demo":
                nn.init.normal_(m.weight, 0.0, std)
            else:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return module


def check_side(net: str, height: int, width: int, multiple: int, least: int, hint: str = "") -> None:
    """Raise a ValueError unless both sides are multiples of ``multiple`` and at least ``least``
    (every network of the kit halves the image a fixed number of times). ``net`` names the network
    and its setting in the message, e.g. ``"DMN (n_down=3, enc_n_down=4)"``."""
    for side in (height, width):
        if side % multiple or side < least:
            raise ValueError(f"{net} needs height and width that are multiples of {multiple} and at least {least}; "
                             f"got {height}x{width}{hint}")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (works on the ``meta`` device too)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
