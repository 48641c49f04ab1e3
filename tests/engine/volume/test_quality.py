"""Adaptive volume quality: steps down over budget, back up with room, fixed levels stay."""
from __future__ import annotations

import pytest

from engine.volume.quality import LEVELS, QualityController, budget_ms_for, validate_quality


def test_auto_steps_down_when_over_budget_and_up_when_there_is_room():
    q = QualityController("auto", budget_ms=33.0)
    assert q.level == "medium"
    for _ in range(10):
        q.update(80.0)
    assert q.level == "low" and q.resolutions == LEVELS["low"]
    seen = []
    for _ in range(60):
        seen.append(q.update(5.0))  # 5 ms x 3 (the next level's cost) < 0.8 x budget
    assert seen[0] == "low" and seen[-1] == "high"
    assert seen.index("medium") < seen.index("high")  # one level at a time
    assert seen.index("medium") >= 5  # not at the first cheap update: no flicker


def test_auto_holds_a_level_whose_cost_fits():
    q = QualityController("auto", budget_ms=33.0)
    for _ in range(50):
        q.update(25.0)  # fits, but the next level (x3) would not
    assert q.level == "medium"


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_fixed_levels_never_move(level):
    q = QualityController(level, budget_ms=10.0)
    for _ in range(20):
        q.update(1000.0)
    assert q.level == level


def test_bad_values_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="auto, low, medium, high"):
        validate_quality("ultra")
    q = QualityController()
    with pytest.raises(ValueError):
        q.set_budget_ms(float("nan"))


def test_budget_follows_the_source_capped_at_30():
    assert budget_ms_for(None, 25.0) == pytest.approx(40.0)
    assert budget_ms_for(None, 60.0) == pytest.approx(1000 / 30)
    assert budget_ms_for(15.0, 60.0) == pytest.approx(1000 / 15)
    assert budget_ms_for(None, None) == pytest.approx(1000 / 30)
