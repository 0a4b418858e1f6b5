"""Hanging a study in the viewer: the best protocol applies when a study opens, stages step by key,
another protocol can be chosen, priors missing locally are fetched in the background.

The matching itself is pure (:mod:`workstation.hanging`); this module runs the slow parts in
worker threads (reading the headers of the study and its local priors, querying the nodes for
priors, retrieving them) and lays the result out in the :class:`ViewerArea`. What reads the
archive and talks to the nodes comes in as callables from ``workstation.app`` (house rule 8).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from PySide6.QtCore import QObject, Signal

from workstation.core.display_sets import DisplaySet
from workstation.core.frame_cache import FrameCache
from workstation.core.frame_source import FrameSource
from workstation.core.voi import Window
from workstation.hanging import ProtocolMatch, ProtocolSet, StudyFacts, match_protocols
from workstation.hanging.stage_assignment import StageAssignment, ViewportAssignment
from workstation.ui.viewer_area import ViewerArea
from workstation.ui.viewport import Viewport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HangingInputs:
    """What the protocols are matched against, with what is needed to show the display sets.

    Attributes
    ----------
    current : StudyFacts
        The study being opened, with its display sets.
    candidates : tuple of StudyFacts
        The patient's other studies (local ones with display sets; remote ones without).
    sets : mapping
        Display set uid -> (the display set, the headers of its files by path), for every
        display set of ``current`` and of the local candidates.
    problems : tuple of str
        Files or studies that could not be read (shown in the status bar).
    """

    current: StudyFacts
    candidates: tuple[StudyFacts, ...] = ()
    sets: Mapping[str, tuple[DisplaySet, Mapping[str, Dataset]]] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


Prepare = Callable[[str], HangingInputs]
FindRemote = Callable[[StudyFacts], Sequence[StudyFacts]]
Retrieve = Callable[[Sequence[StudyFacts], Callable[[str], None]], None]


class HangingController(QObject):
    """Applies hanging protocols to a viewer area.

    Parameters
    ----------
    viewer : ViewerArea
    cache : FrameCache
        Shared by the frame sources made here.
    protocols : callable
        Returns the protocols in effect (built-in + user), read again on each call so that a
        saved protocol is used at once.
    prepare : callable
        ``prepare(study_uid) -> HangingInputs`` from the local archive (runs in a worker).
    find_remote, retrieve : callable, optional
        Priors on the configured nodes: ``find_remote(current) -> [StudyFacts]`` and
        ``retrieve(studies, progress)`` into the local archive (run in a worker).
    presets : PresetBook, optional
        Window presets by name for the protocols' ``window`` option.
    registry : DecoderRegistry, optional
        Fallback decoders for the frame sources.
    open_reformat : callable, optional
        ``open_reformat(viewport, source, reformat)`` for viewports with a reformat option
        (the MPR views); without it those viewports show the stack and say so.

    Signals
    -------
    applied(object)
        The :class:`ProtocolMatch` now on screen (and its stage in :attr:`stage_index`).
    message(str)
        A sentence for the status bar.
    busy(bool)
        Priors are being fetched.
    """

    applied = Signal(object)
    message = Signal(str)
    busy = Signal(bool)
    _prepared = Signal(int, object)
    _remote = Signal(int, object)
    _retrieved = Signal(int, str)
    _failed = Signal(int, str)

    def __init__(
        self,
        viewer: ViewerArea,
        cache: FrameCache,
        protocols: Callable[[], ProtocolSet],
        prepare: Prepare,
        *,
        find_remote: FindRemote | None = None,
        retrieve: Retrieve | None = None,
        presets=None,
        open_reformat: Callable | None = None,
        registry=None,
    ) -> None:
        super().__init__(viewer)
        self.viewer = viewer
        self.cache = cache
        self.protocols = protocols
        self.prepare = prepare
        self.find_remote = find_remote
        self.retrieve = retrieve
        self.presets = presets
        self.open_reformat = open_reformat
        self.registry = registry
        self.inputs: HangingInputs | None = None
        self.ranked: list[ProtocolMatch] = []
        self.match: ProtocolMatch | None = None
        self.stage_index = 0
        self.remote: tuple[StudyFacts, ...] = ()
        self._generation = 0
        #: True from :meth:`open_study` until the study is on screen (or failed).
        self.pending = False
        self._refreshing = False
        self._prefer_prior_stage = False
        self._sources: dict[str, FrameSource] = {}
        self._prepared.connect(self._on_prepared)
        self._remote.connect(self._on_remote)
        self._retrieved.connect(self._on_retrieved)
        self._failed.connect(self._on_failed)

    # --- opening --------------------------------------------------------------------------------
    def open_study(self, study_uid: str, *, prefer_prior_stage: bool = False) -> None:
        """Read the study (in a worker), then hang it with the best protocol; with
        ``prefer_prior_stage`` start at the first stage that shows a prior (when there is one)."""
        self._generation += 1
        gen = self._generation
        self.pending = True
        self._prefer_prior_stage = prefer_prior_stage
        self.remote = ()  # the priors found on the nodes belong to the study opened before
        self.message.emit("Reading the study and its priors…")
        self._run(gen, lambda: self._prepared.emit(gen, self.prepare(study_uid)))

    def _run(self, gen: int, job: Callable[[], None]) -> None:
        def work() -> None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - reported to the user, never a crash
                log.exception("hanging: background job failed")
                self._failed.emit(gen, f"{type(exc).__name__}: {exc}")

        threading.Thread(target=work, name="hanging", daemon=True).start()

    def _on_failed(self, gen: int, text: str) -> None:
        if gen == self._generation:
            self.pending = False
            self._refreshing = False
            self.busy.emit(False)
            self.message.emit(f"Hanging protocol: {text}")

    def _on_prepared(self, gen: int, inputs: HangingInputs) -> None:
        if gen != self._generation:
            return
        keep_stage = self.inputs is not None and (
            self.inputs.current.study_uid == inputs.current.study_uid
        )
        chosen = self.match.name if keep_stage and self.match is not None else None
        self.inputs = inputs
        self._forget_sources(keep=set(inputs.sets))
        prefer_prior = not keep_stage and self._prefer_prior_stage
        self._rank(chosen, self.stage_index if keep_stage else 0, prefer_prior=prefer_prior)
        self.pending = False
        if self._refreshing:
            self._refreshing = False
            self.busy.emit(False)
            self.message.emit(f"Priors retrieved. {self.describe()}")
        if inputs.problems:
            self.message.emit(inputs.problems[0])
        if self.find_remote is not None and not keep_stage:
            current = inputs.current
            self._run(gen, lambda: self._remote.emit(gen, tuple(self.find_remote(current))))

    def _rank(self, chosen: str | None, stage: int, *, prefer_prior: bool = False) -> None:
        """Match the protocols and hang the chosen (else the best) one at ``stage``, or with
        ``prefer_prior`` at its first stage that shows a prior, when it has one."""
        assert self.inputs is not None
        local = {c.study_uid for c in self.inputs.candidates}
        candidates = [
            *self.inputs.candidates,
            *(r for r in self.remote if r.study_uid not in local),
        ]
        self.ranked = match_protocols(self.inputs.current, candidates, self.protocols())
        match = next((m for m in self.ranked if m.name == chosen), None)
        if match is None:
            match = next((m for m in self.ranked if m.matched), None)
        if match is None:
            self.message.emit("No hanging protocol matches this study")
            return
        if prefer_prior:
            stage = next(
                (
                    st.index
                    for st in match.stages
                    if any(c.study != "current" and not c.empty for c in st.viewports)
                ),
                stage,
            )
        self.apply(match, min(stage, max(len(match.stages) - 1, 0)))

    def _on_remote(self, gen: int, remote: tuple[StudyFacts, ...]) -> None:
        if gen != self._generation or self.inputs is None:
            return
        self.remote = remote
        chosen = self.match.name if self.match is not None else None
        self._rank(chosen, self.stage_index)
        self._fetch_missing_priors(gen)

    def _fetch_missing_priors(self, gen: int) -> None:
        if self.match is None or self.retrieve is None or self.inputs is None:
            return
        missing = [f for f in self.match.wanted_priors() if not f.display_sets]
        if not missing:
            return
        study_uid = self.inputs.current.study_uid
        dates = ", ".join(str(f.study_date or "?") for f in missing)
        self.message.emit(f"Fetching {len(missing)} prior(s) ({dates}) for {self.match.name}…")
        self.busy.emit(True)

        self.pending = True
        self._refreshing = True

        def job() -> None:
            self.retrieve(missing, lambda text: self._retrieved.emit(gen, text))
            self._prepared.emit(gen, self.prepare(study_uid))

        self._run(gen, job)

    def _on_retrieved(self, gen: int, text: str) -> None:
        if gen == self._generation:
            self.message.emit(text)

    # --- saving the layout ------------------------------------------------------------------------
    def layout_as_protocol(self, name: str, label: str = "") -> str:
        """The YAML text of a protocol that hangs the current layout again: each viewport's
        modality and series description, whether it shows a prior, its window preset, invert,
        flip, rotation and alignment."""
        from workstation.hanging import SavedViewport, ViewportOptions, protocol_yaml_from_layout

        saved: list[SavedViewport | None] = []
        for v in self.viewer.visible():
            m = v.model
            if m.source is None or not m.count:
                saved.append(None)
                continue
            ds = m.source.header(0)
            st = m.state
            window = st.voi_label[len("preset ") :] if st.voi_label.startswith("preset ") else None
            h, vert = st.align
            options = ViewportOptions(
                window=window,
                invert=st.invert,
                flip_horizontal=st.flip,
                rotate=st.rotation % 360,
                align=(("left", "center", "right")[h + 1], ("top", "center", "bottom")[vert + 1]),
            )
            saved.append(
                SavedViewport(
                    str(ds.get("Modality", "") or ""),
                    str(ds.get("SeriesDescription", "") or ""),
                    prior=bool(v.study_tag is not None and v.study_tag.is_prior),
                    options=options,
                )
            )
        return protocol_yaml_from_layout(name, self.viewer.layout_name, saved, label=label)

    # --- applying -------------------------------------------------------------------------------
    def choose(self, name: str) -> None:
        """Hang the study with the protocol called ``name`` (from the ranked list)."""
        match = next((m for m in self.ranked if m.name == name), None)
        if match is not None:
            self.apply(match, 0)
            if self.inputs is not None:
                self._fetch_missing_priors(self._generation)

    def next_stage(self, step: int = 1) -> None:
        if self.match is None or not self.match.stages:
            return
        n = len(self.match.stages)
        self.apply(self.match, (self.stage_index + step) % n)

    def apply(self, match: ProtocolMatch, stage_index: int = 0) -> None:
        """Lay out stage ``stage_index`` of ``match``."""
        if not match.stages:
            return
        self.match = match
        self.stage_index = stage_index
        stage = match.stages[stage_index]
        self.viewer.set_layout(stage.layout)
        views = self.viewer.visible()
        self.viewer.sync_groups = {}
        for cell in stage.viewports:
            if cell.cell < len(views):
                self._fill(views[cell.cell], cell)
        if views:
            self.viewer.set_active(views[0])
        self.viewer.update_links()
        self.viewer.update_study_tags()
        self.message.emit(self.describe(stage))
        self.applied.emit(match)

    def describe(self, stage: StageAssignment | None = None) -> str:
        if self.match is None:
            return ""
        stage = stage or self.match.stages[self.stage_index]
        n = len(self.match.stages)
        empty = [c for c in stage.viewports if c.empty and c.selector is not None]
        text = f"{self.match.protocol.label or self.match.name}: stage {stage.index + 1}/{n}"
        if stage.name:
            text += f" ({stage.name})"
        if empty:
            text += f"; {len(empty)} viewport(s) empty: {empty[0].reason}"
        if self._unlinked():
            text += (
                "; current and prior have different frames of reference: Shift+S, then a click"
                " on the same anatomy in each, links their scrolling"
            )
        return text

    def _unlinked(self) -> bool:
        """Viewports of one sync group that cannot scroll together (no shared frame of reference
        and no registration yet)."""
        groups: dict[str, list[Viewport]] = {}
        for v, g in self.viewer.sync_groups.items():
            if v.model.source is not None:
                groups.setdefault(g, []).append(v)
        for views in groups.values():
            for i, a in enumerate(views):
                for b in views[i + 1 :]:
                    if self.viewer.translation(a.model, b.model) is None:
                        return True
        return False

    def _fill(self, viewport: Viewport, cell: ViewportAssignment) -> None:
        model = viewport.model
        if cell.empty:
            model.set_source(None)
            viewport.message = cell.reason if cell.selector is not None else ""
            viewport.update()
            return
        source = self._source(cell.display_set_uid)
        if source is None:
            model.set_source(None)
            viewport.message = f"{cell.display_set.label}: not readable here"
            viewport.update()
            return
        options = cell.options
        n = len(source)
        initial = options.initial_image
        index = {"first": 0, "last": n - 1, "middle": n // 2}.get(initial, initial)
        index = min(max(int(index), 0), max(n - 1, 0))
        if model.source is not source:
            self.viewer.show_source(source, viewport, index)
        else:
            model.reset()
            model.set_index(index)
        viewport.message = ""
        flip, rotation = options.view_transform()
        if flip:
            model.flip_horizontal()
        if rotation:
            model.rotate(rotation // 90)
        if options.invert:
            model.toggle_invert()
        if options.align != ("center", "center"):
            model.set_align(*options.align_steps())
        if options.window:
            self._apply_window(viewport, options.window)
        if options.sync_group:
            self.viewer.sync_groups[viewport] = options.sync_group
        if options.reformat is not None and options.reformat.plane:
            if self.open_reformat is not None:
                self.open_reformat(viewport, source, options.reformat)
            else:
                viewport.message = f"reformat {options.reformat.plane}: shown as acquired"

    def _apply_window(self, viewport: Viewport, name: str) -> None:
        if self.presets is None:
            return
        for preset in self.presets.for_modality(viewport.modality()):
            if preset.name.lower() == name.lower():
                viewport.model.set_voi(
                    Window(preset.center, preset.width, "LINEAR", preset.name),
                    f"preset {preset.name}",
                )
                return

    def _source(self, uid: str | None) -> FrameSource | None:
        if uid is None or self.inputs is None:
            return None
        source = self._sources.get(uid)
        if source is None:
            entry = self.inputs.sets.get(uid)
            if entry is None:
                return None
            display_set, headers = entry
            source = self._sources[uid] = FrameSource(
                display_set, dict(headers), self.cache, self.registry
            )
        return source

    def _forget_sources(self, keep: set[str]) -> None:
        shown = {id(v.model.source) for v in self.viewer.viewports}
        for uid in list(self._sources):
            if uid not in keep and id(self._sources[uid]) not in shown:
                self._sources.pop(uid).close()
