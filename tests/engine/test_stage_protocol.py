"""JSON from results is always valid: non-finite numbers become null."""
from __future__ import annotations

import json
import math

import numpy as np

from engine.stage_protocol import dumps_json, jsonable


def test_non_finite_values_become_null_everywhere():
    value = {"a": float("nan"), "b": np.array([1.0, np.inf, -np.inf, 2.5]), "c": [np.float32("nan"), 1],
             "d": np.float64(3.14159)}
    out = jsonable(value)
    assert out == {"a": None, "b": [1.0, None, None, 2.5], "c": [None, 1], "d": 3.142}
    text = dumps_json({"x": float("nan"), "y": [1.0, float("inf")]})
    assert json.loads(text) == {"x": None, "y": [1.0, None]}
    assert "NaN" not in text and "Infinity" not in text


def test_the_fast_path_keeps_finite_values_exactly():
    value = {"t": 0.123456789, "n": 3, "s": "x", "l": [1.5, 2.25]}
    assert json.loads(dumps_json(value)) == value
    assert math.isclose(json.loads(dumps_json({"v": 1e-9}))["v"], 1e-9)


def test_face_json_names_each_expression_value():
    from engine.face.result import FaceResult

    z = np.zeros((3, 3), np.float32)
    face = FaceResult(vertices_image=z, vertices_camera=z, triangles=np.zeros((1, 3), np.int32),
                      landmarks_2d=np.zeros((68, 2), np.float32), pose_deg=np.zeros(3, np.float32),
                      identity=np.zeros(2, np.float32), expression=np.array([0.25, 0.5], np.float32),
                      expression_names=("jawOpen", "eyeBlinkLeft"), fit_rmse_px=1.0, backend="anny")
    row = json.loads(dumps_json(face.to_json()))
    assert row["expressions"] == {"jawOpen": 0.25, "eyeBlinkLeft": 0.5}
