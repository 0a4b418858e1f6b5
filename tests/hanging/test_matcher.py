"""The matcher with the built-in protocols on synthetic studies: the right protocol wins, every
viewport gets the right series, and the reasons say why."""

from __future__ import annotations

import pytest
from factories import ds, mammo_views, study

from workstation.hanging import (
    CURRENT,
    best_protocol,
    load_protocols,
    match_protocols,
)


@pytest.fixture(scope="module")
def protocols():
    loaded = load_protocols()
    assert loaded.errors == ()
    return loaded


def cells(match, stage: int) -> list[str | None]:
    return [v.display_set.label if v.display_set else None for v in match.stages[stage].viewports]


def test_builtins_load(protocols):
    assert set(protocols.names) == {"ct", "mr-brain", "chest-pa-lat", "mammo-screening",
                                    "us-cine", "fallback"}  # fmt: skip


def test_mammography_four_views_with_priors(protocols):
    current = study("1.1", "20250301", mammo_views("NOW"), description="SCREENING MAMMO")
    prior_1y = study("1.2", "20240228", mammo_views("Y1"))
    prior_2y = study("1.3", "20230305", mammo_views("Y2"))
    other_patient = study("1.9", "20250101", mammo_views("X"), patient="P2")
    ranked = match_protocols(current, [prior_2y, other_patient, prior_1y], protocols)
    best = ranked[0]
    assert best.name == "mammo-screening" and best.matched
    # MG (10) + screening description (2) + each of the 4 views passing its 3 rules (1 each)
    assert best.score == 10 + 2 + 4 * 3
    assert [r.passed for r in best.rule_results] == [True, True]
    assert best.priors[0].facts.study_uid == "1.2"  # most recent prior of this patient
    # back to back: R CC | L CC above, R MLO | L MLO below
    assert cells(best, 0) == ["NOW RCC", "NOW LCC", "NOW RMLO", "NOW LMLO"]
    flips = [v.options.flip_horizontal for v in best.stages[0].viewports]
    # written with the right's rows towards A and the left's towards P: all four mirrored
    assert flips == [True, True, True, True]
    assert cells(best, 1) == ["NOW RCC", "NOW LCC", "Y1 RCC", "Y1 LCC"]
    assert cells(best, 2) == ["NOW RMLO", "NOW LMLO", "Y1 RMLO", "Y1 LMLO"]
    assert [v.study for v in best.stages[1].viewports] == [CURRENT, CURRENT, "prior", "prior"]
    dates = {v.study_date.isoformat() for v in best.stages[1].viewports}
    assert dates == {"2025-03-01", "2024-02-28"}
    fallback = next(m for m in ranked if m.name == "fallback")
    assert fallback.matched and fallback.score == 0 and ranked.index(fallback) > 0
    assert not next(m for m in ranked if m.name == "ct").matched


def test_mammography_flip_follows_patient_orientation(protocols):
    # detector writes both breasts with rows towards A: only the right ones are mirrored
    native = study("2.1", "20250301", mammo_views("N", right_rows="A", left_rows="A"))
    best = best_protocol(native, [], protocols)
    assert [v.options.flip_horizontal for v in best.stages[0].viewports] == [True, False] * 2
    # already hung back to back by the modality (R rows P, L rows A): nothing mirrored
    hung = study("2.2", "20250301", mammo_views("H", right_rows="P", left_rows="A"))
    best = best_protocol(hung, [], protocols)
    assert [v.options.flip_horizontal for v in best.stages[0].viewports] == [False] * 4
    assert "not flipped" in best.stages[0].viewports[0].reason
    # chest walls against the middle of the screen: right breasts to the right, left to the left
    for stage in best.stages:
        assert [v.options.align_steps() for v in stage.viewports] == [(1, 0), (-1, 0)] * 2


def test_mammography_without_prior_leaves_prior_cells_empty(protocols):
    current = study("3.1", "20250301", mammo_views("NOW"))
    best = best_protocol(current, [], protocols)
    assert best.name == "mammo-screening"
    stage = best.stages[1]
    assert cells(best, 1) == ["NOW RCC", "NOW LCC", None, None]
    assert "no earlier study of this patient" in stage.viewports[2].reason


def chest(uid: str, date: str, tag: str, **kw):
    return study(uid, date, [
        ds("DX", f"CHEST LAT {tag}", view_position="LL", series_number=2, label=f"{tag} LAT"),
        ds("DX", f"CHEST PA {tag}", view_position="PA", series_number=1, label=f"{tag} PA"),
    ], description="XR CHEST 2 VIEWS", body_part="CHEST", **kw)  # fmt: skip


def test_chest_pa_lateral_with_prior(protocols):
    current = chest("4.1", "20250310", "NOW")
    prior = chest("4.2", "20230110", "OLD")
    ct_prior = study("4.3", "20240601", [ds("CT", "AXIAL", number_of_images=100,
                                            orientation="axial", kind="stack")])  # fmt: skip
    best = best_protocol(current, [prior, ct_prior], protocols)
    assert best.name == "chest-pa-lat"
    # DX, body part, description; PA and LAT each pass modality, view and preferred view
    assert best.score == 10 + 5 + 3 + 3 + 3
    assert best.priors[0].facts.study_uid == "4.2"  # the CT is more recent but not the modality
    assert cells(best, 0) == ["NOW PA", "NOW LAT"]
    assert cells(best, 1) == ["NOW PA", "NOW LAT", "OLD PA", "OLD LAT"]
    lines = [r.reason for r in best.rule_results]
    assert lines[0].startswith("modalities in [CR, DX]: passed, is DX")


def test_chest_prior_only_on_a_node_is_wanted_but_not_yet_shown(protocols):
    current = chest("5.1", "20250310", "NOW")
    remote = study("5.2", "20240110", [], source="pacs")
    remote = type(remote)(**{**remote.__dict__, "modalities": ("DX",)})
    best = best_protocol(current, [remote], protocols)
    assert [f.study_uid for f in best.wanted_priors()] == ["5.2"]
    assert cells(best, 1) == ["NOW PA", "NOW LAT", None, None]
    assert "not retrieved yet (on pacs)" in best.stages[1].viewports[2].reason


def test_ct_stack_planes_and_prior(protocols):
    scout = ds("CT", "SCOUT", localizer=True, kind="localizer", series_number=1, label="scout")
    thin = ds("CT", "AX 1.0", number_of_images=400, orientation="axial", kind="stack",
              series_number=3, label="thin")  # fmt: skip
    thick = ds("CT", "AX 5.0", number_of_images=80, orientation="axial", kind="stack",
               series_number=2, label="thick")  # fmt: skip
    current = study("6.1", "20250301", [scout, thick, thin], body_part="CHEST")
    old = study("6.2", "20240301", [ds("CT", "AX", number_of_images=90, orientation="axial",
                                      kind="stack", label="old")], body_part="CHEST")  # fmt: skip
    head = study("6.3", "20241201", [ds("CT", "HEAD", number_of_images=30, orientation="axial",
                                       kind="stack", label="head")], body_part="HEAD")  # fmt: skip
    best = best_protocol(current, [old, head], protocols)
    assert best.name == "ct"
    assert cells(best, 0) == ["thin"]  # most images, not the localizer
    planes = [v.options.reformat.plane for v in best.stages[1].viewports]
    assert planes == ["axial", "coronal", "sagittal"] and cells(best, 1) == ["thin"] * 3
    assert cells(best, 2) == ["thin", "old"]  # the chest CT prior, not the more recent head
    assert {v.options.sync_group for v in best.stages[2].viewports} == {"compare"}


def test_mr_brain_by_series_description(protocols):
    sets = [
        ds("MR", "LOC", localizer=True, kind="localizer", series_number=1, label="loc"),
        ds("MR", "T1 SAG", orientation="sagittal", number_of_images=20, series_number=2,
           label="t1"),
        ds("MR", "T2 AX", orientation="axial", number_of_images=24, series_number=3, label="t2"),
        ds("MR", "FLAIR AX", orientation="axial", number_of_images=24, series_number=4,
           label="flair"),
        ds("MR", "DWI AX", orientation="axial", number_of_images=24, series_number=5,
           label="dwi"),
        ds("MR", "ADC AX", orientation="axial", number_of_images=24, series_number=6,
           label="adc"),
    ]  # fmt: skip
    current = study("7.1", "20250301", sets, body_part="BRAIN", description="MR BRAIN")
    best = best_protocol(current, [], protocols)
    assert best.name == "mr-brain"
    assert cells(best, 0) == ["t1", "t2", "flair", "dwi"]
    assert cells(best, 1)[0::2] == ["t2", "flair"]


def test_mr_knee_is_not_hung_as_brain(protocols):
    sets = [ds("MR", "T1 COR", label="t1"), ds("MR", "T2 FS SAG", label="t2")]
    knee = study("8.1", "20250301", sets, body_part="KNEE", description="MR KNEE")
    ranked = match_protocols(knee, [], protocols)
    brain = next(m for m in ranked if m.name == "mr-brain")
    assert not brain.matched
    assert any("min_score 15" in f for f in brain.failures)
    assert ranked[0].name == "fallback"


def test_ultrasound_cine(protocols):
    sets = [ds("US", "", label="still 1", series_number=1),
            ds("US", "", number_of_images=120, kind="cine", label="loop", series_number=2),
            ds("US", "", label="still 2", series_number=3)]  # fmt: skip
    best = best_protocol(study("9.1", "20250301", sets), [], protocols)
    assert best.name == "us-cine"
    assert cells(best, 0) == ["loop"]
    assert cells(best, 1) == ["loop", "still 1", "still 2", None]
    assert "already shown" in best.stages[1].viewports[3].reason


def test_unknown_modality_gets_the_fallback(protocols):
    sets = [ds("OT", "", label="a"), ds("OT", "", label="b")]
    best = best_protocol(study("10.1", "20250301", sets), [], protocols)
    assert best.name == "fallback"
    assert cells(best, 0) == ["a"] and cells(best, 1) == ["a", "b", None, None]
