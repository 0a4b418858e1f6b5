"""Query latency of the archive index at 1,000,000 instances (generated with bulk SQL).

Builds (once) ``benchmarks/_data/query_1m/index.sqlite`` with the archive's own schema: 10,000
patients, 25,000 studies, 100,000 series, 1,000,000 instances -- inserted with ``executemany``,
not through the importer. Then times C-FIND style queries through ``Archive.find`` (all rows
fetched), interleaved with the same SQL forced to ignore the indexes (``NOT INDEXED``: what a
naive table scan costs). Targets: a patient-name wildcard and a date range at study level
within 50 ms. Prints a table and, last, one JSON line.

    python benchmarks/query.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workstation.archive.archive import Archive  # noqa: E402
from workstation.archive.attributes import normalize_name  # noqa: E402
from workstation.archive.index import Index  # noqa: E402
from workstation.archive.query import build  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data" / "query_1m"
PATIENTS, STUDIES_PER_PATIENT, SERIES_PER_STUDY, INSTANCES_PER_SERIES = 10_000, 2.5, 4, 10
TARGET_MS = 50.0
SURNAMES = (
    "SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ "
    "GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON WHITE HARRIS "
    "SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT TORRES NGUYEN HILL "
    "FLORES GREEN ADAMS NELSON BAKER HALL RIVERA CAMPBELL MITCHELL CARTER ROBERTS MULLER SCHMIDT "
    "SCHNEIDER FISCHER WEBER MEYER WAGNER BECKER SCHULZ HOFFMANN DUBOIS DURAND LEROY MOREAU "
    "SIMON LAURENT ROSSI RUSSO FERRARI ESPOSITO BIANCHI ROMANO COLOMBO SILVA SANTOS OLIVEIRA "
    "SOUZA PEREIRA COSTA KOWALSKI NOWAK WISNIEWSKI TANAKA SUZUKI SATO WATANABE KIM PARK CHEN WANG"
).split()
GIVEN = (
    "JAMES MARY ROBERT PATRICIA JOHN JENNIFER MICHAEL LINDA DAVID ELIZABETH WILLIAM BARBARA "
    "RICHARD SUSAN JOSEPH JESSICA THOMAS SARAH CHARLES KAREN ANNA LUCAS EMMA NOAH MIA LEON "
    "SOFIA YUKI HANA MIN"
).split()
MODALITIES = ["CT", "CT", "CT", "MR", "MR", "CR", "DX", "US", "MG", "PT", "NM", "XA"]
PREFIX = "1.2.826.0.1.3680043.8.498"


def _date(rng: random.Random) -> str:
    day = rng.randrange(0, 15 * 365)
    t = time.gmtime(1262304000 + day * 86400)  # 2010-01-01 onwards
    return f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"


def generate(folder: Path) -> dict[str, int]:
    """Create the 1M-instance index under ``folder`` unless it is already there."""
    db = folder / "index.sqlite"
    marker = folder / "GENERATED"
    if db.exists() and marker.exists():
        return json.loads(marker.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("index.sqlite*"):
        stale.unlink()
    Index(db).close()  # the archive's schema, through its migrations
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    rng = random.Random(42)
    start = time.perf_counter()
    conn.execute("BEGIN")
    patients, studies, series, instances = [], [], [], []
    n_study = n_series = n_inst = 0
    for p in range(1, PATIENTS + 1):
        name = f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}"
        patients.append(
            (p, f"PID{p:07d}", name, normalize_name(name), _date(rng)[:4] + "0101", "MF"[p % 2])
        )
        for _ in range(int(STUDIES_PER_PATIENT) + (rng.random() < STUDIES_PER_PATIENT % 1)):
            n_study += 1
            mods = sorted({rng.choice(MODALITIES) for _ in range(SERIES_PER_STUDY)})
            size_series = INSTANCES_PER_SERIES * 520_000
            studies.append(
                (
                    n_study, p, f"{PREFIX}.1.{n_study}", _date(rng),
                    f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}00", f"ACC{n_study:08d}",
                    str(n_study % 1000), f"STUDY {mods[0]} {n_study % 37}", "REF^DOCTOR",
                    "REF^DOCTOR", "\\".join(mods), SERIES_PER_STUDY,
                    SERIES_PER_STUDY * INSTANCES_PER_SERIES, SERIES_PER_STUDY * size_series,
                )
            )  # fmt: skip
            for s in range(SERIES_PER_STUDY):
                n_series += 1
                series.append(
                    (
                        n_series, n_study, f"{PREFIX}.2.{n_series}", mods[s % len(mods)], s + 1,
                        "SERIES", "CHEST", INSTANCES_PER_SERIES, size_series,
                    )
                )  # fmt: skip
                for i in range(INSTANCES_PER_SERIES):
                    n_inst += 1
                    sop = f"{PREFIX}.3.{n_inst}"
                    instances.append(
                        (
                            n_inst, n_series, sop, "1.2.840.10008.5.1.4.1.1.2", i + 1,
                            "1.2.840.10008.1.2.1", 1,
                            f"store/{PREFIX}.1.{n_study}/{PREFIX}.2.{n_series}/{sop}.dcm",
                            520_000, f"{n_inst:064x}",
                        )
                    )  # fmt: skip
        if len(instances) >= 100_000:
            _flush(conn, patients, studies, series, instances)
    _flush(conn, patients, studies, series, instances)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    counts = {
        "patients": PATIENTS,
        "studies": n_study,
        "series": n_series,
        "instances": n_inst,
        "generate_s": round(time.perf_counter() - start, 1),
    }
    marker.write_text(json.dumps(counts))
    return counts


def _flush(conn, patients, studies, series, instances) -> None:
    conn.executemany("INSERT INTO patient VALUES (?, ?, ?, ?, ?, ?)", patients)
    conn.executemany(
        "INSERT INTO study VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", studies
    )
    conn.executemany("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", series)
    conn.executemany("INSERT INTO instance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0)", instances)
    for rows in (patients, studies, series, instances):
        rows.clear()


QUERIES = [
    # (label, level, keys, required by the target)
    ("study: PatientName=SMI*", "STUDY", {"PatientName": "SMI*"}, True),
    ("study: StudyDate one month", "STUDY", {"StudyDate": "20230101-20230131"}, True),
    ("study: PatientName=*SON^* (leading *)", "STUDY", {"PatientName": "*SON^*"}, False),
    ("study: name + date range", "STUDY", {"PatientName": "M*", "StudyDate": "20200101-"}, False),
    ("study: modality + one week", "STUDY",
     {"ModalitiesInStudy": "MR", "StudyDate": "20220301-20220307"}, False),
    ("patient: PatientName=garcia^m*", "PATIENT", {"PatientName": "garcia^m*"}, False),
    ("series: of one study", "SERIES", {"StudyInstanceUID": f"{PREFIX}.1.12345"}, False),
    ("image: of one series", "IMAGE", {"SeriesInstanceUID": f"{PREFIX}.2.54321"}, False),
]  # fmt: skip


def _time_ours(archive: Archive, level: str, keys: dict) -> tuple[float, int]:
    start = time.perf_counter()
    n = sum(1 for _ in archive.find(level, keys))
    return (time.perf_counter() - start) * 1000, n


def _time_scan(conn: sqlite3.Connection, level: str, keys: dict) -> float:
    sql, params, _ = build(level, keys)
    # the same statement with every table forced to a full scan
    sql = re.sub(r"\b(patient|study|series|instance) (p|st|se|i)\b", r"\1 \2 NOT INDEXED", sql)
    start = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (<1 min)")
    args = parser.parse_args()
    reps = 5 if args.quick else 25
    scan_reps = 1 if args.quick else 3
    counts = generate(DATA)
    load = os.getloadavg()[0]  # other work on the machine skews the figures: reported
    results = []
    with Archive(DATA, reconcile=False) as archive:
        scan_conn = sqlite3.connect(DATA / "index.sqlite")
        for label, level, keys, required in QUERIES:
            _time_ours(archive, level, keys)  # warm the page cache for this query
            ours, scans, rows = [], [], 0
            for rep in range(reps):
                t, rows = _time_ours(archive, level, keys)
                ours.append(t)
                if rep < scan_reps:
                    scans.append(_time_scan(scan_conn, level, keys))
            results.append(
                {
                    "query": label,
                    "rows": rows,
                    "median_ms": round(statistics.median(ours), 2),
                    "max_ms": round(max(ours), 2),
                    "scan_ms": round(statistics.median(scans), 1),
                    "speedup_vs_scan": round(statistics.median(scans) / statistics.median(ours), 1),
                    "required": required,
                }
            )
        scan_conn.close()
    print(
        f"Index of {counts['instances']:,} instances, {counts['studies']:,} studies, "
        f"{counts['patients']:,} patients; {reps} reps, all rows fetched through Archive.find; "
        f"load average {load:.2f}"
    )
    print(f"{'query':<40}{'rows':>7}{'median ms':>11}{'max ms':>9}{'scan ms':>10}{'x scan':>8}")
    for r in results:
        mark = " *" if r["required"] else ""
        print(
            f"{r['query']:<40}{r['rows']:>7}{r['median_ms']:>11.2f}{r['max_ms']:>9.2f}"
            f"{r['scan_ms']:>10.1f}{r['speedup_vs_scan']:>8.1f}{mark}"
        )
    print(f"* target: median <= {TARGET_MS:.0f} ms")
    required = [r for r in results if r["required"]]
    summary = {
        "benchmark": "query",
        "instances": counts["instances"],
        "studies": counts["studies"],
        "patients": counts["patients"],
        "reps": reps,
        "name_wildcard_ms": required[0]["median_ms"],
        "date_range_ms": required[1]["median_ms"],
        "target_ms": TARGET_MS,
        "ratio_name_to_target": round(required[0]["median_ms"] / TARGET_MS, 3),
        "ratio_date_to_target": round(required[1]["median_ms"] / TARGET_MS, 3),
        "speedup_vs_scan": {r["query"]: r["speedup_vs_scan"] for r in results},
        "meets_target": all(r["median_ms"] <= TARGET_MS for r in required),
        "load_average": round(load, 2),
        "queries": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
