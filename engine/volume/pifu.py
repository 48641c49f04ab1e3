"""PIFu / MonoPort pixel-aligned implicit functions: networks, checkpoint loading, field adapter.

netG (occupancy): HGFilter image features, sampled at each point's orthographic projection,
plus a normalised depth feature, through an MLP with skip inputs and a sigmoid; zero where
the point projects outside the image. netC (colour): its own ResNet features concatenated
with netG's last-stack features, plus depth, through an MLP ending in tanh.

Point layout follows PIFu: points (B, 3, N), calib (B, 4, 4); the projection is
xyz = calib[:3, :3] @ p + calib[:3, 3], with image coordinates xy in [-1, 1] (x right,
y down) and depth z. In-the-wild PIFu uses calib = diag(1, -1, 1, 1): PIFu's world has
y up and z towards the camera. `PifuField` turns a filtered image into functions of our
cube coordinates (x right, y down, z away from the camera) for localize/render.

Checkpoint layouts accepted by `load_pifu`: PIFu `net_G` / `net_C` state_dicts
(`surface_classifier.convN`), and MonoPort `{'net': state_dict}` (`surface_classifier.filters.N`),
optionally with a DataParallel `module.` prefix.
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.nets.hourglass import HGFilter
from engine.nets.resblk import ResnetFilter

log = logging.getLogger(__name__)

LOAD_SIZE = 512
Z_SIZE = 200.0
MLP_G = (257, 1024, 512, 256, 128, 1)
MLP_C = (513, 1024, 512, 256, 128, 3)
# In-the-wild calibration of PIFu's apps/eval.py: orthographic, image y = -world y (diagonal).
CALIB_WILD_DIAG = (1.0, -1.0, 1.0, 1.0)
# Our cube (x right, y down, z away) -> PIFu world (x right, y up, z towards the camera):
# a half turn about x (diagonal of the homogeneous 4x4).
PIFU_FROM_CUBE_DIAG = (1.0, -1.0, -1.0, 1.0)


def calib_wild() -> torch.Tensor:
    """(4, 4) float32 in-the-wild PIFu calibration diag(1, -1, 1, 1)."""
    return torch.diag(torch.tensor(CALIB_WILD_DIAG))


def pifu_from_cube() -> torch.Tensor:
    """(4, 4) float32 map from cube points to PIFu world points, diag(1, -1, -1, 1)."""
    return torch.diag(torch.tensor(PIFU_FROM_CUBE_DIAG))


# ---------------------------------------------------------------- point features (free functions)

def project_orthogonal(points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
    """points (B, 3, N), calib (B, 4, 4) -> (B, 3, N): calib[:3, :3] @ p + calib[:3, 3]."""
    return torch.baddbmm(calib[:, :3, 3:4], calib[:, :3, :3], points)


def sample_features(feat: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear feature lookup. feat (B, C, H, W), xy (B, 2, N) in [-1, 1] (align_corners=True,
    zeros outside) -> (B, C, N)."""
    grid = xy.transpose(1, 2).unsqueeze(2)  # (B, N, 1, 2)
    return F.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[..., 0]


def depth_feature(z: torch.Tensor, load_size: int = LOAD_SIZE, z_size: float = Z_SIZE) -> torch.Tensor:
    """PIFu's DepthNormalizer: z * (load_size // 2) / z_size."""
    return z * (load_size // 2) / z_size


def in_image(xy: torch.Tensor) -> torch.Tensor:
    """(B, 2, N) -> (B, 1, N) float, 1 where -1 <= x, y <= 1."""
    inside = (xy[:, 0] >= -1.0) & (xy[:, 0] <= 1.0) & (xy[:, 1] >= -1.0) & (xy[:, 1] <= 1.0)
    return inside[:, None].to(xy.dtype)


# ---------------------------------------------------------------- networks

class SurfaceClassifier(nn.Module):
    """Conv1d (k=1) MLP; every layer after the first sees cat(previous, input feature);
    leaky_relu(0.01) between layers; no final activation (callers apply sigmoid / tanh).
    Layers live in `filters` (MonoPort's names); PIFu's conv0..N are renamed on load."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        c0 = channels[0]
        self.filters = nn.ModuleList(
            nn.Conv1d(channels[i] + (c0 if i > 0 else 0), channels[i + 1], 1) for i in range(len(channels) - 1))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """feature (B, C0, N) -> (B, C_last, N) pre-activation output."""
        y = feature
        last = len(self.filters) - 1
        for i, layer in enumerate(self.filters):
            y = layer(y if i == 0 else torch.cat((y, feature), dim=1))
            if i != last:
                y = F.leaky_relu(y, 0.01)
        return y


class HGPIFu(nn.Module):
    """PIFu netG / MonoPortNet: HGFilter (4 stacks, depth-2 hourglasses) + SurfaceClassifier."""

    def __init__(self, num_stack: int = 4, hg_depth: int = 2, hg_dim: int = 256, mlp: Sequence[int] = MLP_G):
        super().__init__()
        self.image_filter = HGFilter(num_stack, hg_depth, hg_dim)
        self.surface_classifier = SurfaceClassifier(mlp)

    def filter(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, 512, 512) -> last-stack feature (B, hg_dim, 128, 128) (what PIFu keeps at test time)."""
        return self.image_filter(images, last_only=True)[-1]

    def logits(self, feat: torch.Tensor, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output (B, 1, N) at points (B, 3, N); no in-image mask."""
        xyz = project_orthogonal(points, calib)
        f = torch.cat((sample_features(feat, xyz[:, :2]), depth_feature(xyz[:, 2:3])), dim=1)
        return self.surface_classifier(f)

    def query(self, feat: torch.Tensor, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """Occupancy (B, 1, N) in [0, 1], exactly 0 where the point projects outside the image."""
        xy = project_orthogonal(points, calib)[:, :2]
        return in_image(xy) * torch.sigmoid(self.logits(feat, points, calib))


class ResBlkPIFu(nn.Module):
    """PIFu netC: ResnetFilter (6 blocks) + SurfaceClassifier on cat(netG feature, own feature, z)."""

    def __init__(self, mlp: Sequence[int] = MLP_C):
        super().__init__()
        self.image_filter = ResnetFilter()
        self.surface_classifier = SurfaceClassifier(mlp)

    def filter(self, images: torch.Tensor, feat_g: torch.Tensor) -> torch.Tensor:
        """images (B, 3, 512, 512), netG's last-stack feature (B, 256, 128, 128) -> (B, 512, 128, 128)."""
        return torch.cat((feat_g, self.image_filter(images)), dim=1)

    def logits(self, feat: torch.Tensor, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        xyz = project_orthogonal(points, calib)
        f = torch.cat((sample_features(feat, xyz[:, :2]), depth_feature(xyz[:, 2:3])), dim=1)
        return self.surface_classifier(f)

    def query(self, feat: torch.Tensor, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """Raw colour (B, 3, N) in [-1, 1] (tanh; RGB = 0.5 x + 0.5). No in-image mask."""
        return torch.tanh(self.logits(feat, points, calib))


# ---------------------------------------------------------------- checkpoints

def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a PIFu state_dict or a MonoPort {'net': state_dict} checkpoint and normalise its keys
    to this module's names (`module.` prefixes dropped, `surface_classifier.convN` -> `filters.N`)."""
    try:
        # weights_only: a downloaded or imported file never gets to run code while loading.
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path}: holds objects other than tensors (e.g. a MonoPort trainer's options); "
                         f"save only its state_dict, torch.save({{'net': ckpt['net']}}, path): {exc}") from exc
    if isinstance(obj, Mapping) and "net" in obj and isinstance(obj["net"], Mapping):
        obj = obj["net"]
    elif isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: not a PIFu/MonoPort checkpoint (got {type(obj).__name__})")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        k = key.removeprefix("module.")
        if k.startswith("surface_classifier.conv"):
            k = "surface_classifier.filters." + k.removeprefix("surface_classifier.conv")
        out[k] = value
    return out


def _load_module(module: nn.Module, path: str | Path) -> nn.Module:
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: checkpoint does not match {type(module).__name__}: {exc}") from exc
    return module.eval()


def load_color_net(path: str | Path) -> nn.Module:
    """PIFu's netC alone (strict keys and shapes), e.g. to check an installed file."""
    return _load_module(ResBlkPIFu(), path)


@dataclass
class PifuFeatures:
    """Filtered image features. g: (B, 256, 128, 128) netG last stack; c: (B, 512, 128, 128) or None."""

    g: torch.Tensor
    c: torch.Tensor | None = None


class PifuModel:
    """netG (+ optional netC) with PIFu's filter-then-query interface.

    `filter(images)` stores the features of a (B, 3, 512, 512) batch; `query` and
    `query_color` then evaluate points (B, 3, N) under calib (B, 4, 4). Inference only
    (torch.inference_mode); device fixed at construction.
    """

    def __init__(self, net_g: HGPIFu, net_c: ResBlkPIFu | None = None, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.net_g = net_g.to(self.device).eval()
        self.net_c = net_c.to(self.device).eval() if net_c is not None else None
        self.features: PifuFeatures | None = None

    @property
    def has_color(self) -> bool:
        return self.net_c is not None

    @torch.inference_mode()
    def filter(self, images: torch.Tensor) -> PifuFeatures:
        """images: (B, 3, 512, 512) float32 RGB in [-1, 1], already multiplied by the person mask."""
        images = images.to(self.device, torch.float32)
        g = self.net_g.filter(images)
        c = self.net_c.filter(images, g) if self.net_c is not None else None
        self.features = PifuFeatures(g, c)
        return self.features

    def _feat(self) -> PifuFeatures:
        if self.features is None:
            raise RuntimeError("PifuModel.query called before filter(images)")
        return self.features

    @torch.inference_mode()
    def query(self, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """points (B, 3, N), calib (B, 4, 4) -> occupancy (B, 1, N) in [0, 1]."""
        return self.net_g.query(self._feat().g, points.to(self.device), calib.to(self.device))

    @torch.inference_mode()
    def query_logits(self, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid netG output (B, 1, N), without the in-image mask."""
        return self.net_g.logits(self._feat().g, points.to(self.device), calib.to(self.device))

    @torch.inference_mode()
    def query_color_logits(self, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """Pre-tanh netC output (B, 3, N)."""
        return self._color_net().logits(self._feat().c, points.to(self.device), calib.to(self.device))

    def _color_net(self) -> ResBlkPIFu:
        if self.net_c is None or self._feat().c is None:
            raise RuntimeError("this PIFu model was loaded without a colour network (net_C)")
        return self.net_c

    @torch.inference_mode()
    def query_color(self, points: torch.Tensor, calib: torch.Tensor) -> torch.Tensor:
        """points (B, 3, N), calib (B, 4, 4) -> raw netC output (B, 3, N) in [-1, 1] (tanh)."""
        return self._color_net().query(self._feat().c, points.to(self.device), calib.to(self.device))


def load_pifu(net_g_path: str | Path, net_c_path: str | Path | None = None,
              device: torch.device | str = "cpu") -> PifuModel:
    """Build netG (and netC) and load official checkpoints (PIFu net_G / net_C, MonoPort {'net': ...})."""
    net_g = _load_module(HGPIFu(), net_g_path)
    net_c = _load_module(ResBlkPIFu(), net_c_path) if net_c_path is not None else None
    log.info("loaded PIFu netG from %s%s", net_g_path, f" and netC from {net_c_path}" if net_c_path else "")
    return PifuModel(net_g, net_c, device)


# ---------------------------------------------------------------- input image and field adapter

def image_tensor(rgb: np.ndarray, mask: np.ndarray | None = None) -> torch.Tensor:
    """(512, 512, 3) uint8 RGB and optional (512, 512) mask (bool or 0..1) -> (1, 3, 512, 512)
    float32 in [-1, 1] times the mask, as PIFu's apps/eval.py prepares its input."""
    if rgb.shape[:2] != (LOAD_SIZE, LOAD_SIZE):
        raise ValueError(f"PIFu takes a {LOAD_SIZE}x{LOAD_SIZE} crop, got {rgb.shape[:2]}")
    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div(255.0)
    x = (x - 0.5) / 0.5
    if mask is not None:
        x = x * torch.from_numpy(np.asarray(mask, dtype=np.float32))[None]
    return x[None]


class PifuField:
    """A filtered PIFu image as functions of cube points for localize/render.

    occupancy(points (N, 3) float32, cube: x right, y down, z away) -> (N,) in [0, 1];
    color(points) -> (N, 3) RGB in [0, 1] (0.5 tanh + 0.5). Points are mapped to PIFu's
    world by pifu_from_cube() and projected with `calib` (default: in-the-wild diag(1, -1, 1, 1)),
    in chunks of `chunk` points (the MLP holds 1024 x chunk floats per layer).
    """

    def __init__(self, model: PifuModel, features: PifuFeatures, calib: torch.Tensor | None = None,
                 chunk: int = 1 << 15):
        self.model = model
        self.features = features
        self.chunk = chunk
        calib = calib_wild() if calib is None else calib.reshape(4, 4).float().cpu()
        self.calib = (calib @ pifu_from_cube())[None].to(model.device)

    @classmethod
    def from_image(cls, model: PifuModel, image: torch.Tensor, calib: torch.Tensor | None = None,
                   chunk: int = 1 << 15) -> "PifuField":
        """Filter a (1, 3, 512, 512) image (see image_tensor) and wrap its features."""
        return cls(model, model.filter(image), calib, chunk)

    @torch.inference_mode()
    def _run(self, net: nn.Module, feat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        pts = points.to(self.model.device, torch.float32)
        outs = [net.query(feat, pts[i:i + self.chunk].T[None], self.calib)[0].T
                for i in range(0, pts.shape[0], self.chunk)]
        return torch.cat(outs).to(points.device)

    def occupancy(self, points: torch.Tensor) -> torch.Tensor:
        return self._run(self.model.net_g, self.features.g, points)[:, 0]

    def color(self, points: torch.Tensor) -> torch.Tensor:
        if self.model.net_c is None or self.features.c is None:
            raise RuntimeError("this PIFu model was loaded without a colour network (net_C)")
        return self._run(self.model.net_c, self.features.c, points) * 0.5 + 0.5


def load_installed(name_g: str = "pifu-netg", name_c: str | None = "pifu-netc",
                   device: torch.device | str = "cpu") -> PifuModel | None:
    """Load PIFu from the installed weights (engine.weights), or None after logging why not."""
    try:
        from engine.weights.store import model_status
    except ImportError as exc:
        log.warning("weights store unavailable (%s): PIFu back-end disabled", exc)
        return None
    status_g = model_status(name_g)
    if status_g.state != "installed":
        log.warning("%s", status_g.message)
        return None
    net_c_path = None
    if name_c is not None:
        status_c = model_status(name_c)
        if status_c.state == "installed":
            net_c_path = status_c.paths["checkpoint"]
        else:
            log.warning("%s", status_c.message)
    return load_pifu(status_g.paths["checkpoint"], net_c_path, device)


__all__ = [
    "CALIB_WILD_DIAG", "PIFU_FROM_CUBE_DIAG", "calib_wild", "pifu_from_cube", "project_orthogonal", "sample_features", "depth_feature", "in_image",
    "SurfaceClassifier", "HGPIFu", "ResBlkPIFu", "read_state_dict", "PifuFeatures", "PifuModel",
    "load_pifu", "image_tensor", "PifuField", "load_installed",
]
