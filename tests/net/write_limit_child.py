"""Run by test_listener_write_limit.py in a process whose files may not grow past a limit
(RLIMIT_FSIZE, SIGXFSZ ignored: a write beyond it fails with EFBIG, as on a full disk): a spooled
listener receives a small instance, one larger than the limit, and another small one. Prints what
was answered and what the archive holds, as JSON. args: archive_dir limit_bytes"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from workstation.app.listener import ArchiveReceiver, ListenerSettings
from workstation.archive.archive import Archive
from workstation.net.tcp import nodelay_handlers


def ct(pixels: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality = "LIMIT", "CT"
    ds.Rows, ds.Columns = 64, pixels // 128
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 15, 0, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(pixels)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def main() -> None:
    root, limit = Path(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    archive = Archive(root)
    receiver = ArchiveReceiver(archive, ListenerSettings("LISTENER", 0, "127.0.0.1", ("SCU",)))
    receiver.start()
    sent = [ct(8192), ct(2 * limit), ct(8192)]
    ae = AE(ae_title="SCU")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    host, port = receiver.listener.address
    assoc = ae.associate(host, port, ae_title="LISTENER", evt_handlers=nodelay_handlers())
    statuses = [int(assoc.send_c_store(sent[0]).Status)]
    # White box: let the ingester's thread make its parts ahead, so that the large instance is
    # written to one of them (the path a busy listener takes), not to a part made on the spot.
    parts = receiver._ingester._parts.started  # noqa: SLF001
    deadline = time.monotonic() + 10.0
    while parts.ready < parts.ahead and time.monotonic() < deadline:
        time.sleep(0.01)
    statuses += [int(assoc.send_c_store(ds).Status) for ds in sent[1:]]
    assoc.release()
    receiver.stop()
    rows = [r["SOPInstanceUID"] for r in archive.find("IMAGE", {"SOPInstanceUID": ""})]
    archive.close()
    print(
        json.dumps(
            {
                "statuses": statuses,
                "sent": [str(ds.SOPInstanceUID) for ds in sent],
                "indexed": rows,
                "store": sorted(p.name for p in (root / "store").rglob("*.dcm")),
                "spool": sorted(os.listdir(root / "spool")),
                "tmp": sorted(os.listdir(root / "tmp")),
            }
        )
    )


if __name__ == "__main__":
    main()
