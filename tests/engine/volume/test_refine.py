"""A view refined past its lattice: its colours asked of the colour field per fine pixel."""
from __future__ import annotations

import numpy as np
import torch

from engine.volume import fields
from engine.volume.render import render_view

LATTICE = (17, 33)
FINE = 264  # 8 fine pixels per ray


def test_the_refined_colour_is_the_colour_field_at_each_fine_pixel():
    """Stripes four fine pixels wide on one sphere: the lattice (one ray per 8 pixels)
    cannot hold them; the refined view shows each."""
    sphere = fields.sphere_field(0.7, eps=2.0 / 257)

    def stripes(points: torch.Tensor) -> torch.Tensor:
        on = (torch.floor((points[:, 0] + 1.0) * FINE / 8.0) % 2).to(torch.float32)
        return torch.stack((on, on, on), dim=1)

    view = render_view(sphere, stripes, 0.0, 0.0, resolutions=LATTICE, mode="lossless", color_size=FINE)
    assert view.color.shape == (FINE, FINE, 3) and view.stats["color_px"] == FINE
    c = np.arange(FINE)
    want = ((c // 4) % 2).astype(np.float32)
    row = FINE // 2
    inside = view.mask[row] & (np.abs(c + 0.5 - FINE / 2) < 0.6 * FINE / 2)
    assert np.mean(np.abs(view.color[row, inside, 0] - want[inside]) < 0.5) > 0.95
