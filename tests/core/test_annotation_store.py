"""The annotation store: per-image lookup, selection, notifications, undo/redo restoring exactly."""

from __future__ import annotations

import pytest

from workstation.core.annotation_store import AnnotationLibrary, AnnotationStore
from workstation.core.annotations import ImageRef, new_annotation

IMG1 = ImageRef("1.2.3.1")
IMG2 = ImageRef("1.2.3.2")
FRAME3 = ImageRef("1.2.3.9", 3)


def line(ref=IMG1, x=10.0):
    return new_annotation("length", [(x, 10.0), (x + 20.0, 30.0)], ref)


def test_add_lookup_by_image_and_frame() -> None:
    s = AnnotationStore()
    a, b, c = line(), line(IMG2), line(FRAME3)
    for x in (a, b, c):
        s.add(x)
    assert s.for_image(IMG1) == [a]
    assert s.for_image(("1.2.3.9", 3)) == [c]
    assert s.for_image(ImageRef("1.2.3.9", 2)) == []
    assert s.images() == [("1.2.3.1", None), ("1.2.3.2", None), ("1.2.3.9", 3)]
    with pytest.raises(ValueError, match="already"):
        s.add(a)


def test_undo_redo_restore_exactly_through_every_kind_of_edit() -> None:
    s = AnnotationStore()
    a = line()
    snapshots = [s.all()]
    s.add(a)
    snapshots.append(s.all())
    s.replace(a.moved(5.5, -2.25), "move")
    snapshots.append(s.all())
    s.replace(s.get(a.uid).with_point(1, (99.0, 98.0)), "handle")
    snapshots.append(s.all())
    s.replace(s.get(a.uid).with_text("left femur"), "text")
    snapshots.append(s.all())
    b = line(IMG2)
    s.add(b)
    snapshots.append(s.all())
    s.remove(a.uid)
    snapshots.append(s.all())
    s.clear()
    snapshots.append(s.all())
    assert s.all() == []
    for want in reversed(snapshots[:-1]):
        assert s.undo()
        assert {x.uid: x for x in s.all()} == {x.uid: x for x in want}
    assert not s.undo()
    for want in snapshots[1:]:
        assert s.redo()
        assert {x.uid: x for x in s.all()} == {x.uid: x for x in want}
    assert not s.redo()


def test_a_drag_is_one_undo_step_and_cancel_restores() -> None:
    s = AnnotationStore()
    a = line()
    s.add(a)
    s.begin("move")
    for k in range(1, 6):
        s.replace(a.moved(k, k))
    s.commit()
    assert s.get(a.uid) == a.moved(5, 5)
    assert s.undo_label() == "move"
    s.undo()
    assert s.get(a.uid) == a
    s.undo()
    assert len(s) == 0
    s.redo()
    s.begin("handle")
    s.replace(a.with_point(0, (0.0, 0.0)))
    s.cancel()
    assert s.get(a.uid) == a and s.undo_label() == "add"


def test_a_new_edit_clears_redo() -> None:
    s = AnnotationStore()
    a = line()
    s.add(a)
    s.undo()
    assert s.can_redo
    s.add(line(x=50))
    assert not s.can_redo


def test_notifications_selection_and_measurements() -> None:
    s = AnnotationStore()
    seen = []
    s.subscribe(lambda store, what, uids: seen.append((what, uids)))
    a = line()
    s.add(a)
    s.select(a.uid)
    s.set_measurement(a, "12.0 mm")
    assert s.measurement(a.uid) == "12.0 mm"
    moved = a.moved(1, 0)
    s.replace(moved)
    assert s.measurement(a.uid) is None  # computed for the old position
    s.set_measurement(a, "stale")  # a late answer for the old annotation is ignored
    assert s.measurement(a.uid) is None
    s.remove(a.uid)
    assert s.selected is None
    assert seen == [
        ("annotations", (a.uid,)),
        ("selection", (a.uid,)),
        ("measurements", (a.uid,)),
        ("annotations", (a.uid,)),
        ("selection", ()),
        ("annotations", (a.uid,)),
    ]


def test_library_shares_a_store_per_series() -> None:
    lib = AnnotationLibrary()
    assert lib.store("s1") is lib.store("s1")
    assert lib.store("s1") is not lib.store("s2")
