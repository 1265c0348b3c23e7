"""The database's part of a backup, per backend: a consistent copy taken while the
server runs, and that copy put back.

- SQLite: sqlite3's online backup API in one step (it reads one snapshot; WAL
  writers go on meanwhile), then PRAGMA integrity_check on the copy.
- PostgreSQL: `pg_dump --format=custom` (Debian package postgresql-client) on a
  snapshot exported by a REPEATABLE READ transaction, so the row counts written
  into the manifest are those of the very rows dumped; `pg_restore` brings it back
  in one transaction.

Row counts are of every table but alembic_version: the restore compares them."""
from __future__ import annotations

import enum
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

SQLITE_MEMBER = "database/kodomat.db"
POSTGRES_MEMBER = "database/kodomat.pgdump"
MEMBERS = {"sqlite": SQLITE_MEMBER, "postgresql": POSTGRES_MEMBER}
# Filled by the migrations or by the app's first start: rows there do not make an instance "used".
SEEDED = ("alembic_version", "consortium", "platforms")
BUSY_TIMEOUT_S = 15.0


class Reason(enum.StrEnum):
    UNSUPPORTED = "unsupported"  # a database other than SQLite or PostgreSQL
    NO_DATABASE = "no_database"  # nothing at the URL, or it cannot be reached
    NOT_MIGRATED = "not_migrated"  # no Kodomat schema to back up
    TOOL_MISSING = "tool_missing"  # pg_dump or pg_restore not on PATH
    TOOL_FAILED = "tool_failed"
    DAMAGED = "damaged"  # the SQLite copy fails its integrity check
    IN_USE = "in_use"  # the server still has the database open
    NOT_AN_ARCHIVE = "not_an_archive"
    TRUNCATED = "truncated"
    UNSAFE_MEMBER = "unsafe_member"
    CHECKSUM = "checksum"
    NEWER_FORMAT = "newer_format"
    NEWER_SCHEMA = "newer_schema"
    BACKEND_MISMATCH = "backend_mismatch"
    NOT_EMPTY = "not_empty"
    COUNTS_DIFFER = "counts_differ"  # the restored database is not the archive's
    COPY_DIFFERS = "copy_differs"  # the archive's database is not what its manifest says (nothing installed)
    NO_SPACE = "no_space"  # the archive would not fit on the disk it is unpacked to


class BackupRefused(Exception):
    """Nothing was written (or, for COUNTS_DIFFER, what was there before is kept aside)."""

    def __init__(self, reason: Reason, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Dump:
    path: Path
    backend: str
    revision: str
    counts: dict[str, int]


def backend_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in MEMBERS:
        raise BackupRefused(Reason.UNSUPPORTED, name)
    return name


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupRefused(Reason.UNSUPPORTED, url)
    return Path(database)


def libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as pg_dump and pg_restore take it, and their environment: the
    password goes in PGPASSWORD, never on a command line others can list."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupRefused(Reason.TOOL_MISSING, name)
    return path


def table_counts(connection: Connection) -> dict[str, int]:
    names = sorted(n for n in inspect(connection).get_table_names() if n != "alembic_version")
    return {name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}


def revision(connection: Connection) -> str | None:
    if "alembic_version" not in inspect(connection).get_table_names():
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _engine(url: str, **options):
    if backend_of(url) == "sqlite" and not sqlite_path(url).exists():
        raise BackupRefused(Reason.NO_DATABASE, str(sqlite_path(url)))
    return create_engine(url, **options)


def _read(url: str, work) -> object:
    """work(connection) on the database at url; BackupRefused when it cannot be reached."""
    from sqlalchemy.exc import OperationalError

    engine = _engine(url)
    try:
        with engine.connect() as connection:
            return work(connection)
    except OperationalError as exc:
        raise BackupRefused(Reason.NO_DATABASE, str(exc.orig).strip().splitlines()[0]) from exc
    finally:
        engine.dispose()


def database_counts(url: str) -> dict[str, int]:
    return _read(url, table_counts)


def used_tables(url: str) -> list[str]:
    """The tables holding rows, but the ones every new instance fills; [] for a database not there yet."""
    if backend_of(url) == "sqlite" and (not sqlite_path(url).exists() or sqlite_path(url).stat().st_size == 0):
        return []
    return [name for name, count in database_counts(url).items() if count and name not in SEEDED]


# -- the copy ------------------------------------------------------------------------

def dump_database(url: str, folder: Path) -> Dump:
    """A consistent copy of the database at url into folder, with its revision and counts."""
    if backend_of(url) == "sqlite":
        return _dump_sqlite(sqlite_path(url), folder / "kodomat.db")
    return _dump_postgres(url, folder / "kodomat.pgdump")


def _dump_sqlite(source_path: Path, copy_path: Path) -> Dump:
    if not source_path.exists():
        raise BackupRefused(Reason.NO_DATABASE, str(source_path))
    source = sqlite3.connect(source_path, timeout=BUSY_TIMEOUT_S)
    copy = sqlite3.connect(copy_path)
    try:
        source.backup(copy)  # pages=-1: one step, one read snapshot of the source
        copy.execute("PRAGMA journal_mode = DELETE")  # the copy is one self-contained file
        checked = copy.execute("PRAGMA integrity_check").fetchall()
    finally:
        source.close()
        copy.close()
    if checked != [("ok",)]:
        raise BackupRefused(Reason.DAMAGED, "; ".join(row[0] for row in checked[:5]))
    os.chmod(copy_path, 0o600)
    return _described(f"sqlite:///{copy_path}", copy_path, "sqlite")


def _described(url: str, path: Path, backend: str) -> Dump:
    found = _read(url, lambda connection: (revision(connection), table_counts(connection)))
    if found[0] is None:
        raise BackupRefused(Reason.NOT_MIGRATED)
    return Dump(path, backend, found[0], found[1])


def _dump_postgres(url: str, dump_path: Path) -> Dump:
    pg_dump = tool("pg_dump")
    conninfo, env = libpq(url)
    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as connection:
            # This session waits, idle in its transaction, while pg_dump reads: a server's
            # idle_in_transaction_session_timeout (deploy/postgresql.conf sets one) or
            # statement_timeout must not end it and its snapshot (pg_dump lifts both for itself).
            connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            # The transaction's snapshot, shared with pg_dump: the counts are of the rows it dumps.
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            found, counts = revision(connection), table_counts(connection)
            if found is None:
                raise BackupRefused(Reason.NOT_MIGRATED)
            done = subprocess.run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dump_path}",
                                   f"--dbname={conninfo}"], env=env, capture_output=True, text=True)
            try:
                connection.rollback()
            except DBAPIError:
                if done.returncode != 0:
                    raise
                # pg_dump has its copy: the session that lent it the snapshot may be gone.
    except BackupRefused:
        raise
    except DBAPIError as exc:
        raise BackupRefused(Reason.NO_DATABASE, str(exc.orig).strip().splitlines()[0]) from exc
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupRefused(Reason.TOOL_FAILED, f"pg_dump: {done.stderr.strip()}")
    os.chmod(dump_path, 0o600)
    return Dump(dump_path, "postgresql", found, counts)


# -- putting it back ---------------------------------------------------------------------

def check_copy(backend: str, path: Path) -> None:
    """A SQLite copy is whole (PRAGMA integrity_check) before it replaces anything;
    pg_restore reads a custom dump's table of contents (it refuses a damaged one)."""
    if backend == "sqlite":
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            checked = connection.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            checked = [(str(exc),)]
        finally:
            connection.close()
        if checked != [("ok",)]:
            raise BackupRefused(Reason.DAMAGED, "; ".join(row[0] for row in checked[:5]))
        return
    done = subprocess.run([tool("pg_restore"), "--list", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupRefused(Reason.TOOL_FAILED, f"pg_restore: {done.stderr.strip()}")


def sqlite_in_use(path: Path) -> bool:
    """True when another process has the file open (the server): SQLite removes the
    -wal file when the last connection closes, after a checkpoint."""
    if not path.exists():
        return False
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError:
        pass  # not a database: nothing to checkpoint, nobody can be using it
    finally:
        connection.close()
    return Path(f"{path}-wal").exists()


def postgres_in_use(url: str) -> int:
    """How many other sessions are connected to the database."""
    return _read(url, lambda connection: connection.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()")).scalar_one())


def install_sqlite(copy: Path, target: Path, aside_suffix: str) -> list[Path]:
    """The copy becomes the database file; what was there (with its -wal and -shm)
    is renamed aside, never deleted. Returns the names it was kept under."""
    target.parent.mkdir(parents=True, exist_ok=True)
    placed = target.with_name(f".{target.name}.restoring")
    shutil.move(str(copy), placed)  # a rename on the same disk
    kept = []
    for old in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        if old.exists():
            aside = old.with_name(f"{old.name}.{aside_suffix}")
            os.replace(old, aside)
            kept.append(aside)
    os.replace(placed, target)
    return kept


def restore_postgres(url: str, dump: Path, *, clean: bool) -> None:
    """The dump put back in one transaction: all of it or nothing. clean empties the
    database's schema first, in that same transaction: every table, sequence and
    function in it, also those a later migration added (pg_restore's own --clean
    drops only what the dump holds, and fails on a newer schema's foreign keys)."""
    pg_restore = tool("pg_restore")
    conninfo, env = libpq(url)
    if not clean:
        done = subprocess.run([pg_restore, "--no-owner", "--no-acl", "--exit-on-error", "--single-transaction",
                               f"--dbname={conninfo}", str(dump)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupRefused(Reason.TOOL_FAILED, f"pg_restore: {done.stderr.strip()}")
        return
    psql = tool("psql")
    # The script whole on disk first: psql reading a pg_restore that died midway
    # would commit what it had read.
    script = dump.with_name(dump.name + ".sql")
    done = subprocess.run([pg_restore, "--no-owner", "--no-acl", f"--file={script}", str(dump)],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupRefused(Reason.TOOL_FAILED, f"pg_restore: {done.stderr.strip()}")
    try:
        os.chmod(script, 0o600)
        done = subprocess.run([psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction",
                               f"--dbname={conninfo}", f"--command={_EMPTY_SCHEMA}", f"--file={script}"],
                              env=env, capture_output=True, text=True)
    finally:
        script.unlink(missing_ok=True)
    if done.returncode != 0:
        raise BackupRefused(Reason.TOOL_FAILED, f"psql: {done.stderr.strip()}")


# Everything in the schema Kodomat's tables live in, dropped (run inside the restore's transaction).
_EMPTY_SCHEMA = """DO $$
DECLARE found record;
BEGIN
    FOR found IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I CASCADE', current_schema(), found.tablename);
    END LOOP;
    FOR found IN SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
        EXECUTE format('DROP SEQUENCE IF EXISTS %I.%I CASCADE', current_schema(), found.sequencename);
    END LOOP;
    FOR found IN SELECT oid::regprocedure AS signature FROM pg_proc
                 WHERE pronamespace = current_schema()::regnamespace LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', found.signature);
    END LOOP;
END $$;"""


def has_schema(url: str) -> bool:
    return _read(url, lambda connection: bool(inspect(connection).get_table_names()))
