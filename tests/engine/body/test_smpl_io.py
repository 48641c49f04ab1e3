"""SMPL file loading: a Python-2-style pickle with chumpy arrays and a scipy-sparse
J_regressor (read without chumpy), the .npz variant, and refusals."""
from __future__ import annotations

import importlib.util
import io
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from engine.body.smpl_io import load_smpl, save_smpl_npz
from engine.body.smpl_topology import SMPL_PARENTS
from tests.engine.body.smpl_random import random_smpl

UINT32_MAX = 4294967295  # the root's "parent" in official kintree tables


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets us change how str is written
    """Writes str and bytes as Python 2 byte strings (BINSTRING), as cPickle did, so that
    loading needs encoding='latin1' exactly like the official SMPL files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = _save_py2_string
    dispatch[bytes] = _save_py2_string


class _FakeCh:
    """Pickles like chumpy.ch.Ch: its __dict__ with the value under 'x'."""

    def __init__(self, x):
        self.x = x
        self._dirty_vars = set()
        self._itr = None


class _FakeChExpression:
    """Like a derived chumpy node (e.g. ch_ops.add): terms but no stored 'x'."""

    def __init__(self, a, b):
        self.a, self.b = a, b


def _write_py2_pickle(obj, monkeypatch) -> bytes:
    """Pickle `obj` with the fake classes registered as chumpy.ch.Ch / chumpy.ch_ops.add,
    then unregister them, so the loader sees names it cannot import."""
    ch_mod, ops_mod = types.ModuleType("chumpy.ch"), types.ModuleType("chumpy.ch_ops")
    _FakeCh.__module__, _FakeCh.__qualname__, _FakeCh.__name__ = "chumpy.ch", "Ch", "Ch"
    _FakeChExpression.__module__, _FakeChExpression.__qualname__ = "chumpy.ch_ops", "add"
    _FakeChExpression.__name__ = "add"
    ch_mod.Ch, ops_mod.add = _FakeCh, _FakeChExpression
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
        m.setitem(sys.modules, "chumpy.ch", ch_mod)
        m.setitem(sys.modules, "chumpy.ch_ops", ops_mod)
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(obj)
    # Python 2 scipy kept csc_matrix in the public module scipy.sparse.csc.
    return buf.getvalue().replace(b"scipy.sparse._csc\n", b"scipy.sparse.csc\n")


@pytest.fixture(scope="module")
def model():
    return random_smpl(60, SMPL_PARENTS, num_betas=10, seed=3)


def _official_layout(model, monkeypatch, **overrides) -> bytes:
    kintree = np.stack([model.parents, np.arange(len(model.parents))]).astype(np.int64)
    kintree[0, 0] = UINT32_MAX
    raw = {
        "v_template": _FakeCh(model.v_template.astype(np.float64)),
        "shapedirs": _FakeCh(model.shapedirs.astype(np.float64)),
        "posedirs": model.posedirs.astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(model.J_regressor.astype(np.float64)),
        "weights": _FakeCh(model.weights.astype(np.float64)),
        "kintree_table": kintree,
        "f": model.faces.astype(np.uint32),
        "J": _FakeCh(model.J_regressor.astype(np.float64) @ model.v_template),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }
    return _write_py2_pickle(dict(raw, **overrides), monkeypatch)


def _assert_same(loaded, model):
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "faces", "parents"):
        np.testing.assert_allclose(getattr(loaded, key), getattr(model, key), atol=1e-7, err_msg=key)
    assert loaded.parents[0] == -1 and loaded.parents.dtype == np.int64
    assert loaded.faces.dtype == np.int32 and loaded.v_template.dtype == np.float32


def test_py2_pickle_with_chumpy_and_sparse_loads_without_chumpy(model, monkeypatch, tmp_path):
    data = _official_layout(model, monkeypatch)
    assert b"chumpy.ch\nCh\n" in data and b"scipy.sparse.csc\ncsc_matrix\n" in data
    assert b"U\x0av_template" in data  # keys are Python 2 byte strings
    assert "chumpy" not in sys.modules and importlib.util.find_spec("chumpy") is None
    path = tmp_path / "basicModel_test.pkl"
    path.write_bytes(data)
    _assert_same(load_smpl(path), model)


def test_npz_round_trip(model, tmp_path):
    path = tmp_path / "model.npz"
    save_smpl_npz(model, path)
    _assert_same(load_smpl(path), model)


def test_chumpy_expression_without_value_is_refused(model, monkeypatch, tmp_path):
    expression = _FakeChExpression(_FakeCh(model.v_template), 1.0)
    path = tmp_path / "expr.pkl"
    path.write_bytes(_official_layout(model, monkeypatch, v_template=expression))
    with pytest.raises(ValueError, match="chumpy expression"):
        load_smpl(path)


class _Evil:
    def __reduce__(self):
        import os
        return (os.getcwd, ())


def test_unexpected_classes_are_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": _Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="unexpected class"):
        load_smpl(path)


def test_wrong_shapes_and_missing_keys_are_reported(model, tmp_path):
    good = dict(np.load(_npz(model, tmp_path)))
    bad = dict(good, posedirs=good["posedirs"][:, :, :10])
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match="posedirs"):
        load_smpl(tmp_path / "bad.npz")
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in good.items() if k != "weights"})
    with pytest.raises(ValueError, match="missing weights"):
        load_smpl(tmp_path / "missing.npz")
    unordered = dict(good, kintree_table=np.array([[-1, 2, 0] + list(good["kintree_table"][0, 3:]),
                                                    good["kintree_table"][1]]))
    np.savez(tmp_path / "order.npz", **unordered)
    with pytest.raises(ValueError, match="parent"):
        load_smpl(tmp_path / "order.npz")


def _npz(model, tmp_path):
    path = tmp_path / "good.npz"
    save_smpl_npz(model, path)
    return path


def test_format_is_read_from_content_not_name(model, tmp_path):
    npz = _npz(model, tmp_path)
    installed = tmp_path / "SMPL_NEUTRAL.pkl"  # what `weights import` would call an imported .npz
    installed.write_bytes(npz.read_bytes())
    _assert_same(load_smpl(installed), model)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"GIF89a not a model")
    with pytest.raises(ValueError, match="neither"):
        load_smpl(junk)
