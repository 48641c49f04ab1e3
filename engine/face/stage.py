"""The face stage: one fitted 3D face per frame from the perception stage's face landmarks.

Back-ends (FaceSettings.backend):
- "anny": the offline default, the Anny head fitted to mediapipe's 478 points (fit.py);
- "bfm": the same fitter on the Basel Face Model, when the user has installed it;
- "tddfa": 3DDFA_V2's regressor (engine.face.tddfa_tracker), needs its checkpoint + BFM;
- "auto": tddfa when its checkpoint and the BFM are installed, else bfm when the BFM is,
  else anny — saying once which one runs and what is missing.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.pinhole import PinholeCamera
from engine.face.blas_threads import single_threaded_blas
from engine.face.export import export_face_mesh, export_name
from engine.face.fit import FitParams, FitSettings, pose_deg, slide_shift
from engine.face.fitter import FaceFitter, SmoothingSettings
from engine.face.morphable import LinearFaceModel
from engine.face.result import FaceResult
from engine.frame import Frame
from engine.mesh_colours import VertexColourTrack
from engine.stage_protocol import StageContext
from engine.settings_schema import FACE_BACKENDS as BACKENDS  # one list for stages, settings and CLI

log = logging.getLogger(__name__)

TDDFA_MODELS = ("tddfa-mb05", "tddfa-mb1")  # preferred first: mb05 is the faster one
BFM_MODEL = "bfm-noneck-v3"


@dataclass(frozen=True)
class FaceSettings:
    """backend: "auto" | "anny" | "bfm" | "tddfa". smoothing: One Euro filtering of the fit.
    hfov_deg: horizontal field of view of the input camera (for camera-space vertices).
    export_dir: where meshes go when an export is requested; export_format ".obj" | ".ply".
    device: torch device for 3DDFA ("auto" | "cpu" | "cuda").
    still_images: the frames are unrelated photos (an image folder): each is fitted from
        scratch to convergence, without smoothing or a warm start from the previous one.
    colours: sample the person's colours onto the mesh (engine.mesh_colours); off where
        nothing shows or writes them (a headless run without mesh exports or a recording).
    fit / filters: the fitter's settings (offline back-ends)."""

    backend: str = "auto"
    smoothing: bool = True
    hfov_deg: float = 60.0
    export_dir: Path | None = None
    export_format: str = ".obj"
    device: str = "auto"
    still_images: bool = False
    colours: bool = True
    fit: FitSettings = field(default_factory=FitSettings)
    filters: SmoothingSettings = field(default_factory=SmoothingSettings)


def _installed(name: str) -> tuple[dict[str, Path] | None, str]:
    """(paths, "") when the manifest model is installed, else (None, why not)."""
    try:
        from engine.weights.store import model_status
    except ImportError as exc:  # no model manager: behave as "missing"
        return None, f"cannot check installed weights ({exc})"
    status = model_status(name)
    if status.state == "installed":
        return dict(status.paths), ""
    return None, status.message or f"{name}: {status.state}"


def choose_backend(requested: str) -> tuple[str, dict[str, dict[str, Path]]]:
    """Which back-end runs for `requested`, and the installed paths it needs (by model name).
    Falls back tddfa -> bfm -> anny, logging once (a warning) what is missing."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown face backend {requested!r}: use one of {BACKENDS}")
    if requested == "anny":
        return "anny", {}
    bfm_paths, bfm_why = _installed(BFM_MODEL)
    missing = [] if bfm_paths else [bfm_why]
    if requested in ("auto", "tddfa"):
        tddfa = [(name, *_installed(name)) for name in TDDFA_MODELS]
        found = next(((name, paths) for name, paths, _ in tddfa if paths), None)
        if found is not None and bfm_paths:
            return "tddfa", {found[0]: found[1], BFM_MODEL: bfm_paths}
        if found is None:
            missing.append(" / ".join(why for _, _, why in tddfa))
    if bfm_paths:
        if requested != "bfm":
            log.warning("face: 3DDFA_V2 not available (%s), fitting the installed BFM", "; ".join(missing))
        return "bfm", {BFM_MODEL: bfm_paths}
    what = "3DDFA_V2 / BFM weights not installed" if requested == "auto" else f"back-end {requested!r} unavailable"
    log.warning("face: %s, using the offline default (Anny head fitted to mediapipe). %s",
                what, "; ".join(missing))
    return "anny", {}


class FaceMesh:
    """Evaluates the full mesh of a fitted face; the identity-shaped mean is cached, so a
    frame costs one (3V × E) matrix-vector product plus the pose."""

    def __init__(self, model: LinearFaceModel) -> None:
        self.model = model
        v, k, e = model.num_vertices, model.num_identity, model.num_expression
        self._expr = np.ascontiguousarray(model.expression_basis.reshape(v * 3, e))
        self._ident = np.ascontiguousarray(model.identity_basis.reshape(v * 3, k))
        self._identity: np.ndarray | None = None
        self._shaped = model.mean.reshape(-1).copy()

    def model_vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(V, 3) float32 model-frame vertices."""
        if self._identity is None or not np.array_equal(identity, self._identity):
            self._identity = np.array(identity, copy=True)
            self._shaped = self.model.mean.reshape(-1) + self._ident @ identity.astype(np.float32)
        return (self._shaped + self._expr @ expression.astype(np.float32)).reshape(-1, 3)


def face_result(mesh: FaceMesh, params: FitParams, camera: PinholeCamera, rmse: float,
                backend: str, landmark_offset: np.ndarray | None = None) -> FaceResult:
    """FaceResult of a fit. Image space is the fit's scaled orthographic projection; camera
    space places the model at depth focal/scale (the weak-perspective depth), so projecting
    vertices_camera with `camera` lands within the perspective error of vertices_image.
    landmarks_2d are the iBUG-68 landmark points as mediapipe would place them (surface
    point plus the view-dependent slide and the user's calibrated `landmark_offset`, (L, 3)
    model metres, see FaceFitter._calibrate), the same points fit_rmse_px measures."""
    model = mesh.model
    pts = mesh.model_vertices(params.identity, params.expression)
    rot = params.rotation.astype(np.float32)
    rotated = pts @ rot.T  # (V, 3) metres, camera orientation, model origin
    s = float(params.scale)
    img = np.empty_like(rotated)
    img[:, :2] = s * rotated[:, :2] + params.translation[:2].astype(np.float32)
    img[:, 2] = s * rotated[:, 2]
    depth = camera.focal_px / s
    offset = np.array([(params.translation[0] - camera.cx) / s, (params.translation[1] - camera.cy) / s, depth],
                      np.float32)
    lm_rows = model.landmark_vertices[model.ibug68]
    lm_w = model.landmark_weights[model.ibug68]
    lm2d = np.einsum("lk,lkc->lc", lm_w, img[lm_rows, :2])
    if model.landmark_slide is not None:
        # the landmarks are where mediapipe sees them: with their view-dependent slide
        far = None if model.landmark_slide_far is None else model.landmark_slide_far[model.ibug68]
        lm2d += slide_shift(model.landmark_slide[model.ibug68], params, far)[:, :2]
    if landmark_offset is not None:
        lm2d += s * (landmark_offset[model.ibug68] @ params.rotation[:2].T).astype(np.float32)
    return FaceResult(
        vertices_image=img,
        vertices_camera=rotated + offset,
        triangles=model.triangles,
        landmarks_2d=lm2d.astype(np.float32),
        pose_deg=pose_deg(params.rotation).astype(np.float32),
        identity=params.identity.astype(np.float32),
        expression=params.expression.astype(np.float32),
        expression_names=model.expression_names,
        fit_rmse_px=float(rmse),
        backend=backend,
    )


class FaceStage:
    name = "face"
    requires: tuple[str, ...] = ("perception",)  # the stages whose results process() reads

    def __init__(self, settings: FaceSettings | None = None, model: LinearFaceModel | None = None,
                 on_progress: Callable[[str], None] | None = None) -> None:
        """model: a prepared LinearFaceModel (tests, benchmarks); by default the back-end's own.
        on_progress: told when the one-time face-model build starts and ends (first run)."""
        self.settings = settings or FaceSettings()
        self._tddfa: Any = None
        self._fitter: FaceFitter | None = None
        self._mesh: FaceMesh | None = None
        self._export_next: Path | None = None
        # Photos at once; video on the track's helper thread, off this stage's path.
        self._colours = VertexColourTrack(background=not self.settings.still_images)
        backend, paths = ("anny", {}) if model is not None else choose_backend(self.settings.backend)
        if backend == "tddfa":
            self._tddfa = self._make_tddfa(paths)
            if self._tddfa is None:
                backend = "bfm"
        if backend == "bfm" and model is None:
            model = self._load_bfm(paths[BFM_MODEL])
            if model is None:
                backend = "anny"
        if self._tddfa is None:
            model = model or LinearFaceModel.from_anny(on_progress=on_progress)
            backend = model.name
            smoothing = self.settings.filters
            if not self.settings.smoothing:
                smoothing = SmoothingSettings(enabled=False)
            self._fitter = FaceFitter(model, self.settings.fit, smoothing)
            self._mesh = FaceMesh(model)
        self.backend = backend
        log.info("face back-end: %s", backend)

    def _make_tddfa(self, paths: dict[str, dict[str, Path]]) -> Any:
        # Imported only when chosen: 3DDFA pulls in torch and its detector.
        from engine.device import resolve_device
        from engine.face.tddfa_tracker import TddfaFaceTracker

        name = next(n for n in TDDFA_MODELS if n in paths)
        bfm = paths[BFM_MODEL]
        try:
            return TddfaFaceTracker(paths[name]["checkpoint"], paths[name]["param_stats"], bfm["bfm"],
                                    device=str(resolve_device(self.settings.device)), tri_path=bfm.get("tri"))
        except (ValueError, OSError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
            log.error("3DDFA_V2 back-end off, its installed files do not load: %s", exc)
            return None

    @staticmethod
    def _load_bfm(paths: dict[str, Path]) -> LinearFaceModel | None:
        from engine.face.bfm import load_bfm

        try:
            return LinearFaceModel.from_bfm(load_bfm(paths["bfm"], tri_path=paths.get("tri")))
        except (ValueError, OSError, KeyError, pickle.UnpicklingError) as exc:
            log.error("BFM fit off, the installed BFM does not load: %s", exc)
            return None

    def request_export(self, path: str | Path | None = None) -> None:
        """Write the next face mesh to `path` (or settings.export_dir / face_<frame>_<backend>.obj)."""
        if path is None and self.settings.export_dir is None:
            raise ValueError("no export path given and FaceSettings.export_dir is not set")
        self._export_next = Path(path) if path is not None else Path(self.settings.export_dir)

    @property
    def reads_pixels(self) -> bool:
        """Whether process() looks at the image and the person mask (3DDFA crops the image;
        colours sample it), or only at the landmarks and the image's size (the offline fit):
        a remote client sends the frame's pixels only when this is True."""
        return self._tddfa is not None or self.settings.colours

    def process(self, frame: Frame, ctx: StageContext) -> FaceResult | None:
        perception = ctx.get("perception")
        if self._tddfa is not None:
            result = self._tddfa.process(frame, perception)
        else:
            result = self._process_fit(frame, perception)
        if self.settings.colours and result is not None:
            if self.settings.still_images:
                self._colours.reset()  # another photo, maybe another person
            colours = self._colours.update(frame.image, result.vertices_image, result.vertices_camera,
                                           result.triangles, getattr(perception, "segmentation", None))
            result = replace(result, vertex_colours=colours)
        if result is not None and self._export_next is not None:
            target = self._export_next
            if target.suffix == "":
                target = target / export_name(frame.index, result.backend, self.settings.export_format)
            self._export_next = None
            export_face_mesh(result, target)
        return result

    def _process_fit(self, frame: Frame, perception: Any) -> FaceResult | None:
        assert self._fitter is not None and self._mesh is not None
        landmarks = None if perception is None else perception.face_landmarks
        if landmarks is None:
            self._fitter.lost()
            return None
        if self.settings.still_images:
            _, smoothed, rmse = self._fitter.fit_still(landmarks)
        else:
            _, smoothed, rmse = self._fitter.fit(landmarks, frame.t_filter)
        camera = PinholeCamera.from_fov(frame.width, frame.height, self.settings.hfov_deg)
        with single_threaded_blas():
            return face_result(self._mesh, smoothed, camera, rmse, self.backend, self._fitter.landmark_offset)

    def reset(self) -> None:
        self._colours.reset()
        if self._fitter is not None:
            self._fitter.reset()
        if self._tddfa is not None:
            self._tddfa.reset()

    def close(self) -> None:
        self._colours.close()
        if self._tddfa is not None and hasattr(self._tddfa, "close"):
            self._tddfa.close()
