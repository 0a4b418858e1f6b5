"""Content hashes: BLAKE3 of the data set, and archives written with SHA-256 before it.

An archive written by an earlier release holds SHA-256 digests (64 hex digits, no prefix). The
schema did not change, so such an archive is made here by rewriting the digests of a fresh one
to what that release stored; every route in (a file, bytes received, the spool) must still tell
a copy of an archived instance from a different one.
"""

from __future__ import annotations

import hashlib
import sqlite3

from archive_factory import instance, to_bytes, write
from blake3 import blake3

from workstation.archive.archive import Archive
from workstation.archive.attributes import (
    content_hash,
    content_matches,
    dataset_offset,
    legacy_content_hash,
)
from workstation.archive.results import AddStatus
from workstation.archive.spool import SpooledItem
from workstation.archive.store import INDEX_NAME


def test_the_digest_is_blake3_of_the_data_set(archive):
    ds = instance(pixel_value=3)
    data = to_bytes(ds)
    result = archive.add_bytes(data, "test")
    row = next(archive.find("IMAGE", {"SOPInstanceUID": ds.SOPInstanceUID}))
    body = data[dataset_offset(data) :]
    assert len(body) < len(data) and body.startswith(b"\x08\x00")  # the meta group left out
    assert row["content_hash"] == "b3:" + blake3(body).hexdigest()
    assert content_matches(row["content_hash"], data)
    assert content_matches(hashlib.sha256(body).hexdigest(), data)  # a digest of before
    ds.PixelData = bytes(len(ds.PixelData))
    assert not content_matches(row["content_hash"], to_bytes(ds))
    assert not content_matches(legacy_content_hash(data), to_bytes(ds))
    assert result.status is AddStatus.IMPORTED


def _as_written_before(root) -> None:
    """Rewrite every digest in the archive at ``root`` (closed) to SHA-256, as stored before."""
    conn = sqlite3.connect(root / INDEX_NAME)
    with conn:
        for table in ("instance", "conflict"):
            rows = conn.execute(f"SELECT pk, rel_path FROM {table}").fetchall()
            for pk, rel in rows:
                digest = legacy_content_hash((root / rel).read_bytes())
                conn.execute(f"UPDATE {table} SET content_hash = ? WHERE pk = ?", (digest, pk))
    assert all(
        len(d) == 64 and ":" not in d
        for (d,) in conn.execute("SELECT content_hash FROM instance UNION ALL "
                                 "SELECT content_hash FROM conflict")
    )  # fmt: skip
    conn.close()


def test_an_archive_with_sha256_digests_still_knows_its_copies(tmp_path):
    root = tmp_path / "archive"
    ds = instance(pixel_value=1)
    original = to_bytes(ds)
    ds.PixelData = bytes(len(ds.PixelData))
    other = to_bytes(ds)  # same SOP Instance UID, other pixels
    with Archive(root) as archive:
        first = archive.add_bytes(original, "first")
        aside = archive.add_bytes(other, "second")
        assert (first.status, aside.status) == (AddStatus.IMPORTED, AddStatus.CONFLICT)
    _as_written_before(root)

    ds.file_meta.SourceApplicationEntityTitle = "PACS"  # the same data set, another meta header
    ds.PixelData = instance(pixel_value=1).PixelData
    resent = to_bytes(ds)
    assert resent != original and content_hash(resent) == content_hash(original)
    with Archive(root) as archive:
        # received (bytes), imported (a file: a worker compares it before the commit), spooled
        by_bytes = archive.add_bytes(resent, "again")
        by_file = archive.add_file(write(ds, tmp_path / "in" / "x"))
        spooled = SpooledItem(archive.spool_bytes(resent), resent, "spooled", None)
        (by_spool,) = archive.index_spooled([spooled])
        for result in (by_bytes, by_file, by_spool):
            assert result.status is AddStatus.DUPLICATE, result
            assert result.stored_path == first.stored_path
        # the copy kept aside before is known too
        again_aside = archive.add_bytes(other, "third")
        assert again_aside.status is AddStatus.DUPLICATE
        assert again_aside.stored_path == aside.stored_path
        # and new content is still a conflict, kept with a BLAKE3 digest
        ds.PixelData = bytes([7]) * len(ds.PixelData)
        third = archive.add_bytes(to_bytes(ds), "fourth")
        assert third.status is AddStatus.CONFLICT
        usage = archive.usage()
        assert (usage["instances"], usage["conflicts"]) == (1, 2)
        assert not list((root / "spool").glob("*.dcm"))  # the spooled duplicate was removed
    conn = sqlite3.connect(root / INDEX_NAME)
    digests = [d for (d,) in conn.execute("SELECT content_hash FROM conflict ORDER BY pk")]
    conn.close()
    assert [d.startswith("b3:") for d in digests] == [False, True]  # the old one, the new one
