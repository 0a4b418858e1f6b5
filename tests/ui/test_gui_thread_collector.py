"""Garbage collection on the GUI thread only (ui/lifetime.py's GuiThreadCollector)."""

from __future__ import annotations

import gc
import threading

from workstation.app.gui import Gui
from workstation.app.services import Services
from workstation.ui.lifetime import GuiThreadCollector


class _Cycle:
    """Cyclic garbage that records the thread that finalised it."""

    def __init__(self, seen: list[str]) -> None:
        self.me = self
        self.seen = seen

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def _garbage_then_a_busy_worker() -> tuple[list[str], list[str]]:
    """Make a garbage cycle here, then allocate a lot in a worker thread; what finalised the
    cycle so far, and where."""
    seen: list[str] = []
    _Cycle(seen)
    during: list[str] = []

    def work() -> None:
        junk = [[i] for i in range(50_000)]  # containers: the allocations that start collections
        del junk
        during.extend(seen)

    t = threading.Thread(target=work, name="busy-worker")
    t.start()
    t.join()
    return seen, during


def test_worker_threads_never_collect_while_the_collector_runs(qtbot) -> None:
    gc.enable()  # as outside the UI tests' fixture, which turns automatic collection off
    try:
        gc.collect()
        seen, during = _garbage_then_a_busy_worker()  # the hazard: the worker collects
        assert during == ["busy-worker"]

        collector = GuiThreadCollector(interval_ms=20)
        collector.start()
        assert collector.active and not gc.isenabled()
        seen, during = _garbage_then_a_busy_worker()
        assert during == []  # the worker allocated without collecting
        qtbot.waitUntil(lambda: seen != [], timeout=5000)
        assert seen == [threading.main_thread().name]
        assert sum(collector.collections) >= 1
        collector.stop()
        assert not collector.active and gc.isenabled()  # given back as it was
    finally:
        gc.disable()


def test_full_collections_wait_for_enough_new_long_lived_objects(qtbot) -> None:
    collector = GuiThreadCollector(interval_ms=5)
    gc.collect()
    collector.start()
    try:
        long_lived = collector._long_lived

        def churn_until_a_full_one_is_due_by_count() -> bool:
            _ = [[i] for i in range(200)]  # garbage: little new survives the collections
            return collector.collections[1] > gc.get_threshold()[2]

        qtbot.waitUntil(churn_until_a_full_one_is_due_by_count, timeout=30_000)
        assert collector.collections[0] > 0
        assert collector.collections[2] == 0
        more = [[i] for i in range(long_lived // 4 + 10_000)]  # now a quarter of them is new
        qtbot.waitUntil(lambda: collector.collections[2] >= 1, timeout=20_000)
        del more
    finally:
        collector.stop()


def test_the_window_collects_on_its_thread_while_open(qapp, tmp_path) -> None:
    services = Services(home=tmp_path / "home")
    gui = Gui(services)
    try:
        assert gui.collector.active and not gc.isenabled()
    finally:
        gui.close()
        services.archive.close()
    assert not gui.collector.active
