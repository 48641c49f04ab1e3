"""A volume view drawn at the output's pixel resolution, with a smooth outline.

The volume is rendered on its lattice: S x S pixels, one per ray (engine.volume.render).
Scaling that image up repeats each lattice pixel, so at S = 65 in a 520-pixel view the
outline is a staircase of 8-pixel steps. Here instead, at any output size:

* the outline is the zero crossing of the view's *silhouette field* (the largest field value
  along each ray minus the surface threshold, `VolumeResult.silhouette`), interpolated
  bilinearly between rays: across rays the same sub-voxel crossing the lattice already
  gives along each ray. Each output pixel's coverage comes from its estimated distance to
  that crossing (a one-pixel anti-aliased edge, never a step);
* colour, normals and depth are interpolated bilinearly, after the surface's values were
  carried two lattice pixels outwards, so that the outline takes the surface's colour and
  not a blend with the empty background.

Results made without a silhouette field (older servers) fall back to the hit mask's own
bilinear crossing: a smooth outline, only less exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPREAD_RINGS = 2  # bilinear interpolation reads one neighbour; two keep the edge clean


@dataclass(frozen=True)
class CrispView:
    """One volume view at output resolution (P x P).

    color, normal: (P, P, 3) uint8 BGR, composited over black by `alpha` (normal None when
        not asked for).
    alpha: (P, P) float32 coverage in [0, 1] (0.5 on the outline).
    depth: (P, P) float32 as in VolumeResult.depth, NaN where alpha < 0.5.
    """

    color: np.ndarray
    normal: np.ndarray | None
    alpha: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.alpha >= 0.5


def spread(values: np.ndarray, valid: np.ndarray, rings: int = SPREAD_RINGS) -> np.ndarray:
    """`values` (S, S[, C]) float32 with the invalid pixels within `rings` of a valid one set to
    the mean of their valid 3x3 neighbours, ring after ring (the valid ones unchanged)."""
    out = np.where(valid[..., None] if values.ndim == 3 else valid, values, 0).astype(np.float32)
    have = valid.astype(np.float32)
    for _ in range(rings):
        total = cv2.boxFilter(out * (have[..., None] if out.ndim == 3 else have), -1, (3, 3),
                              normalize=False, borderType=cv2.BORDER_CONSTANT)
        count = cv2.boxFilter(have, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        new = (have == 0) & (count > 0)
        if not new.any():
            break
        denom = np.maximum(count, 1.0)
        out[new] = (total / (denom[..., None] if out.ndim == 3 else denom))[new]
        have[new] = 1.0
    return out


def outline_alpha(silhouette: np.ndarray, size: int) -> np.ndarray:
    """(P, P) float32 coverage at size x size from the (S, S) silhouette field: the field over
    the length of its gradient is the signed distance to its zero crossing (in lattice
    pixels, interpolated bilinearly, then in output pixels), and a pixel whose centre lies
    on the crossing is half covered."""
    sil = np.asarray(silhouette, np.float32)
    gy, gx = np.gradient(sil)
    distance = sil / np.maximum(np.sqrt(gx * gx + gy * gy), 1e-6)
    alpha = cv2.resize(distance, (size, size), interpolation=cv2.INTER_LINEAR)
    alpha *= size / sil.shape[0]
    alpha += 0.5
    return np.clip(alpha, 0.0, 1.0, out=alpha)


def upsample_surface(image: np.ndarray, hit: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A lattice image (S, S, 3) uint8 (colour, or normals as (n + 1) / 2 * 255) at alpha's
    size, composited over black: the surface's values spread outwards first, so the
    outline keeps the surface's colour."""
    size = alpha.shape[0]
    filled = np.clip(spread(image.astype(np.float32), hit) + 0.5, 0, 255).astype(np.uint8)
    big = cv2.resize(filled, (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(big, cv2.merge([alpha, alpha, alpha]), dtype=cv2.CV_8U)


def crisp_view(color: np.ndarray, normal: np.ndarray | None, depth: np.ndarray,
               silhouette: np.ndarray | None, size: int) -> CrispView:
    """One view (lattice images as in VolumeResult, S x S) drawn at size x size; `normal`
    may be None when only the colour is wanted."""
    size = int(size)
    if size < 1:
        raise ValueError(f"crisp_view size must be at least 1 pixel, not {size}")
    hit = np.isfinite(depth)
    if not hit.any():
        empty = np.zeros((size, size, 3), np.uint8)
        return CrispView(empty, None if normal is None else empty.copy(), np.zeros((size, size), np.float32),
                         np.full((size, size), np.nan, np.float32))
    alpha = outline_alpha(_field(silhouette, hit), size)
    d = cv2.resize(spread(np.nan_to_num(depth), hit), (size, size), interpolation=cv2.INTER_LINEAR)
    d[alpha < 0.5] = np.nan
    return CrispView(color=upsample_surface(color, hit, alpha),
                     normal=None if normal is None else upsample_surface(normal, hit, alpha),
                     alpha=alpha, depth=d)


def volume_image(volume, index: int, size: int, channel: str = "color") -> np.ndarray:
    """What the app shows: view `index` of a VolumeResult as a (size, size, 3) uint8 BGR image
    of its colour or (channel "normal") its normals, over black."""
    images = volume.normal if channel == "normal" else volume.color
    silhouette = getattr(volume, "silhouette", None)
    hit = np.isfinite(volume.depth[index])
    field = _field(None if silhouette is None else silhouette[index], hit)
    return upsample_surface(images[index], hit, outline_alpha(field, int(size)))


def _field(silhouette: np.ndarray | None, hit: np.ndarray) -> np.ndarray:
    """The silhouette field, or for a result without one the hit mask's own (+-0.5)."""
    return hit.astype(np.float32) - 0.5 if silhouette is None else silhouette


def crisp_volume_view(volume, index: int, size: int, normal: bool = True) -> CrispView:
    """View `index` of a VolumeResult at size x size (without its normals unless `normal`)."""
    silhouette = getattr(volume, "silhouette", None)
    return crisp_view(volume.color[index], volume.normal[index] if normal else None, volume.depth[index],
                      None if silhouette is None else silhouette[index], size)


__all__ = ["CrispView", "crisp_view", "crisp_volume_view", "outline_alpha", "spread", "upsample_surface", "volume_image"]
