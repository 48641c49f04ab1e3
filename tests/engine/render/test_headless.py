"""Headless EGL renders of hand-built FrameResults (made in a subprocess by
headless_cases.py, because PyOpenGL must be imported with PYOPENGL_PLATFORM=egl).

Set HOLOCAP_RENDER_DEBUG_DIR to keep the rendered images as PNGs for a look.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.render.view import ViewSettings
from tests.engine.render import synthetic as syn
from tests.engine.render.headless_cases import NO_EGL_EXIT

REPO = Path(__file__).resolve().parents[3]
BACKGROUND_BGR = np.round(np.array(ViewSettings().background[::-1]) * 255).astype(int)


@pytest.fixture(scope="module", params=[0, 4], ids=["no-msaa", "msaa4"])
def renders(request, tmp_path_factory) -> dict[str, np.ndarray]:
    """Every case rendered without and with 4x multisampling (software GL defaults to none)."""
    out = tmp_path_factory.mktemp("headless_renders")
    env = dict(os.environ, PYOPENGL_PLATFORM="egl", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "tests.engine.render.headless_cases", str(out), str(request.param)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode == NO_EGL_EXIT:
        pytest.skip(f"no headless OpenGL (EGL) on this machine: {proc.stderr.strip()}")
    assert proc.returncode == 0, f"headless render process failed:\n{proc.stderr[-4000:]}"
    with np.load(out / "renders.npz") as data:
        images = {k: data[k] for k in data.files}
    debug_dir = os.environ.get("HOLOCAP_RENDER_DEBUG_DIR")
    if debug_dir:
        import cv2
        Path(debug_dir).mkdir(parents=True, exist_ok=True)
        for name, image in images.items():
            if image.ndim == 3:
                cv2.imwrite(str(Path(debug_dir) / f"{name}_msaa{request.param}.png"), image)
    return images


def foreground(image: np.ndarray, background=BACKGROUND_BGR, tol: int = 12) -> np.ndarray:
    """(H, W) bool: pixels that differ from the background colour by more than `tol`."""
    return np.abs(image.astype(int) - background).sum(axis=2) > tol


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_frame_texture_is_shown_pixel_exact_in_bgr(renders):
    image = syn.gradient_image()
    assert renders["frame_only"].shape == image.shape
    assert np.abs(renders["frame_only"].astype(int) - image).max() <= 1
    assert tuple(renders["frame_only"][40, 50]) == (255, 0, 0)  # the blue square stays blue


def test_frame_is_letterboxed_in_a_wider_view(renders):
    out = renders["frame_wide"]
    assert np.abs(out[:, 160:480].astype(int) - syn.gradient_image()).max() <= 1
    assert not foreground(out[:, :160]).any() and not foreground(out[:, 480:]).any()


def test_mirror_flips_image_and_meshes(renders):
    assert np.abs(renders["frame_mirror"].astype(int) - syn.gradient_image()[:, ::-1]).max() <= 1
    x0, _, x1, _ = bbox(foreground(renders["mesh_box_right"]))
    m0, _, m1, _ = bbox(foreground(renders["mesh_box_mirror"]))
    assert (x0 + x1) / 2 > syn.WIDTH / 2 + 20                 # 0.3 m right of the axis
    assert (m0 + m1) / 2 == pytest.approx(syn.WIDTH - (x0 + x1) / 2, abs=1.5)


def test_landmarks_are_splatted_at_their_pixels(renders):
    out = renders["points"].astype(int)
    landmarks = syn.spaced_landmarks()
    cols, rows = np.floor(landmarks[:, 0]).astype(int), np.floor(landmarks[:, 1]).astype(int)
    centre = out[rows, cols]
    # Face points are green (BGR ~ (102, 255, 51) at 90 % over the grey background).
    green = (centre[:, 1] > 180) & (centre[:, 2] < 120) & (centre[:, 0] < 150)
    assert green.all(), f"{(~green).sum()} of {len(landmarks)} landmarks not drawn at their pixel"
    # Each splat's intensity centroid sits on its landmark (no half-pixel convention slip).
    weight = np.clip(out[..., 1] - syn.BACKGROUND_BGR[1], 0, None).astype(float)
    offsets = []
    for x, y in landmarks[:, :2]:
        x0, y0 = int(x) - 3, int(y) - 3
        win = weight[y0:y0 + 7, x0:x0 + 7]
        wy, wx = np.mgrid[y0:y0 + 7, x0:x0 + 7] + 0.5
        offsets.append(((win * wx).sum() / win.sum() - x, (win * wy).sum() / win.sum() - y))
    offsets = np.array(offsets)
    assert np.abs(offsets.mean(axis=0)).max() < 0.1 and np.median(np.abs(offsets)) < 0.3
    # Nothing is drawn farther than 3 px from a landmark.
    yy, xx = np.mgrid[0:syn.HEIGHT, 0:syn.WIDTH]
    far = np.ones((syn.HEIGHT, syn.WIDTH), bool)
    for x, y in landmarks[:, :2]:
        far &= (xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 > 9.0
    assert (out[far] == syn.BACKGROUND_BGR).all()


def test_face_mesh_wireframe_covers_the_projected_face(renders):
    out = renders["face_wire"]
    drawn = foreground(out, np.array(syn.BACKGROUND_BGR), tol=30)
    centre = syn.CAMERA.project(syn.SPHERE_CENTER[None])[0]
    yy, xx = np.mgrid[0:syn.HEIGHT, 0:syn.WIDTH]
    r = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1])
    radius = syn.CAMERA.focal_px * syn.SPHERE_RADIUS / math.sqrt(1 - syn.SPHERE_RADIUS ** 2)
    assert drawn[r < radius - 3].mean() > 0.5          # dense lines inside the silhouette
    assert not drawn[r > radius + 2].any()              # nothing outside it
    assert out[drawn][:, 0].mean() > out[drawn][:, 2].mean() + 40  # cyan-ish (blue > red in BGR)
    # The fitted 68 landmarks are magenta splats at their pixels.
    fit = syn.face_result().landmarks_2d
    centre_px = out[np.floor(fit[:, 1]).astype(int), np.floor(fit[:, 0]).astype(int)].astype(int)
    magenta = (centre_px[:, 2] > 180) & (centre_px[:, 0] > 150) & (centre_px[:, 1] < 120)
    assert magenta.mean() > 0.9


def test_skeleton_joins_only_visible_keypoints(renders):
    out = renders["skeleton"].astype(int)
    segment = out[198:203, 100:220]                     # 11 (60, 200) -> 12 (260, 200)
    yellow = (segment[..., 2] > 180) & (segment[..., 1] > 150) & (segment[..., 0] < 120)
    assert yellow.any(axis=0).all(), "the visible shoulder line has gaps"
    hidden = out[110:190, 55:66]                        # 11 -> 13 (13 not visible)
    assert (hidden == syn.BACKGROUND_BGR).all()


def test_mesh_view_silhouette_matches_the_camera_projection(renders):
    out = renders["mesh_sphere"]
    assert np.abs(out.astype(int) - syn.gradient_image()).mean() > 50  # not the raw frame
    mask = foreground(out)
    centre = syn.CAMERA.project(syn.SPHERE_CENTER[None])[0]
    radius = syn.CAMERA.focal_px * syn.SPHERE_RADIUS / math.sqrt(1 - syn.SPHERE_RADIUS ** 2)
    yy, xx = np.mgrid[0:syn.HEIGHT, 0:syn.WIDTH]
    disc = np.hypot(xx + 0.5 - centre[0], yy + 0.5 - centre[1]) < radius
    iou = (mask & disc).sum() / (mask | disc).sum()
    assert iou > 0.95, f"silhouette IoU {iou:.3f}"
    lit = out[disc].astype(float).mean(axis=1)
    assert lit.std() > 10, "a lit sphere should not be flat"


def test_zoom_wireframe_and_matcap_change_the_mesh_view(renders):
    base = foreground(renders["mesh_sphere"])
    zoomed = foreground(renders["mesh_sphere_zoom"])
    # Half the distance: radius f*r/sqrt(0.5^2 - r^2) instead of f*r/sqrt(1 - r^2).
    expected = math.sqrt((1 - syn.SPHERE_RADIUS ** 2) / (0.25 - syn.SPHERE_RADIUS ** 2))
    ratio = math.sqrt(zoomed.sum() / base.sum())
    assert ratio == pytest.approx(expected, rel=0.05)
    sphere = base
    for name in ("mesh_sphere_wire", "mesh_sphere_matcap"):
        diff = np.abs(renders[name].astype(int) - renders["mesh_sphere"]).sum(axis=2) > 30
        assert diff[sphere].mean() > 0.1, name
        assert not diff[~foreground(renders[name]) & ~sphere].any(), name
    # Wireframe lines are darker than the shaded surface.
    assert renders["mesh_sphere_wire"][sphere].mean() < renders["mesh_sphere"][sphere].mean() - 5


def test_orbit_turns_the_body_in_place(renders):
    x0, y0, x1, y1 = bbox(foreground(renders["mesh_box_yaw0"]))
    # A 0.5 x 0.1 x 0.1 m box 2 m ahead: its front face (1.95 m) spans f * 0.5 / 1.95 px.
    assert x1 - x0 == pytest.approx(syn.CAMERA.focal_px * 0.5 / 1.95, abs=3)
    assert y1 - y0 == pytest.approx(syn.CAMERA.focal_px * 0.1 / 1.95, abs=3)
    sx0, sy0, sx1, sy1 = bbox(foreground(renders["mesh_box_yaw90"]))
    assert sx1 - sx0 < 0.35 * (x1 - x0)                 # seen end-on
    assert abs((sx0 + sx1) - (x0 + x1)) <= 4            # turned about its own centre
    px0, py0, px1, py1 = bbox(foreground(renders["mesh_box_pitch60"]))
    assert px1 - px0 == pytest.approx(x1 - x0, abs=4)
    assert py1 - py0 > (y1 - y0) + 3                    # top face now visible


def text_pixels(image: np.ndarray) -> np.ndarray:
    return (image > 150).all(axis=2)


@pytest.mark.parametrize("name", ["mesh_off", "mesh_not_found", "volume_off", "waiting"])
def test_placeholders_show_text(renders, name):
    text = text_pixels(renders[name])
    assert text.sum() > 150, f"{name}: no placeholder text"
    rows = np.nonzero(text.any(axis=1))[0]
    assert rows.min() > syn.HEIGHT * 0.2 and rows.max() < syn.HEIGHT * 0.8  # centred
    assert not foreground(renders[name])[:20].any()                         # rest is empty


def test_mesh_view_notes_a_missing_mesh_in_the_corner(renders):
    note = text_pixels(renders["mesh_status"]) & ~text_pixels(renders["mesh_sphere"])
    assert note[int(syn.HEIGHT * 0.8):, : syn.WIDTH // 2].sum() > 100   # "body stage off", bottom left
    assert not note[: int(syn.HEIGHT * 0.7)].any()
    assert (foreground(renders["mesh_status"])[:150] == foreground(renders["mesh_sphere"])[:150]).all()


def test_placeholders_differ_by_reason(renders):
    assert (text_pixels(renders["mesh_off"]) != text_pixels(renders["mesh_not_found"])).sum() > 100


def test_volume_view_shows_the_nearest_yaw(renders):
    volume = syn.volume_result()
    np.testing.assert_array_equal(renders["volume_yaw80"], volume.color[2])
    np.testing.assert_array_equal(renders["volume_yaw200"], volume.color[0])
    np.testing.assert_array_equal(renders["volume_normal"], volume.normal[1])


def test_volume_view_is_drawn_at_the_viewport_pixels_with_a_smooth_outline(renders):
    """A disc on a 33-voxel lattice in a 240-pixel view (7.3 pixels per voxel): its outline
    is the disc's own, not a staircase of voxels."""
    from engine.bench.quality_volume import outline_distance_p95

    out = renders["volume_disc"]
    shown = out[..., 1] > 100  # grey 200 over the dark background
    c = np.arange(240) + 0.5 - 120.0
    x, y = np.meshgrid(c, c)
    truth = np.hypot(x, y) < 0.6 * 120
    assert (shown & truth).sum() / (shown | truth).sum() > 0.99
    assert outline_distance_p95(shown, truth) <= 1.0
    # The shader's drawing is the CPU one the PNG views, volume.mp4 and `bench quality` use.
    from engine.render.volume_image import volume_image

    from engine.render.volume_image import coverage_scale

    disc = syn.disc_volume_result()
    cpu = volume_image(disc, 0, 240).astype(int)
    # GL filters the 8-bit outline ramp to 8 bits: one step of it in coverage, of grey 200.
    step = 200 * coverage_scale(240 / disc.color.shape[2]) / 255
    assert np.abs(out.astype(int) - cpu).max() <= step + 2
    assert (np.abs(out.astype(int) - cpu) > 2).mean() < 0.01


def test_volume_view_labels_the_shown_image(renders):
    out = renders["volume_label"]
    volume = syn.volume_result()
    # 96x96 image letterboxed to 240x240 in the middle; the label sits bottom-left.
    label = text_pixels(out) & (np.abs(out.astype(int) - BACKGROUND_BGR).sum(axis=2) > 12)
    assert label[200:, :40].sum() > 20
    np.testing.assert_allclose(out[140:200, 180:260].reshape(-1, 3).mean(axis=0), volume.color[1, -1, -1], atol=2)


def test_split_view_puts_overlay_left_and_mesh_right(renders):
    out = renders["split"]
    left, right = out[:, :syn.WIDTH], out[:, syn.WIDTH:]
    # Left: the camera image with the face wireframe over it (most pixels untouched).
    assert (np.abs(left.astype(int) - syn.gradient_image()).max(axis=2) <= 1).mean() > 0.9
    # Right: the sphere, centred where the camera sees it (rows below 200 hold the
    # "body stage off" note).
    x0, y0, x1, y1 = bbox(foreground(right[:200]))
    centre = syn.CAMERA.project(syn.SPHERE_CENTER[None])[0]
    assert (x0 + x1) / 2 == pytest.approx(centre[0], abs=2) and (y0 + y1) / 2 == pytest.approx(centre[1], abs=2)


def test_steady_frames_allocate_no_gpu_storage(renders):
    before, after = renders["allocations"]
    assert before > 0 and after == before


def test_a_fold_hidden_behind_the_face_never_shows_through(renders):
    """The face mesh is pulled towards the viewer (to win over the body's head) by one
    constant depth shift: a slope-scaled polygon offset pulled the steep far side of folds
    (eyelids, lips, nose) through the near side, as dotted dark lines along its edges."""
    image = renders["mesh_fold"]
    x0, y0, x1, y1 = bbox(foreground(image))
    inner = image[y0 + 2:y1 - 2, x0 + 2:x1 - 2].astype(int)
    assert inner.size, "the near sheet is not drawn"
    median = np.median(inner.reshape(-1, 3), axis=0)
    off = np.abs(inner - median).sum(axis=2) > 30
    assert off.sum() == 0, f"{int(off.sum())} pixels of the hidden sheet show through the near one"


def test_textured_shading_shows_the_vertex_colours_and_plain_meshes_stay_lit(renders):
    """The default mesh shading draws a result's vertex colours (camera y down: the upper
    half of the sphere is red, the lower blue); a mesh without colours is drawn lit."""
    image = renders["mesh_sphere_textured"].astype(int)
    mask = foreground(renders["mesh_sphere_textured"])
    x0, y0, x1, y1 = bbox(mask)
    top = image[y0 + 3:(y0 + y1) // 2 - 3][mask[y0 + 3:(y0 + y1) // 2 - 3]]
    bottom = image[(y0 + y1) // 2 + 3:y1 - 3][mask[(y0 + y1) // 2 + 3:y1 - 3]]
    assert (top[:, 2] > top[:, 0] + 100).mean() > 0.95, "upper half should be red"
    assert (bottom[:, 0] > bottom[:, 2] + 100).mean() > 0.95, "lower half should be blue"
    plain = renders["mesh_sphere"].astype(int)[foreground(renders["mesh_sphere"])]
    assert np.abs(plain[:, 2] - plain[:, 0]).mean() < 100, "no colours: the lit albedo, not red/blue"


def test_the_crack_measure_finds_real_holes_and_nothing_on_a_closed_mesh(renders):
    """bench quality's crack count (background where the mesh's own triangles cover the
    pixel, computed on the CPU with the renderer's matrices) lines up with the GL render:
    0 on a whole sheet, and the holes of the same sheet with triangles removed."""
    from engine.bench.quality import mesh_coverage, surface_cracks

    face = syn.sheet_face_result()
    view = ViewSettings(mode="mesh", show_status=False, background=(1.0, 0.0, 1.0), shading="phong")
    covered = mesh_coverage(syn.frame_result(syn.gradient_image(), {"face": face}), view, "face",
                            syn.WIDTH, syn.HEIGHT)
    assert covered.sum() > 1000
    assert surface_cracks(renders["mesh_sheet_magenta"], covered) == 0
    assert surface_cracks(renders["mesh_sheet_holed_magenta"], covered) > 50
