"""MaskGAN's networks, and factories that build them from a :class:`maskgan.config.Config`.

===========================  ==============================================  ======================
idea (paper)                 class                                           module
===========================  ==============================================  ======================
SFT (Eq. 1), AdaIN (Eq. 2)   :class:`SFT`, :func:`adain`                     :mod:`.layers`
MaskVAE (Sec. 3.2)           :class:`MaskVAE`                                :mod:`.maskvae`
Dense Mapping Network (3.1)  :class:`DenseMappingNetwork`                    :mod:`.dmn`
Alpha blender (Alg. 1)       :class:`AlphaBlender`                           :mod:`.blender`
Discriminator (Eq. 7-8)      :class:`MultiScaleDiscriminator`                :mod:`.discriminator`
VGG-19 (Eq. 9)               :class:`VGG19Features`, :func:`load_vgg19`      :mod:`.vgg`
===========================  ==============================================  ======================

Each factory checks that ``cfg.data.size`` fits the network it builds, so a bad size fails when
the model is built rather than deep inside a forward pass. Models are built on the current
default device (wrap in ``with torch.device("meta"):`` to count parameters without memory).
"""
from __future__ import annotations

from ..labels import NUM_CLASSES
from .blender import AlphaBlender
from .discriminator import MultiScaleDiscriminator, PatchDiscriminator
from .dmn import Backbone, DenseMappingNetwork, LabelEncoder, StyleEncoder
from .layers import SFT, AdaINResnetBlock, ResnetBlock, adain, count_parameters, init_weights
from .maskvae import MaskVAE, interpolate, logits_to_labels, logits_to_onehot, simulated_codes
from .baseline import MaskOnlyGenerator, build_p2p
from .parser import FaceParser
from .vgg import VGG19Features, load_vgg19

__all__ = [
    "SFT", "adain", "AdaINResnetBlock", "ResnetBlock", "init_weights", "count_parameters",
    "MaskVAE", "interpolate", "simulated_codes", "logits_to_labels", "logits_to_onehot",
    "Backbone", "LabelEncoder", "StyleEncoder", "DenseMappingNetwork",
    "AlphaBlender", "PatchDiscriminator", "MultiScaleDiscriminator", "VGG19Features", "load_vgg19",
    "build_maskvae", "build_dmn", "build_blender", "build_discriminator", "build_vgg", "build_parser", "build_p2p",
    "build_net", "NET_BUILDERS", "FaceParser", "MaskOnlyGenerator",
]


def build_maskvae(cfg) -> MaskVAE:
    """MaskVAE for ``cfg.data.size`` masks with ``cfg.model.maskvae`` widths."""
    m = cfg.model.maskvae
    return MaskVAE(size=cfg.data.size, base_ch=m.base_ch, latent_dim=m.latent_dim, num_classes=NUM_CLASSES)


def build_dmn(cfg) -> DenseMappingNetwork:
    """Dense Mapping Network with ``cfg.model.dmn`` widths; checks ``cfg.data.size`` fits."""
    d = cfg.model.dmn
    net = DenseMappingNetwork(NUM_CLASSES, ngf=d.ngf, n_down=d.n_down, n_blocks=d.n_blocks,
                              enc_ch=d.enc_ch, enc_n_down=d.enc_n_down, encoder_init=d.encoder_init)
    net.check_size(cfg.data.size, cfg.data.size)
    return net


def build_blender(cfg) -> AlphaBlender:
    """Alpha blender with ``cfg.model.blender`` widths; checks ``cfg.data.size`` fits."""
    b = cfg.model.blender
    net = AlphaBlender(ngf=b.ngf, n_down=b.n_down, n_blocks=b.n_blocks)
    net.check_size(cfg.data.size, cfg.data.size)
    return net


def build_discriminator(cfg) -> MultiScaleDiscriminator:
    """Multi-scale PatchGAN on concat(one-hot mask, RGB) = 22 channels."""
    d = cfg.model.discriminator
    return MultiScaleDiscriminator(NUM_CLASSES + 3, ndf=d.ndf, n_layers=d.n_layers, num_D=d.num_D, max_ch=d.max_ch)


def build_vgg(cfg) -> VGG19Features | None:
    """Frozen VGG-19 from ``cfg.model.loss.vgg_weights`` (``None`` when it is ``"none"``)."""
    loss = cfg.model.loss
    return load_vgg19(loss.vgg_weights, normalize=loss.vgg_normalize, seed=cfg.seed)


def build_parser(cfg) -> FaceParser:
    """The evaluation's FaceParser with ``cfg.parser`` widths; checks ``cfg.data.size`` fits."""
    net = FaceParser(base=cfg.parser.base, depth=cfg.parser.depth)
    net.check_size(cfg.data.size, cfg.data.size)
    return net


#: Network name (as saved in checkpoints, ``<name>.safetensors``) -> builder from a Config.
NET_BUILDERS = {"maskvae": build_maskvae, "dmn": build_dmn, "disc": build_discriminator, "blender": build_blender,
                "p2p": build_p2p, "parser": build_parser}


def build_net(name: str, cfg):
    """The network saved under ``name`` in checkpoints, built from ``cfg``."""
    if name not in NET_BUILDERS:
        raise ValueError(f"unknown network {name!r}; the kit builds {', '.join(NET_BUILDERS)}")
    return NET_BUILDERS[name](cfg)
