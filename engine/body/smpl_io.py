"""SMPL-format model files (.pkl / .npz) and an smplx-style layer that poses them.

The official SMPL .pkl is a Python-2 pickle holding chumpy arrays and a scipy-sparse
J_regressor. It is read here without chumpy: a restricted unpickler maps every chumpy
class to a stand-in that keeps the wrapped array, and refuses classes outside numpy,
scipy.sparse and a few builtins (a user-supplied file must not run arbitrary code).
"""
from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch
from torch import nn

from engine.body.lbs import lbs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmplModelData:
    """The arrays of one SMPL-format body model (model coordinates: metres, y up).

    v_template: (V, 3) float32 rest template.
    shapedirs: (V, 3, S) float32 shape blend shapes.
    posedirs: (V, 3, P) float32 pose-corrective blend shapes, P = 9 (J - 1) (official layout).
    J_regressor: (J, V) float32 dense joint regressor.
    weights: (V, J) float32 skinning weights.
    parents: (J,) int64 parent of each joint, parents[0] = -1, parents[j] < j.
    faces: (F, 3) int32 triangles.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling and keeps its array.

    A plain chumpy `Ch` pickles its __dict__, whose "x" entry is the numpy value; derived
    chumpy expressions (sums, selections) carry no "x" and cannot be evaluated here.
    """

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {"x": state}

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        state = getattr(self, "state", {})
        if "x" not in state:
            raise ValueError("a chumpy expression without a stored value (no 'x') cannot be read without chumpy")
        return np.asarray(state["x"], dtype=dtype)


# Globals an SMPL pickle may name besides chumpy and scipy.sparse matrices, in both the
# Python 2 and Python 3 spellings. Checked before anything is imported.
_ALLOWED_GLOBALS = frozenset({
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("copyreg", "__newobj__"),
    ("__builtin__", "object"), ("builtins", "object"), ("__builtin__", "set"), ("builtins", "set"),
    ("__builtin__", "frozenset"), ("builtins", "frozenset"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
})


class _SmplUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "chumpy" or module.startswith("chumpy."):
            return _ChumpyStandIn
        if module.startswith("scipy.sparse") and name.endswith(("_matrix", "_array")):
            # Old pickles name private modules that moved (scipy.sparse.csc -> _csc).
            cls = getattr(scipy.sparse, name, None)
            if cls is not None:
                return cls
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"SMPL file names an unexpected class {module}.{name}; refusing to load it")
        return super().find_class(module, name)  # applies the Python 2 -> 3 name mapping


def _to_dense(value: Any, key: str) -> np.ndarray:
    if scipy.sparse.issparse(value):
        return np.asarray(value.toarray())
    try:
        return np.asarray(value)
    except ValueError as exc:
        raise ValueError(f"SMPL entry {key!r}: {exc}") from exc


def _read_pkl(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        raw = _SmplUnpickler(f, encoding="latin1").load()
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of arrays, found {type(raw).__name__}")
    return raw


def _read_npz(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def parents_from_kintree(kintree_table: np.ndarray) -> np.ndarray:
    """kintree_table: (2, J), row 0 the parents (root: -1 or 2^32 - 1) -> (J,) int64, root -1."""
    parents = np.asarray(kintree_table)[0].astype(np.int64)
    num_joints = parents.shape[0]
    parents[(parents < 0) | (parents >= num_joints)] = -1
    return parents


def smpl_data_from_dict(raw: dict[str, Any], source: str = "<dict>") -> SmplModelData:
    """Build and validate SmplModelData from SMPL's key names (v_template, shapedirs,
    posedirs, J_regressor, weights, kintree_table, f)."""
    missing = [k for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
               if k not in raw]
    if missing:
        raise ValueError(f"{source}: not an SMPL-format model, missing {', '.join(missing)}")
    arr = {k: _to_dense(raw[k], k) for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    data = SmplModelData(
        v_template=arr["v_template"].astype(np.float32),
        shapedirs=arr["shapedirs"].astype(np.float32),
        posedirs=arr["posedirs"].astype(np.float32),
        J_regressor=arr["J_regressor"].astype(np.float32),
        weights=arr["weights"].astype(np.float32),
        parents=parents_from_kintree(_to_dense(raw["kintree_table"], "kintree_table")),
        faces=_to_dense(raw["f"], "f").astype(np.int32),
    )
    _validate(data, source)
    return data


def _validate(d: SmplModelData, source: str) -> None:
    v, j = d.num_vertices, d.num_joints
    expected = {
        "v_template": (d.v_template.shape, (v, 3)),
        "shapedirs": (d.shapedirs.shape[:2], (v, 3)),
        "posedirs": (d.posedirs.shape, (v, 3, 9 * (j - 1))),
        "J_regressor": (d.J_regressor.shape, (j, v)),
        "weights": (d.weights.shape, (v, j)),
        "faces": (d.faces.shape[1:], (3,)),
    }
    for key, (got, want) in expected.items():
        if tuple(got) != tuple(want):
            raise ValueError(f"{source}: {key} has shape {tuple(got)}, expected {tuple(want)}")
    if d.shapedirs.ndim != 3:
        raise ValueError(f"{source}: shapedirs must be (V, 3, S), got {d.shapedirs.shape}")
    if d.parents[0] != -1 or np.any(d.parents[1:] >= np.arange(1, j)) or np.any(d.parents[1:] < 0):
        raise ValueError(f"{source}: kinematic tree must have the root first and every parent before its child")
    if d.faces.size and (d.faces.min() < 0 or d.faces.max() >= v):
        raise ValueError(f"{source}: faces index outside the {v} vertices")


def load_smpl(path: str | Path) -> SmplModelData:
    """Load an SMPL-format model from the official .pkl (chumpy not needed) or an .npz with
    the same keys. The format is read from the file's first bytes (an imported file keeps
    the manifest's name whatever it was). Raises ValueError (bad content) or OSError."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):  # .npz is a zip archive
        raw = _read_npz(path)
    elif magic[:1] == b"\x80" or magic[:1] in (b"(", b"}", b"c"):  # pickle protocol 2+ or 0/1
        raw = _read_pkl(path)
    else:
        raise ValueError(f"{path}: neither an SMPL .pkl (pickle) nor an .npz")
    data = smpl_data_from_dict(raw, str(path))
    log.info("SMPL model %s: %d vertices, %d joints, %d shape coefficients",
             path.name, data.num_vertices, data.num_joints, data.num_betas)
    return data


def save_smpl_npz(data: SmplModelData, path: str | Path) -> None:
    """Write `data` as an .npz that `load_smpl` reads (SMPL key names)."""
    kintree = np.stack([data.parents, np.arange(data.num_joints)]).astype(np.int64)
    np.savez(path, v_template=data.v_template, shapedirs=data.shapedirs, posedirs=data.posedirs,
             J_regressor=data.J_regressor, weights=data.weights, kintree_table=kintree, f=data.faces)


@dataclass(frozen=True)
class SmplOutput:
    """vertices: (B, V, 3), joints: (B, J, 3), model coordinates plus `transl`, metres."""

    vertices: torch.Tensor
    joints: torch.Tensor


class SmplLayer(nn.Module):
    """Stateless SMPL layer: model arrays as buffers, all parameters passed to forward.

    num_betas: how many shape coefficients to keep (None: all in the file).
    """

    def __init__(self, data: SmplModelData, num_betas: int | None = 10, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        s = data.num_betas if num_betas is None else min(num_betas, data.num_betas)
        self.num_betas = s
        self.faces = data.faces
        num_pose = data.posedirs.shape[2]
        self.register_buffer("v_template", torch.as_tensor(data.v_template, dtype=dtype))
        self.register_buffer("shapedirs", torch.as_tensor(np.ascontiguousarray(data.shapedirs[:, :, :s]), dtype=dtype))
        self.register_buffer("posedirs", torch.as_tensor(data.posedirs.reshape(-1, num_pose).T.copy(), dtype=dtype))
        self.register_buffer("J_regressor", torch.as_tensor(data.J_regressor, dtype=dtype))
        self.register_buffer("lbs_weights", torch.as_tensor(data.weights, dtype=dtype))
        self.register_buffer("parents", torch.as_tensor(data.parents, dtype=torch.long))
        self._parent_list = [int(p) for p in data.parents]

    @property
    def num_joints(self) -> int:
        return len(self._parent_list)

    def forward(self, betas: torch.Tensor, pose_rotmats: torch.Tensor,
                transl: torch.Tensor | None = None) -> SmplOutput:
        """betas: (B, S') with S' <= num_betas (missing ones are zero);
        pose_rotmats: (B, J, 3, 3), joint 0 global; transl: (B, 3) or None."""
        shapedirs = self.shapedirs[:, :, : betas.shape[1]]
        vertices, joints = lbs(betas, pose_rotmats, self.v_template, shapedirs, self.posedirs,
                               self.J_regressor, self._parent_list, self.lbs_weights)
        if transl is not None:
            vertices = vertices + transl[:, None]
            joints = joints + transl[:, None]
        return SmplOutput(vertices=vertices, joints=joints)
