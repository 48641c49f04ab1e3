"""Thin wrappers over GL objects: shader programs from shaders/, and buffers and textures
that are re-filled in place every frame instead of re-allocated.

Everything here needs a current OpenGL 3.3 core context (Qt's or EGL's).
"""
from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import numpy as np
from OpenGL import GL

from engine.paths import shaders_dir

log = logging.getLogger(__name__)


class ShaderError(RuntimeError):
    """A shader failed to compile or a program failed to link (message has the GL log)."""


def _compile(path: Path, kind: int) -> int:
    shader = GL.glCreateShader(kind)
    if not shader:
        raise ShaderError(f"{path.name}: no shader could be created (is a GL context current?)")
    GL.glShaderSource(shader, path.read_text())
    GL.glCompileShader(shader)
    if not GL.glGetShaderiv(shader, GL.GL_COMPILE_STATUS):
        message = _text(GL.glGetShaderInfoLog(shader))
        GL.glDeleteShader(shader)
        raise ShaderError(f"{path.name} does not compile:\n{message}")
    return shader


def _text(log: bytes | str | None) -> str:
    """GL info logs come back as bytes or str depending on the PyOpenGL build."""
    if log is None:
        return ""
    return log.decode(errors="replace") if isinstance(log, bytes) else str(log)


class ShaderProgram:
    """A linked program from `shaders/<name>.vert` and `shaders/<name>.frag`."""

    def __init__(self, name: str, directory: Path | None = None) -> None:
        directory = directory or shaders_dir()
        self.name = name
        shaders = [_compile(directory / f"{name}.vert", GL.GL_VERTEX_SHADER),
                   _compile(directory / f"{name}.frag", GL.GL_FRAGMENT_SHADER)]
        self.id = int(GL.glCreateProgram())
        for shader in shaders:
            GL.glAttachShader(self.id, shader)
        GL.glLinkProgram(self.id)
        for shader in shaders:
            GL.glDetachShader(self.id, shader)
            GL.glDeleteShader(shader)
        if not GL.glGetProgramiv(self.id, GL.GL_LINK_STATUS):
            message = _text(GL.glGetProgramInfoLog(self.id))
            GL.glDeleteProgram(self.id)
            raise ShaderError(f"program {name} does not link:\n{message}")
        self._locations: dict[str, int] = {}

    def use(self) -> None:
        GL.glUseProgram(self.id)

    def _loc(self, uniform: str) -> int:
        loc = self._locations.get(uniform)
        if loc is None:
            loc = int(GL.glGetUniformLocation(self.id, uniform))
            if loc < 0:
                # Unused uniforms are optimised away; setting them is then a harmless no-op.
                log.debug("uniform %s not active in program %s", uniform, self.name)
            self._locations[uniform] = loc
        return loc

    def set_mat4(self, uniform: str, matrix: np.ndarray) -> None:
        """matrix: (4, 4) row-major numpy (transposed on upload)."""
        GL.glUniformMatrix4fv(self._loc(uniform), 1, GL.GL_TRUE, np.ascontiguousarray(matrix, np.float32))

    def set_float(self, uniform: str, value: float) -> None:
        GL.glUniform1f(self._loc(uniform), float(value))

    def set_int(self, uniform: str, value: int) -> None:
        GL.glUniform1i(self._loc(uniform), int(value))

    def set_vec2(self, uniform: str, value) -> None:
        GL.glUniform2f(self._loc(uniform), *(float(x) for x in value))

    def set_vec3(self, uniform: str, value) -> None:
        GL.glUniform3f(self._loc(uniform), *(float(x) for x in value))

    def set_vec4(self, uniform: str, value) -> None:
        GL.glUniform4f(self._loc(uniform), *(float(x) for x in value))

    def close(self) -> None:
        GL.glDeleteProgram(self.id)


class DynamicBuffer:
    """A GL buffer re-filled per frame. Storage is re-allocated only when the data outgrows
    it (`allocations` counts that); otherwise it is orphaned and filled with glBufferSubData,
    so the driver never stalls on a buffer still in use by the previous frame."""

    def __init__(self, target: int = GL.GL_ARRAY_BUFFER) -> None:
        self.target = target
        self.id = int(GL.glGenBuffers(1))
        self.capacity = 0
        self.allocations = 0
        self.count = 0  # elements (rows) of the last upload

    def upload(self, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data)
        self.count = int(data.shape[0]) if data.ndim else 0
        GL.glBindBuffer(self.target, self.id)
        if data.nbytes > self.capacity:
            self.capacity = data.nbytes
            self.allocations += 1
            GL.glBufferData(self.target, self.capacity, data, GL.GL_DYNAMIC_DRAW)
            return
        if data.nbytes:
            GL.glBufferData(self.target, self.capacity, None, GL.GL_DYNAMIC_DRAW)  # orphan
            GL.glBufferSubData(self.target, 0, data.nbytes, data)

    def close(self) -> None:
        GL.glDeleteBuffers(1, [self.id])


def attach_float_attribute(location: int, buffer: DynamicBuffer, components: int) -> None:
    """Point vertex attribute `location` at tightly packed float32 rows of `buffer`
    (the VAO to record it in must be bound)."""
    GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buffer.id)
    GL.glEnableVertexAttribArray(location)
    GL.glVertexAttribPointer(location, components, GL.GL_FLOAT, GL.GL_FALSE, 0, ctypes.c_void_p(0))


class DynamicTexture:
    """A 2D texture holding an image that changes per frame. glTexImage2D runs only when the
    size or channel count changes (`allocations` counts that); otherwise glTexSubImage2D.

    Images: (H, W, 3) uint8 BGR or (H, W, 4) BGRA or (H, W) uint8 grey, top row first.
    """

    _FORMATS = {1: (GL.GL_R8, GL.GL_RED), 3: (GL.GL_RGB8, GL.GL_BGR), 4: (GL.GL_RGBA8, GL.GL_BGRA)}

    def __init__(self, smooth: bool = True) -> None:
        self.id = int(GL.glGenTextures(1))
        self.shape: tuple[int, ...] = ()
        self.allocations = 0
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        filt = GL.GL_LINEAR if smooth else GL.GL_NEAREST
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, filt)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, filt)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)

    @property
    def width(self) -> int:
        return int(self.shape[1]) if self.shape else 0

    @property
    def height(self) -> int:
        return int(self.shape[0]) if self.shape else 0

    def upload(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8:
            raise TypeError(f"textures take uint8 images, got {image.dtype}")
        image = np.ascontiguousarray(image)
        channels = 1 if image.ndim == 2 else int(image.shape[2])
        internal, fmt = self._FORMATS[channels]
        h, w = image.shape[:2]
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        # Rows of width*3 bytes are not 4-byte aligned in general.
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        if image.shape != self.shape:
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal, w, h, 0, fmt, GL.GL_UNSIGNED_BYTE, image)
            self.shape = image.shape
            self.allocations += 1
        else:
            GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, w, h, fmt, GL.GL_UNSIGNED_BYTE, image)
        # Back to the default: Qt's painter uploads its glyph cache assuming 4.
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 4)

    def bind(self, unit: int = 0) -> None:
        GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)

    def close(self) -> None:
        GL.glDeleteTextures(1, [self.id])


class VertexArray:
    """A VAO with float32 positions at attribute 0, optional normals at attribute 1, optional
    RGB colours at attribute 2, and an optional element buffer. Index data is uploaded again only when it changes (meshes keep
    their topology from frame to frame)."""

    def __init__(self, with_normals: bool = False, with_indices: bool = True, with_colours: bool = False) -> None:
        self.vao = int(GL.glGenVertexArrays(1))
        GL.glBindVertexArray(self.vao)
        self.positions = DynamicBuffer()
        attach_float_attribute(0, self.positions, 3)
        self.normals: DynamicBuffer | None = None
        if with_normals:
            self.normals = DynamicBuffer()
            attach_float_attribute(1, self.normals, 3)
        self.colours: DynamicBuffer | None = None
        if with_colours:
            self.colours = DynamicBuffer()
            attach_float_attribute(2, self.colours, 3)
        self.indices: DynamicBuffer | None = None
        if with_indices:
            # The element buffer binding is VAO state: bind it while this VAO is bound.
            self.indices = DynamicBuffer(GL.GL_ELEMENT_ARRAY_BUFFER)
            GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self.indices.id)
        GL.glBindVertexArray(0)
        self._index_source: np.ndarray | None = None
        self.index_count = 0

    def set_positions(self, positions: np.ndarray, normals: np.ndarray | None = None) -> None:
        """positions, normals: (N, 3) float32 (or (N, 2) positions, given z = 0)."""
        positions = np.asarray(positions, np.float32)
        if positions.shape[1] == 2:
            positions = np.concatenate([positions, np.zeros((len(positions), 1), np.float32)], axis=1)
        self.positions.upload(positions)
        if normals is not None and self.normals is not None:
            self.normals.upload(np.asarray(normals, np.float32))

    def set_indices(self, indices: np.ndarray) -> bool:
        """indices: any-shape integer array, flattened to uint32 (triangles (F, 3), edges (E, 2)).
        Returns True when they differ from the last ones (and were uploaded)."""
        if self.indices is None:
            raise RuntimeError("this VertexArray was made without an element buffer")
        same = self._index_source is not None and (indices is self._index_source or (
            indices.shape == self._index_source.shape and np.array_equal(indices, self._index_source)))
        if same:
            return False
        flat = np.ascontiguousarray(indices, np.uint32).ravel()
        GL.glBindVertexArray(self.vao)
        self.indices.upload(flat)
        GL.glBindVertexArray(0)
        self._index_source = indices
        self.index_count = int(flat.size)
        return True

    def bind(self) -> None:
        GL.glBindVertexArray(self.vao)

    def close(self) -> None:
        GL.glDeleteVertexArrays(1, [self.vao])
        for buffer in (self.positions, self.normals, self.colours, self.indices):
            if buffer is not None:
                buffer.close()
