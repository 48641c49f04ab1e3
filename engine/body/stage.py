"""The body stage: one fitted body mesh per frame, from the perception stage's pose landmarks.

Back-ends: "anny" (offline default: Anny fitted to mediapipe pose, engine/body/fit.py) and
"hmr" (SPIN/HMR regression, needs the "spin" and "smpl" weights) and "pointhmr" (PointHMR,
needs the "pointhmr" and "smpl" weights). "auto" uses HMR when its weights are installed and
Anny otherwise, saying once which and why.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.body.anny_model import AnnyBodyData, load_anny_body_data
from engine.body.export import export_mesh, export_name
from engine.body.fit import AnnyFitter, FitOutput, FitSettings, Observation
from engine.body.result import BodyResult
from engine.pinhole import PinholeCamera
from engine.frame import Frame
from engine.mesh_colours import VertexColourTrack
from engine.perception.result import PerceptionResult
from engine.stage_protocol import StageContext
from engine.settings_schema import BODY_BACKENDS as BACKENDS  # one list for stages, settings and CLI

log = logging.getLogger(__name__)

#: Fewest visible landmarks (of 33, inside the image) for the Anny fit to run.
MIN_VISIBLE = 6
#: A fit whose RMS error exceeds this fraction of the diagonal of the visible landmarks'
#: box has not found the person: no result rather than a wrong one.
MAX_RMSE_FRACTION = 0.15


@dataclass(frozen=True)
class BodySettings:
    """backend: "auto" | "anny" | "hmr" | "pointhmr". hfov_deg: horizontal field of view of the input
    camera (the perspective model; 60° is a typical webcam). smoothing: zero-lag One Euro
    filtering of the Anny pose. person: which person to fit (None = the largest / most
    central one; the perception stage does the selection). export_dir: where meshes go when
    an export is requested (None = not set). device: torch device for HMR ("auto"|"cpu"|"cuda").
    mesh: produce the full mesh every frame (False = keypoints and joints only).
    still_images: the frames are unrelated photos: each is fitted from a fresh start (no
    warm start, shape or smoothing carried over from another person), with more steps.
    colours: sample the person's colours onto the mesh (engine.mesh_colours); off where
    nothing shows or writes them (a headless run without mesh exports or a recording)."""

    backend: str = "auto"
    hfov_deg: float = 60.0
    smoothing: bool = True
    person: int | None = None
    export_dir: Path | None = None
    device: str = "auto"
    mesh: bool = True
    still_images: bool = False
    colours: bool = True


# A photo is fitted once, from the closed-form start: twice the steps of a video's first frame.
STILL_ITERATIONS = 20


class BodyStage:
    name = "body"
    requires: tuple[str, ...] = ("perception",)  # the stages whose results process() reads

    def __init__(self, settings: BodySettings | None = None,
                 on_progress: Callable[[str], None] | None = None,
                 model_data: AnnyBodyData | None = None) -> None:
        self.settings = settings or BodySettings()
        if self.settings.backend not in BACKENDS:
            raise ValueError(f"unknown body backend {self.settings.backend!r}: use one of {BACKENDS}")
        self._hmr: Any = None
        self._fitter: AnnyFitter | None = None
        self._export_next: Path | None = None
        self._faces: np.ndarray | None = None
        # Photos at once; video on the track's helper thread, off this stage's path.
        self._colours = VertexColourTrack(background=not self.settings.still_images)
        if self.settings.backend in ("auto", "hmr", "pointhmr"):
            self._hmr = self._make_hmr()
        if self._hmr is None:
            data = model_data or load_anny_body_data(on_progress=on_progress)
            fit = (FitSettings(smoothing=False, iterations_first=STILL_ITERATIONS) if self.settings.still_images
                   else FitSettings(smoothing=self.settings.smoothing))
            self._fitter = AnnyFitter(data, fit)
            self._faces = data.faces
            log.info("body back-end: Anny fitted to mediapipe pose (offline default)")

    @property
    def backend(self) -> str:
        return self._hmr.backend_name if self._hmr is not None else "anny"

    @property
    def reads_pixels(self) -> bool:
        """Whether process() looks at the image and the person mask (the regressors crop
        the image; colours sample it), or only at the landmarks and the image's size (the
        Anny fit): a remote client sends the frame's pixels only when this is True."""
        return self._hmr is not None or self.settings.colours

    def _make_hmr(self) -> Any:
        # Imported only when asked for: the regressors pull in their networks and the SMPL loader.
        from engine.device import resolve_device

        device = str(resolve_device(self.settings.device))
        wanted = self.settings.backend
        if wanted == "pointhmr":
            from engine.body.pointhmr_backend import pointhmr_from_installed as from_installed
            label = "PointHMR"
        else:
            from engine.body.hmr_backend import estimator_from_installed as from_installed
            label = "HMR (SPIN)"
        estimator = from_installed(device=device, hfov_deg=self.settings.hfov_deg)
        # Without its files the factory has already said, once, what is missing and that the
        # default runs; a second warning here would only repeat it.
        if estimator is not None:
            log.info("body back-end: %s on %s", label, device)
        return estimator

    def request_export(self, path: str | Path | None = None) -> None:
        """Write the next frame's mesh to `path` (or settings.export_dir / body_<frame>_<backend>.obj)."""
        if path is None and self.settings.export_dir is None:
            raise ValueError("no export path given and BodySettings.export_dir is not set")
        self._export_next = Path(path) if path is not None else Path(self.settings.export_dir)

    def process(self, frame: Frame, ctx: StageContext) -> BodyResult | None:
        perception = ctx.get("perception")
        if self._hmr is not None:
            result = self._hmr.process(frame, perception)
        else:
            result = self._process_anny(frame, perception)
        if self.settings.colours and result is not None and len(result.vertices) and len(result.faces):
            if self.settings.still_images:
                self._colours.reset()  # another photo, maybe another person
            pixels = result.vertex_pixels()
            mask = getattr(perception, "segmentation", None)
            result = replace(result, vertex_colours=self._colours.update(frame.image, pixels, result.vertices,
                                                                         result.faces, mask))
        if result is not None and self._export_next is not None:
            target = self._export_next
            if target.suffix == "":
                target = target / export_name(frame.index, result.backend)
            self._export_next = None
            export_mesh(result, target)
        return result

    def _process_anny(self, frame: Frame, perception: PerceptionResult | None) -> BodyResult | None:
        assert self._fitter is not None
        obs = observation_from_perception(perception, frame, self.settings.hfov_deg)
        if obs is None:
            return None
        if self._fitter.visible(obs).sum() < MIN_VISIBLE:
            return None  # too little of the person in view for a meaningful fit
        if self.settings.still_images:
            self._fitter.reset()  # another photo, maybe another person
        out = self._fitter.fit(obs, with_mesh=self.settings.mesh)
        if not (np.isfinite(out.rmse_px) and np.isfinite(out.root).all()):
            log.warning("body fit diverged on frame %d: restarting from the next frame", frame.index)
            self._fitter.reset()
            return None
        problem = implausible_fit(out, obs)
        if problem:
            log.debug("no body on frame %d: %s", frame.index, problem)
            self._fitter.drop_track()
            return None
        return body_result(out, obs.camera, self._faces)

    def reset(self) -> None:
        self._colours.reset()
        if self._fitter is not None:
            self._fitter.reset()
        if self._hmr is not None:
            self._hmr.reset()

    def close(self) -> None:
        self._colours.close()
        if self._hmr is not None and hasattr(self._hmr, "close"):
            self._hmr.close()


def implausible_fit(out: FitOutput, obs: Observation) -> str:
    """Why a fit is not a result ("" when it is one): the body behind or at the camera, or
    far from its visible landmarks (relative to their extent in the image)."""
    seen = obs.points_2d[out.visible]
    if out.root[2] <= 0 or (out.keypoints_3d[out.visible, 2] <= 0).any():
        return f"body behind the camera (root depth {out.root[2]:.2f} m)"
    extent = float(np.linalg.norm(seen.max(0) - seen.min(0))) if len(seen) else 0.0
    if not out.rmse_px <= MAX_RMSE_FRACTION * extent:
        return f"fit error {out.rmse_px:.1f} px over landmarks spanning {extent:.0f} px"
    return ""


def observation_from_perception(perception: PerceptionResult | None, frame: Frame,
                                hfov_deg: float) -> Observation | None:
    """The fit's input from one PerceptionResult, or None when no pose was found."""
    if perception is None or perception.pose_landmarks is None:
        return None
    camera = PinholeCamera.from_fov(frame.width, frame.height, hfov_deg)
    visibility = perception.pose_visibility
    if visibility is None:
        visibility = np.ones(len(perception.pose_landmarks), np.float32)
    return Observation(points_2d=np.asarray(perception.pose_landmarks[:, :2], np.float64),
                       visibility=np.asarray(visibility, np.float64),
                       world=None if perception.pose_world is None else np.asarray(perception.pose_world, np.float64),
                       camera=camera, time=frame.t_filter)


def body_result(out: FitOutput, camera: PinholeCamera, faces: np.ndarray | None) -> BodyResult:
    """BodyResult from a fit (pose as axis-angle per bone, shape = β)."""
    from engine.body.anny_kinematics import rotation_log

    empty_v = np.zeros((0, 3), np.float32)
    return BodyResult(
        vertices=out.vertices if out.vertices is not None else empty_v,
        faces=faces if (faces is not None and out.vertices is not None) else np.zeros((0, 3), np.int32),
        joints_3d=out.joints,
        keypoints_2d=out.keypoints_2d,
        keypoint_visible=out.visible,
        pose=rotation_log(out.local_rot).astype(np.float32),
        shape=out.beta.astype(np.float32),
        camera_focal_px=float(camera.focal_px),
        camera_center_px=np.array([camera.cx, camera.cy], np.float32),
        translation=out.root.astype(np.float32),
        fit_rmse_px=out.rmse_px,
        backend="anny",
        joints_2d=camera.project(out.joints),
        keypoints_3d=out.keypoints_3d,
    )
