"""Reading the official 3DDFA_V2 pickles (parameter statistics, BFM, triangles) safely.

They are downloaded files, so unpickling is restricted to numpy arrays, dtypes and scalars
inside plain dicts/lists: anything else raises instead of running.
"""
from __future__ import annotations

import pickle
from pathlib import Path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Only numpy arrays (in dicts/lists) may come out: these pickles are downloaded files."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # protocol-2 pickles written by Python 3 store raw bytes through this (harmless) call
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a parameter/BFM pickle")
        return super().find_class(module, name)


def load_numpy_pickle(path: str | Path) -> object:
    """Unpickle a file that holds only dicts/lists of numpy arrays (official 3DDFA assets)."""
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f, encoding="latin1").load()
