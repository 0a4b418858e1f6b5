""" "Save the current layout as a protocol": a layout and what each viewport shows become the
YAML text of a protocol (checked by loading it back before it is returned)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from workstation.hanging.loading import load_protocol_text
from workstation.hanging.model import ViewportOptions, layout_cell_count


@dataclass(frozen=True)
class SavedViewport:
    """What one viewport shows: the display set's modality and series description, whether it
    belongs to a prior (rather than the current study), and its options."""

    modality: str
    series_description: str = ""
    prior: bool = False
    options: ViewportOptions = ViewportOptions()


def _options(o: ViewportOptions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if o.window:
        out["window"] = o.window
    if o.invert:
        out["invert"] = True
    if o.initial_image != "first":
        out["initial_image"] = o.initial_image
    if o.sync_group:
        out["sync_group"] = o.sync_group
    flip = {(True, False): "horizontal", (False, True): "vertical", (True, True): "both"}.get(
        (o.flip_horizontal, o.flip_vertical))  # fmt: skip
    if flip:
        out["flip"] = flip
    if o.rotate:
        out["rotate"] = o.rotate
    if o.row_towards:
        out["row_towards"] = o.row_towards
    if o.align != ("center", "center"):
        out["align"] = " ".join(a for a in o.align if a != "center")
    if o.reformat is not None:
        out["reformat"] = {"plane": o.reformat.plane, "slab_mm": o.reformat.slab_mm,
                           "mode": o.reformat.mode}  # fmt: skip
    return out


def protocol_yaml_from_layout(
    name: str, layout: str, viewports: Sequence[SavedViewport | None], *, label: str = ""
) -> str:
    """The YAML text of a one-stage protocol that hangs ``viewports`` in ``layout`` again.

    The protocol requires the study to hold the modalities shown; each viewport gets a display
    set that requires its modality and prefers (weight 5) the same series description, matched
    exactly but case-insensitively. Viewports showing a prior use "the most recent prior of the
    same modality". ``None`` leaves a cell empty. Save the text as ``NAME.yaml`` in the user's
    protocol directory (a same-named built-in is then replaced).

    Raises
    ------
    ValueError
        For an unknown layout, more viewports than cells, an empty name, or (a bug) text that
        does not load back.
    """
    if not name.strip():
        raise ValueError("a protocol needs a name")
    cells = layout_cell_count(layout)
    if len(viewports) > cells:
        raise ValueError(f"{len(viewports)} viewports for layout {layout!r} ({cells} cells)")
    modalities = sorted({v.modality.upper() for v in viewports if v is not None and v.modality})
    selectors: list[dict[str, Any]] = []
    keys: dict[tuple[str, str], str] = {}
    cells_out: list[dict[str, Any]] = []
    for v in viewports:
        if v is None:
            cells_out.append({"display_set": None})
            continue
        key = (v.modality.upper(), v.series_description.strip())
        if key not in keys:
            keys[key] = f"set{len(keys) + 1}"
            rules: list[dict[str, Any]] = [
                {"attribute": "modality", "equals": key[0], "required": True}
            ] if key[0] else []  # fmt: skip
            if key[1]:
                rules.append({"attribute": "series_description",
                              "matches": f"^{re.escape(key[1])}$", "weight": 5})  # fmt: skip
            selectors.append({"id": keys[key], "rules": rules})
        cell: dict[str, Any] = {"display_set": keys[key]}
        if v.prior:
            cell["study"] = "prior"
        cell.update(_options(v.options))
        cells_out.append(cell)
    doc: dict[str, Any] = {"version": 1, "name": name.strip(), "label": label or name.strip()}
    doc["match"] = [{"attribute": "modalities", "contains": m, "required": True, "weight": 10}
                    for m in modalities]  # fmt: skip
    if any(v is not None and v.prior for v in viewports):
        doc["priors"] = [{"id": "prior", "rule": "most_recent", "same_modality": True}]
    doc["display_sets"] = selectors
    doc["stages"] = [{"name": "Saved layout", "layout": layout, "viewports": cells_out}]
    text = "# Saved from the viewer's layout\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )
    protocol, errors = load_protocol_text(text, f"<saved {name}>")
    if protocol is None:
        raise ValueError("the saved protocol does not load back: " + "; ".join(map(str, errors)))
    return text
