"""The list of the annotations and measurements of the active viewport's series.

One row per annotation: image number, kind, value (the measurement's first line, or the text)
and calibration. Selecting a row shows its image in the viewport and selects it there; Delete
(the button or the key) removes it (undoable in the viewport).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.core.annotation_store import AnnotationStore, image_key
from workstation.core.annotations import Annotation
from workstation.ui.annotation_painter import calibration_label
from workstation.ui.viewport import Viewport

KIND_NAMES = {
    "length": "Length",
    "angle": "Angle",
    "cobb": "Cobb angle",
    "ellipse": "Ellipse ROI",
    "circle": "Circle ROI",
    "rectangle": "Rectangle ROI",
    "polygon": "Polygon ROI",
    "point": "Probe",
    "arrow": "Arrow",
    "text": "Text",
}


class AnnotationPanel(QWidget):
    """The annotation list of the active viewport of ``viewer`` (a ViewerArea)."""

    def __init__(self, viewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Image", "Kind", "Value", "Calibration"])
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.itemSelectionChanged.connect(self._row_selected)
        self.tree.installEventFilter(self)
        layout.addWidget(self.tree)
        row = QHBoxLayout()
        self.delete_button = QPushButton("Delete", self)
        self.delete_button.clicked.connect(self.delete_selected)
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.clicked.connect(lambda: self.viewport.annotation_tools.undo())
        row.addWidget(self.delete_button)
        row.addWidget(self.undo_button)
        row.addStretch(1)
        layout.addLayout(row)
        self._store: AnnotationStore | None = None
        self._unsub_store = None
        self._unsub_model = None
        self._updating = False
        viewer.active_changed.connect(lambda _v: self.follow())
        self.follow()

    @property
    def viewport(self) -> Viewport:
        return self.viewer.active

    def follow(self) -> None:
        """Listen to the active viewport (its series' store) and fill the list."""
        v = self.viewport
        if self._unsub_model is not None:
            self._unsub_model()
        self._unsub_model = v.model.subscribe(
            lambda m, what: self._store_changed() if what in ("source", "index") else None
        )
        self._store_changed()

    def _store_changed(self) -> None:
        store = self.viewport.annotation_tools.store()
        if store is not self._store:
            if self._unsub_store is not None:
                self._unsub_store()
            self._store = store
            self._unsub_store = (
                store.subscribe(lambda s, what, uids: self.fill()) if store is not None else None
            )
        self.fill()

    def _image_numbers(self) -> dict[tuple[str, int | None], int]:
        src = self.viewport.model.source
        out: dict[tuple[str, int | None], int] = {}
        if src is None:
            return out
        for i, ref in enumerate(src.frames):
            uid = ref.sop_instance_uid or str(src.header(i).get("SOPInstanceUID", ""))
            frame = ref.frame_index + 1 if ref.frame_index is not None else None
            out[(uid, frame)] = i
        return out

    def fill(self) -> None:
        """Rebuild the rows (image order, then drawing order)."""
        store = self._store
        self._updating = True
        try:
            self.tree.clear()
            if store is None:
                return
            numbers = self._image_numbers()
            rows = sorted(store.all(), key=lambda a: numbers.get(image_key(a.image), len(numbers)))
            for a in rows:
                item = QTreeWidgetItem(self._columns(store, a, numbers))
                item.setData(0, Qt.ItemDataRole.UserRole, a.uid)
                self.tree.addTopLevelItem(item)
                if a.uid == store.selected:
                    item.setSelected(True)
                    self.tree.setCurrentItem(item)
            for c in range(4):
                self.tree.resizeColumnToContents(c)
        finally:
            self._updating = False
        self.delete_button.setEnabled(store is not None and store.selected is not None)

    @staticmethod
    def _columns(store: AnnotationStore, a: Annotation, numbers) -> list[str]:
        i = numbers.get(image_key(a.image))
        image = f"{i + 1}" if i is not None else "?"
        if a.image.frame_number is not None:
            image += f" (fr {a.image.frame_number})"
        m = store.measurement(a.uid)
        if a.kind == "text":
            value = a.text
        elif m is not None:
            value = m.lines[0] if m.lines else ""
            if a.text:
                value = f"{a.text}: {value}"
        else:
            value = a.text or ("" if a.kind == "arrow" else "—")
        cal = calibration_label(m.calibration_source) if m is not None else ""
        return [image, KIND_NAMES.get(a.kind, a.kind), value, cal]

    def _row_selected(self) -> None:
        if self._updating:
            return
        items = self.tree.selectedItems()
        if not items or self._store is None:
            return
        uid = items[0].data(0, Qt.ItemDataRole.UserRole)
        self.show_annotation(uid)

    def show_annotation(self, uid: str) -> None:
        """Go to the image of annotation ``uid`` in the active viewport and select it there."""
        store = self._store
        a = store.get(uid) if store is not None else None
        if a is None:
            return
        i = self._image_numbers().get(image_key(a.image))
        if i is not None:
            self.viewport.model.set_index(i)
        store.select(uid)
        self.delete_button.setEnabled(True)

    def delete_selected(self) -> None:
        store = self._store
        if store is not None and store.selected is not None:
            store.remove(store.selected)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self.tree and event.type() == event.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
                self.delete_selected()
                return True
        return False
