"""Draws short text labels (placeholders such as "face stage off") in GL.

Text is rasterised once per distinct string with OpenCV's Hershey font into a grey mask
texture, then drawn as a tinted quad; labels repeat from frame to frame, so they are cached.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.render.drawers.quad import QuadDrawer
from engine.render.gl_objects import DynamicTexture
from engine.render.transforms import Rect

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_MAX_CACHED = 16


def rasterize_text(text: str, scale: float = 0.7, thickness: int = 2) -> np.ndarray:
    """(H, W) uint8 mask of `text` (lines split on newlines, centred), 255 = ink."""
    lines = text.split("\n") or [""]
    sizes = [cv2.getTextSize(line, _FONT, scale, thickness) for line in lines]
    line_h = max(h + base for (_, h), base in sizes) + 8
    width = max(w for (w, _), _ in sizes) + 16
    mask = np.zeros((line_h * len(lines) + 8, width), np.uint8)
    for i, (line, ((w, h), _)) in enumerate(zip(lines, sizes)):
        origin = ((width - w) // 2, 4 + i * line_h + h + 4)
        cv2.putText(mask, line, origin, _FONT, scale, 255, thickness, cv2.LINE_AA)
    return mask


class TextDrawer:
    """Text labels centred in a viewport, at their natural pixel size (shrunk to fit)."""

    def __init__(self, quad: QuadDrawer) -> None:
        self._quad = quad
        self._textures: dict[str, DynamicTexture] = {}

    def _texture(self, text: str) -> DynamicTexture:
        texture = self._textures.pop(text, None)
        if texture is None:
            if len(self._textures) >= _MAX_CACHED:
                oldest = next(iter(self._textures))
                self._textures.pop(oldest).close()
            texture = DynamicTexture()
            texture.upload(rasterize_text(text))
        self._textures[text] = texture  # re-insert: most recently used last
        return texture

    def draw_centered(self, text: str, viewport: Rect, color: tuple[float, float, float] = (0.9, 0.9, 0.9)) -> None:
        """Draw `text` centred in the current GL viewport, whose size is `viewport`."""
        texture = self._texture(text)
        scale = min(1.0, 0.9 * viewport.width / texture.width, 0.9 * viewport.height / texture.height)
        half_w = scale * texture.width / viewport.width
        half_h = scale * texture.height / viewport.height
        self._quad.draw(texture, (-half_w, -half_h, half_w, half_h), tint=color)

    def close(self) -> None:
        for texture in self._textures.values():
            texture.close()
        self._textures.clear()
