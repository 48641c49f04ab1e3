"""Write a fitted face mesh to disk (.obj, .ply, ... whatever trimesh writes)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.face.result import FaceResult
from engine.mesh_colours import rgba

log = logging.getLogger(__name__)

# Camera space is y down, z forward; mesh viewers expect y up, z towards the viewer.
_CAMERA_TO_VIEWER = np.diag([1.0, -1.0, -1.0]).astype(np.float32)
FORMATS = (".obj", ".ply")


def export_face_mesh(result: FaceResult, path: str | Path, viewer_axes: bool = True) -> Path:
    """Save result.vertices_camera / result.triangles to `path` (format from its suffix).

    viewer_axes: convert camera space (y down, z forward) to the y-up, z-towards-viewer
    convention of mesh viewers; otherwise the file is in camera space. Metres either way.
    The file is written to a temporary name and renamed, so a reader never sees half a mesh.
    """
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot export a face mesh as {path.suffix!r}: use one of {FORMATS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    vertices = result.vertices_camera @ _CAMERA_TO_VIEWER.T if viewer_axes else result.vertices_camera
    mesh = trimesh.Trimesh(vertices=vertices, faces=result.triangles, process=False,
                           vertex_colors=rgba(result.vertex_colours, len(vertices)))
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    mesh.export(tmp)
    tmp.replace(path)
    log.info("face mesh written to %s (%d vertices, %d triangles)", path, len(vertices), len(result.triangles))
    return path


def export_name(frame_index: int, backend: str, suffix: str = ".obj") -> str:
    """File name for the face mesh of one frame, e.g. face_000123_anny.obj."""
    return f"face_{frame_index:06d}_{backend}{suffix}"
