"""The protocol file format (version 1), checked key by key into a :class:`Protocol`.

Every problem is collected as ``(line, message)``; a file with any problem is refused as a
whole (see :mod:`workstation.hanging.loading`). The format is described with an example in
``workstation/resources/hanging_protocols/README.md``.
"""

from __future__ import annotations

import re
from typing import Any

from workstation.hanging.model import (
    CURRENT,
    INITIAL_IMAGES,
    OPERATORS,
    PLANES,
    PRIOR_RULES,
    REFORMAT_MODES,
    SORTS,
    PriorSpec,
    Protocol,
    Reformat,
    Rule,
    Selector,
    Stage,
    ViewportOptions,
    ViewportSpec,
    layout_cell_count,
)
from workstation.hanging.rules import (
    DISPLAY_SET_ATTRIBUTES,
    OPERATORS_BY_KIND,
    STUDY_ATTRIBUTES,
    compile_pattern,
)
from workstation.hanging.yaml_lines import LinedDict, LinedList, line_of

FORMAT_VERSION = 1
_TOP = (
    "version",
    "name",
    "label",
    "description",
    "min_score",
    "match",
    "priors",
    "display_sets",
    "stages",
)
_RULE_KEYS = ("attribute", "weight", "required", *OPERATORS)
_PRIOR_KEYS = ("id", "rule", "index", "months", "same_modality", "same_body_part", "required")
_SELECTOR_KEYS = ("id", "rules", "required", "sort", "distinct")
_STAGE_KEYS = ("name", "layout", "viewports")
_OPTION_KEYS = ("window", "invert", "initial_image", "sync_group", "flip", "rotate",
                "row_towards", "align", "reformat")  # fmt: skip
_VIEWPORT_KEYS = ("display_set", "study", *_OPTION_KEYS)
_FLIPS = {"none": (False, False), "horizontal": (True, False), "vertical": (False, True),
          "both": (True, True)}  # fmt: skip
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_DIRECTIONS = ("A", "P", "L", "R", "H", "F")


class _Checker:
    """Collects ``(line, message)`` problems while reading one file."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []

    def error(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def mapping(self, value: Any, what: str, line: int, allowed: tuple[str, ...]) -> bool:
        if not isinstance(value, dict):
            self.error(line_of(value, line), f"{what}: expected a mapping (key: value)")
            return False
        for key in value:
            if key not in allowed:
                self.error(_key_line(value, key),
                           f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})")  # fmt: skip
        return True

    def sequence(self, value: Any, what: str, line: int) -> list[tuple[Any, int]]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(line_of(value, line), f"{what}: expected a list")
            return []
        return [(item, _item_line(value, i)) for i, item in enumerate(value)]

    def text(self, m: dict, key: str, what: str, default: str | None = None) -> str | None:
        value = m.get(key, default)
        if value is None or isinstance(value, bool) or isinstance(value, dict | list):
            if key in m or default is None:
                self.error(_key_line(m, key), f"{what}: {key!r} must be text")
            return default
        return str(value)

    def boolean(self, m: dict, key: str, what: str, default: bool) -> bool:
        value = m.get(key, default)
        if not isinstance(value, bool):
            self.error(_key_line(m, key), f"{what}: {key!r} must be true or false, not {value!r}")
            return default
        return value

    def number(self, m: dict, key: str, what: str, default: float) -> float:
        value = m.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(_key_line(m, key), f"{what}: {key!r} must be a number, not {value!r}")
            return default
        return float(value)


def _key_line(m: Any, key: Any) -> int:
    return m.key_line(key) if isinstance(m, LinedDict) else line_of(m)


def _item_line(seq: Any, index: int) -> int:
    return seq.item_line(index) if isinstance(seq, LinedList) else line_of(seq)


def _rule(c: _Checker, raw: Any, line: int, table: dict, what: str) -> Rule | None:
    if not c.mapping(raw, what, line, _RULE_KEYS):
        return None
    line = line_of(raw, line)
    name = raw.get("attribute")
    if name not in table:
        c.error(_key_line(raw, "attribute"),
                f"{what}: attribute {name!r} is not one of {', '.join(table)}")  # fmt: skip
        return None
    ops = [k for k in raw if k in OPERATORS]
    if len(ops) != 1:
        c.error(line, f"{what}: give exactly one test of {', '.join(OPERATORS)} "
                      f"(found {', '.join(ops) or 'none'})")  # fmt: skip
        return None
    op = ops[0]
    kind = table[name].kind
    if op not in OPERATORS_BY_KIND[kind]:
        c.error(_key_line(raw, op), f"{what}: {op!r} does not apply to {name} ({kind}); use "
                                    f"{', '.join(OPERATORS_BY_KIND[kind])}")  # fmt: skip
        return None
    value = _rule_value(c, raw[op], op, kind, _key_line(raw, op), f"{what}: {op}")
    if value is _BAD:
        return None
    weight = c.number(raw, "weight", what, 1.0)
    required = c.boolean(raw, "required", what, False)
    return Rule(name, op, value, weight, required, line)


_BAD = object()


def _rule_value(c: _Checker, value: Any, op: str, kind: str, line: int, what: str) -> Any:
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or any(isinstance(v, dict | list)
                                                           for v in value):  # fmt: skip
            c.error(line, f"{what}: expected a non-empty list of values")
            return _BAD
        if kind == "number" and not all(isinstance(v, int | float) for v in value):
            c.error(line, f"{what}: expected numbers")
            return _BAD
        return tuple(str(v) if kind != "number" else v for v in value)
    if op == "range":
        if (not isinstance(value, list) or len(value) != 2
                or not all(v is None or (isinstance(v, int | float) and not isinstance(v, bool))
                           for v in value)):  # fmt: skip
            c.error(line, f"{what}: expected [low, high] (numbers; null for an open end)")
            return _BAD
        return (value[0], value[1])
    if op == "exists" or kind == "bool":
        if not isinstance(value, bool):
            c.error(line, f"{what}: expected true or false, not {value!r}")
            return _BAD
        return value
    if isinstance(value, dict | list) or value is None:
        c.error(line, f"{what}: expected a single value")
        return _BAD
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            c.error(line, f"{what}: expected a number, not {value!r}")
            return _BAD
        return value
    if op in ("matches", "not_matches"):
        try:
            compile_pattern(str(value))
        except re.error as exc:
            c.error(line, f"{what}: {value!r} is not a valid regular expression: {exc}")
            return _BAD
    return str(value)


def _rules(c: _Checker, raw: Any, line: int, table: dict, what: str) -> tuple[Rule, ...]:
    out = []
    for i, (item, item_line) in enumerate(c.sequence(raw, what, line)):
        rule = _rule(c, item, item_line, table, f"{what} rule {i + 1}")
        if rule is not None:
            out.append(rule)
    return tuple(out)


def _prior(c: _Checker, raw: Any, line: int, what: str) -> PriorSpec | None:
    if not c.mapping(raw, what, line, _PRIOR_KEYS):
        return None
    line = line_of(raw, line)
    pid = c.text(raw, "id", what)
    if pid is not None and (not _ID.match(pid) or pid == CURRENT):
        c.error(_key_line(raw, "id"), f"{what}: id {pid!r} must be a name (letters, digits, "
                                      f"_ . -) other than {CURRENT!r}")  # fmt: skip
    rule = c.text(raw, "rule", what, "most_recent")
    if rule not in PRIOR_RULES:
        c.error(_key_line(raw, "rule"), f"{what}: rule {rule!r} is not one of "
                                        f"{', '.join(PRIOR_RULES)}")  # fmt: skip
    index = raw.get("index", 1)
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        c.error(_key_line(raw, "index"), f"{what}: index must be a whole number >= 1")
        index = 1
    months = raw.get("months")
    if months is not None:
        ok = (isinstance(months, list) and len(months) == 2
              and all(isinstance(v, int | float) and not isinstance(v, bool) for v in months)
              and 0 <= months[0] <= months[1])  # fmt: skip
        if not ok:
            c.error(_key_line(raw, "months"), f"{what}: months must be [low, high] with "
                                              "0 <= low <= high")  # fmt: skip
            months = None
    if rule == "months" and months is None and "months" not in raw:
        c.error(line, f"{what}: rule 'months' needs months: [low, high]")
    return PriorSpec(
        pid or "", rule if rule in PRIOR_RULES else "most_recent", index,
        (float(months[0]), float(months[1])) if months else None,
        c.boolean(raw, "same_modality", what, True),
        c.boolean(raw, "same_body_part", what, False),
        c.boolean(raw, "required", what, False), line,
    )  # fmt: skip


def _selector(c: _Checker, raw: Any, line: int, what: str) -> Selector | None:
    if not c.mapping(raw, what, line, _SELECTOR_KEYS):
        return None
    line = line_of(raw, line)
    sid = c.text(raw, "id", what)
    if sid is not None and not _ID.match(sid):
        c.error(_key_line(raw, "id"), f"{what}: id {sid!r} must be a name (letters, digits, _ . -)")
    sort = c.text(raw, "sort", what, "series_number")
    if sort not in SORTS:
        c.error(_key_line(raw, "sort"), f"{what}: sort {sort!r} is not one of {', '.join(SORTS)}")
    rules = _rules(c, raw.get("rules"), _key_line(raw, "rules"), DISPLAY_SET_ATTRIBUTES,
                   f"{what} ({sid})")  # fmt: skip
    return Selector(sid or "", rules, c.boolean(raw, "required", what, False),
                    sort if sort in SORTS else "series_number",
                    c.boolean(raw, "distinct", what, False), line)  # fmt: skip


def _options(c: _Checker, raw: dict, what: str) -> ViewportOptions:
    kw: dict[str, Any] = {}
    if "window" in raw:
        kw["window"] = c.text(raw, "window", what)
    if "sync_group" in raw:
        kw["sync_group"] = c.text(raw, "sync_group", what)
    kw["invert"] = c.boolean(raw, "invert", what, False)
    initial = raw.get("initial_image", "first")
    if isinstance(initial, bool) or not (initial in INITIAL_IMAGES or
                                         (isinstance(initial, int) and initial >= 0)):  # fmt: skip
        c.error(_key_line(raw, "initial_image"), f"{what}: initial_image must be first, last, "
                                                 "middle or a 0-based index")  # fmt: skip
        initial = "first"
    kw["initial_image"] = initial
    flip = raw.get("flip", "none")
    if flip not in _FLIPS:
        c.error(_key_line(raw, "flip"), f"{what}: flip must be one of {', '.join(_FLIPS)}")
        flip = "none"
    kw["flip_horizontal"], kw["flip_vertical"] = _FLIPS[flip]
    rotate = raw.get("rotate", 0)
    if rotate not in (0, 90, 180, 270) or isinstance(rotate, bool):
        c.error(_key_line(raw, "rotate"), f"{what}: rotate must be 0, 90, 180 or 270")
        rotate = 0
    kw["rotate"] = rotate
    if "row_towards" in raw:
        towards = str(raw["row_towards"]).upper()
        if towards not in _DIRECTIONS:
            c.error(_key_line(raw, "row_towards"),
                    f"{what}: row_towards must be one of {', '.join(_DIRECTIONS)}")  # fmt: skip
        else:
            kw["row_towards"] = towards
    if "align" in raw:
        align = _align(raw["align"])
        if align is None:
            c.error(_key_line(raw, "align"),
                    f"{what}: align must be left, right, top, bottom or center, or a horizontal "
                    "and a vertical one (e.g. 'right top')")  # fmt: skip
        else:
            kw["align"] = align
    if "reformat" in raw:
        kw["reformat"] = _reformat(c, raw["reformat"], _key_line(raw, "reformat"), what)
    return ViewportOptions(**kw)


def _align(raw: Any) -> tuple[str, str] | None:
    """``'right'``, ``'right top'``, ``'center'``... -> (horizontal, vertical); None if invalid."""
    if not isinstance(raw, str):
        return None
    words = raw.lower().replace(",", " ").split()
    h = [w for w in words if w in ("left", "right")]
    v = [w for w in words if w in ("top", "bottom")]
    rest = [w for w in words if w not in ("left", "right", "top", "bottom", "center", "centre")]
    if not words or rest or len(h) > 1 or len(v) > 1 or len(words) > 2:
        return None
    return (h[0] if h else "center", v[0] if v else "center")


def _reformat(c: _Checker, raw: Any, line: int, what: str) -> Reformat | None:
    what = f"{what}: reformat"
    if not c.mapping(raw, what, line, ("plane", "slab_mm", "mode")):
        return None
    plane = raw.get("plane")
    if plane not in PLANES:
        c.error(_key_line(raw, "plane"), f"{what}: plane must be one of {', '.join(PLANES)}")
        return None
    slab = c.number(raw, "slab_mm", what, 0.0)
    if slab < 0:
        c.error(_key_line(raw, "slab_mm"), f"{what}: slab_mm must be >= 0")
    mode = raw.get("mode", "none")
    if mode not in REFORMAT_MODES:
        c.error(_key_line(raw, "mode"), f"{what}: mode must be one of {', '.join(REFORMAT_MODES)}")
        mode = "none"
    return Reformat(plane, max(slab, 0.0), mode)


def _stage(c: _Checker, raw: Any, line: int, what: str, selectors: set[str],
           priors: set[str]) -> Stage | None:  # fmt: skip
    if not c.mapping(raw, what, line, _STAGE_KEYS):
        return None
    line = line_of(raw, line)
    name = c.text(raw, "name", what, what) or what
    layout = str(raw.get("layout", ""))
    try:
        cells = layout_cell_count(layout)
    except ValueError as exc:
        c.error(_key_line(raw, "layout"), f"{what}: {exc}")
        cells = 16
    viewports = []
    items = c.sequence(raw.get("viewports"), f"{what}: viewports", _key_line(raw, "viewports"))
    if not items:
        c.error(line, f"{what}: needs viewports (a list, one entry per cell)")
    if len(items) > cells:
        c.error(_key_line(raw, "viewports"), f"{what}: {len(items)} viewports for layout "
                                             f"{layout!r}, which has {cells} cells")  # fmt: skip
    for i, (item, item_line) in enumerate(items):
        vwhat = f"{what} viewport {i + 1}"
        if not c.mapping(item, vwhat, item_line, _VIEWPORT_KEYS):
            continue
        vline = line_of(item, item_line)
        ds = item.get("display_set")
        if ds is not None and str(ds) not in selectors:
            c.error(_key_line(item, "display_set"),
                    f"{vwhat}: no display set {ds!r} in display_sets "
                    f"({', '.join(sorted(selectors)) or 'none'})")  # fmt: skip
        study = str(item.get("study", CURRENT))
        if study != CURRENT and study not in priors:
            c.error(_key_line(item, "study"), f"{vwhat}: study {study!r} is neither "
                    f"{CURRENT!r} nor a prior ({', '.join(sorted(priors)) or 'none'})")  # fmt: skip
        viewports.append(ViewportSpec(None if ds is None else str(ds), study,
                                      _options(c, item, vwhat), vline))  # fmt: skip
    return Stage(name, layout, tuple(viewports), line)


def parse_protocol(data: Any, *, level: str = "builtin", source: str = "") -> tuple[
    Protocol | None, list[tuple[int, str]]
]:  # fmt: skip
    """Check a parsed YAML document and build the protocol.

    Returns
    -------
    (protocol, problems)
        ``protocol`` is None when there is any problem; ``problems`` lists ``(line, message)``.
    """
    c = _Checker()
    if not c.mapping(data, "protocol", 1, _TOP):
        return None, c.problems
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        c.error(_key_line(data, "version"), f"version {version!r} is not supported (this "
                                            f"program reads version {FORMAT_VERSION})")  # fmt: skip
    name = c.text(data, "name", "protocol")
    if name is not None and not name.strip():
        c.error(_key_line(data, "name"), "protocol: name must not be empty")
    rules = _rules(c, data.get("match"), _key_line(data, "match"), STUDY_ATTRIBUTES, "match")
    priors = []
    for i, (item, line) in enumerate(c.sequence(data.get("priors"), "priors",
                                                _key_line(data, "priors"))):  # fmt: skip
        p = _prior(c, item, line, f"prior {i + 1}")
        if p is not None:
            priors.append(p)
    selectors = []
    for i, (item, line) in enumerate(c.sequence(data.get("display_sets"), "display_sets",
                                                _key_line(data, "display_sets"))):  # fmt: skip
        s = _selector(c, item, line, f"display set {i + 1}")
        if s is not None:
            selectors.append(s)
    for what, ids in (
        ("prior", [p.id for p in priors]),
        ("display set", [s.id for s in selectors]),
    ):
        dup = sorted({i for i in ids if ids.count(i) > 1 and i})
        if dup:
            c.error(1, f"{what} ids must be unique: {', '.join(dup)} repeated")
    stages = []
    items = c.sequence(data.get("stages"), "stages", _key_line(data, "stages"))
    if not items:
        c.error(_key_line(data, "stages"), "protocol: needs at least one stage")
    for i, (item, line) in enumerate(items):
        st = _stage(c, item, line, f"stage {i + 1}", {s.id for s in selectors},
                    {p.id for p in priors})  # fmt: skip
        if st is not None:
            stages.append(st)
    min_score = c.number(data, "min_score", "protocol", 0.0)
    if c.problems:
        return None, c.problems
    return Protocol(
        name=str(name).strip(), label=str(data.get("label") or name),
        description=str(data.get("description") or ""), rules=rules, priors=tuple(priors),
        display_sets=tuple(selectors), stages=tuple(stages), min_score=min_score, level=level,
        source=source,
    ), []  # fmt: skip
