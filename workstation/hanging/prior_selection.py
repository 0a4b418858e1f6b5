"""Which earlier studies of the patient to show: ranking candidates and the protocols' prior
rules ("the most recent prior of the same modality", "a prior 6-18 months back", "prior 2").

A candidate is a prior of ``current`` when it is another study of the same patient (same
Patient ID; same issuer when both name one) made before it (date, then time). Studies known
only from a C-FIND (no display sets) are candidates too: selection needs only study-level facts,
so the priors a protocol wants can be retrieved before their images are here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workstation.hanging.facts import StudyFacts
from workstation.hanging.model import PriorSpec, Protocol

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class RankedPrior:
    """A prior with its rank score (modality +2, body part +1) and why."""

    facts: StudyFacts
    score: float
    months_back: float | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {"study_uid": f.study_uid, "date": f.study_date.isoformat() if f.study_date else "",
                "modalities": list(f.modalities), "description": f.description,
                "body_part": f.body_part, "source": f.source, "score": self.score,
                "months_back": None if self.months_back is None else round(self.months_back, 1),
                "reasons": list(self.reasons)}  # fmt: skip


@dataclass(frozen=True)
class PriorChoice:
    """What one :class:`PriorSpec` picked: ``facts`` None when nothing qualifies (``reason``)."""

    spec: PriorSpec
    facts: StudyFacts | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {"id": self.spec.id, "wants": self.spec.describe(),
                "study_uid": f.study_uid if f else None,
                "date": f.study_date.isoformat() if f and f.study_date else None,
                "source": f.source if f else None, "reason": self.reason}  # fmt: skip


def months_back(current: StudyFacts, prior: StudyFacts) -> float | None:
    """Age of ``prior`` relative to ``current`` in months (30.44 days); None without dates."""
    if current.study_date is None or prior.study_date is None:
        return None
    return (current.study_date - prior.study_date).days / DAYS_PER_MONTH


def _shares_modality(current: StudyFacts, other: StudyFacts) -> bool | None:
    if not current.modalities or not other.modalities:
        return None
    return bool({m.upper() for m in current.modalities} & {m.upper() for m in other.modalities})


def _same_body_part(current: StudyFacts, other: StudyFacts) -> bool | None:
    if not current.body_part or not other.body_part:
        return None
    return current.body_part.strip().upper() == other.body_part.strip().upper()


def eligible_priors(current: StudyFacts, candidates: Sequence[StudyFacts]) -> list[StudyFacts]:
    """The candidates that are priors of ``current``, most recent first, one per study UID."""
    seen: set[str] = {current.study_uid}
    out = []
    for c in candidates:
        if c.study_uid in seen or not current.same_patient(c):
            continue
        if c.study_date is None or current.study_date is None or c.when >= current.when:
            continue
        seen.add(c.study_uid)
        out.append(c)
    return sorted(out, key=lambda c: c.when, reverse=True)


def rank_priors(current: StudyFacts, candidates: Sequence[StudyFacts]) -> list[RankedPrior]:
    """Priors of ``current`` ranked for comparison: sharing a modality first, then the same body
    part, then the nearest date."""
    ranked = []
    for c in eligible_priors(current, candidates):
        score, reasons = 0.0, []
        mod = _shares_modality(current, c)
        if mod:
            score += 2
            reasons.append("same modality (+2)")
        else:
            reasons.append("modality " + ("unknown" if mod is None else "differs"))
        part = _same_body_part(current, c)
        if part:
            score += 1
            reasons.append("same body part (+1)")
        else:
            reasons.append("body part " + ("unknown" if part is None else "differs"))
        m = months_back(current, c)
        reasons.append(f"{m:.1f} months earlier" if m is not None else "no date")
        ranked.append(RankedPrior(c, score, m, tuple(reasons)))
    # stable sort: within a score the most recent stays first
    return sorted(ranked, key=lambda r: -r.score)


def select_prior(spec: PriorSpec, current: StudyFacts,
                 candidates: Sequence[StudyFacts]) -> PriorChoice:  # fmt: skip
    """Apply one prior rule to the candidates."""
    pool = eligible_priors(current, candidates)
    if not pool:
        return PriorChoice(spec, None, "no earlier study of this patient")
    if spec.same_modality:
        pool = [c for c in pool if _shares_modality(current, c) is not False]
        if not pool:
            return PriorChoice(spec, None, "no earlier study shares a modality "
                                           f"({', '.join(current.modalities)})")  # fmt: skip
    if spec.same_body_part:
        pool = [c for c in pool if _same_body_part(current, c) is not False]
        if not pool:
            return PriorChoice(spec, None, f"no earlier study of body part {current.body_part}")
    picked: StudyFacts | None = None
    if spec.rule == "most_recent":
        picked = pool[0]
    elif spec.rule == "oldest":
        picked = pool[-1]
    elif spec.rule == "index":
        if spec.index > len(pool):
            return PriorChoice(spec, None, f"only {len(pool)} qualifying prior(s), "
                                           f"prior {spec.index} asked for")  # fmt: skip
        picked = pool[spec.index - 1]
    elif spec.rule == "months" and spec.months is not None:
        low, high = spec.months
        for c in pool:
            m = months_back(current, c)
            if m is not None and low <= m <= high:
                picked = c
                break
        if picked is None:
            ages = ", ".join(f"{months_back(current, c):.1f}" for c in pool)
            return PriorChoice(spec, None, f"no qualifying prior {low:g}-{high:g} months back "
                                           f"(priors at {ages} months)")  # fmt: skip
    if picked is None:
        return PriorChoice(spec, None, f"rule {spec.rule!r} picked nothing")
    m = months_back(current, picked)
    when = picked.study_date.isoformat() if picked.study_date else "no date"
    return PriorChoice(spec, picked, f"{spec.describe()}: {when}"
                                     + (f", {m:.1f} months earlier" if m is not None else ""))  # fmt: skip


def select_priors(protocol: Protocol, current: StudyFacts,
                  candidates: Sequence[StudyFacts]) -> tuple[PriorChoice, ...]:  # fmt: skip
    """Each of the protocol's prior specifications applied to the candidates, in order."""
    return tuple(select_prior(spec, current, candidates) for spec in protocol.priors)
