"""Window/level presets: shipped defaults, user overrides, errors with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from workstation.ui.presets import (
    PresetBook,
    PresetError,
    WindowPreset,
    load_presets,
    load_presets_or_defaults,
)

CT_PRESETS = {
    1: ("Brain", 40, 80),
    2: ("Subdural", 75, 215),
    3: ("Stroke", 40, 40),
    4: ("Soft tissue", 50, 400),
    5: ("Lung", -600, 1500),
    6: ("Mediastinum", 50, 350),
    7: ("Bone", 400, 1800),
    8: ("Liver", 90, 150),
    9: ("Angio", 300, 600),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "window_presets.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_defaults_have_every_ct_preset_on_its_key():
    book = load_presets(None)
    for key, (name, center, width) in CT_PRESETS.items():
        assert book.by_key("CT", key) == WindowPreset("CT", name, center, width, key)
    assert [p.key for p in book.for_modality("CT")] == list(range(1, 10))
    assert book.for_modality("ct") == book.for_modality("CT")


def test_no_default_presets_for_mr_pt_cr_dx():
    book = load_presets(None)
    for modality in ("MR", "PT", "CR", "DX"):
        assert book.for_modality(modality) == []
        assert book.by_key(modality, 1) is None


def test_missing_user_file_is_not_a_problem(tmp_path):
    book, problems = load_presets_or_defaults(tmp_path / "absent.yaml")
    assert problems == []
    assert len(book.for_modality("CT")) == 9


def test_user_file_changes_adds_moves_key_and_removes(tmp_path):
    user = write(
        tmp_path,
        """
        version: 1
        presets:
          CT:
            brain: {center: 35, width: 90}
            Temporal bone: {center: 600, width: 2800, key: 3}
            Liver: {remove: true}
            Angio: {key: null}
          mr:
            T2 brain: {center: 500, width: 1000, key: 1}
            Flair: {center: 700, width: 1400}
        """,
    )
    book = load_presets(user)
    brain = book.by_key("CT", 1)
    assert (brain.name, brain.center, brain.width) == ("brain", 35, 90)
    assert book.by_key("CT", 3).name == "Temporal bone"
    stroke = next(p for p in book.for_modality("CT") if p.name == "Stroke")
    assert stroke.key is None  # lost key 3 to the user's preset, kept its window
    assert (stroke.center, stroke.width) == (40, 40)
    names = [p.name for p in book.for_modality("CT")]
    assert "Liver" not in names
    assert book.by_key("CT", 9) is None
    # ordered by key, then the keyless ones by name
    assert names[-2:] == ["Angio", "Stroke"]
    assert [p.name for p in book.for_modality("MR")] == ["T2 brain", "Flair"]
    assert book.sources[-1] == user


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("    Brain: {center: 40, width: 0}\n", 4, "width must be > 0"),
        ("    Brain: {center: 40, width: -5}\n", 4, "width must be > 0"),
        ("    Brain: {center: forty, width: 80}\n", 4, "center must be a number"),
        ("    Brain: {center: 40, width: 80, colour: red}\n", 4, "unknown field 'colour'"),
        (
            "    A: {center: 1, width: 2, key: 4}\n    B: {center: 1, width: 2, key: 4}\n",
            5,
            "duplicate key 4 on CT: already used by 'A' on line 4",
        ),
        ("    Brain: {center: 40, width: 80, key: 12}\n", 4, "key must be a digit 1-9"),
        ("    New one: {center: 40}\n", 4, "new preset 'New one' needs width"),
        ("    Nothing: {remove: true}\n", 4, "no preset 'Nothing' on CT to remove"),
        ("    Brain: {center: 1, width: 2}\n    Brain: {center: 3, width: 4}\n", 5, "duplicate"),
        ("    Brain: [40, 80]\n", 4, "must be a mapping"),
    ],
)
def test_bad_user_file_names_file_line_and_problem(tmp_path, body, line, message):
    user = write(tmp_path, "version: 1\npresets:\n  CT:\n" + body)
    with pytest.raises(PresetError) as caught:
        load_presets(user)
    text = str(caught.value)
    assert text.startswith(f"{user}:{line}: "), text
    assert message in text


def test_yaml_syntax_error_has_a_line(tmp_path):
    user = write(tmp_path, "presets:\n  CT:\n    Brain: {center: 40, width: 80\n    Lung: {}\n")
    with pytest.raises(PresetError, match=rf"^{tmp_path}/window_presets.yaml:4: not valid YAML"):
        load_presets(user)


def test_all_problems_are_reported_not_just_the_first(tmp_path):
    user = write(
        tmp_path,
        """
        presets:
          CT:
            A: {center: 1, width: 0}
            B: {centre: 1, width: 2}
        colours: {}
        """,
    )
    with pytest.raises(PresetError) as caught:
        load_presets(user)
    assert caught.value.problems == (
        f"{user}:5: unknown entry 'colours' (expected 'version', 'presets')",
        f"{user}:3: width must be > 0, got 0",
        f"{user}:4: unknown field 'centre' in preset 'B' (known: center, width, key, remove)",
    )


def test_bad_user_file_falls_back_to_defaults_with_problems(tmp_path):
    user = write(tmp_path, "presets:\n  CT:\n    Brain: {center: 40, width: 0}\n")
    book, problems = load_presets_or_defaults(user)
    assert book.by_key("CT", 1).width == 80
    assert problems[0] == f"{user}:3: width must be > 0, got 0"
    assert "shipped" in problems[-1]


def test_unreadable_user_file_is_reported(tmp_path):
    user = tmp_path / "window_presets.yaml"
    user.write_bytes(b"\xff\xfe\x00bad")
    book, problems = load_presets_or_defaults(user)
    assert len(book) == 9
    assert str(user) in problems[0]


def test_preset_book_orders_by_key_then_name():
    book = PresetBook(
        [
            WindowPreset("MR", "b", 1, 2),
            WindowPreset("MR", "A", 1, 2),
            WindowPreset("MR", "z", 1, 2, key=2),
            WindowPreset("MR", "y", 1, 2, key=1),
        ]
    )
    assert [p.name for p in book.for_modality("MR")] == ["y", "z", "A", "b"]
    assert book.modalities() == ["MR"]
