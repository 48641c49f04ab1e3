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


def test_tiles_are_squares_inside_the_image_that_cover_it():
    from engine.perception.people import tile_boxes

    for width, height in ((1280, 720), (720, 1280), (640, 480), (300, 300)):
        boxes = tile_boxes(width, height)
        covered = np.zeros((height, width), bool)
        for x0, y0, x1, y1 in boxes:
            assert abs((x1 - x0) - (y1 - y0)) < 1e-3
            assert x0 >= 0 and y0 >= 0 and x1 <= width + 1e-3 and y1 <= height + 1e-3
            covered[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
        assert covered.all()


def _small_person_scene(shared_file, person_px: int, at: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A real person (hmr_coco4, resized to person_px rows) pasted into a wide, noisy 1280x720
    frame at `at` (x, y); returns the frame and the pasted box."""
    person = cv2.imread(str(shared_file("media/hmr_coco4.png")))
    person = cv2.resize(person, (person_px, person_px), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(4)
    scene = np.clip(rng.normal(120, 25, (720, 1280, 3)), 0, 255).astype(np.uint8)
    scene = cv2.GaussianBlur(scene, (0, 0), 3)
    x, y = at
    scene[y:y + person_px, x:x + person_px] = person
    return scene, np.array([x, y, x + person_px, y + person_px], np.float32)


@pytest.mark.parametrize("person_px, at", [(150, (980, 420)), (200, (120, 80))])
def test_photo_finds_a_small_far_person(shared_file, person_px, at):
    """The whole-image segmentation (256 px input) loses a person this small in a 1280x720
    frame; the tiled search finds them and the pose lands on them."""
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    scene, box = _small_person_scene(shared_file, person_px, at)
    stage = PerceptionStage(PerceptionSettings(face=False, static_image_mode=True))
    try:
        result = stage.process(Frame(scene, 0, 0.0, "small"), {})
    finally:
        stage.close()
    assert result.pose_landmarks is not None
    seen = result.pose_landmarks[result.pose_visibility > 0.5, :2]
    centre = seen.mean(axis=0)
    assert box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]
    assert result.people_boxes is not None and len(result.people_boxes) >= 1


def test_video_finds_a_small_far_person_and_keeps_them(shared_file):
    """On video the whole-frame people search finds nobody this small; the tiled search
    (while nobody is in view) gives the pose graph a crop around them, kept while tracked."""
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    scene, box = _small_person_scene(shared_file, 200, (120, 80))
    stage = PerceptionStage(PerceptionSettings())
    hits = []
    try:
        for i in range(30):
            result = stage.process(Frame(scene, i, i / 25.0, "video"), {})
            if result.pose_landmarks is not None:
                seen = result.pose_landmarks[result.pose_visibility > 0.5, :2].mean(axis=0)
                hits.append(box[0] <= seen[0] <= box[2] and box[1] <= seen[1] <= box[3])
            else:
                hits.append(False)
    finally:
        stage.close()
    assert any(hits[:5])
    assert sum(hits) >= 20
