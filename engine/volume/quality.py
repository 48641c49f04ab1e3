"""Adaptive volume quality: pick the localisation schedule that holds a frame-time budget.

The volume's cost grows about 2.5-4x per lattice level (docs/PERFORMANCE.md, volume_field:
1 view at 65² ~10 ms, 129² ~27 ms, 257² ~190 ms of localise + render on this 2-core CPU, plus
~15 ms to build the field). `QualityController` watches each update's wall time and steps
the level down when the recent cost exceeds the budget, and back up when the next level's
predicted cost fits with room to spare; `auto` therefore settles at the finest level the
machine can hold, and a fixed level never moves.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from engine.settings_schema import QUALITY_CHOICES  # one list for stages, settings and CLI

log = logging.getLogger(__name__)

LEVELS: dict[str, tuple[int, ...]] = {
    "low": (17, 33, 65),
    "medium": (17, 33, 65, 129),
    "high": (17, 33, 65, 129, 257),
}
LEVEL_ORDER = ("low", "medium", "high")
# Predicted cost of one level up, relative to the current level's measured cost: the
# lattice work roughly triples per level (measured 2.5-4x), the field build does not.
STEP_UP_COST = 3.0
EMA_ALPHA = 0.3
PATIENCE = 3  # consecutive over/under-budget updates before the level moves


def validate_quality(value: str) -> str:
    value = str(value).strip().lower()
    if value not in QUALITY_CHOICES:
        raise ValueError(f"volume quality {value!r}: choose one of {', '.join(QUALITY_CHOICES)}")
    return value


def budget_ms_for(target_fps: float | None, source_fps: float | None = None) -> float:
    """The frame-time budget: 1000 / target fps; target defaults to the source's rate capped
    at 30 (30 when the source states none)."""
    fps = target_fps if target_fps and target_fps > 0 else min(30.0, source_fps or 30.0)
    if not math.isfinite(fps) or fps <= 0:
        fps = 30.0
    return 1000.0 / fps


@dataclass
class QualityController:
    """quality: "auto" or a fixed level; budget_ms: what one volume update may cost;
    start: the level auto begins at (the middle one: the first frames then show detail
    soon, and one step down is quick when the machine is busy)."""

    quality: str = "auto"
    budget_ms: float = 1000.0 / 30.0
    start: str = "medium"

    def __post_init__(self) -> None:
        self.quality = validate_quality(self.quality)
        self._index = LEVEL_ORDER.index(self.start if self.quality == "auto" else self.quality)
        self._ema: float | None = None
        self._over = self._under = 0

    @property
    def level(self) -> str:
        return LEVEL_ORDER[self._index]

    @property
    def resolutions(self) -> tuple[int, ...]:
        return LEVELS[self.level]

    def set_quality(self, quality: str) -> None:
        self.quality = validate_quality(quality)
        if self.quality != "auto":
            self._index = LEVEL_ORDER.index(self.quality)
        self._ema, self._over, self._under = None, 0, 0

    def set_budget_ms(self, budget_ms: float) -> None:
        if not (math.isfinite(budget_ms) and budget_ms > 0):
            raise ValueError(f"volume frame-time budget must be a positive number of ms, not {budget_ms!r}")
        self.budget_ms = float(budget_ms)

    def update(self, elapsed_ms: float) -> str:
        """Record one update's wall time at the current level; returns the level to use next."""
        if self.quality != "auto" or not math.isfinite(elapsed_ms):
            return self.level
        self._ema = elapsed_ms if self._ema is None else (1 - EMA_ALPHA) * self._ema + EMA_ALPHA * elapsed_ms
        if self._ema > self.budget_ms and self._index > 0:
            self._over, self._under = self._over + 1, 0
            if self._over >= PATIENCE:
                self._move(-1)
        elif self._ema * STEP_UP_COST < 0.8 * self.budget_ms and self._index < len(LEVEL_ORDER) - 1:
            self._under, self._over = self._under + 1, 0
            if self._under >= 2 * PATIENCE:  # slower up than down: no flicker between levels
                self._move(+1)
        else:
            self._over = self._under = 0
        return self.level

    def _move(self, step: int) -> None:
        before = self.level
        self._index += step
        # The new level's cost is unknown: predict it so the next decisions are not made on
        # the old level's times.
        if self._ema is not None:
            self._ema = self._ema * STEP_UP_COST if step > 0 else self._ema / STEP_UP_COST
        self._over = self._under = 0
        log.info("volume quality %s -> %s (update %.0f ms, budget %.0f ms)", before, self.level,
                 self._ema or 0.0, self.budget_ms)
