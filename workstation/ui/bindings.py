"""Keyboard and mouse bindings: the shipped YAML file plus the user's overrides.

The viewer implements the actions named in ``ACTIONS`` (keys) and ``MOUSE_ACTIONS`` (mouse drags and
the wheel); this module only says which key or mouse slot asks for which action. A user file with the
layout of ``workstation/resources/key_bindings.yaml`` replaces the keys of each action it lists and
each mouse slot it lists::

    version: 1
    keys:
      view.reset: [Esc]          # R no longer resets ...
      annotation.cancel: []      # (Esc was cancel drawing)
      view.rotate_cw: [R]        # ... so R can rotate
      cine.toggle: []            # unbound
    mouse:
      right: pan
      ctrl+left: zoom

A key bound to two actions is an error that names both. Problems read ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent, QKeySequence

from workstation.ui.presets import (
    TunableFileError,
    YamlMap,
    check_version,
    load_or_defaults,
    packaged_resource,
    read_user_text,
    read_yaml_file,
)

ACTIONS: dict[str, str] = {
    "scroll.next": "Next image",
    "scroll.previous": "Previous image",
    "scroll.page_next": "Skip forward a page of images",
    "scroll.page_previous": "Skip back a page of images",
    "scroll.first": "First image",
    "scroll.last": "Last image",
    **{f"preset.{n}": f"Window/level preset {n}" for n in range(1, 10)},
    "window.auto": "Automatic window/level",
    "view.reset": "Reset the view (window, zoom, pan, rotation, flip, invert)",
    "view.invert": "Invert greyscale",
    "view.rotate_cw": "Rotate 90° clockwise",
    "view.rotate_ccw": "Rotate 90° anticlockwise",
    "view.flip_h": "Flip horizontally",
    "view.flip_v": "Flip vertically",
    "view.fit": "Zoom to fit the viewport",
    "view.one_to_one": "Zoom 1:1 (one image pixel per screen pixel)",
    "view.true_size": "True size (calibrated millimetres on screen)",
    "cine.toggle": "Start or stop cine",
    "cine.faster": "Cine faster",
    "cine.slower": "Cine slower",
    "viewport.maximize": "Maximise or restore the active viewport",
    "viewport.next": "Activate the next viewport",
    "sync.toggle": "Synchronised scrolling on or off",
    "sync.register": "Register two series: click the same anatomy in each",
    "hanging.next_stage": "Next stage of the hanging protocol",
    "hanging.previous_stage": "Previous stage of the hanging protocol",
    "reference_lines.toggle": "Reference lines on or off",
    "overlays.toggle": "Corner text and overlays on or off",
    "annotations.toggle": "Annotations and measurements on or off",
    "annotation.delete": "Delete the selected annotation or measurement",
    "annotation.undo": "Undo the last annotation edit",
    "annotation.redo": "Redo the annotation edit undone",
    "annotation.cancel": "Cancel the drawing in progress, else clear the selection",
    "help.show": "Show this help",
}
"""Every key action the viewer implements, with what a user reads in the help panel."""

MOUSE_ACTIONS: dict[str, str] = {
    "window_level": "Window/level",
    "pan": "Pan",
    "zoom": "Zoom",
    "scroll": "Scroll through the images",
    "locate": "Locate: move the other viewports to this point",
    "none": "Nothing",
}
"""What a mouse button drag or the wheel can do."""

MOUSE_BUTTONS: dict[str, Qt.MouseButton] = {
    "left": Qt.MouseButton.LeftButton,
    "middle": Qt.MouseButton.MiddleButton,
    "right": Qt.MouseButton.RightButton,
    "back": Qt.MouseButton.BackButton,
    "forward": Qt.MouseButton.ForwardButton,
}
WHEEL = "wheel"
_WHEEL_ACTIONS = ("scroll", "zoom", "none")

# Modifier names in the order a canonical mouse slot spells them.
_MODIFIERS: dict[str, Qt.KeyboardModifier] = {
    "ctrl": Qt.KeyboardModifier.ControlModifier,
    "alt": Qt.KeyboardModifier.AltModifier,
    "shift": Qt.KeyboardModifier.ShiftModifier,
    "meta": Qt.KeyboardModifier.MetaModifier,
}
_MODIFIER_TEXT = {"ctrl": "Ctrl", "alt": "Alt", "shift": "Shift", "meta": "Meta"}
_MODIFIER_MASK = sum(m.value for m in _MODIFIERS.values())
_SHIFT = Qt.KeyboardModifier.ShiftModifier.value
_KEYPAD = Qt.KeyboardModifier.KeypadModifier.value
_MODIFIER_KEYS = {
    Qt.Key.Key_Shift.value,
    Qt.Key.Key_Control.value,
    Qt.Key.Key_Alt.value,
    Qt.Key.Key_AltGr.value,
    Qt.Key.Key_Meta.value,
    Qt.Key.Key_Super_L.value,
    Qt.Key.Key_Super_R.value,
    Qt.Key.Key_unknown.value,
}
# Names people write that Qt's portable text spells otherwise.
_KEY_ALIASES = {
    "pagedown": "PgDown",
    "pageup": "PgUp",
    "escape": "Esc",
    "delete": "Del",
    "insert": "Ins",
    "control": "Ctrl",
    "cmd": "Ctrl",
    "command": "Ctrl",
    "option": "Alt",
    "plus": "+",
    "minus": "-",
}
_PORTABLE = QKeySequence.SequenceFormat.PortableText
_NATIVE = QKeySequence.SequenceFormat.NativeText


class BindingsError(TunableFileError):
    """A bindings file cannot be used. The message says ``FILE:LINE: what is wrong`` per problem.

    Attributes
    ----------
    problems : tuple[str, ...]
        One ``FILE:LINE: message`` line per problem found.
    """


def _flag_value(flags: Any) -> int:
    return flags.value if hasattr(flags, "value") else int(flags)


def parse_key(text: str) -> tuple[str, int]:
    """Read one key (with modifiers) written in Qt's portable text, e.g. ``Ctrl+R``, ``PgDown``.

    Returns
    -------
    (str, int)
        The canonical portable text and the combined key code (keypad modifier dropped).

    Raises
    ------
    ValueError
        When Qt does not read the text as exactly one key.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a key must be text like 'Ctrl+R', got {text!r}")
    tokens = re.split(r"\+(?=.)", text.strip())
    spelled = "+".join(_KEY_ALIASES.get(t.strip().casefold(), t.strip()) for t in tokens)
    sequence = QKeySequence.fromString(spelled, _PORTABLE)
    if sequence.count() > 1:
        raise ValueError(f"{text!r} is a sequence of several keys; give one key (with modifiers)")
    combination = sequence[0] if sequence.count() == 1 else None
    if combination is None or combination.key().value in _MODIFIER_KEYS:
        raise ValueError(
            f"{text!r} is not a key Qt knows (examples: Down, PgUp, Home, F1, Space, Esc, A, 5, "
            f"Ctrl+R, Shift+Tab)"
        )
    code = combination.key().value | (_flag_value(combination.keyboardModifiers()) & ~_KEYPAD)
    return _portable(code), code


def _portable(code: int) -> str:
    return QKeySequence(code).toString(_PORTABLE)


def native_key_text(portable: str) -> str:
    """A key as the user's platform writes it (``Ctrl+R``, ``⌘R`` on macOS)."""
    return QKeySequence.fromString(portable, _PORTABLE).toString(_NATIVE)


def parse_mouse_slot(text: str) -> str:
    """Read a mouse slot such as ``shift+left`` or ``ctrl+wheel``; returns its canonical spelling.

    Raises
    ------
    ValueError
        For an unknown button or modifier.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"a mouse slot must be text like 'shift+left', got {text!r}")
    *mods, button = [part.strip().casefold() for part in text.split("+")]
    if button not in MOUSE_BUTTONS and button != WHEEL:
        raise ValueError(
            f"unknown mouse button {button!r} in {text!r} "
            f"(known: {', '.join([*MOUSE_BUTTONS, WHEEL])})"
        )
    mods = [_KEY_ALIASES.get(m, m).casefold() for m in mods]
    unknown = [m for m in mods if m not in _MODIFIERS]
    if unknown:
        raise ValueError(
            f"unknown modifier {unknown[0]!r} in {text!r} (known: {', '.join(_MODIFIERS)})"
        )
    return "+".join([m for m in _MODIFIERS if m in mods] + [button])


def describe_mouse_slot(slot: str) -> str:
    """A canonical slot as a user reads it: ``shift+left`` -> ``Shift + Left button``."""
    *mods, button = slot.split("+")
    what = "Wheel" if button == WHEEL else f"{button.capitalize()} button"
    return " + ".join([_MODIFIER_TEXT[m] for m in mods] + [what])


def _slot_for(button_name: str, modifiers: Any) -> str:
    value = _flag_value(modifiers)
    return "+".join([n for n, m in _MODIFIERS.items() if value & m.value] + [button_name])


@dataclass(frozen=True)
class Bindings:
    """Which key and mouse slot asks for which action. Immutable.

    Parameters
    ----------
    keys : dict[str, tuple[str, ...]]
        Action id -> its keys in ``QKeySequence`` portable text (every id of ``ACTIONS`` may appear;
        an action with no keys is unbound).
    mouse : dict[str, str]
        Canonical mouse slot (``left``, ``shift+left``, ``ctrl+wheel``) -> mouse action id.
    sources : tuple[Path, ...]
        The files the bindings came from, shipped file first.

    Raises
    ------
    BindingsError
        For an unknown action, a key Qt cannot read, or a key given to two actions.
    """

    keys: dict[str, tuple[str, ...]]
    mouse: dict[str, str]
    sources: tuple[Path, ...] = ()
    _by_code: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        located = {}
        problems = []
        for action, keys in self.keys.items():
            if action not in ACTIONS:
                problems.append(f"unknown action {action!r}")
                continue
            located[action] = []
            for text in keys:
                try:
                    located[action].append((*parse_key(text), ""))
                except ValueError as exc:
                    problems.append(str(exc))
        for slot, action in self.mouse.items():
            if parse_mouse_slot(slot) != slot or action not in MOUSE_ACTIONS:
                problems.append(f"mouse slot {slot!r} -> {action!r} is not valid")
        by_code = _key_table(located, problems)
        if problems:
            raise BindingsError("\n".join(problems), problems)
        object.__setattr__(self, "_by_code", by_code)

    def keys_for(self, action: str) -> tuple[str, ...]:
        """The keys (portable text) of an action; empty when it is unbound."""
        return self.keys.get(action, ())

    def action_for_key(self, event: QKeyEvent) -> str | None:
        """The action a key press asks for, or None.

        Modifiers must match, except that keypad keys count as the main keyboard's and Shift is
        ignored for symbol keys when no binding uses it (so ``+`` works where it needs Shift).
        """
        key = event.key()
        if key in _MODIFIER_KEYS:
            return None
        modifiers = _flag_value(event.modifiers()) & _MODIFIER_MASK
        action = self._by_code.get(key | modifiers)
        if action is None and modifiers & _SHIFT and _is_symbol(key):
            action = self._by_code.get(key | (modifiers & ~_SHIFT))
        return action

    def mouse_action(self, button: Qt.MouseButton, modifiers: Any) -> str | None:
        """The mouse action of a button press with these modifiers, or None (unbound or ``none``)."""
        for name, value in MOUSE_BUTTONS.items():
            if value == button:
                return self._mouse(_slot_for(name, modifiers))
        return None

    def wheel_action(self, modifiers: Any) -> str | None:
        """The action of the wheel with these modifiers (``scroll``, ``zoom``) or None."""
        return self._mouse(_slot_for(WHEEL, modifiers))

    def _mouse(self, slot: str) -> str | None:
        action = self.mouse.get(slot)
        return None if action in (None, "none") else action


def _is_symbol(key: int) -> bool:
    return 0x21 <= key <= 0xFF and not chr(key).isalpha()


def _key_table(located: dict[str, list[tuple[str, int, str]]], problems: list[str]) -> dict:
    """Key code -> action; a key given to two actions is a problem naming both (and where)."""
    owner: dict[int, tuple[str, str]] = {}
    for action, keys in located.items():
        for text, code, where in keys:
            if code not in owner:
                owner[code] = (action, where)
                continue
            other, other_where = owner[code]
            if other == action:
                continue
            prefix = f"{where}: " if where else ""
            also = f" ({other_where})" if other_where and other_where != where else ""
            problems.append(
                f"{prefix}key {text!r} is bound to both {action} and {other}{also}: "
                f"rebind or unbind one of them"
            )
    return {code: action for code, (action, _) in owner.items()}


def default_bindings_file() -> Path:
    """The shipped bindings file."""
    return packaged_resource("key_bindings.yaml")


def load_bindings(user_file: Path | None = None) -> Bindings:
    """Load the shipped bindings and apply the user's file on top.

    Parameters
    ----------
    user_file : Path or None
        The user's bindings (e.g. ``HOME/key_bindings.yaml``); a missing file is not an error.

    Returns
    -------
    Bindings

    Raises
    ------
    BindingsError
        When a file is not valid; the message names file, line and problem (for a key given to two
        actions, both actions).
    """
    default_path = default_bindings_file()
    keys, mouse = _read_file(default_path, default_path.read_text(encoding="utf-8"))
    sources = [default_path]
    user = read_user_text(user_file, BindingsError)
    if user is not None:
        user_keys, user_mouse = _read_file(*user)
        # The user's actions go last, so a clash is reported at the user's line.
        keys = {a: v for a, v in keys.items() if a not in user_keys} | user_keys
        mouse.update(user_mouse)
        sources.append(user[0])
    problems: list[str] = []
    _key_table(keys, problems)
    if problems:
        raise BindingsError("\n".join(problems), problems)
    return Bindings(
        keys={action: tuple(text for text, _, _ in entries) for action, entries in keys.items()},
        mouse={slot: action for slot, (action, _) in mouse.items()},
        sources=tuple(sources),
    )


def load_bindings_or_defaults(user_file: Path | None = None) -> tuple[Bindings, list[str]]:
    """Like ``load_bindings``, but a bad user file gives the shipped bindings and the problems.

    Returns
    -------
    (Bindings, list of str)
        The bindings in force and one ``FILE:LINE: message`` string per problem (empty when fine).
    """
    return load_or_defaults(
        load_bindings,
        user_file,
        BindingsError,
        lambda: Bindings(keys={}, mouse={}),
        "key and mouse bindings",
    )


def _read_file(path: Path, text: str) -> tuple[dict, dict]:
    """One file's keys (action -> [(text, code, where)]) and mouse slots (slot -> (action, where))."""
    data = read_yaml_file(path, text, BindingsError)
    keys: dict[str, list[tuple[str, int, str]]] = {}
    mouse: dict[str, tuple[str, str]] = {}
    if data is None:
        return keys, mouse
    if not isinstance(data, YamlMap):
        raise BindingsError(f"{path}:1: expected a mapping with 'version', 'keys' and 'mouse'")
    problems: list[str] = []
    check_version(data, path, problems)
    for name in data:
        if name not in ("version", "keys", "mouse"):
            problems.append(
                f"{path}:{data.key_lines[name]}: unknown entry {name!r} "
                f"(expected 'version', 'keys', 'mouse')"
            )
    for section, reader, into in (("keys", _read_keys, keys), ("mouse", _read_mouse, mouse)):
        value = data.get(section)
        if value is None:
            continue
        if not isinstance(value, YamlMap):
            problems.append(f"{path}:{data.key_lines[section]}: '{section}' must be a mapping")
            continue
        for name, item in value.items():
            reader(path, value.key_lines[name], name, item, into, problems)
    if problems:
        raise BindingsError("\n".join(problems), problems)
    return keys, mouse


def _read_keys(
    path: Path, line: int, action: Any, value: Any, into: dict, problems: list[str]
) -> None:
    where = f"{path}:{line}"
    if action not in ACTIONS:
        close = difflib.get_close_matches(str(action), ACTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else " (the help panel lists the actions)"
        problems.append(f"{where}: unknown action {action!r}{hint}")
        return
    if value is None:
        value, lines = [], []
    elif isinstance(value, list):
        lines = getattr(value, "item_lines", [])
    else:
        value, lines = [value], []
    entries = []
    for index, text in enumerate(value):
        line_where = f"{path}:{lines[index]}" if index < len(lines) else where
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)  # keys: [1] means the digit 1
        try:
            canonical, code = parse_key(text)
        except ValueError as exc:
            problems.append(f"{line_where}: {action}: {exc}")
            continue
        if all(code != other for _, other, _ in entries):
            entries.append((canonical, code, line_where))
    into[action] = entries


def _read_mouse(
    path: Path, line: int, slot: Any, action: Any, into: dict, problems: list[str]
) -> None:
    where = f"{path}:{line}"
    try:
        canonical = parse_mouse_slot(slot)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return
    allowed = _WHEEL_ACTIONS if canonical.endswith(WHEEL) else tuple(MOUSE_ACTIONS)
    if action not in allowed:
        problems.append(
            f"{where}: {slot}: unknown or unsuitable mouse action {action!r} "
            f"(one of: {', '.join(allowed)})"
        )
        return
    if canonical in into:
        problems.append(
            f"{where}: mouse slot {canonical!r} is given twice (also at {into[canonical][1]})"
        )
        return
    into[canonical] = (action, where)
