"""Settings remembered between sessions: round trip, defaults, corrupt files set aside."""

from __future__ import annotations

import os

import yaml

from workstation.ui.settings import CACHE_BUDGET_CAP_MB, Settings, default_cache_budget_mb


def test_defaults_when_the_file_is_missing(tmp_path):
    settings = Settings.load(tmp_path / "settings.yaml")
    assert settings.problems == []
    assert settings.last_layout == "1x1"
    assert settings.cine_fps == 15
    assert settings.sync_mode == "position"
    assert settings.show_reference_lines is True
    assert settings.link_window_level is False and settings.link_zoom is False
    assert settings.window_geometry is None and settings.last_import_folder is None
    assert settings.cache_budget_mb == default_cache_budget_mb()


def test_default_cache_budget_is_a_quarter_of_ram_capped():
    physical_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert default_cache_budget_mb() == min(physical_mb // 4, CACHE_BUDGET_CAP_MB)


def test_round_trip_keeps_every_field_and_unknown_entries(tmp_path):
    path = tmp_path / "home" / "settings.yaml"
    settings = Settings.load(path)
    settings.window_geometry = bytes(range(256))
    settings.window_state = b"\x00\x01state"
    settings.last_layout = "1+2"
    settings.cache_budget_mb = 2048
    settings.cine_fps = 24
    settings.show_reference_lines = False
    settings.sync_mode = "index"
    settings.link_window_level = True
    settings.link_zoom = True
    settings.last_import_folder = "/media/cdrom"
    settings.extra["from_a_newer_version"] = {"a": [1, 2]}
    settings.save()
    again = Settings.load(path)
    assert again == settings
    assert again.problems == []
    stored = yaml.safe_load(path.read_text())
    assert stored["version"] == 1
    assert isinstance(stored["window_geometry"], str)  # base64 text, not a YAML binary
    assert stored["from_a_newer_version"] == {"a": [1, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["settings.yaml"]  # no temp file left


def test_corrupt_file_gives_defaults_and_a_bad_copy(tmp_path):
    path = tmp_path / "settings.yaml"
    corrupt = "last_layout: 2x2\ncine_fps: [unclosed\n"
    path.write_text(corrupt)
    settings = Settings.load(path)
    assert settings.last_layout == "1x1"
    assert any(f"{path}:" in p and "not valid YAML" in p for p in settings.problems)
    assert (tmp_path / "settings.yaml.bad").read_text() == corrupt
    settings.save()  # the user's broken file is safe in .bad
    assert Settings.load(path).problems == []
    assert (tmp_path / "settings.yaml.bad").read_text() == corrupt


def test_file_that_is_not_a_mapping_or_not_text(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("- just\n- a list\n")
    assert Settings.load(path).problems
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    settings = Settings.load(path)
    assert settings.problems and settings.last_layout == "1x1"
    assert (tmp_path / "settings.yaml.bad").read_bytes() == b"\x89PNG\r\n\x1a\n\x00\xff"


def test_wrong_values_fall_back_per_field(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "last_layout: 2x2\nsync_mode: sideways\ncache_budget_mb: lots\nlink_zoom: 'yes'\n"
        "window_geometry: '***'\ncine_fps: 0\n"
    )
    settings = Settings.load(path)
    assert settings.last_layout == "2x2"  # the good value is kept
    assert settings.sync_mode == "position"
    assert settings.cache_budget_mb == default_cache_budget_mb()
    assert settings.link_zoom is False
    assert settings.window_geometry is None
    assert settings.cine_fps == 15
    text = "\n".join(settings.problems)
    for name in ("sync_mode", "cache_budget_mb", "link_zoom", "window_geometry", "cine_fps"):
        assert f"{path}: {name}:" in text
    assert (tmp_path / "settings.yaml.bad").exists()


def test_save_failure_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "settings.yaml"
    settings = Settings.load(path)
    settings.last_layout = "2x2"
    settings.save()
    settings.last_layout = "3x3"

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    try:
        settings.save()
    except OSError:
        pass
    else:
        raise AssertionError("save() should raise")
    monkeypatch.undo()
    assert Settings.load(path).last_layout == "2x2"
    assert [p.name for p in tmp_path.iterdir()] == ["settings.yaml"]
