from __future__ import annotations

from engine.settings import AppSettings, load_settings, reset_settings, save_settings


def test_round_trip(tmp_path):
    path = tmp_path / "s.json"
    s = AppSettings()
    s.last_source = "/videos/a.mp4"
    s.stages = {**s.stages, "volume": True}
    s.hfov_deg = 72.0
    save_settings(s, path)
    loaded = load_settings(path)
    assert loaded.last_source == "/videos/a.mp4"
    assert loaded.stages["volume"] is True
    assert loaded.hfov_deg == 72.0


def test_broken_or_foreign_file_gives_defaults(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    assert load_settings(path) == AppSettings()
    path.write_text('{"view": 3, "unknown": 1, "mirror": true, "stages": {"face": false, "bogus": true}}')
    s = load_settings(path)
    assert s.view == "overlay" and s.mirror is True
    assert s.stages["face"] is False and "bogus" not in s.stages


def test_fields_emit_change_events():
    s = AppSettings()
    seen = []
    s.events.view.connect(seen.append)
    s.view = "mesh"
    assert seen == ["mesh"]


def test_reset(tmp_path):
    path = tmp_path / "s.json"
    save_settings(AppSettings(), path)
    reset_settings(path)
    assert not path.exists()
