"""Child process for the crash test: records synthetic frames until it is killed.

Usage: python -m tests.engine.outputs.record_child DIRECTORY SEGMENT_S
Frame i carries i in its image (synthetic.index_image), a mesh `expected_mesh(i)` named
"body", and results {"frame": i, "half": i / 2}.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from engine.outputs.recorder import Recorder, RecorderSettings
from tests.engine.outputs.synthetic import index_image

FACES = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]], np.int32)  # a tetrahedron


def expected_mesh(i: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (4, 3) float32, faces (4, 3) int32) recorded for frame i."""
    base = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    return base * np.float32(1 + i / 100) + np.float32(i / 7), FACES


def main(directory: str, segment_s: float) -> None:
    recorder = Recorder(directory, RecorderSettings(segment_s=segment_s, fps=30.0))
    recorder.start()
    i = 0
    t_next = time.monotonic()
    while True:  # until SIGKILL: no clean close ever happens
        recorder.send(index_image(i), i, time.monotonic(), results={"frame": i, "half": i / 2},
                      meshes={"body": expected_mesh(i)})
        i += 1
        t_next += 1 / 30
        time.sleep(max(0.0, t_next - time.monotonic()))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
