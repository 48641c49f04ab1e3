"""Perception benchmark: mediapipe per-model ms and stage fps on the shared clips."""
from __future__ import annotations

import time

import cv2
import numpy as np

from engine.bench import BenchOptions, peak_rss_mb
from engine.frame import Frame
from engine.perception.stage import PerceptionSettings, PerceptionStage

CLIPS = ("talking_head.mp4", "street_people.avi")
CONFIGS = {
    "face mesh (478, refined)": PerceptionSettings(face=True, pose=False, segmentation=False),
    "pose (complexity 1)": PerceptionSettings(face=False, pose=True, segmentation=False),
    "pose + segmentation": PerceptionSettings(face=False, pose=True, segmentation=True),
    "whole stage": PerceptionSettings(),
}


def _read_frames(path, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def _time_config(settings: PerceptionSettings, frames: list[np.ndarray]) -> list[float]:
    stage = PerceptionStage(settings)
    times = []
    try:
        for i, image in enumerate(frames):
            frame = Frame(image, i, time.monotonic(), "bench")
            t0 = time.perf_counter()
            stage.process(frame, {})
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        stage.close()
    return times[3:] or times  # the first frames include graph warm-up


def run(options: BenchOptions) -> str:
    limit = 20 if options.quick else 200
    lines = ["Median ms per frame (wall clock, single process) over the first "
             f"{limit} frames of each clip; fps = 1000 / median of the whole stage.", "",
             "| clip | size | " + " | ".join(CONFIGS) + " | stage fps |",
             "|---" * (len(CONFIGS) + 3) + "|"]
    for clip in CLIPS:
        path = options.shared_dir / "media" / clip
        if not path.exists():
            lines.append(f"| {clip} | missing | " + " | ".join("-" for _ in CONFIGS) + " | - |")
            continue
        frames = _read_frames(path, limit)
        h, w = frames[0].shape[:2]
        medians = [float(np.median(_time_config(cfg, frames))) for cfg in CONFIGS.values()]
        lines.append(f"| {clip} | {w}×{h} | " + " | ".join(f"{m:.1f}" for m in medians)
                     + f" | {1000 / medians[-1]:.1f} |")
    lines += ["", f"Peak RSS of the benchmark process: {peak_rss_mb():.0f} MB."]
    return "\n".join(lines)
