"""3DDFA_V2 back-end: the MobileNetV1 parameter regressor and its public entry points.

`load_regressor(checkpoint_path, param_stats_path)` gives a callable
`regressor(image_bgr, box_xyxy) -> (roi_box, params62)` that reproduces the official
single-face path (ROI from the box, zero-padded crop, 120x120 input, network,
de-normalisation). `TddfaFaceTracker` (engine/face/tddfa_tracker.py) adds detection,
video tracking and the BFM reconstruction.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.face.roi import network_crop, normalise_crop, roi_from_box
from engine.face.tddfa_params import ParamStats, denormalise, load_param_stats
from engine.nets.mobilenet_v1 import MobileNetV1, load_mobilenet_v1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Regression:
    """One regressed face.

    roi: (4,) float64 [sx, sy, ex, ey] image pixels, the crop the network saw.
    raw: (62,) float32 network output (normalised parameters).
    params: (62,) float32 de-normalised parameters (see engine/face/tddfa_params.py).
    """

    roi: np.ndarray
    raw: np.ndarray
    params: np.ndarray


class TddfaRegressor:
    """MobileNetV1 + parameter statistics; built and moved to `device` once.

    Call it as `regressor(image_bgr, box_xyxy) -> (roi_box, params62)`:
    image_bgr (H, W, 3) uint8; box_xyxy (4,) or (5,) [x1, y1, x2, y2, (score)] pixels;
    roi_box (4,) float64 pixels; params62 (62,) float32.
    """

    def __init__(self, model: MobileNetV1, stats: ParamStats, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.stats = stats
        self.widen_factor = model.widen_factor

    def __call__(self, image_bgr: np.ndarray, box_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.regress_roi(image_bgr, roi_from_box(box_xyxy))
        return result.roi, result.params

    def regress_roi(self, image_bgr: np.ndarray, roi: np.ndarray) -> Regression:
        """Crop `roi` (4,) pixels out of the frame and regress its parameters."""
        raw = self.forward_crop(network_crop(image_bgr, roi))
        return Regression(roi=np.asarray(roi, np.float64), raw=raw, params=denormalise(raw, self.stats))

    def forward_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """(120, 120, 3) uint8 BGR crop -> (62,) float32 raw (normalised) network output."""
        x = torch.from_numpy(normalise_crop(crop_bgr))[None].to(self.device)
        with torch.inference_mode():
            out = self.model(x)
        return out[0].float().cpu().numpy()


def load_regressor(checkpoint_path: str | Path, param_stats_path: str | Path,
                   device: str | torch.device = "cpu", widen_factor: float | None = None) -> TddfaRegressor:
    """Load an official 3DDFA_V2 checkpoint (mb1 or mb05) and its parameter statistics.

    widen_factor: None infers it from the checkpoint (0.5 for mb05, 1.0 for mb1).
    """
    model = load_mobilenet_v1(checkpoint_path, widen_factor=widen_factor)
    stats = load_param_stats(param_stats_path)
    log.info("3DDFA_V2 regressor: MobileNetV1 x%g from %s on %s",
             model.widen_factor, Path(checkpoint_path).name, device)
    return TddfaRegressor(model, stats, device)
