"""Engine set-up that the app, the CLI, the tests and the benchmarks share.

Every write runs in one place: run_in_transaction(session, work). It begins a
transaction of its own, runs work(session), commits, and tries again when another
transaction won a race (a unique index) or the database was busy. Domain
functions only add to the session; they never commit.

SQLite: WAL, foreign keys on, a busy timeout, synchronous=FULL (a code on a
reader's slip must survive a power cut). A write transaction begins with BEGIN
IMMEDIATE: it takes the write lock before its first read, so two kiosks can never
read the same free code, and no transaction can fail halfway because another
wrote since it read (SQLITE_BUSY_SNAPSHOT, which no timeout cures). Reads outside
run_in_transaction begin DEFERRED and never wait for the write lock.

Issuing holds the lock shorter (run_in_transaction(..., late_lock=True)): it reads
what no other issuer changes (the card register, the reader's facts) in a read
transaction, then take_write_lock ends that one and begins IMMEDIATE for the part
that must see every other issuer's commit (the reader's codes, the claim).
"""
from __future__ import annotations

import sqlite3
import weakref
from typing import Callable, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

SQLITE_BUSY_TIMEOUT_MS = 15_000
MAX_ATTEMPTS = 5
T = TypeVar("T")


class DatabaseBusy(RuntimeError):
    """The database stayed locked or kept failing: nothing was changed; try again."""


def run_in_transaction(session: Session, work: Callable[[Session], T], *, late_lock: bool = False) -> T:
    """The one unit of work: work(session) in a write transaction of its own,
    committed; retried when another transaction won a race or the database was
    busy. Any exception rolls everything back, so a refusal raised by the domain
    leaves nothing behind. Whatever the session was reading before ends first.
    With late_lock, SQLite's write lock waits for work's take_write_lock."""
    last_error: Exception | None = None
    for _attempt in range(MAX_ATTEMPTS):
        session.rollback()
        committing = False
        try:
            # SQLite's BEGIN IMMEDIATE is where a busy database says so: inside the try.
            connection = session.connection(
                execution_options={"sqlite_begin": "DEFERRED" if late_lock else "IMMEDIATE"})
            if late_lock and connection.dialect.name == "sqlite":
                session.info[_UNLOCKED] = connection.connection.driver_connection.total_changes
            result = work(session)
            session.info.pop(_UNLOCKED, None)
            committing = True
            session.commit()
            return result
        except IntegrityError as exc:
            # E.g. the same reader was served by another kiosk a moment ago.
            session.rollback()
            last_error = exc
        except OperationalError as exc:
            session.rollback()
            # A connection lost during COMMIT may have committed: never do the work twice.
            if not is_busy(exc) or (committing and getattr(exc, "connection_invalidated", False)):
                raise
            last_error = exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.info.pop(_UNLOCKED, None)
    if isinstance(last_error, IntegrityError):
        raise last_error  # not a race that a retry settles: a real conflict
    raise DatabaseBusy("the database is busy; nothing was changed") from last_error
_configured: weakref.WeakSet = weakref.WeakSet()
_UNLOCKED = "kodomat_sqlite_unlocked"  # session.info: a late-lock transaction that has not locked yet


def take_write_lock(session: Session) -> None:
    """From here on the unit of work sees every other writer's commit and holds
    SQLite's write lock (a no-op elsewhere, and when the lock is held already).
    What was read before must be what no concurrent issuer changes."""
    changes = session.info.pop(_UNLOCKED, None)
    if changes is None:
        return
    connection = session.connection()
    if (session.new or session.dirty or session.deleted
            or connection.connection.driver_connection.total_changes != changes):
        raise RuntimeError("a write before take_write_lock would be committed without the lock")
    connection.exec_driver_sql("COMMIT")  # the read transaction: nothing was written in it
    connection.exec_driver_sql("BEGIN IMMEDIATE")  # a busy database says so here, as at the start


def is_busy(exc: BaseException) -> bool:
    """A lock, a timeout, a serialisation failure or a connection the server closed
    (the pool drops it): nothing was done; try again."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", exc)
    text = str(orig).lower()
    return ("locked" in text or "busy" in text
            or getattr(orig, "sqlstate", None) in ("40001", "40P01", "55P03", "57014"))


def normalise_database_url(url: str) -> str:
    """Accept the URLs people write (postgres://, postgresql://) and use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def configure_engine(engine: Engine, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    if engine.dialect.name != "sqlite" or engine in _configured:
        return engine
    _configured.add(engine)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def schema_is_current(engine: Engine, migrations_dir: str) -> bool:
    """True when the database has every migration applied."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(migrations_dir)).get_heads())
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


def _alembic_config(migrations_dir: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations_dir)
    return config


def lock_for_transaction(session: Session, *names: str) -> None:
    """Queue the transactions that name the same thing (PostgreSQL: an advisory
    lock held to the transaction's end; several names are locked in the order
    given, in one round trip). SQLite's write transactions queue anyway."""
    if not names or session.get_bind().dialect.name != "postgresql":
        return
    import hashlib

    from sqlalchemy import text

    keys = {f"key{n}": int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
            for n, name in enumerate(names)}
    calls = ", ".join(f"pg_advisory_xact_lock(:{key})" for key in keys)
    session.execute(text(f"SELECT {calls}"), keys)


def run_and_roll_back(session: Session, work: Callable[[Session], T], *, late_lock: bool = False) -> T:
    """work(session) in a write transaction that is always rolled back: what a
    change would do, with nothing written (a dry run). late_lock as for
    run_in_transaction."""
    session.rollback()
    try:
        connection = session.connection(
            execution_options={"sqlite_begin": "DEFERRED" if late_lock else "IMMEDIATE"})
        if late_lock and connection.dialect.name == "sqlite":
            session.info[_UNLOCKED] = connection.connection.driver_connection.total_changes
        return work(session)
    finally:
        session.info.pop(_UNLOCKED, None)
        session.rollback()
