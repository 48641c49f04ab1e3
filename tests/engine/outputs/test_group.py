"""OutputGroup: fan-out, results only to outputs that want them, all-or-nothing start."""
from __future__ import annotations

import numpy as np
import pytest

from engine.outputs.group import OutputGroup
from tests.engine.outputs.synthetic import index_image


class _Plain:
    name = "plain"

    def __init__(self, fail_start: bool = False) -> None:
        self.log: list = []
        self.fail_start = fail_start

    def start(self) -> None:
        if self.fail_start:
            raise OSError("port taken")
        self.log.append("start")

    def send(self, image_bgr, frame_index, t) -> None:
        self.log.append(("send", frame_index))

    def close(self) -> None:
        self.log.append("close")


class _Wanting(_Plain):
    name = "wanting"
    wants_results = True

    def send(self, image_bgr, frame_index, t, *, results=None, meshes=None) -> None:
        self.log.append(("send", frame_index, results, sorted(meshes or {})))


def test_fan_out_and_extras():
    plain, wanting = _Plain(), _Wanting()
    with OutputGroup([plain, wanting]) as group:
        group.send(index_image(3), 3, 0.1, results={"a": 1}, meshes={"body": (None, None)})
    assert plain.log == ["start", ("send", 3), "close"]
    assert wanting.log == ["start", ("send", 3, {"a": 1}, ["body"]), "close"]


def test_copy_images_copies_once_for_all():
    class Keeping(_Plain):
        def send(self, image_bgr, frame_index, t) -> None:
            self.log.append(image_bgr)

    a, b = Keeping(), Keeping()
    image = index_image(9)
    with OutputGroup([a, b], copy_images=True) as group:
        group.send(image, 9, 0.0)
    assert a.log[1] is b.log[1] and a.log[1] is not image
    assert np.array_equal(a.log[1], image)
    with OutputGroup([a]) as group:
        group.send(image, 10, 0.0)
    assert a.log[-2] is image  # without copy_images the array itself is handed on


def test_failed_start_closes_what_was_opened():
    first, bad, never = _Plain(), _Plain(fail_start=True), _Plain()
    with pytest.raises(OSError, match="port taken"):
        OutputGroup([first, bad, never]).start()
    assert first.log == ["start", "close"] and never.log == []
