"""DICOM diagnostic viewing workstation."""

__version__ = "0.1.0"
