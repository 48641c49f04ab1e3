"""The virtual-camera diagnosis: Linux branches on fake sysfs/dev trees, other platforms by name."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.outputs.diagnose import MODPROBE, diagnose_virtual_camera, find_loopback_devices


def _fake_tree(root: Path, devices: dict[str, str], module: bool, nodes: bool = True,
               loopback_attrs: bool = False) -> tuple[Path, Path]:
    """sys/ and dev/ under root: video4linux entries with `name` files (and, for real
    v4l2loopback devices, its `max_openers` attribute), the module dir, and /dev nodes."""
    sysfs, dev = root / "sys", root / "dev"
    (sysfs / "class" / "video4linux").mkdir(parents=True)
    dev.mkdir()
    for node, label in devices.items():
        entry = sysfs / "class" / "video4linux" / node
        entry.mkdir()
        (entry / "name").write_text(label + "\n")
        if loopback_attrs:
            (entry / "max_openers").write_text("10\n")
        if nodes:
            (dev / node).write_text("")
    if module:
        (sysfs / "module" / "v4l2loopback").mkdir(parents=True)
    return sysfs, dev


def test_no_module_no_device(tmp_path):
    sysfs, dev = _fake_tree(tmp_path, {"video0": "Integrated Camera: Integrated C"}, module=False)
    d = diagnose_virtual_camera("Linux", sysfs_root=sysfs, dev_root=dev)
    assert not d.ok and "not loaded" in d.problem
    assert MODPROBE in d.fix and "exclusive_caps=1" in d.fix and "v4l2loopback-dkms" in d.fix


def test_no_sysfs_class_at_all(tmp_path):
    d = diagnose_virtual_camera("Linux", sysfs_root=tmp_path / "nothing", dev_root=tmp_path)
    assert not d.ok and "not loaded" in d.problem


def test_module_loaded_without_devices(tmp_path):
    sysfs, dev = _fake_tree(tmp_path, {"video0": "Integrated Camera"}, module=True)
    d = diagnose_virtual_camera("Linux", sysfs_root=sysfs, dev_root=dev)
    assert not d.ok and "no loopback device" in d.problem
    assert "modprobe -r v4l2loopback" in d.fix and "devices=1" in d.fix


@pytest.mark.parametrize("label, attrs", [("Dummy video device (0x0000)", False), ("holocap", True),
                                          ("OBS Virtual Camera (v4l2loopback)", False)])
def test_loopback_device_found_by_name_or_attribute(tmp_path, label, attrs):
    sysfs, dev = _fake_tree(tmp_path, {"video0": "Integrated Camera", "video4": label}, module=True,
                            loopback_attrs=False)
    if attrs:
        (sysfs / "class" / "video4linux" / "video4" / "max_openers").write_text("10\n")
    found = find_loopback_devices(sysfs)
    assert [d.node for d in found] == ["video4"] and found[0].label == label
    d = diagnose_virtual_camera("Linux", sysfs_root=sysfs, dev_root=dev)
    assert d.ok and d.problem == "" and d.devices == (f"{dev / 'video4'} ({label})",)


def test_device_node_missing(tmp_path):
    sysfs, dev = _fake_tree(tmp_path, {"video4": "holocap"}, module=True, nodes=False, loopback_attrs=True)
    d = diagnose_virtual_camera("Linux", sysfs_root=sysfs, dev_root=dev)
    assert not d.ok and "do not exist" in d.problem


def test_device_not_writable(tmp_path, monkeypatch):
    """os.access is replaced: as root (CI containers) a chmod would not deny anything."""
    sysfs, dev = _fake_tree(tmp_path, {"video4": "holocap"}, module=True, loopback_attrs=True)
    monkeypatch.setattr("engine.outputs.diagnose.os.access", lambda path, mode: False)
    d = diagnose_virtual_camera("Linux", sysfs_root=sysfs, dev_root=dev)
    assert not d.ok and "permission" in d.problem and "usermod -aG video" in d.fix


def test_device_present_but_open_failed(tmp_path):
    sysfs, dev = _fake_tree(tmp_path, {"video4": "holocap"}, module=True, loopback_attrs=True)
    d = diagnose_virtual_camera("Linux", error="'v4l2loopback' backend: device busy",
                                sysfs_root=sysfs, dev_root=dev)
    assert not d.ok and "device busy" in d.problem and "video4" in d.problem
    assert "close other programs" in d.fix


@pytest.mark.parametrize("system, words", [("Windows", ("OBS Studio 26",)), ("Darwin", ("OBS Studio", "macOS 13", "System"))])
def test_obs_platforms(system, words):
    d = diagnose_virtual_camera(system, error="'obs' backend: virtual camera output could not be started")
    assert not d.ok and "OBS" in d.problem and "could not be started" in d.problem
    assert all(w in d.fix for w in words)
    assert "v4l2loopback" not in d.fix
    assert "Fix:" in d.message()


def test_obs_platform_without_error_is_not_judged():
    assert diagnose_virtual_camera("Windows").ok


def test_unsupported_platform_points_to_mjpeg():
    d = diagnose_virtual_camera("FreeBSD", error="no backend")
    assert not d.ok and "FreeBSD" in d.problem and "--serve-mjpeg" in d.fix
