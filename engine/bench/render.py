"""Renderer benchmark: headless (EGL) milliseconds per view at 1280x720, read-back included.

The scene is synthetic but sized like the real thing: a 1280x720 frame, 478 face and 33
pose landmarks, a face mesh of BFM's size (~38k vertices, ~76k triangles, its wireframe
drawn in the overlay) and a body mesh of ~14k vertices, and a 4-view 256x256 volume
result. Also times the CPU part that runs every frame (vertex normals of the face mesh).

PyOpenGL must be imported with PYOPENGL_PLATFORM=egl; when this process already imported
it otherwise (e.g. `bench all` after a Qt benchmark), the measurement runs in a subprocess.
"""
from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from engine.bench import BenchOptions, peak_rss_mb
from engine.pinhole import PinholeCamera
from engine.paths import repo_root

log = logging.getLogger(__name__)

SIZE = (1280, 720)


def uv_sphere(rows: int, cols: int, radius: float, center: np.ndarray,
              scale=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Latitude/longitude sphere: ((rows+1)*cols, 3) float32 vertices, (2*rows*cols, 3) int32
    triangles (poles repeated; fine for timing)."""
    theta = np.linspace(0, np.pi, rows + 1)[:, None]
    phi = np.linspace(0, 2 * np.pi, cols, endpoint=False)[None, :]
    xyz = np.stack([np.sin(theta) * np.cos(phi), np.cos(theta) + 0 * phi, np.sin(theta) * np.sin(phi)], axis=-1)
    vertices = (xyz.reshape(-1, 3) * radius * np.asarray(scale) + center).astype(np.float32)
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    a, b = r * cols + c, r * cols + (c + 1) % cols
    a2, b2 = a + cols, b + cols
    faces = np.concatenate([np.stack([a, a2, b], -1).reshape(-1, 3), np.stack([b, a2, b2], -1).reshape(-1, 3)])
    return vertices, faces.astype(np.int32)


def synthetic_frame_result(index: int = 0):
    """A FrameResult with every stage's result filled in, at SIZE."""
    from engine.body.result import BodyResult
    from engine.face.result import FaceResult
    from engine.frame import Frame
    from engine.perception.result import PerceptionResult
    from engine.pipeline import FrameResult
    from engine.volume.result import VolumeResult

    w, h = SIZE
    camera = PinholeCamera.from_fov(w, h, 60.0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    face_v, face_f = uv_sphere(190, 200, 0.09, np.array([0.0, -0.25, 1.2]), (0.8, 1.0, 0.7))
    body_v, body_f = uv_sphere(70, 200, 0.5, np.array([0.0, 0.3, 2.5]), (0.4, 1.7, 0.25))
    face_xy = camera.project(face_v)
    face = FaceResult(np.concatenate([face_xy, face_v[:, 2:] * camera.focal_px], 1), face_v, face_f,
                      face_xy[:68], np.zeros(3, np.float32), np.zeros(1, np.float32), np.zeros(52, np.float32),
                      tuple(f"e{i}" for i in range(52)), 1.0, "anny")
    keypoints = camera.project(body_v[rng.integers(0, len(body_v), 33)])
    body = BodyResult(body_v, body_f, np.zeros((24, 3), np.float32), keypoints, np.ones(33, bool),
                      np.zeros((24, 3), np.float32), np.zeros(10, np.float32), camera.focal_px,
                      np.array([camera.cx, camera.cy], np.float32), np.array([0, 0.3, 2.5], np.float32), 1.0, "anny")
    landmarks = np.concatenate([rng.uniform([400, 100], [800, 500], (478, 2)), np.zeros((478, 1))], 1).astype(np.float32)
    pose = np.concatenate([keypoints, np.zeros((33, 1), np.float32)], 1)
    perception = PerceptionResult((h, w), face_landmarks=landmarks, pose_landmarks=pose,
                                  pose_visibility=np.ones(33, np.float32))
    s = 256
    volume = VolumeResult(np.array([0, 90, 180, 270], np.float32), rng.integers(0, 255, (4, s, s, 3), dtype=np.uint8),
                          rng.integers(0, 255, (4, s, s, 3), dtype=np.uint8), np.zeros((4, s, s), np.float32))
    results = {"perception": perception, "face": face, "body": body, "volume": volume}
    return FrameResult(frame=Frame(image, index, float(index), "bench"), results=results)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


VIEWS = ("overlay", "mesh (Phong)", "mesh (matcap + wireframe)", "volume", "split")


def _views():
    from engine.render.view import OrbitCamera, ViewSettings

    return dict(zip(VIEWS, [ViewSettings(mode="overlay"), ViewSettings(mode="mesh", orbit=OrbitCamera(30, 10)),
                            ViewSettings(mode="mesh", shading="matcap", wireframe=True),
                            ViewSettings(mode="volume", volume_yaw_deg=90), ViewSettings(mode="split")]))


def _time_views(samples: int, frames: list, repeats: int) -> tuple[dict[str, float], float, bool, str]:
    """Median ms per view with `samples` MSAA; also start-up ms, whether a steady frame
    allocated no GPU storage, and the GL description."""
    from engine.render.headless import HeadlessRenderer

    t0 = time.perf_counter()
    renderer = HeadlessRenderer(*SIZE, samples=samples)
    init_ms = (time.perf_counter() - t0) * 1000.0
    try:
        times = {}
        for name, view in _views().items():
            counter = iter(range(10 ** 9))
            # Alternate two frames so every render uploads a new frame and new meshes.
            times[name] = _median_ms(lambda: renderer.render(frames[next(counter) % 2], view), repeats)
        allocations = renderer.scene.gpu_allocations()
        renderer.render(frames[0], _views()["split"])
        steady = renderer.scene.gpu_allocations() == allocations
        return times, init_ms, steady, renderer.scene.gl_description()
    finally:
        renderer.close()


def measure(repeats: int) -> str:
    """Run the benchmark in this process (PyOpenGL not yet imported, or imported for EGL)."""
    from engine.render.geometry import incidence_matrix, vertex_normals

    frames = [synthetic_frame_result(i) for i in range(2)]
    msaa, init_ms, steady, gl = _time_views(4, frames, repeats)
    plain, _, steady_plain, _ = _time_views(0, frames, repeats)
    face = frames[0].results["face"]
    incidence = incidence_matrix(face.triangles, len(face.vertices_camera))
    normals_ms = _median_ms(lambda: vertex_normals(face.vertices_camera, face.triangles, incidence), repeats)
    rows = "\n".join(f"| {name} | {msaa[name]:.1f} | {plain[name]:.1f} |" for name in VIEWS)
    load = os.getloadavg()[0]
    return (f"Headless EGL at {SIZE[0]}x{SIZE[1]} on {gl}; median of {repeats} renders per view, "
            f"each uploading a new frame and meshes and reading the image back. Scene: 478 + 33 "
            f"landmarks, a 38k-vertex / 76k-triangle face, a 14k-vertex body, 4 volume views of "
            f"256x256. Load average at the end: {load:.1f} (the machine is shared).\n\n"
            f"| view | ms, 4x MSAA | ms, no MSAA |\n|---|---|---|\n{rows}\n\n"
            f"- start-up (EGL context, shaders): {init_ms:.0f} ms\n"
            f"- vertex normals of the face mesh (CPU, every frame, cached incidence): {normals_ms:.2f} ms\n"
            f"- GPU storage re-allocated on a steady frame: "
            f"{'no' if steady and steady_plain else 'YES (a defect)'}\n"
            f"- peak RSS: {peak_rss_mb():.0f} MB\n")


def run(options: BenchOptions) -> str:
    repeats = 5 if options.quick else max(5, options.repeats // 2)
    if "OpenGL" in sys.modules and os.environ.get("PYOPENGL_PLATFORM") != "egl":
        env = dict(os.environ, PYOPENGL_PLATFORM="egl")
        proc = subprocess.run([sys.executable, "-m", "engine.bench.render", str(repeats)], cwd=repo_root(),
                              env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"render benchmark subprocess failed:\n{proc.stderr[-2000:]}")
        return proc.stdout
    return measure(repeats)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.stdout.write(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 25))
