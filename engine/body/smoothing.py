"""Zero-lag smoothing of a body pose: One Euro filtering on rotations and the root position.

Rotation vectors cannot be filtered component-wise (they jump where the angle crosses π,
e.g. a person turning their back to the camera), so each bone's rotation is filtered on
the rotation group: the step from the filtered rotation to the new one, δ = log(R_fᵀ R),
is taken by the One Euro fraction α, R_f ← R_f exp(α δ), with α's cut-off rising with the
bone's (smoothed) angular speed |δ| / dt as in Casiez et al. (CHI 2012).
"""
from __future__ import annotations

import math

import numpy as np

from engine.body.anny_kinematics import rodrigues, rotation_log
from engine.filters import OneEuroFilter


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class RotationOneEuro:
    """One Euro filter over (N, 3, 3) rotations; min_cutoff in Hz, beta in Hz per rad/s."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._rot: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, rot: np.ndarray, t: float, gain: float = 1.0) -> np.ndarray:
        """rot: (N, 3, 3) at time t (seconds) -> filtered (N, 3, 3). gain multiplies both
        cut-off terms (min_cutoff and beta · speed): > 1 filters less (see PoseSmoother)."""
        if self._rot is None or self._t is None or self._rot.shape != rot.shape:
            self._rot, self._speed, self._t = rot.copy(), np.zeros(len(rot)), t
            return rot.copy()
        dt = t - self._t
        if dt <= 0:
            dt = 1.0 / 30.0  # repeated timestamps (still images): assume 30 fps
        step = rotation_log(np.swapaxes(self._rot, -1, -2) @ rot)  # (N, 3) in each filtered frame
        a_d = _alpha(self.d_cutoff, dt)
        self._speed = a_d * np.linalg.norm(step, axis=1) / dt + (1 - a_d) * self._speed
        a = _alpha(gain * (self.min_cutoff + self.beta * self._speed), dt)
        self._rot = self._rot @ rodrigues(step * np.asarray(a)[:, None])
        self._t = t
        return self._rot.copy()


class PoseSmoother:
    """Smooths (bone rotations (N, 3, 3), root position (3,) metres) over time.

    `gain` (per call) multiplies every cut-off. The filters are tuned in radians and metres
    for one viewing distance; the fitter passes tuned depth / actual depth so that the
    jitter/lag trade-off stays the same in pixels for a nearer person."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, position_beta: float = 2.0) -> None:
        self._rot = RotationOneEuro(min_cutoff, beta)
        self._pos = OneEuroFilter(min_cutoff, position_beta)
        self._min_cutoff, self._position_beta = float(min_cutoff), float(position_beta)

    def reset(self) -> None:
        self._rot.reset()
        self._pos.reset()

    def __call__(self, rot: np.ndarray, position: np.ndarray, t: float,
                 gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        # OneEuroFilter reads its (public) cut-off settings on every call.
        self._pos.min_cutoff, self._pos.beta = gain * self._min_cutoff, gain * self._position_beta
        return self._rot(rot, t, gain), self._pos(position, t)
