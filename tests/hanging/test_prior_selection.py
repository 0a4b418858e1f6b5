"""Prior rules and the ranking of candidates."""

from __future__ import annotations

from factories import ds, study

from workstation.hanging import PriorSpec, rank_priors
from workstation.hanging.prior_selection import select_prior


def ct(uid, date, **kw):
    return study(uid, date, [ds("CT", "AX")], **kw)


CURRENT = ct("c", "20250615", body_part="CHEST", issuer="HOSP")
PRIORS = [
    ct("m3", "20250315", body_part="CHEST"),  # 3 months
    ct("m10", "20240815", body_part="ABDOMEN"),  # 10 months
    study("mr14", "20240415", [ds("MR", "T2")], body_part="CHEST"),  # 14 months, MR
    ct("m20", "20231015", body_part="CHEST"),  # 20 months
    ct("later", "20250701", body_part="CHEST"),  # after the current: not a prior
    ct("other", "20250101", patient="P2"),  # another patient
    ct("issuer", "20250101", issuer="OTHER HOSP"),  # same ID, another issuer
]


def pick(**kw) -> str | None:
    choice = select_prior(PriorSpec("p", **kw), CURRENT, PRIORS)
    return choice.facts.study_uid if choice.facts else None


def test_prior_rules():
    assert pick() == "m3"  # most recent of the same modality
    assert pick(rule="oldest") == "m20"
    assert pick(rule="index", index=2) == "m10"
    assert pick(rule="index", index=9) is None
    assert pick(rule="months", months=(6, 18)) == "m10"
    assert pick(rule="months", months=(6, 18), same_body_part=True) is None  # m10: abdomen
    assert pick(rule="months", months=(11, 18)) is None  # only the MR lies there
    assert pick(rule="months", months=(11, 18), same_modality=False) == "mr14"
    assert pick(same_body_part=True, rule="index", index=2) == "m20"


def test_months_window_reason_lists_the_ages():
    choice = select_prior(PriorSpec("p", rule="months", months=(11.0, 18.0)), CURRENT, PRIORS)
    assert choice.facts is None
    assert "11-18 months back" in choice.reason and "3.0" in choice.reason


def test_ranking_same_modality_body_part_then_date():
    ranked = rank_priors(CURRENT, PRIORS)
    assert [r.facts.study_uid for r in ranked] == ["m3", "m20", "m10", "mr14"]
    assert ranked[0].score == 3 and ranked[0].reasons[:2] == ("same modality (+2)",
                                                              "same body part (+1)")  # fmt: skip
    assert round(ranked[0].months_back, 1) == 3.0
