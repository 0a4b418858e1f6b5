"""The key-image notes of the active study, and reopening one as a stack of its images.

:class:`KeyImagePanel` lists the Key Object Selection documents of the study shown in the active
viewport (title and description, how many images, date and creator, from ``list_documents``).
"Show key images" (or a double-click) opens one: its images, from whatever series, show as one
stack in the active viewport in the document's order, and count as marked key images. Images the
document names that cannot be shown are named in the status line; the rest are shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from os import PathLike
from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workstation.core.decoders import DecoderRegistry
from workstation.core.frame_cache import FrameCache
from workstation.pstate.kos import KeyObjectDocument
from workstation.ui.browser.tasks import TaskRunner
from workstation.ui.key_images import KeyImageStack, open_key_images


class StoredDocument(Protocol):
    """What the panel lists of a stored KOS (``app``'s ``StoredObject`` fits)."""

    kind: str
    sop_instance_uid: str
    label: str
    description: str
    creator: str
    created: datetime | None
    referenced_images: tuple[str, ...]


ListDocuments = Callable[[str], Sequence[StoredDocument]]
LoadKeyImages = Callable[[str], tuple[KeyObjectDocument, Mapping[str, str | PathLike[str]]]]


def document_text(doc: StoredDocument) -> str:
    """One line for the list: title, description, image count, date, creator."""
    n = len(doc.referenced_images)
    when = doc.created.strftime("%Y-%m-%d %H:%M") if doc.created else ""
    parts = [doc.label or "Key images", doc.description, f"{n} image{'s' if n != 1 else ''}"]
    return "  ·  ".join(p for p in (*parts, when, doc.creator) if p)


class KeyImagePanel(QWidget):
    """The key-image documents of the active viewport's study.

    Parameters
    ----------
    viewer : ViewerArea
        Its active viewport shows the opened stack.
    list_documents : callable
        ``list_documents(study_uid)`` -> stored objects (only those of kind ``"KOS"`` are
        listed).
    load_key_images : callable
        ``load_key_images(sop_uid)`` -> (the document, SOP Instance UID -> file of the images
        the archive holds); blocking, run on a worker.
    cache : FrameCache
        The frame memory budget of the viewer.
    on_opened : callable, optional
        ``on_opened(viewport, stack)`` after the stack is shown (the key-image marks).
    registry : DecoderRegistry, optional

    Signals
    -------
    message(str)
        A line for the status.
    opened(object)
        The :class:`~workstation.ui.key_images.KeyImageStack` just shown (or that could not be).
    """

    message = Signal(str)
    opened = Signal(object)

    def __init__(
        self,
        viewer,
        list_documents: ListDocuments,
        load_key_images: LoadKeyImages,
        cache: FrameCache,
        *,
        on_opened: Callable[[object, KeyImageStack], None] | None = None,
        registry: DecoderRegistry | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.list_documents = list_documents
        self.load_key_images = load_key_images
        self.cache = cache
        self.registry = registry
        self.on_opened = on_opened
        self.documents: list[StoredDocument] = []
        self._runner = TaskRunner(1, "key images", self)
        self._runner.finished.connect(self._loaded)
        self._runner.failed.connect(self._failed)
        self._pending: dict[int, object] = {}  # token -> the viewport to show the stack in
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Key images of the study", self))
        self.list = QListWidget(self)
        self.list.setMaximumHeight(120)
        self.list.itemDoubleClicked.connect(lambda _: self.open_selected())
        self.list.currentRowChanged.connect(lambda _r: self._enable())
        layout.addWidget(self.list)
        self.buttons = QHBoxLayout()
        self.show_button = QPushButton("Show key images", self)
        self.show_button.setToolTip("Show the images of the selected note as one stack")
        self.show_button.clicked.connect(self.open_selected)
        self.buttons.addWidget(self.show_button)
        layout.addLayout(self.buttons)
        self._enable()

    def _enable(self) -> None:
        self.show_button.setEnabled(0 <= self.list.currentRow() < len(self.documents))

    def selected(self) -> StoredDocument | None:
        row = self.list.currentRow()
        return self.documents[row] if 0 <= row < len(self.documents) else None

    def refresh(self, study_uid: str) -> None:
        """List the key-image documents of ``study_uid`` (nothing for "")."""
        current = self.selected()
        try:
            found = list(self.list_documents(study_uid)) if study_uid else []
        except (OSError, ValueError) as exc:
            found = []
            self.message.emit(f"Key images could not be listed: {exc}")
        self.documents = [d for d in found if d.kind == "KOS"]
        self.list.clear()
        for doc in self.documents:
            item = QListWidgetItem(document_text(doc))
            item.setData(Qt.ItemDataRole.UserRole, doc.sop_instance_uid)
            item.setToolTip(f"SOP Instance UID {doc.sop_instance_uid}")
            self.list.addItem(item)
        if current is not None:
            for row, doc in enumerate(self.documents):
                if doc.sop_instance_uid == current.sop_instance_uid:
                    self.list.setCurrentRow(row)
        self._enable()

    # --- opening ---------------------------------------------------------------------------------
    def open_selected(self) -> int:
        """Open the selected document in the active viewport (in the background); returns the
        job's token (0 when nothing is selected)."""
        doc = self.selected()
        if doc is None:
            return 0
        return self.open_document(doc.sop_instance_uid)

    def open_document(self, sop_uid: str) -> int:
        """Open the key-image document ``sop_uid`` in the active viewport."""
        self.message.emit("Opening key images…")
        token = self._runner.submit(self._load, sop_uid)
        self._pending[token] = self.viewer.active
        return token

    def _load(self, sop_uid: str) -> KeyImageStack:  # worker thread
        document, files = self.load_key_images(sop_uid)
        return open_key_images(document, files, self.cache, self.registry)

    def _loaded(self, token: int, stack: KeyImageStack) -> None:
        viewport = self._pending.pop(token, None)
        title = stack.document.title or "Key images"
        if stack.source is None or viewport is None:
            text = f"{title}: no image to show. {stack.missing_text()}".strip()
        else:
            self.viewer.show_source(stack.source, viewport, 0)
            if self.on_opened is not None:
                self.on_opened(viewport, stack)
            n = len(stack.source)
            text = f"{title}: {n} key image{'s' if n != 1 else ''} shown"
            if stack.missing:
                text += f". {stack.missing_text()}"
        self.message.emit(text)
        self.opened.emit(stack)

    def _failed(self, token: int, text: str) -> None:
        self._pending.pop(token, None)
        self.message.emit(f"Key images could not be opened: {text}")
        self.opened.emit(None)

    def wait(self, msecs: int = -1) -> bool:
        """Block until the opening job is done (tests only)."""
        return self._runner.wait(msecs)

    def shutdown(self) -> None:
        self._runner.shutdown()


__all__ = ["KeyImagePanel", "document_text"]
