"""3DDFA_V2's 62-d parameter vector: statistics file, de-normalisation and decoding.

Layout after de-normalisation (param = raw * std + mean):
  param[0:12]  P, a 3x4 row-major camera matrix in the 120x120 crop's model frame
               (R = P[:, :3], a scaled, not exactly orthonormal rotation; offset = P[:, 3]);
  param[12:52] alpha_shp, 40 BFM identity coefficients;
  param[52:62] alpha_exp, 10 BFM expression coefficients.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.face.safe_pickle import load_numpy_pickle

NUM_PARAMS = 62
NUM_SHAPE = 40
NUM_EXPRESSION = 10


@dataclass(frozen=True)
class ParamStats:
    """Per-parameter mean and std (62,) float32 used to normalise the network's targets."""

    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class TddfaParams:
    """One decoded 62-d parameter vector.

    rotation: (3, 3) float32, scaled rotation R (rows = P rows 0..2, columns 0..2).
    offset: (3,) float32, translation in the crop's model frame.
    alpha_shp: (40,) float32 identity coefficients.
    alpha_exp: (10,) float32 expression coefficients.
    """

    rotation: np.ndarray
    offset: np.ndarray
    alpha_shp: np.ndarray
    alpha_exp: np.ndarray


def load_param_stats(path: str | Path) -> ParamStats:
    """Read param_mean_std_62d_120x120.pkl: {'mean': (62,), 'std': (62,)} float32."""
    data = load_numpy_pickle(path)
    if not isinstance(data, dict) or "mean" not in data or "std" not in data:
        raise ValueError(f"{path}: expected a dict with 'mean' and 'std'")
    mean = np.asarray(data["mean"], np.float32).reshape(-1)
    std = np.asarray(data["std"], np.float32).reshape(-1)
    if mean.shape != (NUM_PARAMS,) or std.shape != (NUM_PARAMS,):
        raise ValueError(f"{path}: mean/std must have {NUM_PARAMS} entries, got {mean.shape}, {std.shape}")
    return ParamStats(mean=mean, std=std)


def denormalise(raw: np.ndarray, stats: ParamStats) -> np.ndarray:
    """(62,) float32 network output -> (62,) float32 parameters: raw * std + mean."""
    return (np.asarray(raw, np.float32) * stats.std + stats.mean).astype(np.float32)


def decode_params(param: np.ndarray) -> TddfaParams:
    """Split a de-normalised (62,) vector into camera matrix and coefficients."""
    param = np.asarray(param, np.float32).reshape(-1)
    if param.shape[0] < NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} parameters, got {param.shape[0]}")
    p = param[:12].reshape(3, 4)
    return TddfaParams(
        rotation=p[:, :3].copy(),
        offset=p[:, 3].copy(),
        alpha_shp=param[12:12 + NUM_SHAPE].copy(),
        alpha_exp=param[12 + NUM_SHAPE:12 + NUM_SHAPE + NUM_EXPRESSION].copy(),
    )
