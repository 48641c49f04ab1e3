"""The offline default on real footage: ../shared/media/talking_head.mp4 (410×412, 25 fps,
169 frames, one talking face) through PerceptionStage and FaceStage, as the app runs them.

Acceptance (issue 3): a face on ≥ 95% of frames and a median fit RMSE ≤ 2.0 px (the RMS
distance between the fitted model's 470 points — mediapipe's 468 mesh points and its 2
iris centres — after the One Euro filter, and mediapipe's observed ones). The 95th
percentile is printed and bounded at 3.5 px (measured ~2.9: fast speech frames, where
the filter and Anny's expression units lag). Issue 11 asks for a median ≤ 1.8 px: measured
1.59 px over the clip. The identity is solved from the first 60 frames, and with it each
landmark's per-user offset (engine/face/fitter.py, _calibrate); after the freeze the median
is 1.65 px (2.05 without the offsets).
The filters add at most 0.1 px to the median of the unfiltered fit's RMSE (measured 0.08:
the expression is refitted at the filtered pose and identity; it was 0.14 when the
expression was filtered on its own).
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from engine.face.stage import FaceSettings, FaceStage
from engine.frame import Frame


@pytest.fixture(scope="module")
def runs(shared_file):
    """The clip's FaceResults with the app's filters, and without them (the fit alone)."""
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    path = shared_file("media/talking_head.mp4")
    cap = cv2.VideoCapture(str(path))
    perception = PerceptionStage(PerceptionSettings(pose=False, segmentation=False))
    stage = FaceStage(FaceSettings(backend="anny"))
    unfiltered = FaceStage(FaceSettings(backend="anny", smoothing=False, colours=False))
    out, raw = [], []
    try:
        index = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            frame = Frame(image, index, index / 25.0, str(path))
            ctx = {"perception": perception.process(frame, {})}
            out.append(stage.process(frame, ctx))
            raw.append(unfiltered.process(frame, ctx))
            index += 1
    finally:
        cap.release()
        perception.close()
        stage.close()
        unfiltered.close()
    return out, raw


@pytest.fixture(scope="module")
def results(runs):
    return runs[0]


def test_frames_read(results):
    assert len(results) == 169


def test_fitted_on_95_percent(results):
    fitted = sum(r is not None for r in results) / len(results)
    print(f"\nfitted on {fitted:.1%} of frames")
    assert fitted >= 0.95


def test_fit_rmse(results):
    rmse = np.array([r.fit_rmse_px for r in results if r is not None])
    print(f"\nfit_rmse_px: median {np.median(rmse):.2f}, 95th percentile {np.percentile(rmse, 95):.2f}, "
          f"max {rmse.max():.2f}")
    assert np.median(rmse) <= 1.8  # issue 11 (issue 3 asked for 2.0)
    assert np.percentile(rmse, 95) <= 3.5


def test_fit_rmse_after_the_identity_is_frozen(results):
    """A long clip is mostly frames after the freeze (frozen identity and landmark
    calibration): the goal holds for them alone, not only thanks to the first 60 frames'
    free identity. Measured 1.65 px; 2.05 without the landmark calibration."""
    rmse = np.array([r.fit_rmse_px for r in results[60:] if r is not None])
    print(f"\nfit_rmse_px after the freeze: median {np.median(rmse):.2f}")
    assert np.median(rmse) <= 1.8


def test_filters_add_little_to_the_fit_error(runs):
    filtered = np.median([r.fit_rmse_px for r in runs[0] if r is not None])
    unfiltered = np.median([r.fit_rmse_px for r in runs[1] if r is not None])
    print(f"\nfit RMSE median: filtered {filtered:.3f} px, unfiltered {unfiltered:.3f} px")
    assert filtered - unfiltered <= 0.1


def test_results_json(results):
    """results.jsonl's face object carries the fields the issue asks for."""
    face = json.loads(json.dumps(next(r for r in results if r is not None).to_json()))
    for key in ("landmarks_2d", "pose_deg", "expression", "fit_rmse_px"):
        assert key in face
    assert np.array(face["landmarks_2d"]).shape == (68, 2)
    assert len(face["expression"]) == 52 and len(face["pose_deg"]) == 3


def test_landmarks_on_the_face(results):
    """The 68 landmarks lie inside the image, the face's bounding box is plausible for a
    face that fills about half the frame, and the head stays roughly frontal."""
    for r in results:
        if r is None:
            continue
        lm = r.landmarks_2d
        assert (lm[:, 0] > 0).all() and (lm[:, 0] < 410).all() and (lm[:, 1] > 0).all() and (lm[:, 1] < 412).all()
        assert 120 < np.ptp(lm[:, 0]) < 320
        assert np.abs(r.pose_deg).max() < 45
