"""The attributes rules test, and how one rule is evaluated (with the reason it passed or not).

Strings compare case-insensitively with surrounding spaces ignored; ``matches`` is a regular
expression searched (not anchored) case-insensitively. On a list attribute (``modalities``,
``image_type``, ``patient_orientation``) ``equals``, ``in``, ``matches`` and ``contains`` pass
when any element does, and ``not_*`` when none does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from workstation.hanging.facts import DisplaySetFacts, StudyFacts
from workstation.hanging.model import Rule


@dataclass(frozen=True)
class Attribute:
    """A testable attribute: its kind (``text``, ``list``, ``number``, ``bool``) and getter."""

    kind: str
    get: Callable[[Any], Any]
    help: str


STUDY_ATTRIBUTES: dict[str, Attribute] = {
    "modalities": Attribute("list", lambda s: s.modalities, "Modalities in the study"),
    "study_description": Attribute("text", lambda s: s.description, "Study Description"),
    "body_part": Attribute("text", lambda s: s.body_part, "Body Part Examined (most series)"),
    "number_of_images": Attribute("number", lambda s: s.number_of_images, "images in the study"),
    "number_of_display_sets": Attribute(
        "number", lambda s: len(s.display_sets), "display sets in the study"
    ),
}

DISPLAY_SET_ATTRIBUTES: dict[str, Attribute] = {
    "modality": Attribute("text", lambda d: d.modality, "Modality"),
    "body_part": Attribute("text", lambda d: d.body_part, "Body Part Examined"),
    "series_description": Attribute(
        "text", lambda d: d.series_description, "Series Description"
    ),  # fmt: skip
    "series_number": Attribute("number", lambda d: d.series_number, "Series Number"),
    "image_laterality": Attribute(
        "text", lambda d: d.image_laterality, "Image Laterality, else Laterality: R, L, B, U"
    ),  # fmt: skip
    "view_position": Attribute("text", lambda d: d.view_position, "View Position"),
    "view_code": Attribute("text", lambda d: d.view_code, "View Code Sequence code value"),
    "view_code_meaning": Attribute(
        "text", lambda d: d.view_code_meaning, "View Code Sequence code meaning"
    ),  # fmt: skip
    "view": Attribute(
        "text", lambda d: d.view, "View Position, else the View Code as CC, MLO, PA, LL..."
    ),  # fmt: skip
    "patient_orientation": Attribute(
        "list", lambda d: d.patient_orientation, "Patient Orientation (row, column)"
    ),  # fmt: skip
    "number_of_images": Attribute("number", lambda d: d.number_of_images, "frames in the set"),
    "orientation": Attribute(
        "text", lambda d: d.orientation, "stack orientation: axial, coronal, sagittal, oblique"
    ),  # fmt: skip
    "contrast": Attribute("bool", lambda d: d.contrast, "Contrast/Bolus Agent present"),
    "localizer": Attribute("bool", lambda d: d.localizer, "a localizer (scout)"),
    "kind": Attribute("text", lambda d: d.kind, "stack, single, cine, localizer..."),
    "image_type": Attribute("list", lambda d: d.image_type, "Image Type values"),
}

#: Which operators suit which kind of attribute.
OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": ("equals", "not_equals", "in", "not_in", "matches", "not_matches", "contains",
             "exists"),
    "list": ("equals", "not_equals", "in", "not_in", "matches", "not_matches", "contains",
             "exists"),
    "number": ("equals", "not_equals", "in", "not_in", "range", "exists"),
    "bool": ("equals", "not_equals"),
}  # fmt: skip


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome: ``actual`` is the value seen, ``reason`` a sentence for people."""

    rule: Rule
    passed: bool
    actual: str
    reason: str

    @property
    def score(self) -> float:
        return self.rule.weight if self.passed else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.describe(), "passed": self.passed, "actual": self.actual,
                "weight": self.rule.weight, "required": self.rule.required,
                "reason": self.reason}  # fmt: skip


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled, case-insensitive pattern (raises ``re.error`` when invalid)."""
    return re.compile(pattern, re.IGNORECASE)


def _norm(value: Any) -> str:
    return str(value).strip().upper()


def _elements(kind: str, value: Any) -> list[str]:
    if kind == "list":
        return [str(v) for v in value or ()]
    if value is None or value == "":
        return []
    return [str(value)]


def _show(kind: str, value: Any) -> str:
    if kind == "list":
        return "\\".join(str(v) for v in value or ()) or "(empty)"
    if kind == "bool":
        return "yes" if value else "no"
    return "(empty)" if value is None or value == "" else str(value)


def _test(kind: str, op: str, expected: Any, actual: Any) -> bool:
    if kind == "bool":
        same = bool(actual) == bool(expected)
        return same if op == "equals" else not same
    if op == "exists":
        return bool(_elements(kind, actual)) == bool(expected)
    if kind == "number":
        if actual is None:
            return op.startswith("not_")
        if op == "range":
            low, high = expected
            return (low is None or actual >= low) and (high is None or actual <= high)
        values = expected if op in ("in", "not_in") else (expected,)
        hit = any(float(actual) == float(v) for v in values)
        return not hit if op.startswith("not_") else hit
    items = _elements(kind, actual)
    if op in ("equals", "not_equals"):
        hit = any(_norm(i) == _norm(expected) for i in items)
    elif op in ("in", "not_in"):
        wanted = {_norm(v) for v in expected}
        hit = any(_norm(i) in wanted for i in items)
    elif op in ("matches", "not_matches"):
        pattern = compile_pattern(str(expected))
        hit = any(pattern.search(i) for i in items)
    else:  # contains
        needle = _norm(expected)
        hit = any(_norm(i) == needle for i in items) if kind == "list" else any(
            needle in _norm(i) for i in items)  # fmt: skip
    return not hit if op.startswith("not_") else hit


def evaluate(rule: Rule, facts: StudyFacts | DisplaySetFacts) -> RuleResult:
    """Test ``rule`` on a study's or a display set's facts."""
    table = STUDY_ATTRIBUTES if isinstance(facts, StudyFacts) else DISPLAY_SET_ATTRIBUTES
    attr = table[rule.attribute]
    actual = attr.get(facts)
    passed = _test(attr.kind, rule.operator, rule.value, actual)
    shown = _show(attr.kind, actual)
    verdict = "passed" if passed else ("failed (required)" if rule.required else "failed")
    reason = f"{rule.describe()}: {verdict}, is {shown}"
    if passed and rule.weight:
        reason += f" (+{rule.weight:g})"
    return RuleResult(rule, passed, shown, reason)
