"""Applying presentation states to viewports, leaving them, building one to save, key-image marks.

:class:`PresentationController` applies a :class:`~workstation.pstate.model.PresentationState` to
a viewport (window, displayed area, rotation/flip, invert, shutter, the overlay groups it
activates and the annotations in their layers, through :mod:`workstation.pstate.apply`) and
leaves it again, giving back the user's own view, overlays and annotations. It also builds the
state to save from what a viewport shows (the overlays the user sees included), and keeps the
key-image marks (by series, so a stack of key images from several series is marked per image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from workstation.core.annotation_store import AnnotationStore, image_key
from workstation.core.annotations import ImageRef, Layer
from workstation.core.overlays import overlay_groups
from workstation.core.view_state import ViewState
from workstation.pstate.apply import (
    identity_window,
    presentation_from_view,
    view_from_presentation,
)
from workstation.pstate.gsps_writer import content_label
from workstation.pstate.model import ImagePresentation, PresentationState
from workstation.ui.viewport import Viewport


@dataclass
class _Applied:
    state: PresentationState
    user_view: ViewState
    user_overlays: bool
    user_groups: frozenset[int] | None
    store: AnnotationStore
    shown: ImagePresentation | None = None
    unsubscribe: Callable[[], None] | None = field(default=None, repr=False)


def series_uid_of(v: Viewport) -> str:
    """The Series Instance UID of the image on screen ("" when none)."""
    src = v.model.source
    if src is None or not v.model.count:
        return ""
    return str(src.header(v.model.state.index).get("SeriesInstanceUID", "") or "")


def study_uid_of(v: Viewport) -> str:
    """The Study Instance UID of the image on screen ("" when none)."""
    src = v.model.source
    if src is None or not v.model.count:
        return ""
    return str(src.header(v.model.state.index).get("StudyInstanceUID", "") or "")


def _index_of(v: Viewport, sop_uid: str, frame: int | None) -> int | None:
    src = v.model.source
    if src is None:
        return None
    for i, ref in enumerate(src.frames):
        uid = ref.sop_instance_uid or str(src.header(i).get("SOPInstanceUID", ""))
        fr = ref.frame_index + 1 if ref.frame_index is not None else None
        if uid == sop_uid and (frame is None or fr is None or fr == frame):
            return i
    return None


def _overlays_seen(v: Viewport, ds: Dataset) -> tuple[int, ...]:
    """The overlay groups of image ``ds`` that ``v`` draws (none when overlays are off)."""
    if not v.show_overlays:
        return ()
    groups = [g for g in overlay_groups(ds) if (g, 0x0010) in ds and (g, 0x0011) in ds]
    if v.overlay_groups is not None:
        groups = [g for g in groups if g in v.overlay_groups]
    return tuple(groups)


def _series_of(v: Viewport, i: int) -> str:
    return str(v.model.source.header(i).get("SeriesInstanceUID", "") or "")


class PresentationController:
    """Applies and leaves presentation states on viewports; builds states; keeps key images."""

    def __init__(self) -> None:
        self._applied: dict[int, _Applied] = {}
        self._marks: dict[str, dict[tuple[str, int | None], ImageRef]] = {}

    # --- applying ------------------------------------------------------------------------------
    def applied(self, v: Viewport) -> PresentationState | None:
        got = self._applied.get(id(v))
        return got.state if got is not None else None

    def apply(self, v: Viewport, state: PresentationState) -> bool:
        """Show ``state`` on ``v``: its view of the image on screen (or of the first image it
        references, which the viewport moves to), its shutter, overlays and annotations.
        False when it references nothing in the viewport's series."""
        if v.model.source is None:
            return False
        ref = v.annotation_tools.current_image()
        if ref is None or state.for_image(ref.sop_instance_uid, ref.frame_number) is None:
            for sop, frame in state.images:
                i = _index_of(v, sop, frame)
                if i is not None:
                    v.model.set_index(i)
                    break
            else:
                return False
        self.leave(v)
        store = AnnotationStore(state.all_annotations)
        layers: dict[str, Layer] = {}
        for p in state.images.values():
            layers.update(p.layers)
        applied = _Applied(state, v.model.state, v.show_overlays, v.overlay_groups, store)
        self._applied[id(v)] = applied

        def shutter_for(image: ImageRef):
            p = state.for_image(image.sop_instance_uid, image.frame_number)
            return p.shutter if p is not None else None

        v.annotation_tools.set_override(store, layers, shutter_for)
        applied.unsubscribe = v.model.subscribe(
            lambda model, what: self._follow(v) if what == "index" else None
        )
        self._follow(v)
        return True

    def _follow(self, v: Viewport) -> None:
        """Set the view the state gives the image on screen (when it differs from the last)."""
        applied = self._applied.get(id(v))
        ref = v.annotation_tools.current_image()
        if applied is None or ref is None:
            return
        p = applied.state.for_image(ref.sop_instance_uid, ref.frame_number)
        if p is None or p == applied.shown:
            return
        applied.shown = p
        geo = v.model.geometry()
        renderer = v.current_renderer()
        inverted = renderer.inverted_by_file if renderer is not None else False
        view = view_from_presentation(
            p,
            geo,
            v.model.viewport_size,
            inverted_by_file=inverted,
            base=v.model.state,
            screen_px_per_mm=v.model.screen_px_per_mm,
            # a state without a softcopy VOI means no VOI transformation (PS3.4 N.2.1.2), as
            # DCMTK renders it, not "keep the user's window"
            no_voi=identity_window(v.model.source.header(v.model.state.index)),
        )
        # exactly the overlay groups the state activates (PS3.4 N.2.4): none when it names none
        v.show_overlays = True
        v.overlay_groups = frozenset(p.overlays_on)
        v.model.set_view(view)
        v.update()

    def leave(self, v: Viewport) -> None:
        """Back to the user's own view, overlays and annotations."""
        applied = self._applied.pop(id(v), None)
        if applied is None:
            return
        if applied.unsubscribe is not None:
            applied.unsubscribe()
        v.annotation_tools.set_override(None)
        v.show_overlays = applied.user_overlays
        v.overlay_groups = applied.user_groups
        v.model.set_view(applied.user_view)
        v.update()

    # --- saving ---------------------------------------------------------------------------------
    def build_state(
        self, v: Viewport, label: str, description: str = "", creator: str = ""
    ) -> tuple[PresentationState, list[Dataset], dict[str, object]]:
        """The state that saves what ``v`` shows: the view of the image on screen applied to
        every image of the series that carries annotations (and to that image), with each
        image's annotations; plus the image headers and the measurements to write.

        Raises
        ------
        ValueError
            When the viewport shows nothing.
        """
        src, m = v.model.source, v.model
        ref = v.annotation_tools.current_image()
        if src is None or ref is None:
            raise ValueError("no image in the viewport to save a presentation state of")
        store = v.annotation_tools.store()
        layers = dict(v.annotation_tools.layers)
        keys = [image_key(ref)]
        if store is not None:
            keys += [k for k in store.images() if k not in keys]
        renderer = v.current_renderer()
        inverted = renderer.inverted_by_file if renderer is not None else False
        window = v.effective_window()
        images: dict[tuple[str, int | None], ImagePresentation] = {}
        headers: dict[str, Dataset] = {}
        measurements: dict[str, object] = {}
        for sop, frame in keys:
            i = _index_of(v, sop, frame)
            if i is None:
                continue
            ds = src.header(i)
            image = ImageRef(sop, frame, str(ds.get("SOPClassUID", "") or ""))
            annotations = tuple(store.for_image((sop, frame))) if store is not None else ()
            for a in annotations:
                value = store.measurement(a.uid)
                if value is not None:
                    measurements[a.uid] = value
            images[(sop, frame)] = presentation_from_view(
                m.state,
                image,
                src.geometry(i),
                m.viewport_size,
                inverted_by_file=inverted,
                voi=window,
                annotations=annotations,
                layers=layers or None,
                overlays_on=_overlays_seen(v, ds),
                device_pixel_ratio=m.device_pixel_ratio,
                screen_px_per_mm=m.screen_px_per_mm,
            )
            headers.setdefault(sop, ds)
        first = src.header(m.state.index)
        state = PresentationState(
            sop_instance_uid=generate_uid(),
            series_uid=str(first.get("SeriesInstanceUID", "") or ""),
            study_uid=str(first.get("StudyInstanceUID", "") or ""),
            label=content_label(label or "MEASUREMENTS"),
            description=description,
            creator=creator,
            created=datetime.now(),
            images=images,
        )
        return state, list(headers.values()), measurements

    # --- key images -----------------------------------------------------------------------------
    def toggle_key_image(self, v: Viewport) -> bool:
        """Mark or unmark the image on screen; returns whether it is marked now."""
        ref = v.annotation_tools.current_image()
        series = series_uid_of(v)
        if ref is None:
            return False
        marks = self._marks.setdefault(series, {})
        key = image_key(ref)
        if key in marks:
            del marks[key]
            return False
        marks[key] = ref
        return True

    def is_key_image(self, v: Viewport) -> bool:
        ref = v.annotation_tools.current_image()
        return ref is not None and image_key(ref) in self._marks.get(series_uid_of(v), {})

    def key_images(self, v: Viewport) -> list[tuple[Dataset, int | None]]:
        """The marked images shown in ``v`` as (header, frame number), in display order (a
        stack of key images may hold images of several series)."""
        src = v.model.source
        out: list[tuple[Dataset, int | None]] = []
        if src is None:
            return out
        for i, ref in enumerate(src.frames):
            marks = self._marks.get(_series_of(v, i), {})
            uid = ref.sop_instance_uid or str(src.header(i).get("SOPInstanceUID", ""))
            frame = ref.frame_index + 1 if ref.frame_index is not None else None
            if (uid, frame) in marks:
                out.append((src.header(i), frame))
        return out

    def mark(self, images: Sequence[tuple[str, ImageRef]]) -> None:
        """Count ``(series uid, image)`` pairs as marked key images (an opened key-image note)."""
        for series, ref in images:
            self._marks.setdefault(series, {})[image_key(ref)] = ref


__all__ = ["PresentationController", "series_uid_of", "study_uid_of"]
