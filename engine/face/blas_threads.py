"""Run small numpy linear algebra single-threaded.

numpy's OpenBLAS splits even small products (a 1400×60 Jacobian) over both cores. On a
2-core machine where capture, mediapipe and other stages also run, the threads wait for
each other and a 2 ms fit becomes 8 ms. `single_threaded_blas()` sets OpenBLAS to one
thread for the duration of a block and restores the previous count after.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
from pathlib import Path
from typing import Callable, Iterator

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _openblas_controls() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """(get, set) of the OpenBLAS that numpy uses, or None when it cannot be found."""
    import numpy

    libs = Path(numpy.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("libopenblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))  # the loaded instance: same file, same handle
        except OSError as exc:
            log.debug("cannot open %s: %s", path, exc)
            continue
        for suffix in ("64_", "_64_", ""):
            get = getattr(lib, f"openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                return get, put
    log.debug("numpy's OpenBLAS not found; BLAS threading left as it is")
    return None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    controls = _openblas_controls()
    if controls is None:
        yield
        return
    get, put = controls
    previous = get()
    if previous == 1:
        yield
        return
    put(1)
    try:
        yield
    finally:
        put(previous)
