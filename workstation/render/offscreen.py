"""Rendering without a window: which OpenGL back end works here, and reading pixels back.

The VTK 9.7 wheels pick their OpenGL window class at run time. Without an X display the default
(X, then OSMesa) fails unless libOSMesa is installed, so :func:`offscreen_render_window` tries, in
order: EGL (Mesa's surfaceless platform works with no display and no GPU: llvmpipe), the X
window class when ``DISPLAY`` is set (a real X server or Xvfb), then OSMesa. ``WORKSTATION_GL``
(``egl``, ``x`` or ``osmesa``) forces one. When none works, :class:`HeadlessRenderingError` says
what was tried and what to install or run.
"""

from __future__ import annotations

import os

import numpy as np
import vtkmodules.vtkRenderingOpenGL2 as _gl  # the OpenGL window classes
from vtkmodules.util import numpy_support
from vtkmodules.vtkRenderingCore import vtkRenderWindow, vtkWindowToImageFilter

BACKENDS = ("egl", "x", "osmesa")
_CLASSES = {
    "egl": "vtkEGLRenderWindow",
    "x": "vtkXOpenGLRenderWindow",
    "osmesa": "vtkOSOpenGLRenderWindow",
}


class HeadlessRenderingError(RuntimeError):
    """No OpenGL back end could render off screen; the message lists what was tried."""


def _try(backend: str, width: int, height: int) -> vtkRenderWindow | None:
    cls = getattr(_gl, _CLASSES[backend], None)
    if cls is None:
        return None
    if backend == "x" and not os.environ.get("DISPLAY"):
        return None
    try:
        window = cls()
        window.SetOffScreenRendering(1)
        window.SetSize(width, height)
        window.Render()
    except Exception:  # a wrapped C++ failure; VTK also logs why
        return None
    if not window.SupportsOpenGL():
        window.Finalize()
        return None
    return window


def offscreen_render_window(width: int, height: int) -> tuple[vtkRenderWindow, str]:
    """A render window drawing off screen, and the back end used (``egl``, ``x``, ``osmesa``).

    Raises
    ------
    HeadlessRenderingError
        When no back end can create an OpenGL context.
    """
    forced = os.environ.get("WORKSTATION_GL", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise HeadlessRenderingError(
            f"WORKSTATION_GL={forced!r}: expected one of {', '.join(BACKENDS)}"
        )
    order = (forced,) if forced else BACKENDS
    for backend in order:
        window = _try(backend, width, height)
        if window is not None:
            return window, backend
    display = os.environ.get("DISPLAY") or "not set"
    raise HeadlessRenderingError(
        f"no OpenGL context for off-screen rendering (tried {', '.join(order)}; DISPLAY {display}). "
        "Install Mesa's EGL (libegl1 and libegl-mesa0 on Debian/Ubuntu) or OSMesa (libosmesa6), "
        "or run under an X server, e.g. xvfb-run -a workstation render ..."
    )


def capture(window: vtkRenderWindow) -> np.ndarray:
    """Render ``window`` and return its pixels: uint8 (rows, cols, 3), row 0 at the top."""
    window.Render()
    grab = vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.SetInputBufferTypeToRGB()
    grab.ReadFrontBufferOff()
    grab.Update()
    image = grab.GetOutput()
    w, h, _ = image.GetDimensions()
    rgb = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(h, w, 3)
    return np.ascontiguousarray(rgb[::-1])


def renderer_description(window: vtkRenderWindow) -> str:
    """The OpenGL renderer string (``llvmpipe ...`` for Mesa's software rasteriser)."""
    for line in window.ReportCapabilities().splitlines():
        if "renderer string" in line:
            return line.split(":", 1)[1].strip()
    return "unknown"
