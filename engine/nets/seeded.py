"""Deterministic stand-in weights from a seed, for parity references of networks whose
trained checkpoints cannot be stored or fetched (tools/make_pointhmr_reference.py).

Rule (version 1), for every entry `key` of a state_dict, in any order (each entry has its
own generator, numpy PCG64 seeded with [seed, crc32(key)]):
- integer tensors (BatchNorm's num_batches_tracked): zeros;
- tensors of two or more dimensions (conv, linear, attention, embedding weights):
  N(0, 1) / sqrt(fan_in), fan_in = the product of all but the first dimension;
- one-dimensional `...running_var`: U(0.5, 1.5); `...running_mean`: N(0, 0.1^2);
- other one-dimensional `...weight` (norm scales): U(0.5, 1.5);
- other one-dimensional tensors (biases): N(0, 0.1^2);
then every floating value is rounded to float16 and stored as float32. The reference tool
may overwrite BatchNorm running statistics afterwards (it says so and stores them).
"""
from __future__ import annotations

import zlib
from typing import Mapping

import numpy as np
import torch

RULE_VERSION = 1


def seeded_tensor(key: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """One entry by the rule above."""
    if not dtype.is_floating_point:
        return torch.zeros(shape, dtype=dtype)
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    if len(shape) >= 2:
        values = rng.standard_normal(shape) / np.sqrt(float(np.prod(shape[1:])))
    elif key.endswith("running_var") or key.endswith("weight"):
        values = rng.uniform(0.5, 1.5, shape)
    else:
        values = rng.normal(0.0, 0.1, shape)
    return torch.from_numpy(values.astype(np.float16).astype(np.float32)).to(dtype)


def seeded_state_dict(template: Mapping[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A state_dict with the template's keys, shapes and dtypes, filled by the rule."""
    return {k: seeded_tensor(k, tuple(v.shape), v.dtype, seed) for k, v in template.items()}
