"""Engine set-up that the app, the CLI, the tests and the benchmarks share.

SQLite: WAL, foreign keys on, a busy timeout, and every transaction begun with
BEGIN IMMEDIATE: it takes the write lock before its first read. Two kiosks then
can never read the same free code, and no transaction can fail halfway because
another wrote since it read (SQLITE_BUSY_SNAPSHOT, which no timeout cures): they
queue for the lock instead. Keep transactions short: commit before slow work
such as printing. A read-only transaction may ask for DEFERRED with the execution
option sqlite_begin="DEFERRED".
"""
from __future__ import annotations

import sqlite3
import weakref

from sqlalchemy import Engine, event

SQLITE_BUSY_TIMEOUT_MS = 15_000
_configured: weakref.WeakSet = weakref.WeakSet()


def is_busy(exc: BaseException) -> bool:
    """A lock, a timeout or a serialisation failure: nothing was done; try again."""
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
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
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
