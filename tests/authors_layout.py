"""A stand-in for the MaskGAN authors' networks: their state-dict layout AND their computation.

Written for the tests from reading switchablenorms/CelebAMask-HQ ``MaskGAN_demo/models/networks.py``
(CC BY-NC-SA; nothing is copied): module names, ``nn.Sequential`` indices and parameter shapes are
theirs, so ``state_dict()`` has exactly the keys of ``latest_net_G.pth``; the forward passes follow
theirs step by step, including the parts the kit does differently:

* AdaIN layers with (unused) ``running_mean`` / ``running_var`` buffers, whose weight and bias are
  *assigned* from the style vector before each forward (the kit passes them as arguments), and
  which normalise through ``F.batch_norm`` on a ``(1, N*C, H, W)`` view in training mode;
* the style vector read per AdaIN layer in module order, mean (bias) first, then std (weight);
* the generator's three inputs ``(layout mask, reference mask, reference image)``.

The tests fill these modules with random weights, ``torch.save`` their state dicts as the authors'
code does, import them with :mod:`maskgan.interop.authors`, and compare outputs.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DemoAdaIN(nn.Module):
    """Their AdaIN: dummy running buffers, weight/bias assigned from outside, batch-norm on a view."""

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = channels, eps, momentum
        self.weight = None  # plain attributes, set by DemoGenerator.assign_style
        self.bias = None
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        n, c = x.shape[:2]
        flat = x.contiguous().view(1, n * c, *x.shape[2:])
        out = F.batch_norm(flat, self.running_mean.repeat(n), self.running_var.repeat(n), self.weight, self.bias,
                           True, self.momentum, self.eps)
        return out.view(x.shape)


class DemoConv(nn.Module):
    """Their ConvBlock: attributes ``pad``, ``norm`` (optional), ``conv``; conv -> norm -> activation."""

    def __init__(self, c_in, c_out, kernel, stride, padding, norm=None, relu=True):
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding)
        self.norm = norm
        self.relu = relu
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x):
        x = self.conv(self.pad(x))
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x) if self.relu else x


class DemoResBlock(nn.Module):
    """``x + conv_block(x)`` with ``conv_block = [ConvBlock(norm, relu), ConvBlock(norm, none)]``."""

    def __init__(self, dim, norm: str):
        super().__init__()
        make = (lambda: DemoAdaIN(dim)) if norm == "adain" else (lambda: nn.InstanceNorm2d(dim))
        self.conv_block = nn.Sequential(DemoConv(dim, dim, 3, 1, 1, make(), True),
                                        DemoConv(dim, dim, 3, 1, 1, make(), False))

    def forward(self, x):
        return x + self.conv_block(x)


def pix2pixhd_sequence(c_in, c_out, ngf, n_down, n_blocks, norm: str, final: nn.Module) -> nn.Sequential:
    """Their global-generator list: stem, downsamplings, residual blocks, upsamplings, 7x7 head."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(c_in, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
    for i in range(n_down):
        w = ngf * 2 ** i
        layers += [nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU()]
    layers += [DemoResBlock(ngf * 2 ** n_down, norm) for _ in range(n_blocks)]
    for i in range(n_down):
        w = ngf * 2 ** (n_down - i)
        layers += [nn.ConvTranspose2d(w, w // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w // 2), nn.ReLU()]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, c_out, 7), final]
    return nn.Sequential(*layers)


class DemoSFT(nn.Module):
    """Their SFTLayer: ``x * scale(cond) + shift(cond)``, each two 1x1 convs with LeakyReLU(0.1)."""

    def __init__(self, c: int = 64):
        super().__init__()
        self.SFT_scale_conv1, self.SFT_scale_conv2 = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)
        self.SFT_shift_conv1, self.SFT_shift_conv2 = nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x, cond):
        scale = self.SFT_scale_conv2(F.leaky_relu(self.SFT_scale_conv1(cond), 0.1))
        shift = self.SFT_shift_conv2(F.leaky_relu(self.SFT_shift_conv1(cond), 0.1))
        return x * scale + shift


class DemoStyleEncoder(nn.Module):
    def __init__(self, n_down, c_in, dim, style_dim):
        super().__init__()
        self.model = nn.Sequential(DemoConv(c_in, dim, 7, 1, 3), DemoConv(dim, 2 * dim, 4, 2, 1),
                                   DemoConv(2 * dim, 4 * dim, 4, 2, 1))
        w = 4 * dim
        self.model_middle = nn.Sequential(*[DemoConv(w, w, 4, 2, 1) for _ in range(n_down - 2)])
        self.model_last = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(w, style_dim, 1))
        self.sft1, self.sft2 = DemoSFT(w), DemoSFT(w)

    def forward(self, image, fea1, fea2):
        h = self.sft1(self.model(image), fea1)
        h = self.sft2(self.model_middle(h), fea2)
        return self.model_last(h)  # (N, style_dim, 1, 1), as theirs


class DemoLabelEncoder(nn.Module):
    def __init__(self, n_down, c_in, dim):
        super().__init__()
        self.model = nn.Sequential(DemoConv(c_in, dim, 7, 1, 3), DemoConv(dim, 2 * dim, 4, 2, 1),
                                   DemoConv(2 * dim, 4 * dim, 4, 2, 1, relu=False))
        w = 4 * dim
        tail = [nn.ReLU()] + [DemoConv(w, w, 4, 2, 1) for _ in range(n_down - 3)] + [DemoConv(w, w, 4, 2, 1, relu=False)]
        self.model_last = nn.Sequential(*tail)

    def forward(self, mask):
        a = self.model(mask)
        return a, self.model_last(a)


class DemoGenerator(nn.Module):
    """Their GlobalGenerator as built by ``define_G(19, 3, 64, 'global', 4, 4, 1, 3, 'instance')``."""

    def __init__(self, label_nc=19, ngf=64, n_down=4, n_blocks=4, enc_dim=16, enc_down=5):
        super().__init__()
        self.model = pix2pixhd_sequence(label_nc, 3, ngf, n_down, n_blocks, "adain", nn.Tanh())
        n_params = sum(2 * m.num_features for m in self.model.modules() if isinstance(m, DemoAdaIN))
        self.enc_style = DemoStyleEncoder(enc_down, 3, enc_dim, n_params)
        self.enc_label = DemoLabelEncoder(enc_down, label_nc, enc_dim)

    def assign_style(self, params):
        """Walk the AdaIN layers in module order; each takes C means (bias) then C stds (weight)."""
        for m in self.model.modules():
            if isinstance(m, DemoAdaIN):
                c = m.num_features
                m.bias = params[:, :c].contiguous().view(-1)
                m.weight = params[:, c:2 * c].contiguous().view(-1)
                params = params[:, 2 * c:]

    def forward(self, mask, mask_ref, image_ref):
        fea1, fea2 = self.enc_label(mask_ref)
        self.assign_style(self.enc_style(image_ref, fea1, fea2))
        return self.model(mask)


class DemoBlender(nn.Module):
    """Their BlendGenerator as built by ``define_B(6, 3, 32, 3, 3)``: ``(a*m + b*(1-m), m)``."""

    def __init__(self, c_in=6, c_out=3, ngf=32, n_down=3, n_blocks=3):
        super().__init__()
        self.model = pix2pixhd_sequence(c_in, c_out, ngf, n_down, n_blocks, "in", nn.Sigmoid())

    def forward(self, a, b):
        m = self.model(torch.cat([a, b], 1))
        return a * m + b * (1 - m), m


class DemoVAE(nn.Module):
    """Their ``VAE(19, 32, 32, 1024)``: ``e1..e7``/``bn1..bn7``, ``fc1`` (mu), ``fc2`` (logvar), ``d1..d8``."""

    def __init__(self, nc=19, ngf=32, ndf=32, latent=1024):
        super().__init__()
        self.ngf = ngf
        widths = [nc] + [ndf * 2 ** i for i in range(7)]
        for i in range(7):
            setattr(self, f"e{i + 1}", nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1))
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(widths[i + 1]))
        self.fc1 = nn.Linear(ndf * 64 * 16, latent)
        self.fc2 = nn.Linear(ndf * 64 * 16, latent)
        self.d1 = nn.Linear(latent, ngf * 64 * 16)
        dec = [ngf * 2 ** (6 - i) for i in range(7)] + [nc]  # 2048 ... 32, then the classes
        for i in range(7):
            setattr(self, f"d{i + 2}", nn.Conv2d(dec[i], dec[i + 1], 3, 1))
            if i < 6:
                setattr(self, f"bn{i + 8}", nn.BatchNorm2d(dec[i + 1], 1e-3))

    def encode(self, x):
        for i in range(1, 8):
            x = F.leaky_relu(getattr(self, f"bn{i}")(getattr(self, f"e{i}")(x)), 0.2)
        x = x.view(x.shape[0], -1)
        return self.fc1(x), self.fc2(x)

    def decode(self, z):
        h = F.relu(self.d1(z)).view(z.shape[0], self.ngf * 64, 4, 4)
        for i in range(2, 9):
            h = getattr(self, f"d{i}")(F.pad(F.interpolate(h, scale_factor=2, mode="nearest"), (1, 1, 1, 1),
                                            mode="replicate"))
            if i < 8:
                h = F.leaky_relu(getattr(self, f"bn{i + 6}")(h), 0.2)
        return h
