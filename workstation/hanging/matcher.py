"""The matcher: a pure function from a study, its candidate priors and the protocols to the
ranked protocols, their scores, the reasons each rule passed or failed, and each stage's
viewport assignment.

Scoring (after OHIF's HPMatcher): a protocol's score is the sum of the weights of its study
rules that pass plus, for each display-set selector that finds a display set in the current
study, that display set's score. A protocol is out ("not matched") when a required rule fails,
a required display set or prior is missing, or the study rules' score stays under
``min_score``. Matched
protocols rank by score (user protocols first on a tie, then by name); the rest follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from workstation.hanging.facts import StudyFacts
from workstation.hanging.model import CURRENT, Protocol
from workstation.hanging.prior_selection import PriorChoice, select_priors
from workstation.hanging.rules import RuleResult, evaluate
from workstation.hanging.selection import SelectorResult, select_display_set
from workstation.hanging.stage_assignment import StageAssignment, assign_stages


@dataclass(frozen=True)
class ProtocolMatch:
    """One protocol judged against one study.

    Attributes
    ----------
    protocol : Protocol
    matched : bool
    score : float
    rule_results : tuple of RuleResult
        The study-level rules.
    priors : tuple of PriorChoice
        What each prior specification picked (or why nothing).
    selections : tuple of SelectorResult
        Each selector on the current study and on each prior picked.
    failures : tuple of str
        Why it is not matched (empty when matched).
    stages : tuple of StageAssignment
        What goes into each viewport of each stage.
    """

    protocol: Protocol
    matched: bool
    score: float
    rule_results: tuple[RuleResult, ...]
    priors: tuple[PriorChoice, ...]
    selections: tuple[SelectorResult, ...]
    failures: tuple[str, ...]
    stages: tuple[StageAssignment, ...]

    @property
    def name(self) -> str:
        return self.protocol.name

    def wanted_priors(self) -> tuple[StudyFacts, ...]:
        """The prior studies this protocol shows (retrieve those that have no display sets)."""
        seen: dict[str, StudyFacts] = {}
        for choice in self.priors:
            if choice.facts is not None:
                seen.setdefault(choice.facts.study_uid, choice.facts)
        return tuple(seen.values())

    def to_dict(self) -> dict[str, Any]:
        p = self.protocol
        return {"name": p.name, "label": p.label, "level": p.level, "source": p.source,
                "matched": self.matched, "score": self.score, "min_score": p.min_score,
                "failures": list(self.failures),
                "rules": [r.to_dict() for r in self.rule_results],
                "priors": [c.to_dict() for c in self.priors],
                "display_sets": [s.to_dict() for s in self.selections],
                "stages": [s.to_dict() for s in self.stages]}  # fmt: skip


def evaluate_protocol(
    protocol: Protocol, current: StudyFacts, candidates: Sequence[StudyFacts] = ()
) -> ProtocolMatch:
    """Judge one protocol: rules, priors, display sets, score and stage assignments.

    Parameters
    ----------
    protocol : Protocol
    current : StudyFacts
        The study being opened, with its display sets.
    candidates : sequence of StudyFacts
        Other studies (of the patient): priors are chosen among them. Those with display sets
        get viewports; those without are chosen but shown as "not retrieved yet".
    """
    rule_results = tuple(evaluate(r, current) for r in protocol.rules)
    failures = [f"required rule failed: {r.reason}" for r in rule_results
                if r.rule.required and not r.passed]  # fmt: skip
    score = study_score = sum(r.score for r in rule_results)
    choices = select_priors(protocol, current, candidates)
    for choice in choices:
        if choice.spec.required and choice.facts is None:
            failures.append(f"required prior {choice.spec.id!r} missing: {choice.reason}")
    studies: list[tuple[str, StudyFacts]] = [(CURRENT, current)]
    studies += [(c.spec.id, c.facts) for c in choices if c.facts is not None]
    selections: list[SelectorResult] = []
    used: dict[str, set[str]] = {}
    for selector in protocol.display_sets:
        for key, study in studies:
            taken = used.setdefault(key, set())
            result = select_display_set(selector, study, key, taken)
            if result.display_set is not None:
                taken.add(result.display_set.uid)
            selections.append(result)
            if key == CURRENT:
                score += result.score
                if selector.required and result.display_set is None:
                    failures.append(f"required display set {selector.id!r} not found: "
                                    f"{result.reason}")  # fmt: skip
    if study_score < protocol.min_score:
        failures.append(f"study rules score {study_score:g}, under the protocol's min_score "
                        f"{protocol.min_score:g}")  # fmt: skip
    stages = assign_stages(protocol, current, choices, selections)
    return ProtocolMatch(protocol, not failures, score, rule_results, choices,
                         tuple(selections), tuple(failures), stages)  # fmt: skip


def match_protocols(
    current: StudyFacts, candidates: Sequence[StudyFacts], protocols: Iterable[Protocol]
) -> list[ProtocolMatch]:
    """Every protocol judged and ranked: matched ones by score, the best first."""
    results = [evaluate_protocol(p, current, candidates) for p in protocols]
    return sorted(results, key=lambda m: (not m.matched, -m.score,
                                          m.protocol.level != "user", m.protocol.name.lower()))  # fmt: skip


def best_protocol(
    current: StudyFacts, candidates: Sequence[StudyFacts], protocols: Iterable[Protocol]
) -> ProtocolMatch | None:
    """The best matching protocol, or None when none matches (not even a fallback)."""
    ranked = match_protocols(current, candidates, protocols)
    return ranked[0] if ranked and ranked[0].matched else None
