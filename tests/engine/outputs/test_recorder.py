"""The recorder: clean round trip, and readable files after a SIGKILL mid-recording."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from engine.outputs.recorder import Recorder, RecorderSettings
from engine.outputs.recording import read_recording
from tests.engine.outputs.record_child import expected_mesh
from tests.engine.outputs.synthetic import decode_index, index_image

REPO = Path(__file__).resolve().parents[3]


def _wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_clean_recording_round_trip(tmp_path):
    rec_dir = tmp_path / "rec"
    recorder = Recorder(rec_dir, RecorderSettings(segment_s=0.15, fps=30.0))
    recorder.start()
    sizes = [(161, 121)] * 12 + [(200, 100)] * 6  # odd sizes are padded; a resize starts a segment
    for i, (w, h) in enumerate(sizes):
        recorder.send(index_image(i, w, h), i, 10.0 + i / 30, results={"frame": i, "x": np.float32(0.123456)},
                      meshes={"body": expected_mesh(i)} if i % 2 == 0 else None)
        _wait(lambda: recorder.stats.delivered > i, what=f"frame {i}")  # no drops: every frame recorded
        time.sleep(0.02)
    recorder.close()

    rec = read_recording(rec_dir)
    assert rec.complete and rec.lost_frames == 0 and rec.meta["frames"] == len(sizes)
    assert [f.frame_index for f in rec.frames] == list(range(len(sizes)))
    assert len(rec.segments) >= 3  # time-based cuts plus the cut at the resize
    assert not list((rec_dir / "video").glob("*.partial.mp4"))
    assert all(abs(f.t - (10.0 + f.frame_index / 30)) < 1e-6 for f in rec.frames)
    assert rec.frames[3].results == {"frame": 3, "x": 0.1235}  # rounded to 4 decimals
    seen = 0
    for frame, image in rec.images():
        assert image.shape == (sizes[frame.frame_index][1], sizes[frame.frame_index][0], 3)
        assert decode_index(image) == frame.frame_index
        seen += 1
    assert seen == len(sizes)
    for frame in rec.frames:
        assert ("body" in frame.meshes) == (frame.frame_index % 2 == 0)
    vertices, faces = rec.mesh(rec.frames[4], "body")
    ev, ef = expected_mesh(4)
    assert np.array_equal(vertices, ev) and np.array_equal(faces, ef)


def test_refuses_a_folder_holding_a_recording(tmp_path):
    with Recorder(tmp_path / "r") as recorder:
        recorder.send(index_image(0), 0, 0.0)
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / "r").start()


def test_survives_sigkill_mid_recording(tmp_path):
    """A child records 30 fps with 0.4 s segments; it is SIGKILLed once 3 segments are
    complete. Everything in complete segments must read back: images decode to their frame
    index, each line's mesh file loads (with trimesh too) and holds that frame's mesh."""
    rec_dir = tmp_path / "crashed"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-m", "tests.engine.outputs.record_child", str(rec_dir), "0.4"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        complete = lambda: len([p for p in (rec_dir / "video").glob("segment_*.mp4")  # noqa: E731
                                if not p.name.endswith(".partial.mp4")]) if (rec_dir / "video").is_dir() else 0
        _wait(lambda: complete() >= 3 or child.poll() is not None, timeout=60, what="3 complete segments")
        assert child.poll() is None, child.stdout.read().decode(errors="replace")
        time.sleep(0.1)  # land inside the next segment
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    rec = read_recording(rec_dir)
    assert not rec.complete
    assert len(rec.segments) >= 3 and set(range(3)) <= set(rec.segments)
    lines = (rec_dir / "frames.jsonl").read_bytes().splitlines()
    whole = []
    for raw in lines:
        try:
            whole.append(json.loads(raw))
        except json.JSONDecodeError:
            assert raw is lines[-1], "only the last line may be cut"
    # Every line pointing at a complete segment is readable; only the unfinished segment's are lost.
    in_complete = [ln for ln in whole if ln["segment"] in rec.segments]
    assert len(rec.frames) == len(in_complete) and rec.lost_frames == len(whole) - len(in_complete)
    print(f"readable {len(rec.frames)}, lost {rec.lost_frames}, segments {sorted(rec.segments)}")
    assert len(rec.frames) >= 3 * 5  # 3 segments of ~12 frames each, allowing for a slow machine
    indices = [f.frame_index for f in rec.frames]
    assert indices == sorted(set(indices)) and indices[0] == 0

    decoded = 0
    for frame, image in rec.images():
        assert decode_index(image) == frame.frame_index
        decoded += 1
    assert decoded == len(rec.frames)
    for frame in rec.frames:
        assert frame.results == {"frame": frame.frame_index, "half": frame.frame_index / 2}
        vertices, faces = rec.mesh(frame, "body")
        ev, ef = expected_mesh(frame.frame_index)
        assert np.array_equal(vertices, ev) and np.array_equal(faces, ef)
    last = trimesh.load(rec.frames[-1].meshes["body"], process=False)
    assert np.allclose(last.vertices, expected_mesh(rec.frames[-1].frame_index)[0], atol=1e-6)
