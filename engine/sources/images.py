"""Still images as a source: one image file, or a folder of images in natural sort order.

Decoding keeps the file's own layout (16-bit, alpha, grayscale) and converts it with
`engine.sources.convert.to_bgr8`, logging once per source what was converted. JPEGs are
decoded with EXIF orientation applied (phones store portrait photos rotated). An image
that cannot be decoded is an error for a single file; in a folder it is skipped with a
warning naming it (and listed in `info()["skipped_files"]`), as long as at least one image
in the folder decodes. Images larger than `MAX_SIDE` on their long side are scaled down to
it: a 12000×9000 photo holds no more detail the models can use than a 4096-pixel one, and
at full size each stage and output would copy 324 MB per frame.
"""
from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.frame import Frame
from engine.sources.base import Pacer, release_frame
from engine.sources.convert import to_bgr8
from engine.sources.errors import SourceError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp",
    ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".exr", ".hdr", ".pic", ".sr", ".ras",
})
# Formats without alpha are decoded with orientation applied; IMREAD_UNCHANGED (needed to
# keep alpha and 16-bit) ignores EXIF orientation.
_NO_ALPHA = frozenset({".jpg", ".jpeg", ".jpe", ".pbm", ".pgm", ".ppm", ".pnm"})
MAX_SIDE = 4096


def to_working_size(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, str | None]:
    """`image` scaled down (aspect kept, INTER_AREA) so its long side is ≤ max_side, with a
    note of the change; unchanged (and no note) when it already fits."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, None
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), f"scaled {w}x{h} to {size[0]}x{size[1]}"


def natural_key(path: Path) -> tuple:
    """Sort key that orders "img2" before "img10" (digits compare as numbers)."""
    parts = re.split(r"(\d+)", path.name.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def decode_image(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read an image file as (H, W, 3) uint8 BGR plus the conversions applied.

    Raises SourceError when the file is missing, unreadable, empty or not decodable.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode copes with non-ASCII paths
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise SourceError(f"image file is empty (0 bytes): {path}")
    flags = (cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH) if path.suffix.lower() in _NO_ALPHA else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(data, flags)
    except cv2.error as exc:
        raise SourceError(f"cannot decode image {path}: {str(exc).strip().splitlines()[-1]}") from exc
    if image is None:
        raise SourceError(f"cannot decode image (corrupt or not an image): {path}")
    try:
        image, notes = to_bgr8(image)
    except SourceError as exc:
        raise SourceError(f"{exc}: {path}") from exc
    image, scaled = to_working_size(image)
    if scaled:
        log.info("%s: %s (working size)", path.name, scaled)  # per file: sizes differ
    return image, notes


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside `folder` (by extension, hidden files excluded), natural order."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=natural_key)


class ImageSource:
    """One image file or a folder of images.

    loop: False -> each image is delivered once, then read() returns None.
          True  -> the sequence repeats forever (a single still image becomes a steady
                   stream, which is what the GUI wants for a dropped photo).
    fps: pace of delivery when `realtime` is True, and the nominal_fps reported.
    """

    def __init__(self, path: str | Path, *, loop: bool = False, fps: float = 30.0, realtime: bool = False) -> None:
        self._path = Path(path)
        self._loop = loop
        self._fps = float(fps)
        self._realtime = realtime
        self._files: list[Path] = []
        self._first: tuple[Path, np.ndarray] | None = None
        self._pos = 0
        self._index = 0
        self._skipped: set[Path] = set()
        self._reported: set[str] = set()
        self._pacer = Pacer(self._fps)
        self._stop = threading.Event()
        self._opened = False

    @property
    def source_id(self) -> str:
        return str(self._path)

    @property
    def nominal_fps(self) -> float:
        return self._fps

    @property
    def is_live(self) -> bool:
        return False

    @property
    def loop(self) -> bool:
        return self._loop

    def open(self) -> None:
        path = self._path
        if not path.exists():
            raise SourceError(f"no such file or folder: {path}")
        if path.is_dir():
            files = list_images(path)
            if not files:
                exts = ", ".join(sorted(IMAGE_EXTENSIONS))
                raise SourceError(f"folder has no images ({exts}): {path}")
        else:
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise SourceError(f"not an image file type ({path.suffix or 'no extension'}): {path}")
            files = [path]
        self._files = files
        self._first = self._first_decodable(files)
        self._pos, self._index = 0, 0
        self._stop.clear()
        self._pacer.reset()
        self._opened = True

    def _first_decodable(self, files: list[Path]) -> tuple[Path, np.ndarray]:
        last_error: SourceError | None = None
        for file in files:
            try:
                image, notes = decode_image(file)
            except SourceError as exc:
                if len(files) == 1:
                    raise
                last_error = exc
                self._skip(file, exc)
                continue
            self._report(notes, file)
            return file, image
        raise SourceError(f"no decodable image in folder {self._path} (last error: {last_error})")

    def _skip(self, file: Path, exc: SourceError) -> None:
        if file not in self._skipped:
            self._skipped.add(file)
            log.warning("skipping %s: %s", file.name, exc)

    def _report(self, notes: list[str], file: Path) -> None:
        for note in notes:
            if note not in self._reported:
                self._reported.add(note)
                log.info("converted %s: %s (further images converted silently)", file, note)

    def _next_image(self) -> tuple[np.ndarray, str] | None:
        """The next decodable image and its file name; None at the end."""
        while True:
            if self._pos >= len(self._files):
                if not self._loop or len(self._skipped) == len(self._files):
                    return None
                self._pos = 0
            file = self._files[self._pos]
            self._pos += 1
            if file in self._skipped:
                continue
            if self._first is not None and file == self._first[0]:
                image = self._first[1]
                if not self._loop or len(self._files) > 1:
                    self._first = None  # only a looping single image keeps it in memory
                    return image, file.name
                return image.copy(), file.name  # consumers get their own array each frame
            try:
                image, notes = decode_image(file)
            except SourceError as exc:
                self._skip(file, exc)
                continue
            self._report(notes, file)
            return image, file.name

    def read(self) -> Frame | None:
        if not self._opened or self._stop.is_set():
            return None
        got = self._next_image()
        if got is None:
            return None
        image, name = got
        frame = release_frame(image, self._index, self.source_id,
                              self._pacer if self._realtime else None, self._stop, name=name,
                              period_s=self._pacer.period)
        if frame is not None:
            self._index += 1
        return frame

    def close(self) -> None:
        self._stop.set()
        self._opened = False

    def info(self) -> dict[str, Any]:
        return {"kind": "images", "path": str(self._path), "count": len(self._files),
                "skipped": len(self._skipped), "position": self._index, "loop": self._loop,
                "fps": self._fps, "skipped_files": sorted(p.name for p in self._skipped)}
