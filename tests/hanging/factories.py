"""Synthetic study facts for the matcher tests (headers as a modality would write them)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from workstation.hanging import DisplaySetFacts, StudyFacts, parse_date

_n = itertools.count(1)


def ds(modality: str, description: str = "", **kw) -> DisplaySetFacts:
    k = next(_n)
    base = dict(uid=f"1.2.3.{k}#ds", series_uid=f"1.2.3.{k}", label=f"{modality} {description}",
                modality=modality, series_description=description, number_of_images=1,
                kind="single")  # fmt: skip
    base.update(kw)
    return DisplaySetFacts(**base)


def study(uid: str, date: str, sets: list[DisplaySetFacts], *, patient: str = "P1",
          description: str = "", body_part: str = "", issuer: str = "",
          source: str = "local") -> StudyFacts:  # fmt: skip
    sets = [replace(d, study_uid=uid) for d in sets]
    return StudyFacts(uid, patient, issuer, "TEST^PATIENT", parse_date(date), "100000",
                      tuple(sorted({d.modality for d in sets})), description, body_part, "",
                      tuple(sets), source)  # fmt: skip


def mammo_views(tag: str, *, right_rows: str = "A", left_rows: str = "P") -> list[DisplaySetFacts]:
    """Four screening views; ``tag`` goes into the labels. Detector-native orientation: both
    breasts written with the chest wall on the same side unless told otherwise."""
    out = []
    for lat, rows in (("R", right_rows), ("L", left_rows)):
        for view, meaning in (("CC", "cranio-caudal"), ("MLO", "medio-lateral oblique")):
            out.append(ds("MG", f"{lat} {view} {tag}", image_laterality=lat, view_position="",
                          view_code_meaning=meaning, view_code="R-10242" if view == "CC"
                          else "R-10226", patient_orientation=(rows, "L" if lat == "R" else "R"),
                          label=f"{tag} {lat}{view}"))  # fmt: skip
    return out
