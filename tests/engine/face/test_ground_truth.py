"""Ground truth: renders of the Anny head with a known pose and expression, through the full
default path (mediapipe FaceMesh via PerceptionStage, then FaceStage with its filters).

The sequence is a smooth 3 s head motion at 30 fps (yaw ±25°, pitch ±10°, roll ±8°) while
the mouth opens, smiles and the brows rise; identity is a random Anny face (0.5 σ).

Bounds and why (measured here: see the printed numbers and the report):
- pose: the median geodesic (all-axes) error must meet the issue's 3° goal (measured
  2.8°), and the head-pose literature's metric (AFLW2000: mean of the yaw, pitch and
  roll absolute errors, in the reported 3DDFA_V2 convention) 2° (measured 1.4°). Pitch
  is the weak axis: mediapipe's own points on renders move less than the head does when
  it looks down (its error on renders is ~3.5 px at this size, ../shared/README.md); the
  correspondence's view-dependent slide (weights/face_correspondence_anny.md) corrects
  most of it.
- expression: the 52 units are not independent in the landmarks (smile vs. dimple vs.
  stretch, jawOpen vs. mouthLowerDown...), so a fit shares a motion between neighbours and
  uses the extrapolated range (ANNY_EXPRESSION_BOUNDS) to absorb mediapipe's error on
  renders: per unit the error is large (measured mean 0.25 over all 52, 0.29 over the
  driven ones). What is checked is the motion they make: the RMS landmark displacement
  of the expression error is at most 3.3 mm and below 0.85 of that of the true
  expression itself (a fit that ignored expression would score the latter, ~3.7 mm
  here; measured 3.0 mm — a weak recovery, mediapipe's error on renders is of the same
  size as these motions), and jawOpen, the largest motion, tracks within 0.2 (measured
  0.11).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.face.fit import pose_deg, rotation_angle_deg, rotation_from_pose_deg, rotation_matrix
from engine.face.morphable import LinearFaceModel
from engine.face.stage import FaceSettings, FaceStage
from engine.face.synthetic import render_mesh
from engine.frame import Frame

SIZE = 480
SCALE = 1500.0  # px per metre: a ~220 px wide face
FPS = 30.0
N_FRAMES = 90
SETTLE = 10  # frames before scoring: the filters start from the first observation
DRIVEN = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp", "eyeBlinkLeft")


def truth(i: int, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch, roll) degrees and (52,) expression of frame i."""
    t = i / FPS
    angles = np.array([25 * np.sin(2 * np.pi * t / 3.0), 10 * np.sin(2 * np.pi * t / 2.1),
                       8 * np.sin(2 * np.pi * t / 3.7)])
    expr = np.zeros(len(names))
    wave = lambda period, phase: 0.5 - 0.5 * np.cos(2 * np.pi * t / period + phase)  # noqa: E731
    expr[names.index("jawOpen")] = 0.5 * wave(1.5, 0.0)
    expr[names.index("mouthSmileLeft")] = 0.6 * wave(2.2, 1.0)
    expr[names.index("mouthSmileRight")] = 0.6 * wave(2.2, 1.0)
    expr[names.index("browInnerUp")] = 0.7 * wave(1.8, 2.0)
    expr[names.index("eyeBlinkLeft")] = 0.6 * wave(2.6, 0.5)
    return angles, expr


@pytest.fixture(scope="module")
def run():
    from engine.perception.stage import PerceptionSettings, PerceptionStage

    model = LinearFaceModel.from_anny()
    rng = np.random.default_rng(11)
    identity = rng.normal(0, 0.5, model.num_identity).astype(np.float32)
    perception = PerceptionStage(PerceptionSettings(pose=False, segmentation=False))
    stage = FaceStage(FaceSettings(), model=model)
    rows = []
    try:
        for i in range(N_FRAMES):
            angles, expr = truth(i, model.expression_names)
            rot = rotation_matrix(*angles)
            verts = model.vertices(identity, expr)
            render = render_mesh(verts, model.triangles, model.vertex_colours, rot, SCALE,
                                 np.array([SIZE / 2, SIZE / 2 + 10]), SIZE, SIZE)
            frame = Frame(render.image, i, i / FPS, "synthetic:anny-face")
            ctx = {"perception": perception.process(frame, {})}
            result = stage.process(frame, ctx)
            rows.append((rot, expr, result))
    finally:
        perception.close()
        stage.close()
    return model, rows


def test_fitted_on_every_render(run):
    _, rows = run
    assert sum(r is not None for _, _, r in rows) == N_FRAMES


def test_pose_error(run):
    _, rows = run
    errs, per_axis = [], []
    for rot, _, result in rows[SETTLE:]:
        fitted = rotation_from_pose_deg(*result.pose_deg)
        errs.append(rotation_angle_deg(rot, fitted))
        per_axis.append(np.abs(pose_deg(rot) - result.pose_deg))
    per_axis = np.array(per_axis)
    mae3 = per_axis.mean(1)
    med = np.median(per_axis, axis=0)
    print(f"\npose error: mean of |yaw|,|pitch|,|roll| median {np.median(mae3):.2f} deg; geodesic median "
          f"{np.median(errs):.2f}, 95th {np.percentile(errs, 95):.2f}; per axis median |yaw| {med[0]:.2f} "
          f"|pitch| {med[1]:.2f} |roll| {med[2]:.2f}")
    assert np.median(errs) <= 3.0
    assert np.median(mae3) <= 2.0


def test_expression_error(run):
    from engine.face.morphable import landmark_rows

    model, rows = run
    names = model.expression_names
    driven = [names.index(n) for n in DRIVEN]
    err = np.array([result.expression - expr for _, expr, result in rows[SETTLE:]])
    lm_basis = landmark_rows(model).expression  # (L, 3, E) metres per unit
    motion = np.einsum("lce,fe->flc", lm_basis, err)
    motion_rms_mm = np.sqrt((motion ** 2).sum(2).mean(1)) * 1000
    truth_rms_mm = np.sqrt((np.einsum("lce,fe->flc", lm_basis, np.array([e for _, e, _ in rows[SETTLE:]])) ** 2)
                           .sum(2).mean(1)) * 1000
    mae = np.abs(err)
    jaw = mae[:, names.index("jawOpen")].mean()
    print(f"\nexpression MAE: driven {mae[:, driven].mean():.3f} "
          f"({', '.join(f'{n} {mae[:, names.index(n)].mean():.3f}' for n in DRIVEN)}), all 52 {mae.mean():.3f}; "
          f"landmark motion error RMS median {np.median(motion_rms_mm):.2f} mm "
          f"(true expression motion {np.median(truth_rms_mm):.2f} mm)")
    assert jaw <= 0.2
    assert np.median(motion_rms_mm) <= 3.3
    assert np.median(motion_rms_mm) <= 0.85 * np.median(truth_rms_mm)


def test_rmse_on_renders(run):
    """The fit follows mediapipe's points on the renders to within mediapipe's own error on
    renders (~3.5 px at this size); measured median 2.9 px."""
    _, rows = run
    rmse = [r.fit_rmse_px for _, _, r in rows[SETTLE:]]
    print(f"\nfit RMSE on renders: median {np.median(rmse):.2f} px, 95th {np.percentile(rmse, 95):.2f}")
    assert np.median(rmse) <= 3.5
