"""The Basel Face Model as 3DDFA_V2 ships it (bfm_noneck_v3.pkl), and its reconstruction.

File layout (a pickled dict of numpy arrays): `u` (3N, 1) mean shape with x, y, z
interleaved per vertex; `w_shp` (3N, >=40) identity basis; `w_exp` (3N, >=10) expression
basis; `keypoints` (204,) indices into the flat 3N array, x, y, z of the 68 landmarks;
`tri` the triangles (3, F) or (F, 3). N = 38,365, F = 76,073 for the official file.
Units are the BFM's (micrometres, see BFM_UNIT_M); the model frame has x right, y up,
z towards the viewer.

The official code reshapes the flat (3N,) vectors column-major into (3, N); reading them
row-major as (N, 3) is the same thing, which is what `BfmModel` stores.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.face.roi import INPUT_SIZE
from engine.face.safe_pickle import load_numpy_pickle
from engine.face.tddfa_params import NUM_EXPRESSION, NUM_SHAPE, TddfaParams

log = logging.getLogger(__name__)

# Basel Face Model coordinates are in micrometres (a face is ~1.5e5 units wide).
BFM_UNIT_M = 1e-6
NUM_LANDMARKS = 68


@dataclass(frozen=True)
class BfmModel:
    """The linear face model.

    mean: (N, 3) float32 mean shape, BFM units, model frame (x right, y up, z to the viewer).
    shape_basis: (N, 3, Ks) float32 identity basis (Ks = 40 for 3DDFA_V2).
    exp_basis: (N, 3, Ke) float32 expression basis (Ke = 10 for 3DDFA_V2).
    keypoints68: (68,) int64 vertex indices of the iBUG-68 landmarks.
    triangles: (F, 3) int32 vertex indices.
    """

    mean: np.ndarray
    shape_basis: np.ndarray
    exp_basis: np.ndarray
    keypoints68: np.ndarray
    triangles: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.mean.shape[0])


def _flat_to_vertices(flat: np.ndarray, name: str) -> np.ndarray:
    """(3N, K) interleaved x, y, z rows -> (N, 3, K) float32."""
    flat = np.asarray(flat, np.float32)
    if flat.ndim == 1:
        flat = flat[:, None]
    if flat.shape[0] % 3:
        raise ValueError(f"BFM '{name}' has {flat.shape[0]} rows, not a multiple of 3")
    return np.ascontiguousarray(flat.reshape(flat.shape[0] // 3, 3, flat.shape[1]))


def keypoints_to_vertices(keypoints: np.ndarray) -> np.ndarray:
    """(204,) indices into the flat x, y, z array -> (68,) int64 vertex indices.

    Each landmark contributes 3v, 3v+1, 3v+2; anything else means a different layout.
    """
    flat = np.asarray(keypoints).astype(np.int64).reshape(-1)
    if flat.shape[0] != 3 * NUM_LANDMARKS:
        raise ValueError(f"BFM 'keypoints' has {flat.shape[0]} entries, expected {3 * NUM_LANDMARKS}")
    triples = flat.reshape(NUM_LANDMARKS, 3)
    vertices = triples[:, 0] // 3
    if not np.array_equal(triples, vertices[:, None] * 3 + np.arange(3)):
        raise ValueError("BFM 'keypoints' are not x, y, z triples of vertex indices")
    return vertices


def triangles_from_array(tri: np.ndarray, num_vertices: int) -> np.ndarray:
    """Triangles stored (3, F) or (F, 3) -> (F, 3) int32, checked against the vertex count."""
    tri = np.asarray(tri)
    if tri.ndim != 2 or 3 not in tri.shape:
        raise ValueError(f"triangles must be (3, F) or (F, 3), got {tri.shape}")
    if tri.shape[1] != 3:
        tri = tri.T
    tri = np.ascontiguousarray(tri, dtype=np.int32)
    if tri.size and (tri.min() < 0 or tri.max() >= num_vertices):
        raise ValueError(f"triangle indices out of range for {num_vertices} vertices")
    return tri


def load_bfm(path: str | Path, tri_path: str | Path | None = None,
             shape_dim: int = NUM_SHAPE, exp_dim: int = NUM_EXPRESSION) -> BfmModel:
    """Read bfm_noneck_v3.pkl; bases are truncated to the first shape_dim / exp_dim columns.

    tri_path: tri.pkl ((3, F) int32) to use instead of the file's own `tri`. The official
    code rebuilt the triangles for bfm_noneck_v3 and always reads configs/tri.pkl, so when
    tri_path is None a `tri.pkl` beside the BFM file is used if there is one.
    """
    path = Path(path)
    if tri_path is None and (path.parent / "tri.pkl").is_file():
        tri_path = path.parent / "tri.pkl"
    data = load_numpy_pickle(path)
    missing = [k for k in ("u", "w_shp", "w_exp", "keypoints") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"{path}: not a BFM file, missing {missing}")
    mean = _flat_to_vertices(data["u"], "u")[:, :, 0]
    shape_basis = _flat_to_vertices(data["w_shp"], "w_shp")
    exp_basis = _flat_to_vertices(data["w_exp"], "w_exp")
    if shape_basis.shape[2] < shape_dim or exp_basis.shape[2] < exp_dim:
        raise ValueError(f"{path}: bases have {shape_basis.shape[2]}/{exp_basis.shape[2]} columns, "
                         f"need {shape_dim}/{exp_dim}")
    n = mean.shape[0]
    if shape_basis.shape[0] != n or exp_basis.shape[0] != n:
        raise ValueError(f"{path}: mean and bases disagree on the vertex count")
    for name, array in (("u", mean), ("w_shp", shape_basis[:, :, :shape_dim]), ("w_exp", exp_basis[:, :, :exp_dim])):
        if not np.isfinite(array).all():  # a degenerate file would give NaN faces on every frame
            raise ValueError(f"{path}: {name} holds NaN or infinite values (a damaged or degenerate file)")
    if tri_path is not None:
        log.debug("BFM triangles from %s", tri_path)
        tri = load_numpy_pickle(tri_path)
    elif "tri" in data:
        tri = data["tri"]
    else:
        raise ValueError(f"{path}: no 'tri' in the file and no tri_path given")
    model = BfmModel(
        mean=np.ascontiguousarray(mean),
        shape_basis=np.ascontiguousarray(shape_basis[:, :, :shape_dim]),
        exp_basis=np.ascontiguousarray(exp_basis[:, :, :exp_dim]),
        keypoints68=keypoints_to_vertices(data["keypoints"]),
        triangles=triangles_from_array(tri, n),
    )
    log.info("BFM: %d vertices, %d triangles, %d identity + %d expression components",
             n, model.triangles.shape[0], shape_dim, exp_dim)
    return model


def model_vertices(bfm: BfmModel, alpha_shp: np.ndarray, alpha_exp: np.ndarray,
                   index: np.ndarray | None = None) -> np.ndarray:
    """Shaped vertices (M, 3) float32 in BFM units, model frame: mean + basis @ coefficients.

    index: optional (M,) vertex indices (e.g. keypoints68) to evaluate only those.
    """
    sel = slice(None) if index is None else index
    mean, w_shp, w_exp = bfm.mean[sel], bfm.shape_basis[sel], bfm.exp_basis[sel]
    # One (3M, K) matrix-vector product per basis: far faster than a stacked (M, 3, K) matmul.
    flat = w_shp.reshape(-1, w_shp.shape[2]) @ np.asarray(alpha_shp, np.float32)
    flat += w_exp.reshape(-1, w_exp.shape[2]) @ np.asarray(alpha_exp, np.float32)
    return (mean + flat.reshape(-1, 3)).astype(np.float32, copy=False)


def project_to_crop(vertices: np.ndarray, params: TddfaParams) -> np.ndarray:
    """(M, 3) model-frame vertices -> (M, 3) float32 in the 120x120 crop's model frame: R v + offset.

    The result has x right, y up (y = 0 at the crop's bottom), z towards the viewer, 1-based.
    """
    return (vertices @ params.rotation.T + params.offset).astype(np.float32)


def crop_to_image(points: np.ndarray, roi: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """The official similar_transform: (M, 3) crop-frame points -> (M, 3) float32 image points.

    x, y become image pixels of the full frame (x right, y down); z is scaled by the
    mean crop-to-image scale and shifted so that its minimum is 0 (larger = closer to the
    camera, the official convention). roi: (4,) [sx, sy, ex, ey] (unrounded).
    """
    pts = np.asarray(points, np.float64).copy()
    sx, sy, ex, ey = (float(v) for v in roi[:4])
    scale_x, scale_y = (ex - sx) / size, (ey - sy) / size
    pts[:, 0] = (pts[:, 0] - 1.0) * scale_x + sx  # the official crop frame is 1-based
    pts[:, 1] = (size - pts[:, 1]) * scale_y + sy
    pts[:, 2] = (pts[:, 2] - 1.0) * (scale_x + scale_y) / 2.0
    pts[:, 2] -= pts[:, 2].min()
    return pts.astype(np.float32)


def reconstruct_image(bfm: BfmModel, params: TddfaParams, roi: np.ndarray,
                      index: np.ndarray | None = None) -> np.ndarray:
    """Vertices (M, 3) float32 in image coordinates (official convention; see crop_to_image)."""
    return crop_to_image(project_to_crop(model_vertices(bfm, params.alpha_shp, params.alpha_exp, index),
                                         params), roi)
