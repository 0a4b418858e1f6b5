"""Storage SOP classes a C-GET accepts when it does not know what the node will send."""

from __future__ import annotations

from pynetdicom import sop_class as _sc

#: Images, presentation states, structured reports and objects a viewer reads (about 40: with
#: two presentation contexts each they fit in the 128-context limit beside the Q/R context).
COMMON: tuple[str, ...] = tuple(
    str(getattr(_sc, name))
    for name in (
        "CTImageStorage",
        "EnhancedCTImageStorage",
        "MRImageStorage",
        "EnhancedMRImageStorage",
        "ComputedRadiographyImageStorage",
        "DigitalXRayImageStorageForPresentation",
        "DigitalXRayImageStorageForProcessing",
        "DigitalMammographyXRayImageStorageForPresentation",
        "DigitalMammographyXRayImageStorageForProcessing",
        "BreastTomosynthesisImageStorage",
        "UltrasoundImageStorage",
        "UltrasoundMultiFrameImageStorage",
        "SecondaryCaptureImageStorage",
        "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
        "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
        "MultiFrameTrueColorSecondaryCaptureImageStorage",
        "XRayAngiographicImageStorage",
        "XRayRadiofluoroscopicImageStorage",
        "NuclearMedicineImageStorage",
        "PositronEmissionTomographyImageStorage",
        "EnhancedPETImageStorage",
        "VLPhotographicImageStorage",
        "VLEndoscopicImageStorage",
        "VLMicroscopicImageStorage",
        "VLWholeSlideMicroscopyImageStorage",
        "OphthalmicPhotography8BitImageStorage",
        "RTImageStorage",
        "RTDoseStorage",
        "RTStructureSetStorage",
        "RTPlanStorage",
        "SegmentationStorage",
        "GrayscaleSoftcopyPresentationStateStorage",
        "ColorSoftcopyPresentationStateStorage",
        "KeyObjectSelectionDocumentStorage",
        "BasicTextSRStorage",
        "EnhancedSRStorage",
        "ComprehensiveSRStorage",
        "EncapsulatedPDFStorage",
        "RawDataStorage",
        "SpatialRegistrationStorage",
    )
    if hasattr(_sc, name)
)
