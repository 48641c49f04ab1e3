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
        w, h = self._fitted_size(text, viewport, 0.9)
        self._quad.draw(self._texture(text), (-w, -h, w, h), tint=color)

    def draw_bottom_left(self, text: str, viewport: Rect, color: tuple[float, float, float] = (0.75, 0.75, 0.75),
                         scale: float = 0.6) -> None:
        """Draw `text` small, in the bottom-left corner of the current GL viewport."""
        w, h = self._fitted_size(text, viewport, 0.5, scale)
        self._quad.draw(self._texture(text), (-1.0, -1.0, -1.0 + 2 * w, -1.0 + 2 * h), tint=color)

    def _fitted_size(self, text: str, viewport: Rect, fill: float, scale: float = 1.0) -> tuple[float, float]:
        """Half width and half height in NDC of `text` drawn at `scale` of its natural pixel
        size, shrunk to at most `fill` of the viewport."""
        texture = self._texture(text)
        s = min(scale, fill * viewport.width / texture.width, fill * viewport.height / texture.height)
        return s * texture.width / viewport.width, s * texture.height / viewport.height

    def close(self) -> None:
        for texture in self._textures.values():
            texture.close()
        self._textures.clear()
