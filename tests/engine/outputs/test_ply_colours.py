"""Meshes written with the person's colours: the recorder's PLY and the exported meshes keep
the vertex colours, and other tools (trimesh) read them back as the same colours."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from engine.outputs.ply import ply_bytes, read_ply, read_ply_with_colours


def tetrahedron():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)
    colours_bgr = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    return vertices, faces, colours_bgr


def test_recorder_ply_round_trips_colours_and_trimesh_reads_them(tmp_path):
    vertices, faces, colours = tetrahedron()
    path = tmp_path / "m.ply"
    path.write_bytes(ply_bytes(vertices, faces, colours))
    v, f, c = read_ply_with_colours(path)
    np.testing.assert_array_equal(v, vertices)
    np.testing.assert_array_equal(f, faces)
    np.testing.assert_array_equal(c, colours)
    np.testing.assert_array_equal(read_ply(path)[0], vertices)
    mesh = trimesh.load(path, process=False)
    np.testing.assert_array_equal(mesh.visual.vertex_colors[:, :3], colours[:, ::-1])  # RGB there


def test_plain_ply_has_no_colours_and_bad_colours_are_refused(tmp_path):
    vertices, faces, colours = tetrahedron()
    path = tmp_path / "plain.ply"
    path.write_bytes(ply_bytes(vertices, faces))
    assert read_ply_with_colours(path)[2] is None
    with pytest.raises(ValueError):
        ply_bytes(vertices, faces, colours[:2])


def test_exported_face_and_body_meshes_carry_the_colours(tmp_path):
    from dataclasses import replace

    from engine.body.export import export_mesh
    from engine.face.export import export_face_mesh
    from tests.engine.render import synthetic as syn

    face = syn.face_result(coloured=True)
    out = export_face_mesh(face, tmp_path / "face.ply")
    got = trimesh.load(out, process=False).visual.vertex_colors[:, :3]
    np.testing.assert_array_equal(got, face.vertex_colours[:, ::-1])
    body = syn.body_result()
    body = replace(body, vertex_colours=np.full((len(body.vertices), 3), (40, 80, 200), np.uint8))
    out = export_mesh(body, tmp_path / "body.ply")
    got = trimesh.load(out, process=False).visual.vertex_colors[:, :3]
    assert (got == (200, 80, 40)).all()
