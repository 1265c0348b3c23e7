"""The rush at the release minute (issue 14): 500 readers send the online request
form at the moment a library's codes come, 300 codes in the pool, PostgreSQL
behind gunicorn (gthread, 2 workers × 8 threads, bench/floor_wsgi.py: the
deployment's app plus a no-op route), the readers simulated by locust (headless,
bounded, one process, in bench/rush_locustfile.py).

Each reader has the form open before the release (GET), then sends their card
within the first second of the release minute (POST, as without JavaScript). The
library checks cards against its imported register, every reader has an e-mail
address there, so every code goes to the outbox (nothing is sent: no SMTP here).
The floor, from the same run and server: the same 500 users, each one GET of
/bench/noop at the same moments.

Checked, not only timed: exactly 300 codes issued, 200 readers told "no codes
left", 0 errors; no reader with two codes; no code twice; one outbox message per
code; every answer in Polish (the readers' language).

    python bench/rush.py [--readers 500] [--codes 300] [--spread 1.0]

PostgreSQL: BENCH_DATABASE_URL or TEST_DATABASE_URL names the server; the bench
creates and drops a database of its own (bench_rush_<random>)."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))

import floor  # noqa: E402  (the database, the server and the figures of bench/floor.py)

floor.DATABASE_NAME = f"bench_rush_{uuid.uuid4().hex[:8]}"
SLUG = "rush"
CARD_PREFIX = "7000"
WARSAW = ZoneInfo("Europe/Warsaw")
LEAD = 25  # seconds at least before the release minute: the readers' locust starts and opens the form


def release_minute(now: datetime) -> datetime:
    """The first whole minute at least LEAD seconds away, in Warsaw."""
    moment = (now + timedelta(seconds=LEAD + 60)).astimezone(WARSAW)
    return moment.replace(second=0, microsecond=0)


def prepare(url: str, instance: Path, readers: int, codes: int) -> int:
    """The library (its id), its register (every reader with an address) and the
    pool of the window that starts today; released later (release_at)."""
    from kiosk.app.extensions import db
    from kiosk.domain.clock import utcnow
    from kiosk.domain.registry import import_cards, prepare_cards
    from sqlalchemy import update

    from kiosk.storage.database import run_in_transaction
    from kiosk.storage.models import CardCheckKind, Library

    app = floor.bench_app(url, instance)
    with app.app_context():
        floor.migrate()
        today = datetime.now(WARSAW).date()
        window = (today, today + timedelta(days=27))
        library_id, _ = floor.library_with_pool(SLUG, codes, window, utcnow())
        register = "Karta;Ważna do;E-mail\n" + "".join(
            f"{CARD_PREFIX}{n:06d};2099-12-31;czytelnik{n}@example.pl\n" for n in range(readers))
        prepared = prepare_cards(register.encode(), card_pattern=None, check_digit=None, pepper=floor.PEPPER)
        run_in_transaction(db.session, lambda s: import_cards(s, library_id=library_id, prepared=prepared,
                                                              actor=floor.actor(), now=utcnow()))
        run_in_transaction(db.session, lambda s: s.execute(update(Library).where(Library.id == library_id).values(
            card_check=CardCheckKind.REGISTRY.value)))
        release_at(library_id, datetime.now(WARSAW).replace(hour=23, minute=59))  # not before the rush
        db.session.remove()
        db.engine.dispose()
    return library_id


def release_at(library_id: int, moment: datetime) -> None:
    """The library's codes come at that minute (the rules, as the panel sets them;
    the server's workers see the change at their next request). In an app context."""
    from kiosk.app.extensions import db
    from kiosk.domain.clock import utcnow
    from kiosk.domain.rules import parse_changes, save_rules
    from kiosk.storage.database import run_in_transaction

    rules = parse_changes({"release_day": "window_start", "release_time": moment.strftime("%H:%M")})
    run_in_transaction(db.session, lambda s: save_rules(s, library_id, rules, floor.actor(), utcnow()))


def locust(port: int, mode: str, path: str, users: int, at: float, spread: float, folder: Path) -> list[dict]:
    """One bounded headless locust run; every request's (what, ms, status, outcome)."""
    results = folder / f"{mode}.jsonl"
    env = {**os.environ, "RUSH_AT": str(at), "RUSH_SPREAD": str(spread), "RUSH_MODE": mode, "RUSH_PATH": path,
           "RUSH_RESULTS": str(results), "RUSH_CARD_PREFIX": CARD_PREFIX}
    run_time = int(at - time.time() + spread + 90)
    subprocess.run([sys.executable, "-m", "locust", "-f", str(PROJECT / "bench" / "rush_locustfile.py"),
                    "--headless", "--only-summary", "--users", str(users), "--spawn-rate", str(users),
                    "--run-time", f"{run_time}s", "--stop-timeout", "30", "--host", f"http://127.0.0.1:{port}",
                    "--loglevel", "WARNING", "--exit-code-on-error", "0"],
                   env=env, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=run_time + 120)
    return [json.loads(line) for line in results.read_text().splitlines() if line.strip()]


def figures(rows: list[dict], what: str) -> tuple[int, float, float]:
    times = sorted(row["ms"] for row in rows if row["what"] == what)
    if not times:
        return 0, float("nan"), float("nan")
    return len(times), statistics.median(times), floor.percentile(times, 0.99)


def database_checks(url: str, instance: Path) -> dict:
    from sqlalchemy import func, select

    from kiosk.app.extensions import db
    from kiosk.storage.models import Code, CodeStatus, Issuance, OutboxMessage

    app = floor.bench_app(url, instance)
    with app.app_context():
        found = {
            "issued": db.session.scalar(select(func.count(Issuance.id))),
            "readers": db.session.scalar(select(func.count(func.distinct(Issuance.reader_key)))),
            "codes": db.session.scalar(select(func.count(func.distinct(Issuance.code_id)))),
            "codes_left": db.session.scalar(select(func.count(Code.id)).where(
                Code.status == CodeStatus.AVAILABLE.value)),
            "outbox": db.session.scalar(select(func.count(OutboxMessage.id))),
            "channels": dict(db.session.execute(select(Issuance.channel, func.count()).group_by(Issuance.channel)
                                                ).all()),
        }
        db.session.remove()
        db.engine.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--codes", type=int, default=300)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the readers send")
    args = parser.parse_args()
    if datetime.now(WARSAW).strftime("%H:%M") >= "23:50":
        sys.exit("the release minute must fall today (Warsaw): run again after midnight")
    pg_env = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not pg_env:
        sys.exit("bench/rush.py needs PostgreSQL: set BENCH_DATABASE_URL or TEST_DATABASE_URL")
    postgres = floor.Postgres(pg_env)
    postgres.create()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            instance = Path(tmp)
            library_id = prepare(postgres.url, instance, args.readers, args.codes)
            # Each reader from an address of their own, as behind nginx.
            server = floor.Server(postgres.url, instance, config="TRUST_PROXY = True\n")
            try:
                noop = locust(server.port, "noop", "/bench/noop", args.readers, time.time() + 5, args.spread,
                              instance)
                release = release_minute(datetime.now(WARSAW))
                with floor.bench_app(postgres.url, instance).app_context():
                    release_at(library_id, release)
                rush = locust(server.port, "form", f"/r/{SLUG}/", args.readers, release.timestamp(),
                              args.spread, instance)
            finally:
                server.stop()
            found = database_checks(postgres.url, instance)
    finally:
        postgres.drop()

    answers = Counter(row["outcome"] for row in rush if row["what"] == "request")
    errors = sum(1 for row in rush + noop if row["status"] >= 500 or row["outcome"] == "error")
    print(f"# bench/rush.py: {os.cpu_count()} cores; PostgreSQL {postgres.version()}; gunicorn gthread 2 workers "
          f"× 8 threads; locust {args.readers} users in one process on the same machine; release "
          f"{release:%d.%m.%Y %H:%M} Warsaw; the readers send within {args.spread:g} s of it")
    print()
    print("| request | answers | median ms | p99 ms | median ÷ no-op | p99 ÷ no-op |")
    print("|---|---:|---:|---:|---:|---:|")
    n0, median0, p990 = figures(noop, "noop")
    print(f"| GET /bench/noop (the floor) | {n0} | {median0:.1f} | {p990:.1f} | 1.0 | 1.0 |")
    for what, label in (("request", f"POST /r/{SLUG}/ (card sent)"), ("page", f"GET /r/{SLUG}/ (reload)")):
        n, median, p99 = figures(rush, what)
        if n:
            print(f"| {label} | {n} | {median:.1f} | {p99:.1f} | {median / median0:.1f} | {p99 / p990:.1f} |")
    last = max((row["answered_at"] for row in rush if row["what"] == "request"), default=release.timestamp())
    print()
    print(f"The last reader had their answer {last - release.timestamp():.2f} s after the release minute began.")
    print(f"Answers: {dict(sorted(answers.items()))}; errors (5xx or no answer the reader can read): {errors}")
    print(f"Database: {found['issued']} issued to {found['readers']} readers, {found['codes']} distinct codes, "
          f"{found['codes_left']} left; {found['outbox']} messages in the outbox; channels {found['channels']}")
    ok = (found["issued"] == found["readers"] == found["codes"] == found["outbox"] == min(args.codes, args.readers)
          and answers.get("sent", 0) == min(args.codes, args.readers)
          and answers.get("no_codes_left", 0) == max(0, args.readers - args.codes) and errors == 0)
    print("Checks:", "passed" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
