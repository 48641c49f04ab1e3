"""HMR/SPIN body estimator for the body stage: person box -> SPIN crop -> HMR -> SMPL ->
BodyResult in the full image's camera.

The body stage builds this only when the "spin" and "smpl" models are installed (a network
without trained weights is never shown). Coordinates: SPIN's predicted global rotation
already turns SMPL's y-up body into a camera frame with x right, y down, z forward (its
training projects with an identity camera rotation into image pixels), so the posed mesh
plus `image_translation` is in holocap's camera space, metres.
"""
from __future__ import annotations

import logging
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.body.hmr import (BOX_UNIT_PX, box_from_landmarks, box_from_xyxy, crop_image, crops_to_input,
                             image_translation, load_hmr)
from engine.body.result import BodyResult
from engine.body.rotations import rotmat_to_axis_angle
from engine.body.smpl_io import SmplLayer, SmplModelData, load_smpl
from engine.body.smpl_topology import MEDIAPIPE_FROM_SMPL, SMPL_NUM_VERTICES, KeypointSource
from engine.pinhole import PinholeCamera
from engine.device import resolve_device
from engine.filters import OneEuroFilter
from engine.frame import Frame
from engine.perception.result import PerceptionResult

log = logging.getLogger(__name__)

SPIN_MODEL = "spin"  # manifest entries this back-end needs
SMPL_MODEL = "smpl"

# Weak-perspective scales at or below this put the body behind the camera or at infinity.
_MIN_CAM_SCALE = 1e-3


@dataclass(frozen=True)
class KeypointTable:
    """Index arrays that read K keypoints off posed joints/vertices without Python loops.

    is_vertex: (K,) bool; index: (K,) int64 (joint or vertex index; 0 when unavailable);
    exact: (K,) bool, a true counterpart that exists in this model (compared with the
    observation); the rest are drawn as stand-ins (unavailable vertices use joint 0).
    """

    is_vertex: np.ndarray
    index: np.ndarray
    exact: np.ndarray

    @classmethod
    def build(cls, sources: tuple[KeypointSource, ...], num_vertices: int, num_joints: int) -> "KeypointTable":
        is_vertex = np.array([s.kind == "vertex" for s in sources])
        index = np.array([s.index for s in sources], np.int64)
        limit = np.where(is_vertex, num_vertices, num_joints)
        available = index < limit
        # Vertex ids only mean something on SMPL's own mesh (6,890 vertices).
        if num_vertices != SMPL_NUM_VERTICES:
            available &= ~is_vertex
        exact = np.array([s.exact for s in sources]) & available
        return cls(is_vertex & available, np.where(available, index, 0), exact)

    def gather(self, joints: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """joints (J, 3), vertices (V, 3) -> (K, 3)."""
        return np.where(self.is_vertex[:, None], vertices[np.where(self.is_vertex, self.index, 0)],
                        joints[np.where(self.is_vertex, 0, self.index)])


def keypoint_rmse(predicted: np.ndarray, observed: np.ndarray, mask: np.ndarray) -> float:
    """RMS pixel distance over `mask`: predicted/observed (K, 2), mask (K,) bool; NaN if empty."""
    if not mask.any():
        return math.nan
    d = predicted[mask] - observed[mask, :2]
    return float(np.sqrt((d * d).sum(axis=1).mean()))


class HmrBodyEstimator:
    """SPIN's HMR plus an SMPL-format body model, one person per frame.

    checkpoint_path: SPIN model_checkpoint.pt; mean_params_path: smpl_mean_params.npz;
    smpl_path: SMPL .pkl/.npz (the user's own licensed file); device: "cpu" | "cuda" |
    "auto", chosen once; hfov_deg: horizontal field of view assumed for the input camera.
    min_visibility: mediapipe visibility above which a landmark counts as observed.
    smooth_box: One Euro filter the crop box (centre and scale) over time: HMR's output
        follows its crop closely, so landmark jitter would otherwise shake the mesh.
    """

    backend_name = "hmr"

    def __init__(self, checkpoint_path: str | Path, mean_params_path: str | Path, smpl_path: str | Path,
                 device: str = "cpu", hfov_deg: float = 60.0, min_visibility: float = 0.5,
                 smooth_box: bool = True) -> None:
        smpl = self._init_common(smpl_path, device, hfov_deg, min_visibility, smooth_box)
        self._net = load_hmr(checkpoint_path, mean_params_path, self.device)
        self._smpl = SmplLayer(smpl, num_betas=10).to(self.device).eval()

    def _init_common(self, smpl_path: str | Path, device: str, hfov_deg: float, min_visibility: float,
                     smooth_box: bool) -> SmplModelData:
        """What every SMPL regressor needs: device, camera, box filter and the SMPL file
        (returned, for the caller to keep only what it uses of it)."""
        self.device = resolve_device(device)
        self.hfov_deg = float(hfov_deg)
        self.min_visibility = float(min_visibility)
        # Box as (cx, cy, side) in pixels; beta in 1/px: fast moves open the cut-off, no lag.
        self._box_filter = OneEuroFilter(min_cutoff=1.0, beta=0.02) if smooth_box else None
        smpl = load_smpl(smpl_path)
        self._faces = smpl.faces
        self._keypoints = KeypointTable.build(MEDIAPIPE_FROM_SMPL, smpl.num_vertices, smpl.num_joints)
        if smpl.num_vertices != SMPL_NUM_VERTICES:
            log.warning("SMPL-format model with %d vertices (SMPL has %d): face, hand and foot keypoints "
                        "are not available", smpl.num_vertices, SMPL_NUM_VERTICES)
        return smpl

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One normalised (1, 3, 224, 224) crop -> root-relative vertices (V, 3), joints
        (J, 3), cam (3,) = (s, tx, ty) float64, pose (J, 3) axis-angle, shape (S,)."""
        with torch.inference_mode():
            rotmat, betas, cam = self._net(images)
            posed = self._smpl(betas, rotmat)
            pose_aa = rotmat_to_axis_angle(rotmat[0])
        return (posed.vertices[0].cpu().numpy(), posed.joints[0].cpu().numpy(), cam[0].double().cpu().numpy(),
                pose_aa.cpu().numpy().astype(np.float32), betas[0].cpu().numpy().astype(np.float32))

    @property
    def regressor(self) -> torch.nn.Module:
        """The HMR network (eval mode, on `device`)."""
        return self._net

    @property
    def body_model(self) -> SmplLayer:
        """The SMPL layer that poses the network's output."""
        return self._smpl

    def person_box(self, frame: Frame, perception: PerceptionResult | None) -> tuple[np.ndarray, float] | None:
        """SPIN crop (center (2,) pixels, scale = side / 200) from pose landmarks, else the
        segmentation's bounding box; with no perception at all, the whole image (SPIN's demo
        default: person centred). None when perception ran and found nobody."""
        if perception is None:
            return np.array([frame.width / 2, frame.height / 2]), max(frame.width, frame.height) / BOX_UNIT_PX
        if perception.pose_landmarks is not None:
            box = box_from_landmarks(perception.pose_landmarks, perception.pose_visibility, self.min_visibility)
            if box is not None:
                return box
        if perception.segmentation is not None:
            ys, xs = np.nonzero(perception.segmentation > 0.5)
            if len(xs) >= 2:
                return box_from_xyxy(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64))
        return None

    def process(self, frame: Frame, perception: PerceptionResult | None) -> BodyResult | None:
        """One person's SMPL body in camera space (metres) with its mediapipe-33 keypoints
        projected by the full image's pinhole camera (focal from `hfov_deg`, principal point
        at the image centre). keypoint_visible marks keypoints with a true SMPL counterpart
        that perception observed (all true counterparts when perception gave no landmarks);
        fit_rmse_px compares those with the landmarks (NaN without landmarks). None when
        there is no person box or the predicted camera puts the body behind the camera."""
        box = self.crop_box(frame, perception)
        if box is None:
            return None
        center, scale = box
        crop = crop_image(frame.image, center, scale)
        model_vertices, model_joints, cam_np, pose, shape = self.predict(crops_to_input(crop[None], self.device))
        if cam_np[0] <= _MIN_CAM_SCALE:
            log.debug("frame %d: %s camera scale %.4f is not in front of the camera", frame.index,
                      self.backend_name, cam_np[0])
            return None
        camera = PinholeCamera.from_fov(frame.width, frame.height, self.hfov_deg)
        principal = np.array([camera.cx, camera.cy])
        transl = image_translation(cam_np, center, scale, camera.focal_px, principal).astype(np.float32)
        vertices = model_vertices + transl
        joints = model_joints + transl
        keypoints_3d = self._keypoints.gather(joints, vertices).astype(np.float32)
        keypoints = camera.project(keypoints_3d)
        visible = self._keypoints.exact.copy()
        rmse = math.nan
        if perception is not None and perception.pose_landmarks is not None:
            observed = np.ones(len(visible), bool) if perception.pose_visibility is None \
                else perception.pose_visibility >= self.min_visibility
            visible &= observed
            rmse = keypoint_rmse(keypoints, perception.pose_landmarks, visible)
        return BodyResult(
            vertices=vertices.astype(np.float32), faces=self._faces, joints_3d=joints.astype(np.float32),
            keypoints_2d=keypoints, keypoint_visible=visible, pose=pose,
            shape=shape, camera_focal_px=float(camera.focal_px),
            camera_center_px=principal.astype(np.float32), translation=transl, fit_rmse_px=rmse, backend=self.backend_name,
            joints_2d=camera.project(joints), keypoints_3d=keypoints_3d,
        )

    def crop_box(self, frame: Frame, perception: PerceptionResult | None) -> tuple[np.ndarray, float] | None:
        """The box `process` crops: `person_box`, One Euro filtered over frame.t_filter when
        smooth_box is on (this advances the filter: call once per frame)."""
        box = self.person_box(frame, perception)
        if box is None or self._box_filter is None:
            return box
        cx, cy, side = self._box_filter(np.array([box[0][0], box[0][1], box[1] * BOX_UNIT_PX]), frame.t_filter)
        return np.array([cx, cy]), float(side) / BOX_UNIT_PX

    def reset(self) -> None:
        """Forget the box history (new source): the next box is used as it comes."""
        if self._box_filter is not None:
            self._box_filter.reset()

    def close(self) -> None:
        """Drop the models so their memory can be freed."""
        self._net = None  # type: ignore[assignment]
        self._smpl = None  # type: ignore[assignment]


def installed_or_none(label: str, names: tuple[str, ...], build: Callable[..., "HmrBodyEstimator"]
                      ) -> "HmrBodyEstimator | None":
    """build(*paths) on the installed files of the models `names` (each one's paths by
    manifest key), or None after logging, once, what is missing or does not load, so that
    the caller runs the default body."""
    try:
        from engine.weights.store import model_status
    except ImportError as exc:  # no model manager: behave as "missing"
        log.warning("%s body back-end unavailable: cannot check installed weights (%s)", label, exc)
        return None
    statuses = [model_status(name) for name in names]
    problems = [s.message for s in statuses if s.state != "installed"]
    if problems:
        log.warning("%s body back-end off, using the default body: %s", label, "; ".join(problems))
        return None
    try:
        return build(*(s.paths for s in statuses))
    except (ValueError, OSError, RuntimeError, KeyError, pickle.UnpicklingError) as exc:
        # A file trusted on first use can still be the wrong file: say which, keep running.
        log.error("%s body back-end off, its installed files do not load: %s", label, exc)
        return None


def estimator_from_installed(device: str = "cpu", hfov_deg: float = 60.0) -> HmrBodyEstimator | None:
    """The estimator on the installed "spin" and "smpl" files, or None (after logging why)
    when either is missing, corrupt or unreadable, so that the caller runs the default."""
    return installed_or_none("HMR", (SPIN_MODEL, SMPL_MODEL), lambda spin, smpl: HmrBodyEstimator(
        spin["checkpoint"], spin["mean_params"], smpl["model"], device=device, hfov_deg=hfov_deg))
