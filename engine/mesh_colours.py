"""The person's own colours on a fitted mesh: per-vertex colours sampled from the frames.

Each frame, the vertices the camera sees are sampled from the image (bilinear). "Sees"
means: in front of the mesh's own depth at that pixel (a z-buffer of the mesh, so the far
side of a fold or the back of the head is not painted with the front's colours) and not
seen edge-on (there one pixel smears over many vertices). Seen colours are blended over
time for stability; vertices that turn away keep what they had; vertices never seen
continue the colours of seen neighbours, else take the mean of the seen ones (a plausible
fill rather than a hole or noise).

On video the sampling (a z-buffer of the mesh and its normals: 4-7 ms per mesh on 2 cores)
runs on a helper thread of the track, off the stage's own path, about 8 times a second: a
stage returns the colours known so far, and the helper takes the frame it is given next. Photos are sampled at once, each on its own.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from engine.render.geometry import incidence_matrix, vertex_normals
from engine.render.raster_cpu import rasterize

log = logging.getLogger(__name__)

#: Weight of the newest sample of a vertex once it has been seen a few times (lower is steadier).
BLEND = 0.4
#: Vertices seen more edge-on than this (|cos| of the angle between normal and view ray) are not sampled.
MIN_FACING = 0.25
#: A vertex is in front if within this fraction of its depth of the z-buffer (and 3 mm).
DEPTH_TOLERANCE = 0.01
FILL_BGR = (150.0, 165.0, 200.0)  # before anything was seen: a neutral skin tone
#: The visibility z-buffer's longer side, in pixels: finer costs milliseconds per frame and
#: changes which vertices count as seen only along the silhouette.
DEPTH_GRID_PX = 320
#: On video, colours are sampled at most this often (seconds): they change slowly, and
#: sampling every frame costs the pipeline a tenth of its frame rate on 2 cores (measured).
SAMPLE_INTERVAL_S = 0.125
#: Never-seen vertices take the colour of seen ones up to this many edges away (the thin
#: unseen band along a silhouette continues the colours beside it); the rest, the mean.
FILL_RINGS = 12
#: The fill's plan is remade when this fraction of the vertices were first seen since it was
#: made (the set grows a little with almost every sample of a video, and a plan costs more
#: than a fill; the newly seen keep their own colours meanwhile).
PLAN_STALE_FRACTION = 0.02



class VertexColourTrack:
    """Per-vertex colours of one mesh over a video; `reset()` on a new source or person,
    `close()` when done. background: sample on a helper thread (video), else at once (photos,
    tests)."""

    def __init__(self, background: bool = True) -> None:
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="holocap-colours") if background else None
        self._job: Future | None = None
        self._last_submit = -np.inf
        self._plain: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._colours: np.ndarray | None = None  # (V, 3) float32 BGR
            self._seen: np.ndarray | None = None  # (V,) how many frames saw each vertex (capped)
            self._topology: np.ndarray | None = None  # the triangles `_incidence` was built for
            self._incidence = None
            self._adjacency = None  # (V, V) sparse vertex adjacency, for the fill
            self._fill_plan: FillPlan | None = None  # for the `known` set it was made for
            self._filled: np.ndarray | None = None  # (V, 3) uint8 BGR: colours with the unseen filled
            self._generation = getattr(self, "_generation", 0) + 1  # a running job's result is dropped

    def update(self, image: np.ndarray, pixels: np.ndarray, vertices_camera: np.ndarray,
               triangles: np.ndarray, person_mask: np.ndarray | None = None) -> np.ndarray:
        """image: (H, W, 3) uint8 BGR. pixels: (V, 2) where the vertices project in `image`.
        vertices_camera: (V, 3) metres (x right, y down, z forward). person_mask: (H, W) in
        [0, 1] (the segmentation), when known: vertices that project off the person (a fit
        a few pixels off at the silhouette) are not painted with the background behind.
        Returns (V, 3) uint8 BGR colours: after this frame, or (background) as far as the
        helper has got."""
        count = len(vertices_camera)
        with self._lock:
            if self._colours is None or len(self._colours) != count:
                self._colours = np.zeros((count, 3), np.float32)
                self._seen = np.zeros(count, np.float32)
            generation = self._generation
        due = self._executor is None or (
            (self._job is None or self._job.done()) and time.monotonic() - self._last_submit >= SAMPLE_INTERVAL_S)
        if due:
            # Copies: the helper works on them while the caller's arrays move on.
            v = np.array(vertices_camera, np.float32)
            uv = np.array(np.asarray(pixels)[:, :2], np.float32)
            if self._executor is None:
                self._sample(image, uv, v, triangles, generation, person_mask)
            else:
                if self._job is not None and self._job.exception() is not None:
                    log.warning("mesh colour sampling failed: %s", self._job.exception())
                self._last_submit = time.monotonic()
                self._job = self._executor.submit(self._sample, image, uv, v, triangles, generation, person_mask)
        with self._lock:
            filled = self._filled
        if filled is None or len(filled) != count:
            return self._plain_fill(count)
        return filled  # read-only, shared by the frames until the next sample

    def _plain_fill(self, count: int) -> np.ndarray:
        """The colours before the first sample: one read-only array per vertex count, so
        the frames until then share it (and a renderer uploads it once)."""
        if self._plain is None or len(self._plain) != count:
            plain = np.tile(np.asarray(FILL_BGR, np.uint8), (count, 1))
            plain.flags.writeable = False
            self._plain = plain
        return self._plain

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _sample(self, image: np.ndarray, uv: np.ndarray, v: np.ndarray, triangles: np.ndarray,
                generation: int, person_mask: np.ndarray | None = None) -> None:
        if self._topology is None or not (triangles is self._topology or np.array_equal(triangles, self._topology)):
            self._topology, self._incidence = triangles, incidence_matrix(np.asarray(triangles), len(v))
            self._adjacency = vertex_adjacency(np.asarray(triangles), len(v))
            self._fill_plan = None
        normals = vertex_normals(v, triangles, self._incidence)
        visible = visible_vertices(uv, v, triangles, image.shape[:2], normals)
        if person_mask is not None and person_mask.shape[:2] == image.shape[:2]:
            visible &= on_person(person_mask, uv)
        if not visible.any():
            return
        sample = sample_bilinear(image, uv[visible])
        with self._lock:
            if generation != self._generation or self._seen is None or len(self._seen) != len(v):
                return  # reset (or another mesh) meanwhile
            seen = self._seen[visible]
            # The first sight of a vertex is taken as is; then a running mean that settles
            # into an exponential blend (BLEND) so slow lighting changes still come through.
            alpha = np.maximum(1.0 / (seen + 1.0), BLEND)[:, None]
            self._colours[visible] += alpha * (sample - self._colours[visible])
            self._seen[visible] = np.minimum(seen + 1.0, 1000.0)
            colours, known = self._colours.copy(), self._seen > 0
        plan = self._fill_plan
        if plan is None or np.count_nonzero(known & ~plan.known) > PLAN_STALE_FRACTION * len(known):
            plan = self._fill_plan = FillPlan(known, self._adjacency)
        out = plan.apply(colours)
        out[known] = colours[known]  # seen since the plan was made: their own colours
        filled = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        filled.flags.writeable = False  # handed to every frame's result until the next sample
        with self._lock:
            if generation == self._generation:
                self._filled = filled


def vertex_adjacency(triangles: np.ndarray, count: int):
    """(V, V) scipy.sparse CSR float32, 1 where two vertices share an edge."""
    from scipy import sparse

    edges = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    adjacency = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(count, count))
    adjacency.data[:] = 1.0  # duplicates (edges of two triangles) summed: back to 1
    return adjacency


def fill_unseen(colours: np.ndarray, known: np.ndarray, adjacency, rings: int = FILL_RINGS) -> np.ndarray:
    """(V, 3) colours with the never-seen vertices filled: from seen neighbours, ring by ring
    (up to `rings` edges away), then the mean of the seen ones."""
    return FillPlan(known, adjacency, rings).apply(colours)


class FillPlan:
    """How `fill_unseen` fills the never-seen vertices of one `known` set, as one small sparse
    operator per ring: on video the set changes little from one sample to the next, so a track
    reuses the plan (see PLAN_STALE_FRACTION) and a fill costs a few small products instead of
    rings of whole-mesh ones."""

    def __init__(self, known: np.ndarray, adjacency, rings: int = FILL_RINGS) -> None:
        from scipy import sparse

        self.known = np.array(known, bool)
        self.rings: list[tuple[np.ndarray, object]] = []  # (rows grown, their averaging operator)
        have = self.known.astype(np.float32)
        for _ in range(rings if adjacency is not None and self.known.any() else 0):
            if have.all():
                break
            count = adjacency @ have
            grow = np.flatnonzero((have == 0) & (count > 0))
            if len(grow) == 0:
                break
            # Row r of the operator averages r's neighbours that have a colour by now.
            operator = sparse.diags(1.0 / count[grow]) @ adjacency[grow] @ sparse.diags(have)
            self.rings.append((grow, sparse.csr_matrix(operator, dtype=np.float32)))
            have[grow] = 1.0
        self.rest = np.flatnonzero(have == 0)

    def apply(self, colours: np.ndarray) -> np.ndarray:
        out = np.array(colours, np.float32)
        if not self.known.any():
            out[:] = FILL_BGR
            return out
        for grow, operator in self.rings:
            out[grow] = operator @ out
        out[self.rest] = out[self.known].mean(axis=0)
        return out


def visible_vertices(uv: np.ndarray, vertices_camera: np.ndarray, triangles: np.ndarray,
                     image_hw: tuple[int, int], normals: np.ndarray | None = None) -> np.ndarray:
    """(V,) bool: the vertices the camera sees, of a mesh whose vertices project to `uv`.
    normals: the mesh's vertex normals when the caller has them."""
    h, w = image_hw
    inside = (vertices_camera[:, 2] > 1e-3) & (uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
    if not inside.any():
        return inside
    # Depth in metres: the mesh's own z-buffer, on a grid of at most DEPTH_GRID_PX.
    scale = min(1.0, DEPTH_GRID_PX / max(h, w))
    gh, gw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    grid_uv = uv * np.float32(scale)
    raster = rasterize(np.concatenate([grid_uv, vertices_camera[:, 2:3]], axis=1), triangles, gh, gw)
    px = np.clip(np.floor(grid_uv).astype(np.int64), 0, [gw - 1, gh - 1])
    front = raster.depth[px[:, 1], px[:, 0]]
    tolerance = np.maximum(DEPTH_TOLERANCE * vertices_camera[:, 2], 0.003)
    in_front = vertices_camera[:, 2] <= front + tolerance
    if normals is None:
        normals = vertex_normals(vertices_camera, triangles)
    rays = vertices_camera / np.maximum(np.linalg.norm(vertices_camera, axis=1, keepdims=True), 1e-9)
    facing = np.abs((normals * rays).sum(axis=1)) >= MIN_FACING
    return inside & in_front & facing


def on_person(person_mask: np.ndarray, uv: np.ndarray, margin_px: int = 2) -> np.ndarray:
    """(V,) bool: the points lie on the person, at least `margin_px` inside the mask's edge
    (a bilinear sample at the edge would mix in the background)."""
    inside = (np.asarray(person_mask) > 0.5).astype(np.uint8)
    if margin_px > 0:
        inside = cv2.erode(inside, np.ones((2 * margin_px + 1, 2 * margin_px + 1), np.uint8))
    h, w = inside.shape
    px = np.clip(np.round(uv).astype(np.int64), 0, [w - 1, h - 1])
    return inside[px[:, 1], px[:, 0]].astype(bool)


def sample_bilinear(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 3) float32 BGR of `image` at sub-pixel `points` (N, 2)."""
    maps = np.ascontiguousarray(points, np.float32).reshape(1, -1, 2)
    out = cv2.remap(image, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(-1, 3).astype(np.float32)


def rgba(colours_bgr: np.ndarray | None, count: int) -> np.ndarray | None:
    """(V, 4) uint8 RGBA for trimesh from (V, 3) BGR vertex colours (None when there are none)."""
    if colours_bgr is None or len(colours_bgr) != count:
        return None
    colours = np.asarray(colours_bgr, np.uint8)[:, ::-1]
    return np.concatenate([colours, np.full((count, 1), 255, np.uint8)], axis=1)
