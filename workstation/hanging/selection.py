"""Display-set selection: which display set of a study a selector picks, and why.

Every display set is scored by the selector's rules (sum of the weights of the rules it passes);
one that fails a required rule is out. The best score wins; on a tie, a display set not yet
picked by an earlier selector of the same protocol on the same study comes first, then the
selector's ``sort`` (series number, most or fewest images), then the study's own order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workstation.hanging.facts import DisplaySetFacts, StudyFacts
from workstation.hanging.model import Selector
from workstation.hanging.rules import RuleResult, evaluate


@dataclass(frozen=True)
class SelectorResult:
    """What one selector picked in one study (``study`` is ``current`` or a prior's id)."""

    selector: str
    study: str
    study_uid: str
    display_set: DisplaySetFacts | None
    score: float
    rule_results: tuple[RuleResult, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = self.display_set
        return {"selector": self.selector, "study": self.study, "study_uid": self.study_uid,
                "display_set_uid": d.uid if d else None, "label": d.label if d else None,
                "score": self.score, "reason": self.reason,
                "rules": [r.to_dict() for r in self.rule_results]}  # fmt: skip


def _sort_key(selector: Selector, position: int, d: DisplaySetFacts) -> tuple:
    if selector.sort == "most_images":
        return (-d.number_of_images, position)
    if selector.sort == "fewest_images":
        return (d.number_of_images, position)
    return (d.series_number if d.series_number is not None else 1 << 30, position)


def select_display_set(
    selector: Selector, study: StudyFacts, study_key: str, used: Iterable[str] = ()
) -> SelectorResult:
    """Pick the display set of ``study`` for ``selector`` (``used``: UIDs taken already)."""
    taken = set(used)
    scored = []
    nearest: tuple[int, list[RuleResult], DisplaySetFacts] | None = None
    skipped = 0
    for position, d in enumerate(study.display_sets):
        if selector.distinct and d.uid in taken:
            skipped += 1
            continue
        results = [evaluate(r, d) for r in selector.rules]
        failed = [r for r in results if r.rule.required and not r.passed]
        if failed:
            if nearest is None or len(failed) < nearest[0]:
                nearest = (len(failed), failed, d)
            continue
        score = sum(r.score for r in results)
        scored.append(((-score, d.uid in taken, _sort_key(selector, position, d)), score, d,
                       results))  # fmt: skip
    if not scored:
        if not study.display_sets:
            why = "the study's images are not here (retrieve it first)"
        elif skipped == len(study.display_sets):
            why = f"all {skipped} display set(s) already shown by earlier selectors (distinct)"
        elif nearest is not None:
            why = (f"none of {len(study.display_sets)} display sets passes; nearest "
                   f"{nearest[2].label or nearest[2].uid}: "
                   + "; ".join(r.reason for r in nearest[1]))  # fmt: skip
        else:
            why = f"no display set ({skipped} already shown, distinct)"
        return SelectorResult(selector.id, study_key, study.study_uid, None, 0.0, (), why)
    scored.sort(key=lambda item: item[0])
    _, score, d, results = scored[0]
    why = f"{d.label or d.uid} (score {score:g} of {len(scored)} candidate(s))"
    return SelectorResult(selector.id, study_key, study.study_uid, d, score, tuple(results), why)
