"""The MJPEG page in a real browser: headless Chromium shows the stream and the <img> updates.

Method (stdlib only): Chromium runs headless with `--remote-debugging-pipe`, which speaks the
DevTools protocol as NUL-separated JSON over fds 3/4 (tests/engine/outputs/cdp_pipe.py), so
no websocket client is needed. The test opens the server's own page `/` (with its token),
waits for the <img>, then has the page draw the <img> into a canvas every 250 ms and read
the frame index that the synthetic frames carry as black/white bars. The image element
updates when those indices keep increasing; a still or broken image fails the test.
Skips, with the reason, when no Chromium is installed (`apt-get install -y chromium`).
"""
from __future__ import annotations

import json
import time

import pytest

from engine.outputs.mjpeg import MjpegServer, MjpegSettings
from tests.engine.outputs.cdp_pipe import HeadlessChromium, find_chromium
from tests.engine.outputs.synthetic import Feeder, bar_centres

WIDTH, HEIGHT = 320, 240
SAMPLES = 8

# Draw the <img> into a canvas SAMPLES times, 250 ms apart; decode the bars at each sample.
SAMPLE_JS = """
new Promise((resolve) => {
  const img = document.getElementById('stream');
  const xs = %(xs)s, samples = [];
  const canvas = document.createElement('canvas');
  const take = () => {
    if (img.naturalWidth > 0) {
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      const g = canvas.getContext('2d');
      g.drawImage(img, 0, 0);
      const row = g.getImageData(0, canvas.height >> 1, canvas.width, 1).data;
      let index = 0;
      for (const x of xs) index = (index << 1) | (row[4 * x] > 127 ? 1 : 0);
      samples.push({w: img.naturalWidth, h: img.naturalHeight, index: index});
    }
    if (samples.length >= %(n)d) resolve(samples); else setTimeout(take, 250);
  };
  take();
})
"""


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found (apt-get install -y chromium); the browser test needs it")
    return path


def test_page_image_updates_in_headless_chromium(chromium_path):
    server = MjpegServer(MjpegSettings(token="browser-token"))
    server.start()
    try:
        with Feeder(server.send, fps=30.0, width=WIDTH, height=HEIGHT) as feeder, \
                HeadlessChromium(chromium_path) as chrome:
            session = chrome.open_page(server.url("/"))
            deadline = time.monotonic() + 15
            while not chrome.evaluate(session, "!!document.getElementById('stream')"):
                assert time.monotonic() < deadline, "the page never showed its <img>"
                time.sleep(0.1)
            samples = chrome.evaluate(session, SAMPLE_JS % {"xs": json.dumps(bar_centres(WIDTH)), "n": SAMPLES})
            sent = feeder.sent
    finally:
        server.close()
    assert len(samples) == SAMPLES
    assert all((s["w"], s["h"]) == (WIDTH, HEIGHT) for s in samples), samples
    indices = [s["index"] for s in samples]
    # A starved browser may show one frame for two samples; it must never go back, and must
    # show several different frames over ~1.75 s (about 50 were sent meanwhile).
    assert all(b >= a for a, b in zip(indices, indices[1:])), f"the <img> went back: {indices}"
    assert len(set(indices)) >= SAMPLES // 2, f"the <img> did not update: {indices}"
    assert indices[-1] - indices[0] >= 15, indices
    assert indices[-1] <= sent
