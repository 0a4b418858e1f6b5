"""Open the 3D view (ui/volume_view.py) on a series or a synthetic volume and grab the screen.

Run under an X server (Xvfb): ``python tests/render/volume_view_shot.py OUT_DIR [SERIES_DIR]``.
Writes ``<preset>.png`` for each preset, ``clipped.png`` (bone with the clipping box pulled in
from the patient's left) and ``tf_drag.png`` (soft tissue after a Ctrl+drag of the transfer
function), and prints one JSON line with the mean brightness of each and the share of its pixels
that are not black (``<name>_cover``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "xcb")

from PySide6.QtWidgets import QApplication  # noqa: E402

from workstation.core.geometry import ImagePlane  # noqa: E402
from workstation.render.volume_image import build_volume_image  # noqa: E402


def synthetic():
    n = 96
    z, y, x = np.mgrid[:n, :n, :n].astype(np.float32)
    v = np.full((n, n, n), -1000, np.int16)
    v[((x - 48) / 40) ** 2 + ((y - 48) / 30) ** 2 < 1] = 40
    v[((x - 48) ** 2 + (y - 60) ** 2) < 64] = 700
    v[((x - 70) ** 2 + (y - 40) ** 2 + (z - 48) ** 2) < 49] = 300
    planes = [
        ImagePlane(np.array([0, 0, 2.0 * k]), (1, 0, 0), (0, 1, 0), (2, 2), n, n) for k in range(n)
    ]
    return build_volume_image(v, planes, modality="CT")


def drag(app, view) -> dict:
    """A left-button drag through the interactor: preview frames while it moves, the still
    frame only after :attr:`VolumeView.still_delay_ms` of calm."""
    import time

    iren = view.interactor
    camera = view.scene.renderer.GetActiveCamera()
    before = camera.GetPosition()
    w, h = view.render_window.GetSize()
    x, y = w // 2, h // 2
    iren.SetEventInformation(x, y)
    iren.InvokeEvent("LeftButtonPressEvent")
    frames = []
    for step in range(1, 7):
        iren.SetEventInformation(x + 8 * step, y)
        start = time.perf_counter()
        iren.InvokeEvent("MouseMoveEvent")
        frames.append(time.perf_counter() - start)
    out = {"interactive_while_dragging": view.scene.interactive}
    iren.InvokeEvent("LeftButtonReleaseEvent")
    out["still_pending_after_release"] = view.still_pending()
    out["interactive_after_release"] = view.scene.interactive
    deadline = time.perf_counter() + 5.0
    while view.still_pending() and time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.01)
    out["interactive_after_wait"] = view.scene.interactive
    out["last_still_s"] = round(view.last_still_s, 4)
    out["median_drag_frame_s"] = round(float(np.median(frames)), 4)
    out["camera_moved_mm"] = round(
        float(np.linalg.norm(np.subtract(camera.GetPosition(), before))), 2
    )
    return out


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    if len(sys.argv) > 2:
        from workstation.render.series_volume import choose_display_set, load_volume_image

        volume = load_volume_image(choose_display_set([sys.argv[2]])[0])
    else:
        volume = synthetic()
    from workstation.ui.volume_view import VolumeView

    view = VolumeView(volume)
    view.resize(640, 560)
    view.show()
    for _ in range(20):
        app.processEvents()
    screen = view.screen()
    result = {}

    def shot(name: str) -> None:
        view.render()
        app.processEvents()
        image = screen.grabWindow(view.winId())
        image.save(str(out / f"{name}.png"))
        img = image.toImage().convertToFormat(image.toImage().Format.Format_Grayscale8)
        w, h, bpl = img.width(), img.height(), img.bytesPerLine()
        grey = np.frombuffer(img.constBits(), np.uint8).reshape(h, bpl)[:, :w]
        result[name] = round(float(grey[60:, :].mean()), 2)
        result[f"{name}_cover"] = round(float((grey[60:, :] > 8).mean()), 3)  # share not black

    for key in view.scene.presets:
        view.set_preset(key)
        shot(key)
    view.set_preset("ct-bone")
    view.set_clipping_enabled(True)
    b = list(volume.image.GetBounds())
    b[1] = b[0] + (b[1] - b[0]) * 0.5  # keep the patient's right half only (screen left)
    view.box_widget.GetRepresentation().PlaceWidget(b)
    view._box_moved()
    shot("clipped")
    view.set_clipping_enabled(False)
    view.set_preset("ct-soft-tissue")
    view.scene.drag_window(0, -150)  # drag down: the transfer function moves to higher values
    shot("tf_drag")
    result["mapped_shift"] = view.scene.shift
    result["drag"] = drag(app, view)
    print(json.dumps(result))
    view.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
