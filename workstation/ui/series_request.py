"""What the browsers hand to the viewer: "show this series" (a frozen value, safe across threads)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeriesRequest:
    """A series to show: its files (any order; the viewer sorts them into display sets).

    Attributes
    ----------
    paths : tuple[str, ...]
        Absolute paths of the series' files (in the archive's store, or in place on a CD/folder).
    series_uid, study_uid : str
        The UIDs, so the viewer can group viewports by study and find priors.
    label : str
        A short text for tooltips and the viewport ("CT 3: Chest 1.25 mm").
    patient : str
        Patient name and ID as a user reads them, for the window title.
    """

    paths: tuple[str, ...]
    series_uid: str
    study_uid: str
    label: str = ""
    patient: str = ""
