"""Loading protocol files: clear errors with file and line, broken files skipped, user
protocols overriding built-ins by name, and "save the current layout as a protocol"."""

from __future__ import annotations

import shutil
from pathlib import Path

from factories import ds, study

from workstation.hanging import (
    SavedViewport,
    ViewportOptions,
    best_protocol,
    builtin_dir,
    load_protocol_text,
    load_protocols,
    protocol_yaml_from_layout,
)
from workstation.hanging.model import Reformat

GOOD = """version: 1
name: {name}
match:
  - {{attribute: modalities, contains: {modality}, required: true, weight: {weight}}}
display_sets:
  - id: any
    rules:
      - {{attribute: modality, equals: {modality}, required: true}}
stages:
  - name: one
    layout: 1x1
    viewports:
      - {{display_set: any, window: {window}}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_broken_file_is_reported_with_file_and_line_and_others_load(tmp_path):
    builtins = tmp_path / "builtin"
    shutil.copytree(builtin_dir(), builtins)
    bad_attr = write(builtins, "aaa-bad.yaml", GOOD.format(
        name="bad", modality="CT", weight=1, window="Lung").replace(
        "attribute: modality, equals", "attribute: modaliti, equals"))  # fmt: skip
    bad_yaml = write(builtins, "bbb-syntax.yaml", "name: x\nstages: [\n  - {layout: 1x1\n")
    bad_layout = write(builtins, "ccc-layout.yaml", GOOD.format(
        name="layout", modality="CT", weight=1, window="Lung").replace("1x1", "5x5"))  # fmt: skip
    loaded = load_protocols(builtins=builtins)
    assert set(loaded.names) == {"ct", "mr-brain", "chest-pa-lat", "mammo-screening", "us-cine",
                                 "fallback"}  # fmt: skip
    errors = {Path(e.path).name: e for e in loaded.errors}
    assert set(errors) == {bad_attr.name, bad_yaml.name, bad_layout.name}
    e = errors[bad_attr.name]
    assert e.line == 8 and "attribute 'modaliti' is not one of" in e.message
    assert str(e).startswith(f"{bad_attr}:8: display set 1 (any) rule 1: ")
    assert errors[bad_yaml.name].line == 3 and "not valid YAML" in errors[bad_yaml.name].message
    assert errors[bad_layout.name].line == 11
    assert "unknown layout '5x5'" in errors[bad_layout.name].message


def test_every_problem_of_a_file_is_listed_with_its_line():
    text = """version: 1
name: many
colour: blue
priors:
  - {id: current, rule: newest}
display_sets:
  - id: a
    rules:
      - {attribute: series_description, matches: '(unclosed'}
      - {attribute: number_of_images, matches: '3'}
stages:
  - name: s
    layout: 1x2
    viewports:
      - {display_set: a, study: other, rotate: 45}
      - {display_set: b}
      - {display_set: a, align: left right}
"""
    protocol, errors = load_protocol_text(text, "many.yaml")
    assert protocol is None
    got = [(e.line, e.message.split(":")[0]) for e in errors]
    lines = [line for line, _ in got]
    assert lines == sorted(lines)
    text_of = {e.line: e.message for e in errors}
    assert "unknown key 'colour'" in text_of[3]
    assert "'current'" in text_of[5] or "rule 'newest'" in text_of[5]
    assert "not a valid regular expression" in text_of[9]
    assert "'matches' does not apply to number_of_images" in text_of[10]
    assert "3 viewports for layout '1x2'" in text_of[14]
    assert any(e.line == 15 and "study 'other'" in e.message for e in errors)
    assert any(e.line == 15 and "rotate must be" in e.message for e in errors)
    assert "no display set 'b'" in text_of[16]
    assert any(e.line == 17 and "align must be left, right" in e.message for e in errors)


def test_user_protocol_overrides_builtin_by_name(tmp_path):
    user = tmp_path / "user"
    write(user, "my-ct.yaml", GOOD.format(name="ct", modality="CT", weight=1, window="Lung"))
    write(user, "new.yaml", GOOD.format(name="site-mr", modality="MR", weight=3, window="x"))
    loaded = load_protocols([user])
    ct = loaded.get("ct")
    assert ct.level == "user" and ct.source == str(user / "my-ct.yaml")
    assert loaded.get("site-mr").level == "user"
    assert len([p for p in loaded if p.name == "ct"]) == 1
    assert loaded.overridden and loaded.overridden[0].startswith("ct: ")
    scan = study("1", "20250101", [ds("CT", "AX", number_of_images=50, kind="stack")])
    best = best_protocol(scan, [], loaded)
    assert best.name == "ct" and best.protocol.level == "user"
    assert best.stages[0].viewports[0].options.window == "Lung"


def test_same_name_twice_in_one_directory_keeps_the_first(tmp_path):
    user = tmp_path / "user"
    write(user, "a.yaml", GOOD.format(name="twin", modality="CT", weight=1, window="A"))
    write(user, "b.yaml", GOOD.format(name="twin", modality="CT", weight=1, window="B"))
    loaded = load_protocols([user], builtin=False)
    assert loaded.names == ("twin",)
    assert loaded.get("twin").stages[0].viewports[0].options.window == "A"
    assert "already defined in" in loaded.errors[0].message


def test_save_layout_as_protocol_round_trip(tmp_path):
    text = protocol_yaml_from_layout("my-chest", "1+2", [
        SavedViewport("CT", "LUNG 1.0", options=ViewportOptions(window="Lung", sync_group="g")),
        SavedViewport("CT", "LUNG 1.0", prior=True, options=ViewportOptions(
            window="Lung", flip_horizontal=True, reformat=Reformat("coronal", 10.0, "mip"),
            align=("right", "top"))),
        None,
    ])  # fmt: skip
    protocol, errors = load_protocol_text(text, "saved.yaml")
    assert errors == [] and protocol.name == "my-chest"
    current = study("2.1", "20250101", [
        ds("CT", "SOFT 5.0", number_of_images=60, label="soft"),
        ds("CT", "lung 1.0", number_of_images=300, label="lung"),
    ])  # fmt: skip
    prior = study("2.2", "20240101", [ds("CT", "LUNG 1.0", label="old lung")])
    match = best_protocol(current, [prior], [protocol])
    stage = match.stages[0]
    assert stage.layout == "1+2"
    assert [v.display_set.label if v.display_set else None for v in stage.viewports] == [
        "lung", "old lung", None]  # fmt: skip
    second = stage.viewports[1].options
    assert second.window == "Lung" and second.flip_horizontal
    assert second.reformat == Reformat("coronal", 10.0, "mip")
    assert second.align == ("right", "top") and second.align_steps() == (1, -1)
    assert stage.viewports[0].options.align == ("center", "center")
    assert stage.viewports[0].options.sync_group == "g"
