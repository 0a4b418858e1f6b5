"""C-STORE as a user: send instances (files or datasets) to a node.

One association per call, one presentation context per SOP class proposed with the file's own
transfer syntax and Explicit/Implicit VR Little Endian; each instance is sent with a syntax the
node accepted for its class (decoding is not attempted: an instance whose syntax was refused is
reported, not converted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from workstation.net.association import Context, association
from workstation.net.errors import NetError
from workstation.net.nodes import LocalIdentity, RemoteNode


@dataclass(frozen=True)
class StoreOutcome:
    """The answer for one instance.

    ``status`` is the C-STORE status (0 success, 0xB000/0xB007/0xB006 warnings), or None when
    nothing was sent (``message`` says why).
    """

    sop_instance_uid: str
    status: int | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and (self.status == 0 or self.status >> 12 == 0xB)


def _dataset(item: Dataset | str | Path) -> Dataset:
    if isinstance(item, Dataset):
        return item
    return pydicom.dcmread(str(item))


def _syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    return str(ts) if ts else str(ExplicitVRLittleEndian)


def store(
    identity: LocalIdentity, node: RemoteNode, instances: Sequence[Dataset | str | Path]
) -> list[StoreOutcome]:
    """Send ``instances`` to ``node`` by C-STORE.

    Raises
    ------
    NetError
        The association could not be opened (unreachable, rejected, no accepted context).
    """
    datasets = [_dataset(i) for i in instances]
    if not datasets:
        return []
    contexts: dict[str, set[str]] = {}
    for ds in datasets:
        syntaxes = contexts.setdefault(str(ds.SOPClassUID), set())
        syntaxes.update({_syntax(ds), str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)})
    proposed = [Context(cls, tuple(sorted(ts))) for cls, ts in contexts.items()]
    out: list[StoreOutcome] = []
    with association(
        identity, node, proposed, required=list(contexts), service="Storage (C-STORE)"
    ) as assoc:
        accepted: dict[str, set[str]] = {}
        for ctx in assoc.accepted_contexts:
            accepted.setdefault(str(ctx.abstract_syntax), set()).add(str(ctx.transfer_syntax[0]))
        for ds in datasets:
            uid = str(ds.SOPInstanceUID)
            ts = _syntax(ds)
            if ts not in accepted.get(str(ds.SOPClassUID), set()):
                out.append(StoreOutcome(uid, None, f"{node.label} accepted no context for {ts}"))
                continue
            try:
                rsp = assoc.send_c_store(ds)
            except (RuntimeError, ValueError) as exc:
                out.append(StoreOutcome(uid, None, f"not sent: {exc}"))
                continue
            status = int(rsp.Status) if rsp is not None and "Status" in rsp else None
            message = "" if status is not None else "no response (timeout or abort)"
            out.append(StoreOutcome(uid, status, message))
            if status is None:
                break
    return out


__all__ = ["NetError", "StoreOutcome", "store"]
