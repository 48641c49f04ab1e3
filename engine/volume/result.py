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
    silhouette: (N, S, S) float32, per view the largest field value along each ray minus the
        surface threshold (> 0 where the ray hits); engine.render.volume_image draws the outline
        from its zero crossing at any output size. None in results made without it.
    """

    yaw_deg: np.ndarray
    color: np.ndarray
    normal: np.ndarray
    depth: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    backend: str = "field"
    silhouette: np.ndarray | None = None

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
