"""Key and mouse bindings: defaults, user overrides, conflicts, and QKeyEvent matching."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent

from workstation.ui.bindings import (
    ACTIONS,
    Bindings,
    BindingsError,
    load_bindings,
    load_bindings_or_defaults,
    parse_key,
    parse_mouse_slot,
)

Key = Qt.Key
Mod = Qt.KeyboardModifier
Button = Qt.MouseButton

EXPECTED_ACTIONS = (
    "scroll.next scroll.previous scroll.page_next scroll.page_previous scroll.first scroll.last "
    + " ".join(f"preset.{n}" for n in range(1, 10))
    + " window.auto view.reset view.invert view.rotate_cw view.rotate_ccw view.flip_h view.flip_v"
    " view.fit view.one_to_one view.true_size cine.toggle cine.faster cine.slower"
    " viewport.maximize viewport.next sync.toggle sync.register hanging.next_stage"
    " hanging.previous_stage reference_lines.toggle overlays.toggle"
    " annotations.toggle annotation.delete annotation.undo annotation.redo annotation.cancel"
    " help.show"
).split()


def press(
    key: Qt.Key, modifiers: Qt.KeyboardModifier = Mod.NoModifier, text: str = ""
) -> QKeyEvent:
    return QKeyEvent(QEvent.Type.KeyPress, key, modifiers, text)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "key_bindings.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def defaults() -> Bindings:
    return load_bindings(None)


def test_action_ids_are_exactly_the_viewers(defaults):
    assert list(ACTIONS) == EXPECTED_ACTIONS
    assert all(ACTIONS[a].strip() for a in ACTIONS)
    assert set(defaults.keys) == set(ACTIONS)
    assert all(defaults.keys_for(a) for a in ACTIONS), "every action has a default key"


@pytest.mark.parametrize(
    ("key", "modifiers", "action"),
    [
        (Key.Key_Down, Mod.NoModifier, "scroll.next"),
        (Key.Key_Up, Mod.NoModifier, "scroll.previous"),
        (Key.Key_PageDown, Mod.NoModifier, "scroll.page_next"),
        (Key.Key_PageUp, Mod.NoModifier, "scroll.page_previous"),
        (Key.Key_Home, Mod.NoModifier, "scroll.first"),
        (Key.Key_End, Mod.NoModifier, "scroll.last"),
        (Key.Key_1, Mod.NoModifier, "preset.1"),
        (Key.Key_9, Mod.NoModifier, "preset.9"),
        (Key.Key_5, Mod.KeypadModifier, "preset.5"),  # keypad digits count as digits
        (Key.Key_A, Mod.NoModifier, "window.auto"),
        (Key.Key_R, Mod.NoModifier, "view.reset"),
        (Key.Key_R, Mod.ControlModifier, "view.rotate_cw"),
        (Key.Key_BracketRight, Mod.NoModifier, "view.rotate_cw"),
        (Key.Key_R, Mod.ControlModifier | Mod.ShiftModifier, "view.rotate_ccw"),
        (Key.Key_BracketLeft, Mod.NoModifier, "view.rotate_ccw"),
        (Key.Key_I, Mod.NoModifier, "view.invert"),
        (Key.Key_P, Mod.NoModifier, "view.one_to_one"),
        (Key.Key_Space, Mod.NoModifier, "cine.toggle"),
        (Key.Key_Plus, Mod.ShiftModifier, "cine.faster"),  # "+" needs Shift on many keyboards
        (Key.Key_Plus, Mod.KeypadModifier, "cine.faster"),
        (Key.Key_Equal, Mod.NoModifier, "cine.faster"),
        (Key.Key_Minus, Mod.KeypadModifier, "cine.slower"),
        (Key.Key_Tab, Mod.NoModifier, "viewport.next"),
        (Key.Key_T, Mod.ControlModifier, "annotations.toggle"),
        (Key.Key_T, Mod.NoModifier, "view.true_size"),
        (Key.Key_F1, Mod.NoModifier, "help.show"),
        (Key.Key_Question, Mod.ShiftModifier, "help.show"),
        (Key.Key_1, Mod.ShiftModifier, "preset.1"),  # AZERTY: digits need Shift
    ],
)
def test_key_events_map_to_actions(defaults, key, modifiers, action):
    assert defaults.action_for_key(press(key, modifiers)) == action


@pytest.mark.parametrize(
    ("key", "modifiers"),
    [
        (Key.Key_R, Mod.ShiftModifier),  # letters keep Shift significant
        (Key.Key_R, Mod.AltModifier),
        (Key.Key_1, Mod.ControlModifier),
        (Key.Key_Down, Mod.ShiftModifier),
        (Key.Key_Shift, Mod.ShiftModifier),
        (Key.Key_Control, Mod.ControlModifier),
        (Key.Key_Z, Mod.NoModifier),
    ],
)
def test_unbound_key_events_give_none(defaults, key, modifiers):
    assert defaults.action_for_key(press(key, modifiers)) is None


def test_default_mouse_map(defaults):
    assert defaults.mouse_action(Button.LeftButton, Mod.NoModifier) == "window_level"
    assert defaults.mouse_action(Button.MiddleButton, Mod.NoModifier) == "pan"
    assert defaults.mouse_action(Button.RightButton, Mod.NoModifier) == "zoom"
    assert defaults.mouse_action(Button.LeftButton, Mod.ShiftModifier) == "locate"
    assert defaults.mouse_action(Button.LeftButton, Mod.ControlModifier) is None
    assert defaults.mouse_action(Button.BackButton, Mod.NoModifier) is None
    assert defaults.wheel_action(Mod.NoModifier) == "scroll"
    assert defaults.wheel_action(Mod.ControlModifier) == "zoom"
    assert defaults.wheel_action(Mod.AltModifier) is None


def test_user_file_overrides_keys_and_mouse(tmp_path):
    user = write(
        tmp_path,
        """
        version: 1
        keys:
          view.reset: [Escape]
          annotation.cancel: []
          view.rotate_cw: r
          cine.toggle: []
          view.one_to_one: [ctrl+0]
        mouse:
          right: pan
          middle: none
          ctrl+left: zoom
          shift+wheel: zoom
        """,
    )
    bindings = load_bindings(user)
    assert bindings.keys["view.reset"] == ("Esc",)
    assert bindings.keys["view.rotate_cw"] == ("R",)
    assert bindings.keys["cine.toggle"] == ()
    assert bindings.action_for_key(press(Key.Key_R)) == "view.rotate_cw"
    assert bindings.action_for_key(press(Key.Key_Escape)) == "view.reset"
    assert bindings.action_for_key(press(Key.Key_Space)) is None
    assert bindings.action_for_key(press(Key.Key_0, Mod.ControlModifier)) == "view.one_to_one"
    assert bindings.action_for_key(press(Key.Key_0, Mod.ControlModifier | Mod.KeypadModifier)) == (
        "view.one_to_one"
    )
    assert bindings.action_for_key(press(Key.Key_Down)) == "scroll.next"  # untouched default
    assert bindings.mouse_action(Button.RightButton, Mod.NoModifier) == "pan"
    assert bindings.mouse_action(Button.MiddleButton, Mod.NoModifier) is None
    assert bindings.mouse_action(Button.LeftButton, Mod.ControlModifier) == "zoom"
    assert bindings.mouse_action(Button.LeftButton, Mod.NoModifier) == "window_level"
    assert bindings.wheel_action(Mod.ShiftModifier) == "zoom"
    assert bindings.sources[-1] == user


def test_conflict_names_both_actions_and_the_users_line(tmp_path):
    user = write(tmp_path, "keys:\n  view.invert: [I]\n  view.rotate_cw: [R]\n")
    with pytest.raises(BindingsError) as caught:
        load_bindings(user)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{user}:3: key 'R' is bound to both view.rotate_cw and view.reset")
    assert "key_bindings.yaml:" in problem.split("view.reset", 1)[1]  # where the other one is


def test_conflict_within_the_user_file(tmp_path):
    user = write(tmp_path, "keys:\n  view.flip_h: [X]\n  view.flip_v:\n    - Y\n    - x\n")
    with pytest.raises(BindingsError, match=rf"{user}:5: key 'X' is bound to both view.flip_v "):
        load_bindings(user)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("keys:\n  view.flip: [X]\n", 2, "unknown action 'view.flip'; did you mean 'view.flip_"),
        ("keys:\n  view.fit:\n    - F\n    - Ctrl+Banana\n", 4, "'Ctrl+Banana' is not a key"),
        ("keys:\n  view.fit: ['Ctrl+K, Ctrl+C']\n", 2, "several keys"),
        ("keys:\n  view.fit: [Ctrl]\n", 2, "is not a key"),
        ("mouse:\n  left: paint\n", 2, "unknown or unsuitable mouse action 'paint'"),
        ("mouse:\n  wheel: window_level\n", 2, "unsuitable mouse action 'window_level'"),
        ("mouse:\n  thumb: pan\n", 2, "unknown mouse button 'thumb'"),
        ("mouse:\n  hyper+left: pan\n", 2, "unknown modifier 'hyper'"),
        ("mouse:\n  shift+ctrl+left: pan\n  ctrl+shift+left: zoom\n", 3, "given twice"),
        ("keys:\n  view.fit: [F]\n  view.fit: [G]\n", 3, "duplicate entry 'view.fit'"),
        ("version: 2\n", 1, "version 2 is not understood"),
        ("shortcuts: {}\n", 1, "unknown entry 'shortcuts'"),
        ("keys: [F]\n", 1, "'keys' must be a mapping"),
        ("keys:\n  view.fit: [F\n", 3, "not valid YAML"),
    ],
)
def test_bad_user_file_names_file_line_and_problem(tmp_path, text, line, message):
    user = write(tmp_path, text)
    with pytest.raises(BindingsError) as caught:
        load_bindings(user)
    problem = caught.value.problems[0]
    assert problem.startswith(f"{user}:{line}: "), problem
    assert message in problem


def test_bad_user_file_falls_back_to_defaults(tmp_path):
    user = write(tmp_path, "keys:\n  view.rotate_cw: [R]\n")
    bindings, problems = load_bindings_or_defaults(user)
    assert bindings.action_for_key(press(Key.Key_R)) == "view.reset"
    assert problems[0].startswith(f"{user}:2: key 'R'")
    assert "shipped" in problems[-1]
    assert load_bindings_or_defaults(tmp_path / "absent.yaml")[1] == []


def test_parse_helpers():
    assert parse_key("ctrl+r")[0] == "Ctrl+R"
    assert parse_key("PageDown")[0] == "PgDown"
    assert parse_key("Num+1") == parse_key("1")
    assert parse_key("Ctrl++")[0] == "Ctrl++"
    assert parse_mouse_slot("Shift+Ctrl+Left") == "ctrl+shift+left"
    with pytest.raises(ValueError):
        parse_key("")


def test_bindings_built_directly_refuse_conflicts():
    with pytest.raises(BindingsError, match="bound to both view.fit and view.reset"):
        Bindings(keys={"view.reset": ("R",), "view.fit": ("r",)}, mouse={})
    with pytest.raises(BindingsError, match="unknown action"):
        Bindings(keys={"view.zap": ("Z",)}, mouse={})
