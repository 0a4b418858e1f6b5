"""Where the application indexes received instances: ``WORKSTATION_INGEST`` picks a child
process on idle CPU time (default), one at normal priority, or a thread; anything else is an
error that names the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workstation.app.services import Services

WAIT = 30.0


@pytest.mark.parametrize(("mode", "policy"), [("", "SCHED_IDLE"), ("normal", "normal")])
def test_the_ingest_process_runs_as_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, policy: str
) -> None:
    monkeypatch.setenv("WORKSTATION_INGEST", mode)
    services = Services(tmp_path)
    process = services.ingest
    assert process is not None and services.ingest is process  # one per Services
    try:
        got = process.wait_ready(WAIT)
        if hasattr(os, "SCHED_IDLE"):
            assert got == policy
            expected = os.SCHED_IDLE if policy == "SCHED_IDLE" else os.SCHED_OTHER
            assert os.sched_getscheduler(process.pid) == expected
    finally:
        services.close_ingest()
    assert not process.running


def test_thread_asks_for_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSTATION_INGEST", "thread")
    services = Services(tmp_path)
    assert services.ingest is None
    services.close_ingest()  # nothing to close


def test_an_unknown_mode_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKSTATION_INGEST", "fast")
    with pytest.raises(ValueError, match="WORKSTATION_INGEST='fast'"):
        _ = Services(tmp_path).ingest
