"""Photos are photos: every person and face bare mediapipe finds in a still, holocap finds
(measured in the same run), and each photo is fitted on its own, not from the one before."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from tests.e2e.test_cli import run_cli

PHOTOS = ("coco_000000000192.jpg", "coco_000000000241.jpg", "coco_000000000257.jpg", "coco_000000000294.jpg",
          "coco_000000000328.jpg", "coco_000000000338.jpg", "hmr_coco1.png", "hmr_coco2.png", "hmr_coco4.png")


@pytest.fixture(scope="module")
def photo_run(shared_file, tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        shutil.copy(shared_file(f"media/{name}"), folder / name)
    out = folder / "out"
    proc = run_cli("run", "--headless", "--source", str(folder), "--out", str(out),
                   "--stages", "perception,face,body", "--no-progress", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {r["source_name"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    return folder, rows


def test_every_person_and_face_bare_mediapipe_finds(photo_run):
    import mediapipe as mp

    folder, rows = photo_run
    assert set(rows) == set(PHOTOS)
    pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    bare_people = bare_faces = people = faces = 0
    try:
        for name in PHOTOS:
            rgb = cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
            has_pose = pose.process(rgb).pose_landmarks is not None
            has_face = mesh.process(rgb).multi_face_landmarks is not None
            row = rows[name]
            bare_people += has_pose
            bare_faces += has_face
            people += row["body"] is not None
            faces += row["face"] is not None
            if has_pose:
                assert row["body"] is not None, f"{name}: mediapipe finds the person, holocap fits no body"
            if has_face:
                assert row["face"] is not None, f"{name}: mediapipe finds the face, holocap fits none"
    finally:
        pose.close()
        mesh.close()
    print(f"people: holocap {people}, bare mediapipe {bare_people}; faces: holocap {faces}, bare {bare_faces}")
    assert people >= 7  # the goal on COCO-style photos: a body on >= 7 of 8
    crowded = rows["coco_000000000192.jpg"]["perception"]["people_boxes"]  # a baseball field
    assert crowded is not None and len(crowded) >= 2  # every person found is reported
    poses = rows["coco_000000000192.jpg"]["perception"]["people_pose_2d"]
    # one entry per blob, in order (touching people share a blob, and a blob of several may get no pose)
    assert len(poses) == min(len(crowded), 8) and any(p is not None for p in poses)


def test_each_photo_is_fitted_on_its_own(shared_file, tmp_path):
    """The same photo after a different one gives the same result as alone: no warm start,
    no smoothing and no identity carried across photos."""
    a, b = "hmr_coco2.png", "coco_000000000328.jpg"
    results = {}
    for order in ((b,), (a, b)):
        folder = tmp_path / "_".join(order).replace(".", "_")
        folder.mkdir()
        for i, name in enumerate(order):
            shutil.copy(shared_file(f"media/{name}"), folder / f"{i}_{name}")
        out = folder / "out"
        proc = run_cli("run", "--headless", "--source", str(folder), "--out", str(out),
                       "--stages", "perception,face,body", "--no-progress", timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[order] = json.loads((out / "results.jsonl").read_text().splitlines()[-1])
    alone, after = results[(b,)], results[(a, b)]
    for stage in ("face", "body"):
        assert alone[stage] is not None and after[stage] is not None, stage
    np.testing.assert_allclose(after["face"]["landmarks_2d"], alone["face"]["landmarks_2d"], atol=0.2)
    np.testing.assert_allclose(after["body"]["keypoints_2d"], alone["body"]["keypoints_2d"], atol=0.5)
