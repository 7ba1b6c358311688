"""BiSeNet face parser with the key layout of the most used public CelebAMask-HQ checkpoint.

The paper scores how well a generated face follows its mask with a face parser trained on
CelebAMask-HQ. The parser most people use for that is the BiSeNet of zllrunning/face-parsing.PyTorch
(checkpoint ``79999_iter.pth``). This module is the kit's own implementation of that network
(Yu et al. 2018, "BiSeNet: Bilateral Segmentation Network for Real-time Semantic Segmentation"),
with attribute names chosen so that the checkpoint's state dict loads directly (strictly) into it.
Nothing is downloaded: the ResNet-18 inside is never initialised from ImageNet, only the checkpoint
is loaded (see :func:`maskgan.interop.faceparsing.load_bisenet`).

The network, at a 512x512 input:

* **context path** (``cp``): a ResNet-18 (``cp.resnet``) gives features at 1/8 (128 ch), 1/16
  (256 ch) and 1/32 (512 ch). Global average pooling of the 1/32 features (``cp.conv_avg``) adds
  global context; an **attention refinement module** (ARM: conv-BN-ReLU, then a channel attention
  from the pooled features through 1x1 conv, BN, sigmoid) refines the 1/32 and 1/16 features; each
  is nearest-upsampled x2 and smoothed by a 3x3 conv-BN-ReLU (``conv_head32``, ``conv_head16``).
* **spatial path**: the paper's three stride-2 convs are *absent* from this checkpoint; its author
  uses the ResNet's 1/8 features in their place (there are no ``sp.*`` keys). So does this module.
* **feature fusion module** (FFM, ``ffm``): concatenates spatial (1/8, 128 ch) and context (1/8,
  128 ch) features, conv-BN-ReLU to 256 ch, then adds a channel-attention-weighted copy of itself.
* **heads**: ``conv_out`` (3x3 conv-BN-ReLU, 1x1 conv to 19 logits) on the fused features, upsampled
  bilinearly (``align_corners=True``) to the input size. ``conv_out16`` / ``conv_out32`` are the
  auxiliary training heads; they are kept so the checkpoint loads strictly, and are computed only
  when :meth:`BiSeNet.forward` is asked for them.

The logits are in the *checkpoint's* class order (see :data:`maskgan.interop.faceparsing.BISENET_CLASSES`),
which is not the kit's: :mod:`maskgan.interop.faceparsing` remaps them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BiSeNet", "ResNet18Features"]


class ConvBNReLU(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block: ``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if c_in != c_out or stride != 1:  # 1x1 projection of the shortcut
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + body)


class ResNet18Features(nn.Module):
    """ResNet-18 without its classifier: ``forward(x) -> (feat8, feat16, feat32)`` (1/8, 1/16, 1/32)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        for i, (c_in, c_out, stride) in enumerate(widths, 1):
            self.add_module(f"layer{i}", nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, x.shape[2:])


class AttentionRefinement(nn.Module):
    """ARM: ``f = conv-BN-ReLU(x)``, then ``f * sigmoid(BN(conv1x1(avgpool(f))))``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_out)
        self.conv_atten = nn.Conv2d(c_out, c_out, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))


class ContextPath(nn.Module):
    """ResNet-18 + global context + two ARMs: ``forward(x) -> (feat8, context8, context16)``."""

    def __init__(self):
        super().__init__()
        self.resnet = ResNet18Features()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = F.interpolate(self.conv_avg(_global_pool(feat32)), feat32.shape[2:], mode="nearest")
        up32 = self.conv_head32(F.interpolate(self.arm32(feat32) + context, feat16.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(feat16) + up32, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusion(nn.Module):
    """FFM: ``f = conv-BN-ReLU(cat(spatial, context))``, then ``f + f * channel_attention(f)``."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.convblk = ConvBNReLU(c_in, c_out, kernel=1, padding=0)
        self.conv1 = nn.Conv2d(c_out, c_out // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out // 4, c_out, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat * atten + feat


class SegmentationHead(nn.Module):
    """3x3 conv-BN-ReLU then a 1x1 conv (no bias) to class logits."""

    def __init__(self, c_in: int, c_mid: int, num_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_mid)
        self.conv_out = nn.Conv2d(c_mid, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """``forward(x) -> logits (N, num_classes, H, W)`` for ImageNet-normalised RGB ``x``.

    ``forward(x, aux=True)`` also returns the two auxiliary heads' logits (training-time outputs of
    the original code). Input sides should be multiples of 32.
    """

    def __init__(self, num_classes: int = 19):
        super().__init__()
        self.num_classes = num_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = SegmentationHead(256, 256, num_classes)
        self.conv_out16 = SegmentationHead(128, 64, num_classes)
        self.conv_out32 = SegmentationHead(128, 64, num_classes)

    def forward(self, x: torch.Tensor, aux: bool = False):
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"BiSeNet expects RGB images (N, 3, H, W), got shape {tuple(x.shape)}")
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        logits = F.interpolate(self.conv_out(self.ffm(feat8, context8)), size, mode="bilinear", align_corners=True)
        if not aux:
            return logits
        aux16 = F.interpolate(self.conv_out16(context8), size, mode="bilinear", align_corners=True)
        aux32 = F.interpolate(self.conv_out32(context16), size, mode="bilinear", align_corners=True)
        return logits, aux16, aux32
