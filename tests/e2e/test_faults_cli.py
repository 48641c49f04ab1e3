"""Faults are inputs: signals, damaged files, odd images, bad flags and settings, through the
CLI as a user or a process manager meets them. Every case ends with the right exit status,
no traceback, and files that open."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from engine.outputs.recording import read_recording
from engine.sources.video import count_decodable_frames
from tests.e2e.test_cli import REPO, run_cli


count_frames = count_decodable_frames


def strict_json_rows(path: Path) -> list[dict]:
    """Every line parsed as strict JSON: NaN/Infinity (invalid JSON) raise."""
    def refuse(name: str) -> None:
        raise ValueError(f"non-JSON number {name}")

    return [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]


def headless_ok(source: Path, out: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """A perception-only headless run that must end well: (the process, its summary)."""
    proc = run_cli("run", "--headless", "--source", str(source), "--out", str(out), "--stages", "perception",
                   "--no-progress")
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc, json.loads((out / "summary.json").read_text())


def test_sigterm_finishes_every_output(shared_file, tmp_path):
    """SIGTERM (what systemd, Docker and a logout send) mid-run on the street clip, with the
    recorder and the MJPEG server on: rc 143 and every file complete to the last frame."""
    out, rec = tmp_path / "out", tmp_path / "rec"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "run", "--headless", "--source",
         str(shared_file("media/street_people.avi")), "--out", str(out), "--record", str(rec),
         "--serve-mjpeg", "127.0.0.1:0", "--no-progress"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        deadline = t0 + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "results.jsonl").exists() and (out / "results.jsonl").stat().st_size > 0:
                break
            time.sleep(0.2)
        time.sleep(max(1.0, 5.0 - (time.monotonic() - t0)))
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    no_traceback(stderr)
    assert proc.returncode == 143, stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == "SIGTERM"
    n = summary["frames_processed"]
    assert 0 < n < 205  # interrupted, not finished
    assert summary["output_errors"] == {}
    assert count_frames(out / "overlay.mp4") == n
    rows = strict_json_rows(out / "results.jsonl")
    assert len(rows) == n and [r["frame"] for r in rows] == list(range(n))
    recording = read_recording(next(rec.iterdir()))
    assert recording.complete and len(recording.frames) == n
    assert sum(count_frames(p) for p in recording.segments.values()) == n


def test_image_folder_of_mixed_sizes_is_one_video(tmp_path):
    """7 images of 4 sizes, one 12000×9000: all in overlay.mp4 (letterboxed), rc 0."""
    folder = tmp_path / "photos"
    folder.mkdir()
    sizes = [(640, 480), (480, 640), (640, 480), (1000, 300), (480, 640), (12000, 9000), (1000, 300)]
    rng = np.random.default_rng(7)
    for i, (w, h) in enumerate(sizes):
        image = np.full((h, w, 3), rng.integers(40, 200, 3), np.uint8)
        cv2.circle(image, (w // 2, h // 2), min(w, h) // 4, (255, 255, 255), -1)
        assert cv2.imwrite(str(folder / f"img{i}.jpg"), image)
    out = tmp_path / "out"
    proc, summary = headless_ok(folder, out)
    assert summary["frames_processed"] == 7 and summary["output_errors"] == {}
    assert count_frames(out / "overlay.mp4") == 7
    rows = strict_json_rows(out / "results.jsonl")
    assert [r["source_name"] for r in rows] == [f"img{i}.jpg" for i in range(7)]  # each row names its photo


def test_unreadable_image_is_named_and_skipped(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"ok{i}.png"), np.full((120, 160, 3), 60 * i, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 20)
    out = tmp_path / "out"
    proc, summary = headless_ok(folder, out)
    assert "broken.jpg" in proc.stderr
    assert summary["frames_processed"] == 3
    assert summary["source_info"]["skipped_files"] == ["broken.jpg"]


def _damaged_copy(src: Path, dst: Path, start: float, stop: float, seed: int) -> Path:
    data = bytearray(src.read_bytes())
    a, b = int(len(data) * start), int(len(data) * stop)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def test_damaged_middle_of_a_video_is_skipped_not_the_end(shared_file, tmp_path):
    """~30 % of the talking-head clip's bytes overwritten in the middle: every frame OpenCV
    can decode is processed, and the warning names the skipped range."""
    video = _damaged_copy(shared_file("media/talking_head.mp4"), tmp_path / "damaged.mp4", 0.36, 0.66, seed=11)
    decodable = count_frames(video)
    out = tmp_path / "out"
    proc, summary = headless_ok(video, out)
    assert summary["frames_processed"] >= decodable > 0
    skipped = summary["source_info"]["skipped_ranges"]
    assert skipped, "the damaged stretch was not reported"
    first, last = skipped[0]
    assert f"frames {first}-{last}" in proc.stderr and "damaged" in proc.stderr
    assert summary["frames_processed"] + summary["source_info"]["skipped_frames"] <= 169


def test_truncated_video_ends_with_a_warning(shared_file, tmp_path):
    src = shared_file("media/talking_head.mp4").read_bytes()
    video = tmp_path / "half.mp4"
    video.write_bytes(src[: len(src) // 2])
    out = tmp_path / "out"
    proc, summary = headless_ok(video, out)
    assert "truncated" in proc.stderr
    assert summary["frames_processed"] >= count_frames(video) > 0


def _bad_invocations(tmp_path: Path, clip: str) -> dict[str, list[str]]:
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("not a folder")
    run = ["run", "--headless", "--source", clip, "--out", str(tmp_path / "o"), "--no-progress"]
    return {
        "max-frames 0": [*run, "--max-frames", "0"],
        "max-frames -1": [*run, "--max-frames", "-1"],
        "max-frames text": [*run, "--max-frames", "ten"],
        "person -5": [*run, "--person", "-5"],
        "person 1.5": [*run, "--person", "1.5"],
        "hfov 0": [*run, "--hfov", "0"],
        "hfov nan": [*run, "--hfov", "nan"],
        "hfov 180": [*run, "--hfov", "180"],
        "hfov text": [*run, "--hfov", "wide"],
        "face backend": [*run, "--face-backend", "deca"],
        "body backend": [*run, "--body-backend", "smplx"],
        "volume backend": [*run, "--volume-backend", "nerf"],
        "device": ["--device", "tpu", *run],
        "volume quality": [*run, "--volume-quality", "ultra"],
        "target fps 0": [*run, "--target-fps", "0"],
        "target fps inf": [*run, "--target-fps", "inf"],
        "camera mode": [*run, "--camera-mode", "1280"],
        "mjpeg port": [*run, "--serve-mjpeg", "127.0.0.1:99999"],
        "mjpeg host only": [*run, "--serve-mjpeg", "localhost:http"],
        "segment minutes 0": [*run, "--segment-minutes", "0"],
        "disk budget negative": [*run, "--disk-budget-gb", "-1"],
        "unknown flag": [*run, "--frobnicate"],
        "unknown stage": [*run, "--stages", "perception,hair"],
        "out is a file": ["run", "--headless", "--source", clip, "--out", str(a_file)],
        "out under a file": ["run", "--headless", "--source", clip, "--out", str(a_file / "sub")],
        "record is a file": [*run, "--record", str(a_file)],
        "missing source": ["run", "--headless", "--source", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")],
        "source is not media": ["run", "--headless", "--source", str(a_file), "--out", str(tmp_path / "o")],
        "no source": ["run", "--headless", "--out", str(tmp_path / "o")],
        "bench repeats 0": ["bench", "face", "--repeats", "0"],
        "gui frames 0": ["gui", "--frames", "0"],
    }


def test_every_bad_flag_is_one_line_before_any_model_loads(shared_file, tmp_path):
    cases = _bad_invocations(tmp_path, str(shared_file("media/talking_head.mp4")))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    results = {}
    names = list(cases)
    for i in range(0, len(names), 4):  # four at a time: each is a fresh interpreter
        batch = {name: subprocess.Popen([sys.executable, str(REPO / "main.py"), *cases[name]], cwd=REPO,
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in names[i:i + 4]}
        for name, proc in batch.items():
            results[name] = (proc, *proc.communicate(timeout=120))
    for name, (proc, stdout, stderr) in results.items():
        assert proc.returncode == 2, f"{name}: rc {proc.returncode}\n{stderr}"
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("holocap:"), f"{name}: {stderr}"
        assert "Traceback" not in stdout + stderr, name
        # Nothing was loaded: no model, no stage, no output was mentioned on the way.
        assert not any(w in stderr for w in ("Anny", "mediapipe", "back-end", "opened video")), f"{name}: {stderr}"
    assert not (tmp_path / "o").exists()


def test_bad_settings_values_warn_once_each_and_are_never_used(shared_file, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    bad = {"device": "tpu", "face_backend": "deca", "body_backend": 3, "hfov_deg": 0,
           "target_fps": float("nan"), "volume_quality": "ultra", "person": "left",
           "stages": {"face": "yes"}, "segment_minutes": -2, "camera_mode": "big"}
    (config / "settings.json").write_text(json.dumps(bad))  # json writes NaN, as a hand edit might
    out = tmp_path / "out"
    env = dict(os.environ, HOLOCAP_CONFIG_DIR=str(config))
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "run", "--headless", "--source",
                           str(shared_file("media/talking_head.mp4")), "--out", str(out),
                           "--stages", "perception,face", "--max-frames", "5", "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if "settings:" in line and "not allowed" in line]
    for key, value in bad.items():
        named = [w for w in warnings if f"{key}=" in w]
        assert len(named) == 1, f"{key}: {warnings}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_processed"] == 5
    assert not any(summary["stage_errors"].values()), summary["stage_errors"]
    assert json.loads((config / "settings.json.bad").read_text().replace("NaN", "null"))["device"] == "tpu"
    saved = json.loads((config / "settings.json").read_text())
    assert saved["device"] == "auto" and saved["hfov_deg"] == 60.0  # the bad values were not kept


def test_unparsable_settings_file_is_kept_and_replaced(shared_file, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text('{"device": "cpu", ')
    env = dict(os.environ, HOLOCAP_CONFIG_DIR=str(config))
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "run", "--headless", "--source",
                           str(shared_file("media/talking_head.mp4")), "--out", str(tmp_path / "out"),
                           "--stages", "perception", "--max-frames", "2", "--no-progress"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    no_traceback(proc.stderr)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "unreadable" in proc.stderr and "settings.json.bad" in proc.stderr
    assert (config / "settings.json.bad").read_text() == '{"device": "cpu", '
    json.loads((config / "settings.json").read_text())  # a valid file again


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_mjpeg_of_a_cli_run_refuses_rebinding_and_survives_a_flood(tmp_path):
    import socket
    import urllib.request

    from engine.outputs.mjpeg_client import free_local_port, wait_for_stream

    port = free_local_port()
    proc = _start("run", "--headless", "--source", "synthetic:320x240@30", "--out", str(tmp_path / "out"),
                  "--stages", "perception", "--no-progress", "--serve-mjpeg", f"127.0.0.1:{port}")
    try:
        wait_for_stream(f"http://127.0.0.1:{port}/stream.mjpg", timeout_s=90, duration_s=0.3)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /snapshot.jpg HTTP/1.1\r\nHost: rebind.attacker.example\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.0 403")
        flood = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
        try:
            time.sleep(0.3)
            t0 = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot.jpg", timeout=5) as reply:
                assert reply.status == 200 and reply.read(2) == b"\xff\xd8"
            assert time.monotonic() - t0 < 1.0
        finally:
            for s in flood:
                s.close()
    finally:
        stderr = _stop(proc)
    no_traceback(stderr)
    assert proc.returncode == 143, stderr[-2000:]


def test_token_stays_out_of_the_logs_and_endless_runs_write_playable_segments(tmp_path):
    import urllib.request

    from engine.outputs.mjpeg_client import free_local_port, wait_for_stream
    from engine.paths import log_dir

    port, token = free_local_port(), "tok-7f3a9c1e"
    out = tmp_path / "out"
    proc = _start("--log-level", "DEBUG", "run", "--headless", "--source", "synthetic:320x240@30", "--out", str(out),
                  "--stages", "perception", "--no-progress", "--serve-mjpeg", f"127.0.0.1:{port}",
                  "--mjpeg-token", token, "--segment-minutes", "0.05")
    try:
        url = f"http://127.0.0.1:{port}/stream.mjpg?token={token}"
        wait_for_stream(url, timeout_s=90, duration_s=0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/snapshot.jpg?token={token}", timeout=5) as reply:
            assert reply.status == 200
        deadline = time.monotonic() + 60
        while len(list(out.glob("overlay_*[0-9].mp4"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stderr = _stop(proc, signal.SIGHUP)
    no_traceback(stderr)
    assert proc.returncode == 128 + signal.SIGHUP, stderr[-2000:]
    assert token not in stderr
    log_file = log_dir() / "holocap.log"
    assert token not in log_file.read_text() and "token=<hidden>" in log_file.read_text()
    assert os.stat(log_file).st_mode & 0o777 == 0o600
    summary = json.loads((out / "summary.json").read_text())
    assert summary["signal"] == "SIGHUP" and summary["segments"] >= 3
    segments = sorted(out.glob("overlay_*.mp4"))
    assert not [p for p in segments if ".partial" in p.name]
    assert sum(count_frames(p) for p in segments) == summary["frames_processed"]
    assert all(count_frames(p) > 0 for p in segments)
    rows = sum(len(strict_json_rows(p)) for p in sorted(out.glob("results_*.jsonl")))
    assert rows == summary["frames_processed"]
