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

Both travel as one (S, S, 4) 8-bit lattice image (`lattice_layers`: BGR the spread surface,
A a ramp across the outline), which the GL viewport draws with the texture unit's bilinear
filtering (shaders/quad.frag) and `volume_image` / `crisp_view` draw the same way on the CPU
(PNG views, volume.mp4, `bench quality`).

Results made without a silhouette field (older servers) fall back to the hit mask's own
bilinear crossing: a smooth outline, only less exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.image_ops import spread

# The outline's distance is kept to this many lattice pixels either side in 8 bits: the two
# rays either side of a crossing lie within ~1.4 of it, so the crossing interpolates
# unclipped, and a step of 3/255 lattice pixels is 0.2 output pixels at 16x.
COVERAGE_RANGE_PX = 1.5


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


def outline_distance(silhouette: np.ndarray) -> np.ndarray:
    """(S, S) float32 signed distance to the silhouette field's zero crossing, in lattice
    pixels (> 0 inside): the field over the length of its gradient."""
    sil = np.asarray(silhouette, np.float32)
    gy, gx = np.gradient(sil)
    return sil / np.maximum(np.sqrt(gx * gx + gy * gy), 1e-6)


def outline_ramp(silhouette: np.ndarray | None, hit: np.ndarray) -> np.ndarray:
    """(S, S) uint8 ramp across the outline: the signed distance clipped to
    +-COVERAGE_RANGE_PX lattice pixels, as (distance / (2 * range) + 0.5) * 255; 0 when
    nothing is hit."""
    if not hit.any():
        return np.zeros(hit.shape, np.uint8)
    distance = outline_distance(_field(silhouette, hit))
    return np.round(np.clip(distance / (2.0 * COVERAGE_RANGE_PX) + 0.5, 0.0, 1.0) * 255.0).astype(np.uint8)


def coverage_scale(pixels_per_lattice_px: float) -> float:
    """The factor that turns the interpolated ramp (in [0, 1], 0.5 on the outline) into
    coverage at this output scale: coverage = (ramp - 0.5) * scale + 0.5, clipped."""
    return 2.0 * COVERAGE_RANGE_PX * float(pixels_per_lattice_px)


def spread_surface(image: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """A lattice image (S, S, 3) uint8 with the surface's values carried outwards
    (`spread`), ready to be interpolated bilinearly."""
    return np.clip(spread(image.astype(np.float32), hit) + 0.5, 0, 255).astype(np.uint8)


def coverage(ramp: np.ndarray, size: int) -> np.ndarray:
    """(P, P) float32 coverage at size x size from the (S, S) uint8 ramp, as the GL viewport
    computes it (shaders/quad.frag)."""
    big = cv2.resize(ramp.astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.clip((big - 0.5) * coverage_scale(size / ramp.shape[1]) + 0.5, 0.0, 1.0)


def upsample_surface(image: np.ndarray, hit: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A lattice image (S, S, 3) uint8 (colour, or normals as (n + 1) / 2 * 255) at alpha's
    size, composited over black: the surface's values spread outwards first, so the
    outline keeps the surface's colour."""
    return _over_black(spread_surface(image, hit), alpha)


def crisp_view(color: np.ndarray, normal: np.ndarray | None, depth: np.ndarray,
               silhouette: np.ndarray | None, size: int) -> CrispView:
    """One view (lattice images as in VolumeResult, S x S) drawn at size x size; `normal`
    may be None when only the colour is wanted."""
    size = int(size)
    if size < 1:
        raise ValueError(f"crisp_view size must be at least 1 pixel, not {size}")
    hit = np.isfinite(depth)
    alpha = coverage(outline_ramp(silhouette, hit), size)
    d = cv2.resize(spread(np.nan_to_num(depth), hit), (size, size), interpolation=cv2.INTER_LINEAR)
    d[alpha < 0.5] = np.nan
    return CrispView(color=upsample_surface(color, hit, alpha),
                     normal=None if normal is None else upsample_surface(normal, hit, alpha),
                     alpha=alpha, depth=d)


def crisp_volume_view(volume, index: int, size: int, normal: bool = True) -> CrispView:
    """View `index` of a VolumeResult at size x size (without its normals unless `normal`)."""
    return crisp_view(volume.color[index], volume.normal[index] if normal else None, volume.depth[index],
                      _silhouette(volume, index), size)


def lattice_layers(volume, index: int, channel: str = "color") -> np.ndarray:
    """View `index` as the (S, S, 4) uint8 lattice image any output size is drawn from: BGR
    the surface's colour (or, channel "normal", its normals) spread outwards, A the outline
    ramp. One 8-bit texture: software GL samples it as fast as the plain image (a float
    distance texture beside it cost llvmpipe ~60 ms of CPU a second, measured)."""
    images = volume.normal if channel == "normal" else volume.color
    hit = np.isfinite(volume.depth[index])
    return np.dstack([spread_surface(images[index], hit), outline_ramp(_silhouette(volume, index), hit)])


def volume_image(volume, index: int, size: int, channel: str = "color") -> np.ndarray:
    """What the app shows: view `index` of a VolumeResult as a (size, size, 3) uint8 BGR image
    of its colour or (channel "normal") its normals, over black."""
    layers = lattice_layers(volume, index, channel)
    return _over_black(layers[..., :3], coverage(layers[..., 3], size))


def volume_images(volume, index: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """View `index`'s colour and normal images as `volume_image` draws them, the outline's
    coverage computed once for both."""
    hit = np.isfinite(volume.depth[index])
    alpha = coverage(outline_ramp(_silhouette(volume, index), hit), size)
    return (_over_black(spread_surface(volume.color[index], hit), alpha),
            _over_black(spread_surface(volume.normal[index], hit), alpha))


def _over_black(surface: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The (S, S, 3) uint8 lattice surface interpolated bilinearly to alpha's size and
    weighted by it."""
    size = alpha.shape[0]
    big = cv2.resize(np.ascontiguousarray(surface), (size, size), interpolation=cv2.INTER_LINEAR)
    return cv2.multiply(big, cv2.merge([alpha, alpha, alpha]), dtype=cv2.CV_8U)


def _silhouette(volume, index: int) -> np.ndarray | None:
    silhouette = getattr(volume, "silhouette", None)
    return None if silhouette is None else silhouette[index]


def _field(silhouette: np.ndarray | None, hit: np.ndarray) -> np.ndarray:
    """The silhouette field, or for a result without one the hit mask's own (+-0.5)."""
    return hit.astype(np.float32) - 0.5 if silhouette is None else silhouette


__all__ = ["COVERAGE_RANGE_PX", "CrispView", "coverage", "coverage_scale", "crisp_view", "crisp_volume_view",
           "lattice_layers", "outline_distance", "outline_ramp", "spread_surface", "upsample_surface",
           "volume_image", "volume_images"]
