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
