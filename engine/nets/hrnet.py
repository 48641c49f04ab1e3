"""HRNet-W32 trunk (Sun et al. 2019) in the layout ROMP and PointHMR use.

Stem: two 3x3/2 convolutions (64 channels) and four bottlenecks (256), then three stages
that keep a high-resolution branch and add a branch at half resolution each time (32, 64,
128, 256 channels at 1/4, 1/8, 1/16, 1/32 of the input). Each stage is a sequence of
modules: every branch runs its basic blocks, then every output branch sums all branches,
resampled to its resolution (1x1 conv + BN + nearest upsampling from lower resolutions,
strided 3x3 convs from higher ones), followed by ReLU.

The parameter names follow the official code (conv1, bn1, conv2, bn2, layer1.N,
transitionK.B..., stageK.M.branches.B.N..., stageK.M.fuse_layers.I.J...), so a checkpoint
saved from it loads unchanged. `forward` returns the highest- and lowest-resolution
features: (B, 32, H/4, W/4) and (B, 256, H/32, W/32).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.nets.resnet import Bottleneck

STAGE_BLOCKS = 4  # basic blocks per branch in every module
STAGE_MODULES = (1, 4, 3)  # modules of stages 2, 3, 4
BRANCH_CHANNELS = (32, 64, 128, 256)  # W32


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """conv (no bias) + BN (+ ReLU); indices 0, 1 (, 2) as in the official Sequentials."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN and a shortcut (projected when the width changes)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


def basic_layer(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout), *(BasicBlock(cout, cout) for _ in range(blocks - 1)))


def _fuse(cin: int, cout: int, steps: int) -> nn.Module:
    """Resample branch j to branch i: steps = j - i (> 0: upsample, < 0: downsample)."""
    if steps > 0:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                             nn.Upsample(scale_factor=2 ** steps, mode="nearest"))
    down = [conv_bn(cin, cin, 3, 2) for _ in range(-steps - 1)]
    return nn.Sequential(*down, conv_bn(cin, cout, 3, 2, relu=False))


class HighResolutionModule(nn.Module):
    """Parallel branches of basic blocks, then a full exchange between them."""

    def __init__(self, channels: tuple[int, ...], blocks: int = STAGE_BLOCKS) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(basic_layer(c, c, blocks) for c in channels)
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(None if i == j else _fuse(channels[j], channels[i], j - i) for j in range(n))
            for i in range(n))
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, fuse in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else fuse[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else fuse[j](xs[j]))
            out.append(self.relu(y))
        return out


def _transition(previous: tuple[int, ...], current: tuple[int, ...]) -> nn.ModuleList:
    """Existing branches pass through (None); the new one is a strided conv of the last."""
    layers: list[nn.Module | None] = [None] * len(previous)
    layers.append(nn.Sequential(conv_bn(previous[-1], current[-1], 3, 2)))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet-W32 feature extractor (untrained; load weights into it). Input (B, 3, H, W)
    normalised RGB with H, W divisible by 32."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Bottleneck(64, 64), *(Bottleneck(256, 64) for _ in range(3)))
        # The first transition turns the 256-channel stem into two branches, both new.
        self.transition1 = nn.ModuleList([conv_bn(256, BRANCH_CHANNELS[0], 3),
                                          nn.Sequential(conv_bn(256, BRANCH_CHANNELS[1], 3, 2))])
        stages = []
        for k, modules in enumerate(STAGE_MODULES):
            channels = BRANCH_CHANNELS[:k + 2]
            if k > 0:
                setattr(self, f"transition{k + 1}", _transition(channels[:-1], channels))
            stages.append(nn.Sequential(*(HighResolutionModule(channels) for _ in range(modules))))
        self.stage2, self.stage3, self.stage4 = stages
        self.backbone_channels = BRANCH_CHANNELS[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(self.relu(self.bn2(self.conv2(x))))
        ys = self.stage2([t(x) for t in self.transition1])
        for transition, stage in ((self.transition2, self.stage3), (self.transition3, self.stage4)):
            ys = stage([*ys, transition[-1](ys[-1])])
        return ys[0], ys[-1]
