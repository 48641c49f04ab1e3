"""The measures behind `bench quality`: PSNR over a region, crack pixels (thin background gaps
inside a silhouette, not its real openings), and the fitted person's part of a person mask."""
from __future__ import annotations

import numpy as np

from engine.bench.quality import crack_pixels, person_region, psnr_db

MAGENTA_BGR = (255, 0, 255)


def test_psnr_over_a_region_only():
    frame = np.full((40, 40, 3), 100, np.uint8)
    rendered = frame.copy()
    rendered[:, 20:] = 110  # off by 10 on the right half only
    left = np.zeros((40, 40), bool)
    left[:, :20] = True
    assert psnr_db(rendered, frame, left) == 99.0
    right = ~left
    assert abs(psnr_db(rendered, frame, right) - 10 * np.log10(255 ** 2 / 100)) < 1e-9
    assert psnr_db(rendered, frame, np.zeros((40, 40), bool)) is None


def test_cracks_are_thin_gaps_inside_the_silhouette_not_openings_or_background():
    image = np.zeros((100, 100, 3), np.uint8)
    image[:] = MAGENTA_BGR
    image[20:80, 20:80] = (120, 130, 140)  # the mesh
    assert crack_pixels(image) == 0
    image[50, 25:75] = MAGENTA_BGR  # a 1-pixel crack across it
    image[30:40, 30:40] = MAGENTA_BGR  # a real 10x10 opening (between an arm and the body)
    assert crack_pixels(image) == 50


def test_person_region_keeps_the_pieces_the_fit_covers():
    mask = np.zeros((50, 100), bool)
    mask[10:40, 5:30] = True  # the fitted person
    mask[10:40, 60:90] = True  # someone else
    covered = np.zeros_like(mask)
    covered[12:38, 8:28] = True
    region = person_region(mask, covered)
    assert region[20, 10] and not region[20, 70]


def test_surface_cracks_count_background_only_where_the_triangles_cover():
    from engine.bench.quality import surface_cracks

    image = np.zeros((60, 60, 3), np.uint8)
    image[:] = MAGENTA_BGR
    image[10:50, 10:50] = (120, 130, 140)
    covered = np.zeros((60, 60), bool)
    covered[10:50, 10:50] = True
    assert surface_cracks(image, covered) == 0
    image[30, 15:45] = MAGENTA_BGR  # background through the surface: a crack
    image[20:24, 40:50] = MAGENTA_BGR  # an opening the triangles do not cover: not a crack
    covered[20:24, 40:50] = False
    assert surface_cracks(image, covered) == 30
