"""The volumetric capture of one frame, seen from a few novel views."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.stage_protocol import jsonable


@dataclass(frozen=True)
class VolumeResult:
    """Direct renderings of the localised implicit field.

    yaw_deg: (N,) float32, the orbit angle of each view (0 = the input camera's view).
    color: (N, S, S, 3) uint8 BGR images of the surface, background black.
    normal: (N, S, S, 3) uint8 BGR encodings of view-space normals ((n + 1) / 2 * 255).
    depth: (N, S, S) float32 depth in cube units along the view ray, NaN where empty.
    stats: query counts and milliseconds, e.g. {"queries": int, "queries_per_level": [...],
        "ms_localize": float, "ms_render": float}.
    backend: "field" (offline default built from the body fit) or "pifu".
    """

    yaw_deg: np.ndarray
    color: np.ndarray
    normal: np.ndarray
    depth: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    backend: str = "field"

    # Empty pixels are NaN by design; only NaN colours or angles would be a broken result.
    NAN_ALLOWED: ClassVar[tuple[str, ...]] = ("depth",)

    def to_json(self) -> dict[str, Any]:
        covered = np.isfinite(self.depth).mean(axis=(1, 2))
        return {
            "backend": self.backend,
            "yaw_deg": jsonable(self.yaw_deg, 1),
            "coverage": jsonable(covered, 4),
            "stats": jsonable(self.stats, 2),
        }
