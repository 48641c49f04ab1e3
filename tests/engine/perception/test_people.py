"""Choosing one person among several: blob candidates, following, crops, and the stage."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from engine.frame import Frame
from engine.perception.people import (box_iou, choose_person, crop_box, extract_square,
                                      find_people, smooth_box, uncrop_mask)


def two_blob_mask() -> np.ndarray:
    mask = np.zeros((200, 400), np.float32)
    mask[40:180, 30:90] = 1.0  # small person, left
    mask[20:190, 250:350] = 0.9  # big person, right of centre
    mask[5:8, 5:8] = 1.0  # noise
    return mask


def test_find_people_sorted_left_to_right_without_noise():
    people = find_people(two_blob_mask())
    assert len(people) == 2
    np.testing.assert_array_equal(people[0].box, [30, 40, 90, 180])
    np.testing.assert_array_equal(people[1].box, [250, 20, 350, 190])


def test_choose_largest_by_default_and_by_index():
    people = find_people(two_blob_mask())
    assert choose_person(people, None) is people[1]
    assert choose_person(people, 0) is people[0]
    assert choose_person(people, 7) is people[1]  # clamped
    assert choose_person([], None) is None


def test_following_keeps_the_same_person_when_another_grows():
    people = find_people(two_blob_mask())
    followed = people[0].box
    assert choose_person(people, None, following=followed) is people[0]
    far_away = np.array([0, 0, 5, 5], np.float32)
    assert choose_person(people, None, following=far_away) is people[1]


def test_crop_is_square_and_round_trips_a_mask():
    box = crop_box(np.array([100, 50, 140, 170], np.float32))
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])
    image = np.zeros((200, 300), np.float32)
    image[60:160, 110:130] = 1.0
    crop = extract_square(image, box, 128)
    back = uncrop_mask(crop, box, 300, 200)
    assert box_iou(np.array([110, 60, 130, 160], np.float32),
                   np.array([*np.argwhere(back.T > 0.5).min(0), *np.argwhere(back.T > 0.5).max(0) + 1],
                            np.float32)) > 0.8


def test_smooth_box_resets_on_jump():
    a = np.array([0, 0, 100, 100], np.float32)
    np.testing.assert_allclose(smooth_box(a, a + 10), a + 3)
    np.testing.assert_allclose(smooth_box(a, a + 300), a + 300)


@pytest.fixture(scope="module")
def two_people_image(shared_file):
    left = cv2.imread(str(shared_file("media/coco_000000000294.jpg")))
    right = cv2.imread(str(shared_file("media/hmr_coco4.png")))
    right = cv2.resize(right, (left.shape[0], left.shape[0]))
    gap = np.full((left.shape[0], 160, 3), 128, np.uint8)
    return np.hstack([left, gap, right]), left.shape[1] + gap.shape[1]


@pytest.mark.parametrize("person", [0, 1])
def test_stage_gives_the_selected_persons_pose(two_people_image, person):
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    image, right_start = two_people_image
    stage = PerceptionStage(PerceptionSettings(face=False, static_image_mode=True, person=person,
                                               people_every=1))
    try:
        result = stage.process(Frame(image, 0, time.monotonic(), "test"), {})
    finally:
        stage.close()
    assert result.pose_landmarks is not None
    hips_x = result.pose_landmarks[[23, 24], 0].mean()
    if person == 0:
        assert hips_x < right_start - 160
    else:
        assert hips_x > right_start
    assert result.segmentation is not None and result.segmentation.shape == image.shape[:2]
