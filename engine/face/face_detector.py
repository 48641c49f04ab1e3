"""Face boxes from mediapipe's bundled BlazeFace detector (legacy `solutions.face_detection`).

The model ships inside the mediapipe 0.10.21 wheel, so this needs no download. Boxes are
returned in image pixels of the input frame (x right, y down).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceBox:
    """box: (4,) float32 [x1, y1, x2, y2] image pixels; score: detector confidence in [0, 1]."""

    box: np.ndarray
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return float(self.box[0] + self.box[2]) / 2.0, float(self.box[1] + self.box[3]) / 2.0


class MediapipeFaceDetector:
    """Wraps mediapipe's face detector; `detect(image_bgr)` -> faces, best score first.

    model_selection: 0 = short range (faces within ~2 m, webcams), 1 = full range.
    min_score: detections below this confidence are dropped.
    """

    def __init__(self, model_selection: int = 0, min_score: float = 0.5) -> None:
        import mediapipe as mp  # imported here: mediapipe start-up is slow and not always needed

        self.min_score = float(min_score)
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=model_selection, min_detection_confidence=self.min_score)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """image_bgr (H, W, 3) uint8 -> faces, best score first; boxes are not clipped to the frame."""
        h, w = image_bgr.shape[:2]
        result = self._detector.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        faces: list[FaceBox] = []
        for det in result.detections or ():
            rel = det.location_data.relative_bounding_box
            box = np.array([rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w,
                            (rel.ymin + rel.height) * h], np.float32)
            faces.append(FaceBox(box=box, score=float(det.score[0])))
        faces.sort(key=lambda f: -f.score)
        return faces

    def close(self) -> None:
        self._detector.close()
