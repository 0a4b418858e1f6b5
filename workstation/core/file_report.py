"""What a file is and what the display pipeline will do with it (``workstation info``)."""

from __future__ import annotations

from typing import Any

from pydicom import uid as _uid
from pydicom.dataset import Dataset

from workstation.core.calibration import calibration_for
from workstation.core.decoders import plugin_order
from workstation.core.dicom_file import DicomFile
from workstation.core.geometry import classify_orientation, orientation_labels, plane_from_dataset
from workstation.core.modality_lut import modality_transform
from workstation.core.overlays import overlay_groups
from workstation.core.pipeline import is_inverted_by_file
from workstation.core.voi import voi_choices


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "" if value is None else str(value).strip()


def _uid_name(value: str) -> str:
    name = getattr(_uid.UID(value), "name", "") if value else ""
    return name if name and name != value else value


def describe(f: DicomFile) -> dict[str, Any]:
    """A JSON-ready description of the file's key header fields and its display pipeline."""
    ds = f.header
    ts = f.transfer_syntax
    report: dict[str, Any] = {
        "path": f.path,
        "patient": {
            "name": _text(ds, "PatientName"),
            "id": _text(ds, "PatientID"),
            "birth_date": _text(ds, "PatientBirthDate"),
            "sex": _text(ds, "PatientSex"),
        },
        "study": {
            "uid": _text(ds, "StudyInstanceUID"),
            "date": _text(ds, "StudyDate"),
            "description": _text(ds, "StudyDescription"),
            "accession": _text(ds, "AccessionNumber"),
        },
        "series": {
            "uid": _text(ds, "SeriesInstanceUID"),
            "number": _text(ds, "SeriesNumber"),
            "description": _text(ds, "SeriesDescription"),
            "modality": _text(ds, "Modality"),
        },
        "instance": {
            "sop_class": _uid_name(_text(ds, "SOPClassUID")),
            "sop_instance_uid": _text(ds, "SOPInstanceUID"),
            "number": _text(ds, "InstanceNumber"),
            "manufacturer": _text(ds, "Manufacturer"),
        },
        "transfer_syntax": {
            "uid": ts,
            "name": _uid_name(ts),
            "inferred": f.transfer_syntax_inferred,
            "lossy": f.is_lossy,
        },
        "has_pixels": f.has_pixels,
    }
    if not f.has_pixels:
        return report
    preferred = [d.name for d in f.registry.preferred(ts, ds)]
    fallbacks = [d.name for d in f.registry.fallbacks if d.name not in preferred]
    report["image"] = {
        "rows": int(ds.get("Rows", 0) or 0),
        "columns": int(ds.get("Columns", 0) or 0),
        "frames": f.number_of_frames,
        "samples_per_pixel": int(ds.get("SamplesPerPixel", 1) or 1),
        "photometric": _text(ds, "PhotometricInterpretation") or "(missing)",
        "bits_allocated": int(ds.get("BitsAllocated", 0) or 0),
        "bits_stored": int(ds.get("BitsStored", 0) or 0),
        "signed": int(ds.get("PixelRepresentation", 0) or 0) == 1,
        "planar_configuration": ds.get("PlanarConfiguration"),
    }
    report["decoders"] = preferred + (list(plugin_order(ts)) or ["native"]) + fallbacks
    pipeline: dict[str, Any] = {}
    if f.is_color:
        photometric = report["image"]["photometric"]
        pipeline["colour"] = (
            "palette lookup to RGB"
            if photometric.startswith("PALETTE")
            else f"{photometric} shown as RGB"
        )
    else:
        pipeline["modality"] = modality_transform(ds, 0).describe()
        choices = voi_choices(ds, 0)
        pipeline["voi_choices"] = [c.describe() for c in choices]
        pipeline["default_voi"] = choices[0].describe() if choices else "min-max of the pixels"
        pipeline["inverted"] = is_inverted_by_file(ds)
        if "PixelPaddingValue" in ds:
            pipeline["padding"] = (
                f"{ds.PixelPaddingValue}"
                + (f"..{ds.PixelPaddingRangeLimit}" if "PixelPaddingRangeLimit" in ds else "")
                + " kept out of the default window"
            )
    plane = plane_from_dataset(ds, 0 if "PerFrameFunctionalGroupsSequence" in ds else None)
    if plane is not None:
        labels = orientation_labels(plane.row_dir, plane.col_dir)
        report["geometry"] = {
            "orientation": classify_orientation(plane.row_dir, plane.col_dir),
            "edge_labels": f"left {labels['left']}, right {labels['right']}, "
            f"top {labels['top']}, bottom {labels['bottom']}",
            "position_along_normal_mm": round(plane.position_along_normal, 3),
            "pixel_spacing_mm": [round(float(v), 6) for v in plane.spacing_rc],
        }
    cal = calibration_for(ds, 0)
    report["calibration"] = {
        "source": cal.source,
        "row_mm": cal.row_mm,
        "column_mm": cal.col_mm,
        "detail": cal.detail,
    }
    groups = overlay_groups(ds)
    if groups:
        pipeline["overlays"] = [f"{g:04X}" for g in groups]
    report["pipeline"] = pipeline
    return report
