"""Where a C-MOVE's time goes, per image: the sender's turnaround against the receiver's part.

A C-MOVE from Orthanc is a chain: Orthanc sends an image's C-STORE-RQ and data, the receiver
answers its C-STORE-RSP, and only then does Orthanc load and send the next image. Each image's
time splits into:

* **turnaround**: from the receiver's C-STORE-RSP to Orthanc's first bytes of the next image
  (Orthanc reading and parsing its next file: the sender's time, but it needs a CPU to run);
* **receiver's part**: from Orthanc's first bytes of an image to the receiver's C-STORE-RSP (the
  data on the wire, read, written and answered).

Both are read from a packet capture of loopback (``tcpdump``, headers only) while the same study
of ``benchmarks/retrieve.py`` is retrieved by our C-MOVE (into a fresh archive, indexed) and by
DCMTK's ``movescu`` into ``storescp``, interleaved. On a 2-core machine a receiver whose
background work (indexing) holds a CPU when Orthanc wakes lengthens Orthanc's turnaround: that is
what this shows, and what no CPU-time figure does.

Needs ``tcpdump`` (and the right to capture on ``lo``). Usage:
``python benchmarks/retrieve_turnaround.py [--reps N]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

import retrieve  # noqa: E402
from ingest import free_port  # noqa: E402
from series_load import uncompressed_series  # noqa: E402

#: A C-STORE-RSP PDU on the wire is a P-DATA-TF of about 200 bytes (TCP payload length).
_RSP_SIZES = range(100, 400)


def packets(pcap: str, receiver_port: int) -> list[tuple[float, bool, int]]:
    """(time, sent by the receiver, payload bytes) of each packet carrying data."""
    out = subprocess.run(["tcpdump", "-r", pcap, "-tt", "-nn", "-q"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    found = []
    for line in out.splitlines():
        fields = line.split()
        try:
            stamp, source, length = float(fields[0]), fields[2], int(fields[-1])
        except (ValueError, IndexError):
            continue
        if length:
            found.append((stamp, source.endswith(f".{receiver_port}"), length))
    return found


def split(found: list[tuple[float, bool, int]]) -> dict[str, list[float]]:
    """Per image: Orthanc's turnaround and the receiver's part, in seconds."""
    turnaround, part = [], []
    first = None  # Orthanc's first packet of the image being received
    for i, (stamp, from_receiver, length) in enumerate(found):
        if not from_receiver and first is None:
            first = stamp
        if from_receiver and length in _RSP_SIZES and first is not None:
            part.append(stamp - first)
            first = None
            later = next((t for t, mine, _ in islice(found, i + 1, None) if not mine), None)
            if later is not None:
                turnaround.append(later - stamp)
    return {"turnaround": turnaround, "receiver": part}


def captured(port: int, run) -> tuple[float, dict[str, list[float]]]:
    """Seconds of ``run()`` and its per-image split, from a capture of ``port``."""
    with tempfile.TemporaryDirectory(prefix="turnaround-", dir=retrieve.DATA) as tmp:
        pcap = str(Path(tmp) / "capture.pcap")
        dump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "96", "-B", "65536", "-w", pcap,
                                 f"tcp port {port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        time.sleep(1.0)  # tcpdump has no 'listening' signal on a file; it starts within this
        try:
            seconds = run()
        finally:
            time.sleep(0.3)
            dump.terminate()
            _, err = dump.communicate(timeout=10)
        if not Path(pcap).exists():
            raise RuntimeError(f"tcpdump captured nothing: {err.decode(errors='replace')[-300:]}")
        return seconds, split(packets(pcap, port))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    for tool in ("tcpdump", "Orthanc", "storescu", "storescp", "movescu"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: cannot run this benchmark", file=sys.stderr)
            return 2
    import pydicom

    from workstation.app.cli_network import LISTENER_SWITCH_INTERVAL
    from workstation.net.nodes import LocalIdentity, RemoteNode

    files = [Path(p) for p in uncompressed_series(retrieve.N)]
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    sys.setswitchinterval(LISTENER_SWITCH_INTERVAL)
    ours_port, storescp_port = free_port(), free_port()
    identity = LocalIdentity(retrieve.OURS, ours_port)
    rows: dict[str, list[dict[str, float]]] = {"ours": [], "dcmtk": []}
    with tempfile.TemporaryDirectory(prefix="turnaround-orthanc-", dir=retrieve.DATA) as tmp:
        with retrieve.orthanc(Path(tmp), ours_port, storescp_port) as port:
            retrieve.load(files, port)
            node = RemoteNode("orthanc", "ORTHANC", "127.0.0.1", port)
            retrieve.ours(node, identity, study, "C-MOVE")  # warm-up
            runs = {
                "ours": (ours_port, lambda: retrieve.ours(node, identity, study, "C-MOVE")),
                "dcmtk": (storescp_port, lambda: retrieve.dcmtk_move(port, storescp_port, study)),
            }
            for _ in range(args.reps):
                for name, (listen_port, run) in runs.items():
                    seconds, parts = captured(listen_port, run)
                    row = {
                        "images_per_s": retrieve.N / seconds,
                        "images_seen": len(parts["receiver"]),
                    }
                    for key, values in parts.items():
                        row[f"{key}_median_us"] = 1e6 * statistics.median(values) if values else 0.0
                    rows[name].append(row)
                    print(f"{name:5s} {row['images_per_s']:5.0f} img/s  {row['images_seen']} images:"
                          f" Orthanc turnaround median {row['turnaround_median_us']:4.0f} us,"
                          f" receiver's part median {row['receiver_median_us']:4.0f} us",
                          flush=True)  # fmt: skip
    summary = {
        name: {key: round(statistics.median(r[key] for r in got), 1) for key in got[0]}
        for name, got in rows.items()
    }
    print(json.dumps({"benchmark": "retrieve_turnaround", "reps": args.reps, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
