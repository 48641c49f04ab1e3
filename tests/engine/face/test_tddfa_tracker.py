"""TddfaFaceTracker: detection, tracking from landmarks, re-detection and the FaceResult it builds.

The official BFM is not available, so the tracking logic runs on a stand-in face model
(68 landmarks on a square grid) and a stand-in regressor with a known camera matrix:
the landmark ROI then follows from the ROI rules by hand. A last test runs mediapipe's
bundled detector on a golden image and compares the ROI with the official one.
"""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from engine.pinhole import PinholeCamera
from engine.face.bfm import BfmModel
from engine.face.face_detector import FaceBox, MediapipeFaceDetector
from engine.face.roi import roi_from_box
from engine.face.tddfa import Regression
from engine.face.tddfa_tracker import EXPRESSION_NAMES, TddfaFaceTracker, TddfaTrackerSettings
from engine.frame import Frame
from engine.perception.result import PerceptionResult

HALF_SPAN = 1e5  # BFM units: the stand-in landmarks span [-HALF_SPAN, HALF_SPAN]^2
STABLE_SPAN_CROP = 120 / math.sqrt(2)  # landmarks spanning this many crop px keep the ROI size


def _grid_bfm() -> BfmModel:
    g = np.linspace(-HALF_SPAN, HALF_SPAN, 17)
    pts = [(x, -HALF_SPAN) for x in g] + [(x, HALF_SPAN) for x in g]
    pts += [(-HALF_SPAN, y) for y in g[1:-1]] + [(HALF_SPAN, y) for y in g[1:-1]]
    pts += [(0.0, 0.0)] * (68 - len(pts))
    mean = np.zeros((80, 3), np.float32)
    mean[:68, :2] = np.array(pts[:68])
    mean[:, 2] = np.linspace(0, 5e4, 80)  # some depth
    return BfmModel(mean=mean, shape_basis=np.zeros((80, 3, 40), np.float32),
                    exp_basis=np.zeros((80, 3, 10), np.float32), keypoints68=np.arange(68, dtype=np.int64),
                    triangles=np.array([[0, 1, 2], [2, 3, 4]], np.int32))


class _StubRegressor:
    """Camera matrix s * I with the model centre at the crop centre; alpha_exp[0] = 0.25."""

    def __init__(self, span_crop_px: float = STABLE_SPAN_CROP) -> None:
        s = span_crop_px / (2 * HALF_SPAN)
        self.params = np.zeros(62, np.float32)
        self.params[:12] = [s, 0, 0, 61.0, 0, s, 0, 60.0, 0, 0, s, 0.0]
        self.params[52] = 0.25
        self.rois: list[np.ndarray] = []

    def regress_roi(self, image, roi):
        self.rois.append(np.asarray(roi, np.float64))
        return Regression(roi=np.asarray(roi, np.float64), raw=np.zeros(62, np.float32), params=self.params)


class _StubDetector:
    def __init__(self, faces: list[FaceBox]) -> None:
        self.faces = faces
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return list(self.faces)

    def close(self):
        pass


def _frame(i: int = 0) -> Frame:
    return Frame(np.zeros((480, 640, 3), np.uint8), i, 0.0, "test")


def _tracker(detector, span=STABLE_SPAN_CROP, **settings) -> tuple[TddfaFaceTracker, _StubRegressor]:
    reg = _StubRegressor(span)
    tracker = TddfaFaceTracker("", "", "", regressor=reg, bfm=_grid_bfm(), detector=detector,
                               settings=TddfaTrackerSettings(**settings))
    return tracker, reg


BOX = FaceBox(np.array([250, 150, 390, 330], np.float32), 0.9)


def test_detect_then_track_from_landmarks():
    det = _StubDetector([BOX])
    tracker, reg = _tracker(det, verify_every=0)
    res = tracker.process(_frame(0))
    assert res is not None and det.calls == 1
    # Detection ROI from the box, then the refinement pass from the landmarks.
    np.testing.assert_allclose(reg.rois[0], roi_from_box(BOX.box))
    side = reg.rois[0][2] - reg.rois[0][0]
    np.testing.assert_allclose(reg.rois[1][2] - reg.rois[1][0], side, rtol=1e-5)  # stable span
    for i in range(1, 4):
        assert tracker.process(_frame(i)) is not None
    assert det.calls == 1 and len(reg.rois) == 5  # tracked: no more detections, one pass each


def test_result_fields():
    tracker, _ = _tracker(_StubDetector([BOX]))
    res = tracker.process(_frame(0))
    assert res.backend == "tddfa" and res.expression_names == EXPRESSION_NAMES
    assert res.identity.shape == (40,) and res.expression.shape == (10,) and res.expression[0] == 0.25
    assert res.vertices_image.shape == (80, 3) and res.vertices_camera.shape == (80, 3)
    assert res.landmarks_2d.shape == (68, 2) and res.triangles.shape == (2, 3)
    np.testing.assert_allclose(res.pose_deg, 0.0, atol=1e-5)
    assert math.isnan(res.fit_rmse_px)
    # The stand-in's model z grows towards the viewer with the vertex index; FaceResult's
    # z grows away from the camera, 0 at the nearest vertex.
    assert res.vertices_image[-1, 2] == 0.0 and np.all(np.diff(res.vertices_image[:, 2]) < 0)
    # The metric mesh re-projects onto the image points, and lies at f * unit / scale.
    cam = PinholeCamera.from_fov(640, 480, 60.0)
    np.testing.assert_allclose(cam.project(res.vertices_camera), res.vertices_image[:, :2], atol=1e-3)
    lm = res.landmarks_2d
    scale_img = (lm[:, 0].max() - lm[:, 0].min()) / (2 * HALF_SPAN)  # px per BFM unit
    expected_depth = cam.focal_px * 1e-6 / scale_img
    assert res.vertices_camera[:, 2].mean() == pytest.approx(expected_depth, rel=1e-3)
    assert 0.2 < expected_depth < 3.0  # a face ~150 px wide in a 640 px webcam frame is ~0.5-1 m away


def test_collapsing_roi_triggers_redetection():
    det = _StubDetector([BOX])
    tracker, reg = _tracker(det, span=60.0, verify_every=0)  # ROI shrinks by 1/sqrt(2) per pass
    areas = []
    for i in range(12):
        assert tracker.process(_frame(i)) is not None
        roi = reg.rois[-1]
        areas.append((roi[2] - roi[0]) * (roi[3] - roi[1]))
    assert det.calls >= 2  # re-detected after the collapse
    assert min(areas) >= 2020 / 2  # never tracked on after the ROI fell below 2020 px^2


def test_no_face_returns_none_and_periodic_verification():
    det = _StubDetector([BOX])
    tracker, _ = _tracker(det, verify_every=3)
    assert tracker.process(_frame(0)) is not None
    det.faces = []  # the face leaves; frames 1, 2 are tracked blind, frame 3 verifies
    assert tracker.process(_frame(1)) is not None
    assert tracker.process(_frame(2)) is not None
    assert det.calls == 1
    assert tracker.process(_frame(3)) is None
    assert det.calls == 3 and not tracker.tracking  # verification, then a failed re-detection
    assert tracker.process(_frame(4)) is None


def test_perception_box_and_landmarks():
    det = _StubDetector([])
    tracker, reg = _tracker(det)
    far_box = np.array([10, 10, 110, 130], np.float32)
    perception = PerceptionResult(image_size=(480, 640), face_box=far_box)
    assert tracker.process(_frame(0), perception) is not None
    np.testing.assert_allclose(reg.rois[0], roi_from_box(far_box))
    # Perception's box moves away from the track: re-detect from it.
    moved = far_box + np.array([400, 200, 400, 200], np.float32)
    assert tracker.process(_frame(1), PerceptionResult(image_size=(480, 640), face_box=moved)) is not None
    np.testing.assert_allclose(reg.rois[2], roi_from_box(moved))
    assert det.calls == 0  # the bundled detector was never needed
    # Observed points 3, 4 px off the model's landmarks: RMSE 5 px.
    res = tracker.process(_frame(2))
    off = tracker.process(_frame(3), observed68=res.landmarks_2d + np.array([3.0, 4.0], np.float32))
    assert off.fit_rmse_px == pytest.approx(5.0, abs=1e-3)


def test_mediapipe_box_gives_a_roi_near_the_official_one(shared_file):
    rec = json.loads(shared_file("reference/3ddfa_v2/golden.json").read_text())[0]
    image = cv2.imread(str(shared_file(f"reference/3ddfa_v2/images/{rec['image']}")))
    detector = MediapipeFaceDetector()
    try:
        faces = detector.detect(image)
    finally:
        detector.close()
    assert len(faces) == 1 and faces[0].score > 0.8
    roi, official = roi_from_box(faces[0].box), np.asarray(rec["roi_box"])
    inter = np.clip(np.minimum(roi[2:], official[2:]) - np.maximum(roi[:2], official[:2]), 0, None).prod()
    union = np.prod(roi[2:] - roi[:2]) + np.prod(official[2:] - official[:2]) - inter
    assert inter / union > 0.7


def test_missing_weights_mean_no_tracker(caplog):
    from engine.face.tddfa_tracker import tracker_from_installed

    with caplog.at_level("WARNING"):
        assert tracker_from_installed() is None
    assert "tddfa-mb1" in caplog.text and "bfm-noneck-v3" in caplog.text


def test_installed_official_files_build_a_tracker(shared_file, tmp_path, monkeypatch):
    import pickle
    import shutil

    from engine.face.tddfa_tracker import tracker_from_installed
    from engine.paths import weights_dir

    monkeypatch.setenv("HOLOCAP_WEIGHTS_DIR", str(tmp_path))  # other tests keep an empty weights dir
    root = weights_dir()
    (root / "tddfa").mkdir(exist_ok=True)
    (root / "bfm").mkdir(exist_ok=True)
    assets = "reference/3ddfa_v2/assets"
    shutil.copy(shared_file(f"{assets}/mb05_120x120.pth"), root / "tddfa" / "mb05_120x120.pth")
    shutil.copy(shared_file(f"{assets}/param_mean_std_62d_120x120.pkl"), root / "tddfa")
    shutil.copy(shared_file(f"{assets}/tri.pkl"), root / "bfm" / "tri.pkl")
    n = 38_365  # a stand-in BFM file of the official size (its hash is trusted on first use)
    kp = (np.arange(68)[:, None] * 3 + np.arange(3)).reshape(-1)
    with open(root / "bfm" / "bfm_noneck_v3.pkl", "wb") as f:
        pickle.dump({"u": np.zeros((3 * n, 1), np.float32), "w_shp": np.zeros((3 * n, 40), np.float32),
                     "w_exp": np.zeros((3 * n, 10), np.float32), "keypoints": kp}, f)
    tracker = tracker_from_installed(models=("tddfa-mb1", "tddfa-mb05"))  # mb1 absent: mb05 is used
    assert tracker is not None
    assert tracker.regressor.widen_factor == 0.5
    assert tracker.bfm.triangles.shape == (76_073, 3)
    tracker.close()
