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


def test_every_bad_value_warns_once_names_its_key_and_keeps_a_backup(tmp_path, caplog):
    import json
    import logging

    path = tmp_path / "settings.json"
    bad = {"device": "tpu", "face_backend": "deca", "volume_backend": None, "hfov_deg": 0,
           "volume_yaw_deg": float("inf"), "target_fps": -1, "person": 2.5, "view": "vr",
           "smoothing": "yes", "stages": {"face": 1}, "disk_budget_gb": 0, "camera_mode": "huge",
           "remote_url": "ftp://gpu-box"}
    path.write_text(json.dumps({**bad, "mirror": True}))
    with caplog.at_level(logging.WARNING):
        s = load_settings(path)
    defaults = AppSettings()
    for key in bad:
        assert getattr(s, key) == getattr(defaults, key), key
        assert sum(f"{key}=" in r.getMessage() for r in caplog.records) == 1, key
    assert s.mirror is True  # the good value next to them is used
    assert json.loads((tmp_path / "settings.json.bad").read_text().replace("Infinity", "null"))["device"] == "tpu"


def test_good_values_of_every_rule_load(tmp_path):
    import json

    path = tmp_path / "settings.json"
    good = {"device": "cpu", "face_backend": "tddfa", "body_backend": "hmr", "volume_backend": "pifu",
            "hfov_deg": 90, "target_fps": 24.0, "person": 1, "view": "split", "camera_mode": "1280x720@30",
            "segment_minutes": 2.5, "disk_budget_gb": 50, "remote_url": "http://gpu-box.local:8000"}
    path.write_text(json.dumps(good))
    s = load_settings(path)
    for key, value in good.items():
        assert getattr(s, key) == value, key
    assert isinstance(s.hfov_deg, float)
    assert not (tmp_path / "settings.json.bad").exists()
