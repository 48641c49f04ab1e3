"""Small random SMPL-format models for tests (no licensed SMPL file needed)."""
from __future__ import annotations

import numpy as np

from engine.body.smpl_io import SmplModelData


def random_smpl(num_vertices: int, parents: tuple[int, ...], num_betas: int = 10, seed: int = 0,
                extent: float = 0.4) -> SmplModelData:
    """A random but well-formed model: vertices in a box of half-size `extent` metres,
    regressor and skinning weights rows summing to 1, small blend shapes."""
    rng = np.random.default_rng(seed)
    v, j = num_vertices, len(parents)
    regressor = rng.uniform(size=(j, v)) * (rng.uniform(size=(j, v)) < 0.2)
    regressor[:, 0] += 1e-3  # no empty rows
    weights = rng.uniform(size=(v, j)) ** 4
    return SmplModelData(
        v_template=rng.uniform(-extent, extent, size=(v, 3)).astype(np.float32),
        shapedirs=(0.02 * rng.normal(size=(v, 3, num_betas))).astype(np.float32),
        posedirs=(0.01 * rng.normal(size=(v, 3, 9 * (j - 1)))).astype(np.float32),
        J_regressor=(regressor / regressor.sum(axis=1, keepdims=True)).astype(np.float32),
        weights=(weights / weights.sum(axis=1, keepdims=True)).astype(np.float32),
        parents=np.array(parents, np.int64),
        faces=rng.integers(0, v, size=(2 * v, 3)).astype(np.int32),
    )
