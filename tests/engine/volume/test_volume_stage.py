"""The volume stage: VolumeResult shapes and coverage, views that differ by yaw, back-end
choice, the PIFu path's plumbing (random official-layout checkpoint) and one real photo
through perception -> body -> volume."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from engine.frame import Frame
from engine.perception.result import PerceptionResult
from engine.volume.result import VolumeResult
from engine.volume.stage import VolumeSettings, VolumeStage
from tests.engine.volume.synthetic_body import (CENTRE, FOCAL, HEIGHT, WIDTH, capsule_body, silhouette,
                                                two_tone_frame)

SMALL = (17, 33, 65)  # 65 x 65 views keep the tests quick


@pytest.fixture(scope="module")
def inputs():
    body = capsule_body()
    perception = PerceptionResult(image_size=(HEIGHT, WIDTH), segmentation=silhouette(body))
    return Frame(two_tone_frame(), 0, 0.0, "synthetic"), {"body": body, "perception": perception}


@pytest.fixture(scope="module")
def result(inputs) -> VolumeResult:
    # The lattice's own colours (color_px None): shapes at the lattice; refined views below.
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(-45.0, 0.0, 45.0),
                                       color_px=None), device="cpu")
    return stage.process(*inputs)


def test_result_shapes_and_coverage(result):
    s = SMALL[-1]
    assert result.backend == "field"
    np.testing.assert_array_equal(result.yaw_deg, [-45.0, 0.0, 45.0])
    assert result.color.shape == (3, s, s, 3) and result.color.dtype == np.uint8
    assert result.normal.shape == (3, s, s, 3) and result.normal.dtype == np.uint8
    assert result.depth.shape == (3, s, s) and result.depth.dtype == np.float32
    hit = np.isfinite(result.depth)
    # The capsule (0.3 x 1.5 m in a 1.73 m cube) covers roughly 0.17 x 0.87 of the view.
    assert 0.08 < hit[1].mean() < 0.3
    assert hit.mean(axis=(1, 2)).min() > 0.05
    assert np.all(result.color[~hit] == 0) and np.all(result.color[hit].max(axis=-1) > 0)
    assert np.all(result.normal[~hit] == 0)
    assert result.stats["queries"] == sum(result.stats["queries_per_view"]) > 0
    json = result.to_json()
    assert json["backend"] == "field" and len(json["coverage"]) == 3


def test_a_coarse_lattice_is_refined_to_color_px_with_the_frame_sharp(inputs, result):
    """The two-tone frame's edge: drawn from the colour field per refined pixel it is as
    sharp as the refined pixels; the lattice's colours scaled up blur it over a voxel."""
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,), color_px=260),
                        device="cpu")
    fine = stage.process(*inputs)
    assert fine.color.shape == (1, 260, 260, 3) and fine.depth.shape == (1, 260, 260)
    assert fine.silhouette.shape == (1, 260, 260) and fine.stats["ms_color_refine"] > 0
    hit = np.isfinite(fine.depth[0])
    coarse_hit = cv2.resize(np.isfinite(result.depth[1]).astype(np.uint8), (260, 260),
                            interpolation=cv2.INTER_NEAREST) > 0
    assert (hit & coarse_hit).sum() / (hit | coarse_hit).sum() > 0.9  # the same shape

    # Away from the outline, the surface pixels that are neither the frame's red nor its blue
    # half: the blur of the halves' edge.
    inside = cv2.erode((hit & coarse_hit).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0

    def mixed(colour: np.ndarray) -> int:
        return int((inside & (np.abs(colour[..., 2].astype(int) - colour[..., 0].astype(int)) < 100)).sum())

    scaled = cv2.resize(result.color[1], (260, 260), interpolation=cv2.INTER_LINEAR)
    assert mixed(fine.color[0]) * 10 <= mixed(scaled)  # measured 16 against 469


def test_views_differ_across_yaws(result):
    # The frame is two-toned left/right: the front view shows both, the side views mostly one.
    c = result.color.astype(np.int32)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert np.abs(c[a] - c[b]).mean() > 2.0
    hit = np.isfinite(result.depth)
    left, right = (result.color[i][hit[i]].astype(float).mean(axis=0) for i in (0, 2))
    # BGR: the right half of the frame is blue (B high), the left half red (R high).
    # yaw +45 moves the viewer to the camera's left, so it sees more of the left (red) side.
    assert left[0] > left[2] and right[2] > right[0]


def test_front_view_matches_the_silhouette(result, inputs):
    # Each yaw-0 pixel's surface point projects into the person mask.
    frame, ctx = inputs
    s = SMALL[-1]
    half, centre = result.stats["cube_half_m"], np.array(result.stats["cube_centre_m"])
    rows, cols = np.nonzero(np.isfinite(result.depth[1]))
    c = -1.0 + (2.0 * np.arange(s) + 1.0) / s
    pts = centre + half * np.column_stack((c[cols], c[rows], result.depth[1][rows, cols] - 1.0))
    uv = np.rint(pts[:, :2] / pts[:, 2:3] * FOCAL + CENTRE).astype(int)
    inside = ctx["perception"].segmentation[uv[:, 1], uv[:, 0]] > 0.5
    assert inside.mean() > 0.97


def test_missing_inputs_give_none(inputs):
    frame, ctx = inputs
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL), device="cpu")
    assert stage.process(frame, {"perception": ctx["perception"]}) is None
    assert stage.process(frame, {"body": ctx["body"]}) is None


def test_auto_without_weights_uses_the_field(caplog):
    stage = VolumeStage(VolumeSettings(backend="auto", resolutions=SMALL), device="cpu")
    assert stage.backend == "field"
    assert any("pifu" in r.getMessage().lower() for r in caplog.records)
    with pytest.raises(ValueError):
        VolumeStage(VolumeSettings(backend="nerf"), device="cpu")


def test_pifu_path_runs_on_an_official_layout_checkpoint(unxz, inputs):
    # Plumbing only: random weights in PIFu's checkpoint layout (never shown to a user).
    from engine.volume.pifu import load_pifu

    model = load_pifu(unxz("reference/pifu/pifu_netG.pth.xz"), unxz("reference/pifu/pifu_netC.pth.xz"))
    stage = VolumeStage(VolumeSettings(backend="pifu", resolutions=(9, 17, 33), yaws_deg=(0.0,)), device="cpu",
                        pifu_model=model)
    result = stage.process(*inputs)
    assert result.backend == "pifu"
    # The colour net is asked per refined pixel as the offline field's colours are.
    c = VolumeSettings().color_px
    assert result.color.shape == (1, c, c, 3) and result.depth.shape == (1, c, c)
    assert result.stats["queries"] > 0 and result.stats["ms_color_refine"] > 0


def test_coco_photo_through_perception_body_volume(shared_file):
    from engine.body.stage import BodySettings, BodyStage
    from engine.perception.stage import PerceptionSettings, PerceptionStage
    from tests.engine.body.anny_synthetic import anny_data

    image = cv2.imread(str(shared_file("media/coco_000000000241.jpg")))
    frame = Frame(image, 0, 0.0, "coco_000000000241.jpg")
    perception = PerceptionStage(PerceptionSettings(face=False, static_image_mode=True))
    try:
        seen = perception.process(frame, {})
    finally:
        perception.close()
    body = BodyStage(BodySettings(backend="anny", smoothing=False), model_data=anny_data()).process(
        frame, {"perception": seen})
    assert body is not None and seen.segmentation is not None
    res = (17, 33, 65, 129)
    result = VolumeStage(VolumeSettings(backend="field", resolutions=res), device="cpu").process(
        frame, {"body": body, "perception": seen})
    c = VolumeSettings().color_px
    assert result is not None and result.color.shape == (3, c, c, 3) and result.stats["resolution"] == 129
    hit = np.isfinite(result.depth)
    assert hit.mean(axis=(1, 2)).min() > 0.05
    # The front view lands on the person: its pixels project into the mask ...
    s = result.depth.shape[1]
    half, centre = result.stats["cube_half_m"], np.array(result.stats["cube_centre_m"])
    rows, cols = np.nonzero(hit[1])
    c = -1.0 + (2.0 * np.arange(s) + 1.0) / s
    pts = centre + half * np.column_stack((c[cols], c[rows], result.depth[1][rows, cols] - 1.0))
    uv = pts[:, :2] / pts[:, 2:3] * body.camera_focal_px + body.camera_center_px
    uv = np.clip(np.rint(uv).astype(int), 0, [image.shape[1] - 1, image.shape[0] - 1])
    assert (seen.segmentation[uv[:, 1], uv[:, 0]] > 0.5).mean() > 0.95
    # ... and its colours are the person's (mean BGR within 25 levels of the masked frame's).
    person = image[seen.segmentation > 0.5].astype(float).mean(axis=0)
    ours = result.color[1][hit[1]].astype(float).mean(axis=0)
    assert np.abs(person - ours).max() < 25.0


def test_steady_cube_holds_the_frame_cube_and_reset_forgets_it(inputs):
    from engine.volume.offline_field import CubeMap
    from engine.volume.stage import steady_cube

    raw = CubeMap(centre=np.array([0.1, 0.0, 3.0]), half=0.8)
    held = steady_cube(raw, np.array([0.0, 0.0, 3.0, 0.5]))
    np.testing.assert_allclose(held.centre, [0.0, 0.0, 3.0])
    assert held.half == pytest.approx(0.9)  # grown to hold the raw cube
    assert steady_cube(raw, np.array([0.1, 0.0, 3.0, 1.0])).half == pytest.approx(1.0)

    frame, ctx = inputs
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,)), device="cpu")
    first = stage.process(frame, ctx)
    moved = capsule_body(offset_y=0.1)
    moved_ctx = {"body": moved,
                 "perception": PerceptionResult(image_size=(HEIGHT, WIDTH), segmentation=silhouette(moved))}
    second = stage.process(Frame(frame.image, 1, 1.0 / 30.0, frame.source_id), moved_ctx)
    # One frame later the steadied centre has moved only part of the way (0.1 m); after a
    # reset it jumps to the new cube (to the mask box's pixel rounding).
    dy = second.stats["cube_centre_m"][1] - first.stats["cube_centre_m"][1]
    assert 0.0 < dy < 0.09
    stage.reset()
    third = stage.process(Frame(frame.image, 2, 2.0 / 30.0, frame.source_id), moved_ctx)
    assert third.stats["cube_centre_m"][1] == pytest.approx(first.stats["cube_centre_m"][1] + 0.1, abs=0.005)


def test_a_jump_to_another_person_restarts_the_steadied_cube(inputs):
    from engine.volume.offline_field import CubeMap
    from engine.volume.stage import is_cut

    last = np.array([0.0, 0.0, 3.0, 0.8])
    assert not is_cut(CubeMap(np.array([0.1, 0.0, 3.0]), 0.85), last)
    assert is_cut(CubeMap(np.array([0.6, 0.0, 3.0]), 0.8), last)
    assert is_cut(CubeMap(np.array([0.0, 0.0, 3.0]), 0.4), last)
    frame, ctx = inputs
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,)), device="cpu")
    first = stage.process(frame, ctx)
    far = capsule_body(offset_y=0.6)
    far_ctx = {"body": far, "perception": PerceptionResult(image_size=(HEIGHT, WIDTH), segmentation=silhouette(far))}
    second = stage.process(Frame(frame.image, 1, 1.0 / 30.0, frame.source_id), far_ctx)
    assert second.stats["cube_half_m"] < 1.05 * first.stats["cube_half_m"]


def test_live_setting_localises_one_129_view_refined_to_color_px(inputs):
    settings = VolumeSettings.live(backend="field")
    assert settings.size == 129 and settings.yaws_deg == (0.0,)
    result = VolumeStage(settings, device="cpu").process(*inputs)
    c = settings.color_px
    assert result.color.shape == (1, c, c, 3) and result.stats["resolution"] <= 129
    assert np.isfinite(result.depth).mean() > 0.08


def test_pifu_crop_centres_the_person_at_nine_tenths_of_the_side():
    from engine.volume.pifu_field import pifu_crop

    image = np.zeros((480, 640, 3), np.uint8)
    seg = np.zeros((480, 640), np.float32)
    seg[100:400, 200:300] = 1.0  # 300 rows x 100 columns
    image[100:400, 200:300] = (10, 20, 30)  # BGR
    crop = pifu_crop(image, seg)
    rows, cols = np.nonzero(crop.mask > 0.5)
    assert (rows.max() + 1 - rows.min()) == pytest.approx(0.9 * 512, abs=2)
    assert 0.5 * (rows.max() + 1 + rows.min()) == pytest.approx(256, abs=1)
    assert 0.5 * (cols.max() + 1 + cols.min()) == pytest.approx(256, abs=1)
    np.testing.assert_array_equal(crop.rgb[256, 256], (30, 20, 10))  # RGB
    assert crop.rgb[10, 10].sum() == 0 and pifu_crop(image, seg * 0) is None


def test_cpu_threads_are_set_for_the_stage_and_restored(inputs, monkeypatch):
    import engine.volume.stage as stage_module

    seen = []
    real = stage_module.render_view

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(stage_module, "render_view", spy)
    torch.set_num_threads(2)
    try:
        VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,), cpu_threads=1),
                    device="cpu").process(*inputs)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_export_writes_a_coloured_mesh_in_camera_metres(inputs, tmp_path):
    import trimesh

    from tests.engine.volume.synthetic_body import DEPTH, LENGTH, RADIUS

    frame, ctx = inputs
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,)), device="cpu")
    stage.request_export(tmp_path)
    stage.process(frame, ctx)
    path = tmp_path / "volume_000000_field.ply"
    mesh = trimesh.load(path, process=False)
    v = np.asarray(mesh.vertices)
    # Viewer axes (y up, z towards the viewer): the capsule's axis is at z = -DEPTH.
    np.testing.assert_allclose(0.5 * (v.min(0) + v.max(0)), [0.0, 0.0, -DEPTH], atol=0.03)
    np.testing.assert_allclose(v.max(0) - v.min(0), [2 * RADIUS, LENGTH + 2 * RADIUS, 2 * RADIUS], atol=0.06)
    assert mesh.is_watertight
    assert mesh.visual.vertex_colors.shape == (len(v), 4)
    # Only the next frame is exported.
    path.unlink()
    stage.process(frame, ctx)
    assert not path.exists()
    with pytest.raises(ValueError):
        VolumeStage(VolumeSettings(backend="field", resolutions=SMALL), device="cpu").request_export()


def test_set_yaws_changes_the_views(inputs):
    stage = VolumeStage(VolumeSettings(backend="field", resolutions=SMALL, yaws_deg=(0.0,)), device="cpu")
    stage.set_yaws((30.0, 90.0))
    result = stage.process(*inputs)
    np.testing.assert_array_equal(result.yaw_deg, [30.0, 90.0])
    assert result.color.shape[0] == 2
