"""The viewport assignment of each stage: which display set of which study goes into each cell,
with its options resolved, or why the cell stays empty."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from workstation.hanging.facts import DisplaySetFacts, StudyFacts
from workstation.hanging.model import CURRENT, Protocol, ViewportOptions, layout_cell_count
from workstation.hanging.prior_selection import PriorChoice
from workstation.hanging.selection import SelectorResult

_OPPOSITE = {"A": "P", "P": "A", "L": "R", "R": "L", "H": "F", "F": "H"}


@dataclass(frozen=True)
class ViewportAssignment:
    """One cell of a stage.

    Attributes
    ----------
    cell : int
        0-based cell of the layout (row by row; ``1+N``: the large cell first).
    study : str
        ``current`` or the prior's id in the protocol.
    study_uid : str or None
    study_date : datetime.date or None
        Shown prominently by the viewer, so current and prior are never confused.
    display_set : DisplaySetFacts or None
        None: the cell stays empty (``reason`` says why).
    selector : str or None
    options : ViewportOptions
        With ``row_towards`` resolved into ``flip_horizontal``.
    reason : str
    """

    cell: int
    study: str
    study_uid: str | None
    study_date: _dt.date | None
    display_set: DisplaySetFacts | None
    selector: str | None
    options: ViewportOptions
    reason: str

    @property
    def empty(self) -> bool:
        return self.display_set is None

    @property
    def display_set_uid(self) -> str | None:
        return self.display_set.uid if self.display_set else None

    @property
    def series_uid(self) -> str | None:
        return self.display_set.series_uid if self.display_set else None

    def to_dict(self) -> dict[str, Any]:
        d = self.display_set
        return {"cell": self.cell, "study": self.study, "study_uid": self.study_uid,
                "study_date": self.study_date.isoformat() if self.study_date else None,
                "selector": self.selector, "display_set_uid": d.uid if d else None,
                "series_uid": d.series_uid if d else None, "label": d.label if d else None,
                "options": self.options.to_dict(), "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class StageAssignment:
    """A stage: its layout and one :class:`ViewportAssignment` per cell of the layout."""

    index: int
    name: str
    layout: str
    viewports: tuple[ViewportAssignment, ...]

    @property
    def filled(self) -> int:
        return sum(not v.empty for v in self.viewports)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "layout": self.layout,
                "filled": self.filled, "viewports": [v.to_dict() for v in self.viewports]}  # fmt: skip


def resolve_options(options: ViewportOptions, d: DisplaySetFacts) -> tuple[ViewportOptions, str]:
    """Options for ``d``: ``row_towards`` decides the horizontal flip from Patient Orientation.

    Returns the options and a note (empty when nothing was resolved).
    """
    wanted = options.row_towards
    if not wanted:
        return options, ""
    rows = d.patient_orientation[0].strip().upper() if d.patient_orientation else ""
    first = rows[:1]
    if first == wanted:
        return replace(options, flip_horizontal=False), f"rows run {rows}: not flipped"
    if first and first == _OPPOSITE.get(wanted):
        return replace(options, flip_horizontal=True), f"rows run {rows}: flipped to {wanted}"
    shown = rows or "unknown"
    return options, f"Patient Orientation rows {shown}: cannot turn them towards {wanted}"


def _empty(cell: int, study: str, facts: StudyFacts | None, selector: str | None,
           options: ViewportOptions, reason: str) -> ViewportAssignment:  # fmt: skip
    return ViewportAssignment(cell, study, facts.study_uid if facts else None,
                              facts.study_date if facts else None, None, selector, options,
                              reason)  # fmt: skip


def assign_stages(
    protocol: Protocol,
    current: StudyFacts,
    choices: Sequence[PriorChoice],
    selections: Sequence[SelectorResult],
) -> tuple[StageAssignment, ...]:
    """Each stage's cells from the selections (see :func:`workstation.hanging.matcher`)."""
    studies: dict[str, StudyFacts | None] = {CURRENT: current}
    why_missing: dict[str, str] = {}
    for choice in choices:
        studies[choice.spec.id] = choice.facts
        why_missing[choice.spec.id] = choice.reason
    picked = {(s.selector, s.study): s for s in selections}
    out = []
    for index, stage in enumerate(protocol.stages):
        cells = []
        for cell, spec in enumerate(stage.viewports):
            facts = studies.get(spec.study)
            if spec.display_set is None:
                cells.append(_empty(cell, spec.study, facts, None, spec.options,
                                    "left empty by the protocol"))  # fmt: skip
                continue
            if facts is None:
                cells.append(_empty(cell, spec.study, None, spec.display_set, spec.options,
                                    f"no {spec.study}: {why_missing.get(spec.study, '')}"))  # fmt: skip
                continue
            result = picked.get((spec.display_set, spec.study))
            if result is None or result.display_set is None:
                reason = result.reason if result else "not selected"
                if not facts.display_sets and spec.study != CURRENT:
                    where = f" (on {facts.source})" if facts.source != "local" else ""
                    reason = f"prior {facts.study_uid} not retrieved yet{where}"
                cells.append(_empty(cell, spec.study, facts, spec.display_set, spec.options,
                                    reason))  # fmt: skip
                continue
            options, note = resolve_options(spec.options, result.display_set)
            reason = result.reason + (f"; {note}" if note else "")
            cells.append(ViewportAssignment(cell, spec.study, facts.study_uid, facts.study_date,
                                            result.display_set, spec.display_set, options,
                                            reason))  # fmt: skip
        for cell in range(len(cells), layout_cell_count(stage.layout)):
            cells.append(_empty(cell, CURRENT, None, None, ViewportOptions(),
                                "no viewport in the protocol for this cell"))  # fmt: skip
        out.append(StageAssignment(index, stage.name, stage.layout, tuple(cells)))
    return tuple(out)
