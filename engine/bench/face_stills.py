"""Faces on stills, measured against bare mediapipe in the same run: renders of random Anny
heads (known yaw −40…+40, expression, two backgrounds) through the default photo path
(PerceptionStage in static mode, FaceStage with still_images) and through bare FaceMesh.

Used by `bench face` (the table in docs/PERFORMANCE.md) and by the tests (the bounds).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from engine.face.fit import rotation_from_pose_deg
from engine.face.morphable import LinearFaceModel
from engine.face.synthetic import render_mesh
from engine.frame import Frame

SIZE = 512
YAWS = (-40, -20, 0, 20, 40)
KINDS = ("neutral", "open", "smile", "blink")
BACKGROUNDS = ((60, 70, 80), (170, 150, 120))  # plain; warm with noise


@dataclass(frozen=True)
class StillCase:
    image: np.ndarray
    yaw: float
    kind: str
    background: int


@dataclass(frozen=True)
class StillOutcome:
    case: StillCase
    bare_found: bool
    found: bool
    rmse_px: float = float("nan")
    yaw_deg: float = float("nan")
    expressions: dict[str, float] = dataclasses.field(default_factory=dict)


def _expression(model: LinearFaceModel, kind: str) -> np.ndarray:
    names = model.expression_names
    e = np.zeros(len(names))
    targets = {"open": {"jawOpen": 0.6}, "smile": {"mouthSmileLeft": 0.7, "mouthSmileRight": 0.7},
               "blink": {"eyeBlinkLeft": 0.9, "eyeBlinkRight": 0.9}}.get(kind, {})
    for name, value in targets.items():
        e[names.index(name)] = value
    return e


def make_cases(model: LinearFaceModel, seed: int) -> list[StillCase]:
    """4 expressions × 5 yaws × 2 backgrounds; identity, pitch, roll, size and position
    random per (background, yaw)."""
    rng = np.random.default_rng(seed)
    cases = []
    for bg, background in enumerate(BACKGROUNDS):
        for yaw in YAWS:
            # One person and view per (background, yaw), shown with each expression: the
            # response to an expression is measured against the same face's neutral.
            identity = rng.normal(0, 0.5, model.num_identity).astype(np.float32)
            rot = rotation_from_pose_deg(yaw, rng.uniform(-8, 8), rng.uniform(-6, 6))
            centre = np.array([SIZE / 2 + rng.uniform(-20, 20), SIZE / 2 + rng.uniform(-10, 20)])
            scale = rng.uniform(1500.0, 1900.0)
            for kind in KINDS:
                render = render_mesh(model.vertices(identity, _expression(model, kind)), model.triangles,
                                     model.vertex_colours, rot, scale, centre, SIZE, SIZE, background=background)
                image = render.image
                if bg == 1:
                    empty = (image == np.array(background, np.uint8)).all(-1)
                    noise = rng.integers(-25, 25, image.shape)
                    image = image.copy()
                    image[empty] = np.clip(image[empty].astype(int) + noise[empty], 0, 255).astype(np.uint8)
                cases.append(StillCase(image, float(yaw), kind, bg))
    return cases


def evaluate(model: LinearFaceModel, seed: int = 5) -> list[StillOutcome]:
    import mediapipe as mp

    from engine.face.stage import FaceSettings, FaceStage
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    bare = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    perception = PerceptionStage(PerceptionSettings(static_image_mode=True))
    stage = FaceStage(FaceSettings(still_images=True), model=model)
    outcomes = []
    try:
        for i, case in enumerate(make_cases(model, seed)):
            bare_found = bare.process(cv2.cvtColor(case.image, cv2.COLOR_BGR2RGB)).multi_face_landmarks is not None
            frame = Frame(case.image, i, float(i), "stills", name=f"still{i}")
            result = stage.process(frame, {"perception": perception.process(frame, {})})
            if result is None:
                outcomes.append(StillOutcome(case, bare_found, False))
                continue
            outcomes.append(StillOutcome(case, bare_found, True, float(result.fit_rmse_px), float(result.pose_deg[0]),
                                         dict(zip(result.expression_names, map(float, result.expression)))))
    finally:
        bare.close()
        perception.close()
        stage.close()
    return outcomes


def expression_rises(outcomes: list[StillOutcome]) -> dict[str, list[float]]:
    """Per driven expression: its value minus the neutral one, same view and background."""
    neutral = {(o.case.yaw, o.case.background): o for o in outcomes if o.case.kind == "neutral" and o.found}
    measure = {"open": lambda e: e["jawOpen"],
               "smile": lambda e: (e["mouthSmileLeft"] + e["mouthSmileRight"]) / 2,
               "blink": lambda e: (e["eyeBlinkLeft"] + e["eyeBlinkRight"]) / 2}
    rises: dict[str, list[float]] = {k: [] for k in measure}
    for o in outcomes:
        base = neutral.get((o.case.yaw, o.case.background))
        if o.case.kind in measure and o.found and base is not None:
            rises[o.case.kind].append(measure[o.case.kind](o.expressions) - measure[o.case.kind](base.expressions))
    return rises


GOALS = {"open": 0.15, "smile": 0.10, "blink": 0.30}


def report(model: LinearFaceModel) -> str:
    outcomes = evaluate(model)
    found = [o for o in outcomes if o.found]
    rmse = np.array([o.rmse_px for o in found])
    yaw_err = np.abs([o.yaw_deg - o.case.yaw for o in found])
    lines = [
        f"Stills: {len(outcomes)} renders of random Anny heads ({SIZE}², yaw {YAWS[0]}…{YAWS[-1]}°, "
        f"{len(KINDS)} expressions, {len(BACKGROUNDS)} backgrounds), the photo path against bare "
        "FaceMesh (static mode) in the same run.",
        "",
        f"- detected: holocap {len(found)}, bare mediapipe {sum(o.bare_found for o in outcomes)}; "
        f"missed where mediapipe finds one: {sum(o.bare_found and not o.found for o in outcomes)}",
        f"- fit RMSE: median {np.median(rmse):.2f} px (goal ≤ 3), 95th {np.percentile(rmse, 95):.2f} px; "
        "by |yaw|: " + ", ".join(f"{y}° {np.median([o.rmse_px for o in found if abs(o.case.yaw) == y]):.1f}"
                                  for y in (0, 20, 40)),
        f"- |yaw| error: median {np.median(yaw_err):.2f}° (goal ≤ 3), max {np.max(yaw_err):.2f}° (goal ≤ 8)",
    ]
    for kind, rises in expression_rises(outcomes).items():
        ok = sum(r >= GOALS[kind] for r in rises)
        lines.append(f"- {kind} vs neutral: mean rise {np.mean(rises):.2f}, ≥ {GOALS[kind]} in {ok}/{len(rises)} "
                     "(goal: 80 %)")
    return "\n".join(lines)
