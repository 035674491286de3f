"""Benchmark of the archive client against the embedded archive over loopback HTTP.

1. search -> Table: ``archive.search(limit=N)`` on a synthetic archive, against
   the same query through bare ``pyvo`` (``TAPService.run_sync(...).to_table()``).
2. download throughput: ``archive.download`` (verified, parallel, into a fresh
   cache) against a plain sequential ``urllib`` copy of the same files.

Run ``.venv/bin/python bench/bench_client.py [--quick]``; figures are printed
and written to ``bench/results/client.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_search(work: Path, n_rows: int, n_db: int, repeats: int) -> dict:
    import pyvo

    import ctanb
    from ctanb.archive.service import ArchiveServer
    from ctanb.archive.synthetic import make_synthetic_db

    db = make_synthetic_db(work / "synthetic.db", n_db)
    with ArchiveServer(db) as server:
        archive = ctanb.connect(server.url, progress=False, record_history=False)
        results = archive.search(limit=n_rows)
        assert len(results) == n_rows, len(results)
        client = _median_time(lambda: archive.search(limit=n_rows).table, repeats)
        adql = archive.adql(limit=n_rows)
        service = pyvo.dal.TAPService(server.url)
        bare = _median_time(lambda: service.run_sync(adql).to_table(), repeats)
    return {
        "rows": n_rows,
        "archive_rows": n_db,
        "client_s": round(client, 4),
        "pyvo_s": round(bare, 4),
        "client_rows_per_s": round(n_rows / client),
        "overhead_ratio_client_over_pyvo": round(client / bare, 3),
    }


def _file_archive(work: Path) -> tuple[Path, list[Path]]:
    """An archive whose datasets are real DL3 files (H.E.S.S., CTA 1DC, MAGIC)."""
    from ctanb._settings import data_dir
    from ctanb.archive import db as adb

    data = data_dir(must_exist=True)
    files = sorted((data / "hess-dl3-dr1" / "data").glob("*.fits.gz"))
    files += sorted((data / "cta-1dc" / "data" / "baseline" / "gps").glob("*.fits"))
    files += sorted((data / "magic" / "rad_max" / "data").glob("*DL3*.fits"))
    path = work / "files.db"
    conn = adb.connect(path)
    adb.create_schema(conn)
    for i, f in enumerate(files):
        did = adb.publisher_did("bench", i)
        row = {
            "obs_publisher_did": did,
            "obs_collection": "bench",
            "obs_id": str(i),
            "dataproduct_type": "event",
            "calib_level": 2,
            "access_url": f"{adb.ACCESS_URL_BASE}files/{quote(did, safe='')}",
            "access_format": "application/fits",
            "target_name": f.name,
            "s_ra": 10.0 + i * 0.01,
            "s_dec": 0.0,
            "t_min": 53000.0 + i,
            "t_max": 53000.1 + i,
        }
        record = adb.FileRecord("#this", str(f), size=f.stat().st_size)
        adb.upsert_dataset(conn, row, [record])
    conn.commit()
    conn.close()
    return path, files


def bench_download(work: Path, repeats: int, workers: int) -> dict:
    import ctanb
    from ctanb.archive.service import ArchiveServer

    db, files = _file_archive(work)
    total = sum(f.stat().st_size for f in files)
    with ArchiveServer(db) as server:
        archive = ctanb.connect(server.url, progress=False, record_history=False, workers=workers)
        results = archive.search(collection="bench")
        urls = [r["access_url"] for r in results]
        assert len(urls) == len(files)
        # Warm the server's checksum cache and the OS page cache, for both contenders alike.
        archive.download(results)

        def client():
            shutil.rmtree(archive.downloads.cache_dir, ignore_errors=True)
            archive.download(results)

        def plain():
            out = work / "urllib"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            for i, url in enumerate(urls):
                with urllib.request.urlopen(url) as resp, open(out / str(i), "wb") as fh:
                    shutil.copyfileobj(resp, fh, 1 << 20)

        t_client = _median_time(client, repeats)
        t_plain = _median_time(plain, repeats)
    mb = total / 1e6
    return {
        "files": len(files),
        "megabytes": round(mb, 1),
        "workers": workers,
        "client_s": round(t_client, 3),
        "urllib_s": round(t_plain, 3),
        "client_mb_per_s": round(mb / t_client, 1),
        "urllib_mb_per_s": round(mb / t_plain, 1),
        "throughput_ratio_client_over_urllib": round(t_plain / t_client, 3),
        "verified": "size + sha256 of every file (client only)",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="ctanb-bench-client-") as tmp:
        work = Path(tmp)
        os.environ["CTANB_HOME"] = str(work / "home")
        os.environ["CTANB_OFFLINE"] = "1"
        search = bench_search(work, 1000, 5000 if args.quick else 20000, repeats)
        print(
            f"search -> Table, {search['rows']} rows: client {search['client_s'] * 1e3:.0f} ms "
            f"({search['client_rows_per_s']} rows/s), bare pyvo {search['pyvo_s'] * 1e3:.0f} ms, "
            f"ratio {search['overhead_ratio_client_over_pyvo']}"
        )
        download = bench_download(work, repeats, workers=4)
        print(
            f"download {download['files']} files ({download['megabytes']} MB): client "
            f"{download['client_mb_per_s']} MB/s (verified, {download['workers']} workers), "
            f"urllib {download['urllib_mb_per_s']} MB/s, "
            f"ratio {download['throughput_ratio_client_over_urllib']} (target >= 0.9)"
        )
    report = {
        "quick": args.quick,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "search": search,
        "download": download,
    }
    out = ROOT / "bench" / "results" / "client.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")
    return 0 if download["throughput_ratio_client_over_urllib"] >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
