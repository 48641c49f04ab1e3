"""App benchmark: display fps and capture -> screen latency of the real window, per
configuration, plus the same configurations headless (lossless throughput).

    python main.py bench app [--source PATH] [--fps 30] [--seconds 20] [--json FILE]

Each window configuration runs in its own process (app.bench_window) so its peak RSS is its
own; the source is paced at --fps (default: the shared talking-head clip, 25 fps in the
file, re-timed to 30). Needs a display: `xvfb-run -a` here (software GL, Mesa llvmpipe).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine.bench import BenchOptions
from engine.paths import repo_root

CLIP = "talking_head.mp4"
CONFIGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("perception",), "overlay"),
    (("perception", "face", "body"), "overlay"),
    (("perception", "face", "body", "volume"), "overlay"),
    (("perception", "face", "body", "volume"), "volume"),
)
CHILD_TIMEOUT_S = 300


def _child_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = str(tmp / "config")  # never touch the user's saved settings
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def window_row(source: Path, fps: float, seconds: float, stages: tuple[str, ...], view: str,
               tmp: Path) -> dict[str, Any]:
    out = tmp / f"{'_'.join(stages)}_{view}.json"
    cmd = [sys.executable, "-m", "app.bench_window", "--source", str(source), "--fps", str(fps),
           "--seconds", str(seconds), "--stages", ",".join(stages), "--view", view, "--json", str(out)]
    proc = subprocess.run(cmd, cwd=repo_root(), env=_child_env(tmp), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S + seconds)
    if proc.returncode != 0 or not out.exists():
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {"stages": list(stages), "view": view, "error": " / ".join(tail) or f"rc {proc.returncode}"}
    return json.loads(out.read_text())


def headless_row(source: Path, stages: tuple[str, ...], tmp: Path) -> dict[str, Any]:
    out = tmp / ("headless_" + "_".join(stages))
    cmd = [sys.executable, "main.py", "run", "--source", str(source), "--headless", "--out", str(out),
           "--stages", ",".join(stages), "--no-progress"]
    proc = subprocess.run(cmd, cwd=repo_root(), env=_child_env(tmp), capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S * 2)
    summary_path = out / "summary.json"
    if proc.returncode != 0 or not summary_path.exists():
        return {"stages": list(stages), "error": f"rc {proc.returncode}"}
    summary = json.loads(summary_path.read_text())
    return {"stages": list(stages), "fps": summary["fps"], "load_s": summary.get("load_s"),
            "frames_processed": summary["frames_processed"], "frames_dropped": summary["frames_dropped"],
            "median_ms": summary["median_ms"]}


def run(options: BenchOptions) -> str:
    if not os.environ.get("DISPLAY"):
        return "Not run: no display (run `xvfb-run -a python main.py bench app`)."
    source = Path(options.source) if options.source else options.shared_dir / "media" / CLIP
    fps = options.fps or 30.0
    seconds = options.seconds or (6.0 if options.quick else 20.0)
    with tempfile.TemporaryDirectory(prefix="holocap-bench-app-") as tmp_name:
        tmp = Path(tmp_name)
        rows = [window_row(source, fps, seconds, stages, view, tmp) for stages, view in CONFIGS]
        headless = [headless_row(source, stages, tmp) for stages, _ in CONFIGS[:3]]
    if options.json:
        Path(options.json).write_text(json.dumps(rows, indent=2))
    return render_markdown(rows, headless, source, fps, seconds)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in value.items())
    return "-" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)


def render_markdown(rows: list[dict], headless: list[dict], source: Path, fps: float, seconds: float) -> str:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        f"The window (1280×800) playing {source.name} paced at {fps:g} fps for {seconds:g} s per "
        "configuration (each in its own process), software OpenGL (Mesa llvmpipe under Xvfb). "
        "*display fps*: distinct captured frames shown per second; *latency*: capture timestamp -> "
        "QOpenGLWidget.frameSwapped of that frame; *results*: results per second of each stage; "
        "*cpu*: cores used by the process.", "",
        "| stages | view | display fps | latency median ms | p95 ms | capture→results ms | results/s | dropped | volume level | cpu | peak RSS MB | paint ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {'+'.join(r['stages'])} | {r['view']} | failed: {r['error']} |||||||||")
            continue
        lines.append(
            f"| {'+'.join(r['stages'])} | {r['view']} | {_fmt(r['display_fps'])} | {_fmt(r['latency_ms_median'])} | "
            f"{_fmt(r['latency_ms_p95'])} | {_fmt(r['capture_to_results_ms'])} | {_fmt(r['result_fps'])} | "
            f"{_fmt(r['dropped'])} | {_fmt(r['volume_level'])} | {_fmt(r['cpu_cores'])} | {_fmt(r['peak_rss_mb'])} | "
            f"{_fmt(r.get('paint_ms'))} |")
    lines += ["", "Headless, lossless over the same file (every frame, every stage; fps counted from the "
              "first processed frame, model loading apart):", "",
              "| stages | fps | load s | frames | median ms per stage |", "|---|---|---|---|---|"]
    for h in headless:
        if "error" in h:
            lines.append(f"| {'+'.join(h['stages'])} | failed: {h['error']} ||||")
            continue
        lines.append(f"| {'+'.join(h['stages'])} | {_fmt(h['fps'])} | {_fmt(h['load_s'])} | "
                     f"{h['frames_processed']} | {_fmt(h['median_ms'])} |")
    lines += ["", f"Load average (1, 5, 15 min) at the end: {load}."]
    return "\n".join(lines)
