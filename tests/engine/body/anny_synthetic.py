"""Helpers for the Anny body tests: the compact model (built once, then cached in the user
cache) and, re-exported, the synthetic observations of engine/body/synthetic.py."""
from __future__ import annotations

import functools

import torch

from engine.body.anny_model import AnnyBodyData, load_anny_body_data
from engine.body.synthetic import (  # noqa: F401  (re-exported for the tests)
    BODY_JOINTS, POSE_SPREAD, Synthetic, random_pose, root_relative_error_mm, synthesize,
)


@functools.lru_cache(maxsize=1)
def anny_data() -> AnnyBodyData:
    torch.set_num_threads(1)
    return load_anny_body_data()
