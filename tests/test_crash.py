"""Crashes (issue 15): the server killed with SIGKILL at random moments while
clients issue codes over HTTP, started again on the same database, the load
carried on; an import killed in its transaction. Then what is stored must hold:

- no code in two live issuances, no reader with two in a window, no code marked
  issued without its issuance (nor the other way round);
- every code a client was handed is in a live issuance of that card's reader, and
  one card was only ever handed one code;
- each issuance's print_count is the hand-overs logged: its issue event and one
  reprint event per slip shown again, and never fewer than the clients saw;
- a pool has all its codes or is not there, and an import killed midway can be run
  again; the card register is the last whole import's, never half of one.

On SQLite the server is `kiosk serve` (waitress, the single-PC server), on
PostgreSQL gunicorn with gthread workers (the deployment's): tests/servers.py.
The clients: two API clients (a key, JSON), a desk signed in, a kiosk ring;
a third of their cards were served before (reprints). The imports: `kiosk
import-codes` of 100,000 codes and `kiosk import-cards`, killed once their write
transaction is open. The kill moments are random: the seed is printed, and
CRASH_SEED=<seed> repeats them. A last test shows the checks see each kind of
broken state they name (on a SQLite copy whose index may be dropped).
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpers import TOKEN, TEST, codes, import_file, issue, make_library, make_pool, this_month, write
from kiosk.app.extensions import db
from kiosk.domain.accounts import create_user
from kiosk.domain.api_keys import create_key
from kiosk.domain.clock import utcnow
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.registry import import_cards, prepare_cards
from kiosk.storage.models import CardRecord, Code, Event, Issuance, Pool
from servers import Served, command_env, kiosk_command

SERVERS = {"sqlite": "waitress", "postgresql": "gunicorn"}
KILLS = 2  # kill/start cycles under load
LOAD_SECONDS = (1.0, 2.5)  # the load before each kill: a random moment in this range
POOL = 4000
IMPORTED_CODES = 100_000
OLD_REGISTER, NEW_REGISTER = 2_000, 20_000
SLIP_CODE = re.compile(r'id="slip-code">([^<]*)<')
CUT = (OSError, http.client.HTTPException)  # a connection refused, reset or cut mid-answer


def say(request, line: str) -> None:
    """A line in the test's output, passing or failing (the seed, the figures)."""
    print(line)
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"[{request.node.name}] {line}")


@pytest.fixture
def rng(request) -> random.Random:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(2**32))
    say(request, f"seed {seed} (CRASH_SEED={seed} repeats the kill moments)")
    return random.Random(seed)


@pytest.fixture(scope="module", autouse=True)
def file_duration(request):
    began = time.monotonic()
    yield
    say(request, f"tests/test_crash.py took {time.monotonic() - began:.1f} s")


# -- the clients: each answer with a code is written down ------------------------------------

class Ledger:
    """What the clients were handed: the codes each card got, how many times a code
    was shown, each channel's outcomes; the requests under way (cut by a kill)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cards: list[str] = []
        self.numbers = itertools.count(1)
        self.got: dict[str, set[str]] = defaultdict(set)
        self.shown: Counter = Counter()
        self.outcomes: Counter = Counter()
        self.in_flight = 0

    def card(self, rng: random.Random) -> str:
        with self.lock:
            if self.cards and rng.random() < 0.33:
                return rng.choice(self.cards)  # a reader who came before: a reprint
            card = f"5{next(self.numbers):010d}"
            self.cards.append(card)
            return card

    def handed(self, channel: str, card: str, code: str | None, outcome: str) -> None:
        with self.lock:
            self.outcomes[f"{channel}:{outcome}"] += 1
            if code:
                self.got[card].add(code)
                self.shown[card] += 1

    def codes_handed(self) -> int:
        with self.lock:
            return sum(self.shown.values())


def shown_code(page: str) -> str | None:
    match = SLIP_CODE.search(page)
    return re.sub(r"[\s-]", "", match[1]) if match else None


class Client(threading.Thread):
    """Issues until stopped; a cut connection is counted and tried again a moment later."""

    def __init__(self, channel: str, served: Served, ledger: Ledger, stop: threading.Event, seed: int, ask):
        super().__init__(daemon=True)
        self.channel, self.served, self.ledger, self.stop, self.ask = channel, served, ledger, stop, ask
        self.rng = random.Random(seed)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                card = self.ledger.card(self.rng)
                with self.ledger.lock:
                    self.ledger.in_flight += 1
                try:
                    code, outcome = self.ask(card)
                except CUT:
                    code, outcome = None, "cut"
                finally:
                    with self.ledger.lock:
                        self.ledger.in_flight -= 1
                self.ledger.handed(self.channel, card, code, outcome)
                if outcome == "cut":
                    time.sleep(0.2)  # the server is down: let it start
        except BaseException as exc:  # noqa: BLE001 - failed on in the test
            self.error = exc


def api_asker(served: Served, secret: str):
    def ask(card: str):
        status, _, body = served.request("POST", "/api/v1/libraries/lib/issuances", json_body=json.dumps(
            {"card": card}), headers={"Authorization": f"Bearer {secret}"}, timeout=20)
        answer = json.loads(body) if body.startswith("{") else {}
        if status in (200, 201):
            return answer["code"], answer["outcome"]
        return None, str(answer.get("type", status)).rsplit("/", 1)[-1]
    return ask


def desk_asker(served: Served, username: str, password: str):
    status, cookies, page = served.request("GET", "/login")
    status, more, _ = served.request("POST", "/login", {"username": username, "password": password,
                                                        "csrf_token": TOKEN.search(page)[1]}, cookies)
    assert status == 302, "the desk could not sign in"
    cookies.update(more)
    status, more, page = served.request("GET", "/desk/lib/", cookies=cookies)
    assert status == 200, page[:300]
    cookies.update(more)
    csrf = TOKEN.search(page)[1]

    def ask(card: str):
        status, _, page = served.request("POST", "/desk/lib/issue", {"card": card, "csrf_token": csrf}, cookies,
                                         {"HX-Request": "true"}, timeout=20)
        code = shown_code(page) if status == 200 else None
        return code, "slip" if code else str(status)
    return ask


def kiosk_asker(served: Served, library, count: int):
    """Scans at a ring of kiosks (each shows a few codes a minute, then pauses)."""
    kiosks = [served.enrolled(library) for _ in range(count)]
    turn = itertools.count()

    def ask(card: str):
        status, page = kiosks[next(turn) % count].scan(card, timeout=20)
        code = shown_code(page) if status == 200 else None
        return code, "slip" if code else ("pause" if "Chwila przerwy" in page else str(status))
    return ask


# -- what must hold -----------------------------------------------------------------------

def broken_invariants(session: Session, pepper: str, ledger: Ledger | None = None) -> list[str]:
    """Every invariant the stored state breaks, in words ([] when all hold)."""
    broken = []
    live = Issuance.voided_at.is_(None)
    for code_id, n in session.execute(select(Issuance.code_id, func.count()).where(live)
                                      .group_by(Issuance.code_id).having(func.count() > 1)):
        broken.append(f"code {code_id} is in {n} live issuances")
    for key, window, n in session.execute(
            select(Issuance.reader_key, Issuance.window_start, func.count()).where(live)
            .group_by(Issuance.reader_key, Issuance.library_id, Issuance.platform_id, Issuance.window_start,
                      Issuance.window_end).having(func.count() > 1)):
        broken.append(f"reader {key[:8]}… has {n} live issuances in the window from {window}")
    issued = set(session.scalars(select(Code.id).where(Code.status == "issued")))
    handed = set(session.scalars(select(Issuance.code_id).where(live)))
    if issued - handed:
        broken.append(f"{len(issued - handed)} codes marked issued with no live issuance (lost codes)")
    if handed - issued:
        broken.append(f"{len(handed - issued)} live issuances of codes not marked issued")

    # print_count: one for the issue (or the replacement), one per reprint logged.
    logged: Counter = Counter()
    first: Counter = Counter()
    for kind, details in session.execute(select(Event.kind, Event.details)
                                         .where(Event.kind.in_(("issue", "replace", "reprint")))):
        issuance_id = json.loads(details)["issuance_id"]
        logged[issuance_id] += 1
        if kind != "reprint":
            first[issuance_id] += 1
    rows = session.execute(select(Issuance.id, Issuance.print_count, Issuance.reader_key, Code.value)
                           .join(Code, Code.id == Issuance.code_id).where(live)).all()
    for row in rows:
        if first[row.id] != 1:
            broken.append(f"issuance {row.id} has {first[row.id]} issue events")
        if row.print_count != logged[row.id]:
            broken.append(f"issuance {row.id}: print_count {row.print_count}, hand-overs logged {logged[row.id]}")

    for pool_id, expected, stored in session.execute(
            select(Pool.id, Pool.code_count, func.count(Code.id)).outerjoin(Code, Code.pool_id == Pool.id)
            .group_by(Pool.id, Pool.code_count)):
        if stored != expected:
            broken.append(f"pool {pool_id} has {stored} of its {expected} codes")
    imports = Counter(json.loads(d)["pool_id"] for d in session.scalars(select(Event.details)
                                                                       .where(Event.kind == "import")))
    for pool_id in session.scalars(select(Pool.id)):
        if imports[pool_id] != 1:
            broken.append(f"pool {pool_id} has {imports[pool_id]} import events")
    if set(imports) - set(session.scalars(select(Pool.id))):
        broken.append("an import logged for a pool that is not there")

    if ledger is not None:
        by_code = {row.value: row for row in rows}
        for card, got in ledger.got.items():
            if len(got) != 1:
                broken.append(f"card …{card[-4:]} was handed {len(got)} codes: {sorted(got)}")
            key = reader_key(pepper, normalise_card(card))
            for code in got:
                row = by_code.get(code)
                if row is None or row.reader_key != key:
                    broken.append(f"code {code}, handed to card …{card[-4:]}, is in no live issuance of its reader")
                elif row.print_count < ledger.shown[card]:
                    broken.append(f"code {code} was shown {ledger.shown[card]} times, print_count "
                                  f"{row.print_count}: counts lost")
    return broken


# -- the server killed under load ------------------------------------------------------------

def test_the_server_killed_under_load_loses_nothing_and_doubles_nothing(app, backend, tmp_path, rng, request):
    began = time.monotonic()
    library = make_library("lib")
    make_pool(library, codes("LOAD", POOL), this_month())
    secret = write(lambda s: create_key(s, library_id=library.id, name="sowa", per_minute=100_000, actor=TEST,
                                        now=utcnow())).secret
    _user, password = write(lambda s: create_user(s, username="desk-lib", role="desk", library_id=library.id,
                                                  actor=TEST, now=utcnow()))
    db.session.commit()
    served = Served(app, tmp_path, SERVERS[backend], workers=2, threads=8)
    ledger, stop = Ledger(), threading.Event()
    try:
        askers = [("api", api_asker(served, secret)), ("api", api_asker(served, secret)),
                  ("desk", desk_asker(served, "desk-lib", password)), ("kiosk", kiosk_asker(served, library, 6))]
        db.session.rollback()  # hold nothing while the server works
        clients = [Client(channel, served, ledger, stop, rng.randrange(2**32), ask) for channel, ask in askers]
        for client in clients:
            client.start()
        handed, cut_at_kill = [], []
        for _cycle in range(KILLS):
            before = ledger.codes_handed()
            time.sleep(rng.uniform(*LOAD_SECONDS))
            handed.append(ledger.codes_handed() - before)
            cut_at_kill.append(ledger.in_flight)
            served.kill()
            time.sleep(rng.uniform(0, 0.5))
            served.start()
        before = ledger.codes_handed()
        time.sleep(LOAD_SECONDS[0])
        handed.append(ledger.codes_handed() - before)
        stop.set()
        for client in clients:
            client.join(timeout=30)
    finally:
        stop.set()
        served.stop()

    say(request, f"{SERVERS[backend]} killed {KILLS}×, requests under way at each kill {cut_at_kill}; "
                 f"codes handed between kills {handed}; {dict(sorted(ledger.outcomes.items()))}; starts took "
                 f"{[round(t, 1) for t in served.starts]} s; "
                 f"{time.monotonic() - began:.1f} s")
    assert [c.error for c in clients if c.error or c.is_alive()] == []
    assert all(handed), f"a server started again served no code: {handed}"
    assert sum(cut_at_kill) > 0, "no kill came while a request was under way"
    assert sum(1 for card, n in ledger.shown.items() if n > 1) > 0, "no reprint was shown"
    assert {channel.split(":")[0] for channel in ledger.outcomes if channel.endswith((":issued", ":slip"))} == \
        {"api", "desk", "kiosk"}, "a channel handed out no code"
    db.session.rollback()  # what the servers wrote
    assert broken_invariants(db.session, app.config["READER_PEPPER"], ledger) == []


# -- an import killed in its transaction ---------------------------------------------------

def write_codes_file(path: Path, prefix: str, count: int) -> Path:
    path.write_text("Kod\n" + "".join(f"{value}\n" for value in codes(prefix, count)))
    return path


def write_cards_file(path: Path, first: int, count: int) -> Path:
    path.write_text("".join(f"{first + n}\n" for n in range(count)))
    return path


def in_transaction_probe(app, backend: str, application_name: str):
    """A function: is the command's write transaction open (and has it written)?"""
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if backend == "sqlite":
        path = url.removeprefix("sqlite:///")

        def holds_write_lock() -> bool:
            probe = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError:  # database is locked: the import is in its transaction
                return True
            finally:
                probe.close()
        return holds_write_lock

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)

    def has_written() -> bool:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                "AND backend_xid IS NOT NULL", (application_name,)).fetchone()[0] > 0
    return has_written


def with_application_name(url: str, name: str) -> str:
    return url if url.startswith("sqlite") else f"{url}{'&' if '?' in url else '?'}application_name={name}"


def run_killed(argv: list[str], env: dict, in_transaction, rng: random.Random, spread: float) -> tuple[bool, str]:
    """Runs the command; once its transaction is open, SIGKILLs it after a random
    moment of up to `spread` seconds. (killed in its transaction?, what it said)."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + 60
    seen = False
    while process.poll() is None and time.monotonic() < deadline:
        if in_transaction():
            seen = True
            break
        time.sleep(0.01)
    if seen:
        time.sleep(rng.uniform(0, spread))
    finished = process.poll() is not None
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    said = process.communicate()[0]
    return seen and not finished, said


def import_codes_argv(path: Path) -> list[str]:
    return kiosk_command("import-codes", str(path), "--library", "lib", "--month", f"{this_month()[0]:%Y-%m}")


def pool_state(prefix: str) -> str:
    """"complete", "absent", or what is wrong, for the pool of the file {prefix}.csv."""
    db.session.rollback()
    stored = db.session.scalar(select(func.count()).select_from(Code).where(Code.value.like(f"{prefix}%")))
    pools = db.session.execute(select(Pool.id, Pool.code_count).where(Pool.source_filename == f"{prefix}.csv")).all()
    if stored == 0 and not pools:
        return "absent"
    if stored == IMPORTED_CODES and [p.code_count for p in pools] == [IMPORTED_CODES]:
        return "complete"
    return f"half: {stored} codes, pools {pools}"


def register_state() -> tuple[int, int | None]:
    """(cards in the register, the count the last card import logged)."""
    db.session.rollback()
    count = db.session.scalar(select(func.count()).select_from(CardRecord))
    last = db.session.scalar(select(Event.details).where(Event.kind == "import_cards").order_by(Event.id.desc())
                             .limit(1))
    return count, json.loads(last)["count"] if last else None


def import_cards_in_process(library_id: int, path: Path, pepper: str) -> None:
    """A card register imported as `kiosk import-cards` does, in this process."""
    prepared = prepare_cards(path.read_bytes(), card_pattern=None, check_digit=None, pepper=pepper)
    write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=TEST, now=utcnow()))


def test_an_import_killed_in_its_transaction_leaves_all_or_nothing(app, tmp_path, rng, request):
    backend = "sqlite" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") else "postgresql"
    began = time.monotonic()
    library = make_library("lib")
    library_id, pepper = library.id, app.config["READER_PEPPER"]
    name = f"crash_{uuid.uuid4().hex[:8]}"
    env = command_env(app, tmp_path / "instance",
                      DATABASE_URL=with_application_name(app.config["SQLALCHEMY_DATABASE_URI"], name))
    probe = in_transaction_probe(app, backend, name)
    spread = 0.2 if backend == "sqlite" else 0.5  # well inside the transaction's length
    db.session.remove()  # hold no connection while the commands work

    # Two kills at two random moments; one that came after the commit proves
    # nothing, so another file then, up to four.
    attempts, absent = [], None
    for prefix in ("KILLA", "KILLB", "KILLC", "KILLD"):
        path = write_codes_file(tmp_path / f"{prefix}.csv", prefix, IMPORTED_CODES)
        killed, said = run_killed(import_codes_argv(path), env, probe, rng, spread)
        state = pool_state(prefix)
        attempts.append((prefix, killed, state))
        assert state in ("complete", "absent"), f"{prefix}: {state} after the kill ({said[-500:]})"
        absent = path if state == "absent" else absent
        if absent and len(attempts) >= 2:
            break
    assert absent, f"no kill came inside an import's transaction: {attempts}"
    import_file(library, absent.read_bytes(), window=this_month(), filename=absent.name)  # the import run again
    assert pool_state(absent.stem) == "complete"

    old = write_cards_file(tmp_path / "old.csv", 10_000_000_000, OLD_REGISTER)
    new = write_cards_file(tmp_path / "new.csv", 20_000_000_000, NEW_REGISTER)
    cards, registers = kiosk_command("import-cards", str(new), "--library", "lib"), []
    for _attempt in range(3):
        import_cards_in_process(library_id, old, pepper)
        killed, said = run_killed(cards, env, probe, rng, spread / 4)  # a fifth of the rows
        register = register_state()
        registers.append((killed, register[0]))
        assert register in ((OLD_REGISTER, OLD_REGISTER), (NEW_REGISTER, NEW_REGISTER)), (register, said[-500:])
        if register[0] == OLD_REGISTER:
            break
    assert register[0] == OLD_REGISTER, f"no kill came inside the register import's transaction: {registers}"
    import_cards_in_process(library_id, new, pepper)
    assert register_state() == (NEW_REGISTER, NEW_REGISTER)

    say(request, f"codes imports (prefix, killed in its transaction, state after): {attempts}; card register "
                 f"(killed in its transaction, cards after): {registers}; "
                 f"{time.monotonic() - began:.1f} s")
    assert broken_invariants(db.session, pepper) == []


# -- the checks themselves: a broken state is seen ----------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # a copy of its own: its indexes may be dropped
def test_the_checks_see_every_kind_of_broken_state(app):
    pepper = app.config["READER_PEPPER"]
    make_pool(make_library("lib"), codes("SELF", 10), this_month())
    now = utcnow()
    first = {card: issue(app, card, now).code for card in ("50000000001", "50000000002", "50000000003")}
    assert issue(app, "50000000001", now).code == first["50000000001"]  # a reprint
    ledger = Ledger()
    for card, code in first.items():
        ledger.handed("api", card, code, "issued")
    ledger.handed("api", "50000000001", first["50000000001"], "reprint")
    db.session.commit()
    assert broken_invariants(db.session, pepper, ledger) == []  # the state as it should be

    ledger.handed("desk", "50000000002", "SELF000010", "slip")  # a second code for one card
    ledger.handed("kiosk", "50000000004", "NOSUCHCODE", "slip")  # a code nobody stored
    for _ in range(3):  # shown more often than counted
        ledger.handed("api", "50000000003", first["50000000003"], "reprint")
    key = reader_key(pepper, normalise_card("50000000001"))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE issuances SET print_count = print_count + 1 WHERE card_hint = '0002'")
        conn.exec_driver_sql("UPDATE codes SET status = 'issued' WHERE value = 'SELF000008'")  # a lost code
        conn.exec_driver_sql("DELETE FROM codes WHERE value = 'SELF000009'")  # a half pool
        conn.exec_driver_sql("DROP INDEX uq_issuances_live_reader_window")
        conn.exec_driver_sql(  # a second live issuance for one reader, its code marked, no event logged
            "INSERT INTO issuances (code_id, library_id, platform_id, reader_key, window_start, window_end, channel, "
            "actor, issued_at, print_count, card_hint, first_timer) SELECT c.id, i.library_id, i.platform_id, "
            "i.reader_key, i.window_start, i.window_end, i.channel, i.actor, i.issued_at, 1, i.card_hint, 1 "
            f"FROM issuances i, codes c WHERE i.reader_key = '{key}' AND c.value = 'SELF000007'")
        conn.exec_driver_sql("UPDATE codes SET status = 'issued' WHERE value = 'SELF000007'")
    db.session.rollback()

    said = "\n".join(broken_invariants(db.session, pepper, ledger))

    for words in ("has 2 live issuances", "1 codes marked issued with no live issuance", "has 0 issue events",
                  "hand-overs logged 1", "has 9 of its 10 codes", "card …0002 was handed 2 codes",
                  "NOSUCHCODE, handed to card …0004, is in no live issuance",
                  "was shown 4 times, print_count 1: counts lost"):
        assert words in said, f"not seen: {words!r} in\n{said}"
