"""What the renderer shows and from where: plain frozen dataclasses (no GL, no Qt)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from engine.settings_schema import SHADINGS  # one list for the view, the settings and the CLI

__all__ = ["SHADINGS", "VIEW_MODES", "OrbitCamera", "Shading", "ViewMode", "ViewSettings", "VolumeChannel"]

ViewMode = Literal["overlay", "mesh", "volume", "split"]
Shading = Literal["textured", "phong", "matcap"]
VolumeChannel = Literal["color", "normal"]

VIEW_MODES: tuple[str, ...] = ("overlay", "mesh", "volume", "split")


@dataclass(frozen=True)
class OrbitCamera:
    """The virtual camera of the mesh view, orbiting the centre of the shown meshes.

    yaw_deg: rotation about the vertical axis; 0 = the input camera's side, positive moves
        the eye to the viewer's right. pitch_deg: elevation, positive = from above,
        clamped to (-89, 89).
    distance: distance to the centre relative to the input camera's (1 = as far as the
        input camera; < 1 zooms in).
    """

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    distance: float = 1.0

    def orbited(self, d_yaw: float, d_pitch: float) -> "OrbitCamera":
        pitch = min(89.0, max(-89.0, self.pitch_deg + d_pitch))
        yaw = (self.yaw_deg + d_yaw + 180.0) % 360.0 - 180.0
        return OrbitCamera(yaw, pitch, self.distance)

    def zoomed(self, factor: float) -> "OrbitCamera":
        """`factor` > 1 moves closer. Distance stays within [0.1, 10]."""
        return OrbitCamera(self.yaw_deg, self.pitch_deg, min(10.0, max(0.1, self.distance / factor)))


@dataclass(frozen=True)
class ViewSettings:
    """How one FrameResult is drawn.

    mode: "overlay" (camera image + landmarks, face wireframe, body skeleton in image space),
        "mesh" (face/body meshes in 3D from `orbit`), "volume" (VolumeResult image nearest
        `volume_yaw_deg`), "split" (overlay | mesh side by side).
    show_status: a small corner note: in the mesh view for a wanted mesh that is missing
        ("body stage off" beside a face), in the volume view which image is shown.
    mirror: show every view left-right mirrored (selfie view); the data is not changed.
    hfov_deg: horizontal field of view assumed for the input camera when a result does not
        say (the body fit's focal length wins when present).
    point_size_px, line_width_px: landmark splat diameter and skeleton line width, in
        framebuffer pixels.
    background: (r, g, b) in [0, 1] for areas outside the image and the 3D views.
    """

    mode: ViewMode = "overlay"
    orbit: OrbitCamera = field(default_factory=OrbitCamera)
    shading: Shading = "textured"
    wireframe: bool = False
    show_landmarks: bool = True
    show_face_mesh: bool = True
    show_skeleton: bool = True
    show_face: bool = True
    show_body: bool = True
    show_status: bool = True
    mirror: bool = False
    volume_yaw_deg: float = 0.0
    volume_channel: VolumeChannel = "color"
    hfov_deg: float = 60.0
    point_size_px: float = 4.0
    line_width_px: float = 3.0
    background: tuple[float, float, float] = (0.08, 0.08, 0.1)
