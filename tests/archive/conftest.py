"""Fixtures shared by the archive tests."""

from __future__ import annotations

import pytest

from workstation.archive.archive import Archive


@pytest.fixture
def archive(tmp_path):
    """A fresh archive under the test's temporary directory, closed afterwards."""
    a = Archive(tmp_path / "archive")
    yield a
    a.close()
