"""PointHMR body estimator for the body stage: person box -> 224 crop -> PointHMR -> SMPL
vertices -> BodyResult in the full image's camera.

Built only when the "pointhmr" files (the authors' checkpoint and the mesh arrays of their
repository) and the user's own "smpl" model are installed. PointHMR regresses the 6,890
vertices directly (no pose or shape parameters: BodyResult.pose and .shape are empty); the
SMPL file gives the triangles and, through its joint regressor, the 24 joints that the
mediapipe keypoints and the overlay use. The crop, box smoothing and camera are HMR's
(the weak-perspective camera (s, tx, ty) has the same meaning: METRO/SPIN's).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from engine.body.hmr_backend import SMPL_MODEL, HmrBodyEstimator, installed_or_none
from engine.body.pointhmr import FULL_VERTICES, load_mesh_arrays, load_pointhmr

log = logging.getLogger(__name__)

POINTHMR_MODEL = "pointhmr"  # manifest entry: checkpoint + mesh arrays
MESH_FILES = ("mesh_downsampling", "adjmat_indices", "adjmat_values", "adjmat_size")


class PointHmrBodyEstimator(HmrBodyEstimator):
    """PointHMR plus the SMPL file's faces and joint regressor, one person per frame.

    paths: the installed "pointhmr" files by manifest key (checkpoint, mesh_downsampling,
    adjmat_indices, adjmat_values, adjmat_size); other arguments as HmrBodyEstimator.
    """

    backend_name = "pointhmr"

    def __init__(self, paths: dict[str, str | Path], smpl_path: str | Path, device: str = "cpu",
                 hfov_deg: float = 60.0, min_visibility: float = 0.5, smooth_box: bool = True) -> None:
        smpl = self._init_common(smpl_path, device, hfov_deg, min_visibility, smooth_box)
        if smpl.num_vertices != FULL_VERTICES:
            raise ValueError(f"{smpl_path}: {smpl.num_vertices} vertices; PointHMR predicts "
                             f"SMPL's {FULL_VERTICES}")
        mesh = load_mesh_arrays(*(paths[k] for k in MESH_FILES))
        self._net = load_pointhmr(paths["checkpoint"], mesh, self.device)
        self._joint_regressor = torch.from_numpy(smpl.J_regressor).to(self.device)
        self._smpl = None  # type: ignore[assignment]  # no parametric model to pose

    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        with torch.inference_mode():
            out = self._net(images, heatmaps=False)
            vertices = out.vertices[0]
            joints = self._joint_regressor @ vertices
        empty = np.zeros((0, 3), np.float32)
        return (vertices.cpu().numpy(), joints.cpu().numpy(), out.cam[0].double().cpu().numpy(), empty,
                np.zeros(0, np.float32))

    def close(self) -> None:
        super().close()
        self._joint_regressor = None  # type: ignore[assignment]


def pointhmr_from_installed(device: str = "cpu", hfov_deg: float = 60.0) -> PointHmrBodyEstimator | None:
    """The estimator on the installed "pointhmr" and "smpl" files, or None (after logging
    what is missing or wrong) so that the caller keeps the default body."""
    return installed_or_none("PointHMR", (POINTHMR_MODEL, SMPL_MODEL), lambda net, smpl: PointHmrBodyEstimator(
        net, smpl["model"], device=device, hfov_deg=hfov_deg))
