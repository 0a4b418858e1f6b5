"""Composition root: builds the services the command line and the window use."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation.codecs import default_registry
from workstation.core.decoders import DecoderRegistry
from workstation.core.dicom_file import DicomFile
from workstation.core.display_sets import build_display_sets, read_header_records
from workstation.core.file_report import describe
from workstation.core.pipeline import RenderedImage, render_frame
from workstation.core.png import write_png

if TYPE_CHECKING:
    from workstation.archive.archive import Archive
    from workstation.archive.ingest_process import IngestProcess

#: ``WORKSTATION_INGEST``: where received instances are indexed. ``idle`` (default): a child
#: process on idle CPU time; ``normal``: a child process at normal priority; ``thread``: a thread
#: of this process (see :mod:`workstation.archive.ingest_process`).
INGEST_MODES = ("idle", "normal", "thread")


class Services:
    """The wired application services.

    Parameters
    ----------
    home : Path or None
        Where the archive, settings and logs live (``--home`` / ``WORKSTATION_HOME``); ``None``
        means the platform's data directory, resolved only when something needs it.
    registry : DecoderRegistry or None
        Fallback decoders; by default those of :mod:`workstation.codecs`.
    """

    def __init__(self, home: Path | None = None, registry: DecoderRegistry | None = None) -> None:
        self._home = home
        self.registry = registry or default_registry()

    @property
    def home(self) -> Path:
        if self._home is None:
            import platformdirs

            self._home = Path(platformdirs.user_data_dir("workstation", appauthor=False))
        return self._home

    @property
    def archive(self) -> Archive:
        """The local archive under ``home / "archive"``, opened on first use (close it when done:
        a clean close spares the next start a reconciliation walk)."""
        archive = getattr(self, "_archive", None)
        if archive is None:
            from workstation.archive.archive import Archive

            archive = self._archive = Archive(self.home / "archive")
        return archive

    @property
    def ingest(self) -> IngestProcess | None:
        """The process received instances are indexed in (started on first use; None when
        ``WORKSTATION_INGEST=thread`` asks for a thread instead). Close it with
        :meth:`close_ingest` before the archive.

        Raises
        ------
        ValueError
            When ``WORKSTATION_INGEST`` is not one of :data:`INGEST_MODES`.
        """
        if not hasattr(self, "_ingest"):
            mode = os.environ.get("WORKSTATION_INGEST", "idle").strip().lower() or "idle"
            if mode not in INGEST_MODES:
                raise ValueError(f"WORKSTATION_INGEST={mode!r}: use one of "
                                 f"{', '.join(INGEST_MODES)}")  # fmt: skip
            process = None
            if mode != "thread":
                from workstation.archive.ingest_process import IngestProcess

                process = IngestProcess(mode)
                process.start()
            self._ingest = process
        return self._ingest

    def close_ingest(self) -> None:
        """End the ingest process, if one was started (it indexes what it was given first)."""
        process = getattr(self, "_ingest", None)
        if process is not None:
            process.close()

    def open(self, path: str | Path) -> DicomFile:
        return DicomFile.open(path, self.registry)

    def describe(self, path: str | Path) -> dict[str, Any]:
        f = self.open(path)
        report = describe(f)
        if f.has_pixels:
            try:
                f.frame(0)
                report["decoded_by"] = f.last_decoder
            except Exception as exc:  # reported, not raised: info must describe broken files too
                report["decode_error"] = str(getattr(exc, "reason", exc))
            if f.repairs:
                report["repairs"] = list(f.repairs)
        return report

    def display_sets(self, paths: list[str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Display sets of the files under ``paths`` as JSON-ready dicts, and skipped files."""
        records, problems = read_header_records(paths)
        out = []
        for d in build_display_sets(records):
            out.append(
                {
                    "uid": d.uid,
                    "label": d.label,
                    "kind": d.kind,
                    "modality": d.modality,
                    "orientation": d.orientation,
                    "localizer": d.is_localizer,
                    "frames": len(d.frames),
                    "notes": list(d.notes),
                    "geometry_ok": d.geometry_ok,
                    "geometry_problem": d.geometry_problem,
                    "files": [
                        f"{f.path}#{f.frame_index}" if f.frame_index is not None else f.path
                        for f in d.frames
                    ],
                }
            )
        return out, problems

    def render_to_png(self, path: str | Path, out: str | Path, **options: Any) -> RenderedImage:
        """Render a frame exactly as the viewer shows it (no annotations) and write a PNG."""
        image = render_frame(self.open(path), options.pop("frame", 0), **options)
        write_png(out, image.pixels)
        return image
