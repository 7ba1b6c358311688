"""Stand-ins for two public CelebAMask-HQ face parsers: their state-dict layouts AND computations.

Written for the tests from reading (not copying) zllrunning/face-parsing.PyTorch ``model.py`` /
``resnet.py`` (BiSeNet, checkpoint ``79999_iter.pth``) and switchablenorms/CelebAMask-HQ
``face_parsing/unet.py`` / ``model_utils.py`` (the authors' U-Net, ``model.pth``). Key names follow
theirs, so ``state_dict()`` has exactly their checkpoints' keys; the forward passes follow theirs
(BiSeNet: the ResNet's 1/8 features stand in for the spatial path; three heads, the first is the
parse). No ImageNet weights: the tests fill every tensor with seeded random values.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# --- BiSeNet (zllrunning/face-parsing.PyTorch) ---------------------------------------------------

class RefConvBNReLU(nn.Module):
    def __init__(self, cin, cout, ks=3, stride=1, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=ks, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class RefBasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(shortcut + residual)


class RefResnet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(RefBasicBlock(64, 64), RefBasicBlock(64, 64))
        self.layer2 = nn.Sequential(RefBasicBlock(64, 128, 2), RefBasicBlock(128, 128))
        self.layer3 = nn.Sequential(RefBasicBlock(128, 256, 2), RefBasicBlock(256, 256))
        self.layer4 = nn.Sequential(RefBasicBlock(256, 512, 2), RefBasicBlock(512, 512))

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        f8 = self.layer2(self.layer1(x))
        f16 = self.layer3(f8)
        return f8, f16, self.layer4(f16)


class RefARM(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = RefConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        att = F.avg_pool2d(feat, feat.size()[2:])
        att = torch.sigmoid(self.bn_atten(self.conv_atten(att)))
        return torch.mul(feat, att)


class RefContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = RefResnet18()
        self.arm16 = RefARM(256, 128)
        self.arm32 = RefARM(512, 128)
        self.conv_head32 = RefConvBNReLU(128, 128)
        self.conv_head16 = RefConvBNReLU(128, 128)
        self.conv_avg = RefConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x):
        f8, f16, f32 = self.resnet(x)
        avg = self.conv_avg(F.avg_pool2d(f32, f32.size()[2:]))
        avg_up = F.interpolate(avg, f32.size()[2:], mode="nearest")
        s32 = self.arm32(f32) + avg_up
        up32 = self.conv_head32(F.interpolate(s32, f16.size()[2:], mode="nearest"))
        s16 = self.arm16(f16) + up32
        up16 = self.conv_head16(F.interpolate(s16, f8.size()[2:], mode="nearest"))
        return f8, up16, up32


class RefFFM(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convblk = RefConvBNReLU(cin, cout, ks=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        att = F.avg_pool2d(feat, feat.size()[2:])
        att = torch.sigmoid(self.conv2(F.relu(self.conv1(att))))
        return torch.mul(feat, att) + feat


class RefOutput(nn.Module):
    def __init__(self, cin, cmid, n_classes):
        super().__init__()
        self.conv = RefConvBNReLU(cin, cmid)
        self.conv_out = nn.Conv2d(cmid, n_classes, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class RefBiSeNet(nn.Module):
    """``forward(x) -> (out, out16, out32)``; ``out[0]`` argmax is their parse (test.py)."""

    def __init__(self, n_classes=19):
        super().__init__()
        self.cp = RefContextPath()
        self.ffm = RefFFM(256, 256)
        self.conv_out = RefOutput(256, 256, n_classes)
        self.conv_out16 = RefOutput(128, 64, n_classes)
        self.conv_out32 = RefOutput(128, 64, n_classes)

    def forward(self, x):
        h, w = x.size()[2:]
        f8, cp8, cp16 = self.cp(x)
        outs = (self.conv_out(self.ffm(f8, cp8)), self.conv_out16(cp8), self.conv_out32(cp16))
        return tuple(F.interpolate(o, (h, w), mode="bilinear", align_corners=True) for o in outs)


# --- the CelebAMask-HQ authors' U-Net (face_parsing/unet.py) --------------------------------------

class RefUnetConv2(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x):
        return self.conv2(self.conv1(x))


class RefUnetUp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = RefUnetConv2(cin, cout)
        self.up = nn.ConvTranspose2d(cin, cout, kernel_size=2, stride=2)

    def forward(self, skip, low):
        up = self.up(low)
        offset = up.size()[2] - skip.size()[2]
        skip = F.pad(skip, 2 * [offset // 2, offset // 2])
        return self.conv(torch.cat([skip, up], 1))


class RefUNet(nn.Module):
    """``unet(feature_scale=4, n_classes=19, is_deconv=True, in_channels=3, is_batchnorm=True)``."""

    def __init__(self):
        super().__init__()
        f = [16, 32, 64, 128, 256]
        self.conv1, self.conv2 = RefUnetConv2(3, f[0]), RefUnetConv2(f[0], f[1])
        self.conv3, self.conv4 = RefUnetConv2(f[1], f[2]), RefUnetConv2(f[2], f[3])
        self.center = RefUnetConv2(f[3], f[4])
        self.up_concat4, self.up_concat3 = RefUnetUp(f[4], f[3]), RefUnetUp(f[3], f[2])
        self.up_concat2, self.up_concat1 = RefUnetUp(f[2], f[1]), RefUnetUp(f[1], f[0])
        self.final = nn.Conv2d(f[0], 19, 1)

    def forward(self, x):
        c1 = self.conv1(x)
        c2 = self.conv2(F.max_pool2d(c1, 2))
        c3 = self.conv3(F.max_pool2d(c2, 2))
        c4 = self.conv4(F.max_pool2d(c3, 2))
        center = self.center(F.max_pool2d(c4, 2))
        up = self.up_concat1(c1, self.up_concat2(c2, self.up_concat3(c3, self.up_concat4(c4, center))))
        return self.final(up)
