"""Issuing throughput and latency for N workers on SQLite and PostgreSQL.

Each worker has its own engine (its own connection, as separate kiosks do) and
issues codes to distinct readers from one pool, first with no rules, then with a
rule set that takes every lock and query a rule can (the first working day at an
hour, a first-timer reserve in force, one code a month across platforms, the
non-activation wait). Two baselines from the same run:
- no-op: the same loop with a no-op in place of the issuing transaction;
- bare write: the same loop with the smallest write transaction (one event row).

    python bench/issue.py [--workers 1,4,8] [--calls 200]
PostgreSQL is measured when BENCH_DATABASE_URL or TEST_DATABASE_URL is set.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from kiosk import create_app  # noqa: E402
from kiosk.app.extensions import db  # noqa: E402
from kiosk.domain.actors import Actor  # noqa: E402
from kiosk.domain.events import EventKind, record_event  # noqa: E402
from kiosk.domain.issuing import Outcome, issue_code  # noqa: E402
from kiosk.domain.libraries import add_library  # noqa: E402
from kiosk.domain.pool_files import prepare_pool  # noqa: E402
from kiosk.domain.pools import import_pool  # noqa: E402
from kiosk.domain.settings import parse_new_library  # noqa: E402
from kiosk.storage.database import configure_engine, normalise_database_url, run_in_transaction  # noqa: E402
from kiosk.storage.models import Channel, Platform  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

NOW = datetime(2020, 1, 10, 11, tzinfo=timezone.utc)
WINDOW = (date(2020, 1, 1), date(2020, 1, 31))
PEPPER = "bench-pepper"
BENCH = Actor.system("bench")


def prepare(url: str, instance: Path, pool_size: int) -> None:
    app = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url,
                      "READER_PEPPER": PEPPER, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        new = parse_new_library(slug="bench", name="Bench")
        library_id = run_in_transaction(db.session, lambda s: add_library(s, new, actor=BENCH, now=NOW).id)
        legimi = db.session.scalar(select(Platform.id).where(Platform.slug == "legimi"))
        data = ("Kod\n" + "\n".join(f"BENCH{uuid.uuid4().hex[:12].upper()}" for _ in range(pool_size))).encode()
        prepared = prepare_pool(data, "bench.csv", WINDOW)
        run_in_transaction(db.session, lambda s: import_pool(s, library_id=library_id, platform_id=legimi,
                                                             prepared=prepared, actor=BENCH, now=NOW))
        db.engine.dispose()


def run(url: str, workers: int, calls: int, action: str) -> tuple[list[float], float]:
    """Per-call latencies (seconds) of all workers, and the wall time."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        engine = configure_engine(create_engine(url))
        session = Session(engine)
        mine: list[float] = []
        try:
            with engine.connect():  # open the connection before the clock starts
                pass
            barrier.wait()
            for n in range(calls):
                card = f"{action[:1]}{worker:03d}{n:06d}{uuid.uuid4().hex[:6]}"
                started = time.perf_counter()
                if action in ("issue", "rules"):
                    result = run_in_transaction(session, lambda s: issue_code(
                        s, library_slug="bench", card_number=card, channel=Channel.KIOSK, actor=BENCH, now=NOW,
                        pepper=PEPPER))
                    assert result.outcome is Outcome.ISSUED, result
                elif action == "bare":
                    # The floor: the smallest write transaction, begun as every write is.
                    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
                    record_event(session, kind=EventKind.SETTINGS, actor=BENCH, now=NOW)
                    session.commit()
                mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            session.close()
            engine.dispose()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return latencies, wall


RULES = {"release_day": "first_working_day", "release_time": "09:00", "first_timer_reserve": "10",
         "first_timer_until_day": "20", "platforms_rule": "one_per_month", "non_activation_wait": "1"}


def set_rules(url: str, instance: Path) -> None:
    from kiosk.domain.rules import parse_changes, save_rules

    app = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url,
                      "READER_PEPPER": PEPPER, "SECRET_KEY": "bench"})
    with app.app_context():
        from kiosk.storage.models import Library

        parsed = parse_changes(RULES)
        library_id = db.session.scalar(select(Library.id).where(Library.slug == "bench"))
        run_in_transaction(db.session, lambda s: save_rules(s, library_id, parsed, BENCH, NOW))
        db.engine.dispose()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def fresh_database(kind: str, base_pg: str | None, folder: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        path = folder / f"bench-{uuid.uuid4().hex[:6]}.db"
        return f"sqlite:///{path}", lambda: None
    admin = create_engine(base_pg)
    schema = f"kodomat_bench_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    sep = "&" if "?" in base_pg else "?"
    return f"{base_pg}{sep}options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument("--calls", type=int, default=200, help="calls per worker")
    args = parser.parse_args()
    worker_counts = [int(w) for w in args.workers.split(",")]
    pg = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    kinds = ["sqlite"] + (["postgresql"] if pg else [])
    base_pg = normalise_database_url(pg) if pg else None

    print(f"calls per worker: {args.calls}; machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    print()
    print("| database | workers | issues/s | median ms | p99 ms | bare write median ms | no-op median µs "
          "| issue ÷ bare write | issue ÷ no-op | with rules median ms | rules ÷ no rules |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind in kinds:
            for workers in worker_counts:
                url, drop = fresh_database(kind, base_pg, folder)
                try:
                    prepare(url, folder, pool_size=2 * workers * args.calls)
                    noop, _ = run(url, workers, args.calls, "noop")
                    bare, _ = run(url, workers, args.calls, "bare")
                    issued, wall = run(url, workers, args.calls, "issue")
                    set_rules(url, folder)
                    ruled, _ = run(url, workers, args.calls, "rules")
                finally:
                    drop()
                med, p99 = statistics.median(issued), percentile(issued, 0.99)
                bare_med, noop_med = statistics.median(bare), statistics.median(noop)
                print(f"| {kind} | {workers} | {len(issued) / wall:,.0f} | {med * 1e3:.2f} | {p99 * 1e3:.2f} "
                      f"| {bare_med * 1e3:.2f} | {noop_med * 1e6:.2f} | {med / bare_med:.1f}× "
                      f"| {med / noop_med:,.0f}× | {statistics.median(ruled) * 1e3:.2f} "
                      f"| {statistics.median(ruled) / med:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
