"""PointHMR ("Sampling is Matter", Kim et al. CVPR 2023): the point-guided body regressor,
in the official code's parameter layout.

Forward, for a (B, 3, 224, 224) ImageNet-normalised crop:
1. HRNet-W32 -> a 56x56 feature x (32 ch) and a 7x7 feature x2 (256 ch).
2. Heads on x: `heatmap_layer` gives one 56x56 heatmap per representative vertex (431),
   soft-maxed over the pixels; `feature_extract_layer` a 512-channel map plus a sine
   position code. Sampling is one batched matmul: each vertex's feature is its heatmap's
   expectation of the map. `grid_layer` turns x2 into 49 grid tokens; `cam_layer` mixes
   the 431 vertex features into one camera token.
3. Tokens [camera 1, grid 49, joints 14 (learned), vertices 431], each with a learned
   128-d position code appended (640-d), go through four pre-norm transformer encoders
   (2 layers each; 640-d twice, then reduced to 128-d) whose self-attention between
   vertex tokens is masked by mesh distance: 7, 5, 3 and 1 hops of the 431-vertex mesh in
   turn (camera, grid and joint tokens see and are seen by everything).
4. Linear heads give the weak-perspective camera (s, tx, ty) and 3D joints + coarse
   vertices; two fixed sparse upsamplings give 1,723 and 6,890 (SMPL) vertices.

The mesh arrays (the 431-vertex adjacency and the upsampling matrices) derive from SMPL and
are not part of the checkpoint: `load_mesh_arrays` reads them from the official files
(smpl_431_adjmat_*.pt, mesh_downsampling.npz). Output coordinates are METRO/SPIN's: x right,
y down, metres, root-relative; a model point X projects to crop coordinates s (X_xy + t).
"""
from __future__ import annotations

import io
import logging
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.nets.hrnet import HRNet, BasicBlock

log = logging.getLogger(__name__)

INPUT_RES = 224
NUM_JOINTS = 14
NUM_VERTICES = 431
MID_VERTICES = 1723
FULL_VERTICES = 6890
GRID_TOKENS = 49
MODEL_DIM = 512
POSITION_DIM = 128
REDUCED_DIM = 128
HEADS = 4
FEEDFORWARD = (1024, 512)
MASK_HOPS = (7, 5, 3, 1)  # transformer_1..4
NUM_TOKENS = 1 + GRID_TOKENS + NUM_JOINTS + NUM_VERTICES


class PointHmrOutput(NamedTuple):
    """cam (B, 3) = (s, tx, ty); joints (B, 14, 3); vertices at three resolutions (B, 431 |
    1723 | 6890, 3); heatmaps (B, 431, 112 * 112), the soft-maxed 2x-upsampled logits."""

    cam: torch.Tensor
    joints: torch.Tensor
    vertices_coarse: torch.Tensor
    vertices_mid: torch.Tensor
    vertices: torch.Tensor
    heatmaps: torch.Tensor


@dataclass(frozen=True)
class MeshArrays:
    """adjacency (431, 431) float32 (nonzero = mesh neighbour or self); upsample_mid (1723,
    431) and upsample_full (6890, 1723) as torch sparse COO float32."""

    adjacency: np.ndarray
    upsample_mid: torch.Tensor
    upsample_full: torch.Tensor


def attention_masks(adjacency: np.ndarray) -> dict[int, torch.Tensor]:
    """Additive attention masks (NUM_TOKENS, NUM_TOKENS) by hop count: 0 where attention
    is allowed, -inf where two vertex tokens are more than `hops` mesh edges apart. The
    reach grows one hop at a time as in the official code: R_1 = (A > 0),
    R_{k+1} = R_k or (R_k A > 0)."""
    step = torch.from_numpy(np.asarray(adjacency) > 0)
    reach = step.clone()
    masks = {}
    prefix = NUM_TOKENS - NUM_VERTICES
    for hops in range(1, max(MASK_HOPS) + 1):
        if hops > 1:
            reach = reach | ((reach.float() @ step.float()) > 0)
        if hops in MASK_HOPS:
            blocked = torch.zeros(NUM_TOKENS, NUM_TOKENS, dtype=torch.bool)
            blocked[prefix:, prefix:] = ~reach
            masks[hops] = torch.zeros(NUM_TOKENS, NUM_TOKENS).masked_fill_(blocked, -math.inf)
    return masks


def sine_position_code(height: int, width: int, channels: int = MODEL_DIM) -> torch.Tensor:
    """DETR's normalised sine code (1, channels, H, W): first half y, second half x, each
    alternating sin/cos over geometric frequencies (temperature 10000, scale 2 pi)."""
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32)[:, None].expand(height, width)
    x = torch.arange(1, width + 1, dtype=torch.float32)[None, :].expand(height, width)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    freq = torch.arange(half, dtype=torch.float32)
    freq = 10000 ** (2 * torch.div(freq, 2, rounding_mode="floor") / half)
    codes = []
    for grid in (y, x):
        p = grid[:, :, None] / freq
        codes.append(torch.stack((p[:, :, 0::2].sin(), p[:, :, 1::2].cos()), dim=3).flatten(2))
    return torch.cat(codes, dim=2).permute(2, 0, 1)[None]


def _head(cin: int, cout: int, blocks: int) -> nn.Sequential:
    """The official `_make_resnet_layer`: basic blocks then a 1x1 conv (no bias)."""
    return nn.Sequential(BasicBlock(cin, cout), *(BasicBlock(cout, cout) for _ in range(blocks - 1)),
                         nn.Conv2d(cout, cout, 1, bias=False))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(norm1 x), then + MLP(norm2 x) (ReLU)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.linear2(F.relu(self.linear1(self.norm2(x))))


class Encoder(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, layers: int = 2, final_norm: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(dim) if final_norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return x if self.norm is None else self.norm(x)


class MeshRegressor(nn.Module):
    """Masked transformer over the 495 tokens -> camera, joints, vertices (three levels)."""

    def __init__(self, mesh: MeshArrays) -> None:
        super().__init__()
        wide = MODEL_DIM + POSITION_DIM
        self.transformer_1 = Encoder(wide, HEADS, FEEDFORWARD[0])
        self.transformer_2 = Encoder(wide, HEADS, FEEDFORWARD[0], final_norm=True)
        self.transformer_3 = Encoder(REDUCED_DIM, HEADS, FEEDFORWARD[1])
        self.transformer_4 = Encoder(REDUCED_DIM, HEADS, FEEDFORWARD[1], final_norm=True)
        self.dim_reduce = nn.Linear(wide, REDUCED_DIM)
        self.xyz_regressor = nn.Linear(REDUCED_DIM, 3)
        self.cam_predictor = nn.Linear(REDUCED_DIM, 3)
        # Not in the checkpoint: built once from the mesh arrays.
        for hops, mask in attention_masks(mesh.adjacency).items():
            self.register_buffer(f"mask_{hops}", mask, persistent=False)
        self.register_buffer("upsample_mid", mesh.upsample_mid.coalesce(), persistent=False)
        self.register_buffer("upsample_full", mesh.upsample_full.coalesce(), persistent=False)

    def upsample(self, matrix: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """(B, N, 3) -> (B, M, 3) by one sparse product for the whole batch."""
        batch, n, _ = vertices.shape
        flat = vertices.permute(1, 0, 2).reshape(n, batch * 3)
        return torch.sparse.mm(matrix, flat).reshape(-1, batch, 3).permute(1, 0, 2)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.transformer_2(self.transformer_1(tokens, self.mask_7), self.mask_5)
        x = self.dim_reduce(x)
        x = self.transformer_4(self.transformer_3(x, self.mask_3), self.mask_1)
        cam = self.cam_predictor(x[:, 0])
        xyz = self.xyz_regressor(x[:, 1 + GRID_TOKENS:])
        joints, coarse = xyz[:, :NUM_JOINTS], xyz[:, NUM_JOINTS:]
        mid = self.upsample(self.upsample_mid, coarse)
        return cam, joints, coarse, mid, self.upsample(self.upsample_full, mid)


class PointHmr(nn.Module):
    """The PointHMR network; its state_dict keys and shapes are the official model's."""

    def __init__(self, mesh: MeshArrays) -> None:
        super().__init__()
        self.backbone = HRNet()
        channels = self.backbone.backbone_channels
        self.feature_extract_layer = _head(channels, MODEL_DIM, 2)
        self.heatmap_layer = _head(channels, NUM_VERTICES, 2)
        self.grid_layer = _head(channels * 8, MODEL_DIM, 1)
        self.cam_layer = nn.Linear(NUM_VERTICES, 1)
        # cam_token_embed and vertex_token_embed are in the official model but unused by its
        # forward; they are kept so that its checkpoints load strictly.
        self.cam_token_embed = nn.Embedding(1, MODEL_DIM)
        self.joint_token_embed = nn.Embedding(NUM_JOINTS, MODEL_DIM)
        self.vertex_token_embed = nn.Embedding(NUM_VERTICES, MODEL_DIM)
        self.token_position_embed = nn.Embedding(NUM_TOKENS, POSITION_DIM)
        self.transformer = MeshRegressor(mesh)
        side = INPUT_RES // 4
        self.register_buffer("fine_position", sine_position_code(side, side).flatten(2), persistent=False)
        self.register_buffer("grid_position", sine_position_code(side // 8, side // 8).flatten(2), persistent=False)

    def _positions(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        if (h, w) == (INPUT_RES // 4,) * 2:
            return self.fine_position, self.grid_position
        device = self.fine_position.device
        return (sine_position_code(h, w).flatten(2).to(device), sine_position_code(h // 8, w // 8).flatten(2).to(device))

    def heads(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backbone and heads: (logits (B, 431, h, w), features (B, 512, h*w) with position
        code, grid features (B, 512, h*w/64) with position code)."""
        x, x2 = self.backbone(images)
        fine_pos, grid_pos = self._positions(x.shape[2], x.shape[3])
        logits = self.heatmap_layer(x)
        features = self.feature_extract_layer(x).flatten(2) + fine_pos
        grid = self.grid_layer(x2).flatten(2) + grid_pos
        return logits, features, grid

    def tokens(self, logits: torch.Tensor, features: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Heatmap sampling and token assembly: (B, 495, 640)."""
        batch = logits.shape[0]
        heatmap = F.softmax(logits.flatten(2), dim=-1)
        sampled = heatmap @ features.transpose(1, 2)  # (B, 431, 512): expectation under each heatmap
        cam = self.cam_layer(sampled.transpose(1, 2)).transpose(1, 2)
        joints = self.joint_token_embed.weight.expand(batch, -1, -1)
        tokens = torch.cat([cam, grid.transpose(1, 2), joints, sampled], dim=1)
        return torch.cat([tokens, self.token_position_embed.weight.expand(batch, -1, -1)], dim=2)

    def forward(self, images: torch.Tensor, heatmaps: bool = True) -> PointHmrOutput:
        """heatmaps=False leaves out the 112x112 heatmaps (an empty tensor): they are a
        training and visualisation output, and cost ~5 % of the forward."""
        logits, features, grid = self.heads(images)
        cam, joints, coarse, mid, full = self.transformer(self.tokens(logits, features, grid))
        maps = F.softmax(F.interpolate(logits, scale_factor=2).flatten(2), dim=-1) if heatmaps \
            else logits.new_zeros(0)
        return PointHmrOutput(cam, joints, coarse, mid, full, maps)


# ---------------------------------------------------------------- loading

class _SparseUnpickler(pickle.Unpickler):
    """Unpickles the scipy sparse matrices of mesh_downsampling.npz and nothing else: a
    downloaded file must not run code."""

    _NUMPY = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
              ("numpy._core.multiarray", "_reconstruct")}
    _SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix"}

    def find_class(self, module: str, name: str):  # type: ignore[override]
        import scipy.sparse

        if (module, name) in self._NUMPY:
            return super().find_class(module, name)
        if module.startswith("scipy.sparse") and name in self._SPARSE:
            return getattr(scipy.sparse, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only sparse matrices are expected)")


def _sparse_list(npz: Path, member: str) -> list:
    """The object array `member` of an .npz (a list of scipy sparse matrices)."""
    with zipfile.ZipFile(npz) as z:
        name = f"{member}.npy"
        if name not in z.namelist():
            raise ValueError(f"{npz}: no '{member}' array (keys: {', '.join(n[:-4] for n in z.namelist())})")
        f = io.BytesIO(z.read(name))
    version = np.lib.format.read_magic(f)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype != np.dtype(object):
        raise ValueError(f"{npz}: '{member}' is {dtype}, expected a list of sparse matrices")
    items = _SparseUnpickler(f, encoding="latin1").load()
    return list(np.asarray(items, dtype=object).reshape(shape))


def _to_torch_sparse(matrix) -> torch.Tensor:
    coo = matrix.tocoo()
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(coo.data.astype(np.float32)), coo.shape, check_invariants=True)


def load_mesh_arrays(downsampling_npz: str | Path, adjmat_indices: str | Path, adjmat_values: str | Path,
                     adjmat_size: str | Path) -> MeshArrays:
    """The official mesh files -> MeshArrays; ValueError naming the file when one is wrong."""
    downsampling_npz = Path(downsampling_npz)
    upsampling = _sparse_list(downsampling_npz, "U")
    shapes = [tuple(m.shape) for m in upsampling]
    if shapes[:2] != [(FULL_VERTICES, MID_VERTICES), (MID_VERTICES, NUM_VERTICES)]:
        raise ValueError(f"{downsampling_npz}: upsampling matrices {shapes}, expected "
                         f"[({FULL_VERTICES}, {MID_VERTICES}), ({MID_VERTICES}, {NUM_VERTICES})]")
    indices = torch.load(adjmat_indices, map_location="cpu", weights_only=True)
    values = torch.load(adjmat_values, map_location="cpu", weights_only=True)
    size = tuple(torch.load(adjmat_size, map_location="cpu", weights_only=True))
    if size != (NUM_VERTICES, NUM_VERTICES) or indices.ndim != 2 or indices.shape[0] != 2 \
            or values.shape != (indices.shape[1],):
        raise ValueError(f"{adjmat_indices}: not the 431-vertex adjacency (size {size}, indices "
                         f"{tuple(indices.shape)}, values {tuple(values.shape)})")
    adjacency = torch.sparse_coo_tensor(indices, values, size=size, check_invariants=True).to_dense().numpy()
    return MeshArrays(adjacency.astype(np.float32), _to_torch_sparse(upsampling[1]), _to_torch_sparse(upsampling[0]))


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The official checkpoint (torch.save of the state_dict, `.bin`), tensors only."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state_dict (PointHMR checkpoint)")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_pointhmr(checkpoint: str | Path | dict[str, torch.Tensor], mesh: MeshArrays,
                  device: str | torch.device = "cpu") -> PointHmr:
    """PointHMR with the checkpoint's weights, strictly (every key and shape must match).
    Returns the module in eval mode on `device`."""
    model = PointHmr(mesh)
    state = checkpoint if isinstance(checkpoint, dict) else load_state(checkpoint)
    where = "state_dict" if isinstance(checkpoint, dict) else str(checkpoint)
    own = model.state_dict()
    wrong = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    result = model.load_state_dict({k: v for k, v in state.items() if k not in wrong}, strict=False)
    if result.missing_keys or result.unexpected_keys or wrong:
        raise ValueError(f"{where}: not a PointHMR checkpoint (missing {result.missing_keys[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}, wrong shapes {wrong[:5]})")
    log.info("PointHMR regressor loaded from %s", Path(where).name)
    return model.to(device).eval()


# ---------------------------------------------------------------- the official demo's input

DEMO_MEAN = (0.485, 0.456, 0.406)
DEMO_STD = (0.229, 0.224, 0.225)


def demo_input(path: str | Path) -> np.ndarray:
    """An image file as the official demo feeds it: torchvision's Resize(224) (shorter side
    to 224, PIL bilinear), CenterCrop(224), ToTensor, ImageNet Normalize -> (3, 224, 224)
    float32. The file is read as RGB (the demo's Image.open would keep an alpha channel)."""
    from PIL import Image

    with Image.open(path) as im:
        img = im.convert("RGB")
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(INPUT_RES * long / short)
    size = (INPUT_RES, new_long) if w <= h else (new_long, INPUT_RES)
    img = img.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - INPUT_RES) / 2.0)), int(round((size[1] - INPUT_RES) / 2.0))
    img = img.crop((left, top, left + INPUT_RES, top + INPUT_RES))
    x = np.asarray(img, np.float32).transpose(2, 0, 1) / 255.0
    mean, std = np.array(DEMO_MEAN, np.float32)[:, None, None], np.array(DEMO_STD, np.float32)[:, None, None]
    return ((x - mean) / std).astype(np.float32)
