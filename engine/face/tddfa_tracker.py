"""Video tracking with the 3DDFA_V2 regressor: detect, regress, reconstruct, follow.

Per frame: a ROI (from the previous frame's 68 landmarks while tracking, else from a
detection), the 62 parameters, the BFM's 68 landmarks and dense mesh in the image, the
head pose and a metric mesh in camera space, all gathered into a FaceResult.

Detection uses, in order: perception's face landmarks (ROI from their iBUG-68 subset),
perception's face box, or mediapipe's bundled face detector. A detected ROI is refined
once with a second pass from the regressed landmarks, because the ROI rule for boxes
was tuned for FaceBoxes boxes, which sit higher on the face than mediapipe's.
Tracking is dropped and the face re-detected when the ROI collapses (area below
`min_roi_area_px2`, the official rule), when the landmarks leave the frame, or when a
detection (perception's box every frame, else the detector every `verify_every` frames)
no longer has its centre inside the tracked ROI. No detection above the score
threshold means no face: the tracker returns None.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.pinhole import PinholeCamera
from engine.face.bfm import BFM_UNIT_M, BfmModel, load_bfm, reconstruct_image
from engine.face.face_detector import FaceBox, MediapipeFaceDetector
from engine.face.pose import pose_degrees, scale_and_rotation
from engine.face.result import FaceResult
from engine.face.roi import INPUT_SIZE, roi_area, roi_from_box, roi_from_landmarks
from engine.face.tddfa import Regression, TddfaRegressor, load_regressor
from engine.face.tddfa_params import NUM_EXPRESSION, TddfaParams, decode_params
from engine.face.topology import MEDIAPIPE_TO_IBUG68
from engine.frame import Frame
from engine.perception.result import PerceptionResult

log = logging.getLogger(__name__)

# The BFM expression basis, named as the offline BFM fit names it (same basis, same names).
EXPRESSION_NAMES: tuple[str, ...] = tuple(f"bfm_exp_{i:02d}" for i in range(NUM_EXPRESSION))


@dataclass(frozen=True)
class TddfaTrackerSettings:
    """min_roi_area_px2: re-detect below this ROI area (the official 2020 px^2).
    min_detection_score: detector confidence needed to start or keep a track.
    detector_model: mediapipe model_selection (0 short range for webcams, 1 full range).
    verify_every: without perception, run the detector every this many tracked frames
        to confirm the face is still there (0 = never).
    refine_detection: on detection frames, regress a second time from the landmark ROI.
    hfov_deg: horizontal field of view assumed for the metric mesh (PinholeCamera.from_fov).
    """

    min_roi_area_px2: float = 2020.0
    min_detection_score: float = 0.5
    detector_model: int = 0
    verify_every: int = 15
    refine_detection: bool = True
    hfov_deg: float = 60.0


@dataclass(frozen=True)
class FaceFit:
    """One frame's regression decoded.

    regression: the ROI (4,) float64 image pixels with raw and de-normalised parameters;
    params: the decoded 62-d vector; landmarks: (68, 3) float32 image coordinates
    (official convention: z larger = closer).
    """

    regression: Regression
    params: TddfaParams
    landmarks: np.ndarray


def _box_contains(box: np.ndarray, point: tuple[float, float]) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def observed_ibug68(perception: PerceptionResult | None) -> np.ndarray | None:
    """(68, 2) float32 image pixels: perception's face landmarks at the iBUG-68 points, or None."""
    if perception is None or perception.face_landmarks is None:
        return None
    return np.asarray(perception.face_landmarks, np.float32)[MEDIAPIPE_TO_IBUG68, :2]


def camera_vertices(vertices_image: np.ndarray, scale_px: float, camera: PinholeCamera,
                    unit_m: float = BFM_UNIT_M) -> np.ndarray:
    """Metric estimate of the mesh: (V, 3) image coordinates -> (V, 3) float32 camera space, metres.

    vertices_image: x, y pixels, z pixels (larger = farther, any offset). scale_px: image
    pixels per BFM unit (the weak-perspective scale). Assumes BFM units of `unit_m` metres
    and the camera's focal length: the mesh centroid sits at depth f * unit_m / scale_px,
    each vertex's depth offset is its z converted to metres, and x, y are back-projected at
    that depth so the mesh re-projects exactly onto the image points.
    """
    metres_per_px = unit_m / scale_px
    z = vertices_image[:, 2].astype(np.float64)
    depth = camera.focal_px * metres_per_px + (z - z.mean()) * metres_per_px
    out = np.empty(vertices_image.shape, np.float32)
    out[:, 0] = (vertices_image[:, 0] - camera.cx) * depth / camera.focal_px
    out[:, 1] = (vertices_image[:, 1] - camera.cy) * depth / camera.focal_px
    out[:, 2] = depth
    return out


class TddfaFaceTracker:
    """3DDFA_V2 face tracking: `process(frame, perception) -> FaceResult | None`, `reset()`, `close()`.

    checkpoint_path: official mb1/mb05 checkpoint; param_stats_path: param_mean_std_62d_120x120.pkl;
    bfm_path: bfm_noneck_v3.pkl (tri.pkl beside it is used for the triangles, as upstream does).
    widen_factor: None infers it from the checkpoint. The detector is created on first need.
    """

    def __init__(self, checkpoint_path: str | Path, param_stats_path: str | Path, bfm_path: str | Path,
                 device: str = "cpu", widen_factor: float | None = None,
                 settings: TddfaTrackerSettings | None = None, tri_path: str | Path | None = None,
                 regressor: TddfaRegressor | None = None, bfm: BfmModel | None = None,
                 detector: MediapipeFaceDetector | None = None) -> None:
        self.settings = settings or TddfaTrackerSettings()
        self.regressor = regressor or load_regressor(checkpoint_path, param_stats_path, device, widen_factor)
        self.bfm = bfm or load_bfm(bfm_path, tri_path=tri_path)
        self._detector = detector
        self._camera: PinholeCamera | None = None
        self._landmarks: np.ndarray | None = None  # (68, 2) previous frame, image pixels
        self._tracked_frames = 0  # frames tracked since the last detection

    # -- public -------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the track (new source): the next frame detects again."""
        self._landmarks = None
        self._tracked_frames = 0

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    @property
    def tracking(self) -> bool:
        return self._landmarks is not None

    def process(self, frame: Frame, perception: PerceptionResult | None = None,
                observed68: np.ndarray | None = None) -> FaceResult | None:
        """Fit one frame; None when no face is found.

        observed68: optional (68, 2) image points (iBUG order) for fit_rmse_px, taken from
        perception's face landmarks when not given; on detection frames they also give the ROI.
        """
        image = frame.image
        if observed68 is None:
            observed68 = observed_ibug68(perception)
        roi = self._tracking_roi(image, perception)
        detected = roi is None
        if detected:
            roi = self._detection_roi(image, perception, observed68)
            if roi is None:
                self.reset()
                return None
        fit = self._fit(image, roi)
        if detected and self.settings.refine_detection:
            fit = self._fit(image, roi_from_landmarks(fit.landmarks))
        self._landmarks = fit.landmarks[:, :2].copy()
        self._tracked_frames = 0 if detected else self._tracked_frames + 1
        return self._result(frame, fit, observed68)

    def fit_roi(self, frame: Frame, roi: np.ndarray, observed68: np.ndarray | None = None) -> FaceResult:
        """Fit the face in a given ROI (4,) image pixels, without touching the tracking state."""
        return self._result(frame, self._fit(frame.image, roi), observed68)

    # -- ROI --------------------------------------------------------------------------
    def _tracking_roi(self, image: np.ndarray, perception: PerceptionResult | None) -> np.ndarray | None:
        """ROI from the previous landmarks, or None when the track must be re-detected."""
        if self._landmarks is None:
            return None
        roi = roi_from_landmarks(self._landmarks)
        h, w = image.shape[:2]
        centre = ((roi[0] + roi[2]) / 2, (roi[1] + roi[3]) / 2)
        if roi_area(roi) < self.settings.min_roi_area_px2:
            log.debug("ROI collapsed (%.0f px^2): re-detecting", roi_area(roi))
            return None
        if not _box_contains(np.array([0, 0, w, h]), centre):
            log.debug("tracked face left the frame: re-detecting")
            return None
        if self._detection_disagrees(image, roi, perception):
            log.debug("the face detection is no longer inside the tracked ROI: re-detecting")
            return None
        return roi

    def _detection_disagrees(self, image: np.ndarray, roi: np.ndarray,
                             perception: PerceptionResult | None) -> bool:
        """True when a detection this frame (perception's box, or the detector when due)
        does not confirm the track: no face above the score threshold, or none centred in the ROI."""
        if perception is not None and perception.face_box is not None:
            return not _box_contains(roi, FaceBox(np.asarray(perception.face_box, np.float32), 1.0).centre)
        every = self.settings.verify_every
        if every <= 0 or (self._tracked_frames + 1) % every:
            return False
        return not any(_box_contains(roi, face.centre) for face in self._detect(image))

    def _detection_roi(self, image: np.ndarray, perception: PerceptionResult | None,
                       observed68: np.ndarray | None) -> np.ndarray | None:
        if observed68 is not None:
            return roi_from_landmarks(observed68)
        if perception is not None and perception.face_box is not None:
            return roi_from_box(np.asarray(perception.face_box, np.float32))
        faces = self._detect(image)
        return roi_from_box(faces[0].box) if faces else None

    def _detect(self, image: np.ndarray) -> list[FaceBox]:
        if self._detector is None:
            self._detector = MediapipeFaceDetector(self.settings.detector_model, self.settings.min_detection_score)
        return [f for f in self._detector.detect(image) if f.score >= self.settings.min_detection_score]

    # -- fitting ------------------------------------------------------------------------
    def _fit(self, image: np.ndarray, roi: np.ndarray) -> FaceFit:
        regression = self.regressor.regress_roi(image, roi)
        params = decode_params(regression.params)
        landmarks = reconstruct_image(self.bfm, params, roi, index=self.bfm.keypoints68)
        return FaceFit(regression=regression, params=params, landmarks=landmarks)

    def _camera_for(self, frame: Frame) -> PinholeCamera:
        cam = self._camera
        if cam is None or (cam.width, cam.height) != (frame.width, frame.height):
            cam = self._camera = PinholeCamera.from_fov(frame.width, frame.height, self.settings.hfov_deg)
        return cam

    def _result(self, frame: Frame, fit: FaceFit, observed68: np.ndarray | None) -> FaceResult:
        roi = fit.regression.roi
        dense = reconstruct_image(self.bfm, fit.params, roi)
        # FaceResult's z grows away from the camera; the official z grows towards it.
        dense[:, 2] = dense[:, 2].max() - dense[:, 2]
        p = np.concatenate([fit.params.rotation, fit.params.offset[:, None]], axis=1)
        scale_crop, _ = scale_and_rotation(p)
        scale_img = scale_crop * ((roi[2] - roi[0]) + (roi[3] - roi[1])) / (2.0 * INPUT_SIZE)
        landmarks = fit.landmarks[:, :2].astype(np.float32)
        rmse = float("nan")
        if observed68 is not None:
            rmse = float(np.sqrt(np.mean(np.sum((landmarks - observed68[:, :2]) ** 2, axis=1))))
        return FaceResult(
            vertices_image=dense,
            vertices_camera=camera_vertices(dense, scale_img, self._camera_for(frame)),
            triangles=self.bfm.triangles,
            landmarks_2d=landmarks,
            pose_deg=pose_degrees(p),
            identity=fit.params.alpha_shp.astype(np.float32),
            expression=fit.params.alpha_exp.astype(np.float32),
            expression_names=EXPRESSION_NAMES,
            fit_rmse_px=rmse,
            backend="tddfa",
        )


REGRESSOR_MODELS: tuple[str, ...] = ("tddfa-mb1", "tddfa-mb05")  # manifest names, preferred first
BFM_MODEL = "bfm-noneck-v3"


def tracker_from_installed(device: str = "cpu", settings: TddfaTrackerSettings | None = None,
                           models: tuple[str, ...] = REGRESSOR_MODELS) -> TddfaFaceTracker | None:
    """A tracker on the installed official files, or None (after logging why, once) when
    the regressor or the BFM is missing or corrupt, so that the caller runs the default.

    Uses the first of `models` that is installed, with the BFM entry's files.
    """
    try:
        from engine.weights.store import model_status
    except ImportError as exc:  # the model manager is not there yet: behave as "missing"
        log.warning("3DDFA_V2 back-end unavailable: cannot check installed weights (%s)", exc)
        return None
    statuses = [model_status(name) for name in models]
    regressor = next((s for s in statuses if s.state == "installed"), None)
    bfm = model_status(BFM_MODEL)
    if regressor is None or bfm.state != "installed":
        problems = [s.message for s in (statuses[0] if regressor is None else None, bfm)
                    if s is not None and s.state != "installed"]
        log.warning("3DDFA_V2 back-end off, using the default face: %s", "; ".join(problems))
        return None
    return TddfaFaceTracker(regressor.paths["checkpoint"], regressor.paths["param_stats"], bfm.paths["bfm"],
                            device=device, settings=settings, tri_path=bfm.paths.get("tri"))
