"""A reformat in an ordinary viewport: the hanging-protocol entry point.

A protocol that asks for "this series, coronal, 10 mm MIP" gets a
:class:`~workstation.render.reformat_source.ReformatSource` to show in any 2D viewport of the
grid (window/level, zoom, measurements, reference lines and locate work as on acquired images).
"""

from __future__ import annotations

from collections.abc import Callable

from workstation.core.crosshair import MAX_SLAB_MM, SLAB_MODES, VIEWS
from workstation.core.frame_source import FrameSource
from workstation.render.reformat_source import ReformatSource, make_spec
from workstation.render.reslice import orthogonal_planes
from workstation.ui.mpr.volume_store import SharedVolume, VolumeStore


def open_reformat(
    store: VolumeStore,
    source: FrameSource,
    plane: str,
    slab_mm: float = 0.0,
    mode: str = "mip",
    on_ready: Callable[[ReformatSource, int], None] | None = None,
    on_failed: Callable[[str], None] | None = None,
) -> None:
    """Reformat ``source`` into ``plane`` and hand the result to ``on_ready(reformat, index)``.

    Parameters
    ----------
    store : VolumeStore
        Builds (once) and shares the volume; the series is loaded first when needed.
    source : FrameSource
        A stack that can be a volume.
    plane : str
        ``axial``, ``coronal`` or ``sagittal`` (radiological orientation).
    slab_mm : float
        0 (thin) to 100 mm.
    mode : str
        ``mip``, ``minip`` or ``mean`` (used when ``slab_mm`` > 0).
    on_ready : callable
        Called on the GUI thread with the reformat and the index of its middle slice (show it
        with ``viewer.show_source(reformat, viewport, index)``).
    on_failed : callable, optional
        Called with the reason when the series cannot be reformatted.

    Raises
    ------
    ValueError
        For an unknown plane or mode or a slab outside 0-100 mm (before any work starts).
    """
    if plane not in VIEWS:
        raise ValueError(f"reformat plane {plane!r}: one of {VIEWS}")
    if mode not in SLAB_MODES:
        raise ValueError(f"reformat slab mode {mode!r}: one of {SLAB_MODES}")
    if not 0.0 <= float(slab_mm) <= MAX_SLAB_MM:
        raise ValueError(f"reformat slab {slab_mm} mm: 0 to {MAX_SLAB_MM:g} mm")

    def ready(shared: SharedVolume) -> None:
        ortho = orthogonal_planes(shared.volume)[plane]
        spec = make_spec(
            shared.volume, plane, ortho.x_axis, ortho.y_axis, slab_mm=float(slab_mm), mode=mode
        )
        reformat = ReformatSource(
            shared.volume,
            shared.reslicer,
            shared.template,
            spec,
            lossy=shared.lossy,
            volume_key=shared.key,
        )
        if on_ready is not None:
            on_ready(reformat, reformat.nearest_to(shared.volume.centre_patient()))

    store.request(source, ready, on_failed)
