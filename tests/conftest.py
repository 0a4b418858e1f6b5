"""Shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS_DIR, corpus_available  # noqa: E402


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus (../shared/corpus beside the checkout); skips when absent."""
    if not corpus_available():
        pytest.skip(f"DICOM corpus not found at {CORPUS_DIR} (set WORKSTATION_CORPUS)")
    return CORPUS_DIR
