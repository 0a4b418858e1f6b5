"""Errors of the DICOM core, each carrying the file and the cause."""

from __future__ import annotations


class DicomError(Exception):
    """Base class: a problem with one DICOM file.

    Parameters
    ----------
    path : str
        The file concerned.
    reason : str
        What is wrong, in one line a user can act on.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NotDicomError(DicomError):
    """The file is not DICOM at all."""


class DicomReadError(DicomError):
    """The header could not be parsed."""


class TruncatedPixelDataError(DicomReadError):
    """The header is intact but the file ends inside its pixel data.

    ``header`` holds what could be read (everything before the pixel data), so the file can still
    be listed and placed in its series; decoding it fails with this error's reason.
    """

    def __init__(self, path: str, reason: str, header: object) -> None:
        super().__init__(path, reason)
        self.header = header


class NoPixelDataError(DicomError):
    """The object has no image pixels (SR, presentation state, ...)."""


class DecodeError(DicomError):
    """No decoder could turn the pixel data into a frame."""


class RenderError(DicomError):
    """The frame decoded but an attribute needed to display it is unusable."""
