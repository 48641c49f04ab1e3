"""Parity of the 3DDFA_V2 regressor with the official code's outputs (../shared golden data).

Tolerances (from the issue): ROI <= 1e-3 px; each of the 62 de-normalised parameters
<= 1e-4 x that parameter's std; raw outputs <= 1e-4 (they are in std units); the 120x120
network input equal to the official one within 1 grey level. Measured here (torch 2.13 CPU,
1 thread): ROI 0 px, crop 0 grey levels, params 1.3e-6 std, raw 1.1e-6.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from engine.face.roi import network_crop, round_roi
from engine.face.tddfa import load_regressor
from engine.nets.mobilenet_v1 import MobileNetV1, read_checkpoint

REF = "reference/3ddfa_v2"
ROI_TOL_PX = 1e-3
PARAM_TOL_STD = 1e-4
CROP_TOL_GREY = 1


@pytest.fixture(scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def regressor(shared_file, one_thread, test_device):
    return load_regressor(shared_file(f"{REF}/assets/mb05_120x120.pth"),
                          shared_file(f"{REF}/assets/param_mean_std_62d_120x120.pkl"), device=test_device)


@pytest.fixture(scope="module")
def golden(shared_file):
    records = json.loads(shared_file(f"{REF}/golden.json").read_text())
    assert len(records) >= 20
    return records


def _image(shared_file, name: str) -> np.ndarray:
    image = cv2.imread(str(shared_file(f"{REF}/{name}")), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def test_architecture_matches_official_counts(shared_file):
    state = read_checkpoint(shared_file(f"{REF}/assets/mb05_120x120.pth"))
    assert not any(k.startswith(("module.", "fc_lm")) for k in state)
    counts = {w: sum(p.numel() for p in MobileNetV1(widen_factor=w).parameters()) for w in (0.5, 1.0)}
    assert counts == {0.5: 850_398, 1.0: 3_270_526}


def test_widen_factor_inferred_and_checked(shared_file, regressor):
    assert regressor.widen_factor == 0.5
    with pytest.raises(ValueError, match="widen_factor"):
        load_regressor(shared_file(f"{REF}/assets/mb05_120x120.pth"),
                       shared_file(f"{REF}/assets/param_mean_std_62d_120x120.pkl"), widen_factor=1.0)


def test_every_golden_record_matches(shared_file, regressor, golden):
    std = regressor.stats.std.astype(np.float64)
    worst = {"roi": 0.0, "crop": 0, "param_std": 0.0, "raw": 0.0}
    for rec in golden:
        image = _image(shared_file, f"images/{rec['image']}")
        assert list(image.shape[:2]) == rec["image_hw"]
        box = np.asarray(rec["box"], np.float32)

        roi, params = regressor(image, box)
        worst["roi"] = max(worst["roi"], float(np.abs(roi - rec["roi_box"]).max()))
        assert list(round_roi(roi)) == rec["roi_box_int"], rec["image"]

        crop = network_crop(image, roi)
        official_crop = _image(shared_file, rec["crop_120_png"])
        worst["crop"] = max(worst["crop"], int(np.abs(crop.astype(int) - official_crop).max()))

        regression = regressor.regress_roi(image, roi)
        np.testing.assert_array_equal(regression.params, params)
        worst["raw"] = max(worst["raw"], float(np.abs(regression.raw - rec["raw_62"]).max()))
        worst["param_std"] = max(worst["param_std"], float((np.abs(params - rec["param_62"]) / std).max()))

    print(f"max differences over {len(golden)} records: {worst}")
    assert worst["roi"] <= ROI_TOL_PX
    assert worst["crop"] <= CROP_TOL_GREY
    assert worst["raw"] <= PARAM_TOL_STD
    assert worst["param_std"] <= PARAM_TOL_STD


def test_golden_includes_border_crops(golden):
    # The cut images must exercise the zero padding, or the test above proves less than it says.
    assert any(min(rec["roi_box_int"][:2]) < 0 for rec in golden)
