"""The CLI end to end, as a user runs it: headless runs and every kind of bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_failure(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("holocap:")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_help_lists_subcommands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in ("gui", "run", "cameras", "weights", "bench"):
        assert name in proc.stdout


@pytest.fixture(scope="module")
def talking_head_run(shared_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("talking_head")
    proc = run_cli("run", "--source", str(shared_file("media/talking_head.mp4")), "--headless",
                   "--out", str(out), "--stages", "perception", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_headless_run_writes_three_files(talking_head_run):
    out = talking_head_run
    lines = (out / "results.jsonl").read_text().splitlines()
    assert len(lines) == 169
    records = [json.loads(line) for line in lines]
    assert [r["frame"] for r in records] == list(range(169))
    for r in records:
        assert set(r) >= {"frame", "t", "timings_ms", "perception"}
        assert "perception" in r["timings_ms"]
    with_face = sum(r["perception"]["face_landmarks_2d"] is not None for r in records)
    assert with_face >= 0.95 * 169
    first = next(r for r in records if r["perception"]["face_landmarks_2d"])
    assert len(first["perception"]["face_landmarks_2d"]) == 478
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_read"] == 169 and summary["frames_processed"] == 169
    assert summary["frames_dropped"] == 0
    assert summary["median_ms"]["perception"] > 0 and summary["fps"] > 0
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 169
    ok, image = cap.read()
    assert ok and image.shape[:2] == (412, 410)


def test_max_frames(shared_file, tmp_path):
    proc = run_cli("run", "--source", str(shared_file("media/talking_head.mp4")), "--headless",
                   "--out", str(tmp_path), "--stages", "perception", "--max-frames", "5", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 5


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "nonexistent": lambda d: d / "no_such_file.mp4",
    "zero_length_video": lambda d: _write(d / "empty.mp4", b""),
    "unreadable_video": lambda d: _write(d / "garbage.mp4", os.urandom(4096)),
    "corrupt_image": lambda d: _write(d / "broken.jpg", b"\xff\xd8\xff\xe0" + os.urandom(500)),
    "missing_camera": lambda d: "camera:57",
    "empty_folder": lambda d: (d / "empty_dir").mkdir() or d / "empty_dir",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_gives_one_clear_line_and_nonzero_exit(kind, tmp_path):
    source = BAD_INPUTS[kind](tmp_path)
    proc = run_cli("run", "--source", str(source), "--headless", "--out", str(tmp_path / "out"),
                   "--stages", "perception", "--no-progress", timeout=60)
    assert_clean_failure(proc)


@pytest.mark.parametrize("kind", ["gray", "alpha", "16bit"])
def test_unusual_images_are_converted_not_fatal(kind, tmp_path):
    """Grayscale, alpha and 16-bit images are valid pictures: they are converted to 8-bit
    BGR (with a log line) and processed, never a traceback."""
    base = np.full((120, 160, 3), 90, np.uint8)
    image = {"gray": base[:, :, 0], "alpha": np.dstack([base, np.full((120, 160), 255, np.uint8)]),
             "16bit": base.astype(np.uint16) * 257}[kind]
    path = tmp_path / f"{kind}.png"
    cv2.imwrite(str(path), image)
    proc = run_cli("run", "--source", str(path), "--headless", "--out", str(tmp_path / "out"),
                   "--stages", "perception", "--no-progress", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 1


def test_unknown_stage_is_a_clear_error(tmp_path):
    proc = run_cli("run", "--source", "synthetic", "--headless", "--out", str(tmp_path),
                   "--stages", "perception,telepathy", "--no-progress", "--max-frames", "2", timeout=60)
    assert_clean_failure(proc, "telepathy")


def test_export_meshes_writes_loadable_face_and_body_meshes(shared_file, tmp_path):
    import trimesh

    proc = run_cli("run", "--source", str(shared_file("media/hmr_coco4.png")), "--headless", "--out",
                   str(tmp_path), "--stages", "face,body", "--export-meshes", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    bodies = sorted((tmp_path / "meshes").glob("body_*.ply"))
    assert len(bodies) == 1
    mesh = trimesh.load(bodies[0], process=False)
    assert len(mesh.vertices) > 1000 and len(mesh.faces) > 1000
    extent = mesh.bounds[1] - mesh.bounds[0]
    assert 1.0 < extent.max() < 2.5  # metres: a person-sized body
    # An export asks for the person's colours (plain headless runs skip sampling them).
    colours = mesh.visual.vertex_colors[:, :3]
    assert len(np.unique(colours, axis=0)) > 50


def test_gui_without_a_display_says_so(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    proc = run_cli("gui", timeout=60)
    assert_clean_failure(proc, "no display")
