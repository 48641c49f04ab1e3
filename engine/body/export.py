"""Write a fitted body mesh to disk (OBJ, PLY, GLB, ... whatever trimesh writes)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.body.result import BodyResult
from engine.mesh_colours import rgba

log = logging.getLogger(__name__)

#: Camera space is y down, z forward; mesh viewers expect y up. Flip y and z once here.
_CAMERA_TO_VIEWER = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


def export_mesh(result: BodyResult, path: str | Path, viewer_axes: bool = True) -> Path:
    """Save result.vertices / result.faces to `path` (format from the suffix: .obj, .ply, .glb,
    .stl). viewer_axes: convert camera space (y down, z forward) to the y-up, z-towards-viewer
    convention of mesh viewers; otherwise the file is in camera space. Metres either way."""
    import trimesh

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vertices = result.vertices @ _CAMERA_TO_VIEWER.T if viewer_axes else result.vertices
    mesh = trimesh.Trimesh(vertices=vertices, faces=result.faces, process=False,
                           vertex_colors=rgba(getattr(result, "vertex_colours", None), len(vertices)))
    try:
        mesh.export(path)
    except (ValueError, KeyError) as exc:  # trimesh raises these for unknown formats
        raise ValueError(f"cannot export a mesh as {path.suffix!r}: {exc}") from exc
    log.info("body mesh written to %s (%d vertices, %d faces)", path, len(vertices), len(result.faces))
    return path


def export_name(frame_index: int, backend: str, suffix: str = ".obj") -> str:
    """File name for the mesh of one frame, e.g. body_000123_anny.obj."""
    return f"body_{frame_index:06d}_{backend}{suffix}"
