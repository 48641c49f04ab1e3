"""landmarks_to_pixels reads face mesh lists from their bytes; every layout gives what reading
the messages one by one gives."""
from __future__ import annotations

import numpy as np
import pytest
from mediapipe.framework.formats import landmark_pb2

from engine.perception.crops import landmarks_to_pixels


def _by_message(landmark_list, width, height):
    arr = np.array([[p.x, p.y, p.z] for p in landmark_list.landmark], np.float32).reshape(-1, 3)
    return arr * np.array([width, height, width], np.float32)


@pytest.mark.parametrize("layout", ["xyz", "with_visibility", "one_without_z", "empty"])
def test_same_as_reading_each_message(layout):
    rng = np.random.default_rng(7)
    lst = landmark_pb2.NormalizedLandmarkList()
    for i in range(0 if layout == "empty" else 478):
        lm = lst.landmark.add()
        lm.x, lm.y = rng.random(2) * 1.2 - 0.1
        if not (layout == "one_without_z" and i == 100):
            lm.z = rng.normal(0, 0.05)
        if layout == "with_visibility":
            lm.visibility, lm.presence = rng.random(2)
    got = landmarks_to_pixels(lst, 640, 480)
    assert got.dtype == np.float32 and got.shape == (len(lst.landmark), 3)
    np.testing.assert_array_equal(got, _by_message(lst, 640, 480))
