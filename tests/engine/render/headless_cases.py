"""Renders the headless test cases in a process of its own (PyOpenGL must be imported with
PYOPENGL_PLATFORM=egl before anything else imports it).

    python -m tests.engine.render.headless_cases OUT_DIR SAMPLES

renders with SAMPLES-times multisampling (0 = none) and writes OUT_DIR/renders.npz (one BGR image per case, plus counters). Exit code 3 means no
headless EGL context could be made (the message says why).
"""
from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.render.gl_context import HeadlessGLError
from engine.render.headless import HeadlessRenderer
from engine.render.view import OrbitCamera, ViewSettings
from engine.perception.result import PerceptionResult
from tests.engine.render import synthetic as syn

NO_EGL_EXIT = 3
MAGENTA = (1.0, 0.0, 1.0)


def skeleton_body() -> object:
    """Keypoints 11 and 12 visible (joined by an edge); 13 hidden (edge 11-13 not drawn)."""
    keypoints = np.zeros((33, 2), np.float32)
    visible = np.zeros(33, bool)
    keypoints[11], keypoints[12], keypoints[13] = (60, 200), (260, 200), (60, 100)
    visible[[11, 12]] = True
    return syn.body_result(keypoints_2d=keypoints, visible=visible)


def cases() -> dict[str, tuple[object, ViewSettings, tuple[int, int]]]:
    """name -> (frame_result, view, (width, height))."""
    size = (syn.WIDTH, syn.HEIGHT)
    gradient, flat = syn.gradient_image(), syn.flat_image()
    landmarks = syn.spaced_landmarks()
    perception = PerceptionResult((syn.HEIGHT, syn.WIDTH), face_landmarks=landmarks)
    face = syn.face_result()
    wide_box = syn.body_result()
    volume = syn.volume_result()
    mesh = ViewSettings(mode="mesh", show_status=False)  # no corner note over the silhouettes
    vol = ViewSettings(mode="volume", show_status=False)  # no label over the compared images
    return {
        "frame_only": (syn.frame_result(gradient, {}), ViewSettings(), size),
        "frame_wide": (syn.frame_result(gradient, {}), ViewSettings(), (2 * syn.WIDTH, syn.HEIGHT)),
        "frame_mirror": (syn.frame_result(gradient, {}), ViewSettings(mirror=True), size),
        "mesh_box_mirror": (syn.frame_result(gradient, {"body": syn.body_result(center=(0.3, 0.0, 2.0))}),
                            replace(mesh, mirror=True), size),
        "mesh_box_right": (syn.frame_result(gradient, {"body": syn.body_result(center=(0.3, 0.0, 2.0))}), mesh, size),
        "points": (syn.frame_result(flat, {"perception": perception}), ViewSettings(point_size_px=4.0), size),
        "face_wire": (syn.frame_result(flat, {"face": face}), ViewSettings(), size),
        "skeleton": (syn.frame_result(flat, {"body": skeleton_body()}), ViewSettings(), size),
        "mesh_sphere": (syn.frame_result(gradient, {"face": face}), mesh, size),
        "mesh_sphere_textured": (syn.frame_result(gradient, {"face": syn.face_result(coloured=True)}), mesh, size),
        "mesh_sheet_magenta": (syn.frame_result(gradient, {"face": syn.sheet_face_result()}),
                               replace(mesh, background=MAGENTA, shading="phong"), size),
        "mesh_sheet_holed_magenta": (syn.frame_result(gradient, {"face": syn.sheet_face_result(holes_every=9)}),
                                     replace(mesh, background=MAGENTA, shading="phong"), size),
        "mesh_fold": (syn.frame_result(gradient, {"face": syn.folded_face_result()}), mesh, size),
        "mesh_sphere_wire": (syn.frame_result(gradient, {"face": face}), replace(mesh, wireframe=True), size),
        "mesh_sphere_matcap": (syn.frame_result(gradient, {"face": face}), replace(mesh, shading="matcap"), size),
        "mesh_sphere_zoom": (syn.frame_result(gradient, {"face": face}), replace(mesh, orbit=OrbitCamera(0, 0, 0.5)), size),
        "mesh_box_yaw0": (syn.frame_result(gradient, {"body": wide_box}), mesh, size),
        "mesh_box_yaw90": (syn.frame_result(gradient, {"body": wide_box}), replace(mesh, orbit=OrbitCamera(90, 0, 1)), size),
        "mesh_box_pitch60": (syn.frame_result(gradient, {"body": wide_box}), replace(mesh, orbit=OrbitCamera(0, 60, 1)), size),
        "mesh_status": (syn.frame_result(gradient, {"face": face}), ViewSettings(mode="mesh"), size),
        "mesh_off": (syn.frame_result(gradient, {}), mesh, size),
        "mesh_not_found": (syn.frame_result(gradient, {"face": None, "body": None}), mesh, size),
        "volume_yaw80": (syn.frame_result(gradient, {"volume": volume}), replace(vol, volume_yaw_deg=80), (96, 96)),
        "volume_yaw200": (syn.frame_result(gradient, {"volume": volume}), replace(vol, volume_yaw_deg=200), (96, 96)),
        "volume_normal": (syn.frame_result(gradient, {"volume": volume}), replace(vol, volume_channel="normal"),
                          (96, 96)),
        "volume_label": (syn.frame_result(gradient, {"volume": volume}), ViewSettings(mode="volume"), size),
        "volume_disc": (syn.frame_result(gradient, {"volume": syn.disc_volume_result()}), vol, (240, 240)),
        "volume_off": (syn.frame_result(gradient, {}), ViewSettings(mode="volume"), size),
        "split": (syn.frame_result(gradient, {"face": face}), ViewSettings(mode="split"), (2 * syn.WIDTH, syn.HEIGHT)),
        "waiting": (None, ViewSettings(), size),
    }


def render_all(out_dir: Path, samples: int) -> None:
    images: dict[str, np.ndarray] = {}
    renderers: dict[tuple[int, int], HeadlessRenderer] = {}
    try:
        for name, (frame_result, view, size) in cases().items():
            if size not in renderers:
                renderers[size] = HeadlessRenderer(*size, samples=samples)
            images[name] = renderers[size].render(frame_result, view)
        # Steady frames must not allocate GL storage: render every view again at one size.
        renderer = renderers[(syn.WIDTH, syn.HEIGHT)]
        before = renderer.scene.gpu_allocations()
        for name, (frame_result, view, size) in cases().items():
            if size == (syn.WIDTH, syn.HEIGHT):
                renderer.render(frame_result, view)
        images["allocations"] = np.array([before, renderer.scene.gpu_allocations()])
    finally:
        for renderer in renderers.values():
            renderer.close()
    np.savez_compressed(out_dir / "renders.npz", **images)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    out_dir, samples = Path(sys.argv[1]), int(sys.argv[2])
    try:
        render_all(out_dir, samples)
    except HeadlessGLError as exc:
        print(f"no headless OpenGL: {exc}", file=sys.stderr)
        return NO_EGL_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
