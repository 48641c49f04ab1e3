"""HMR regressor in SPIN's layout (Kanazawa et al. 2018; Kolotouros et al. 2019), its input
crop and its camera.

Network: ResNet-50 trunk -> 7x7 average pool (2048) -> iterative error feedback: three
times, [feature, pose 144 (24 x 6D), shape 10, cam 3] -> fc1 1024 -> dropout -> fc2 1024
-> dropout -> residual updates of pose/shape/cam, starting from the mean-parameter
buffers init_pose/init_shape/init_cam. No nonlinearity between fc1 and fc2 (as SPIN).
The state_dict keys are SPIN's, so `{'model': state_dict}` checkpoints load strictly.

Crop (SPIN): a square of side 200 * scale pixels around `center`, resized to 224 x 224,
RGB / 255, ImageNet mean/std. Pixel coordinates here put pixel centres at i + 0.5 (the
image spans [0, W] x [0, H], as mediapipe's landmarks and PinholeCamera do).

Camera: the network predicts a weak perspective (s, tx, ty): a model point X maps to the
crop's normalised coordinates s * (X_xy + (tx, ty)) in [-1, 1]. `crop_translation` gives
SPIN's equivalent perspective translation for focal 5000 in crop pixels;
`image_translation` the one for the real camera of the full image (see its docstring).
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from engine.body.rotations import rot6d_to_rotmat
from engine.nets.resnet import ResNet

log = logging.getLogger(__name__)

CROP_RES = 224
BOX_UNIT_PX = 200.0  # SPIN's scale is the box side in units of 200 pixels
CROP_FOCAL_PX = 5000.0  # SPIN's focal length for the 224 px crop
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB
IMAGENET_STD = (0.229, 0.224, 0.225)
NUM_JOINTS = 24
POSE_6D = NUM_JOINTS * 6
NUM_BETAS = 10


class Hmr(ResNet):
    """HMR/SPIN regressor. Call on (B, 3, 224, 224) normalised RGB images; returns
    (rotmat (B, 24, 3, 3) local SMPL joint rotations, betas (B, 10), cam (B, 3) = (s, tx, ty)).

    mean_pose: (144,) 6D mean pose; mean_shape: (10,); mean_cam: (3,).
    """

    def __init__(self, mean_pose: np.ndarray, mean_shape: np.ndarray, mean_cam: np.ndarray, n_iter: int = 3) -> None:
        super().__init__((3, 4, 6, 3))
        self.n_iter = n_iter
        feat = self.feature_channels
        self.avgpool = nn.AvgPool2d(7, stride=1)
        self.fc1 = nn.Linear(feat + POSE_6D + NUM_BETAS + 3, 1024)
        self.drop1 = nn.Dropout()
        self.fc2 = nn.Linear(1024, 1024)
        self.drop2 = nn.Dropout()
        self.decpose = nn.Linear(1024, POSE_6D)
        self.decshape = nn.Linear(1024, NUM_BETAS)
        self.deccam = nn.Linear(1024, 3)
        self.register_buffer("init_pose", torch.as_tensor(mean_pose, dtype=torch.float32).reshape(1, POSE_6D))
        self.register_buffer("init_shape", torch.as_tensor(mean_shape, dtype=torch.float32).reshape(1, NUM_BETAS))
        self.register_buffer("init_cam", torch.as_tensor(mean_cam, dtype=torch.float32).reshape(1, 3))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 224, 224) -> (B, 2048) pooled ResNet feature."""
        return self.avgpool(self.forward_features(images)).flatten(1)

    def regress(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Iterative error feedback from the mean parameters: (B, 2048) -> 6D pose (B, 144),
        betas (B, 10), cam (B, 3)."""
        batch = feature.shape[0]
        pose = self.init_pose.expand(batch, -1)
        shape = self.init_shape.expand(batch, -1)
        cam = self.init_cam.expand(batch, -1)
        for _ in range(self.n_iter):
            h = self.drop1(self.fc1(torch.cat((feature, pose, shape, cam), dim=1)))
            h = self.drop2(self.fc2(h))
            pose = pose + self.decpose(h)
            shape = shape + self.decshape(h)
            cam = cam + self.deccam(h)
        return pose, shape, cam

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pose6d, betas, cam = self.regress(self.features(images))
        rotmat = rot6d_to_rotmat(pose6d.reshape(-1, NUM_JOINTS, 6))
        return rotmat, betas, cam


def load_mean_params(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SPIN's smpl_mean_params.npz -> (pose (144,), shape (10,), cam (3,)) float32."""
    with np.load(path, allow_pickle=False) as z:
        missing = {"pose", "shape", "cam"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not SPIN mean parameters, missing {sorted(missing)}")
        pose, shape, cam = (np.asarray(z[k], np.float32).reshape(-1) for k in ("pose", "shape", "cam"))
    if pose.shape != (POSE_6D,) or shape.shape != (NUM_BETAS,) or cam.shape != (3,):
        raise ValueError(f"{path}: mean parameter shapes {pose.shape}, {shape.shape}, {cam.shape}")
    return pose, shape, cam


def _numpy_array_globals() -> list[type | object]:
    """What a pickled numpy array of a numeric dtype needs: data, not code. SPIN's training
    checkpoints may hold one (the saver's `dataset_perm`) beside the weights."""
    from numpy.core.multiarray import _reconstruct

    dtypes = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
              np.float16, np.float32, np.float64)
    return [_reconstruct, np.ndarray, np.dtype, *{type(np.dtype(t)) for t in dtypes}]


def _state_dict_from_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    # weights_only: a downloaded file must not run code; only tensors, containers, numbers
    # and plain numpy arrays are accepted.
    with torch.serialization.safe_globals(_numpy_array_globals()):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected {{'model': state_dict}} (SPIN checkpoint)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_hmr(checkpoint_path: str | Path, mean_params_path: str | Path,
             device: str | torch.device = "cpu") -> Hmr:
    """Build the HMR regressor from SPIN's mean parameters and load SPIN's checkpoint
    (strictly: every key must match). Returns the module in eval mode on `device`."""
    model = Hmr(*load_mean_params(mean_params_path))
    state = _state_dict_from_checkpoint(Path(checkpoint_path))
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{checkpoint_path}: not an HMR/SPIN checkpoint "
                         f"(missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]})")
    log.info("HMR/SPIN regressor loaded from %s", Path(checkpoint_path).name)
    return model.to(device).eval()


# ---------------------------------------------------------------- crop and normalisation

def box_from_landmarks(points: np.ndarray, visibility: np.ndarray | None = None, min_visibility: float = 0.5,
                       rescale: float = 1.2) -> tuple[np.ndarray, float] | None:
    """Person box from 2D keypoints, SPIN style: side = largest extent of the visible points
    times `rescale`, scale = side / 200.

    points: (N, 2+) pixels; visibility: (N,) in [0, 1] or None (all visible).
    Returns (center (2,) float64 pixels, scale) or None with fewer than 2 visible points.
    Centre: the middle of the points' bounding box (SPIN uses the keypoints' mean, which
    mediapipe's 11 face points would pull towards the head).
    """
    pts = np.asarray(points, np.float64)[:, :2]
    keep = np.isfinite(pts).all(axis=1)
    if visibility is not None:
        keep &= np.asarray(visibility) >= min_visibility
    pts = pts[keep]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float((hi - lo).max()) * rescale
    if side <= 1.0:
        return None
    return (lo + hi) / 2, side / BOX_UNIT_PX


def box_from_xyxy(box: np.ndarray, rescale: float = 1.2) -> tuple[np.ndarray, float]:
    """(4,) x1, y1, x2, y2 pixels -> (center (2,), scale) of the enclosing square times `rescale`."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), max(x2 - x1, y2 - y1) * rescale / BOX_UNIT_PX


def crop_affine(center: np.ndarray, scale: float, res: int = CROP_RES) -> np.ndarray:
    """(2, 3) affine from image pixels to crop pixels (both with pixel centres at i + 0.5):
    q = (p - center) * res / (200 * scale) + res / 2."""
    k = res / (BOX_UNIT_PX * scale)
    return np.array([[k, 0.0, res / 2 - k * center[0]], [0.0, k, res / 2 - k * center[1]]])


def crop_image(image: np.ndarray, center: np.ndarray, scale: float, res: int = CROP_RES) -> np.ndarray:
    """Cut SPIN's square crop: image (H, W, 3) uint8 -> (res, res, 3) uint8, same channel
    order, bilinear, zeros outside the image. A continuous affine replaces SPIN's
    integer-rounded cut + resize (sub-pixel differences only)."""
    m = crop_affine(center, scale, res)
    # warpAffine puts pixel centres at integers: shift both sides by half a pixel.
    m_cv = m.copy()
    m_cv[:, 2] += m[:, :2].sum(axis=1) * 0.5 - 0.5
    return cv2.warpAffine(image, m_cv, (res, res), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> ImageNet-normalised network input."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
    return (images - mean) / std


def crops_to_input(crops_bgr: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """(B, res, res, 3) uint8 BGR crops -> (B, 3, res, res) float32 normalised RGB on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(crops_bgr[..., ::-1])).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return normalize_imagenet(x)


# ---------------------------------------------------------------- camera

def crop_translation(cam: np.ndarray, focal: float = CROP_FOCAL_PX, res: int = CROP_RES) -> np.ndarray:
    """SPIN's perspective translation for the crop camera (focal `focal`, principal point at
    the crop centre): cam (..., 3) = (s, tx, ty) -> (..., 3) = (tx, ty, 2 f / (res s + 1e-9))."""
    cam = np.asarray(cam, np.float64)
    tz = 2 * focal / (res * cam[..., 0] + 1e-9)
    return np.stack((cam[..., 1], cam[..., 2], tz), axis=-1)


def image_translation(cam: np.ndarray, center: np.ndarray, scale: float, focal_px: float,
                      principal_px: np.ndarray) -> np.ndarray:
    """Translation that places the model in the full image's perspective camera.

    The weak perspective maps a model point X to image pixels
        p = center + s * (X_xy + t) * b / 2,    b = 200 * scale (crop side in pixels).
    A pinhole camera (focal F, principal point c) maps X + T to c + F (X_xy + T_xy) / (Z + T_z).
    Matching both for points at depth Z = 0 gives
        T_z = 2 F / (b s),   T_xy = t + (center - c) * T_z / F,
    so the projection agrees exactly at the model's depth origin and differs only by the
    perspective effect of the body's own depth (SPIN's crop camera makes the same
    approximation with F = 5000 px for a 224 px crop).
    cam: (..., 3) = (s, tx, ty). Returns (..., 3) float64, camera space (x right, y down,
    z forward), in the model's units (metres for SMPL).
    """
    cam = np.asarray(cam, np.float64)
    box = BOX_UNIT_PX * scale
    tz = 2 * focal_px / (box * cam[..., 0] + 1e-9)
    offset = (np.asarray(center, np.float64) - np.asarray(principal_px, np.float64)) / focal_px
    txy = cam[..., 1:3] + offset * tz[..., None]
    return np.concatenate((txy, tz[..., None]), axis=-1)
