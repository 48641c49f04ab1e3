"""One configuration of the app benchmark, measured in the real window (one process each,
so peak RSS is that configuration's own).

    python -m app.bench_window --source CLIP --fps 30 --seconds 20 --stages perception,face,body
        --view overlay --json OUT.json

Plays the source paced at --fps in the Qt window (needs a display: Xvfb here) and records,
for every captured frame that reached the screen (QOpenGLWidget.frameSwapped showing a new
frame index), the time from its capture to that swap. Also the per-stage result rates and
drops, the volume's level, CPU use and peak RSS, over the measuring span only (after the
models loaded and the first frames flowed).
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

WARMUP_FRAMES = 10  # frames shown before measuring starts
WARMUP_S = 2.0  # and seconds after that (caches, numba, the volume's first levels)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(source: str, fps: float, seconds: float, stages: list[str], view: str) -> dict[str, Any]:
    from app.qt_env import sanitize_qt_environment

    sanitize_qt_environment()
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from engine.settings import AppSettings

    app = QApplication.instance() or QApplication([])
    settings = AppSettings()  # defaults, not the user's saved settings
    settings.stages = {n: n in stages for n in settings.stages}
    settings.view = view
    window = MainWindow(settings)
    window.show_dialogs = False
    window.session.pace_fps = fps
    window.resize(1280, 800)
    window.show()
    captured: dict[int, float] = {}
    latencies: list[float] = []
    swaps: list[float] = []
    state: dict[str, Any] = {"shown": None, "measuring": False}
    original = window.viewport.set_frame_result

    def remember(fr, _orig=original) -> None:
        captured[fr.frame.index] = fr.frame.t_capture
        _orig(fr)

    window.viewport.set_frame_result = remember

    def on_swap() -> None:
        index = window.viewport.displayed_index
        if index is None or index == state["shown"] or index not in captured:
            return
        state["shown"] = index
        t_capture = captured.pop(index)
        for old in [k for k in captured if k < index]:
            del captured[old]
        if state["measuring"]:
            now = time.monotonic()
            swaps.append(now)
            latencies.append((now - t_capture) * 1000.0)

    window.viewport.frameSwapped.connect(on_swap)
    window.open_source(source)

    def begin() -> None:
        if window.frames_shown < WARMUP_FRAMES:
            QTimer.singleShot(200, begin)
            return
        stats = window.session.stats()
        state.update(measuring=True, t0=time.monotonic(), cpu0=_cpu_s(), stats0=stats)
        QTimer.singleShot(int(seconds * 1000), finish)

    def finish() -> None:
        # Before quit(): Qt 6 closes the windows on quit, which stops the session.
        state.update(t1=time.monotonic(), cpu1=_cpu_s(), stats1=window.session.stats(),
                     level=window.session.volume_level())
        app.quit()

    QTimer.singleShot(int(WARMUP_S * 1000), begin)
    app.exec()
    state["paint_ms"] = window.viewport.paint_ms
    window.close()
    if "stats1" not in state or state.get("stats0") is None:
        raise RuntimeError(f"the window never showed {WARMUP_FRAMES} frames of {source}")
    span = state["t1"] - state["t0"]
    s0, s1 = state["stats0"], state["stats1"]
    distinct = len(swaps)
    return {
        "stages": stages,
        "view": view,
        "source": str(source),
        "source_fps": fps,
        "seconds": round(span, 2),
        "display_fps": round(distinct / span, 2) if span > 0 else 0.0,
        "latency_ms_median": round(float(np.median(latencies)), 1) if latencies else None,
        "latency_ms_p95": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "result_fps": {k: round((s1.stage_results.get(k, 0) - s0.stage_results.get(k, 0)) / span, 2)
                       for k in s1.stage_results},
        "dropped": {k: s1.stage_dropped.get(k, 0) - s0.stage_dropped.get(k, 0) for k in s1.stage_dropped},
        "stage_ms": {k: round(v, 2) for k, v in s1.stage_ms.items()},
        "capture_to_results_ms": round(s1.latency_ms, 1),
        "volume_level": state.get("level"),
        "cpu_cores": round((state["cpu1"] - state["cpu0"]) / span, 2) if span > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "render_fps": round(window.viewport.render_fps, 2),
        "paint_ms": round(state["paint_ms"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--stages", default="perception,face,body")
    parser.add_argument("--view", default="overlay")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    row = measure(args.source, args.fps, args.seconds, [s for s in args.stages.split(",") if s], args.view)
    args.json.write_text(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
