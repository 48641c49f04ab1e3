"""Where torch work runs: decided once, from `--device auto|cpu|cuda`."""
from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def resolve_device(spec: str = "auto") -> torch.device:
    """Map a user's device choice to a torch.device, saying which one is used.

    `auto` picks CUDA when available; `cuda` without a GPU falls back to the CPU with a
    warning rather than failing, so a laptop without a GPU still runs.
    """
    spec = (spec or "auto").lower()
    if spec not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {spec!r}: use auto, cpu or cuda")
    has_cuda = torch.cuda.is_available()
    if spec == "cpu":
        device = torch.device("cpu")
    elif has_cuda:
        device = torch.device("cuda")
    else:
        if spec == "cuda":
            log.warning("CUDA was asked for but no CUDA device is available: using the CPU")
        device = torch.device("cpu")
    if device.type == "cuda":
        log.info("torch device: cuda (%s)", torch.cuda.get_device_name(0))
    else:
        log.info("torch device: cpu (%d threads)", torch.get_num_threads())
    return device
