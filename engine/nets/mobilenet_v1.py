"""MobileNetV1 backbone with a linear regression head (3DDFA_V2's regressor).

Submodule names follow the official 3DDFA_V2 checkpoints (conv1/bn1, dw2_1 .. dw6 blocks
of conv_dw/bn_dw/conv_sep/bn_sep, head `fc_param`), so their state_dict loads with
strict=True once the DataParallel `module.` prefix is stripped and the unused auxiliary
landmark head `fc_lm` is dropped (see `load_mobilenet_v1`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

log = logging.getLogger(__name__)

# (name, in channels, out channels, stride) before widening; the official layer plan.
BLOCK_PLAN: tuple[tuple[str, int, int, int], ...] = (
    ("dw2_1", 32, 64, 1),
    ("dw2_2", 64, 128, 2),
    ("dw3_1", 128, 128, 1),
    ("dw3_2", 128, 256, 2),
    ("dw4_1", 256, 256, 1),
    ("dw4_2", 256, 512, 2),
    ("dw5_1", 512, 512, 1),
    ("dw5_2", 512, 512, 1),
    ("dw5_3", 512, 512, 1),
    ("dw5_4", 512, 512, 1),
    ("dw5_5", 512, 512, 1),
    ("dw5_6", 512, 1024, 2),
    ("dw6", 1024, 1024, 1),
)

# Heads that official checkpoints carry but inference does not use.
UNUSED_HEADS: tuple[str, ...] = ("fc_lm",)


class DepthWiseBlock(nn.Module):
    """Depthwise 3x3 (groups=in) + BN + ReLU, then pointwise 1x1 + BN + ReLU; no conv biases."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False)
        self.bn_dw = nn.BatchNorm2d(in_ch)
        self.conv_sep = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.bn_sep = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_dw(self.conv_dw(x)))
        return self.relu(self.bn_sep(self.conv_sep(x)))


class MobileNetV1(nn.Module):
    """MobileNetV1 regressor.

    Input (B, 3, H, W) float32 (3DDFA: 120x120, BGR, (x - 127.5) / 128); output
    (B, num_outputs) float32 (3DDFA: 62 normalised parameters).
    """

    def __init__(self, widen_factor: float = 1.0, num_outputs: int = 62) -> None:
        super().__init__()
        self.widen_factor = float(widen_factor)

        def width(c: int) -> int:
            return int(c * widen_factor)

        self.conv1 = nn.Conv2d(3, width(32), 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width(32))
        self.relu = nn.ReLU(inplace=True)
        for name, cin, cout, stride in BLOCK_PLAN:
            self.add_module(name, DepthWiseBlock(width(cin), width(cout), stride))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc_param = nn.Linear(width(1024), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for name, *_ in BLOCK_PLAN:
            x = getattr(self, name)(x)
        x = self.avgpool(x).flatten(1)
        return self.fc_param(x)


def clean_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the DataParallel `module.` prefix and drop the unused auxiliary heads."""
    cleaned: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.split(".", 1)[0] in UNUSED_HEADS:
            dropped.append(key)
            continue
        cleaned[key] = value
    if dropped:
        log.debug("dropped unused checkpoint entries: %s", ", ".join(dropped))
    return cleaned


def widen_factor_of(state_dict: Mapping[str, torch.Tensor]) -> float:
    """Infer widen_factor from conv1's output channels (32 at widen 1.0)."""
    conv1 = state_dict["conv1.weight"]
    return float(conv1.shape[0]) / 32.0


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an official 3DDFA_V2 checkpoint (`{'epoch', 'state_dict'}` or a bare state_dict).

    The official files are legacy torch pickles holding only tensors and ints, so they
    load with weights_only=True.
    """
    raw = torch.load(Path(path), map_location="cpu", weights_only=True)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a MobileNetV1 checkpoint (expected a dict with 'state_dict')")
    return clean_state_dict(state)


def load_mobilenet_v1(path: str | Path, widen_factor: float | None = None,
                      num_outputs: int = 62) -> MobileNetV1:
    """Build a MobileNetV1 and load an official checkpoint strictly; returned in eval mode on the CPU.

    widen_factor: None infers it from the checkpoint; a given value must agree with it.
    """
    state = read_checkpoint(path)
    inferred = widen_factor_of(state)
    if widen_factor is not None and abs(widen_factor - inferred) > 1e-6:
        raise ValueError(f"{path}: checkpoint has widen_factor {inferred}, {widen_factor} was asked for")
    model = MobileNetV1(widen_factor=inferred, num_outputs=num_outputs)
    model.load_state_dict(state, strict=True)
    return model.eval()
