"""Matrix math for the renderer: pure numpy functions, no GL calls.

Frames used here:
- image pixels: x right, y down, continuous: pixel (i, j) covers [i, i+1) x [j, j+1), so its
  centre is (i + 0.5, j + 0.5) (mediapipe's normalised x * W and PinholeCamera's cx = W / 2
  both use this).
- camera space (the stages' output): x right, y down, z forward, metres.
- GL world: camera space with y and z negated (x right, y up, z towards the viewer), so the
  input camera sits at the origin looking down -z, as OpenGL expects.
Matrices are (4, 4) float32, row-major in numpy; upload them with transpose=GL_TRUE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CAMERA_TO_GL = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
CAMERA_TO_GL.flags.writeable = False


@dataclass(frozen=True)
class Rect:
    """A rectangle in framebuffer pixels, GL convention (x, y of the lower-left corner)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / max(self.height, 1)


def fit_rect(outer: Rect, content_width: int, content_height: int) -> Rect:
    """The largest rectangle of the content's aspect centred in `outer` (letterboxing)."""
    scale = min(outer.width / max(content_width, 1), outer.height / max(content_height, 1))
    w = max(1, int(round(content_width * scale)))
    h = max(1, int(round(content_height * scale)))
    return Rect(outer.x + (outer.width - w) // 2, outer.y + (outer.height - h) // 2, w, h)


def split_rect(outer: Rect) -> tuple[Rect, Rect]:
    """Left and right halves of `outer`."""
    left = outer.width // 2
    return Rect(outer.x, outer.y, left, outer.height), Rect(outer.x + left, outer.y, outer.width - left, outer.height)


def image_to_ndc(width: int, height: int) -> np.ndarray:
    """(4, 4) float32 mapping image pixels (x, y; z ignored) to NDC of a viewport showing the
    whole image: (0, 0) -> the top-left corner (-1, 1), (W, H) -> the bottom-right (1, -1)."""
    m = np.zeros((4, 4), np.float32)
    m[0, 0] = 2.0 / width
    m[0, 3] = -1.0
    m[1, 1] = -2.0 / height
    m[1, 3] = 1.0
    m[3, 3] = 1.0
    return m


def mirror_x(mirrored: bool) -> np.ndarray:
    """(4, 4) float32 clip-space left-right flip (identity when not `mirrored`); applied
    after projection it mirrors the view like a selfie camera."""
    return np.diag([-1.0 if mirrored else 1.0, 1.0, 1.0, 1.0]).astype(np.float32)


def perspective(fovy_rad: float, aspect: float, near: float, far: float) -> np.ndarray:
    """(4, 4) float32 OpenGL projection (right-handed view space, NDC z in [-1, 1])."""
    f = 1.0 / math.tan(fovy_rad / 2.0)
    m = np.zeros((4, 4), np.float32)
    m[0, 0] = f / aspect
    m[1, 1] = f
    m[2, 2] = (far + near) / (near - far)
    m[2, 3] = 2.0 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) float32 view matrix: GL world -> view space (camera looks down -z)."""
    forward = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    forward /= max(np.linalg.norm(forward), 1e-12)
    side = np.cross(forward, up)
    side /= max(np.linalg.norm(side), 1e-12)
    true_up = np.cross(side, forward)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = side, true_up, -forward
    m[:3, 3] = -m[:3, :3] @ np.asarray(eye, np.float64)
    return m.astype(np.float32)


def orbit_eye(target: np.ndarray, yaw_deg: float, pitch_deg: float, distance: float) -> np.ndarray:
    """(3,) GL-world eye position orbiting `target`. yaw=pitch=0 puts the eye on the +z side
    of the target (towards the input camera); positive yaw moves it to the viewer's right,
    positive pitch moves it up."""
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    offset = np.array([math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    return np.asarray(target, np.float64) + distance * offset


def orbit_view(target_camera: np.ndarray, yaw_deg: float, pitch_deg: float, distance: float = 1.0) -> np.ndarray:
    """(4, 4) float32 view matrix for camera-space points (the camera->GL flip included).

    The eye orbits `target_camera` ((3,) camera space, metres) by yaw/pitch (see orbit_eye)
    and keeps the target where the input camera sees it, `distance` times as far (1 = as
    far as the input camera). So yaw = pitch = 0, distance = 1 is exactly the input camera:
    meshes line up with the camera image, and orbiting turns them in place.
    """
    target = CAMERA_TO_GL @ np.asarray(target_camera, np.float64)
    # Rotation of a look-at from the orbit direction towards the target.
    rotation = look_at(orbit_eye(np.zeros(3), yaw_deg, pitch_deg, 1.0), np.zeros(3),
                       np.array([0.0, 1.0, 0.0])).astype(np.float64)
    rotation[:3, 3] = 0.0
    to_target, from_target, flip = np.eye(4), np.eye(4), np.eye(4)
    from_target[:3, 3] = -target
    to_target[:3, 3] = target * distance
    flip[:3, :3] = CAMERA_TO_GL
    return (to_target @ rotation @ from_target @ flip).astype(np.float32)


def vertical_fov(hfov_deg: float, aspect: float) -> float:
    """Vertical field of view (radians) of a camera with horizontal FOV `hfov_deg` and
    width/height `aspect`."""
    return 2.0 * math.atan(math.tan(math.radians(hfov_deg) / 2.0) / aspect)


def nearest_index(angles_deg: np.ndarray, target_deg: float) -> int:
    """Index of the angle in (N,) `angles_deg` closest to `target_deg`, modulo 360."""
    diff = (np.asarray(angles_deg, np.float64) - target_deg + 180.0) % 360.0 - 180.0
    return int(np.argmin(np.abs(diff)))
