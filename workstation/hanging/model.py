"""The hanging protocol data model: frozen values built by :mod:`workstation.hanging.schema`.

A :class:`Protocol` has study-level match :class:`Rule` s (weighted, some required), prior
specifications (:class:`PriorSpec`: which earlier study of the patient it wants), display-set
:class:`Selector` s (rules on a display set's attributes) and :class:`Stage` s, each a viewer
layout with one :class:`ViewportSpec` per cell: which selector, on which study (``current`` or
a prior's id), with :class:`ViewportOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Layout names the viewer knows (``workstation.ui.viewer_area``): ``RxC`` with 1..4 rows and
#: columns, ``1+2`` (one large cell, two stacked) and ``1+3``.
SPECIAL_LAYOUTS = {"1+2": 3, "1+3": 4}
OPERATORS = ("equals", "not_equals", "in", "not_in", "matches", "not_matches", "contains",
             "range", "exists")  # fmt: skip
PRIOR_RULES = ("most_recent", "oldest", "index", "months")
SORTS = ("series_number", "most_images", "fewest_images")
INITIAL_IMAGES = ("first", "last", "middle")
PLANES = ("axial", "coronal", "sagittal")
REFORMAT_MODES = ("none", "mip", "minip", "average")
CURRENT = "current"


def layout_cell_count(name: str) -> int:
    """Number of viewports of a layout name.

    Raises
    ------
    ValueError
        For a name the viewer does not know.
    """
    if name in SPECIAL_LAYOUTS:
        return SPECIAL_LAYOUTS[name]
    rows, sep, cols = str(name).lower().partition("x")
    if sep and rows.isdigit() and cols.isdigit() and 1 <= int(rows) <= 4 and 1 <= int(cols) <= 4:
        return int(rows) * int(cols)
    raise ValueError(f"unknown layout {name!r}: use RxC (1x1 to 4x4), 1+2 or 1+3")


@dataclass(frozen=True)
class Rule:
    """One test of an attribute.

    ``operator`` is one of :data:`OPERATORS`; ``value`` is a string (``equals``, ``matches``:
    a regular expression searched case-insensitively, ``contains``), a tuple of strings
    (``in``), a ``(low, high)`` pair of numbers or None (``range``) or a bool (``exists``).
    A failed ``required`` rule rules the protocol (or display set) out; every passed rule adds
    its ``weight`` to the score.
    """

    attribute: str
    operator: str
    value: Any
    weight: float = 1.0
    required: bool = False
    line: int = 0

    def describe(self) -> str:
        """``modality in [CR, DX]``, ``series_description matches 'T2'``..."""
        op = self.operator.replace("_", " ")
        if self.operator in ("in", "not_in"):
            return f"{self.attribute} {op} [{', '.join(self.value)}]"
        if self.operator == "range":
            low, high = self.value
            return f"{self.attribute} in range {_num(low)}..{_num(high)}"
        if self.operator == "exists":
            return f"{self.attribute} {'is present' if self.value else 'is absent'}"
        return f"{self.attribute} {op} {self.value!r}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Selector:
    """Picks one display set of a study: the best one that passes every required rule.

    ``sort`` breaks ties between equally scored display sets; ``required`` makes the protocol
    fail to match when the current study has no display set for it; ``distinct`` skips display
    sets that earlier selectors of the protocol picked in the same study.
    """

    id: str
    rules: tuple[Rule, ...] = ()
    required: bool = False
    sort: str = "series_number"
    distinct: bool = False
    line: int = 0


@dataclass(frozen=True)
class PriorSpec:
    """Which earlier study of the same patient a protocol wants, under the name ``id``.

    ``rule``: ``most_recent``, ``oldest``, ``index`` (1 = the most recent prior, 2 = the one
    before, ...) or ``months`` (the most recent prior whose age in months lies in ``months``,
    both ends included). ``same_modality`` keeps priors that share a modality with the current
    study; ``same_body_part`` keeps those whose body part is the current's (or unknown).
    ``required``: the protocol does not match without it.
    """

    id: str
    rule: str = "most_recent"
    index: int = 1
    months: tuple[float, float] | None = None
    same_modality: bool = True
    same_body_part: bool = False
    required: bool = False
    line: int = 0

    def describe(self) -> str:
        what = {
            "most_recent": "the most recent prior",
            "oldest": "the oldest prior",
            "index": f"prior number {self.index} (1 = most recent)",
            "months": (f"the most recent prior {_num(self.months[0])}-{_num(self.months[1])} "
                       "months back") if self.months else "",
        }[self.rule]  # fmt: skip
        same = [w for w, on in (("modality", self.same_modality),
                                ("body part", self.same_body_part)) if on]  # fmt: skip
        return what + (f" of the same {' and '.join(same)}" if same else "")


@dataclass(frozen=True)
class Reformat:
    """A reformat for the viewport (honoured by the MPR work): plane, slab thickness in mm and
    projection mode (``none``, ``mip``, ``minip``, ``average``)."""

    plane: str
    slab_mm: float = 0.0
    mode: str = "none"


@dataclass(frozen=True)
class ViewportOptions:
    """How a viewport shows its display set.

    Attributes
    ----------
    window : str or None
        A window/level preset name (``resources/window_presets.yaml``, by modality).
    invert : bool
    initial_image : str or int
        ``first``, ``last``, ``middle`` or a 0-based frame index.
    sync_group : str or None
        Viewports with the same group scroll together.
    flip_horizontal, flip_vertical : bool
        Mirror the image (in image space, before the rotation).
    rotate : int
        Clockwise rotation, 0, 90, 180 or 270.
    row_towards : str or None
        ``A``, ``P``, ``L``, ``R``, ``H`` or ``F``: flip horizontally when needed so that the
        image's rows run towards this patient direction (from Patient Orientation); used to hang
        mammograms back to back whatever the detector wrote. Resolved by the matcher into
        ``flip_horizontal``.
    align : (str, str)
        Horizontal (``left``, ``center``, ``right``) and vertical (``top``, ``center``,
        ``bottom``) placement of the image in the viewport, as the Hanging Protocol IOD's
        Display Set Horizontal / Vertical Justification: mammograms hung back to back keep their
        chest walls against the middle of the screen.
    reformat : Reformat or None
    """

    window: str | None = None
    invert: bool = False
    initial_image: str | int = "first"
    sync_group: str | None = None
    flip_horizontal: bool = False
    flip_vertical: bool = False
    rotate: int = 0
    row_towards: str | None = None
    align: tuple[str, str] = ("center", "center")
    reformat: Reformat | None = None

    def view_transform(self) -> tuple[bool, int]:
        """``(flip, rotation)`` as ``workstation.core.view_state.ViewState`` holds them (GSPS:
        horizontal flip first, then clockwise rotation); a vertical flip is a horizontal flip
        and a half turn."""
        flip = self.flip_horizontal != self.flip_vertical
        return flip, (self.rotate + (180 if self.flip_vertical else 0)) % 360

    def align_steps(self) -> tuple[int, int]:
        """``align`` as ``workstation.core.view_state.ViewState.align`` holds it (-1, 0, 1)."""
        h = {"left": -1, "center": 0, "right": 1}.get(self.align[0], 0)
        v = {"top": -1, "center": 0, "bottom": 1}.get(self.align[1], 0)
        return h, v

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "window": self.window, "invert": self.invert, "initial_image": self.initial_image,
            "sync_group": self.sync_group, "flip_horizontal": self.flip_horizontal,
            "flip_vertical": self.flip_vertical, "rotate": self.rotate,
            "row_towards": self.row_towards, "align": list(self.align),
        }  # fmt: skip
        r = self.reformat
        out["reformat"] = None if r is None else {"plane": r.plane, "slab_mm": r.slab_mm,
                                                  "mode": r.mode}  # fmt: skip
        return out


@dataclass(frozen=True)
class ViewportSpec:
    """One cell of a stage: the selector ``display_set`` applied to ``study`` (``current`` or
    a prior's id); ``display_set`` None leaves the cell empty on purpose."""

    display_set: str | None
    study: str = CURRENT
    options: ViewportOptions = ViewportOptions()
    line: int = 0


@dataclass(frozen=True)
class Stage:
    """A layout and what goes in each of its cells (row by row; ``1+N``: the large one first)."""

    name: str
    layout: str
    viewports: tuple[ViewportSpec, ...]
    line: int = 0


@dataclass(frozen=True)
class Protocol:
    """A hanging protocol.

    The protocol matches a study when every required rule passes, every required display set
    is found in the current study, every required prior exists, and the weights of the study
    rules passed reach ``min_score``. Its score adds the scores of the display sets found.
    ``level`` is ``builtin`` or ``user`` (a user protocol replaces a built-in of the same
    name); ``source`` is the file it came from.
    """

    name: str
    label: str = ""
    description: str = ""
    rules: tuple[Rule, ...] = ()
    priors: tuple[PriorSpec, ...] = ()
    display_sets: tuple[Selector, ...] = ()
    stages: tuple[Stage, ...] = ()
    min_score: float = 0.0
    level: str = "builtin"
    source: str = ""

    def selector(self, selector_id: str) -> Selector:
        for s in self.display_sets:
            if s.id == selector_id:
                return s
        raise KeyError(f"protocol {self.name!r} has no display set {selector_id!r}")

    def prior(self, prior_id: str) -> PriorSpec:
        for p in self.priors:
            if p.id == prior_id:
                return p
        raise KeyError(f"protocol {self.name!r} has no prior {prior_id!r}")
