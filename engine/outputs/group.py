"""Several outputs behind one call: what the app and the headless runner hand images to."""
from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping

import numpy as np

from engine.outputs.base import Output

logger = logging.getLogger(__name__)


class OutputGroup:
    """Fans each rendered image out to its outputs.

    Outputs whose class sets `wants_results = True` (the recorder) also get the frame's
    `results` and `meshes` as keyword arguments. `start()` opens each output and raises the
    first failure after closing the ones already open; `close()` closes all, in reverse.
    copy_images: copy each image once before handing it out, for callers that reuse their
    buffer (outputs keep a reference to what they are sent).
    """

    def __init__(self, outputs: list[Output] | None = None, copy_images: bool = False) -> None:
        self.outputs: list[Output] = list(outputs or [])
        self.copy_images = copy_images
        self.errors: dict[str, str] = {}  # output name -> why `send` to it failed (it is skipped)

    def set_lossless(self, lossless: bool) -> None:
        """Headless runs over files: outputs that can wait (the recorder, video files) get
        every frame; live outputs (MJPEG, virtual camera) stay latest-wins."""
        for output in self.outputs:
            if getattr(output, "records", False) and hasattr(output, "lossless"):
                output.lossless = lossless

    def failures(self) -> dict[str, str]:
        """name -> cause, for each output that stopped (in `send` or on its own thread)."""
        failed = dict(self.errors)
        for output in self.outputs:
            stats = getattr(output, "stats", None)
            why = getattr(stats, "failed", None)
            if why and output.name not in failed:
                failed[output.name] = why
        return failed

    def add(self, output: Output) -> None:
        self.outputs.append(output)

    def start(self) -> None:
        started: list[Output] = []
        try:
            for output in self.outputs:
                output.start()
                started.append(output)
        except BaseException:
            for output in reversed(started):  # leave nothing half-open behind
                output.close()
            raise

    def send(self, image_bgr: np.ndarray, frame_index: int, t: float, *,
             results: Any = None, meshes: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        """image_bgr: (H, W, 3) uint8 BGR, the clean rendered view. Returns at once."""
        if self.copy_images and self.outputs:
            image_bgr = np.array(image_bgr, copy=True)
        for output in self.outputs:
            if output.name in self.errors:
                continue
            # One output raising (a bug, a bad image for it) must not starve the others.
            try:
                if getattr(output, "wants_results", False):
                    output.send(image_bgr, frame_index, t, results=results, meshes=meshes)  # type: ignore[call-arg]
                else:
                    output.send(image_bgr, frame_index, t)
            except Exception as exc:
                self.errors[output.name] = f"{type(exc).__name__}: {exc}"
                logger.error("%s output disabled: %s", output.name, self.errors[output.name],
                             exc_info=logger.isEnabledFor(logging.DEBUG))

    def close(self) -> None:
        for output in reversed(self.outputs):
            try:
                output.close()
            except Exception as exc:  # a failing close must not leave the others open
                self.errors.setdefault(output.name, f"{type(exc).__name__} on close: {exc}")
                logger.error("%s output failed to close: %s", output.name, exc)

    def __iter__(self) -> Iterator[Output]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def __enter__(self) -> "OutputGroup":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
