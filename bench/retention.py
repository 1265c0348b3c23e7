"""The purge of 200,000 old issuances (`kiosk purge`) against a raw UPDATE of the
same rows, on SQLite and PostgreSQL.

- baseline: one statement, `UPDATE issuances SET reader_key = 'purged:' || id,
  card_hint = NULL, note = NULL WHERE issued_at < :cut` (what the purge must at
  least do to those rows, with no care for the reports' figures);
- Kodomat: kiosk.domain.retention.run_purge with dry_run (the same work as a real
  purge, rolled back: one UPDATE a month with the readers' pseudonyms, the log,
  the outbox, the answers and the limits looked at, the purge event).

Both run in a write transaction that is rolled back, back to back, three times;
the table gives the medians. 200,000 issuances over 12 months of 100,000 readers.

    python bench/retention.py [--issuances 200000] [--runs 3]
PostgreSQL is measured when BENCH_DATABASE_URL or TEST_DATABASE_URL is set (a
schema of its own, dropped after).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

NOW = datetime(2023, 1, 15, 12, tzinfo=timezone.utc)  # 24 months kept: the cut-off is 01.01.2021
MONTHS = [(2020, month) for month in range(1, 13)]


def seed(session, count: int) -> None:
    from sqlalchemy import insert

    from kiosk.domain.actors import Actor
    from kiosk.domain.clock import month_window
    from kiosk.domain.libraries import add_library
    from kiosk.domain.settings import parse_new_library
    from kiosk.storage.database import run_in_transaction
    from kiosk.storage.models import Code, Issuance, Pool

    library_id = run_in_transaction(session, lambda s: add_library(
        s, parse_new_library(slug="bench", name="Bench"), actor=Actor.system("bench"), now=NOW).id)
    per_month = count // len(MONTHS)

    def rows(s):
        connection = s.connection()
        for n, (year, month) in enumerate(MONTHS):
            first, last = month_window(year, month)
            pool_id = connection.execute(insert(Pool).returning(Pool.id), dict(
                library_id=library_id, platform_id=1, valid_from=first, valid_until=last, code_count=per_month,
                source_filename="b.csv", source_sha256=f"{n:064d}", imported_by="bench",
                imported_at=NOW)).scalar_one()
            connection.execute(insert(Code), [dict(pool_id=pool_id, platform_id=1, value=f"B{n:02d}{i:07d}",
                                                   status="issued") for i in range(per_month)])
            code_ids = [row[0] for row in connection.exec_driver_sql(
                f"SELECT id FROM codes WHERE pool_id = {pool_id} ORDER BY id")]
            issued_at = datetime(year, month, 10, 10, tzinfo=timezone.utc)
            connection.execute(insert(Issuance), [dict(
                code_id=code_id, library_id=library_id, platform_id=1,
                reader_key=hashlib.sha256(str((n * per_month + i) % (count // 2)).encode()).hexdigest(),
                window_start=first, window_end=last, channel="kiosk", actor="bench", issued_at=issued_at,
                print_count=1, card_hint=f"{i % 10000:04d}", note="pełnomocnik" if i % 50 == 0 else None,
                first_timer=False) for i, code_id in enumerate(code_ids)])

    run_in_transaction(session, rows)


def timed(session, work) -> float:
    from kiosk.storage.database import run_and_roll_back

    start = time.perf_counter()
    run_and_roll_back(session, work)
    return time.perf_counter() - start


def measure(url: str, count: int, runs: int) -> tuple[float, float, int]:
    from flask_migrate import upgrade
    from sqlalchemy import text

    from kiosk import create_app
    from kiosk.app.extensions import db
    from kiosk.domain.retention import purge

    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"INSTANCE_PATH": instance, "SQLALCHEMY_DATABASE_URI": url.replace("INSTANCE", instance),
                          "READER_PEPPER": "bench", "SECRET_KEY": "bench"})
        with app.app_context():
            upgrade()
            seed(db.session, count)
            raw = text("UPDATE issuances SET reader_key = 'purged:' || CAST(id AS VARCHAR(20)), card_hint = NULL, "
                       "note = NULL WHERE issued_at < :cut")
            baseline, kodomat, changed = [], [], 0
            for _ in range(runs):
                baseline.append(timed(db.session, lambda s: s.execute(raw, {"cut": datetime(2021, 1, 1)})))
                kodomat.append(timed(db.session, lambda s: purge(s, months=24, now=NOW)))
            from kiosk.storage.database import run_and_roll_back

            changed = run_and_roll_back(db.session, lambda s: purge(s, months=24, now=NOW)).issuances
            db.session.remove()
            db.engine.dispose()
    return statistics.median(baseline), statistics.median(kodomat), changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuances", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    targets = [("sqlite", "sqlite:///INSTANCE/bench.db", None)]
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if postgres:
        from sqlalchemy import create_engine, text

        from kiosk.storage.database import normalise_database_url

        base = normalise_database_url(postgres)
        schema = f"kodomat_bench_{uuid.uuid4().hex[:10]}"
        separator = "&" if "?" in base else "?"
        targets.append(("postgresql", f"{base}{separator}options=-csearch_path%3D{schema}", (base, schema)))
    print("| database | issuances purged | raw UPDATE s | kiosk purge s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, url, pg in targets:
        admin = None
        if pg:
            admin = create_engine(pg[0])
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{pg[1]}"'))
        try:
            baseline, kodomat, changed = measure(url, args.issuances, args.runs)
        finally:
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{pg[1]}" CASCADE'))
                admin.dispose()
        print(f"| {name} | {changed:,} | {baseline:.2f} | {kodomat:.2f} | {kodomat / baseline:.1f}× |")


if __name__ == "__main__":
    main()
