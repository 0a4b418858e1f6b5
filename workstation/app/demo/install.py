"""Putting the demo studies into the local archive: what they are, whether they are there,
and installing the missing ones with progress and cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

from workstation.app.demo import ct, mammo, mr, radiograph, us
from workstation.app.demo.headers import Study, to_part10
from workstation.archive import store
from workstation.archive.archive import Archive
from workstation.archive.results import AddStatus

_BATCH = 24


@dataclass(frozen=True)
class DemoStudy:
    """One demo study: its header values, how many instances it has, how to make them."""

    study: Study
    instances: int
    series: int
    generate: Callable[[], Iterator[Dataset]]

    @property
    def uid(self) -> str:
        return self.study.uid


DEMO_STUDIES = (
    DemoStudy(ct.CURRENT, ct.SLICES, 1, lambda: ct.ct_instances(ct.ACQUISITIONS[0])),
    DemoStudy(ct.PRIOR, ct.SLICES, 1, lambda: ct.ct_instances(ct.ACQUISITIONS[1])),
    DemoStudy(radiograph.STUDY, len(radiograph.VIEWS), len(radiograph.VIEWS),
              radiograph.dx_instances),
    DemoStudy(radiograph.PRIOR, len(radiograph.VIEWS), len(radiograph.VIEWS),
              lambda: radiograph.dx_instances(radiograph.EXAMS[1])),
    DemoStudy(mr.STUDY, sum(s.slices for s in mr.SERIES), len(mr.SERIES), mr.mr_instances),
    DemoStudy(mammo.CURRENT, len(mammo.VIEWS), len(mammo.VIEWS),
              lambda: mammo.mg_instances(mammo.EXAMS[0])),
    DemoStudy(mammo.PRIOR, len(mammo.VIEWS), len(mammo.VIEWS),
              lambda: mammo.mg_instances(mammo.EXAMS[1])),
    DemoStudy(us.STUDY, 1, 1, us.us_instances),
)  # fmt: skip


@dataclass(frozen=True)
class DemoReport:
    """What :func:`install_demo` did.

    ``studies_installed`` and ``instances_installed`` count what was generated and added now;
    ``studies_skipped`` lists the keys of those already complete in the archive.
    """

    studies_installed: tuple[str, ...]
    studies_skipped: tuple[str, ...]
    instances_installed: int
    instances_duplicate: int
    seconds: float
    cancelled: bool = False
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "studies_installed": list(self.studies_installed),
            "studies_skipped": list(self.studies_skipped),
            "instances_installed": self.instances_installed,
            "instances_duplicate": self.instances_duplicate,
            "seconds": round(self.seconds, 3),
            "cancelled": self.cancelled,
            "problems": list(self.problems),
        }


def _held(archive: Archive, study: DemoStudy) -> int:
    rows = list(archive.find("STUDY", {"StudyInstanceUID": study.uid,
                                       "NumberOfStudyRelatedInstances": ""}))  # fmt: skip
    return int(rows[0].get("NumberOfStudyRelatedInstances") or 0) if rows else 0


def demo_present(archive: Archive) -> bool:
    """True when every demo study is in ``archive`` with all its instances."""
    return all(_held(archive, s) >= s.instances for s in DEMO_STUDIES)


def install_demo(
    archive: Archive,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> DemoReport:
    """Generate the demo studies missing from ``archive`` and add them (idempotent).

    Parameters
    ----------
    archive : Archive
        The local archive.
    progress : callable(done, total), optional
        Called after each instance (and once at the start) with counts over the studies to
        install; for a progress bar. Runs on the caller's thread.
    cancel : threading.Event, optional
        When set, installation stops after the current batch; what was committed stays.

    Raises
    ------
    ArchiveWriteError
        When the store cannot be written (disk full).
    """
    start = time.perf_counter()
    todo = [s for s in DEMO_STUDIES if _held(archive, s) < s.instances]
    skipped = tuple(s.study.key for s in DEMO_STUDIES if s not in todo)
    total = sum(s.instances for s in todo)
    done = imported = duplicate = 0
    problems: list[str] = []
    installed: list[str] = []
    if progress:
        progress(0, total)
    root = str(archive.root)
    for demo in todo:
        batch: list[store.Prepared] = []
        for ds in demo.generate():
            if cancel is not None and cancel.is_set():
                break
            source = f"demo {demo.study.key} {ds.SeriesDescription} #{ds.InstanceNumber}"
            batch.append(store.prepare_bytes(to_part10(ds), source, root))
            if len(batch) >= _BATCH:
                i, d = _commit(archive, batch, problems)
                imported, duplicate, done = imported + i, duplicate + d, done + len(batch)
                batch = []
                if progress:
                    progress(done, total)
        if batch:
            i, d = _commit(archive, batch, problems)
            imported, duplicate, done = imported + i, duplicate + d, done + len(batch)
            if progress:
                progress(done, total)
        if cancel is not None and cancel.is_set():
            break
        installed.append(demo.study.key)
    return DemoReport(
        tuple(installed), skipped, imported, duplicate, time.perf_counter() - start,
        bool(cancel is not None and cancel.is_set()), tuple(problems),
    )  # fmt: skip


def _commit(archive: Archive, batch: list[store.Prepared], problems: list[str]) -> tuple[int, int]:
    results = archive.commit(batch)
    for r in results:
        if not r.ok:
            problems.append(f"{r.source}: {r.status.value}: {r.reason}")
    imported = sum(r.status is AddStatus.IMPORTED for r in results)
    duplicate = sum(r.status is AddStatus.DUPLICATE for r in results)
    return imported, duplicate
