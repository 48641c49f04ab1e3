"""ResNet image encoder of PIFu's colour network (ResnetFilter), with GroupNorm.

Layout follows the official checkpoints: `model` is one nn.Sequential whose indices are
the state_dict keys (`model.1` conv 7x7, `model.2` its norm, `model.4`/`model.7` the
stride-2 convs, `model.10..15` the residual blocks); pads and ReLUs carry no parameters.
"""
from __future__ import annotations

import torch
import torch.nn as nn

GROUPS = 32  # PIFu "--norm_color group"


class ResnetBlock(nn.Module):
    """x + [reflect-pad 1, conv 3x3, norm, ReLU, reflect-pad 1, conv 3x3, norm].

    Convs carry no bias (the official code adds one only with InstanceNorm). The last block
    of the filter omits its final norm (`last=True`)."""

    def __init__(self, dim: int, last: bool = False):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False), nn.GroupNorm(GROUPS, dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=False),
        ]
        if not last:
            layers.append(nn.GroupNorm(GROUPS, dim))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetFilter(nn.Module):
    """(B, 3, H, W) image in [-1, 1] -> (B, 4 ngf, H/4, W/4) features (no final activation).

    reflect-pad 3 + conv 7x7 (3 -> ngf) + norm + ReLU, two stride-2 3x3 convs
    (ngf -> 2 ngf -> 4 ngf) each with norm + ReLU, then `n_blocks` ResnetBlocks."""

    def __init__(self, ngf: int = 64, n_blocks: int = 6):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, padding=0, bias=False),
                                   nn.GroupNorm(GROUPS, ngf), nn.ReLU(True)]
        for i in range(2):
            c = ngf * 2 ** i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False), nn.GroupNorm(GROUPS, 2 * c), nn.ReLU(True)]
        for i in range(n_blocks):
            layers.append(ResnetBlock(4 * ngf, last=i == n_blocks - 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
