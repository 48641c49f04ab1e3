"""letterbox, the latest-wins slot and the threaded output base."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from engine.outputs.base import Output, OutputItem, ThreadedOutput, letterbox, letterbox_geometry
from engine.slots import LatestSlot
from tests.engine.outputs.synthetic import decode_index, index_image


@pytest.mark.parametrize("src, dst, expected", [
    ((640, 480), (1280, 720), (160, 0, 960, 720)),    # 4:3 -> pillarbox
    ((1920, 800), (1280, 720), (0, 93, 1280, 533)),   # 2.4:1 -> letterbox
    ((1280, 720), (1280, 720), (0, 0, 1280, 720)),
    ((410, 412), (1280, 720), (281, 0, 717, 720)),    # talking_head.mp4: 716.5 px rounds up
])
def test_letterbox_geometry(src, dst, expected):
    assert letterbox_geometry(*src, *dst) == expected


def test_letterbox_pads_black_and_keeps_content():
    image = np.full((480, 640, 3), (10, 120, 250), np.uint8)
    out = letterbox(image, 1280, 720)
    assert out.shape == (720, 1280, 3) and out.dtype == np.uint8
    assert not out[:, :160].any() and not out[:, 1120:].any()
    assert np.array_equal(out[:, 160:1120], np.broadcast_to(np.array((10, 120, 250), np.uint8), (720, 960, 3)))


def test_letterbox_scaled_content_still_decodes():
    out = letterbox(index_image(1234, 320, 240), 1280, 720)
    x0, y0, w, h = letterbox_geometry(320, 240, 1280, 720)
    assert decode_index(out[y0:y0 + h, x0:x0 + w]) == 1234


def test_letterbox_rejects_empty():
    with pytest.raises(ValueError):
        letterbox(np.zeros((0, 10, 3), np.uint8), 1280, 720)


def test_latest_slot_drops_old_and_counts():
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(0.1) == 4
    assert slot.dropped == 4 and slot.put_count == 5
    assert slot.get(0.01) is None
    slot.close()
    assert slot.put(7) is False and slot.get() is None


def test_latest_slot_wakes_consumer_on_close():
    slot: LatestSlot[int] = LatestSlot()
    got = []
    t = threading.Thread(target=lambda: got.append(slot.get()))
    t.start()
    slot.close()
    t.join(2)
    assert not t.is_alive() and got == [None]


class _Collecting(ThreadedOutput):
    name = "collecting"

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.items: list[OutputItem] = []
        self.released = False
        self._fail_at = fail_at

    def _deliver(self, item: OutputItem) -> None:
        if item.frame_index == self._fail_at:
            raise OSError("disk full")
        self.items.append(item)

    def _release(self) -> None:
        self.released = True


def test_threaded_output_delivers_on_its_thread_and_implements_protocol():
    out = _Collecting()
    assert isinstance(out, Output)
    with out:
        out.send(index_image(5), 5, 1.5)
        while out.stats.delivered < 1:
            threading.Event().wait(0.01)
    assert out.released
    assert decode_index(out.items[0].image) == 5 and out.items[0].t == 1.5


def test_threaded_output_stops_on_delivery_error_and_counts_later_frames_as_dropped():
    out = _Collecting(fail_at=1)
    out.start()
    out.send(index_image(0), 0, 0.0)
    while out.stats.delivered < 1:
        threading.Event().wait(0.01)
    out.send(index_image(1), 1, 0.0)
    out._thread.join(2)
    assert out.stats.failed == "OSError: disk full"
    out.send(index_image(2), 2, 0.0)
    out.close()
    assert out.stats.dropped == 1 and [i.frame_index for i in out.items] == [0]


def test_a_bug_in_delivery_also_stops_the_output(caplog):
    class Buggy(_Collecting):
        def _deliver(self, item: OutputItem) -> None:
            raise TypeError("cannot convert Foo to JSON")

    out = Buggy()
    out.start()
    out.send(index_image(0), 0, 0.0)
    out._thread.join(2)
    assert out.stats.failed == "TypeError: cannot convert Foo to JSON"
    assert "crashed" in caplog.text and "Traceback" in caplog.text
    out.close()


def test_send_rejects_wrong_images():
    out = _Collecting()
    with out, pytest.raises(ValueError, match="uint8"):
        out.send(np.zeros((4, 4, 3), np.float32), 0, 0.0)
