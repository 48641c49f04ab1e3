"""Stacked hourglass image encoder of PIFu / MonoPort (HGFilter), with GroupNorm.

Layout and parameter names follow the official checkpoints (PIFu `image_filter.*`,
MonoPort's PIFuHGFilters), so their state_dicts load with strict=True.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GROUPS = 32  # PIFu "--norm group": GroupNorm(32, C) everywhere


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels)


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation residual block: three 3x3 convs producing C/2, C/4, C/4 channels,
    concatenated to C, plus the (projected) input.

    When the channel count changes, the shortcut is norm + ReLU + 1x1 conv and its norm is
    the same module as `bn4`: the official code registers it under both names, so the
    state_dict holds `bn4.*` and `downsample.0.*` sharing one tensor. With equal channels
    `bn4` exists (and is saved) but is unused.
    """

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout // 2)
        self.bn1 = _norm(cin)
        self.conv2 = _conv3x3(cout // 2, cout // 4)
        self.bn2 = _norm(cout // 2)
        self.conv3 = _conv3x3(cout // 4, cout // 4)
        self.bn3 = _norm(cout // 4)
        self.bn4 = _norm(cin)
        self.downsample: nn.Sequential | None = None
        if cin != cout:
            self.downsample = nn.Sequential(self.bn4, nn.ReLU(True), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, cin, H, W) -> (B, cout, H, W)."""
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), dim=1) + residual


class HourGlass(nn.Module):
    """Recursive hourglass of `depth` levels on `features` channels.

    Level L: an upper branch b1_L at full resolution, and a lower branch that average-pools
    2x, runs b2_L, recurses (or b2_plus_1 at the bottom), runs b3_L and upsamples 2x
    bicubically with align_corners=True; the two branches are summed. Module names
    (b1_2, b2_2, b1_1, b2_1, b2_plus_1, b3_1, b3_2) match the official checkpoints.
    """

    def __init__(self, depth: int, features: int):
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
            if level == 1:
                self.add_module(f"b2_plus_{level}", ConvBlock(features, features))
            self.add_module(f"b3_{level}", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = getattr(self, f"b1_{level}")(x)
        low = getattr(self, f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else getattr(self, f"b2_plus_{level}")(low)
        low = getattr(self, f"b3_{level}")(low)
        return up1 + F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W), H and W divisible by 2^depth -> (B, C, H, W)."""
        return self._level(self.depth, x)


class HGFilter(nn.Module):
    """PIFu's image encoder: 512x512 RGB -> per-stack feature maps of (B, out_dim, 128, 128).

    Stem: conv 7x7/2 (3 -> 64) + GroupNorm + ReLU, ConvBlock 64 -> 128, avg-pool 2,
    ConvBlock 128 -> 128, ConvBlock 128 -> 256. Then `num_stack` hourglasses (depth
    `hg_depth`), each followed by top_m ConvBlock, conv_last 1x1 + bn_end + ReLU and l (1x1
    to out_dim) giving the stack's output; bl/al feed the next stack's input.
    """

    def __init__(self, num_stack: int = 4, hg_depth: int = 2, out_dim: int = 256):
        super().__init__()
        self.num_stack = num_stack
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = _norm(64)
        self.conv2 = ConvBlock(64, 128)
        self.conv3 = ConvBlock(128, 128)
        self.conv4 = ConvBlock(128, 256)
        for i in range(num_stack):
            self.add_module(f"m{i}", HourGlass(hg_depth, 256))
            self.add_module(f"top_m_{i}", ConvBlock(256, 256))
            self.add_module(f"conv_last{i}", nn.Conv2d(256, 256, 1))
            self.add_module(f"bn_end{i}", _norm(256))
            self.add_module(f"l{i}", nn.Conv2d(256, out_dim, 1))
            if i < num_stack - 1:
                self.add_module(f"bl{i}", nn.Conv2d(256, 256, 1))
                self.add_module(f"al{i}", nn.Conv2d(out_dim, 256, 1))

    def forward(self, x: torch.Tensor, last_only: bool = False) -> list[torch.Tensor]:
        """x: (B, 3, H, W) image in [-1, 1] -> list of (B, out_dim, H/4, W/4), one per stack
        (only the last when last_only, as PIFu keeps at inference)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.avg_pool2d(self.conv2(x), 2, stride=2)
        x = self.conv4(self.conv3(x))
        previous = x
        outputs: list[torch.Tensor] = []
        for i in range(self.num_stack):
            ll = getattr(self, f"top_m_{i}")(getattr(self, f"m{i}")(previous))
            ll = F.relu(getattr(self, f"bn_end{i}")(getattr(self, f"conv_last{i}")(ll)))
            out = getattr(self, f"l{i}")(ll)
            if not last_only or i == self.num_stack - 1:
                outputs.append(out)
            if i < self.num_stack - 1:
                previous = previous + getattr(self, f"bl{i}")(ll) + getattr(self, f"al{i}")(out)
        return outputs
