"""Binary PLY for triangle meshes: what the recorder writes per frame (Blender, MeshLab and
trimesh read it). The reader reads back exactly this layout, not PLY in general."""
from __future__ import annotations

from pathlib import Path

import numpy as np

_FACE_DTYPE = np.dtype([("n", "u1"), ("idx", "<i4", (3,))])
_COLOURED_VERTEX = np.dtype([("xyz", "<f4", (3,)), ("rgb", "u1", (3,))])


def ply_bytes(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray | None = None) -> bytes:
    """vertices: (V, 3) float (stored float32, units as given); faces: (F, 3) int indices;
    colours: (V, 3) uint8 BGR per vertex, or None. Returns a binary little-endian PLY file's
    bytes (colours as the usual red/green/blue vertex properties)."""
    vertices = np.asarray(vertices, dtype="<f4")
    faces = np.asarray(faces)
    if colours is not None and np.shape(colours) != (len(vertices), 3):
        raise ValueError(f"colours must be (V, 3) for {len(vertices)} vertices, got {np.shape(colours)}")
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3) triangles, got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("face indices out of range of the vertices")
    colour_props = "property uchar red\nproperty uchar green\nproperty uchar blue\n" if colours is not None else ""
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by holocap\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"{colour_props}element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    face_rows = np.empty(len(faces), _FACE_DTYPE)
    face_rows["n"] = 3
    face_rows["idx"] = faces
    if colours is None:
        vertex_bytes = np.ascontiguousarray(vertices).tobytes()
    else:
        rows = np.empty(len(vertices), _COLOURED_VERTEX)
        rows["xyz"] = vertices
        rows["rgb"] = np.asarray(colours, np.uint8)[:, ::-1]
        vertex_bytes = rows.tobytes()
    return header.encode("ascii") + vertex_bytes + face_rows.tobytes()


def read_ply(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a file written by `ply_bytes`: returns (vertices (V, 3) float32, faces (F, 3) int32).
    Raises ValueError for other layouts or truncated files."""
    vertices, faces, _ = read_ply_with_colours(path)
    return vertices, faces


def read_ply_with_colours(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """read_ply plus the (V, 3) uint8 BGR vertex colours (None when the file has none)."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file (or its header is cut)")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: only binary little-endian PLY is read here")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element ")}
    n_v, n_f = counts.get("vertex", 0), counts.get("face", 0)
    coloured = "property uchar red" in header
    vertex_size = _COLOURED_VERTEX.itemsize if coloured else 12
    body = memoryview(data)[end + len(b"end_header\n"):]
    need = n_v * vertex_size + n_f * _FACE_DTYPE.itemsize
    if len(body) != need:
        raise ValueError(f"{path}: expected {need} bytes of mesh data, found {len(body)}")
    colours = None
    if coloured:
        rows = np.frombuffer(body, _COLOURED_VERTEX, n_v)
        vertices = rows["xyz"].astype(np.float32)
        colours = np.ascontiguousarray(rows["rgb"][:, ::-1])
    else:
        vertices = np.frombuffer(body, "<f4", n_v * 3).reshape(n_v, 3).astype(np.float32)
    face_rows = np.frombuffer(body, _FACE_DTYPE, n_f, offset=n_v * vertex_size)
    if n_f and not np.all(face_rows["n"] == 3):
        raise ValueError(f"{path}: only triangle faces are read here")
    return vertices, face_rows["idx"].astype(np.int32), colours
