"""Run by test_shm_full_window.py in a mount namespace whose /dev/shm is an 8 MB tmpfs: the
reading window opens a series whose volume does not fit there.

Usage: ``python shm_full_window_child.py FOLDER [SCREENSHOT.png]`` (prints one JSON line).
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "core"))
sys.path.insert(0, str(HERE.parent.parent))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from synthetic import stack_files  # noqa: E402

from workstation.core.frame_cache import FrameCache  # noqa: E402
from workstation.core.series_loader import SeriesLoader  # noqa: E402
from workstation.ui.frame_service import FrameService  # noqa: E402
from workstation.ui.main_window import MainWindow  # noqa: E402
from workstation.ui.series_opener import SeriesOpener  # noqa: E402
from workstation.ui.series_request import SeriesRequest  # noqa: E402


def wait_until(done, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        QApplication.processEvents()
        time.sleep(0.005)
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")


def main() -> int:
    faulthandler.enable()
    folder = Path(sys.argv[1])
    files = stack_files(folder / "ct", n=24, rows=512, cols=512)  # 12 MB of int16
    app = QApplication.instance() or QApplication([sys.argv[0]])  # noqa: F841 - kept alive
    cache = FrameCache(512 * 1024 * 1024)
    service = FrameService(lambda: SeriesLoader(workers=2))
    opener = SeriesOpener(cache)
    window = MainWindow(cache, service, opener)
    window.resize(1200, 800)
    window.show()
    finished: list[str] = []
    service.load_finished.connect(lambda uid, message: finished.append(message))
    vp = window.viewer.active
    window.open_series(SeriesRequest(tuple(files), "ct", "1.2.3", label="CT"), vp)
    wait_until(lambda: bool(finished))
    source = vp.model.source
    wait_until(lambda: bool(source.loaded.all()))
    vp.model.set_index(len(source) // 2)
    QApplication.processEvents()
    equal = True
    for i, frame in enumerate(source.frames):
        ds = pydicom.dcmread(frame.path)
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        equal &= bool(np.array_equal(source.decode(i).modality, expected))
    if len(sys.argv) > 2:
        window.grab().save(sys.argv[2])
    print(
        json.dumps(
            {
                "message": finished[0],
                "status": window.status_label.text(),
                "loaded": int(source.loaded.sum()),
                "frames": len(source),
                "equal": equal,
            }
        )
    )
    service.shutdown()
    opener.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
