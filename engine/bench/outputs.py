"""Benchmark of the outputs (`python main.py bench outputs`): what each costs per frame.

The pipeline only pays for `send` (a copy and a slot swap); the rest runs on the outputs'
own threads but shares the CPU. Images are 1280×720 synthetic renders (smooth gradient and
shapes, closer to a rendered view than noise).
"""
from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engine.bench import BenchOptions, peak_rss_mb
from engine.outputs.base import letterbox
from engine.outputs.mjpeg import MjpegServer, encode_jpeg
from engine.outputs.mjpeg_client import read_mjpeg
from engine.outputs.ply import ply_bytes
from engine.outputs.recorder import Recorder, RecorderSettings
from engine.outputs.screenshot import save_screenshot
from engine.outputs.video_writer import VideoWriter

MESH_VERTICES = 14000  # about an Anny body mesh
MESH_FACES = 28000


def synthetic_view(index: int, width: int = 1280, height: int = 720) -> np.ndarray:
    """(height, width, 3) uint8 BGR: a gradient background with a moving disc and bar."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width * 200, y / height * 180, 60 + 40 * np.sin(x / 50)], -1).astype(np.uint8)
    cx = int(width * (0.3 + 0.4 * ((index % 60) / 60)))
    cv2.circle(image, (cx, height // 2), height // 5, (40, 180, 230), -1, cv2.LINE_AA)
    cv2.rectangle(image, (50, 50 + index % 100), (300, 120 + index % 100), (250, 250, 250), -1)
    return image


def _median_ms(fn: Callable[[int], object], repeats: int) -> float:
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _mesh() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((MESH_VERTICES, 3), np.float32), rng.integers(0, MESH_VERTICES, (MESH_FACES, 3), np.int32)


def _recorder_ms(images: list[np.ndarray], repeats: int, tmp: Path) -> float:
    vertices, faces = _mesh()
    recorder = Recorder(tmp / "rec", RecorderSettings(segment_s=2.0))
    recorder.start()
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        recorder.send(images[i % len(images)], i, i / 30, results={"frame": i}, meshes={"body": (vertices, faces)})
        while recorder.stats.delivered <= i:
            time.sleep(0.0005)
        times.append((time.perf_counter() - t0) * 1000)
    recorder.close()
    return statistics.median(times)


def _mjpeg_run(images: list[np.ndarray]) -> tuple[int, float]:
    """Frames a client receives in 3 s from a 30 fps feed, and close() seconds."""
    server = MjpegServer()
    server.start()
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            server.send(images[i % len(images)], i, time.monotonic())
            i += 1
            stop.wait(1 / 30)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    parts = read_mjpeg(server.url("/stream.mjpg"), duration_s=3.0)
    stop.set()
    feeder.join()
    t0 = time.perf_counter()
    server.close()
    return len(parts), time.perf_counter() - t0


def run(options: BenchOptions) -> str:
    repeats = 5 if options.quick else max(10, min(options.repeats, 60))
    images = [synthetic_view(i) for i in range(8)]
    vga, full_hd = synthetic_view(0, 640, 480), synthetic_view(0, 1920, 1080)
    slot_sink = MjpegServer()  # started, no viewer: its thread only stores the newest image
    slot_sink.start()
    rows = [
        ("`send()` on the caller's thread (slot hand-over, no copy)", _median_ms(lambda i: slot_sink.send(images[i % 8], i, 0.0), repeats)),
        ("letterbox 640×480 → 1280×720", _median_ms(lambda i: letterbox(vga, 1280, 720), repeats)),
        ("letterbox 1920×1080 → 1280×720", _median_ms(lambda i: letterbox(full_hd, 1280, 720), repeats)),
        ("JPEG encode 1280×720, q80 (MJPEG)", _median_ms(lambda i: encode_jpeg(images[i % 8], 80), repeats)),
    ]
    slot_sink.close()
    jpeg_kb = len(encode_jpeg(images[0], 80)) / 1024
    vertices, faces = _mesh()
    ply_kb = len(ply_bytes(vertices, faces)) / 1024
    rows.append((f"PLY bytes, {MESH_VERTICES} vertices / {MESH_FACES} faces", _median_ms(lambda i: ply_bytes(vertices, faces), repeats)))
    with tempfile.TemporaryDirectory(prefix="holocap-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with VideoWriter(tmp / "v.mp4", 30.0) as writer:
            writer.write(images[0])  # opening the encoder is not per-frame work
            rows.append(("mp4v write 1280×720 (video writer, recorder)", _median_ms(lambda i: writer.write(images[i % 8]), repeats)))
        rows.append(("PNG screenshot 1280×720 (encode + atomic write)",
                     _median_ms(lambda i: save_screenshot(images[i % 8], tmp / "shot.png"), repeats)))
        rows.append(("recorder, one frame: video + mesh + jsonl (send → delivered)", _recorder_ms(images, repeats, tmp)))
    frames_3s, close_s = _mjpeg_run(images)
    table = "\n".join(f"| {name} | {ms:.2f} |" if ms >= 0.1 else f"| {name} | {ms:.4f} |" for name, ms in rows)
    return (f"Median of {repeats} runs, single images 1280×720 unless stated. Wall-clock times on a "
            "shared machine: other processes' load inflates them.\n\n"
            "| step | ms |\n|---|---|\n" + table + "\n\n"
            f"- JPEG size at q80: {jpeg_kb:.0f} KiB per frame; PLY mesh: {ply_kb:.0f} KiB per frame.\n"
            f"- MJPEG: a client received {frames_3s} frames in 3 s from a 30 fps feed; "
            f"`close()` took {close_s * 1000:.0f} ms.\n"
            f"- Peak RSS of the benchmark process: {peak_rss_mb():.0f} MB.\n")
