"""Fit a linear morphable face to mediapipe's 478 face landmarks.

Camera model: scaled orthographic ("similarity pose"), the model the landmarks follow
closely for a face far from the camera relative to its depth:

    pred_xy = s · (R · P)[:2] + t_xy        (pixels)
    pred_z  = s · (R · P)[2]  + t_z         (mediapipe's relative depth, pixels)
    P = mean + A·identity + B·expression   (model frame, metres; see morphable.py)

Per frame, Gauss-Newton on the pose (rotation increment, log scale, translation) and the
coefficients, with Gaussian priors on the coefficients and box bounds (Anny's facial
actions are activations); residuals are measured in model metres (pixels / s), so the
priors do not depend on how large the face is in the image. The frame's fit starts from
the previous frame's (warm start): one iteration per frame is as accurate as two or three
on real video (talking_head.mp4, measured), the first frame of a track gets four.

`engine.face.fitter.FaceFitter` holds the temporal state on top of this solver: the warm
start, the identity (accumulated over the first well-fitted frames, then frozen) and a One
Euro filter on the output.

Rotation convention (degrees): R = Ry(yaw) · Rx(pitch) · Rz(roll) in the model/camera frame
(x right, y down, z away). Positive yaw moves the nose towards image left (the subject
turns to their right), positive pitch moves it down (looking down), positive roll turns
the face clockwise in the image.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from engine.face import topology
from engine.face.morphable import LandmarkRows

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- rotations
def rotation_matrix(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """(3, 3) float64 R = Ry(yaw) Rx(pitch) Rz(roll); see the module docstring for signs."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return ry @ rx @ rz


def euler_angles(rotation: np.ndarray) -> np.ndarray:
    """(3,) float64 (yaw, pitch, roll) degrees of R = Ry Rx Rz (inverse of rotation_matrix)."""
    r = np.asarray(rotation, np.float64)
    pitch = math.asin(max(-1.0, min(1.0, -r[1, 2])))
    yaw = math.atan2(r[0, 2], r[2, 2])
    roll = math.atan2(r[1, 0], r[1, 1])
    return np.degrees([yaw, pitch, roll])


# Model frame (y down, z away) <-> the BFM/3DDFA_V2 frame (y up, z towards the viewer).
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


def pose_deg(rotation: np.ndarray) -> np.ndarray:
    """(3,) float64 (yaw, pitch, roll) degrees of a model-frame rotation in 3DDFA_V2's
    convention (engine.face.pose), so every face back-end reports the same angles: yaw
    positive when the nose moves to image left, pitch positive looking down, roll positive
    counter-clockwise in the image. (FaceResult.pose_deg; the fitter's own euler_angles
    differ in order and in the sign of roll.)"""
    from engine.face.pose import rotation_to_angles

    return np.degrees(rotation_to_angles(_FLIP_YZ @ np.asarray(rotation, np.float64) @ _FLIP_YZ))


def rotation_from_pose_deg(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Inverse of pose_deg: (3, 3) model-frame rotation. 3DDFA_V2's rule reads R as
    Rz(roll) Ry(-yaw) Rx(pitch) in the BFM frame."""
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ry = np.array([[math.cos(-y), 0, math.sin(-y)], [0, 1, 0], [-math.sin(-y), 0, math.cos(-y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return _FLIP_YZ @ (rz @ ry @ rx) @ _FLIP_YZ


def rodrigues(omega: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of the axis-angle vector omega (3,) radians."""
    theta = float(np.linalg.norm(omega))
    if theta < 1e-12:
        return np.eye(3)
    k = omega / theta
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Geodesic angle between two rotations, degrees."""
    c = (np.trace(np.asarray(a).T @ np.asarray(b)) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s·R·src + t for (N, 3) point sets; returns (s, R, t)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / (a ** 2).sum())
    return scale, rot, mu_d - scale * rot @ mu_s


# ---------------------------------------------------------------------------- the solver
@dataclass(frozen=True)
class FitSettings:
    """iterations: Gauss-Newton steps per frame (warm-started; the first frame gets 3 more).
    z_weight: weight of mediapipe's depth residuals relative to x, y (its z is noisier).
    noise_m: landmark noise in model metres; the priors' weight is noise_m² (so a prior of
        one standard deviation costs as much as one landmark off by noise_m).
    expression_prior / identity_prior: multipliers of that prior weight.
    oval_weight: weight of mediapipe's face-oval points, which slide along the silhouette.
    identity_frames: well-fitted frames whose joint identity is solved and frozen (0: keep
        the model's mean identity). Until then each frame fits its own identity.
    identity_rounds: alternations (re-fit the kept frames' poses/expressions, re-solve the
        identity) when freezing.
    good_fit_rmse_px: a frame counts towards the identity only below this RMSE.
    calibration_prior: when the identity is frozen, each landmark's point on the model also
        gets this user's mean offset from where mediapipe puts it (solved over the same
        frames, shrunk towards zero as if this many frames had said zero; None: no offsets).
    """

    iterations: int = 1
    refine_above_px: float = 3.0
    extra_iterations: int = 3
    reslide_deg: float = 2.0
    z_weight: float = 0.15
    noise_m: float = 1.5e-3
    expression_prior: float = 3.0
    identity_prior: float = 10.0
    oval_weight: float = 1.0
    identity_frames: int = 60
    identity_rounds: int = 2
    good_fit_rmse_px: float = 6.0
    calibration_prior: float | None = 5.0


@dataclass(frozen=True)
class FitParams:
    """A fitted face: rotation (3, 3) float64 model->camera; scale pixels per metre;
    translation (3,) pixels (x, y image; z the depth offset); identity (K,), expression (E,);
    depth_scale: mediapipe's z over the model's (its depth is only roughly in x's units)."""

    rotation: np.ndarray
    scale: float
    translation: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    depth_scale: float = 1.0


@dataclass(frozen=True)
class PackedRows:
    """Landmark rows laid out for the solver: component-major so R applies as one GEMM.

    mean: (3, L) float64; basis: (3, L, N) float64 with N = K + E (identity first).
    weights: (3L,) float64 per-residual weights (x rows, then y, then z).
    expression_basis: (3, L, E) the expression part of basis as its own contiguous array:
        the per-frame solves (identity frozen) use it, and slicing basis instead made numpy
        copy it on every reshape (0.1-0.2 ms a frame).
    """

    mean: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    num_identity: int
    expression_basis: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression_basis", np.ascontiguousarray(self.basis[:, :, self.num_identity:]))


def pack_rows(rows: LandmarkRows, landmark_mediapipe: np.ndarray, settings: FitSettings) -> PackedRows:
    basis = np.concatenate([rows.identity, rows.expression], axis=2)  # (L, 3, N)
    w = np.ones(len(landmark_mediapipe))
    w[np.isin(landmark_mediapipe, topology.MEDIAPIPE_FACE_OVAL)] = settings.oval_weight
    weights = np.concatenate([w, w, w * settings.z_weight ** 2])
    return PackedRows(np.ascontiguousarray(rows.mean.T, np.float64),
                      np.ascontiguousarray(basis.transpose(1, 0, 2), np.float64),
                      weights, rows.identity.shape[2])


def initial_pose(packed: PackedRows, observed: np.ndarray, identity: np.ndarray,
                 expression: np.ndarray) -> FitParams:
    """Closed-form similarity (Umeyama on x, y and mediapipe's z) from the model's landmarks."""
    coeffs = np.concatenate([identity, expression])
    pts = (packed.mean + packed.basis @ coeffs).T  # (L, 3)
    s, rot, t = umeyama(pts, observed.astype(np.float64))
    return FitParams(rot, s, t, identity.astype(np.float64), expression.astype(np.float64))


NUM_POSE = 8  # rotation increment (3), log scale, translation (3), log depth scale
SLIDE_RANGE_DEG = (30.0, 15.0)  # yaw, pitch: the correspondence's renders span ±30°, ±10°
# The face oval's far-yaw slide (weights/face_correspondence_anny.md, step 8): one slope per
# side beyond ±FAR_SLIDE_FROM_DEG of yaw, measured on renders up to ±FAR_SLIDE_LIMIT_DEG.
FAR_SLIDE_FROM_DEG = 10.0
FAR_SLIDE_LIMIT_DEG = 45.0


def gauss_newton(packed: PackedRows, observed: np.ndarray, params: FitParams, *,
                 prior_precision: np.ndarray, bounds: np.ndarray, free_identity: bool,
                 iterations: int) -> FitParams:
    """Refine params against observed (L, 3) landmarks (pixels; z mediapipe's depth).

    prior_precision: (K + E,) weights of the coefficients' zero-mean Gaussian priors, in
        metres² (noise_m² / std²). bounds: (K + E, 2) box of the coefficients.
    free_identity: when False the identity stays fixed and only pose + expression move.
    """
    k = packed.num_identity
    coeff_sel = slice(0, None) if free_identity else slice(k, None)
    basis = packed.basis if free_identity else packed.expression_basis  # (3, L, n)
    n = basis.shape[2]
    lo, hi = bounds[coeff_sel, 0], bounds[coeff_sel, 1]
    prec = prior_precision[coeff_sel]
    obs = np.ascontiguousarray(observed.T, np.float64)  # (3, L)
    rot, s, t, dz = params.rotation, params.scale, params.translation.copy(), params.depth_scale
    coeffs = np.concatenate([params.identity, params.expression])
    c = coeffs[coeff_sel].copy()
    base = packed.mean if free_identity else packed.mean + packed.basis[:, :, :k] @ coeffs[:k]
    num_l = obs.shape[1]
    npose = NUM_POSE
    jac = np.empty((3, num_l, npose + n))
    sw = np.sqrt(packed.weights)
    sw3 = sw.reshape(3, num_l, 1)
    for _ in range(iterations):
        pts = base + basis @ c  # (3, L) model frame
        q = rot @ pts  # rotated, metres
        q[2] *= dz  # mediapipe's depth has its own scale
        res = (q + t[:, None] / s - obs / s)  # residual in metres: (pred - obs) / s
        # d/d omega of (omega x q) is -[q]x (the z row scaled by dz); omega_x, _y, _z.
        jac[0, :, 0], jac[0, :, 1], jac[0, :, 2] = 0.0, q[2] / dz, -q[1]
        jac[1, :, 0], jac[1, :, 1], jac[1, :, 2] = -q[2] / dz, 0.0, q[0]
        jac[2, :, 0], jac[2, :, 1], jac[2, :, 2] = dz * q[1], -dz * q[0], 0.0
        jac[:, :, 3] = q  # log-scale
        jac[:, :, 4:7] = 0.0
        for i in range(3):
            jac[i, :, 4 + i] = 1.0 / s  # translation in pixels
        jac[:2, :, 7] = 0.0
        jac[2, :, 7] = q[2]  # log depth scale
        jac[:, :, npose:] = (rot @ basis.reshape(3, -1)).reshape(3, num_l, n)
        jac[2, :, npose:] *= dz
        jac *= sw3  # weighted in place: every entry is rewritten next iteration
        j2 = jac.reshape(3 * num_l, npose + n)
        r2 = res.reshape(-1) * sw
        h = j2.T @ j2
        g = j2.T @ r2
        h[npose:, npose:] += np.diag(prec)
        g[npose:] += prec * c
        h[:npose, :npose] += np.eye(npose) * 1e-12  # keeps H invertible when degenerate
        # Coefficients resting on a bound and pushed outwards stay put (active set).
        active = ((c <= lo + 1e-6) & (g[npose:] > 0)) | ((c >= hi - 1e-6) & (g[npose:] < 0))
        if active.any():
            idx = npose + np.flatnonzero(active)
            h[idx, :] = 0.0
            h[:, idx] = 0.0
            h[idx, idx] = 1.0
            g[idx] = 0.0
        try:
            delta = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            log.debug("singular normal equations; keeping the previous estimate")
            break
        rot = rodrigues(delta[:3]) @ rot
        s *= math.exp(float(np.clip(delta[3], -0.5, 0.5)))
        t += delta[4:7]
        dz *= math.exp(float(np.clip(delta[7], -0.5, 0.5)))
        c = np.clip(c + delta[npose:], lo, hi)
    coeffs[coeff_sel] = c
    return FitParams(rot, s, t, coeffs[:k].copy(), coeffs[k:].copy(), dz)


def refit_expression(packed: PackedRows, observed: np.ndarray, params: FitParams, *,
                     prior_precision: np.ndarray, bounds: np.ndarray, identity: bool = False) -> FitParams:
    """params with the expression (and, with `identity`, the identity too) that best
    explains observed (L, 3) landmarks at its own pose. With the pose fixed the landmarks are
    linear in the coefficients, so this is one regularised least-squares solve
    (gauss_newton's residuals, weights and prior), clipped to the bounds: a fraction of a
    Gauss-Newton iteration's cost."""
    k = packed.num_identity
    first = 0 if identity else k
    dz = np.array([1.0, 1.0, params.depth_scale])[:, None]
    base = packed.mean if identity else packed.mean + packed.basis[:, :, :k] @ params.identity  # (3, L)
    r0 = dz * (params.rotation @ base) + (params.translation[:, None] - observed.T) / params.scale
    basis = packed.basis if identity else packed.expression_basis
    n = basis.shape[2]
    a = (params.rotation @ basis.reshape(3, -1)).reshape(3, -1, n) * dz[:, :, None]
    sw = np.sqrt(packed.weights)
    a2 = a.reshape(-1, n) * sw[:, None]
    h = a2.T @ a2 + np.diag(prior_precision[first:])
    coeffs = np.clip(np.linalg.solve(h, -(a2.T @ (r0.reshape(-1) * sw))), bounds[first:, 0], bounds[first:, 1])
    if identity:
        return replace(params, identity=coeffs[:k], expression=coeffs[k:])
    return replace(params, expression=coeffs)


def landmark_offsets(packed: PackedRows, frames: list[tuple[np.ndarray, FitParams]], prior: float) -> np.ndarray:
    """(L, 3) model-metre offsets of the landmark points that best explain the frames' 2D
    residuals (observed minus predicted), their fits held fixed: per landmark a 3×3
    least-squares problem over the frames' views, ridge `prior` (in frames)."""
    lhs = np.zeros((3, 3))
    rhs = np.zeros((packed.mean.shape[1], 3))
    for observed, p in frames:
        view = p.rotation[:2]  # (2, 3) model -> image directions
        lhs += view.T @ view
        rhs += ((observed[:, :2] - predict_landmarks(packed, p)[:, :2]) / p.scale) @ view
    return np.linalg.solve(lhs + prior * np.eye(3), rhs.T).T


def solve_identity(packed: PackedRows, frames: list[tuple[np.ndarray, FitParams]],
                   prior_precision: np.ndarray) -> np.ndarray:
    """(K,) identity that best explains several frames at once, their poses and expressions
    held fixed: one linear least-squares problem (residuals in model metres, as in
    gauss_newton). frames: (observed (L, 3) pixels, FitParams) pairs.
    prior_precision: (K,) weights of the identity prior (metres²)."""
    k = packed.num_identity
    a_basis = packed.basis[:, :, :k]
    sw = np.sqrt(packed.weights)
    h = np.diag(prior_precision).astype(np.float64)
    g = np.zeros(k)
    for observed, p in frames:
        fixed = packed.mean + packed.basis[:, :, k:] @ p.expression  # (3, L)
        dz = np.array([1.0, 1.0, p.depth_scale])[:, None]
        r0 = (dz * (p.rotation @ fixed) + (p.translation[:, None] - observed.T) / p.scale).reshape(-1) * sw
        jac = (dz * (p.rotation @ a_basis.reshape(3, -1))).reshape(-1, k) * sw[:, None]
        h += jac.T @ jac
        g += jac.T @ r0
    return -np.linalg.solve(h, g)


def predict_landmarks(packed: PackedRows, params: FitParams) -> np.ndarray:
    """(L, 3) float64 predicted landmarks (pixels, z depth) of a fitted face."""
    coeffs = np.concatenate([params.identity, params.expression])
    q = params.rotation @ (packed.mean + packed.basis @ coeffs)
    q[2] *= params.depth_scale
    return (params.scale * q + params.translation[:, None]).T


def slide_shift(slide: np.ndarray, params: FitParams, far: np.ndarray | None = None) -> np.ndarray:
    """(L, 3) pixels: where the view-dependent slide of the landmarks (slide (L, 3, 2),
    model metres per radian of yaw and pitch) moves the projected landmarks at params' view.
    The angles are clamped to about the range the slide was measured over (SLIDE_RANGE_DEG):
    a straight line is no guide beyond it. far (L, 3, 2): metres per radian of yaw beyond
    +FAR_SLIDE_FROM_DEG and beyond -FAR_SLIDE_FROM_DEG (the face oval's silhouette points),
    up to ±FAR_SLIDE_LIMIT_DEG."""
    limit = np.array(SLIDE_RANGE_DEG)
    yaw_deg, pitch_deg = euler_angles(params.rotation)[:2]
    yaw, pitch = np.radians(np.clip([yaw_deg, pitch_deg], -limit, limit))
    delta = slide[:, :, 0] * yaw + slide[:, :, 1] * pitch  # (L, 3) model frame
    if far is not None:
        far_yaw = math.radians(float(np.clip(yaw_deg, -FAR_SLIDE_LIMIT_DEG, FAR_SLIDE_LIMIT_DEG)))
        edge = math.radians(FAR_SLIDE_FROM_DEG)
        delta = delta + far[:, :, 0] * max(far_yaw - edge, 0.0) + far[:, :, 1] * min(far_yaw + edge, 0.0)
    shift = params.scale * delta @ params.rotation.T
    shift[:, 2] *= params.depth_scale
    return shift


def rmse_px(predicted: np.ndarray, observed: np.ndarray) -> float:
    """RMS 2D distance (pixels) between (L, >=2) predicted and observed landmarks."""
    d = predicted[:, :2] - observed[:, :2]
    return float(np.sqrt(np.mean(np.sum(d * d, axis=1))))
