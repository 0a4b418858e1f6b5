"""The annotations of a series, with selection, change notifications and undo/redo.

An :class:`AnnotationStore` holds the annotations of one series (all its images), keyed by image
(:class:`~workstation.core.annotations.ImageRef`). Every edit is a step of ``(before, after)``
pairs: ``before`` None is an add, ``after`` None a delete, both set a move or an edit; undo applies
the pairs backwards, redo forwards, so both restore the annotations exactly.

A mouse drag edits the same annotation many times; :meth:`AnnotationStore.begin` /
:meth:`AnnotationStore.commit` turn the whole drag into one undo step.

Measurements (computed by the viewer from the pixels of the image an annotation lies on) are kept
beside the annotations so a list can show the values of images not on screen; a measurement is
dropped when its annotation changes.

Listeners are called as ``listener(store, what, uids)`` with ``what`` one of ``'annotations'``
(added, changed or removed: ``uids`` lists them), ``'selection'`` or ``'measurements'``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from workstation.core.annotations import Annotation, ImageRef

Listener = Callable[["AnnotationStore", str, tuple[str, ...]], None]


def image_key(ref: ImageRef) -> tuple[str, int | None]:
    """The key an image is filed under: ``(SOP Instance UID, frame number)``."""
    return ref.sop_instance_uid, ref.frame_number


@dataclass(frozen=True)
class Step:
    """One undoable edit: what it was called and the ``(before, after)`` of each annotation."""

    label: str
    changes: tuple[tuple[Annotation | None, Annotation | None], ...]


class AnnotationStore:
    """The annotations of one series; plain model with notifications (no Qt)."""

    def __init__(self, annotations: Iterable[Annotation] = (), limit: int = 200) -> None:
        self._items: dict[str, Annotation] = {}
        for a in annotations:
            self._items[a.uid] = a
        self._measurements: dict[str, tuple[Annotation, Any]] = {}
        self._undo: list[Step] = []
        self._redo: list[Step] = []
        self._limit = limit
        self._open: dict[str, Annotation | None] | None = None
        self._open_label = ""
        self.selected: str | None = None
        self._listeners: list[Listener] = []

    # --- notifications ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(store, what, uids)`` on every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, what: str, uids: tuple[str, ...] = ()) -> None:
        for listener in list(self._listeners):
            listener(self, what, uids)

    # --- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, uid: object) -> bool:
        return uid in self._items

    def get(self, uid: str) -> Annotation | None:
        return self._items.get(uid)

    def all(self) -> list[Annotation]:
        """Every annotation, in the order they were added."""
        return list(self._items.values())

    def for_image(self, ref: ImageRef | tuple[str, int | None]) -> list[Annotation]:
        """The annotations on one image (frame), in drawing order."""
        key = image_key(ref) if isinstance(ref, ImageRef) else ref
        return [a for a in self._items.values() if image_key(a.image) == key]

    def images(self) -> list[tuple[str, int | None]]:
        """The images that carry at least one annotation."""
        return list(dict.fromkeys(image_key(a.image) for a in self._items.values()))

    # --- measurements -----------------------------------------------------------------------------
    def measurement(self, uid: str) -> Any | None:
        """The measurement last computed for the annotation as it is now, or None."""
        got = self._measurements.get(uid)
        a = self._items.get(uid)
        if got is None or a is None or got[0] != a:
            return None
        return got[1]

    def set_measurement(self, annotation: Annotation, measurement: Any | None) -> None:
        """Keep ``measurement`` for ``annotation`` (ignored when the annotation has since changed)."""
        if self._items.get(annotation.uid) != annotation:
            return
        old = self._measurements.get(annotation.uid)
        if measurement is None:
            self._measurements.pop(annotation.uid, None)
        else:
            self._measurements[annotation.uid] = (annotation, measurement)
        if old is None or old[1] != measurement:
            self._notify("measurements", (annotation.uid,))

    # --- selection ---------------------------------------------------------------------------------
    def select(self, uid: str | None) -> None:
        if uid is not None and uid not in self._items:
            uid = None
        if uid != self.selected:
            self.selected = uid
            self._notify("selection", (uid,) if uid else ())

    # --- edits -----------------------------------------------------------------------------------
    def _apply(self, changes: Iterable[tuple[Annotation | None, Annotation | None]]) -> tuple:
        uids = []
        for before, after in changes:
            if after is None:
                if before is not None:
                    self._items.pop(before.uid, None)  # its measurement stays for an undo
                    uids.append(before.uid)
            else:
                self._items[after.uid] = after
                uids.append(after.uid)
        if self.selected is not None and self.selected not in self._items:
            self.selected = None
            self._notify("selection", ())
        return tuple(dict.fromkeys(uids))

    def _record(self, step: Step) -> None:
        if not step.changes:
            return
        self._undo.append(step)
        del self._undo[: -self._limit]
        self._redo.clear()

    def _do(self, label: str, changes: list[tuple[Annotation | None, Annotation | None]]) -> None:
        changes = [(b, a) for b, a in changes if b != a]
        if not changes:
            return
        self._record(Step(label, tuple(changes)))
        self._notify("annotations", self._apply(changes))

    def add(self, annotation: Annotation, label: str = "add") -> None:
        """Add (one undo step)."""
        if annotation.uid in self._items:
            raise ValueError(f"annotation {annotation.uid} is already in the store")
        self._do(label, [(None, annotation)])

    def replace(self, annotation: Annotation, label: str = "edit") -> None:
        """Put a changed annotation (same ``uid``) in place of the old one (one undo step, unless
        inside :meth:`begin` / :meth:`commit`)."""
        before = self._items.get(annotation.uid)
        if before is None:
            raise KeyError(f"no annotation {annotation.uid} to replace")
        if self._open is not None:
            self._open.setdefault(annotation.uid, before)
            self._items[annotation.uid] = annotation
            self._notify("annotations", (annotation.uid,))
            return
        self._do(label, [(before, annotation)])

    def remove(self, uid: str, label: str = "delete") -> None:
        """Delete one annotation (one undo step)."""
        before = self._items.get(uid)
        if before is not None:
            self._do(label, [(before, None)])

    def clear(self, ref: ImageRef | None = None, label: str = "clear") -> None:
        """Delete every annotation (of one image when ``ref`` is given), as one undo step."""
        doomed = self.for_image(ref) if ref is not None else self.all()
        self._do(label, [(a, None) for a in doomed])

    def begin(self, label: str) -> None:
        """Start an edit made of many :meth:`replace` calls (a drag); :meth:`commit` ends it."""
        self.commit()
        self._open, self._open_label = {}, label

    def commit(self) -> None:
        """End the edit opened by :meth:`begin` as one undo step (nothing when nothing changed)."""
        if self._open is None:
            return
        opened, self._open = self._open, None
        changes = tuple(
            (before, self._items.get(uid))
            for uid, before in opened.items()
            if before != self._items.get(uid)
        )
        self._record(Step(self._open_label, changes))

    def cancel(self) -> None:
        """Undo the edit opened by :meth:`begin` (Escape during a drag)."""
        if self._open is None:
            return
        opened, self._open = self._open, None
        changes = [(self._items.get(uid), before) for uid, before in opened.items()]
        self._notify("annotations", self._apply(changes))

    # --- undo / redo -----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo_label(self) -> str:
        return self._undo[-1].label if self._undo else ""

    def redo_label(self) -> str:
        return self._redo[-1].label if self._redo else ""

    def undo(self) -> bool:
        """Revert the last step; False when there is none."""
        self.commit()
        if not self._undo:
            return False
        step = self._undo.pop()
        self._redo.append(step)
        self._notify("annotations", self._apply((a, b) for b, a in reversed(step.changes)))
        return True

    def redo(self) -> bool:
        """Apply the last undone step again; False when there is none."""
        self.commit()
        if not self._redo:
            return False
        step = self._redo.pop()
        self._undo.append(step)
        self._notify("annotations", self._apply(step.changes))
        return True


class AnnotationLibrary:
    """The stores of every series open in the viewer, by series (display set) uid, so two
    viewports on one series share their annotations."""

    def __init__(self) -> None:
        self._stores: dict[str, AnnotationStore] = {}

    def store(self, series_uid: str) -> AnnotationStore:
        """The store of a series (created empty on first use)."""
        s = self._stores.get(series_uid)
        if s is None:
            s = self._stores[series_uid] = AnnotationStore()
        return s

    def stores(self) -> dict[str, AnnotationStore]:
        return dict(self._stores)
