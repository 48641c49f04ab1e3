"""`bench quality`: numbers for the look of what users see.

    ./holocap bench quality [--face-clip PATH] [--body-clip PATH] [--json FILE]

* face_psnr_db: the textured face mesh drawn from the input camera (a z-buffer of the mesh
  with its vertex colours) against the frame, PSNR inside mediapipe's face oval; median over
  the face clip's frames (default: the shared talking-head clip).
* body_psnr_db: the textured body mesh likewise, inside the person mask (the mask's pieces
  that the fitted person covers); over the body clip (default: the shared street clip).
* cracks_face, cracks_body: background pixels of a 1280×720 shaded mesh render over a
  contrasting background where the mesh's own triangles cover the pixel (the first 20
  frames with that mesh): the background seen through the surface, not the real openings
  between limbs (the markdown also gives those thin gaps).
* volume_iou, volume_psnr_db, outline_step_px: the yaw-0 volume view against the person
  mask and the frame (engine.bench.quality_volume), on every 20th frame of both clips; each
  clip's median, and in the JSON the worse clip's (the goals hold on both).

The colours come from the stages as the app runs them (sampled a few times a second on a
helper thread), so the numbers include the colours' lag behind the motion.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine.bench import BenchOptions, peak_rss_mb

log = logging.getLogger(__name__)

CRACK_FRAMES = 20
RENDER_SIZE = (1280, 720)
MAGENTA = (1.0, 0.0, 1.0)


def psnr_db(rendered: np.ndarray, frame: np.ndarray, region: np.ndarray) -> float | None:
    """PSNR (dB, peak 255) of `rendered` against `frame` over the (H, W) bool `region`."""
    if region.sum() < 50:
        return None
    diff = rendered[region].astype(np.float64) - frame[region].astype(np.float64)
    mse = float(np.mean(diff ** 2))
    return 99.0 if mse <= 1e-12 else 10.0 * np.log10(255.0 ** 2 / mse)


def textured_render(image_hw: tuple[int, int], pixels: np.ndarray, vertices_camera: np.ndarray,
                    triangles: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """The mesh with its vertex colours as the input camera sees it: (H, W, 3) uint8 BGR,
    black where it does not cover."""
    from engine.render.raster_cpu import interpolate, rasterize

    h, w = image_hw
    raster = rasterize(np.concatenate([pixels[:, :2], vertices_camera[:, 2:3]], axis=1).astype(np.float32),
                       triangles, h, w)
    return np.clip(interpolate(raster, triangles, colours.astype(np.float32)) + 0.5, 0, 255).astype(np.uint8)


def face_oval_mask(landmarks: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool inside mediapipe's face oval (the hull of its FACE_OVAL landmarks)."""
    import cv2
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    index = sorted({i for edge in FACEMESH_FACE_OVAL for i in edge})
    hull = cv2.convexHull(np.round(landmarks[index, :2]).astype(np.int32))
    mask = np.zeros(image_hw, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def mesh_coverage(fr: Any, view: Any, part: str, width: int, height: int) -> np.ndarray:
    """(H, W) bool: the pixels the mesh view's triangles of `part` cover, computed on the CPU
    with the renderer's own matrices (pixel centres, both windings): where no background can
    show unless the GL render has a crack."""
    from engine.render.raster_cpu import coverage
    from engine.render.scene import SceneRenderer
    from engine.render.transforms import Rect

    result = fr.get(part)
    vertices, faces = ((result.vertices_camera, result.triangles) if part == "face"
                       else (result.vertices, result.faces))
    model_view, projection = SceneRenderer.mesh_matrices(fr, view, Rect(0, 0, width, height), [vertices])
    clip = np.concatenate([vertices, np.ones((len(vertices), 1), np.float32)], axis=1) @ (projection @ model_view).T
    ahead = clip[:, 3] > 1e-6
    ndc = clip[:, :2] / np.where(ahead, clip[:, 3], 1.0)[:, None]
    # Window pixel centres are at (i + 0.5); the CPU kernel tests integer positions; image
    # rows run top-down (the framebuffer is read back flipped).
    xy = np.stack([(ndc[:, 0] * 0.5 + 0.5) * width - 0.5, (0.5 - ndc[:, 1] * 0.5) * height - 0.5], axis=1)
    # triangles reaching the camera plane are left out (in the kernel)
    return coverage(xy.astype(np.float32), np.asarray(faces), height, width, depth=clip[:, 3], near=1e-6) > 0


def surface_cracks(image: np.ndarray, covered: np.ndarray) -> int:
    """Background (magenta) pixels of a render over magenta where the mesh's triangles cover
    the pixel, a pixel away from the silhouette (where rounding differs): background seen
    through the surface. Real openings (between an arm and the body) are not covered, so
    they do not count."""
    import cv2

    background = (image[..., 0] > 235) & (image[..., 1] < 20) & (image[..., 2] > 235)
    interior = cv2.erode(covered.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return int((interior & background).sum())


def crack_pixels(image: np.ndarray) -> int:
    """Background (magenta) pixels inside the silhouette of a render over magenta, in gaps
    narrower than 3 pixels: cracks, not the real openings (between an arm and the body)."""
    from scipy import ndimage

    background = (image[..., 0] > 235) & (image[..., 1] < 20) & (image[..., 2] > 235)
    holes = ndimage.binary_fill_holes(~background) & background
    wide = ndimage.binary_opening(holes, structure=np.ones((3, 3), bool))
    return int((holes & ~wide).sum())


def person_region(mask: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """The parts of the person mask that belong to the fitted person: its connected pieces
    that the body render covers for at least a third (a street clip has several people)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    overlap = ndimage.sum(covered, labels, range(1, count + 1))
    size = ndimage.sum(np.ones_like(mask), labels, range(1, count + 1))
    keep = np.flatnonzero(overlap >= size / 3.0) + 1
    return np.isin(labels, keep)


def measure_clip(clip: Path, part: str, renderer: Any, max_frames: int) -> dict[str, Any]:
    from engine.pipeline import Pipeline
    from engine.render.view import ViewSettings
    from engine.sources.factory import open_source
    from engine.stage_factory import StageOptions, build_stages

    source = open_source(str(clip))
    pipeline = Pipeline(source, build_stages(["face", "body"], StageOptions()), lossless=True)
    shaded = ViewSettings(mode="mesh", shading="phong", background=MAGENTA, show_status=False,
                          show_face=part == "face", show_body=part == "body")
    psnrs: list[float] = []
    covered_psnrs: list[float] = []  # only where the mesh covers the region: the colours alone
    cracks: list[int] = []
    thin_gaps: list[int] = []  # thin background gaps inside the silhouette, openings included
    frames = 0
    try:
        for _ in range(max_frames):
            frame = source.read()
            if frame is None:
                break
            frames += 1
            fr = pipeline.process_frame(frame)
            result, perception = fr.get(part), fr.get("perception")
            if result is None or perception is None or result.vertex_colours is None:
                continue
            hw = frame.image.shape[:2]
            if part == "face":
                if perception.face_landmarks is None:
                    continue
                pixels, vertices, tris = result.vertices_image, result.vertices_camera, result.triangles
                region = face_oval_mask(perception.face_landmarks, hw)
            else:
                if perception.segmentation is None or not len(result.vertices):
                    continue
                pixels, vertices, tris = result.vertex_pixels(), result.vertices, result.faces
                region = None
            rendered = textured_render(hw, pixels, vertices, tris, result.vertex_colours)
            if region is None:
                mask = perception.segmentation > 0.5
                region = person_region(mask, mask & rendered.any(axis=2))
            value = psnr_db(rendered, frame.image, region)
            if value is not None:
                psnrs.append(value)
            covered = psnr_db(rendered, frame.image, region & rendered.any(axis=2))
            if covered is not None:
                covered_psnrs.append(covered)
            if len(cracks) < CRACK_FRAMES:
                image = renderer.render(fr, shaded)
                cracks.append(surface_cracks(image, mesh_coverage(fr, shaded, part, *RENDER_SIZE)))
                thin_gaps.append(crack_pixels(image))
    finally:
        pipeline.close()
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return {"clip": clip.name, "frames": frames, "measured": len(psnrs),
            "psnr_db": float(np.median(psnrs)) if psnrs else None,
            "psnr_db_p10": float(np.percentile(psnrs, 10)) if psnrs else None,
            "covered_psnr_db": float(np.median(covered_psnrs)) if covered_psnrs else None,
            "cracks": int(np.median(cracks)) if cracks else None, "cracks_max": max(cracks) if cracks else None,
            "thin_gaps_max": max(thin_gaps) if thin_gaps else None,
            "crack_frames": len(cracks)}


def run(options: BenchOptions) -> str:
    from engine.render.headless import HeadlessRenderer

    renderer = HeadlessRenderer(*RENDER_SIZE)  # first: PyOpenGL must pick EGL before anything imports it
    media = options.shared_dir / "media"
    face_clip = Path(options.face_clip) if options.face_clip else media / "talking_head.mp4"
    body_clip = Path(options.body_clip) if options.body_clip else media / "street_people.avi"
    max_frames = 30 if options.quick else 400
    t0 = time.monotonic()
    try:
        face = measure_clip(face_clip, "face", renderer, max_frames)
        body = measure_clip(body_clip, "body", renderer, max_frames)
    finally:
        renderer.close()
    from engine.bench.quality_volume import measure_clip_volume

    volumes = [measure_clip_volume(clip, max_frames) for clip in (face_clip, body_clip)]

    def worst(key: str, pick) -> float | None:
        values = [v[key] for v in volumes if v[key] is not None]
        return pick(values) if values else None

    summary = {"face_psnr_db": face["psnr_db"], "body_psnr_db": body["psnr_db"],
               "volume_iou": worst("iou", min), "volume_psnr_db": worst("psnr_db", min),
               "cracks_face": face["cracks"], "cracks_body": body["cracks"],
               "outline_step_px": worst("outline_step_px", max)}
    if options.json is not None:
        options.json.write_text(json.dumps(summary, indent=2))
    fmt = (lambda v, d=2: "-" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v)))
    lines = [
        "Textured meshes re-rendered from the input camera against the frame (PSNR, dB, peak 255;"
        " face: inside mediapipe's face oval; body: inside the parts of the person mask the fitted"
        " person covers; also only where the mesh covers), and crack pixels: background of a"
        f" {RENDER_SIZE[0]}×{RENDER_SIZE[1]} shaded render over magenta where the mesh's own triangles cover"
        " the pixel (computed on the CPU with the renderer's matrices, a pixel inside the silhouette);"
        " thin gaps: background inside the silhouette in gaps under 3 px wide, real openings between"
        f" limbs included; first {CRACK_FRAMES} frames with the mesh.", "",
        "| mesh | clip | frames | measured | PSNR median | PSNR 10th pct | PSNR where the mesh covers | cracks median | cracks max | thin gaps max |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in (("face", face), ("body", body)):
        lines.append(f"| {name} | {row['clip']} | {row['frames']} | {row['measured']} | {fmt(row['psnr_db'])} | "
                     f"{fmt(row['psnr_db_p10'])} | {fmt(row['covered_psnr_db'])} | {fmt(row['cracks'])} | "
                     f"{fmt(row['cracks_max'])} | {fmt(row['thin_gaps_max'])} |")
    lines += ["", "The volume's yaw-0 view (three 257-voxel views, as headless runs render them) on every"
              " 20th frame, drawn as the app draws it at a 512×512 output, against the person mask and the"
              " frame sampled at each output pixel's surface point; outline step: 95th percentile"
              " distance between its outline and the mask's, in output pixels:", "",
              "| clip | views | IoU | PSNR dB | outline step px |", "|---|---|---|---|---|"]
    for v in volumes:
        lines.append(f"| {v['clip']} | {v['views']} | {fmt(v['iou'], 3)} | {fmt(v['psnr_db'])} | "
                     f"{fmt(v['outline_step_px'], 1)} |")
    lines += ["",
              f"Took {time.monotonic() - t0:.0f} s; peak RSS {peak_rss_mb():.0f} MB; load average at the end: "
              + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + "."]
    return "\n".join(lines)
