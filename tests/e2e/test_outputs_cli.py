"""Outputs of a running headless session, seen from outside the process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.outputs.mjpeg_client import free_local_port, read_mjpeg, wait_for_stream
from engine.outputs.recording import read_recording

REPO = Path(__file__).resolve().parents[2]


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "main.py"), *args], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_mjpeg_client_gets_20_frames_in_3s_from_a_headless_run(tmp_path):
    port = free_local_port()
    proc = start_cli("run", "--source", "synthetic:640x480@30", "--loop", "--headless", "--out",
                     str(tmp_path), "--stages", "perception", "--no-progress",
                     "--serve-mjpeg", f"127.0.0.1:{port}")
    try:
        url = f"http://127.0.0.1:{port}/stream.mjpg"
        wait_for_stream(url, timeout_s=60, duration_s=0.5)
        t0 = time.monotonic()
        parts = read_mjpeg(url, duration_s=3.0, max_parts=1000)
        assert time.monotonic() - t0 < 4.5
        assert len(parts) >= 20, f"only {len(parts)} frames in 3 s"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_recording_of_a_headless_run_survives_sigkill(tmp_path):
    rec_parent = tmp_path / "rec"
    proc = start_cli("run", "--source", "synthetic:320x240@30", "--loop", "--headless", "--out",
                     str(tmp_path / "out"), "--stages", "perception", "--no-progress",
                     "--record", str(rec_parent))
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            dirs = list(rec_parent.glob("*")) if rec_parent.exists() else []
            if dirs and any(not p.name.endswith(".partial.mp4") for p in dirs[0].glob("video/segment_*.mp4")):
                break
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    recording = read_recording(next(rec_parent.glob("*")))
    assert not recording.complete
    assert len(recording.frames) > 0
    images = list(recording.images())
    assert images and all(img is not None and img.ndim == 3 for _, img in images[:5])
