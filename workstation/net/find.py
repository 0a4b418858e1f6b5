"""C-FIND against a remote node: matches stream in as frozen :class:`FindResult` values.

Study Root is used where the node has it; a node that only has Patient Root (or is configured
``query_model="patient"``) is asked at PATIENT level first and then per patient, on the same
association, so the caller sees the same STUDY/SERIES/IMAGE results either way.

Search keys are DICOM keywords (``PatientName``, ``StudyDate``, ...) with C-FIND matching
(PS3.4 C.2.2.2): ``*`` and ``?`` wildcards, date ranges ``A-B``/``A-``/``-B``, UID lists
``uid1\\uid2``. Keys of a level above the query's other than the unique keys (e.g. a patient
name in a SERIES query) are refused: strictly hierarchical peers (DCMTK) reject them.

Names decode with the Specific Character Set the peer answers with; we ask in UTF-8
(``ISO_IR 192``) so that peers that transcode (Orthanc) can answer in any script.

Cancel: the :class:`~workstation.net.cancel.CancelToken` sends C-CANCEL at once (from any
thread; within 0.1 s on TLS); the generator then ends without yielding more. Closing the
generator early aborts the association.

The queries run on the lean requestor of :mod:`workstation.net.requestor`: the generator's
thread reads the responses, without pynetdicom's reactor thread and per-message decoding.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from workstation.net import ul_pdu
from workstation.net.association import Context
from workstation.net.cancel import CancelToken
from workstation.net.errors import OperationTimeout, PeerAborted, QueryFailed
from workstation.net.nodes import LocalIdentity, RemoteNode
from workstation.net.requestor import LeanAssociation, identifier_bytes, lean_association

log = logging.getLogger(__name__)

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
PENDING = (0xFF00, 0xFF01)
CANCELLED = 0xFE00

#: What a study list, series list and image list show (the return keys asked for by default).
RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies"),
    "STUDY": ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
              "StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription",
              "ReferringPhysicianName", "ModalitiesInStudy", "NumberOfStudyRelatedSeries",
              "NumberOfStudyRelatedInstances"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber",
               "SeriesDescription", "SeriesDate", "SeriesTime", "BodyPartExamined",
               "NumberOfSeriesRelatedInstances"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
              "InstanceNumber", "NumberOfFrames"),
}  # fmt: skip

#: The level each searchable attribute belongs to (Study Root: patient attributes are STUDY's).
_LEVEL_OF: dict[str, str] = {
    **{k: "PATIENT" for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                               "OtherPatientIDs", "NumberOfPatientRelatedStudies",
                               "IssuerOfPatientID")},
    **{k: "STUDY" for k in RETURN_KEYS["STUDY"] if k not in ("PatientName", "PatientID",
                                                             "PatientBirthDate", "PatientSex")},
    **{k: "SERIES" for k in RETURN_KEYS["SERIES"] if k != "StudyInstanceUID"},
    **{k: "IMAGE" for k in RETURN_KEYS["IMAGE"] if k not in ("StudyInstanceUID",
                                                             "SeriesInstanceUID")},
    "InstitutionName": "STUDY",
    "StudyID": "STUDY",
    "ContentDate": "IMAGE",
    "AcquisitionDate": "IMAGE",
}  # fmt: skip
_UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
           "IMAGE": "SOPInstanceUID"}  # fmt: skip
_DATE_RANGE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
_TIME_RANGE = re.compile(r"^([\d.:]{2,})?(-([\d.:]{2,})?)?$")


def normalize_level(level: str) -> str:
    """``study``/``STUDY`` -> ``STUDY``; ``instance`` -> ``IMAGE``; else ``ValueError``."""
    value = str(level).strip().upper()
    value = {"INSTANCE": "IMAGE", "STUDIES": "STUDY", "IMAGES": "IMAGE"}.get(value, value)
    if value not in LEVELS:
        raise ValueError(f"query level {level!r} is not one of patient, study, series, image")
    return value


@dataclass(frozen=True)
class FindResult:
    """One C-FIND match: what the peer returned, as text.

    Attributes
    ----------
    node : str
        The node's label.
    level : str
        ``PATIENT``, ``STUDY``, ``SERIES`` or ``IMAGE``.
    index : int
        0-based order of arrival within the query.
    values : tuple of (keyword, text)
        Every attribute returned. Person names are decoded with the response's Specific
        Character Set (``Yamada^Tarou=山田^太郎=やまだ^たろう``); multiple values are joined
        with ``\\``; numbers are text as sent.
    """

    node: str
    level: str
    index: int
    values: tuple[tuple[str, str], ...]

    def get(self, keyword: str, default: str = "") -> str:
        for key, value in self.values:
            if key == keyword:
                return value
        return default

    def __getitem__(self, keyword: str) -> str:
        for key, value in self.values:
            if key == keyword:
                return value
        raise KeyError(keyword)

    def as_dict(self) -> dict[str, str]:
        return dict(self.values)

    def count(self, keyword: str) -> int | None:
        """An integer attribute (e.g. ``NumberOfStudyRelatedInstances``), None when absent."""
        try:
            return int(self.get(keyword).strip())
        except ValueError:
            return None

    @property
    def study_instance_uid(self) -> str:
        return self.get("StudyInstanceUID")

    @property
    def series_instance_uid(self) -> str:
        return self.get("SeriesInstanceUID")

    @property
    def sop_instance_uid(self) -> str:
        return self.get("SOPInstanceUID")

    @property
    def patient_name(self) -> str:
        return self.get("PatientName")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1", "replace").rstrip("\x00 ")
    return str(value)


def _result(node: str, level: str, index: int, identifier: Dataset) -> FindResult:
    values = []
    for elem in identifier:  # pydicom decodes text with the identifier's character set here
        if elem.VR == "SQ" or elem.keyword in ("", "QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        values.append((elem.keyword, _text(elem.value)))
    return FindResult(node, level, index, tuple(values))


def _check_key(keyword: str, value: str) -> None:
    if tag_for_keyword(keyword) is None:
        raise ValueError(f"query key {keyword!r} is not a DICOM keyword")
    vr = dictionary_VR(keyword)
    if vr == "DA" and value and not _DATE_RANGE.match(value.replace(" ", "")):
        raise ValueError(f"{keyword} {value!r} is not a date YYYYMMDD or a range A-B, A-, -B")
    if vr == "TM" and value and not _TIME_RANGE.match(value.replace(" ", "")):
        raise ValueError(f"{keyword} {value!r} is not a time HHMMSS or a range A-B, A-, -B")


def build_identifier(
    level: str, keys: Mapping[str, str], return_keys: Sequence[str] | None = None
) -> Dataset:
    """The C-FIND identifier for a Study Root query.

    Parameters
    ----------
    level : str
        Query/Retrieve level.
    keys : mapping
        Search keys, DICOM keyword -> match value (``""`` only asks for the attribute). At
        STUDY level ``Modality`` becomes ``ModalitiesInStudy``.
    return_keys : sequence of str, optional
        Attributes to return besides the keys (default :data:`RETURN_KEYS` of the level).

    Raises
    ------
    ValueError
        For an unknown keyword, a malformed date or time range, or a key of a level above the
        query's that is not a unique key (give the study's UID instead).
    """
    level = normalize_level(level)
    rank = LEVELS.index(level)
    wanted: dict[str, str] = {k: "" for k in (RETURN_KEYS[level] if return_keys is None
                                             else return_keys)}  # fmt: skip
    for keyword, raw in keys.items():
        value = "" if raw is None else str(raw).strip()
        if level in ("STUDY", "PATIENT") and keyword == "Modality":
            keyword = "ModalitiesInStudy"
        _check_key(keyword, value)
        key_level = _LEVEL_OF.get(keyword, level)
        if level != "PATIENT" and key_level == "PATIENT":
            key_level = "STUDY"  # Study Root: patient attributes are study attributes
        if value and LEVELS.index(key_level) < rank and keyword not in _UNIQUE.values():
            raise ValueError(
                f"{keyword} is a {key_level.lower()}-level key: a {level.lower()}-level query "
                f"may only name the {key_level.lower()} by its UID ({_UNIQUE[key_level]})"
            )
        wanted[keyword] = value
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.SpecificCharacterSet = "ISO_IR 192"
    for keyword, value in wanted.items():
        key_level = _LEVEL_OF.get(keyword, level)
        if level != "PATIENT" and key_level == "PATIENT":
            key_level = "STUDY"
        if LEVELS.index(key_level) > rank:
            continue  # a lower level's attribute cannot be returned at this level
        if LEVELS.index(key_level) < rank and keyword not in _UNIQUE.values():
            continue  # nor a non-unique one of a level above (strictly hierarchical peers)
        with warnings.catch_warnings():  # pydicom warns on wildcards: 'C?' is not a valid CS
            warnings.simplefilter("ignore")
            setattr(ds, keyword, value)
    for upper in LEVELS[1:rank]:  # the unique keys of the levels above must be present
        if _UNIQUE[upper] not in ds:
            setattr(ds, _UNIQUE[upper], "")
    if level != "PATIENT" and _UNIQUE[level] not in ds:
        setattr(ds, _UNIQUE[level], "")
    return ds


class _Query:
    """Runs C-FINDs on one association, with C-CANCEL and bounded waits."""

    def __init__(self, assoc: LeanAssociation, node: RemoteNode, model: str,
                 cancel: CancelToken | None) -> None:  # fmt: skip
        self.assoc = assoc
        self.node = node
        self.model = model
        self.cancel = cancel
        self.msg_id = 0
        self.cancelled = False
        self.index = 0

    def run(self, identifier: Dataset, level: str) -> Iterator[Dataset]:
        """Yield the identifiers of one C-FIND's pending responses."""
        self.msg_id += 1
        msg_id = self.msg_id
        assoc, node = self.assoc, self.node
        context_id, syntax = assoc.accepted[self.model]

        def send_cancel() -> None:
            self.cancelled = True
            # a peer that ignores C-CANCEL gets its association aborted
            assoc.cancel(context_id, msg_id, min(node.dimse_timeout, 10.0))

        assoc.send(context_id, ul_pdu.encode_find_rq(self.model, msg_id),
                   identifier_bytes(identifier, syntax))  # fmt: skip
        remove = self.cancel.add_hook(send_cancel) if self.cancel else None
        try:
            for status, ident in assoc.responses(msg_id, ul_pdu.C_FIND_RSP, syntax):
                code = status.get("Status") if status else None
                if code is None:
                    if self.cancelled:
                        return
                    if assoc.ended_by == "silence":
                        raise OperationTimeout(node.label, f"no C-FIND response within "
                                               f"{node.dimse_timeout:g} s; association aborted")  # fmt: skip
                    raise PeerAborted(node.label, "the peer aborted the association during "
                                      "the C-FIND")  # fmt: skip
                if code in PENDING:
                    if ident is not None and not self.cancelled:
                        yield ident
                    continue
                if code in (0x0000, CANCELLED):
                    return
                comment = str(status.get("ErrorComment", "") or "")
                raise QueryFailed(node.label, code, comment)
        finally:
            if remove:
                remove()


def _pick_model(assoc: LeanAssociation, node: RemoteNode) -> str:
    for uid in (StudyRootQueryRetrieveInformationModelFind,
                PatientRootQueryRetrieveInformationModelFind):  # fmt: skip
        if uid in assoc.accepted:
            return uid
    raise AssertionError("no query model accepted")  # open_lean checked it


def query_contexts(node: RemoteNode, study: str, patient: str) -> list[Context]:
    """The Q/R presentation contexts for ``node``'s query model (Study Root first)."""
    if node.query_model == "study":
        return [Context(study)]
    if node.query_model == "patient":
        return [Context(patient)]
    return [Context(study), Context(patient)]


def find(
    identity: LocalIdentity,
    node: RemoteNode,
    level: str,
    keys: Mapping[str, str] | None = None,
    *,
    return_keys: Sequence[str] | None = None,
    cancel: CancelToken | None = None,
    limit: int | None = None,
) -> Iterator[FindResult]:
    """Query ``node``; yield each match as it arrives.

    Parameters
    ----------
    identity : LocalIdentity
        Our AE title.
    node : RemoteNode
    level : str
        ``study``, ``series``, ``image`` (or ``patient``).
    keys : mapping, optional
        Search keys (see :func:`build_identifier`), e.g. ``{"PatientName": "DOE*",
        "StudyDate": "20240101-20240131", "Modality": "CT"}``.
    return_keys : sequence of str, optional
        Attributes to ask for (default: what a study/series/image list shows).
    cancel : CancelToken, optional
        Cancelling sends C-CANCEL at once; the generator then ends.
    limit : int, optional
        Stop (with C-CANCEL) after this many matches.

    Yields
    ------
    FindResult

    Raises
    ------
    ValueError
        Bad keys (before any connection).
    NetError
        :class:`~workstation.net.errors.NodeUnreachable`, ``AssociationRejected``,
        ``NoPresentationContext``, ``QueryFailed``, ``PeerAborted``, ``OperationTimeout``...
    """
    level = normalize_level(level)
    keys = dict(keys or {})
    identifier = build_identifier(level, keys, return_keys)  # validate before connecting
    contexts = query_contexts(node, StudyRootQueryRetrieveInformationModelFind,
                              PatientRootQueryRetrieveInformationModelFind)  # fmt: skip
    own_cancel = cancel or CancelToken()
    with lean_association(identity, node, contexts,
                          required=[c.abstract_syntax for c in contexts],
                          service="Query/Retrieve FIND (Study or Patient Root)") as assoc:  # fmt: skip
        query = _Query(assoc, node, _pick_model(assoc, node), own_cancel)
        if query.model == StudyRootQueryRetrieveInformationModelFind or level == "PATIENT":
            identifiers = query.run(identifier, level)
        else:
            identifiers = _patient_root(query, level, keys, return_keys)
        count = 0
        for ident in identifiers:
            yield _result(node.label, level, count, ident)
            count += 1
            if limit is not None and count >= limit:
                own_cancel.cancel()


def _patient_root(
    query: _Query, level: str, keys: dict[str, str], return_keys: Sequence[str] | None
) -> Iterator[Dataset]:
    """A STUDY/SERIES/IMAGE query on a Patient Root-only node: patients first, then each one's
    studies (and, below STUDY, the given study's series or images under its patient)."""
    patient_keys = {k: v for k, v in keys.items() if _LEVEL_OF.get(k) == "PATIENT"}
    if level == "STUDY":
        patient_id = patient_keys.get("PatientID", "")
        if patient_id and not any(c in patient_id for c in "*?\\"):
            patients = [patient_id]
        else:
            ident = build_identifier("PATIENT", patient_keys, ("PatientID",))
            patients = [str(p.get("PatientID", "")) for p in query.run(ident, "PATIENT")]
        study_keys = {k: v for k, v in keys.items() if k not in patient_keys}
        for patient_id in dict.fromkeys(patients):
            if query.cancelled:
                return
            ident = build_identifier("STUDY", study_keys, return_keys)
            ident.PatientID = patient_id
            for match in query.run(ident, "STUDY"):
                for key in ("PatientName", "PatientBirthDate", "PatientSex"):
                    if key in patient_keys and key not in match:
                        setattr(match, key, "")
                yield match
        return
    # SERIES/IMAGE: the study's patient is needed; find it from the study's UID
    study_uid = keys.get("StudyInstanceUID", "")
    if not study_uid:
        raise ValueError(f"a {level.lower()}-level query needs the study's UID (StudyInstanceUID)")
    patient_id = keys.get("PatientID", "")
    if not patient_id:
        for match in _patient_root(query, "STUDY", {"StudyInstanceUID": study_uid}, ("PatientID",)):
            patient_id = str(match.get("PatientID", ""))
            break
        if not patient_id:
            return  # the node does not have that study
    rest = {k: v for k, v in keys.items() if k != "PatientID"}
    ident = build_identifier(level, rest, return_keys)
    ident.PatientID = patient_id
    yield from query.run(ident, level)
