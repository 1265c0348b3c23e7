"""The issuing path against the storage floor (issue 13), each figure beside its
baseline from the same run, medians of three runs, the two run back to back.

- domain: issue_code inside run_in_transaction, 1 and 16 workers (threads, each
  with its own engine and Session), new readers each call, on SQLite (WAL,
  synchronous=FULL, as kiosk.storage.database.configure_engine sets) and on
  PostgreSQL, against a raw claim transaction with the bare driver (sqlite3 /
  psycopg) on a pool of its own in the same database: BEGIN [IMMEDIATE]; one
  UPDATE … WHERE id = (SELECT … [FOR UPDATE SKIP LOCKED] LIMIT 1) RETURNING;
  INSERT the issuance; COMMIT. Kodomat twice: without rules (card format only),
  and with a rule set in force and the card checked over SIP2 (pysip2 in a
  process of its own, tests/sip2_peers.py): ask_before_issuing, then the
  transaction, as the desk and the CLI do.
- http: POST /kiosk/scan of a new card at an enrolled kiosk, over HTTP, gunicorn
  (gthread, 2 workers × 8 threads) on PostgreSQL, the library with the rule set
  and SIP2, against GET /bench/noop on the same server (bench/floor_wsgi.py);
  1, 8 and 16 clients. Every answer's outcome is counted.
- memory: the gunicorn workers' resident memory once 10,000 scans were served.
- checks: (a) 16 kiosks scan the same card at once: the issuance's print_count
  against the slips shown; (b) 32 new cards at once from one kiosk: codes shown
  past the kiosk's pause (kiosk.domain.kiosks.CODES_SHOWN).

    python bench/floor.py [--quick] [--only domain,http,memory,checks]

PostgreSQL: BENCH_DATABASE_URL or TEST_DATABASE_URL names the server; the bench
creates (and at the end drops) a database of its own, bench_floor_<random>, and
never touches the database the URL names. Without PostgreSQL the domain part runs on
SQLite only, and the HTTP parts run on SQLite (said in the output).
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import itertools
import logging
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.cookies import SimpleCookie
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
BENCH_DIR = PROJECT / "bench"
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests"))  # sip2_peers: pysip2 serving patrons

PEPPER = "bench-pepper"
SECRET = "bench-secret"
NOW = datetime(2020, 1, 10, 11, tzinfo=timezone.utc)  # inside the window, after its release
WINDOW = (date(2020, 1, 1), date(2020, 1, 31))
LOGIN = ("kodomat", "bench-Sekret-9")
PATRON_PREFIX = "9"  # the SIP2 peer knows every card that starts so
RULES = {"release_day": "first_working_day", "release_time": "00:00", "min_age": "13", "max_debt": "0",
         "first_timer_reserve": "10", "platforms_rule": "one_per_month"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
SLIP_CODE = re.compile(r'id="slip-code">([^<]*)<')
# A name of this run's own: two runs at once (a shared machine) must not drop each other's database.
DATABASE_NAME = f"bench_floor_{uuid.uuid4().hex[:8]}"
WARM_UP = 2  # domain calls per worker before the clock starts
KIOSK_USES_PER_MINUTE = 5  # under the six codes a minute a kiosk may show
SECTIONS = ("domain", "http", "memory", "checks")
REQUEST_TIMEOUT = 60  # seconds without an answer: the request counts as an error


# -- the SIP2 peer, in a process of its own (it must not share the bench's GIL) ------

def sip2_peer_main() -> None:
    from sip2_peers import Patron, sip2_server

    patron = Patron(name="Anna Nowak", expiry="20991231", birth="19800101", fee="0.00")

    class EveryPatron(dict):
        """Every card of the bench is a patron: born 1980, no debt, valid to 2099."""

        def get(self, card, default=None):
            return patron if str(card).startswith(PATRON_PREFIX) else default

    with sip2_server(EveryPatron(), login=LOGIN) as server:
        print(server.port, flush=True)
        sys.stdin.read()  # until the bench closes the pipe


class Sip2Peer:
    def __enter__(self) -> "Sip2Peer":
        self.process = subprocess.Popen([sys.executable, __file__, "--sip2-peer"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=PROJECT)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise RuntimeError("the SIP2 peer did not start")
        self.port = int(line)
        return self

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- databases ---------------------------------------------------------------------

class Postgres:
    """A database of the bench's own on the server the URL names."""

    def __init__(self, url: str):
        from kiosk.storage.database import normalise_database_url

        self.server_url = normalise_database_url(url)
        parts = urllib.parse.urlsplit(self.server_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{DATABASE_NAME}"))
        self.admin_dsn = urllib.parse.urlunsplit(parts._replace(scheme="postgresql"))

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(statement)

    def create(self) -> None:
        self.drop()
        self._admin(f"CREATE DATABASE {DATABASE_NAME}")

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.admin_dsn) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]


def migrate() -> None:
    """The schema, as `kiosk db upgrade` makes it, without alembic's log lines."""
    from flask_migrate import upgrade

    logging.disable(logging.WARNING)
    try:
        upgrade()
    finally:
        logging.disable(logging.NOTSET)


def bench_app(url: str, instance: Path):
    from kiosk import create_app

    return create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url,
                       "READER_PEPPER": PEPPER, "SECRET_KEY": SECRET})


def actor():
    from kiosk.domain.actors import Actor

    return Actor.system("bench")


def library_with_pool(slug: str, count: int, window: tuple[date, date], now: datetime) -> tuple[int, int]:
    """(library id, pool id): a new library with a pool of `count` codes of the window.
    Inside an app context."""
    from sqlalchemy import select

    from kiosk.app.extensions import db
    from kiosk.domain.libraries import add_library
    from kiosk.domain.pool_files import prepare_pool
    from kiosk.domain.pools import import_pool
    from kiosk.domain.settings import parse_new_library
    from kiosk.storage.database import run_in_transaction
    from kiosk.storage.models import Platform

    new = parse_new_library(slug=slug, name=f"Bench {slug}")
    library_id = run_in_transaction(db.session, lambda s: add_library(s, new, actor=actor(), now=now).id)
    legimi = db.session.scalar(select(Platform.id).where(Platform.slug == "legimi"))
    data = ("Kod\n" + "\n".join(f"B{slug.upper()[:4]}{uuid.uuid4().hex[:14].upper()}"
                                for _ in range(count))).encode()
    prepared = prepare_pool(data, f"{slug}.csv", window)
    report = run_in_transaction(db.session, lambda s: import_pool(s, library_id=library_id, platform_id=legimi,
                                                                  prepared=prepared, actor=actor(), now=now))
    return library_id, report.pool_id


def rules_and_sip2(library_id: int, sip2_port: int, now: datetime, rules: dict | None = None) -> None:
    """The rule set and the SIP2 card check (no PIN), as `kiosk rules` and `kiosk sip2` set them."""
    from kiosk.app.extensions import db
    from kiosk.domain.rules import parse_changes, save_rules
    from kiosk.domain.sip2_settings import parse_sip2_settings, save_sip2_settings
    from kiosk.storage.database import run_in_transaction
    from sip2_peers import INSTITUTION

    parsed = parse_changes(rules or RULES)
    run_in_transaction(db.session, lambda s: save_rules(s, library_id, parsed, actor(), now))
    form = parse_sip2_settings({"host": "127.0.0.1", "port": sip2_port, "login_user": LOGIN[0],
                                "password": LOGIN[1], "institution": INSTITUTION, "require_pin": False}, None)
    run_in_transaction(db.session, lambda s: save_sip2_settings(s, library_id, form, pepper=PEPPER, actor=actor(),
                                                                now=now))


def platform_id() -> int:
    from sqlalchemy import select

    from kiosk.app.extensions import db
    from kiosk.storage.models import Platform

    return db.session.scalar(select(Platform.id).where(Platform.slug == "legimi"))


# -- figures -------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


@dataclass
class Run:
    latencies: list[float]
    wall: float
    cpu: list[float] = field(default_factory=list)  # client CPU per call (domain only)
    outcomes: Counter = field(default_factory=Counter)  # HTTP only

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def cpu_per_call(self) -> float:
        return sum(self.cpu) / len(self.cpu) if self.cpu else float("nan")


@dataclass
class Figures:
    """Medians over the runs (three, normally) of each run's figure."""

    median: float
    p99: float
    rate: float
    cpu: float
    calls: int
    outcomes: Counter

    @classmethod
    def of(cls, runs: list[Run]) -> "Figures":
        outcomes = Counter()
        for run in runs:
            outcomes.update(run.outcomes)
        return cls(statistics.median(r.median for r in runs), statistics.median(r.p99 for r in runs),
                   statistics.median(r.rate for r in runs), statistics.median(r.cpu_per_call for r in runs),
                   sum(len(r.latencies) for r in runs), outcomes)


def ms(seconds: float) -> str:
    if seconds != seconds:  # nan
        return "—"
    value = seconds * 1e3
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def goal(ratio: float, limit: float) -> str:
    return f"≤ {limit:g}×: {'met' if ratio <= limit else 'missed'}"


# -- domain: issue_code against the raw claim ---------------------------------------------

SQLITE_CLAIM = ("UPDATE codes SET status = 'issued' WHERE id = (SELECT id FROM codes WHERE pool_id = ? "
                "AND status = 'available' ORDER BY id LIMIT 1) RETURNING id, value")
SQLITE_INSERT = ("INSERT INTO issuances (code_id, library_id, platform_id, reader_key, window_start, window_end, "
                 "channel, actor, issued_at, print_count, card_hint, first_timer) "
                 "VALUES (?, ?, ?, ?, ?, ?, 'kiosk', 'bench', ?, 1, ?, 1)")
PG_CLAIM = ("UPDATE codes SET status = 'issued' WHERE id = (SELECT id FROM codes WHERE pool_id = %s "
            "AND status = 'available' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, value")
PG_INSERT = ("INSERT INTO issuances (code_id, library_id, platform_id, reader_key, window_start, window_end, "
             "channel, actor, issued_at, print_count, card_hint, first_timer) "
             "VALUES (%s, %s, %s, %s, %s, %s, 'kiosk', 'bench', %s, 1, %s, true)")


@dataclass
class DomainSetup:
    url: str
    kind: str  # sqlite | postgresql
    floor_library: int
    floor_pool: int
    platform: int


class RawClaim:
    """The floor: one claim transaction with the bare driver, on a connection of its own
    with the PRAGMAs Kodomat's engine sets."""

    def __init__(self, setup: DomainSetup):
        self.setup = setup
        if setup.kind == "sqlite":
            from kiosk.storage.database import SQLITE_BUSY_TIMEOUT_MS

            self.conn = sqlite3.connect(setup.url.removeprefix("sqlite:///"), isolation_level=None,
                                        check_same_thread=False)
            for pragma in (f"busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}", "foreign_keys = ON", "journal_mode = WAL",
                           "synchronous = FULL"):
                self.conn.execute(f"PRAGMA {pragma}")
            self.issued_at = NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            self.window = tuple(day.isoformat() for day in WINDOW)
        else:
            import psycopg

            dsn = setup.url.replace("postgresql+psycopg://", "postgresql://", 1)
            self.conn = psycopg.connect(dsn, autocommit=True)  # BEGIN and COMMIT sent as written below
            self.issued_at = NOW.replace(tzinfo=None)
            self.window = WINDOW

    def __call__(self, card: str) -> None:
        s = self.setup
        key = hmac.new(PEPPER.encode(), card.encode(), hashlib.sha256).hexdigest()
        if s.kind == "sqlite":
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                code_id, _value = conn.execute(SQLITE_CLAIM, (s.floor_pool,)).fetchone()
                conn.execute(SQLITE_INSERT, (code_id, s.floor_library, s.platform, key, *self.window,
                                             self.issued_at, card[-4:]))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        else:
            with self.conn.transaction():  # BEGIN … COMMIT
                code_id, _value = self.conn.execute(PG_CLAIM, (s.floor_pool,)).fetchone()
                self.conn.execute(PG_INSERT, (code_id, s.floor_library, s.platform, key, *self.window,
                                              self.issued_at, card[-4:]))

    def close(self) -> None:
        self.conn.close()


class KodomatIssue:
    """issue_code in run_in_transaction on an engine and Session of the worker's own;
    with_sip2: the library system asked first (ask_before_issuing), as the desk does."""

    def __init__(self, setup: DomainSetup, slug: str, with_sip2: bool):
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from kiosk.storage.database import configure_engine

        self.slug, self.with_sip2 = slug, with_sip2
        self.engine = configure_engine(create_engine(setup.url))
        self.session = Session(self.engine)

    def __call__(self, card: str) -> None:
        from kiosk.domain.issuing import Outcome, issue_code
        from kiosk.storage.database import run_in_transaction
        from kiosk.storage.models import Channel

        options = {}
        if self.with_sip2:
            from kiosk.domain.library_system import ask_before_issuing

            options["answer"] = ask_before_issuing(self.session, self.slug, card, pin=None, pepper=PEPPER, now=NOW)
        result = run_in_transaction(self.session, lambda s: issue_code(
            s, library_slug=self.slug, card_number=card, channel=Channel.KIOSK, actor=actor(), now=NOW,
            pepper=PEPPER, **options))
        if result.outcome is not Outcome.ISSUED:
            raise RuntimeError(f"{self.slug}: {result.outcome} for a new reader: {result}")

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()
        if self.with_sip2:
            from kiosk.sip2 import close_thread_connections

            close_thread_connections()


CARDS = itertools.count(1)


def new_card() -> str:
    return f"{PATRON_PREFIX}{next(CARDS):011d}"


def released_together(work, threads: int, barrier: threading.Barrier) -> float:
    """Runs `work` in that many threads; each waits at the barrier (sized threads + 1)
    after its warm-up, the clock starts when all are there. The wall time."""
    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in running:
        thread.join()
    return time.perf_counter() - started


def domain_run(setup: DomainSetup, path: str, workers: int, calls: int) -> Run:
    """One run: `workers` threads, `calls` timed calls each after WARM_UP untimed."""
    latencies: list[float] = []
    cpu: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []

    def work() -> None:
        doer = None
        mine, mine_cpu = [], []
        try:
            if path == "raw":
                doer = RawClaim(setup)
            else:
                doer = KodomatIssue(setup, path, with_sip2=(path == "rules"))
            for _ in range(WARM_UP):
                doer(new_card())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        barrier.wait()
        try:
            if not errors:
                for _ in range(calls):
                    card = new_card()
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    doer(card)
                    mine_cpu.append(time.thread_time() - started_cpu)
                    mine.append(time.perf_counter() - started)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            if doer is not None:
                doer.close()
            with lock:
                latencies.extend(mine)
                cpu.extend(mine_cpu)

    wall = released_together(work, workers, barrier)
    if errors:
        raise errors[0]
    return Run(latencies, wall, cpu)


PATHS = {"raw": "raw claim transaction (baseline)", "plain": "Kodomat issue_code, no rules, card format",
         "rules": "Kodomat ask_before_issuing + issue_code, rules + SIP2"}


def domain_section(kind: str, url: str, instance: Path, sip2_port: int, sizes: dict, rounds: int,
                   paths: list[str]) -> list[str]:
    from kiosk.app.extensions import db

    need = rounds * (sizes[1] + WARM_UP) + rounds * 16 * (sizes[16] + WARM_UP) + 50
    app = bench_app(url, instance)
    with app.app_context():
        migrate()
        floor_library, floor_pool = library_with_pool("floor", need, WINDOW, NOW)
        library_with_pool("plain", need, WINDOW, NOW)
        rules_library, _ = library_with_pool("rules", need, WINDOW, NOW)
        rules_and_sip2(rules_library, sip2_port, NOW)
        setup = DomainSetup(url, kind, floor_library, floor_pool, platform_id())
        db.session.remove()
        db.engine.dispose()

    lines = []
    for workers in (1, 16):
        runs: dict[str, list[Run]] = {path: [] for path in paths}
        for _ in range(rounds):  # the baseline and Kodomat back to back, each round
            for path in paths:
                runs[path].append(domain_run(setup, path, workers, sizes[workers]))
        raw = Figures.of(runs["raw"])
        for path in paths:
            f = Figures.of(runs[path])
            if path == "raw":
                target = "—"
            elif workers == 1:
                target = goal(f.median / raw.median, 5)
            else:
                target = goal(f.p99 / raw.p99, 3)
            lines.append(f"| {kind} | {workers} | {PATHS[path]} | {ms(f.median)} | {ms(f.p99)} | {f.rate:,.0f} "
                         f"| {ms(f.cpu)} | {f.median / raw.median:.1f}× | {f.p99 / raw.p99:.1f}× "
                         f"| {raw.rate / f.rate:.1f}× | {target} |")
            print(lines[-1], flush=True)
    return lines


# -- HTTP: the kiosk behind gunicorn ---------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving bench/floor_wsgi.py: gthread workers on 127.0.0.1."""

    def __init__(self, url: str, instance: Path, workers: int = 2, threads: int = 8, config: str = ""):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (instance / "config.py").write_text(f"SECRET_KEY = {SECRET!r}\nREADER_PEPPER = {PEPPER!r}\n"
                                            f"KIOSK_BASE_URL = {self.base!r}\n{config}")
        # The server's log goes to a file: a pipe nobody reads would block it once full.
        self.log = instance / "gunicorn.log"
        self.log_file = self.log.open("w")
        env = {**os.environ, "KIOSK_INSTANCE": str(instance), "DATABASE_URL": url,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", str(workers),
             "--threads", str(threads), "--bind", f"127.0.0.1:{self.port}", "--pythonpath", str(BENCH_DIR),
             "--log-level", "warning", "floor_wsgi:app"],
            env=env, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=self.log_file, text=True)
        self.workers = workers
        self.scans = 0  # kiosk scans this server has answered
        self._lock = threading.Lock()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn stopped: {self.log.read_text()[-2000:]}")
            try:
                if request(self.port, "GET", "/bench/noop")[0] == 200 and len(self.worker_pids()) == workers:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def counted(self, scans: int) -> None:
        with self._lock:
            self.scans += scans

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    pids.append(int(entry.name))
        return pids

    @staticmethod
    def rss_kib(pid: int) -> int:
        """Resident memory (VmRSS), shared pages counted in every process that maps them."""
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    @staticmethod
    def pss_kib(pid: int) -> int:
        """Proportional set size: shared pages split between the processes sharing them."""
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


def request(port: int, method: str, path: str, form: dict | None = None, cookies: dict | None = None,
            headers: dict | None = None) -> tuple[int, dict, str]:
    """One request on a connection of its own (as nginx talks to gunicorn by default):
    (status, cookies set, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        sent = {"Connection": "close", **(headers or {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        conn.request(method, path, body, sent)
        answer = conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        jar = SimpleCookie()
        for header in answer.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return answer.status, {name: morsel.value for name, morsel in jar.items()}, text
    finally:
        conn.close()


@dataclass
class KioskBrowser:
    """An enrolled kiosk's browser: its cookies and its form token."""

    cookies: dict
    csrf: str
    uses: deque = field(default_factory=deque)  # when its last scans were answered (monotonic)


def enrol_over_http(port: int, token: str) -> KioskBrowser:
    """The enrolment link opened and its button pressed, as an admin does. The form token
    is the session's, so the enrolment page's serves the kiosk's scans too."""
    status, cookies, page = request(port, "GET", f"/kiosk/enrol/{token}")
    assert status == 200, (status, page[:300])
    csrf = TOKEN.search(page)[1]
    status, more, page = request(port, "POST", f"/kiosk/enrol/{token}", {"csrf_token": csrf}, cookies)
    assert status == 302 and "kodomat_kiosk" in more, (status, page[:300])
    cookies.update(more)
    return KioskBrowser(cookies, csrf)


def enrol_many(port: int, tokens: list[str], threads: int = 8) -> list[KioskBrowser]:
    kiosks: list[KioskBrowser | None] = [None] * len(tokens)
    errors = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, len(tokens), threads):
                kiosks[n] = enrol_over_http(port, tokens[n])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return kiosks


def enrolment_tokens(library_id: int, count: int) -> list[str]:
    from kiosk.app.extensions import db
    from kiosk.domain.clock import utcnow
    from kiosk.domain.kiosks import enrol_kiosk
    from kiosk.storage.database import run_in_transaction

    return [run_in_transaction(db.session, lambda s: enrol_kiosk(
        s, library_id=library_id, name=f"K{n}", actor=actor(), now=utcnow())).token for n in range(count)]


class KioskRing:
    """Kiosks handed to clients in turn, each at most KIOSK_USES_PER_MINUTE scans a minute
    (a kiosk pauses after six codes a minute), one client at a time."""

    def __init__(self, kiosks: list[KioskBrowser]):
        self.free = deque(kiosks)
        self.lock = threading.Lock()
        self.waited = 0.0

    def acquire(self) -> KioskBrowser:
        started = time.monotonic()
        while True:
            with self.lock:
                now = time.monotonic()
                for _ in range(len(self.free)):
                    kiosk = self.free.popleft()
                    while kiosk.uses and now - kiosk.uses[0] > 61:
                        kiosk.uses.popleft()
                    if len(kiosk.uses) < KIOSK_USES_PER_MINUTE:
                        self.waited += now - started
                        return kiosk
                    self.free.append(kiosk)
            time.sleep(0.02)

    def release(self, kiosk: KioskBrowser) -> None:
        with self.lock:
            kiosk.uses.append(time.monotonic())  # answered: the server counted it before now
            self.free.append(kiosk)


def outcome_of(status: int, page: str) -> str:
    if status >= 500:
        return f"error {status}"
    if 'id="slip-code"' in page:
        return "slip shown"
    if "Chwila przerwy" in page:
        return "paused"
    if status == 200 and "refused" in page:
        return "refusal"
    return f"other {status}"


def scan(server: Server, kiosk: KioskBrowser, card: str) -> tuple[int, str]:
    status, _, page = request(server.port, "POST", "/kiosk/scan",
                              {"card": card, "entry": "scan", "lang": "pl", "csrf_token": kiosk.csrf},
                              kiosk.cookies, {"HX-Request": "true"})
    return status, page


def http_run(server: Server, ring: KioskRing | None, clients: int, per_client: int, action: str) -> Run:
    """`clients` threads, `per_client` requests each: scans of new cards ("scan") or the no-op."""
    latencies: list[float] = []
    outcomes: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def work() -> None:
        mine, seen = [], Counter()
        barrier.wait()
        try:
            for _ in range(per_client):
                kiosk = ring.acquire() if action == "scan" else None
                started = time.perf_counter()
                try:
                    if action == "scan":
                        status, page = scan(server, kiosk, new_card())
                        seen[outcome_of(status, page)] += 1
                    else:
                        status, _, _ = request(server.port, "GET", "/bench/noop")
                        seen["ok" if status == 200 else f"error {status}"] += 1
                except (OSError, http.client.HTTPException) as failed:  # no answer: counted, and on
                    seen[f"error: {type(failed).__name__}"] += 1
                finally:
                    mine.append(time.perf_counter() - started)
                    if kiosk is not None:
                        ring.release(kiosk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            seen["exception"] += 1
        finally:
            with lock:
                latencies.extend(mine)
                outcomes.update(seen)

    wall = released_together(work, clients, barrier)
    if action == "scan":
        server.counted(len(latencies))
    if errors:
        raise errors[0]
    return Run(latencies, wall, outcomes=outcomes)


def this_months_rules() -> dict:
    """The rule set; the release day falls back to the window's start on the few days
    of a month before its first working day (the kiosk uses today's date)."""
    from kiosk.domain.clock import local_day, month_window, utcnow
    from kiosk.domain.working_days import first_working_day_from

    today = local_day(utcnow())
    start = month_window(today.year, today.month)[0]
    if first_working_day_from(start) > today:
        return {**RULES, "release_day": "window_start"}
    return RULES


@dataclass
class HttpSetup:
    kiosks: list[str]  # tokens of the rules + SIP2 library's kiosks
    same_card_kiosks: list[str]  # tokens, library "checks"
    pause_kiosks: list[str]


def http_prepare(url: str, instance: Path, sip2_port: int, pool_size: int, kiosks: int) -> HttpSetup:
    from kiosk.app.extensions import db
    from kiosk.domain.clock import local_day, month_window, utcnow

    today = local_day(utcnow())
    window = month_window(today.year, today.month)
    app = bench_app(url, instance)
    with app.app_context():
        migrate()
        library, _ = library_with_pool("http", pool_size, window, utcnow())
        rules_and_sip2(library, sip2_port, utcnow(), this_months_rules())
        # The checks: a library without rules (no lock per reader to hide a race), card format only.
        checks, _ = library_with_pool("checks", 600, window, utcnow())
        setup = HttpSetup(enrolment_tokens(library, kiosks), enrolment_tokens(checks, 16),
                          enrolment_tokens(checks, 3))
        db.session.remove()
        db.engine.dispose()
    return setup


def http_section(server: Server, ring: KioskRing, sizes: dict, rounds: int, database: str) -> list[str]:
    lines = []
    for clients in (1, 8, 16):
        runs: dict[str, list[Run]] = {"noop": [], "scan": []}
        for _ in range(rounds):
            runs["noop"].append(http_run(server, None, clients, sizes[clients], "noop"))
            runs["scan"].append(http_run(server, ring, clients, sizes[clients], "scan"))
        noop, scanned = Figures.of(runs["noop"]), Figures.of(runs["scan"])
        target = {1: goal(scanned.median / noop.median, 3), 8: goal(scanned.median / noop.median, 5)}.get(clients, "—")
        answers = ", ".join(f"{name}: {count}" for name, count in sorted(scanned.outcomes.items()))
        for name, f, ratio in (("GET /bench/noop (baseline)", noop, "1.0×"),
                               ("POST /kiosk/scan, new card", scanned, f"{scanned.median / noop.median:.1f}×")):
            lines.append(f"| {database} | {clients} | {name} | {ms(f.median)} | {ms(f.p99)} | {f.rate:,.0f} "
                         f"| {ratio} | {f.p99 / noop.p99:.1f}× | {noop.rate / f.rate:.1f}× "
                         f"| {target if f is scanned else '—'} | {answers if f is scanned else f.calls} |")
            print(lines[-1], flush=True)
    return lines


def memory_section(server: Server, ring: KioskRing, target: int) -> list[str]:
    before = {pid: server.rss_kib(pid) for pid in server.worker_pids()}
    outcomes = Counter()
    while server.scans < target:
        per_client = max(1, min(50, (target - server.scans) // 16))
        clients = 16 if target - server.scans >= 16 else target - server.scans
        outcomes.update(http_run(server, ring, clients, per_client, "scan").outcomes)
    after = {pid: server.rss_kib(pid) for pid in server.worker_pids()}
    pss = sum(server.pss_kib(pid) for pid in after)
    master = server.rss_kib(server.process.pid)
    total = sum(after.values())
    answers = ", ".join(f"{name}: {count}" for name, count in sorted(outcomes.items()))
    return [f"| {server.scans:,} | {len(after)} | {sum(before.values()) / 1024:.0f} MiB | **{total / 1024:.0f} MiB** "
            f"| {max(after.values()) / 1024:.0f} MiB | {pss / 1024:.0f} MiB | {master / 1024:.0f} MiB "
            f"| {goal(total / 1024, 100).replace('×', ' MiB')} | {answers} |"]


def at_once(jobs: list) -> list:
    """Runs the callables in threads released together; their results in order."""
    results = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def work(n: int) -> None:
        barrier.wait()
        try:
            results[n] = jobs[n]()
        except BaseException as exc:  # noqa: BLE001
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def checks_section(server: Server, url: str, setup: HttpSetup, same_card_rounds: int) -> list[str]:
    from sqlalchemy import create_engine, text

    from kiosk.domain.kiosks import CODES_SHOWN
    from kiosk.domain.readers import normalise_card, reader_key

    engine = create_engine(url)
    lines = []
    # (a) one card, 16 kiosks, at once; several cards one after another.
    kiosks = enrol_many(server.port, setup.same_card_kiosks)
    shown = counted = issuances = 0
    answers = Counter()
    for _ in range(same_card_rounds):
        card = f"SAME{uuid.uuid4().hex[:10].upper()}"
        results = at_once([lambda k=k: scan(server, k, card) for k in kiosks])
        codes = set()
        for result in results:
            if isinstance(result, BaseException):
                answers["exception"] += 1
                continue
            status, page = result
            answers[outcome_of(status, page)] += 1
            if (match := SLIP_CODE.search(page)) is not None:
                shown += 1
                codes.add(re.sub(r"[\s-]", "", match[1]))
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT i.print_count FROM issuances i JOIN libraries l ON l.id = i.library_id "
                "WHERE l.slug = 'checks' AND i.reader_key = :key"),
                {"key": reader_key(PEPPER, normalise_card(card))}).all()
        issuances += len(rows)
        counted += sum(row[0] for row in rows)
        if len(codes) > 1:
            answers["different codes for one card"] += 1
    lines.append(f"| (a) 1 card × 16 kiosks at once, {same_card_rounds} cards | slips shown: {shown}; "
                 f"print_count: {counted}; issuances: {issuances} (expected {same_card_rounds}) "
                 f"| **lost counts: {shown - counted}** | "
                 + ", ".join(f"{name}: {count}" for name, count in sorted(answers.items())) + " |")
    print(lines[-1], flush=True)
    # (b) 32 new cards at once from one kiosk; another kiosk each round.
    past = handed = 0
    answers = Counter()
    for token in setup.pause_kiosks:
        kiosk = enrol_over_http(server.port, token)
        results = at_once([lambda: scan(server, kiosk, f"NEW{uuid.uuid4().hex[:10].upper()}") for _ in range(32)])
        slips = 0
        for result in results:
            if isinstance(result, BaseException):
                answers["exception"] += 1
                continue
            outcome = outcome_of(*result)
            answers[outcome] += 1
            slips += outcome == "slip shown"
        handed += slips
        past += max(0, slips - CODES_SHOWN.count)
    lines.append(f"| (b) 32 new cards at once from 1 kiosk, {len(setup.pause_kiosks)} kiosks in turn "
                 f"| codes handed out: {handed} (limit {CODES_SHOWN.count} a kiosk) "
                 f"| **codes past the pause: {past}** | "
                 + ", ".join(f"{name}: {count}" for name, count in sorted(answers.items())) + " |")
    print(lines[-1], flush=True)
    engine.dispose()
    return lines


# -- the whole run -------------------------------------------------------------------------

def main() -> None:
    if "--sip2-peer" in sys.argv:
        sip2_peer_main()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer calls and scans (a smoke run, figures rough)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--kiosks", type=int, default=0, help="kiosks to enrol for the HTTP scans")
    args = parser.parse_args()
    # Stopped (by `timeout`, say): the server, the SIP2 peer and the database go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    rounds = 3
    if args.quick:
        domain_sizes, http_sizes, paths, memory_target = {1: 30, 16: 6}, {1: 20, 8: 6, 16: 4}, ["raw", "rules"], 1_000
    else:
        domain_sizes, http_sizes, memory_target = {1: 120, 16: 20}, {1: 60, 8: 25, 16: 15}, 10_000
        paths = ["raw", "plain", "rules"]
    kiosk_count = args.kiosks or (150 if args.quick else 700)

    pg_env = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    postgres = Postgres(pg_env) if pg_env else None
    if postgres:
        try:
            postgres.create()
        except Exception as error:  # noqa: BLE001 - never fall back to the database the URL names
            print(f"(PostgreSQL left out: cannot create the database {DATABASE_NAME}: {error})")
            postgres = None
    print(f"# bench/floor.py{' --quick' if args.quick else ''}: {os.cpu_count()} cores; Python "
          f"{sys.version.split()[0]}; SQLite {sqlite3.sqlite_version}"
          f"{f'; PostgreSQL {postgres.version()} (database {DATABASE_NAME})' if postgres else '; no PostgreSQL'}; "
          f"medians of {rounds} runs, baseline and Kodomat back to back in each")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Sip2Peer() as peer:
        folder = Path(tmp)
        try:
            if "domain" in only:
                print()
                print(f"## Domain issue ({domain_sizes[1]} calls with 1 worker, {domain_sizes[16]} per worker with 16;"
                      f" new readers; rules: {', '.join(f'{k}={v}' for k, v in RULES.items())})")
                print()
                print("| database | workers | path | median ms | p99 ms | calls/s | client CPU ms/call "
                      "| median ÷ raw | p99 ÷ raw | raw calls/s ÷ calls/s | goal |")
                print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
                (folder / "sqlite").mkdir()
                domain_section("sqlite", f"sqlite:///{folder / 'sqlite' / 'floor.db'}", folder / "sqlite",
                               peer.port, domain_sizes, rounds, paths)
                if postgres:
                    (folder / "pg").mkdir()
                    domain_section("postgresql", postgres.url, folder / "pg", peer.port, domain_sizes, rounds, paths)
                print(f"\n(domain: {time.perf_counter() - started:.0f} s)", flush=True)
            if set(only) & {"http", "memory", "checks"}:
                instance = folder / "server"
                instance.mkdir()
                url = postgres.url if postgres else f"sqlite:///{instance / 'kodomat.db'}"
                database = "postgresql" if postgres else "sqlite"
                if postgres and "domain" in only:  # a clean database for the server
                    postgres.create()
                setup = http_prepare(url, instance, peer.port, memory_target + 2_000, kiosk_count)
                server = Server(url, instance)
                try:
                    ring = KioskRing(enrol_many(server.port, setup.kiosks))
                    print(f"\n(server set up, {len(setup.kiosks)} kiosks enrolled: "
                          f"{time.perf_counter() - started:.0f} s)", flush=True)
                    http_run(server, ring, 16, 4, "scan")  # warm-up: every worker thread's first scan
                    http_run(server, None, 16, 4, "noop")
                    if "http" in only:
                        print()
                        print(f"## Kiosk scan over HTTP ({database}, gunicorn gthread 2 workers × 8 threads; "
                              f"library with the rules and SIP2, no PIN; {len(setup.kiosks)} kiosks in turn)")
                        print()
                        print("| database | clients | request | median ms | p99 ms | requests/s | median ÷ no-op "
                              "| p99 ÷ no-op | no-op/s ÷ scans/s | goal | answers (scans) / requests |")
                        print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|", flush=True)
                        http_section(server, ring, http_sizes, rounds, database)
                        print(f"\n(HTTP: {time.perf_counter() - started:.0f} s)", flush=True)
                        if ring.waited > 1:
                            print(f"\n(clients waited {ring.waited:.1f} s in all for a kiosk out of its pause; "
                                  f"more --kiosks would avoid it)")
                    if "memory" in only:
                        print()
                        print(f"## Server memory (gunicorn, {database})")
                        print()
                        print("| scans served | workers | workers' RSS after warm-up | workers' RSS (sum) "
                              "| largest worker | workers' PSS (sum) | master's RSS | goal (RSS sum) "
                              "| answers to the scans of this part |")
                        print("|---:|---:|---:|---:|---:|---:|---:|---|---|")
                        print(memory_section(server, ring, memory_target)[0], flush=True)
                        print(f"\n(memory: {time.perf_counter() - started:.0f} s)", flush=True)
                    if "checks" in only:
                        print()
                        print(f"## Concurrency checks ({database}, gunicorn, real HTTP)")
                        print()
                        print("| check | counts | result | answers |")
                        print("|---|---|---|---|", flush=True)
                        checks_section(server, url, setup, same_card_rounds=2 if args.quick else 5)
                finally:
                    server.stop()
                    lines = server.log_lines()
                    print(f"\n(gunicorn's log: {len(lines)} lines{', the last:' if lines else ''})")
                    for line in lines[-12:]:
                        print(f"    {line[:300]}")
        finally:
            if postgres:
                postgres.drop()
    print()
    print(f"whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
