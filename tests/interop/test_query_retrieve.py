"""Query and retrieve against real peers on loopback: Orthanc (Debian's package, no plugins) and
DCMTK ``dcmqrscp``, each loaded with real series from the corpus (a 28-image CT head, a 128-slice
MR, and two CR studies whose patient names are Japanese and Korean in ISO 2022 encodings).

Each test runs against both peers: C-ECHO, C-FIND at study, series and image level with
wildcards and date ranges, names decoded with their character sets, C-MOVE and C-GET of a study
into a fresh archive with the files equal to the originals, a resume that fetches only what is
missing, a move to a destination the peer does not know, and a rejected association.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from workstation.app.retrieve_service import RetrieveService
from workstation.archive.archive import Archive
from workstation.net.cancel import CancelToken
from workstation.net.echo import echo
from workstation.net.errors import (
    AssociationRejected,
    MoveDestinationUnknown,
    RetrieveFailed,
)
from workstation.net.find import find
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.retrieve import RetrieveTarget, move

pytestmark = pytest.mark.interop

peers = pytest.importorskip("peers")

WS = "WS"


@dataclass(frozen=True)
class Data:
    ct: list[Path]
    mr: list[Path]
    cr: list[Path]

    @property
    def all(self) -> list[Path]:
        return [*self.ct, *self.mr, *self.cr]


@dataclass(frozen=True)
class Peer:
    kind: str
    node: RemoteNode
    identity: LocalIdentity  # our AE and the listener port the peer knows as destination WS


def dataset_bytes(part10: bytes) -> bytes:
    """What follows the File Meta Information of a Part 10 file."""
    assert part10[128:132] == b"DICM"
    group_length = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_length :]


def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


@pytest.fixture(scope="module")
def data(corpus_dir: Path) -> Data:
    ct = sorted((corpus_dir / "ct_series").glob("*/*.dcm"))
    mr = sorted((corpus_dir / "mr_series" / "pacsman_synthetic_128sl").glob("*.dcm"))
    cr = [
        corpus_dir / "charsets" / "pydicom" / f"{n}.dcm" for n in ("chrJapMulti", "chrKoreanMulti")
    ]
    assert len(ct) == 28 and len(mr) == 128
    return Data(ct, mr, cr)


@pytest.fixture(scope="module", params=["orthanc", "dcmqrscp"])
def peer(request, tmp_path_factory, data: Data) -> Iterator[Peer]:
    tmp = tmp_path_factory.mktemp(request.param)
    listen_port = peers.free_port()
    identity = LocalIdentity(WS, listen_port)
    if request.param == "orthanc":
        if not peers.have("Orthanc"):
            pytest.skip("Orthanc not installed (Debian package 'orthanc')")
        modalities = {"ws": [WS, "127.0.0.1", listen_port]}
        with peers.orthanc_peer(tmp, modalities, DefaultEncoding="Utf8") as orthanc:
            orthanc.upload(data.all)
            yield Peer("orthanc", RemoteNode("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom),
                       identity)  # fmt: skip
    else:
        if not peers.have("dcmqrscp"):
            pytest.skip("DCMTK dcmqrscp not installed")
        with peers.dcmqrscp_peer(tmp, data.all, {WS: ("127.0.0.1", listen_port)}) as dcm:
            yield Peer("dcmqrscp", RemoteNode("dcmqrscp", dcm.aet, "127.0.0.1", dcm.port),
                       identity)  # fmt: skip


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with Archive(tmp_path / "archive") as archive:
        yield archive


def studies(peer: Peer, **keys: str) -> list:
    return list(find(peer.identity, peer.node, "study", keys))


# --- echo and find ---------------------------------------------------------------------------------
def test_echo(peer: Peer) -> None:
    result = echo(peer.identity, peer.node)
    assert result.ok, result.message
    assert result.status == 0 and result.seconds < 5


def test_find_studies_with_wildcards_and_dates(peer: Peer, data: Data) -> None:
    ct_study = header(data.ct[0]).StudyInstanceUID
    mr_study = header(data.mr[0]).StudyInstanceUID
    cr_studies = {header(p).StudyInstanceUID for p in data.cr}

    every = studies(peer)
    assert {r.study_instance_uid for r in every} == {ct_study, mr_study, *cr_studies}
    assert [r.index for r in every] == list(range(len(every)))

    assert [r.study_instance_uid for r in studies(peer, PatientName="PACS*")] == [mr_study]
    assert [r.study_instance_uid for r in studies(peer, PatientName="REM?VED")] == [ct_study]
    assert {r.study_instance_uid for r in studies(peer, PatientID="2008-*")} == cr_studies
    assert [r.study_instance_uid for r in studies(peer, StudyDate="20230101-20231231")] == [
        mr_study
    ]
    assert {
        r.study_instance_uid for r in studies(peer, StudyDate="20000101-20100101")
    } == cr_studies
    assert {r.study_instance_uid for r in studies(peer, StudyDate="20080504")} == cr_studies
    assert studies(peer, PatientName="NOBODY*") == []
    mr = studies(peer, PatientName="PACSMAN")[0]
    assert (mr.get("PatientID"), mr.get("StudyDate")) == ("PACSMAN1", "20231016")


def test_find_series_and_images(peer: Peer, data: Data) -> None:
    ct = header(data.ct[0])
    series = list(
        find(peer.identity, peer.node, "series", {"StudyInstanceUID": ct.StudyInstanceUID})
    )
    assert [s.series_instance_uid for s in series] == [ct.SeriesInstanceUID]
    assert series[0].level == "SERIES" and series[0].get("Modality") == "CT"
    ct_modality = list(find(peer.identity, peer.node, "series",
                            {"StudyInstanceUID": ct.StudyInstanceUID, "Modality": "C?"}))  # fmt: skip
    assert len(ct_modality) == 1

    images = list(find(peer.identity, peer.node, "image",
                       {"StudyInstanceUID": ct.StudyInstanceUID,
                        "SeriesInstanceUID": ct.SeriesInstanceUID}))  # fmt: skip
    want = {header(p).SOPInstanceUID for p in data.ct}
    assert {i.sop_instance_uid for i in images} == want
    assert all(i.level == "IMAGE" for i in images)
    numbers = sorted(int(i.get("InstanceNumber")) for i in images)
    assert numbers == sorted(int(header(p).InstanceNumber) for p in data.ct)


def test_names_decode_with_their_character_sets(peer: Peer, data: Data) -> None:
    found = {r.get("PatientID"): r.patient_name for r in studies(peer, PatientID="2008-*")}
    for path in data.cr:
        ds = pydicom.dcmread(path)
        assert found[ds.PatientID] == str(ds.PatientName), path.name
    assert any("\u3084" in name for name in found.values())  # や: Japanese, not mojibake
    assert any("\uae40" in name for name in found.values())  # 김: Korean


# --- retrieve --------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["C-MOVE", "C-GET"])
def test_retrieve_study_files_equal_the_originals(
    peer: Peer, data: Data, archive: Archive, method: str
) -> None:
    ct = header(data.ct[0])
    progress = []
    service = RetrieveService(archive, peer.identity)
    report = service.retrieve(peer.node, ct.StudyInstanceUID, method=method,
                              on_progress=progress.append)  # fmt: skip
    assert report.outcome == "complete", report.message
    assert (report.arrived, report.on_node, report.already_local) == (28, 28, 0)
    assert progress and max(p.done for p in progress) == 28
    assert max(p.received for p in progress) == 28

    rows = {
        r["SOPInstanceUID"]: r
        for r in archive.find("IMAGE", {"StudyInstanceUID": ct.StudyInstanceUID})
    }
    assert len(rows) == 28
    for path in data.ct:
        uid = header(path).SOPInstanceUID
        stored = archive.path_of(rows[uid]["rel_path"]).read_bytes()
        assert dataset_bytes(stored) == dataset_bytes(path.read_bytes()), f"{path.name} differs"

    again = service.retrieve(peer.node, ct.StudyInstanceUID, method=method)
    assert again.outcome == "complete" and again.arrived == 0 and again.results == ()


@pytest.mark.parametrize("method", ["C-MOVE", "C-GET"])
def test_resume_fetches_only_what_is_missing(
    peer: Peer, data: Data, archive: Archive, method: str
) -> None:
    mr = header(data.mr[0])
    have = data.mr[::3]  # a third already here, spread over the series
    for path in have:
        assert archive.add_file(path).ok
    report = RetrieveService(archive, peer.identity).retrieve(
        peer.node, mr.StudyInstanceUID, method=method
    )
    assert report.outcome == "complete", report.message
    assert (report.already_local, report.arrived) == (len(have), 128 - len(have))
    assert [r.target.level for r in report.results] == ["IMAGE"]
    assert sum(r.completed for r in report.results) == 128 - len(have)


def test_a_c_get_with_nothing_local_asks_the_study_its_sop_classes(
    peer: Peer, data: Data, archive: Archive, monkeypatch
) -> None:
    """Orthanc answers SOP Classes in Study: one study-level query instead of listing the images
    (one C-FIND answer per instance). DCMTK's dcmqrscp does not: the images are listed. Either
    way the study arrives whole; a study the node does not have is said so."""
    import workstation.app.retrieve_service as rs

    levels: list[str] = []

    def counting_find(identity, node, level, *args, **kwargs):  # noqa: ANN001, ANN202
        levels.append(level.upper())
        return find(identity, node, level, *args, **kwargs)

    monkeypatch.setattr(rs, "find", counting_find)
    mr = header(data.mr[0])
    service = RetrieveService(archive, peer.identity)
    classes = service.study_sop_classes(peer.node, mr.StudyInstanceUID)
    if peer.kind == "orthanc":
        assert classes == [str(mr.SOPClassUID)]
    else:
        assert classes is None
    levels.clear()
    report = service.retrieve(peer.node, mr.StudyInstanceUID, method="C-GET")
    assert report.outcome == "complete", report.message
    assert (report.arrived, report.on_node) == (128, 128)
    if peer.kind == "orthanc":
        assert levels == ["STUDY"]
    else:
        assert levels[0] == "STUDY" and "IMAGE" in levels
    assert service.study_sop_classes(peer.node, "1.2.3.4.5.6.7.8.9") == []
    none = service.retrieve(peer.node, "1.2.3.4.5.6.7.8.9", method="C-GET")
    assert none.outcome == "failed" and "has no instances" in none.message


@pytest.mark.parametrize("method", ["C-MOVE", "C-GET"])
def test_cancel_while_listing_what_the_node_has(
    peer: Peer, data: Data, archive: Archive, method: str, monkeypatch
) -> None:
    """Cancel pressed while the retrieve asks the node what it has (the study's SOP classes for
    a C-GET, the image listing for a resume): the retrieve says it was cancelled, not that the
    node lacks the study, and fetches nothing."""
    import workstation.app.retrieve_service as rs

    token = CancelToken()

    def cancelled_find(identity, node, level, *args, **kwargs):  # noqa: ANN001, ANN202
        token.cancel()  # the user's click lands as the query goes out
        return find(identity, node, level, *args, **kwargs)

    monkeypatch.setattr(rs, "find", cancelled_find)
    mr = header(data.mr[0])
    if method == "C-MOVE":  # a resume: something is already local, so the node is listed first
        assert archive.add_file(data.mr[0]).ok
    before = len(RetrieveService(archive, peer.identity).local_instances(mr.StudyInstanceUID))
    report = RetrieveService(archive, peer.identity).retrieve(
        peer.node, mr.StudyInstanceUID, method=method, cancel=token
    )
    assert report.outcome == "cancelled", report.message
    assert "has no instances" not in report.message
    assert "retrieve again" in report.message
    assert report.arrived == 0 and report.results == ()
    assert (
        len(RetrieveService(archive, peer.identity).local_instances(mr.StudyInstanceUID)) == before
    )


def test_move_to_unknown_destination(peer: Peer, data: Data) -> None:
    target = RetrieveTarget(header(data.ct[0]).StudyInstanceUID)
    started = time.monotonic()
    # DCMTK answers 0xA801 (move destination unknown); Orthanc 1.10 answers 0xC000
    expected = RetrieveFailed if peer.kind == "orthanc" else MoveDestinationUnknown
    with pytest.raises(expected) as info:
        move(peer.identity, peer.node, target, destination="NOWHERE")
    assert time.monotonic() - started < 10
    assert info.value.status == (0xC000 if peer.kind == "orthanc" else 0xA801)
    assert "'NOWHERE'" in str(info.value) and "C-GET" in str(info.value)
    assert info.value.partial is None or info.value.partial.completed == 0


def test_unknown_called_ae_is_rejected(peer: Peer, tmp_path: Path) -> None:
    """Refused, never "aborted": a rejection followed at once by the peer closing the connection
    used to be read as an abort on a loaded machine (a race in pynetdicom's requestor, see
    ``workstation.net.association.unread_rejection``; tests/interop/test_rejection_repeated.py)."""

    def check(node: RemoteNode) -> None:
        started = time.monotonic()
        with pytest.raises(AssociationRejected) as info:
            list(find(peer.identity, node, "study"))
        assert info.value.permanent and "called AE title not recognised" in str(info.value)
        assert (info.value.source, info.value.diagnostic) == (1, 7)
        result = echo(peer.identity, node)
        assert result.outcome == "refused", result.message
        assert "called AE" in result.message
        with pytest.raises(AssociationRejected) as info:  # the C-MOVE requestor too
            move(peer.identity, node, RetrieveTarget("1.2.3"))
        assert (info.value.source, info.value.diagnostic) == (1, 7)
        assert time.monotonic() - started < 5

    if peer.kind == "dcmqrscp":
        check(peer.node.replace(ae_title="NOT_THERE"))
        return
    # the shared Orthanc accepts any called AE title; one that checks it:
    with peers.orthanc_peer(tmp_path, {}, DicomCheckCalledAet=True) as orthanc:
        check(RemoteNode("strict", "NOT_THERE", "127.0.0.1", orthanc.dicom))
