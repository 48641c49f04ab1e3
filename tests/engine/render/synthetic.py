"""Hand-built FrameResults for renderer tests (no models): an icosphere "face", a box
"body", random landmarks and a patterned volume image. Pure numpy, no GL."""
from __future__ import annotations

import numpy as np

from engine.body.result import BodyResult
from engine.pinhole import PinholeCamera
from engine.face.result import FaceResult
from engine.frame import Frame
from engine.pipeline import FrameResult
from engine.volume.result import VolumeResult

WIDTH, HEIGHT = 320, 240
CAMERA = PinholeCamera.from_fov(WIDTH, HEIGHT, 60.0)
BACKGROUND_BGR = (40, 40, 40)
SPHERE_CENTER = np.array([0.0, 0.0, 1.0], np.float32)  # camera space, metres
SPHERE_RADIUS = 0.12


def gradient_image(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(H, W, 3) uint8 BGR with distinct values per pixel row/column and a blue square."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = np.linspace(0, 255, width, dtype=np.float32)[None, :].astype(np.uint8)
    image[:, :, 1] = np.linspace(0, 255, height, dtype=np.float32)[:, None].astype(np.uint8)
    image[:, :, 2] = 90
    image[20:60, 30:70] = (255, 0, 0)
    return image


def flat_image(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.full((height, width, 3), BACKGROUND_BGR, np.uint8)


def icosphere(subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: (V, 3) float32 vertices, (F, 3) int32 triangles (outward winding)."""
    t = (1.0 + 5 ** 0.5) / 2.0
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
         (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
         (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11),
         (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [np.array(p, np.float64) / np.linalg.norm(p) for p in v]
    faces = f
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def midpoint(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.array(verts, np.float32), np.array(faces, np.int32)


def box(size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box centred at the origin: (8, 3) float32 corners, (12, 3) int32 faces."""
    s = np.asarray(size, np.float32) / 2
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32) * s
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], np.int32)
    return corners, faces


def mesh_face_result(vertices_camera: np.ndarray, triangles: np.ndarray, landmarks: int = 4,
                     colours: np.ndarray | None = None) -> FaceResult:
    """A FaceResult of a camera-space mesh seen by CAMERA (its first `landmarks` vertices
    stand in for the landmarks)."""
    xy = CAMERA.project(vertices_camera)
    vertices_image = np.concatenate([xy, vertices_camera[:, 2:] * CAMERA.focal_px], axis=1).astype(np.float32)
    return FaceResult(vertices_image=vertices_image, vertices_camera=vertices_camera, triangles=triangles,
                      landmarks_2d=xy[:landmarks].copy(), pose_deg=np.zeros(3, np.float32),
                      identity=np.zeros(1, np.float32), expression=np.zeros(1, np.float32),
                      expression_names=("neutral",), fit_rmse_px=0.0, backend="anny", vertex_colours=colours)


def face_result(center: np.ndarray = SPHERE_CENTER, radius: float = SPHERE_RADIUS,
                coloured: bool = False) -> FaceResult:
    """A sphere 'face'; coloured: vertex colours red on the upper half, blue on the lower (BGR)."""
    unit, triangles = icosphere(3)
    vertices_camera = (unit * radius + center).astype(np.float32)
    colours = None
    if coloured:
        colours = np.where((unit[:, 1] < 0)[:, None], np.array([30, 30, 220], np.uint8),
                           np.array([220, 30, 30], np.uint8)).astype(np.uint8)
    return mesh_face_result(vertices_camera, triangles, landmarks=68, colours=colours)


def sheet_face_result(n: int = 20, holes_every: int = 0) -> FaceResult:
    """A flat n×n-cell sheet facing the camera (0.2 m wide, 1 m away) as a face result;
    holes_every > 0 removes every holes_every-th triangle: real holes through which the
    background shows, for checking a crack measure against its renders."""
    xs = np.linspace(-0.1, 0.1, n + 1, dtype=np.float32)
    xx, yy = np.meshgrid(xs, xs)
    vertices_camera = np.stack([xx.ravel(), yy.ravel(), np.ones(xx.size, np.float32)], axis=1)
    tris = []
    for r in range(n):
        for c in range(n):
            a = r * (n + 1) + c
            tris += [[a, a + 1, a + n + 2], [a, a + n + 2, a + n + 1]]
    triangles = np.array(tris, np.int32)
    if holes_every:
        triangles = triangles[np.arange(len(triangles)) % holes_every != 0]
    return mesh_face_result(vertices_camera, triangles)


def folded_face_result(gap_m: float = 0.004) -> FaceResult:
    """A face 'mesh' with a fold: a sheet facing the camera and, `gap_m` behind its centre,
    a steep sheet (nearly edge-on to the camera) that it hides entirely, as the far side of
    an eyelid or lip fold is hidden by the near side."""
    near = np.array([[-0.1, -0.1, 2.0], [0.1, -0.1, 2.0], [0.1, 0.1, 2.0], [-0.1, 0.1, 2.0]], np.float32)
    # Steep: depth grows 4 m per m of height, through the point gap_m behind the near sheet.
    ys = np.array([-0.08, 0.08], np.float32)
    far = np.array([[x, y, 2.0 + gap_m + 4.0 * y] for y in ys for x in (-0.08, 0.08)], np.float32)
    far[:, 2] = np.maximum(far[:, 2], 2.0 + gap_m)  # the lower half stays behind the sheet too
    vertices_camera = np.concatenate([near, far])
    triangles = np.array([[0, 2, 1], [0, 3, 2], [4, 6, 5], [5, 6, 7]], np.int32)
    return mesh_face_result(vertices_camera, triangles)


def body_result(size=(0.5, 0.1, 0.1), center=(0.0, 0.0, 2.0), keypoints_2d=None, visible=None) -> BodyResult:
    corners, faces = box(size)
    vertices = (corners + np.asarray(center, np.float32)).astype(np.float32)
    if keypoints_2d is None:
        keypoints_2d = np.zeros((33, 2), np.float32)
    if visible is None:
        visible = np.ones(len(keypoints_2d), bool)
    return BodyResult(vertices=vertices, faces=faces, joints_3d=np.zeros((24, 3), np.float32),
                      keypoints_2d=np.asarray(keypoints_2d, np.float32), keypoint_visible=np.asarray(visible, bool),
                      pose=np.zeros((24, 3), np.float32), shape=np.zeros(10, np.float32),
                      camera_focal_px=CAMERA.focal_px, camera_center_px=np.array([CAMERA.cx, CAMERA.cy], np.float32),
                      translation=np.asarray(center, np.float32), fit_rmse_px=0.0, backend="anny")


def spaced_landmarks(count: int = 478, seed: int = 0, margin: int = 8, spacing: float = 5.0) -> np.ndarray:
    """(count, 3) float32 random pixel positions at least `spacing` px apart (z = 0), so
    each splat can be checked on its own."""
    rng = np.random.default_rng(seed)
    accepted = np.empty((0, 2))
    while len(accepted) < count:
        p = rng.uniform([margin, margin], [WIDTH - margin, HEIGHT - margin])
        if len(accepted) == 0 or np.hypot(*(accepted - p).T).min() >= spacing:
            accepted = np.vstack([accepted, p])
    return np.concatenate([accepted.astype(np.float32), np.zeros((count, 1), np.float32)], axis=1)


def volume_result(size: int = 96) -> VolumeResult:
    """Three views (yaw -90, 0, 90); view i's colour image is a distinct pattern, all surface
    (every ray hits)."""
    yaw = np.array([-90.0, 0.0, 90.0], np.float32)
    color = np.zeros((3, size, size, 3), np.uint8)
    for i in range(3):
        color[i, :, :, i] = 200
        color[i, : size // 2, : size // 2] = (255, 255, 255)
    normal = np.full((3, size, size, 3), 128, np.uint8)
    depth = np.ones((3, size, size), np.float32)
    return VolumeResult(yaw_deg=yaw, color=color, normal=normal, depth=depth)


def disc_volume_result(size: int = 33, radius: float = 0.6) -> VolumeResult:
    """One view (yaw 0) of a disc of `radius` cube units on a coarse lattice, grey 200, with
    its silhouette field (the signed distance to the rim, cube units)."""
    c = -1.0 + (2.0 * np.arange(size) + 1.0) / size
    x, y = np.meshgrid(c, c)
    silhouette = (radius - np.hypot(x, y)).astype(np.float32)
    hit = silhouette > 0
    color = np.where(hit[..., None], 200, 0).astype(np.uint8).repeat(3, axis=2)
    depth = np.where(hit, 1.0, np.nan).astype(np.float32)
    return VolumeResult(yaw_deg=np.zeros(1, np.float32), color=color[None], normal=color[None].copy(),
                        depth=depth[None], silhouette=silhouette[None])


def frame_result(image: np.ndarray, results: dict, index: int = 0, errors: dict | None = None,
                 t_capture: float = 0.0) -> FrameResult:
    return FrameResult(frame=Frame(image, index, t_capture, "synthetic:render-test"), results=results,
                       errors=errors or {})
