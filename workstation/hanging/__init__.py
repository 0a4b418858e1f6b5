"""Hanging protocols: the file format and its checks, loading with user overrides, a pure
matcher that scores and explains, prior selection and the viewport assignment of each stage.

Pure: the standard library, PyYAML and ``workstation.core`` only. What joins it to the
archive and the network (facts of a stored study, finding and retrieving priors) lives in
``workstation.app.hanging_facts`` and ``workstation.app.priors``.
"""

from workstation.hanging.facts import DisplaySetFacts, StudyFacts, parse_date
from workstation.hanging.loading import (
    ProtocolFileError,
    ProtocolSet,
    builtin_dir,
    load_protocol_file,
    load_protocol_text,
    load_protocols,
)
from workstation.hanging.matcher import (
    ProtocolMatch,
    best_protocol,
    evaluate_protocol,
    match_protocols,
)
from workstation.hanging.model import (
    CURRENT,
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
from workstation.hanging.prior_selection import (
    PriorChoice,
    RankedPrior,
    rank_priors,
    select_priors,
)
from workstation.hanging.rules import RuleResult
from workstation.hanging.save_layout import SavedViewport, protocol_yaml_from_layout
from workstation.hanging.selection import SelectorResult
from workstation.hanging.stage_assignment import StageAssignment, ViewportAssignment

__all__ = [
    "CURRENT", "DisplaySetFacts", "PriorChoice", "PriorSpec", "Protocol", "ProtocolFileError",
    "ProtocolMatch", "ProtocolSet", "RankedPrior", "Reformat", "Rule", "RuleResult",
    "SavedViewport", "Selector", "SelectorResult", "Stage", "StageAssignment", "StudyFacts",
    "ViewportAssignment", "ViewportOptions", "ViewportSpec", "best_protocol", "builtin_dir",
    "evaluate_protocol", "layout_cell_count", "load_protocol_file", "load_protocol_text",
    "load_protocols", "match_protocols", "parse_date", "protocol_yaml_from_layout",
    "rank_priors", "select_priors",
]  # fmt: skip
