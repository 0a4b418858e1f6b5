"""SimpleITK (GDCM) as the last-resort decoder, after pydicom's plugins and libjpeg-turbo.

GDCM inside SimpleITK decodes JPEG processes 2/4 with 12-bit samples, 6/8 and 10/12, which
pylibjpeg and python-gdcm refuse (libjpeg-turbo decodes them too, and is tried first). SimpleITK applies the rescale itself, so the stored values are
recovered by undoing it.
"""

from __future__ import annotations

import numpy as np


class SimpleITKDecoder:
    """Decode a whole file with SimpleITK's GDCMImageIO and return one frame's stored values."""

    name = "simpleitk-gdcm"

    def preferred_for(self, transfer_syntax: str, ds: object) -> bool:
        """Never first: it decodes the whole file, so it is the last resort."""
        return False

    def decode(self, path: str, frame_index: int, ds: object) -> np.ndarray:
        import SimpleITK as sitk

        reader = sitk.ImageFileReader()
        reader.SetImageIO("GDCMImageIO")
        reader.SetFileName(path)
        image = reader.Execute()
        arr = sitk.GetArrayFromImage(image)
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        if image.GetNumberOfComponentsPerPixel() == 1 and arr.ndim == 4:
            arr = arr[..., 0]
        frame = arr[frame_index]
        slope = float(getattr(ds, "RescaleSlope", 1) or 1)
        intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
        bits_alloc = int(getattr(ds, "BitsAllocated", 16))
        signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
        if frame.dtype.kind == "f" or slope != 1 or intercept != 0:
            frame = np.rint((frame.astype(np.float64) - intercept) / slope)
        dtype = np.dtype(f"{'i' if signed else 'u'}{max(1, bits_alloc // 8)}")
        return np.ascontiguousarray(frame.astype(dtype))
