"""Face benchmark (offline default: the Anny head fitted to mediapipe): ms per frame at 640×480.

Input: ../shared/media/talking_head.mp4 scaled to 480 px high and centred on a 640×480
canvas (a ~235 px wide face, as from a webcam at arm's length); without ../shared, renders
of the Anny head. Numbers:
- fit: FaceFitter.fit (warm-started Gauss-Newton, One Euro filter), identity frozen;
- stage without mediapipe: FaceStage.process (fit + 4,538-vertex mesh + FaceResult), on
  landmarks mediapipe produced beforehand; after the identity is frozen, and separately
  while it is being accumulated (the first 60 frames: identity free per frame);
- stage with mediapipe: PerceptionStage (face mesh only) + FaceStage, per frame;
as wall-clock and as this process's CPU time (the machine is shared: CPU time is steadier).
Also the fit RMSE over the clip, and, when engine/bench/tddfa.py exists, its section.
"""
from __future__ import annotations

import importlib
import logging
import time

import cv2
import numpy as np

from engine.bench import BenchOptions, peak_rss_mb
from engine.face.fit import rotation_matrix
from engine.face.fitter import FaceFitter
from engine.face.morphable import LinearFaceModel
from engine.face.stage import FaceSettings, FaceStage
from engine.face.synthetic import render_mesh
from engine.frame import Frame

log = logging.getLogger(__name__)

WIDTH, HEIGHT = 640, 480


def _frames(options: BenchOptions, model: LinearFaceModel, limit: int) -> tuple[list[np.ndarray], str]:
    """640×480 BGR frames: the talking head clip, or Anny renders without ../shared."""
    path = options.shared_dir / "media" / "talking_head.mp4"
    frames: list[np.ndarray] = []
    if path.exists():
        cap = cv2.VideoCapture(str(path))
        try:
            while len(frames) < limit:
                ok, image = cap.read()
                if not ok:
                    break
                scale = HEIGHT / image.shape[0]
                small = cv2.resize(image, (int(round(image.shape[1] * scale)), HEIGHT), interpolation=cv2.INTER_AREA)
                canvas = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
                x0 = (WIDTH - small.shape[1]) // 2
                canvas[:, x0:x0 + small.shape[1]] = small
                frames.append(canvas)
        finally:
            cap.release()
        return frames, "talking_head.mp4 on a 640×480 canvas"
    rng = np.random.default_rng(0)
    for i in range(limit):
        expr = np.zeros(model.num_expression, np.float32)
        expr[model.expression_names.index("jawOpen")] = 0.25 * (1 - np.cos(i / 5))
        rot = rotation_matrix(20 * np.sin(i / 15), 5 * np.sin(i / 11), 0.0)
        r = render_mesh(model.vertices(np.zeros(model.num_identity, np.float32), expr), model.triangles,
                        model.vertex_colours, rot, 1500.0, np.array([WIDTH / 2, HEIGHT / 2]) + rng.normal(0, 1, 2),
                        HEIGHT, WIDTH)
        frames.append(r.image)
    return frames, "Anny renders (../shared not found)"


def _stats(wall: list[float], cpu: list[float]) -> str:
    w, c = np.array(wall) * 1e3, np.array(cpu) * 1e3
    return f"{np.median(w):.2f} | {np.percentile(w, 95):.2f} | {np.median(c):.2f}"


def run(options: BenchOptions) -> str:
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    limit = 40 if options.quick else 169
    model = LinearFaceModel.from_anny()
    frames, source = _frames(options, model, limit)
    perception = PerceptionStage(PerceptionSettings(pose=False, segmentation=False))
    try:
        seen = [perception.process(Frame(img, i, i / 25.0, "bench"), {}) for i, img in enumerate(frames)]
    finally:
        perception.close()
    landmarks = [(i, s.face_landmarks) for i, s in enumerate(seen) if s.face_landmarks is not None]
    if not landmarks:
        return f"No face found by mediapipe in {source}; nothing to time."

    # fit alone, identity frozen first (the steady state)
    fitter = FaceFitter(model)
    for i, lm in landmarks[:fitter.settings.identity_frames + 2]:
        fitter.fit(lm, i / 25.0)
    fit_wall, fit_cpu, rmse = [], [], []
    rounds = max(1, min(options.repeats, 200) // len(landmarks) + 1) if not options.quick else 1
    t_base = landmarks[-1][0] / 25.0
    for r in range(rounds):
        for i, lm in landmarks:
            w0, c0 = time.perf_counter(), time.process_time()
            _, _, err = fitter.fit(lm, t_base + (r * len(frames) + i + 1) / 25.0)
            fit_wall.append(time.perf_counter() - w0)
            fit_cpu.append(time.process_time() - c0)
            rmse.append(err)

    # stage without mediapipe
    stage = FaceStage(FaceSettings(backend="anny"), model=model)
    from engine.perception.result import PerceptionResult

    st_wall, st_cpu, acc_wall = [], [], []
    for i, lm in landmarks:
        frame = Frame(frames[i], i, i / 25.0, "bench")
        ctx = {"perception": PerceptionResult((HEIGHT, WIDTH), face_landmarks=lm)}
        frozen = stage._fitter is not None and stage._fitter.identity_frozen
        w0, c0 = time.perf_counter(), time.process_time()
        stage.process(frame, ctx)
        (st_wall if frozen else acc_wall).append(time.perf_counter() - w0)
        if frozen:
            st_cpu.append(time.process_time() - c0)
    stage.close()

    # the whole default face path: mediapipe face mesh + stage
    stage = FaceStage(FaceSettings(backend="anny"), model=model)
    perception = PerceptionStage(PerceptionSettings(pose=False, segmentation=False))
    full_wall, full_cpu, mp_wall = [], [], []
    try:
        for i, img in enumerate(frames):
            frame = Frame(img, i, i / 25.0, "bench")
            w0, c0 = time.perf_counter(), time.process_time()
            ctx = {"perception": perception.process(frame, {})}
            w1 = time.perf_counter()
            stage.process(frame, ctx)
            full_wall.append(time.perf_counter() - w0)
            full_cpu.append(time.process_time() - c0)
            mp_wall.append(w1 - w0)
    finally:
        perception.close()
        stage.close()

    body = [
        f"Input: {source}, {len(frames)} frames, face found in {len(landmarks)}. "
        f"Anny head: {model.num_vertices} vertices, {model.num_identity} identity + "
        f"{model.num_expression} expression units, {len(model.landmark_mediapipe)} landmarks.",
        "",
        "| step | wall median ms | wall 95th ms | CPU median ms |",
        "|---|---|---|---|",
        f"| fit (FaceFitter.fit, identity frozen) | {_stats(fit_wall, fit_cpu)} |",
        f"| face stage without mediapipe (fit + mesh + FaceResult), identity frozen | {_stats(st_wall, st_cpu)} |",
        f"| the same while the identity is accumulated (first {len(acc_wall)} frames) | "
        f"{_stats(acc_wall, acc_wall)} |",
        f"| mediapipe face mesh alone (PerceptionStage, face only) | {_stats(mp_wall, mp_wall)} |",
        f"| whole default face stage (mediapipe + face stage) | {_stats(full_wall, full_cpu)} |",
        "",
        "(Rows whose CPU column repeats the wall time were timed by wall clock only; mediapipe's "
        "graph runs on its own threads. The whole-path row includes the accumulation frames; the "
        "freeze itself, one joint solve over them, takes tens of ms once.) "
        f"Fit RMSE over the clip: median {np.median(rmse):.2f} px, 95th percentile "
        f"{np.percentile(rmse, 95):.2f} px. Goals: fit ≤ 2 ms, whole default face stage ≤ 8 ms. "
        f"Peak RSS of the process: {peak_rss_mb():.0f} MB.",
    ]
    from engine.bench.face_stills import report as stills_report

    text = "\n".join(body) + "\n\n### Accuracy on stills\n\n" + stills_report(model)
    try:
        tddfa = importlib.import_module("engine.bench.tddfa")
    except ImportError:
        return text
    try:
        return text + "\n\n### 3DDFA_V2 back-end\n\n" + tddfa.run(options)
    except (OSError, RuntimeError, ValueError) as exc:
        log.warning("3DDFA_V2 benchmark failed: %s", exc)
        return text + f"\n\n### 3DDFA_V2 back-end\n\nnot run: {exc}"
