"""A frozen VGG-19 feature extractor for the perceptual loss (paper Eq. 9), without torchvision.

The network is defined here with exactly the module layout of torchvision's ``vgg19().features``,
held in an attribute named ``features``: its ``state_dict`` keys are ``features.0.weight``,
``features.0.bias``, ... ``features.34.bias`` -- the same keys as in torchvision's ImageNet
checkpoint ``vgg19-dcbb9e9d.pth`` (a state dict of the *whole* VGG-19). :func:`load_vgg19` keeps the
``features.*`` entries of such a file and ignores ``classifier.*``; a file holding only the
features (keys ``0.weight`` ...) also loads.

Weight sources (``weights`` argument / ``LossConfig.vgg_weights``), in order of preference:

1. a path to a checkpoint file;
2. ``"imagenet"``: the torch hub cache (``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``),
   else a download through ``torch.hub.load_state_dict_from_url`` (needs internet; otherwise a
   clear error says where to put the file);
3. ``"auto"``: the hub-cache file if it is there, else ``"random"`` (no download attempt; a loud
   one-time warning says that the perceptual loss is then only a proxy, and where to put the file);
4. ``"random"``: a seeded random initialisation for offline smoke runs -- the perceptual loss is
   then only a proxy. Chosen on purpose (the ``smoke`` preset does, so that every loss term runs
   in CI), it warns nothing: a red warning in every smoke notebook told a learner nothing new;
5. ``"none"``: no network; the perceptual term is disabled.

**Input normalisation (a deliberate difference from the demo).** The demo feeds images in
[-1, 1] straight into an ImageNet VGG. Here, by default (``normalize=True``), images in [-1, 1]
are mapped to [0, 1] and then standardised with the ImageNet mean/std that the checkpoint was
trained with, so the features are the ones VGG-19 was trained to produce. ``normalize=False``
(``LossConfig.vgg_normalize``) restores the demo's behaviour.

Outputs: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (``features`` indices 1, 6, 11, 20, 29); the
layers after index 29 are kept so the checkpoint loads as is, but are never run.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["VGG19Features", "VGG19_CFG", "VGG19_URL", "VGG19_FILE", "TAP_LAYERS", "load_vgg19",
           "load_vgg19_state_dict", "hub_checkpoint_path"]

#: torchvision's configuration "E": conv widths, "M" = 2x2 max-pool.
VGG19_CFG: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = "https://download.pytorch.org/models/" + VGG19_FILE
#: ``features`` indices whose outputs are returned: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
TAP_LAYERS: tuple[int, ...] = (1, 6, 11, 20, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_warned_random = False


class VGG19Features(nn.Module):
    """Frozen VGG-19 convolutional part; ``forward(images in [-1, 1]) -> [relu1_1, ..., relu5_1]``.

    Always in eval mode with ``requires_grad=False`` on every parameter; gradients still flow to the
    *input* (the generated image), which is what the perceptual loss needs.
    """

    def __init__(self, normalize: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.normalize = normalize
        # Non-persistent: the state dict holds exactly torchvision's features.* keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def freeze(self) -> "VGG19Features":
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "VGG19Features":
        """Stays in eval mode: the extractor is fixed (``model.train()`` on a parent is harmless)."""
        return super().train(False)

    def reset_parameters(self, seed: int = 0) -> "VGG19Features":
        """Seeded torchvision-style random init (Kaiming normal, fan-out; zero bias). Does not touch
        the global random state."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                std = (2.0 / (m.out_channels * m.kernel_size[0] * m.kernel_size[1])) ** 0.5
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * std)
                    m.bias.zero_()
        return self

    def forward(self, x: torch.Tensor, n_layers: int = 5) -> list[torch.Tensor]:
        """Features relu1_1 .. relu5_1, or only the first ``n_layers`` of them (the network then
        stops early: a loss that gives the deep layers weight 0 does not pay for them)."""
        if not 1 <= n_layers <= len(TAP_LAYERS):
            raise ValueError(f"n_layers must be in 1..{len(TAP_LAYERS)}, got {n_layers}")
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19Features expects RGB images (N, 3, H, W) in [-1, 1], got shape {tuple(x.shape)}")
        if self.normalize:
            x = ((x + 1) / 2 - self.mean) / self.std
        outs = []
        for i, layer in enumerate(self.features[:TAP_LAYERS[n_layers - 1] + 1]):
            x = layer(x)
            if i in TAP_LAYERS:
                outs.append(x)
        return outs


def hub_checkpoint_path() -> Path:
    """Where torch hub (and torchvision) keep the ImageNet VGG-19 file on this machine."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def load_vgg19_state_dict(path) -> dict[str, torch.Tensor]:
    """Read a VGG-19 checkpoint (``torch.load(weights_only=True)``) and return its ``features.*``
    entries, keyed ``features.N.weight`` / ``features.N.bias``.

    Accepts torchvision's whole-network file (``features.*`` + ``classifier.*``; the classifier is
    ignored), a features-only state dict (``N.weight``), or either wrapped in ``{"state_dict": ...}``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 weights file {path} does not exist")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{path} is not a loadable PyTorch state dict ({e})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ValueError(f"{path} holds a {type(sd).__name__}, expected a state dict (a dict of tensors)")
    feats = {k: v for k, v in sd.items() if k.startswith("features.")}
    if not feats:  # a features-only file: keys "0.weight", ...
        feats = {f"features.{k}": v for k, v in sd.items() if k.split(".")[0].isdigit()}
    if not feats:
        shown = ", ".join(list(sd)[:5])
        raise ValueError(f"{path} has no VGG-19 feature weights: expected keys like 'features.0.weight' "
                         f"(torchvision's vgg19 file) or '0.weight', found {shown or 'no keys'}")
    return feats


def _load_into(model: VGG19Features, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{source} does not match VGG-19's features layout: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ValueError(f"{source}: {k} has shape {tuple(v.shape)}, VGG-19 expects {tuple(expected[k].shape)}")
    model.load_state_dict(state)


def _warn_random_once() -> None:
    """Said when ``"auto"`` found no ImageNet file and fell back to random weights (not chosen)."""
    global _warned_random
    if not _warned_random:
        _warned_random = True
        warnings.warn(
            "VGG-19 has RANDOM weights (weights='auto' found no ImageNet file): the perceptual loss is only a "
            f"proxy and results will not match the paper. Put torchvision's ImageNet file at "
            f"{hub_checkpoint_path()} and use weights='imagenet' for real runs.", UserWarning, stacklevel=3)


def load_vgg19(weights: str | os.PathLike = "imagenet", *, normalize: bool = True, seed: int = 0,
               download: bool = True) -> VGG19Features | None:
    """Build the frozen VGG-19 from ``weights``: a file path, ``"imagenet"``, ``"auto"``, ``"random"`` or ``"none"``.

    ``"none"`` returns ``None`` (the perceptual term is then disabled by the losses). See the module
    docstring for the search order of ``"imagenet"``.
    """
    if isinstance(weights, str) and weights == "none":
        return None
    model = VGG19Features(normalize=normalize)
    if isinstance(weights, str) and weights == "auto":
        if not hub_checkpoint_path().is_file():
            _warn_random_once()
            return model.reset_parameters(seed)
        weights = "imagenet"
    if isinstance(weights, str) and weights == "random":  # chosen on purpose (smoke): nothing to warn about
        return model.reset_parameters(seed)
    if isinstance(weights, str) and weights == "imagenet":
        cached = hub_checkpoint_path()
        if cached.is_file():
            _load_into(model, load_vgg19_state_dict(cached), str(cached))
            return model.freeze()
        if not download:
            raise FileNotFoundError(f"ImageNet VGG-19 weights not found at {cached}; put torchvision's {VGG19_FILE} "
                                    f"there (or pass its path as weights=...)")
        try:
            sd = torch.hub.load_state_dict_from_url(VGG19_URL, map_location="cpu", check_hash=True, weights_only=True)
        except Exception as e:  # noqa: BLE001 - no internet, proxy, hash mismatch, ...
            raise RuntimeError(
                f"could not download the ImageNet VGG-19 weights from {VGG19_URL} ({type(e).__name__}: {e}). "
                f"On a machine without internet, copy torchvision's {VGG19_FILE} to {cached} or pass its path "
                f"(LossConfig.vgg_weights = '/path/to/{VGG19_FILE}'); use 'random' for an offline smoke run "
                f"or 'none' to disable the perceptual loss") from None
        _load_into(model, {k: v for k, v in sd.items() if k.startswith("features.")}, VGG19_URL)
        return model.freeze()
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"VGG-19 weights {str(weights)!r}: no such file; expected a checkpoint path, "
                                f"'imagenet', 'auto', 'random' or 'none'")
    _load_into(model, load_vgg19_state_dict(path), str(path))
    return model.freeze()
