"""`kiosk backup` of a database with 50,000 codes (10,000 of them issued) as a whole
process, start-up included (and the start-up alone: the app made, no work), against
the bare tool it is built on, on SQLite and PostgreSQL; and the archive's size
against the bare copy's.

- Kodomat: `kiosk backup -o FILE` as the operator's nightly job runs it (its
  database from DATABASE_URL, its instance from KIOSK_INSTANCE): the copy, its
  integrity check (SQLite), the row counts, the checksums, the gzip'd archive.
- floor: a `python` process calling sqlite3's Connection.backup() into a file;
  `pg_dump --format=custom --file=FILE` on PostgreSQL.

Each run backs up the same database, three times; the table gives the medians.

    python bench/backup.py [--codes 50000] [--issued 10000] [--runs 3]
PostgreSQL is measured when BENCH_DATABASE_URL or TEST_DATABASE_URL is set (a
database of its own, dropped after).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
from imports import KIOSK, kiosk, timed  # noqa: E402 - bench/imports.py: `kiosk` as the operator runs it, timed
START_UP = "from kiosk import create_app; create_app(web=False, migrations=False)"  # the app made, no work
SQLITE_FLOOR = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))"


def filled(url: str, codes: int, issued: int) -> None:
    """The library `bench`: one pool of `codes` codes, the first `issued` handed out (rows written
    directly: the shape of a busy year, not the issuing path's speed)."""
    import hashlib
    import random
    import string
    from datetime import date, datetime, timezone

    from sqlalchemy import create_engine, insert, update

    from kiosk.storage.database import normalise_database_url
    from kiosk.storage.models import Code, Issuance, Library, Platform, Pool

    engine = create_engine(normalise_database_url(url))
    with engine.begin() as conn:
        library = conn.execute(Library.__table__.select().where(Library.slug == "bench")).first().id
        platform = conn.execute(Platform.__table__.select().where(Platform.slug == "legimi")).first().id
        pool = conn.execute(insert(Pool).values(
            library_id=library, platform_id=platform, valid_from=date(2020, 1, 1), valid_until=date(2020, 1, 31),
            code_count=codes, source_filename="bench.csv", source_sha256="0" * 64, imported_by="bench",
            imported_at=datetime(2020, 1, 1, tzinfo=timezone.utc)).returning(Pool.id)).scalar()
        rng = random.Random(13)  # codes as a platform's look: random, 12 characters
        values = {"".join(rng.choices(string.ascii_uppercase + string.digits, k=12)) for _ in range(codes * 2)}
        conn.execute(insert(Code), [{"pool_id": pool, "platform_id": platform, "value": value,
                                     "status": "available"} for value in sorted(values)[:codes]])
        ids = [row.id for row in conn.execute(Code.__table__.select().order_by(Code.id).limit(issued))]
        conn.execute(update(Code).where(Code.id.in_(ids)).values(status="issued"))
        conn.execute(insert(Issuance), [{
            "code_id": code, "library_id": library, "platform_id": platform,
            "reader_key": hashlib.sha256(b"%d" % n).hexdigest(),
            "window_start": date(2020, 1, 1), "window_end": date(2020, 1, 31), "channel": "kiosk",
            "actor": "bench", "issued_at": datetime(2020, 1, 2, tzinfo=timezone.utc), "print_count": 1}
            for n, code in enumerate(ids)])
    engine.dispose()


def measured(env: dict, url: str, folder: Path, runs: int) -> tuple[float, float, int, int, float]:
    """(Kodomat s, floor s, archive bytes, floor bytes, start-up s), medians of runs."""
    results = []
    for run in range(runs):
        archive, floor_file = folder / f"kopia-{run}.tar.gz", folder / f"floor-{run}"
        ours = timed([*KIOSK, "backup", "-o", str(archive)], env)
        if url.startswith("sqlite"):
            floor = timed([sys.executable, "-c", SQLITE_FLOOR, url.removeprefix("sqlite:///"), str(floor_file)],
                          os.environ)
        else:
            floor = timed(["pg_dump", "--format=custom", f"--file={floor_file}", f"--dbname={url}"], os.environ)
        start_up = timed([sys.executable, "-c", START_UP], env)
        results.append((ours, floor, archive.stat().st_size, floor_file.stat().st_size, start_up))
        archive.unlink()
        floor_file.unlink()
    return tuple(statistics.median(run[n] for run in results) for n in range(5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=int, default=50_000)
    parser.add_argument("--issued", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")

    print(f"{args.codes:,} codes, {args.issued:,} issued; whole processes (start-up included), medians of "
          f"{args.runs}; {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    print()
    print("| database | Kodomat s | floor s | ratio | archive MB | floor's copy MB | of Kodomat's, start-up "
          "(the app made, no work) s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        kinds = [("sqlite", f"sqlite:///{folder / 'bench.db'}")]
        database = None
        if postgres:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            from kiosk.storage.database import normalise_database_url

            database = f"kodomat_bench_backup_{uuid.uuid4().hex[:8]}"
            admin = create_engine(normalise_database_url(postgres), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            kinds.append(("postgresql", make_url(postgres).set(database=database).render_as_string(False)))
        try:
            for kind, url in kinds:
                env = {**os.environ, "KIOSK_INSTANCE": str(folder / kind), "DATABASE_URL": url}
                kiosk(env, "db", "upgrade")
                kiosk(env, "add-library", "bench", "--name", "Bench")
                filled(url, args.codes, args.issued)
                ours, floor, size, floor_size, start_up = measured(env, url, folder, args.runs)
                print(f"| {kind} | {ours:.2f} | {floor:.2f} | {ours / floor:.1f}× | {size / 1e6:.1f} | "
                      f"{floor_size / 1e6:.1f} | {start_up:.2f} |", flush=True)
        finally:
            if database:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
