"""The volume's numbers for `bench quality`: its yaw-0 view (the input camera's) against the
frame, as headless runs render it (three 257-voxel views, engine.volume.stage defaults).

The yaw-0 view is orthographic in the field's cube: view pixel [row j, col i] looks along
+z through x = c_i, y = c_j (c_k = -1 + (2k + 1) / S), and its depth is the surface's
distance from z = -1, in cube units (engine.volume.render). With the offline field's cube
(camera-space centre and half side, in the result's stats) each view pixel's surface point,
or for empty pixels the cube's centre plane, projects into the frame with the body fit's
camera. So the person mask and the frame are sampled on the view's own grid:

* volume_iou: the view's silhouette against the person mask sampled there, over the view
  pixels whose ray the camera saw (plus any hit beyond them, counted as wrong);
* volume_psnr_db: the view's colours against the frame's, inside that mask;
* outline_step_px: the 95th percentile distance between the view's outline and the mask's
  outline.

All three at a 512×512 output, the view drawn as the app draws it (engine.render.volume_image: the
outline from the silhouette field's crossing between rays), the mask and the frame sampled
at each output pixel's surface point.
"""
from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

OUTPUT_PX = 512
FRAME_EDGE_TOLERANCE_PX = 1.0  # a surface cut at the frame's edge projects within this of it
EVERY = 20  # every 20th frame of the clip gets a volume (each takes about a second here)


def view_to_image(stats: dict[str, Any], depth: np.ndarray, focal_px: float,
                  center_px: np.ndarray) -> np.ndarray | None:
    """(S, S, 2) float32 frame pixels seen by each view pixel (None without a cube)."""
    if "cube_half_m" not in stats or "cube_centre_m" not in stats:
        return None
    s = depth.shape[0]
    c = -1.0 + (2.0 * np.arange(s) + 1.0) / s
    x, y = np.meshgrid(c, c)  # [row j, col i] -> x = c_i, y = c_j
    z = np.where(np.isfinite(depth), depth - 1.0, 0.0)
    centre, half = np.asarray(stats["cube_centre_m"], np.float64), float(stats["cube_half_m"])
    points = centre + half * np.stack([x, y, z], axis=-1)
    zc = np.maximum(points[..., 2], 1e-3)
    return (points[..., :2] / zc[..., None] * focal_px + np.asarray(center_px)).astype(np.float32)


def outline_distance_p95(a: np.ndarray, b: np.ndarray) -> float | None:
    """95th percentile distance (pixels) from the outline of mask `a` to that of mask `b`."""
    def outline(m: np.ndarray) -> np.ndarray:
        m8 = m.astype(np.uint8)
        return (m8 - cv2.erode(m8, np.ones((3, 3), np.uint8))).astype(bool)

    oa, ob = outline(a), outline(b)
    if not oa.any() or not ob.any():
        return None
    dist = cv2.distanceTransform((~ob).astype(np.uint8), cv2.DIST_L2, 3)
    return float(np.percentile(dist[oa], 95))


def measure_view(volume: Any, body: Any, frame_image: np.ndarray, mask: np.ndarray) -> dict[str, float] | None:
    """IoU, PSNR and outline step of one VolumeResult's yaw-0 view (None if it has none), as
    the app draws it at a 512×512 output (engine.render.volume_image)."""
    from engine.render.volume_image import crisp_volume_view

    yaws = np.asarray(volume.yaw_deg)
    if not len(yaws) or np.min(np.abs(yaws)) > 1e-3:
        return None
    k = int(np.argmin(np.abs(yaws)))
    view = crisp_volume_view(volume, k, OUTPUT_PX, normal=False)
    pixels = view_to_image(volume.stats, view.depth, body.camera_focal_px, body.camera_center_px)
    if pixels is None:
        return None
    # The mask says nothing about what the camera did not see: view pixels whose ray leaves
    # the frame are judged only where the volume shows something there (a false hit). The
    # field is cut at the frame's edge, so where the person runs off the frame its surface
    # ends on the edge itself: those pixels read the mask at the edge (replicated), not 0.
    h, w = mask.shape
    tol = FRAME_EDGE_TOLERANCE_PX
    seen = ((pixels[..., 0] >= -0.5 - tol) & (pixels[..., 0] <= w - 0.5 + tol)
            & (pixels[..., 1] >= -0.5 - tol) & (pixels[..., 1] <= h - 0.5 + tol))
    sampled_mask = (cv2.remap(mask.astype(np.float32), pixels, None, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE) > 0.5) & seen
    sampled_frame = cv2.remap(frame_image, pixels, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    hit = view.mask
    union = (hit | sampled_mask).sum()  # pixels unseen by the camera count only if hit
    iou = float((hit & sampled_mask).sum() / union) if union else 0.0
    psnr = None
    if sampled_mask.sum() >= 50:
        # The surface's own colour where the view shows the surface: the anti-aliased edge
        # fades into the background, which the mask's own edge (sampled from the frame's
        # coarser pixels) cannot judge; IoU and the outline step judge the shape.
        alpha = np.where(hit, view.alpha, 1.0)[..., None]
        colour = view.color.astype(np.float64) / alpha
        diff = colour[sampled_mask] - sampled_frame[sampled_mask].astype(np.float64)
        mse = float(np.mean(diff ** 2))
        psnr = 99.0 if mse <= 1e-12 else 10.0 * np.log10(255.0 ** 2 / mse)
    return {"iou": iou, "psnr_db": psnr, "outline_step_px": outline_distance_p95(hit, sampled_mask)}


def measure_clip_volume(clip: Any, max_frames: int) -> dict[str, Any]:
    """The yaw-0 volume measures over every EVERY-th frame of `clip` (median of each)."""
    from engine.pipeline import Pipeline
    from engine.sources.factory import open_source
    from engine.stage_factory import StageOptions, build_stages

    source = open_source(str(clip))
    stages = build_stages(["body", "volume"], StageOptions())
    volume_stage = stages[-1]
    pipeline = Pipeline(source, stages[:-1], lossless=True)  # perception + body every frame
    rows: list[dict[str, float]] = []
    try:
        for i in range(max_frames):
            frame = source.read()
            if frame is None:
                break
            fr = pipeline.process_frame(frame)
            body, perception = fr.get("body"), fr.get("perception")
            if i % EVERY or body is None or perception is None or perception.segmentation is None:
                continue
            volume = volume_stage.process(frame, {"body": body, "perception": perception})
            if volume is None:
                continue
            row = measure_view(volume, body, frame.image, perception.segmentation > 0.5)
            if row is not None:
                rows.append(row)
    finally:
        pipeline.close()
        volume_stage.close()
        close = getattr(source, "close", None)
        if close is not None:
            close()

    def median(key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(values)) if values else None

    return {"clip": getattr(clip, "name", str(clip)), "views": len(rows), "iou": median("iou"),
            "psnr_db": median("psnr_db"), "outline_step_px": median("outline_step_px")}
