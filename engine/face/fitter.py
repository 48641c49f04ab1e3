"""The face fit over time: warm start from the previous frame, the identity accumulated over
the first well-fitted frames and then frozen, One Euro smoothing of the output; and the
from-scratch fit of a photo. The solver itself is engine.face.fit."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from engine.face.blas_threads import single_threaded_blas
from engine.face.fit import (FAR_SLIDE_FROM_DEG, FitParams, FitSettings, euler_angles, gauss_newton, initial_pose,
                             landmark_offsets, pack_rows, predict_landmarks, refit_expression, rmse_px,
                             rotation_angle_deg, rotation_matrix, slide_shift, solve_identity)
from engine.face.morphable import LinearFaceModel, landmark_rows
from engine.filters import OneEuroFilter

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class SmoothingSettings:
    """One Euro filter settings per quantity (see engine.filters.OneEuroFilter).
    Pose angles in degrees, translation and face size in pixels, expression in units."""

    enabled: bool = True
    # Tuned on talking_head.mp4 (speech: fast mouth and head motion) against a still
    # sequence: high betas keep the lag (and so the fit RMSE) low while moving, the low
    # cut-offs remove mediapipe's jitter when still.
    pose_min_cutoff: float = 1.0
    pose_beta: float = 2.0
    position_min_cutoff: float = 1.0
    position_beta: float = 2.0
    expression_min_cutoff: float = 2.0
    expression_beta: float = 20.0
    # The identity changes while it is being accumulated and once when it is frozen; a
    # slow filter turns both into a glide (it shapes the back of the head, which no
    # landmark pins, so an unfiltered change there would jump by tens of pixels).
    identity_min_cutoff: float = 0.5
    identity_beta: float = 0.0


@dataclass
class _IdentityAccumulator:
    """Frames kept to estimate the identity: (observed (L, 3), FitParams) pairs."""

    frames: list = field(default_factory=list)
    current: np.ndarray | None = None
    frozen: np.ndarray | None = None


class FaceFitter:
    """Per-frame fit with warm start, identity accumulation/freezing and One Euro smoothing.

    `fit(landmarks_478, t)` takes mediapipe's (478, 3) landmarks in pixels and the frame
    time in seconds; returns (raw FitParams, smoothed FitParams, fit RMSE of the smoothed
    face in pixels).
    """

    # face size used to express the scale in pixels for the filter (metres)
    _SIZE_M = 0.15

    def __init__(self, model: LinearFaceModel, settings: FitSettings | None = None,
                 smoothing: SmoothingSettings | None = None) -> None:
        self.model = model
        self.settings = settings or FitSettings()
        self.smoothing = smoothing or SmoothingSettings()
        self._uncalibrated = pack_rows(landmark_rows(model), model.landmark_mediapipe, self.settings)
        self.packed = self._uncalibrated
        noise2 = self.settings.noise_m ** 2
        self.prior_precision = np.concatenate([
            self.settings.identity_prior * noise2 / model.identity_prior_std.astype(np.float64) ** 2,
            self.settings.expression_prior * noise2 / model.expression_prior_std.astype(np.float64) ** 2,
        ])
        self.bounds = np.concatenate([
            np.tile([-np.inf, np.inf], (model.num_identity, 1)),
            model.expression_bounds.astype(np.float64),
        ])
        self.reset()

    def reset(self) -> None:
        """Forget the face (new source): pose, identity and the filters."""
        self._params: FitParams | None = None
        self._identity = _IdentityAccumulator()
        self.packed = self._uncalibrated
        self.landmark_offset: np.ndarray | None = None  # (L, 3) model metres, once calibrated
        s = self.smoothing
        self._f_pose = OneEuroFilter(s.pose_min_cutoff, s.pose_beta)
        self._f_pos = OneEuroFilter(s.position_min_cutoff, s.position_beta)
        self._f_expr = OneEuroFilter(s.expression_min_cutoff, s.expression_beta)
        self._f_ident = OneEuroFilter(s.identity_min_cutoff, s.identity_beta)

    def lost(self) -> None:
        """No face this frame: the next one is fitted from scratch (identity kept)."""
        self._params = None
        for f in (self._f_pose, self._f_pos, self._f_expr):
            f.reset()

    @property
    def identity(self) -> np.ndarray:
        """(K,) the current identity estimate (frozen after `identity_frames`)."""
        acc = self._identity
        if acc.frozen is not None:
            return acc.frozen
        return acc.current if acc.current is not None else np.zeros(self.model.num_identity)

    @property
    def identity_frozen(self) -> bool:
        return self._identity.frozen is not None

    def fit(self, landmarks: np.ndarray, t: float) -> tuple[FitParams, FitParams, float]:
        with single_threaded_blas():
            return self._fit(landmarks, t)

    # A photo: Gauss-Newton rounds (each re-applying the view's landmark slide) until the
    # RMSE improves by less than STILL_TOL, at most STILL_ROUNDS.
    STILL_ROUNDS = 10
    STILL_TOL = 0.005

    def fit_still(self, landmarks: np.ndarray) -> tuple[FitParams, FitParams, float]:
        """One photo, unrelated to the previous one: fitted from scratch to convergence, with
        its own identity and no smoothing (a filter or a warm start would blend two people).
        Returns (params, params, RMSE px)."""
        self.reset()
        with single_threaded_blas():
            observed_all = np.asarray(landmarks, np.float64)[self.model.landmark_mediapipe]
            expr0 = np.clip(np.zeros(self.model.num_expression), *self.bounds[self.packed.num_identity:].T)
            params = initial_pose(self.packed, observed_all, self.identity, expr0)
            free_identity = self.settings.identity_frames > 0
            slide = self.model.landmark_slide
            best = np.inf
            for _ in range(self.STILL_ROUNDS):
                observed = observed_all if slide is None else observed_all - slide_shift(slide, params)
                params = gauss_newton(self.packed, observed, params, prior_precision=self.prior_precision,
                                      bounds=self.bounds, free_identity=free_identity, iterations=3)
                rmse = rmse_px(predict_landmarks(self.packed, params), observed)
                if best - rmse < self.STILL_TOL * best:
                    break
                best = rmse
            far = self.model.landmark_slide_far
            if slide is not None and far is not None:
                # At the pose found, the face oval's far-yaw slide places its points where
                # mediapipe puts them on the silhouette; the shape is fitted to those. The
                # pose is not refitted through it: the solver holds the slide fixed per
                # round (its yaw derivative left out), and through the far slide that
                # fixed point sits at a smaller |yaw| (measured: 40° renders 1.5-2° lower).
                observed = observed_all - slide_shift(slide, params, far)
                params = refit_expression(self.packed, observed, params, prior_precision=self.prior_precision,
                                          bounds=self.bounds, identity=free_identity)
                rmse = rmse_px(predict_landmarks(self.packed, params), observed)
            return params, params, float(rmse)

    def _fit(self, landmarks: np.ndarray, t: float) -> tuple[FitParams, FitParams, float]:
        observed = np.asarray(landmarks, np.float64)[self.model.landmark_mediapipe]
        st = self.settings
        free_identity = self._identity.frozen is None and st.identity_frames > 0
        iterations = st.iterations
        params = self._params
        if params is None:
            expr0 = np.clip(np.zeros(self.model.num_expression), *self.bounds[self.packed.num_identity:].T)
            params = initial_pose(self.packed, observed, self.identity, expr0)
            iterations += 3
        elif not free_identity:
            params = replace(params, identity=self.identity)
        slide = self.model.landmark_slide
        landmarks_obs = observed
        if slide is not None:
            # the model's landmark points slide with the view as mediapipe's do; at this
            # frame's (warm-start) view that is a fixed shift, moved onto the observations
            observed = landmarks_obs - slide_shift(slide, params)
        start = params.rotation
        params = gauss_newton(self.packed, observed, params, prior_precision=self.prior_precision,
                              bounds=self.bounds, free_identity=free_identity, iterations=iterations)
        if slide is not None and rotation_angle_deg(start, params.rotation) > st.reslide_deg:
            # the view moved: shift again at the new one and refine
            observed = landmarks_obs - slide_shift(slide, params)
            params = gauss_newton(self.packed, observed, params, prior_precision=self.prior_precision,
                                  bounds=self.bounds, free_identity=free_identity, iterations=2)
        raw_rmse = rmse_px(predict_landmarks(self.packed, params), observed)
        if raw_rmse > st.refine_above_px:
            # a fast move took the warm start far from this frame: iterate more
            params = gauss_newton(self.packed, observed, params, prior_precision=self.prior_precision,
                                  bounds=self.bounds, free_identity=free_identity, iterations=st.extra_iterations)
            raw_rmse = rmse_px(predict_landmarks(self.packed, params), observed)
        self._params = params
        if free_identity and raw_rmse < st.good_fit_rmse_px:
            self._accumulate_identity(observed, params)
        far = self.model.landmark_slide_far
        far_view = slide is not None and far is not None and abs(euler_angles(params.rotation)[0]) > FAR_SLIDE_FROM_DEG
        if far_view:
            # the shape is fitted to where the far-yaw slide puts the oval (see fit_still)
            observed = landmarks_obs - slide_shift(slide, params, far)
        if not self.smoothing.enabled:
            if far_view:
                params = refit_expression(self.packed, observed, params, prior_precision=self.prior_precision,
                                          bounds=self.bounds)
                raw_rmse = rmse_px(predict_landmarks(self.packed, params), observed)
            return params, params, raw_rmse
        # The identity shown glides (a slow filter: it shapes the back of the head, which no
        # landmark pins, so a change there unfiltered would jump by tens of pixels). The
        # pose is filtered on its own; the expression is then fitted at the shown identity
        # and pose (see _smooth), so their lag does not leave the face off its landmarks.
        shown = replace(params, identity=self._f_ident(params.identity, t))
        smoothed = self._smooth(shown, observed, t)
        return params, smoothed, rmse_px(predict_landmarks(self.packed, smoothed), observed)

    def _accumulate_identity(self, observed: np.ndarray, params: FitParams) -> None:
        """Keep the frame; once there are enough, solve one identity for all of them
        (alternating with their poses and expressions) and freeze it."""
        acc = self._identity
        acc.frames.append((observed, params))
        ids = np.stack([p.identity for _, p in acc.frames])
        acc.current = ids.mean(0)  # warm start for the next frames until frozen
        if len(acc.frames) < self.settings.identity_frames:
            return
        prior = self.prior_precision[:self.packed.num_identity]
        frames = acc.frames
        identity = acc.current
        for _ in range(self.settings.identity_rounds):
            frames = [(obs, gauss_newton(self.packed, obs, replace(p, identity=identity),
                                         prior_precision=self.prior_precision, bounds=self.bounds,
                                         free_identity=False, iterations=2))
                      for obs, p in frames]
            identity = solve_identity(self.packed, frames, prior)
        acc.frozen, acc.frames = identity, []
        log.info("face identity frozen after %d frames", self.settings.identity_frames)
        if self.settings.calibration_prior is not None:
            self._calibrate(frames, identity)

    def _calibrate(self, frames: list, identity: np.ndarray) -> None:
        """Move the model's landmark points by this user's mean offset from mediapipe's.
        Where mediapipe puts a point on a face (lip corners, nasolabial points) differs from
        the model's correspondence by a per-person amount the identity basis cannot express:
        measured over the shared clip after the freeze, the mean residual per landmark was
        54 % of the fit's squared error. Held fixed afterwards, like the identity."""
        frames = [(obs, gauss_newton(self.packed, obs, replace(p, identity=identity),
                                     prior_precision=self.prior_precision, bounds=self.bounds,
                                     free_identity=False, iterations=2))
                  for obs, p in frames]
        self.landmark_offset = landmark_offsets(self.packed, frames, float(self.settings.calibration_prior))
        self.packed = replace(self.packed, mean=self.packed.mean + self.landmark_offset.T)

    def _smooth(self, params: FitParams, observed: np.ndarray, t: float) -> FitParams:
        """Filter the pose, then fit the expression to the landmarks at the filtered pose and
        the shown identity, then filter the expression: the pose and identity filters' lag
        is taken up by the expression's fit instead of showing as a face off its landmarks
        (the pose itself is not refitted: that moved it off the true head pose on renders)."""
        angles = euler_angles(params.rotation)
        pos = np.array([params.translation[0], params.translation[1], params.translation[2],
                        params.scale * self._SIZE_M])
        angles = self._f_pose(angles, t)
        pos = self._f_pos(pos, t)
        posed = FitParams(rotation_matrix(*angles), float(pos[3] / self._SIZE_M), pos[:3].copy(),
                          params.identity, params.expression, params.depth_scale)
        posed = refit_expression(self.packed, observed, posed, prior_precision=self.prior_precision,
                                 bounds=self.bounds)
        expr = np.clip(self._f_expr(posed.expression, t), *self.bounds[self.packed.num_identity:].T)
        return replace(posed, expression=expr)
