"""Compute where mediapipe's FaceMesh points lie on the Anny head's surface.

Writes weights/face_correspondence_anny.npz (described in face_correspondence_anny.md):
for mediapipe's 468 mesh points and its two iris centres (468, 473), a triangle of the
Anny head and barycentric weights, and how the point slides with the view. Method:

1. Render the mean Anny head (engine.face.anny_face) with the mouth slightly open in four
   expressions (so the inner-lip points of the upper and lower lip fall on their own
   lip), Lambert shading and part colours, scaled orthographic, at yaws -30..30° and
   pitches -10..10°.
2. Run mediapipe FaceMesh (static images, refined landmarks) on every render.
3. Back-project each landmark through the render's z-buffer onto its part (skin for mesh
   points, eyeball for iris centres): the visible triangle and barycentrics at its pixel
   give a point of the neutral head (model frame).
4. Per landmark, keep the views where the surface there faces the camera (cosine > 0.35;
   oblique views misplace points); for the face-oval points, which mediapipe puts on the
   silhouette and which therefore slide over the skin as the head turns, keep the
   near-frontal views (|yaw| <= 10°) instead. Take the coordinate-wise median, and fit
   a line against yaw and pitch (the view-dependent slide).
5. The head is left-right symmetric, so make the points symmetric too: average each point
   (and slide) with the mirror image of its partner's (partners found by running
   mediapipe on a frontal render and on its mirror image and matching the two point
   sets); this halves the views' noise and removes mediapipe's left/right bias on renders.
6. Snap each point to the nearest point of its part.
7. (The slide of step 4.)
8. The face-oval points: mediapipe puts them on the silhouette, which at larger yaws is
   no longer where the near-frontal line says (the far side's oval is on the cheek's
   outline, the near side's moves inwards). Fitted from renders at all yaws (YAWS and
   FAR_YAWS) to what the line leaves: one slope per side beyond ±FAR_SLIDE_FROM_DEG, so within
   that yaw nothing changes (`slide_far`).

Run: .venv/bin/python tools/make_face_correspondence.py [--out PATH] [--debug-dir DIR]
"""
from __future__ import annotations

import argparse
import itertools
import datetime as dt
import importlib.metadata
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.face.anny_face import load_anny_head  # noqa: E402
from engine.face.fit import FAR_SLIDE_FROM_DEG, FAR_SLIDE_LIMIT_DEG, SLIDE_RANGE_DEG, rotation_matrix  # noqa: E402
from engine.face.synthetic import render_mesh  # noqa: E402
from engine.face.topology import IRIS_CENTRES, MEDIAPIPE_FACE_OVAL, NUM_MEDIAPIPE_MESH  # noqa: E402
from engine.paths import assets_dir  # noqa: E402
from engine.perception.crops import landmarks_to_pixels  # noqa: E402
from engine.render.raster_cpu import vertex_normals  # noqa: E402

log = logging.getLogger("make_face_correspondence")

YAWS = (-30, -20, -10, 0, 10, 20, 30)
# Rendered in addition for the face oval's far-yaw slide (step 8) only: every other
# estimate uses YAWS.
FAR_YAWS = (-45, -40, -35, 35, 40, 45)
PITCHES = (-10, 0, 10)
SIZE = 512
SCALE_PX_PER_M = 1700.0  # face ~260 px wide: well above mediapipe's ~60 px minimum
MIN_FACING = 0.35
OVAL_MAX_YAW = 10
# Expressions rendered at every view (mouth open in all, see step 1; the variety makes the
# median robust to where mediapipe slides the lip and eye contours).
EXPRESSIONS = (
    {"jawOpen": 0.3},
    {"jawOpen": 0.15, "mouthSmileLeft": 0.5, "mouthSmileRight": 0.5},
    {"jawOpen": 0.5},
    {"jawOpen": 0.2, "mouthPucker": 0.5},
)
SKIN_SEARCH_PX = 4
# The mediapipe points placed on the head: the 468 mesh points on the skin, and the two
# iris centres on the eyeballs (they make gaze, Anny's eyeLook* units, observable).
POINTS = np.concatenate([np.arange(NUM_MEDIAPIPE_MESH), IRIS_CENTRES]).astype(np.int32)
ON_EYE = np.isin(POINTS, IRIS_CENTRES)


def back_project(arrays, vertices, rot, landmarks_px, render, skin_triangle: np.ndarray,
                 eye_triangle: np.ndarray):
    """(P, 3) points of the neutral mean head under each of POINTS in a render of
    `vertices` (the posed, expressive head) and (P,) facing cosines (NaN / 0 when not found).

    Mesh points belong on the skin, iris centres on the eyeballs: a landmark whose pixel
    shows another part (eyeball, mouth cavity, background) takes the nearest pixel of its
    own part within SKIN_SEARCH_PX — mediapipe's eye and lip contours lie on the lid and
    lip margins, one or two pixels from the opening.
    """
    tri = arrays.triangles
    fid_img = render.raster.triangle_id
    h, w = fid_img.shape
    hit = fid_img >= 0
    part_images = []
    for part in (skin_triangle, eye_triangle):
        img = np.zeros((h, w), bool)
        img[hit] = part[fid_img[hit]]
        part_images.append(img)
    pts = np.full((len(POINTS), 3), np.nan)
    facing = np.zeros(len(POINTS))
    normals = vertex_normals(vertices @ rot.T, tri)
    r = SKIN_SEARCH_PX
    for j, (x, y) in enumerate(landmarks_px[POINTS, :2]):
        part = part_images[int(ON_EYE[j])]
        xi, yi = int(round(x)), int(round(y))
        y0, y1, x0, x1 = max(yi - r, 0), min(yi + r + 1, h), max(xi - r, 0), min(xi + r + 1, w)
        win = part[y0:y1, x0:x1]
        if not win.any():
            continue
        yy, xx = np.nonzero(win)
        k = int(np.argmin((yy + y0 - y) ** 2 + (xx + x0 - x) ** 2))
        py, px = yy[k] + y0, xx[k] + x0
        f, b = fid_img[py, px], render.raster.barycentric[py, px]
        pts[j] = b @ arrays.mean[tri[f]]
        n = b @ normals[tri[f]]
        # The view direction is +z; |n_z| is the facing cosine whichever way it is wound.
        facing[j] = abs(n[2]) / max(float(np.linalg.norm(n)), 1e-9)
    return pts, facing


def view_slopes(samples: np.ndarray, use: np.ndarray, yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(P, 3, 2) how each point's back-projected position moves with the view: metres per
    radian of yaw and of pitch, least squares over the views it is used in (one pass
    without views off by more than 3× the median residual). Zero where the views do not
    span both angles."""
    design = np.stack([np.ones_like(yaw), yaw, pitch], 1)
    slide = np.zeros((samples.shape[1], 3, 2))
    for j in range(samples.shape[1]):
        rows = np.flatnonzero(use[:, j])
        if len(rows) < 6 or np.ptp(yaw[rows]) == 0 or np.ptp(pitch[rows]) == 0:
            continue
        for _ in range(2):
            coef, *_ = np.linalg.lstsq(design[rows], samples[rows, j], rcond=None)
            resid = np.linalg.norm(design[rows] @ coef - samples[rows, j], axis=1)
            keep = resid <= 3 * max(np.median(resid), 1e-5)
            if keep.all():
                break
            rows = rows[keep]
        slide[j] = coef[1:].T
    return slide


def far_slopes(samples: np.ndarray, median: np.ndarray, slide: np.ndarray, yaw_deg: np.ndarray,
               pitch_deg: np.ndarray) -> np.ndarray:
    """(P, 3, 2) for the face-oval points (zeros elsewhere): metres per radian of yaw
    beyond +FAR_SLIDE_FROM_DEG and beyond -FAR_SLIDE_FROM_DEG, least squares on what the near-frontal
    point and line (as engine.face.fit.slide_shift applies them) leave, over every view the
    point was found in (one pass without views off by more than 3× the median)."""
    yaw = np.radians(np.clip(yaw_deg, -SLIDE_RANGE_DEG[0], SLIDE_RANGE_DEG[0]))
    pitch = np.radians(np.clip(pitch_deg, -SLIDE_RANGE_DEG[1], SLIDE_RANGE_DEG[1]))
    far_yaw = np.radians(np.clip(yaw_deg, -FAR_SLIDE_LIMIT_DEG, FAR_SLIDE_LIMIT_DEG))
    edge = np.radians(FAR_SLIDE_FROM_DEG)
    design = np.stack([np.maximum(far_yaw - edge, 0.0), np.minimum(far_yaw + edge, 0.0)], 1)
    out = np.zeros((samples.shape[1], 3, 2))
    for j in MEDIAPIPE_FACE_OVAL:
        line = median[j] + np.outer(yaw, slide[j, :, 0]) + np.outer(pitch, slide[j, :, 1])
        rows = np.flatnonzero(np.isfinite(samples[:, j, 0]))
        if len(rows) < 8:
            continue
        left = samples[:, j] - line
        for _ in range(2):
            coef, *_ = np.linalg.lstsq(design[rows], left[rows], rcond=None)
            resid = np.linalg.norm(design[rows] @ coef - left[rows], axis=1)
            keep = resid <= 3 * max(np.median(resid), 1e-5)
            if keep.all():
                break
            rows = rows[keep]
        out[j] = coef.T
    return out


def symmetrise_far(far: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Average each point's far slopes with its mirror partner's: mirroring (x -> -x) maps a
    point at yaw y to its partner at -y, so one side's slope beyond +FAR_SLIDE_FROM_DEG is the
    partner's beyond -FAR_SLIDE_FROM_DEG, x flipped and sign changed."""
    m = np.array([-1.0, 1.0, 1.0])
    out = far.copy()
    out[:, :, 0] = 0.5 * (far[:, :, 0] - far[pairs, :, 1] * m)
    out[:, :, 1] = 0.5 * (far[:, :, 1] - far[pairs, :, 0] * m)
    return out


def mirror_pairs(face_mesh, image: np.ndarray) -> np.ndarray:
    """(468,) int: the mediapipe point that mirrors each point, from a frontal render and
    its mirror image (optimal one-to-one matching of the two landmark sets)."""
    import cv2
    from scipy.optimize import linear_sum_assignment

    h, w = image.shape[:2]
    sets = []
    for img in (image, image[:, ::-1]):
        out = face_mesh.process(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB))
        if not out.multi_face_landmarks:
            raise RuntimeError("mediapipe found no face in the frontal render")
        sets.append(landmarks_to_pixels(out.multi_face_landmarks[0].landmark, w, h)[:NUM_MEDIAPIPE_MESH, :2])
    original, flipped = sets
    flipped[:, 0] = (w - 1) - flipped[:, 0]  # back into the original image's coordinates
    cost = np.linalg.norm(original[:, None, :] - flipped[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    pairs = np.empty(NUM_MEDIAPIPE_MESH, np.int64)
    pairs[cols] = rows  # flipped point j sits where original point pairs[j] is
    if not np.array_equal(pairs[pairs], np.arange(NUM_MEDIAPIPE_MESH)):
        log.warning("mirror matching is not an involution for %d points",
                    int((pairs[pairs] != np.arange(NUM_MEDIAPIPE_MESH)).sum()))
    return pairs


def snap_to_surface(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray,
                    candidates: np.ndarray, k: int = 24):
    """Nearest surface point of each (N, 3) point among the `candidates` triangles.

    Checks the triangles around the k nearest vertices: the in-triangle projection onto
    each plane, else the clamped barycentric point. Returns (triangle ids (N,) int32,
    barycentrics (N, 3) float64, distances (N,) metres).
    """
    from scipy.spatial import cKDTree

    cand_tris = triangles[candidates]
    cand_vertices = np.unique(cand_tris)
    _, near = cKDTree(vertices[cand_vertices]).query(points, k=k)
    tri_of_vertex: dict[int, list[int]] = {}
    for t_i, tri in zip(candidates, cand_tris):
        for v in tri:
            tri_of_vertex.setdefault(int(v), []).append(int(t_i))
    out_tri = np.zeros(len(points), np.int32)
    out_bary = np.zeros((len(points), 3))
    out_dist = np.zeros(len(points))
    for i, p in enumerate(points):
        tris = np.unique([t for v in cand_vertices[near[i]] for t in tri_of_vertex[int(v)]])
        a, b, c = (vertices[triangles[tris, j]].astype(np.float64) for j in range(3))
        # barycentrics of the projection of p onto each triangle's plane
        v0, v1, v2 = b - a, c - a, p - a
        d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
        d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
        den = np.maximum(d00 * d11 - d01 * d01, 1e-30)
        w1 = (d11 * d20 - d01 * d21) / den
        w2 = (d00 * d21 - d01 * d20) / den
        bary = np.clip(np.stack([1 - w1 - w2, w1, w2], 1), 0, 1)
        bary /= bary.sum(1, keepdims=True)
        q = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
        dist = np.linalg.norm(q - p, axis=1)
        j = int(np.argmin(dist))
        out_tri[i], out_bary[i], out_dist[i] = tris[j], bary[j], dist[j]
    return out_tri, out_bary, out_dist


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=assets_dir() / "face_correspondence_anny.npz")
    parser.add_argument("--debug-dir", type=Path, default=None, help="save the renders with landmarks")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import cv2
    import mediapipe as mp

    arrays = load_anny_head()
    shapes = []
    for values in EXPRESSIONS:
        expression = np.zeros(len(arrays.expression_names), np.float32)
        for name, value in values.items():
            expression[arrays.expression_names.index(name)] = value
        shapes.append(arrays.mean + arrays.expression_basis @ expression)
    skin_vertices = np.zeros(len(arrays.mean), bool)
    skin_vertices[arrays.face_vertices] = True
    skin_triangle = np.all(skin_vertices[arrays.triangles], axis=1)
    eye_triangle = np.zeros(len(arrays.triangles), bool)
    eye_triangle[arrays.eye_faces] = True
    samples, facings, yaws, pitches = [], [], [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=True) as face_mesh:
        frontal = render_mesh(arrays.mean, arrays.triangles, arrays.vertex_colours, np.eye(3),
                              SCALE_PX_PER_M, np.array([SIZE / 2, SIZE / 2]), SIZE, SIZE)
        mesh_pairs = mirror_pairs(face_mesh, frontal.image)
        # in POINTS order: the mesh pairs, and the right and left iris centres swap
        pairs = np.concatenate([mesh_pairs, [NUM_MEDIAPIPE_MESH + 1, NUM_MEDIAPIPE_MESH]])
        for vertices, yaw, pitch in itertools.product(shapes, YAWS + FAR_YAWS, PITCHES):
            rot = rotation_matrix(yaw, pitch, 0.0)
            trans = np.array([SIZE / 2, SIZE / 2])
            render = render_mesh(vertices, arrays.triangles, arrays.vertex_colours, rot,
                                 SCALE_PX_PER_M, trans, SIZE, SIZE)
            out = face_mesh.process(cv2.cvtColor(render.image, cv2.COLOR_BGR2RGB))
            if not out.multi_face_landmarks:
                log.warning("no face found at yaw %d pitch %d", yaw, pitch)
                continue
            lm = landmarks_to_pixels(out.multi_face_landmarks[0].landmark, SIZE, SIZE)
            pts, facing = back_project(arrays, vertices, rot, lm, render, skin_triangle, eye_triangle)
            yaws.append(yaw)
            pitches.append(pitch)
            samples.append(pts)
            facings.append(facing)
            if args.debug_dir:
                args.debug_dir.mkdir(parents=True, exist_ok=True)
                img = render.image.copy()
                for x, y in lm[:, :2]:
                    cv2.circle(img, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
                cv2.imwrite(str(args.debug_dir / f"render{len(samples):03d}_yaw{yaw:+d}_pitch{pitch:+d}.png"), img)
    if len(samples) < 3:
        log.error("mediapipe found the face in only %d renders", len(samples))
        return 1
    all_samples = np.stack(samples)  # (views, P, 3), every rendered yaw
    all_yaws, all_pitches = np.array(yaws), np.array(pitches)
    base_views = np.isin(all_yaws, YAWS)  # steps 4-7 use these only
    samples_arr = all_samples[base_views]
    facing_arr = np.stack(facings)[base_views]
    yaws, pitches = list(all_yaws[base_views]), list(all_pitches[base_views])
    use = (facing_arr > MIN_FACING) & np.isfinite(samples_arr[..., 0])
    # Oval points sit on the silhouette, so their surface is never facing the camera:
    # judge them by the view (near-frontal) instead of the facing cosine.
    frontal = np.abs(np.array(yaws)) <= OVAL_MAX_YAW
    found = np.isfinite(samples_arr[:, MEDIAPIPE_FACE_OVAL, 0])
    use[:, MEDIAPIPE_FACE_OVAL] = found & frontal[:, None]
    # Points seen obliquely in every view: fall back to their best-facing views.
    for j in np.flatnonzero(use.sum(0) == 0):
        use[np.argsort(-facing_arr[:, j])[:2], j] = True
    masked = np.where(use[..., None], samples_arr, np.nan)
    median = np.nanmedian(masked, axis=0)  # (P, 3)
    spread_mm = np.nanmedian(np.linalg.norm(masked - median, axis=2), axis=0) * 1000
    mirrored = median[pairs] * np.array([-1.0, 1.0, 1.0])
    asym_mm = np.linalg.norm(median - mirrored, axis=1) * 1000
    median = 0.5 * (median + mirrored)

    slide = view_slopes(samples_arr, use, np.radians(yaws), np.radians(pitches))
    mirror_m = np.array([-1.0, 1.0, 1.0])[:, None]
    # mirroring flips x and the sign of yaw, keeps pitch
    slide[:, :, 0] = 0.5 * (slide[:, :, 0] - slide[pairs, :, 0] * mirror_m[:, 0])
    slide[:, :, 1] = 0.5 * (slide[:, :, 1] + slide[pairs, :, 1] * mirror_m[:, 0])

    slide_far = far_slopes(all_samples, median, slide, all_yaws, all_pitches)
    slide_far = symmetrise_far(slide_far, pairs)

    tri_ids = np.zeros(len(POINTS), np.int32)
    bary = np.zeros((len(POINTS), 3))
    dist = np.zeros(len(POINTS))
    for sel, candidates in ((~ON_EYE, np.flatnonzero(skin_triangle)), (ON_EYE, arrays.eye_faces)):
        tri_ids[sel], bary[sel], dist[sel] = snap_to_surface(median[sel], arrays.mean, arrays.triangles, candidates)

    np.savez(args.out, triangle=tri_ids, barycentric=bary.astype(np.float32),
             mediapipe_index=POINTS,
             views_used=use.sum(0).astype(np.int16), spread_mm=spread_mm.astype(np.float32),
             mirror=POINTS[pairs].astype(np.int16), asymmetry_mm=asym_mm.astype(np.float32),
             slide=slide.astype(np.float32), slide_far=slide_far.astype(np.float32))
    slide_mm = np.linalg.norm(slide, axis=1) * 1000 * np.radians(10)
    log.info("view-dependent slide per 10° of yaw: median %.2f mm (95th %.2f); of pitch: median %.2f mm (95th %.2f)",
             np.median(slide_mm[:, 0]), np.percentile(slide_mm[:, 0], 95),
             np.median(slide_mm[:, 1]), np.percentile(slide_mm[:, 1], 95))
    log.info("wrote %s: %d renders, views used per point median %d (min %d), "
             "spread median %.2f mm (95th %.2f), snap distance median %.2f mm (max %.2f)",
             args.out, len(samples), np.median(use.sum(0)), use.sum(0).min(),
             np.median(spread_mm), np.percentile(spread_mm, 95), np.median(dist) * 1000, dist.max() * 1000)
    log.info("left/right asymmetry before symmetrising: median %.2f mm (95th %.2f)",
             np.median(asym_mm), np.percentile(asym_mm, 95))
    log.info("made %s with anny %s, mediapipe %s", dt.date.today(),
             importlib.metadata.version("anny"), importlib.metadata.version("mediapipe"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
