"""Perception stage: mediapipe 0.10.21's bundled legacy solutions -> PerceptionResult.

Face mesh (478 points with refined eyes/lips), pose (33 image + world landmarks with
visibility, model_complexity=1 — the only bundled pose model; 0 and 2 try to download)
and the person segmentation that the pose graph produces. Everything is converted once
to image pixels here so the later stages never see mediapipe's normalised coordinates.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from engine.frame import Frame
from engine.perception.result import PerceptionResult
from engine.stage import StageContext

log = logging.getLogger(__name__)

NUM_FACE_LANDMARKS = 478
NUM_POSE_LANDMARKS = 33


@dataclass(frozen=True)
class PerceptionSettings:
    """face/pose/segmentation switch the three mediapipe graphs on or off.

    static_image_mode: detect on every frame (photos, image folders) instead of tracking
    from the previous frame (video, camera).
    """

    face: bool = True
    pose: bool = True
    segmentation: bool = True
    static_image_mode: bool = False
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5


class PerceptionStage:
    name = "perception"

    def __init__(self, settings: PerceptionSettings | None = None) -> None:
        self.settings = settings or PerceptionSettings()
        self._face_mesh = None
        self._pose = None
        self._build()

    def _build(self) -> None:
        # Imported here: mediapipe takes ~1 s to import and pulls in jax/protobuf.
        import mediapipe as mp

        s = self.settings
        if s.face:
            self._face_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=s.static_image_mode,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=s.min_detection_confidence,
                min_tracking_confidence=s.min_tracking_confidence,
            )
        if s.pose or s.segmentation:
            self._pose = mp.solutions.pose.Pose(
                static_image_mode=s.static_image_mode,
                model_complexity=1,
                smooth_landmarks=not s.static_image_mode,
                enable_segmentation=s.segmentation,
                smooth_segmentation=not s.static_image_mode,
                min_detection_confidence=s.min_detection_confidence,
                min_tracking_confidence=s.min_tracking_confidence,
            )

    def process(self, frame: Frame, ctx: StageContext) -> PerceptionResult:
        height, width = frame.image.shape[:2]
        rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False  # lets mediapipe use the buffer without a copy
        face = face_box = None
        if self._face_mesh is not None:
            out = self._face_mesh.process(rgb)
            if out.multi_face_landmarks:
                face = landmarks_to_pixels(out.multi_face_landmarks[0].landmark, width, height)
                face_box = np.array([*face[:, :2].min(0), *face[:, :2].max(0)], np.float32)
        pose = visibility = world = mask = None
        if self._pose is not None:
            out = self._pose.process(rgb)
            if out.pose_landmarks is not None and self.settings.pose:
                pose = landmarks_to_pixels(out.pose_landmarks.landmark, width, height)
                visibility = np.array([p.visibility for p in out.pose_landmarks.landmark], np.float32)
                if out.pose_world_landmarks is not None:
                    world = np.array([[p.x, p.y, p.z] for p in out.pose_world_landmarks.landmark], np.float32)
            if self.settings.segmentation and out.segmentation_mask is not None:
                mask = np.asarray(out.segmentation_mask, dtype=np.float32)
        return PerceptionResult(
            image_size=(height, width),
            face_landmarks=face,
            face_box=face_box,
            pose_landmarks=pose,
            pose_visibility=visibility,
            pose_world=world,
            segmentation=mask,
        )

    def reset(self) -> None:
        """A new source: drop mediapipe's tracking state by rebuilding the graphs."""
        self.close()
        self._build()

    def close(self) -> None:
        for graph in (self._face_mesh, self._pose):
            if graph is not None:
                graph.close()
        self._face_mesh = self._pose = None


def landmarks_to_pixels(landmarks, width: int, height: int) -> np.ndarray:
    """mediapipe NormalizedLandmarkList -> (N, 3) float32: x, y pixels; z scaled by width."""
    arr = np.array([[p.x, p.y, p.z] for p in landmarks], np.float32)
    arr[:, 0] *= width
    arr[:, 1] *= height
    arr[:, 2] *= width
    return arr
