"""Shared fixtures."""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

import pytest


class _ForbidGui(importlib.abc.MetaPathFinder):
    """Make Qt and VTK unimportable: proves the non-UI layers do not need them (DESIGN rule 1)."""

    blocked = ("PySide6", "shiboken6", "vtk", "vtkmodules")

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ImportError(f"{fullname} is forbidden in the headless layer check")
        return None


if os.environ.get("WORKSTATION_FORBID_GUI") == "1":
    sys.meta_path.insert(0, _ForbidGui())

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS_DIR, corpus_available  # noqa: E402


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus (../shared/corpus beside the checkout); skips when absent."""
    if not corpus_available():
        pytest.skip(f"DICOM corpus not found at {CORPUS_DIR} (set WORKSTATION_CORPUS)")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_files(corpus_dir: Path) -> list[Path]:
    """Every file of the corpus (MANIFEST.tsv and README.txt left out), sorted."""
    return sorted(
        Path(root, n)
        for root, _, names in os.walk(corpus_dir)
        for n in names
        if n not in ("MANIFEST.tsv", "README.txt")
    )
