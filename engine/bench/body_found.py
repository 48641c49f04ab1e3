"""`bench body`'s detection and keypoint-accuracy rows, each against bare mediapipe in the
same run: the shared photos through the photo path (a body on how many), and renders of
people with known keypoints (engine.body.synthetic_render; seeds not used by the tests)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.frame import Frame

RENDER_SEED = 77  # tests/engine/body/test_person_renders.py draws from another seed


class _BothPaths:
    """Bare mediapipe pose (static mode) and holocap's photo path (perception + body), side by
    side on the same images; a context manager that closes the graphs."""

    def __enter__(self) -> "_BothPaths":
        import mediapipe as mp

        from engine.stage_factory import StageOptions, build_stages

        self.bare = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)
        self.perception, self.body = build_stages(["perception", "body"],
                                                  StageOptions(static_images=True, mesh_colours=False))
        return self

    def __exit__(self, *exc) -> None:
        self.bare.close()
        self.perception.close()
        self.body.close()

    def run(self, image: np.ndarray, index: int, name: str):
        """-> (bare mediapipe's (33, 2) landmarks in pixels or None, holocap's BodyResult or None)."""
        seen = self.bare.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).pose_landmarks
        landmarks = None
        if seen is not None:
            h, w = image.shape[:2]
            landmarks = np.array([[p.x * w, p.y * h] for p in seen.landmark], np.float32)
        frame = Frame(image, index, 0.0, name)
        ours = self.perception.process(frame, {})
        result = self.body.process(frame, {"perception": ours}) if ours.pose_landmarks is not None else None
        return landmarks, result


def found_on_photos(paths: list[Path]) -> dict[str, Any]:
    """Per photo: whether bare mediapipe (static mode) finds a pose, whether holocap's photo
    path gives a body."""
    rows = {}
    with _BothPaths() as both:
        for i, path in enumerate(paths):
            image = cv2.imread(str(path))
            if image is not None:
                landmarks, result = both.run(image, i, path.name)
                rows[path.name] = {"mediapipe": landmarks is not None, "holocap": result is not None}
    return rows


def renders_accuracy(data, cases: int, heights: tuple[float, float] = (360.0, 480.0),
                     seed: int = RENDER_SEED) -> dict[str, Any]:
    """`cases` renders (1280x720 and 720x1280 in turn, people `heights` px tall): found by each
    (per render in `found`: (height px, mediapipe, holocap)), and the median COCO-17 keypoint
    error (% of height) of the fitted body and of bare mediapipe's landmarks, over the
    renders both found."""
    from engine.body.fit import AnnyFitter
    from engine.body.synthetic_render import clothing_parts, keypoint_error_percent, render_person

    fitter, parts = AnnyFitter(data), clothing_parts(data)
    rng = np.random.default_rng(seed)
    found, err_fit, err_bare = [], [], []
    with _BothPaths() as both:
        for i in range(cases):
            size = (1280, 720) if i % 2 == 0 else (720, 1280)
            r = render_person(fitter, rng, *size, rng.uniform(*heights), parts)
            landmarks, result = both.run(r.image, i, f"render_{i}")
            found.append((r.height_px, landmarks is not None, result is not None))
            if landmarks is not None and result is not None:
                err_fit.append(keypoint_error_percent(result.keypoints_2d, r.keypoints_2d))
                err_bare.append(keypoint_error_percent(landmarks, r.keypoints_2d))
    drawn = [h for h, _, _ in found]
    return {"cases": cases, "height_px": (min(drawn), max(drawn)), "found": found,
            "mediapipe": sum(m for _, m, _ in found), "holocap": sum(o for _, _, o in found),
            "error_fit": float(np.median(err_fit)) if err_fit else float("nan"),
            "error_mediapipe": float(np.median(err_bare)) if err_bare else float("nan")}


def report_lines(photos: dict[str, Any], renders: dict[str, Any], small: dict[str, Any] | None = None) -> list[str]:
    lines = []
    if photos:
        ours = sum(r["holocap"] for r in photos.values())
        bare = sum(r["mediapipe"] for r in photos.values())
        missed = [k for k, r in photos.items() if r["mediapipe"] and not r["holocap"]]
        lines.append(f"Bodies on the shared photos (full size, photo path): holocap {ours} of {len(photos)}, "
                     f"bare mediapipe pose (static mode) {bare}; missed where mediapipe finds one: "
                     f"{', '.join(missed) if missed else 'none'} (goal: ≥ 7 of 8).")
    if renders:
        r = renders
        lines.append(f"Person renders with known keypoints ({r['cases']}, 1280x720 and 720x1280, "
                     f"{r['height_px'][0]:.0f}-{r['height_px'][1]:.0f} px tall): found by holocap "
                     f"{r['holocap']}, by bare mediapipe {r['mediapipe']}; median COCO-17 error, % of "
                     f"height: fitted body {r['error_fit']:.2f}, mediapipe's landmarks "
                     f"{r['error_mediapipe']:.2f} (goal: fitted ≤ mediapipe). The truth is Anny's COCO "
                     f"regressor, the definition the fitted keypoints use: mediapipe's gap to it (ears, "
                     f"hips) counts against mediapipe here, so this favours the fit.")
    if small:
        lines.append(f"Small and far people ({small['cases']} renders, {small['height_px'][0]:.0f}-"
                     f"{small['height_px'][1]:.0f} px tall in 1280x720 / 720x1280; tiled search): found by "
                     f"holocap {small['holocap']}, by bare mediapipe {small['mediapipe']}.")
    return lines
