"""Where the shared DICOM corpus is, and its manifest (used by tests and benchmarks)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

CORPUS_DIR = Path(
    os.environ.get("WORKSTATION_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus")
)


def corpus_available() -> bool:
    return (CORPUS_DIR / "MANIFEST.tsv").is_file()


def manifest_rows() -> list[dict[str, str]]:
    """The rows of MANIFEST.tsv (empty when the corpus is absent)."""
    if not corpus_available():
        return []
    with open(CORPUS_DIR / "MANIFEST.tsv", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def corpus_paths() -> list[Path]:
    return [CORPUS_DIR / row["path"] for row in manifest_rows()]
