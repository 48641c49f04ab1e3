"""Fit the Anny body to mediapipe pose landmarks (the offline body back-end).

Per frame: (1) a closed-form start when there is nothing to warm-start from: the trunk
orientation from the hip and shoulder lines of mediapipe's world landmarks, then each limb
bone rotated by the smallest rotation that takes the model's segment direction onto the
observed one; (2) the root translation by linear least squares on the perspective
projection (when that lands behind the camera, as on a face close-up: from the landmarks'
size, refined on the pixel error); (3) a few Gauss-Newton steps on all of it — 2D reprojection (robust), 3D
agreement with the world landmarks, a pose prior with hinge limits for knees and elbows,
a shape prior pulling towards the shape accumulated over earlier frames (a warm start that
stays far from the landmarks is retried from the closed form), each step shortened so the
root never nears the camera plane; (4) the full mesh skinned once with the final
parameters; (5) optional zero-lag One Euro smoothing of the output pose (the next frame
warm-starts from the unsmoothed fit).

Only landmarks inside the image count (mediapipe reports all 33, guessing the rest).
A close-up — the hips out of view, as on a webcam showing head and shoulders — changes
the terms: no world landmarks (they hang from the guessed hip centre and are distorted),
an upright-trunk prior, unseen limbs held near a neutral pose (arms hanging), and all
landmarks weighted alike (topology.CLOSE_UP_WEIGHTS).

Units: the residuals are all in millimetres (2D errors are scaled by the size of a pixel at
the person's depth), so the weights do not depend on image size or distance. Rotation
updates are world-frame increments ω_c about each fitted bone's joint, turned into local
ones as Δ_c ← exp(Rg_parentᵀ ω_c) Δ_c.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from engine.body import topology as topo
from engine.body.anny_kinematics import (
    RestState, build_keypoint_rig, forward_kinematics, minimal_rotation,
    rest_state, rest_vertices, rodrigues, rotation_log, skew, skin_vertices, skinning_matrix,
    skinning_transforms, subtree_matrix, warm_up_kernels,
)
from engine.body.anny_model import AnnyBodyData
from engine.body.fit_geometry import (
    LH, LS, RH, RS, depth_step_scale, in_view, project, refine_translation, solve_spd,
    solve_translation, translation_from_scale, trunk_orientation, upright_residual,
)
from engine.body.smoothing import PoseSmoother
from engine.pinhole import PinholeCamera

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitSettings:
    """iterations_*: Gauss-Newton steps on a fresh start / when warm-started.
    restart_px: when a warm-started fit stays this far (RMS px) from the landmarks, also try
    a fresh closed-form start and keep the better of the two.
    visibility_threshold: mediapipe visibility above which a 2D landmark is used.
    border_fraction: a landmark is used only inside the image, at least this fraction of
    the image's smaller side from its edges. mediapipe also places the landmarks it cannot
    see (the hips of a face close-up, often with a high visibility), and those at the very
    edge are extrapolated.
    min_depth: metres; no step of the fit brings the root nearer to the camera than this
    (nor halves its depth at once), so the projection is never linearised behind it.
    upright_prior: when the hips are out of view (a webcam framing: head and shoulders),
    pull of the trunk towards upright in the camera's axes (mm per radian of tilt); the
    rest of the body then hangs below the frame instead of leaning to fit landmark noise.
    weight_3d: weight of the world-landmark agreement relative to the 2D term.
    robust_mm: 2D residuals beyond this (mm at the person) are down-weighted (Huber).
    prior_scale: multiplies every pose prior (topology.BONE_PRIOR and hinge limits).
    shape_prior: pull of β towards the population mean (mm per unit β).
    shape_memory: pull towards the accumulated shape after `shape_frames` frames (mm per unit β).
    smoothing: One Euro filtering of the output pose (min_cutoff Hz; beta Hz per rad/s;
    position_beta Hz per m/s). Tuned to steady a still body without visible lag when moving,
    for a body `smooth_depth` metres away; nearer, the cut-offs rise as smooth_depth / depth
    (the same pixel jitter is a smaller rotation there, and the same lag more pixels)."""

    iterations_first: int = 10
    iterations_tracking: int = 4
    restart_px: float = 12.0
    visibility_threshold: float = 0.5
    border_fraction: float = 0.02
    min_depth: float = 0.1
    upright_prior: float = 100.0
    weight_3d: float = 0.3
    robust_mm: float = 40.0
    prior_scale: float = 1.0
    shape_prior: float = 15.0
    shape_memory: float = 80.0
    shape_frames: int = 30
    fit_shape: bool = True
    damping: float = 1e-3
    smoothing: bool = True
    smooth_min_cutoff: float = 1.5
    smooth_beta: float = 2.0
    smooth_position_beta: float = 30.0
    smooth_depth: float = 3.0


@dataclass(frozen=True)
class Observation:
    """One person's landmarks in one frame.

    points_2d: (K, 2) pixels. visibility: (K,) in [0, 1]. world: (K, 3) metres, origin
    between the hips, camera-aligned axes (x right, y down, z away), or None.
    camera: the perspective camera of the frame. time: seconds (for smoothing).
    """

    points_2d: np.ndarray
    visibility: np.ndarray
    world: np.ndarray | None
    camera: PinholeCamera
    time: float = 0.0


@dataclass(frozen=True)
class FitOutput:
    """local_rot: (J, 3, 3) per-bone rotations (reference-pose axes). root: (3,) root joint,
    camera space, metres. beta: (S,). joints: (J, 3) camera space. keypoints_3d: (K, 3).
    keypoints_2d: (K, 2) pixels. vertices: (V, 3) float32 camera space or None.
    rmse_px: RMS distance of keypoints_2d to the visible landmarks. visible: (K,) bool."""

    local_rot: np.ndarray
    root: np.ndarray
    beta: np.ndarray
    joints: np.ndarray
    keypoints_3d: np.ndarray
    keypoints_2d: np.ndarray
    vertices: np.ndarray | None
    rmse_px: float
    visible: np.ndarray


class AnnyFitter:
    """Stateful fitter: warm start, accumulated shape, output smoothing. One person."""

    def __init__(self, data: AnnyBodyData, settings: FitSettings | None = None) -> None:
        self.data = data
        self.settings = settings or FitSettings()
        self.parents = data.bone_parents
        self._par = np.where(self.parents < 0, 0, self.parents)
        self.rig = build_keypoint_rig(data, topo.LANDMARK_SOURCES)
        self.fit_bones = np.array([data.bone_index(b) for b in topo.FIT_BONES])
        sub = subtree_matrix(self.parents)
        # T[k, f, p] = 1 when pair p belongs to keypoint k and its bone moves with fit bone f.
        sub_pairs = sub[self.fit_bones][:, self.rig.bone]  # (F, P)
        self._tree = self.rig.gather[:, None, :] * sub_pairs[None]  # (K, F, P)
        self._tree_omega = self._tree @ self.rig.omega  # (K, F)
        self._ancestors = sub.T[self.rig.bone]  # (P, J): bone a is an ancestor-or-self of pair p's
        self._weights = np.asarray(topo.LANDMARK_WEIGHTS)
        self._weights_close_up = np.asarray(topo.CLOSE_UP_WEIGHTS)
        self._skin = skinning_matrix(data)
        warm_up_kernels()
        # (F, 3): stiffness about the model's x, y, z axes (isotropic in BONE_PRIOR).
        self._prior = self.settings.prior_scale * np.repeat(
            np.array([topo.BONE_PRIOR[b] for b in topo.FIT_BONES])[:, None], 3, axis=1)
        self._limb_evidence = [(topo.FIT_BONES.index(b), np.asarray(marks))
                               for b, marks in topo.LIMB_EVIDENCE.items()]
        self._hinge = {i: np.asarray(topo.HINGE_AXES[b]) for i, b in enumerate(topo.FIT_BONES)
                       if b in topo.HINGE_AXES}
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame and the accumulated shape (new source or person)."""
        s = self.settings
        self._local: np.ndarray | None = None
        self._root: np.ndarray | None = None
        self._beta_acc = np.zeros(self.data.num_shape)
        self._frames = 0
        self._smoother = PoseSmoother(s.smooth_min_cutoff, s.smooth_beta, s.smooth_position_beta)

    def drop_track(self) -> None:
        """Forget the previous frame's pose (the next frame starts from the closed form) but
        keep the accumulated shape: after a frame whose fit was rejected."""
        self._local = None
        self._root = None
        self._smoother.reset()

    @property
    def shape(self) -> np.ndarray:
        """(S,) the shape accumulated so far."""
        return self._beta_acc.copy()

    # -- one frame ---------------------------------------------------------------------
    def visible(self, obs: Observation) -> np.ndarray:
        """(K,) bool: the landmarks the fit uses (visible enough and inside the image)."""
        s = self.settings
        return (obs.visibility > s.visibility_threshold) & self.in_view(obs)

    def close_up(self, obs: Observation) -> bool:
        """Whether the hips are out of view (a webcam framing: head and shoulders). Then
        the world landmarks are not used (their origin, the hip centre, is a guess), the
        trunk is held upright, unseen limbs near the reference pose, and all landmarks
        weigh the same (topology.CLOSE_UP_WEIGHTS)."""
        return not bool(self.in_view(obs)[[LH, RH]].all())

    def in_view(self, obs: Observation) -> np.ndarray:
        """(K,) bool: the landmarks inside the image, away from its edges (any visibility)."""
        border = self.settings.border_fraction * min(obs.camera.width, obs.camera.height)
        return in_view(obs.points_2d, obs.camera, border)

    def fit(self, obs: Observation, with_mesh: bool = True) -> FitOutput:
        s = self.settings
        state = rest_state(self.data, self._beta_acc)
        visible = self.visible(obs)
        if self._local is None:
            local, root, beta, _ = self._solve(obs, visible, state, warm=False)
        else:
            local, root, beta, err = self._solve(obs, visible, state, warm=True)
            if err > s.restart_px:
                # Lost track (a fast move, or mediapipe jumped): a fresh closed-form start
                # often lands in a better basin; keep whichever fits the landmarks better.
                fresh = self._solve(obs, visible, state, warm=False)
                if fresh[3] < err:
                    local, root, beta, _ = fresh
                    self._smoother.reset()  # a jump, not motion: do not smooth across it
        self._local, self._root = local, root
        self._frames += 1
        n = min(self._frames, s.shape_frames)
        self._beta_acc = self._beta_acc + (beta - self._beta_acc) / n
        if s.smoothing:
            local, root = self._smooth(local, root, obs.time)
            beta = self._beta_acc  # the shape accumulated over frames: steady, not per-frame noise
        return self.evaluate(local, root, beta, obs, visible, with_mesh)

    def _solve(self, obs, visible, state, warm: bool):
        """Start (warm: the previous frame; else closed form) and Gauss-Newton steps.
        Returns local rotations, root, β and the RMS pixel error of the visible landmarks."""
        s = self.settings
        beta = self._beta_acc.copy()
        if warm:
            local, root = self._local.copy(), self._root.copy()
            t = self._solve_root(local, root, beta, state, obs, visible)
            root = t if t is not None else root
        else:
            local, root = self.initialise(obs, state)
        for _ in range(s.iterations_tracking if warm else s.iterations_first):
            if s.fit_shape and np.abs(beta - state.beta).max() > 0.02:
                # Exact residuals for the current shape; only its Jacobian holds A fixed.
                state = rest_state(self.data, beta)
            local, root, beta = self._step(local, root, beta, state, obs, visible)
        rot, pos = forward_kinematics(self.parents, local, self._offsets(beta, state), root)
        uv, _ = project(self._points(rot, pos, beta, state)[0], obs.camera)
        err = np.linalg.norm(uv - obs.points_2d, axis=1)[visible]
        return local, root, beta, float(np.sqrt(np.mean(err ** 2))) if len(err) else 0.0

    def initialise(self, obs: Observation, state: RestState) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form pose and translation from the landmarks (no previous frame)."""
        local = np.broadcast_to(np.eye(3), (self.data.num_bones, 3, 3)).copy()
        beta = state.beta
        if obs.world is not None:
            trunk = trunk_orientation(obs.world)
            if trunk is not None:
                local[0] = trunk
            for bone, a, b in topo.INIT_SEGMENTS:
                rot, pos = forward_kinematics(self.parents, local, state.offsets, np.zeros(3))
                pts = self._points(rot, pos, beta, state)[0]
                d_model, d_obs = pts[b] - pts[a], obs.world[b] - obs.world[a]
                if np.linalg.norm(d_model) < 1e-6 or np.linalg.norm(d_obs) < 1e-6:
                    continue
                turn = minimal_rotation(d_model / np.linalg.norm(d_model), d_obs / np.linalg.norm(d_obs))
                c = self.data.bone_index(bone)
                parent_rot = rot[self.parents[c]]
                local[c] = parent_rot.T @ turn @ parent_rot @ local[c]
        else:
            facing_away = obs.points_2d[LS, 0] < obs.points_2d[RS, 0]
            if facing_away:
                local[0] = rodrigues(np.array([0.0, np.pi, 0.0]))
        root = self._solve_root(local, np.zeros(3), beta, state, obs, self.visible(obs))
        return local, root if root is not None else np.array([0.0, 0.0, 3.0])

    def _solve_root(self, local, root, beta, state, obs, visible) -> np.ndarray | None:
        """Root translation for the given pose: the linear least-squares solution, or, when
        that one is degenerate (e.g. behind the camera on a face close-up), a start from the
        points' size refined on the pixel error. None when fewer than two landmarks are
        visible."""
        rot, pos = forward_kinematics(self.parents, local, self._offsets(beta, state), np.zeros(3))
        pts = self._points(rot, pos, beta, state)[0]
        weights = self._landmark_weights(self.close_up(obs)) * visible
        t = solve_translation(pts, obs.points_2d, weights, obs.camera)
        if t is not None and np.all(pts[weights > 0, 2] + t[2] > self.settings.min_depth):
            return t
        start = translation_from_scale(pts, obs.points_2d, weights, obs.camera)
        if start is None:
            return None
        t, err = refine_translation(pts, obs.points_2d, weights, obs.camera, start,
                                    min_depth=self.settings.min_depth)
        return t if np.isfinite(err) else None

    # -- Gauss-Newton ------------------------------------------------------------------
    def _offsets(self, beta: np.ndarray, state: RestState) -> np.ndarray:
        return state.offsets + state.offsets_basis @ (beta - state.beta)

    def _points(self, rot, pos, beta, state):
        """Posed keypoints (K, 3) plus the pieces the Jacobian needs."""
        heads = state.heads + state.heads_basis_t @ (beta - state.beta)
        shifted = RestState(beta, heads, state.heads_basis, state.align, state.offsets, state.offsets_basis)
        o, ob = self.rig.local_offsets(shifted)
        pair = self.rig.pair_points(rot, pos, o)
        return self.rig.gather @ pair, pair, ob

    def _jacobian(self, rot, pos, pair, ob, state) -> np.ndarray:
        """d keypoints / d [ω (F·3), t (3), β (S)] as (K, 3, N)."""
        k_count, n_fit = self.rig.gather.shape[0], len(self.fit_bones)
        y = self._tree @ pair - self._tree_omega[..., None] * pos[self.fit_bones][None]
        j_rot = -skew(y)  # (K, F, 3, 3)
        j_rot = np.transpose(j_rot, (0, 2, 1, 3)).reshape(k_count, 3, n_fit * 3)
        j_t = np.broadcast_to(np.eye(3), (k_count, 3, 3))
        parts = [j_rot, j_t]
        if self.settings.fit_shape:
            e = rot[self._par] @ state.offsets_basis  # (J, 3, S)
            dj = (self._ancestors @ e.reshape(len(e), -1)).reshape(len(self._ancestors), 3, -1)
            dpair = rot[self.rig.bone] @ ob + self.rig.omega[:, None, None] * dj
            parts.append((self.rig.gather @ dpair.reshape(len(dpair), -1)).reshape(k_count, 3, -1))
        return np.concatenate(parts, axis=2)

    def _step(self, local, root, beta, state, obs, visible):
        s = self.settings
        rot, pos = forward_kinematics(self.parents, local, self._offsets(beta, state), root)
        pts, pair, ob = self._points(rot, pos, beta, state)
        jac = self._jacobian(rot, pos, pair, ob, state)
        n = jac.shape[2]
        rows_r, rows_j = [], []
        close_up = self.close_up(obs)
        # 2D reprojection, in mm at the person's depth, Huber-weighted.
        uv, duv = project(pts, obs.camera)
        mm_per_px = 1000.0 * max(root[2], 0.3) / obs.camera.focal_px
        err = (uv - obs.points_2d) * mm_per_px
        w = self._landmark_weights(close_up) * visible
        norm = np.linalg.norm(err, axis=1)
        w = w * np.where(norm > s.robust_mm, np.sqrt(s.robust_mm / np.maximum(norm, 1e-9)), 1.0)
        rows_r.append((err * w[:, None]).ravel())
        rows_j.append(((duv @ jac) * (mm_per_px * w)[:, None, None]).reshape(-1, n))
        # 3D agreement with the world landmarks, relative to the hip centre. Only with the
        # hips in view: otherwise the hip centre the world points hang from is a guess, and
        # on a face close-up mediapipe's world skeleton is distorted (the head ~20 cm in
        # front of the shoulders and only ~10 cm above them).
        if obs.world is not None and s.weight_3d > 0 and not close_up:
            rel = pts - 0.5 * (pts[LH] + pts[RH])
            jrel = jac - 0.5 * (jac[LH] + jac[RH])[None]
            w3 = 1000.0 * s.weight_3d * self._weights * (0.5 + 0.5 * obs.visibility)
            rows_r.append(((rel - obs.world) * w3[:, None]).ravel())
            rows_j.append((jrel * w3[:, None, None]).reshape(-1, n))
        # Pose prior and hinge limits on each fitted bone's local rotation.
        r_prior, j_prior = self._pose_prior(local, rot, n, *self._frame_prior(obs, close_up))
        rows_r.append(r_prior)
        rows_j.append(j_prior)
        if close_up and s.upright_prior > 0:
            r_up, j_up = upright_residual(rot[0], s.upright_prior)
            rows_r.append(r_up)
            rows_j.append(np.pad(j_up, ((0, 0), (0, n - 3))))  # the root's ω is columns 0-2
        # Shape: towards the population mean and towards the accumulated shape.
        if s.fit_shape:
            n_shape = len(beta)
            memory = s.shape_memory * np.sqrt(min(self._frames, s.shape_frames) / s.shape_frames)
            jb = np.zeros((2 * n_shape, n))
            jb[:n_shape, n - n_shape:] = s.shape_prior * np.eye(n_shape)
            jb[n_shape:, n - n_shape:] = memory * np.eye(n_shape)
            rows_r.append(np.concatenate([s.shape_prior * beta, memory * (beta - self._beta_acc)]))
            rows_j.append(jb)
        r = np.concatenate(rows_r)
        j = np.concatenate(rows_j)
        h = j.T @ j
        h[np.diag_indices(n)] += s.damping * np.diag(h) + 1e-6
        delta = -solve_spd(h, j.T @ r)
        delta *= depth_step_scale(root[2], delta[3 * len(self.fit_bones) + 2], s.min_depth)
        return self._apply(local, rot, root, beta, delta)

    def _landmark_weights(self, close_up: bool) -> np.ndarray:
        """(K,) weight of each landmark: topology.LANDMARK_WEIGHTS, or CLOSE_UP_WEIGHTS
        when the hips are out of view."""
        return self._weights_close_up if close_up else self._weights

    def _frame_prior(self, obs: Observation, close_up: bool) -> tuple[np.ndarray, np.ndarray]:
        """This frame's pose prior: (F, 3) stiffness (topology.BONE_PRIOR) and (F,) target
        flexion of the hinge bones (radians, 0 = the reference pose). On a close-up (no
        world landmarks to guide them) the limbs none of whose landmarks is visible (seen
        and inside the image) are held at OUT_OF_VIEW_PRIOR, hinges at OUT_OF_VIEW_FLEX."""
        prior = self._prior.copy()
        flex = np.zeros(len(prior))
        if not close_up:
            return prior, flex
        seen = self.visible(obs)
        for f, marks in self._limb_evidence:
            if not seen[marks].any():
                prior[f] = np.maximum(prior[f], self.settings.prior_scale * topo.OUT_OF_VIEW_PRIOR)
                flex[f] = topo.OUT_OF_VIEW_FLEX.get(topo.FIT_BONES[f], 0.0)
        return prior, flex

    def _pose_prior(self, local, rot, n, prior: np.ndarray, flex_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual rows M_f φ_f (φ = the local rotation vector) and d/dω ≈ M_f Rg_parentᵀ.
        prior: (F, 3) stiffness per fitted bone and model axis (mm per radian);
        flex_target: (F,) hinge flexion (radians) the hinge prior pulls towards."""
        bones = self.fit_bones[1:]  # the root is free
        phi = rotation_log(local[bones])  # (F-1, 3)
        d_phi = np.swapaxes(rot[self.parents[bones]], -1, -2)
        m = prior[1:, :, None] * np.eye(3)  # (F-1, 3, 3) diagonal
        extra = []
        for f, axis in self._hinge.items():
            i = f - 1
            flex = float(axis @ phi[i])
            scale = self.settings.prior_scale
            m[i] = scale * topo.HINGE_OFF_AXIS * (np.eye(3) - np.outer(axis, axis))
            if flex_target[f] != 0.0:  # a set flexion (an unseen forearm): both ways alike
                extra.append((f, prior[f].max() * axis, flex_target[f]))
            else:
                extra.append((f, (prior[f].max() if flex >= 0 else scale * topo.HINGE_HYPEREXTENSION) * axis, 0.0))
        mj = m @ d_phi  # (F-1, 3, 3)
        r = (m @ phi[..., None]).ravel()
        j = np.zeros((len(bones), 3, n))
        cols = 3 * np.arange(1, len(self.fit_bones))[:, None] + np.arange(3)
        j[np.arange(len(bones))[:, None, None], np.arange(3)[None, :, None], cols[:, None, :]] = mj
        j = j.reshape(-1, n)
        if extra:
            je = np.zeros((len(extra), n))
            re = np.zeros(len(extra))
            for row, (f, vec, target) in enumerate(extra):
                re[row] = vec @ phi[f - 1] - np.linalg.norm(vec) * target
                je[row, 3 * f:3 * f + 3] = vec @ d_phi[f - 1]
            r, j = np.concatenate([r, re]), np.vstack([j, je])
        return r, j

    def _apply(self, local, rot, root, beta, delta):
        n_fit = len(self.fit_bones)
        omega = delta[:3 * n_fit].reshape(n_fit, 3)
        parent_rot = rot[self._par[self.fit_bones]]
        parent_rot[0] = np.eye(3)  # the root's increment is already in its own (world) axes
        local = local.copy()
        local_omega = (np.swapaxes(parent_rot, -1, -2) @ omega[..., None])[..., 0]
        local[self.fit_bones] = rodrigues(local_omega) @ local[self.fit_bones]
        root = root + delta[3 * n_fit:3 * n_fit + 3]
        if self.settings.fit_shape:
            beta = beta + delta[3 * n_fit + 3:]
        return local, root, beta

    # -- output ------------------------------------------------------------------------
    def _smooth(self, local, root, t):
        gain = self.settings.smooth_depth / max(float(root[2]), self.settings.min_depth)
        rot, root = self._smoother(local[self.fit_bones], root, t, max(gain, 1.0))
        local = local.copy()
        local[self.fit_bones] = rot
        return local, root

    def evaluate(self, local, root, beta, obs: Observation, visible, with_mesh: bool = True) -> FitOutput:
        """Exact model output (rest orientations recomputed for β) for the given parameters."""
        state = rest_state(self.data, beta)
        rot, pos = forward_kinematics(self.parents, local, state.offsets, root)
        o, _ = self.rig.local_offsets(state)
        pts = self.rig.points(rot, pos, o)
        uv, _ = project(pts, obs.camera)
        err = np.linalg.norm(uv - obs.points_2d, axis=1)
        rmse = float(np.sqrt(np.mean(err[visible] ** 2))) if visible.any() else float("nan")
        verts = None
        if with_mesh:
            transforms = skinning_transforms(rot, pos, state)
            verts = skin_vertices(rest_vertices(self.data, beta), self._skin, transforms)
        return FitOutput(local, root, beta, pos.astype(np.float32), pts.astype(np.float32),
                         uv.astype(np.float32), verts, rmse, visible)
