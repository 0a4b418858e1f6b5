"""Priors against a real Orthanc: the current chest radiograph study is in the local archive, its
prior lives only on Orthanc. Finding priors lists it (and neither another patient's study nor
one of the same Patient ID from another issuer); hanging the study with the chest protocol
retrieves it into the archive, and the comparison stage then shows current and prior."""

from __future__ import annotations

from pathlib import Path

import pytest
from hanging.chest_files import chest_study

from workstation.app.hanging_facts import facts_from_archive
from workstation.app.node_settings import NodeBook
from workstation.app.priors import PriorService
from workstation.archive.archive import Archive
from workstation.hanging import load_protocols
from workstation.net.cancel import CancelToken
from workstation.net.nodes import LocalIdentity, RemoteNode

pytestmark = pytest.mark.interop

peers = pytest.importorskip("peers")

WS = "WS"


@pytest.fixture
def setup(tmp_path: Path):
    if not peers.have("Orthanc"):
        pytest.skip("Orthanc not installed (Debian package 'orthanc')")
    now, now_files = chest_study(tmp_path / "now", "20250310")
    prior, prior_files = chest_study(tmp_path / "prior", "20240214", fill=300)
    older, older_files = chest_study(tmp_path / "older", "20200101", fill=500)
    _, stranger = chest_study(tmp_path / "stranger", "20241201", patient_id="SOMEONE")
    _, foreign = chest_study(tmp_path / "foreign", "20241001", issuer="ELSEWHERE")
    listen_port = peers.free_port()
    with peers.orthanc_peer(tmp_path, {"ws": [WS, "127.0.0.1", listen_port]}) as orthanc:
        orthanc.upload([*prior_files, *older_files, *stranger, *foreign])
        with Archive(tmp_path / "archive") as archive:
            for path in now_files:
                assert archive.add_file(path).ok
            node = RemoteNode("orthanc", "ORTHANC", "127.0.0.1", orthanc.dicom)
            book = NodeBook(LocalIdentity(WS, listen_port), (node,))
            yield archive, PriorService(archive, book), now, prior, older


def test_find_priors_lists_the_remote_prior(setup) -> None:
    archive, service, now, prior, older = setup
    current = facts_from_archive(archive, now)
    seen: list[tuple[str, str]] = []
    search = service.find_priors(current, on_node=lambda n, m: seen.append((n, m)))
    assert search.errors == ()
    assert seen == [("orthanc", "2 other studies")]
    assert [c.facts.study_uid for c in search.candidates] == [older, prior]
    assert all(not c.local and c.nodes == ("orthanc",) for c in search.candidates)
    ranked = [r.facts.study_uid for r in search.ranking]
    assert ranked == [prior, older]  # same modality both, the nearest first
    assert search.ranking[0].facts.modalities == ("DX",)
    assert search.ranking[0].facts.study_date.isoformat() == "2024-02-14"


def test_hang_retrieves_the_prior_and_the_comparison_shows_both(setup) -> None:
    archive, service, now, prior, older = setup
    current = facts_from_archive(archive, now)
    progress = []
    result = service.hang(current, load_protocols(), on_progress=progress.append,
                          cancel=CancelToken())  # fmt: skip
    assert result.match is not None and result.match.name == "chest-pa-lat"
    assert [r.outcome for r in result.retrieves] == ["complete"]
    assert result.retrieves[0].study_instance_uid == prior and result.retrieves[0].arrived == 2
    assert progress[0].message == "retrieving" and progress[-1].index == 1
    # now in the archive; the older prior was not asked for, so not retrieved
    assert len(list(archive.find("IMAGE", {"StudyInstanceUID": prior}))) == 2
    assert list(archive.find("STUDY", {"StudyInstanceUID": older})) == []
    compare = result.match.stages[1]
    got = [(v.study, v.study_uid, v.study_date.isoformat(), v.display_set.view)
           for v in compare.viewports]  # fmt: skip
    assert got == [("current", now, "2025-03-10", "PA"), ("current", now, "2025-03-10", "LL"),
                   ("prior", prior, "2024-02-14", "PA"), ("prior", prior, "2024-02-14", "LL")]  # fmt: skip
    # the displayed series are the stored ones
    prior_series = {
        r["SeriesInstanceUID"] for r in archive.find("SERIES", {"StudyInstanceUID": prior})
    }
    assert {v.series_uid for v in compare.viewports[2:]} == prior_series
