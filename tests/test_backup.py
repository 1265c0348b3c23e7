"""`kiosk backup` while kiosks issue, `kiosk restore` into an empty instance, and
every archive it must refuse. The commands run as an operator runs them: a process
of their own, configured by KIOSK_INSTANCE and DATABASE_URL.

PostgreSQL: a database of its own per instance (pg_dump and pg_restore work on a
whole database), created on TEST_DATABASE_URL's server and dropped after."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from helpers import PROJECT, TEST, codes, issue, make_library, make_pool, this_month
from kiosk import create_app
from kiosk.app.extensions import db
from kiosk.domain.clock import utcnow
from kiosk.domain.issuing import Outcome, issue_code
from kiosk.storage.database import configure_engine, normalise_database_url, run_in_transaction
from kiosk.storage.models import Channel

KIOSK = [sys.executable, "-c", "from kiosk.cli import main; main()"]
ISSUANCES = text("SELECT i.id, i.reader_key, c.value, c.status, i.window_start, i.window_end, i.issued_at, "
                 "i.print_count FROM issuances i JOIN codes c ON c.id = i.code_id")


@dataclass
class Instance:
    folder: Path
    url: str

    @property
    def sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def kiosk(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
        """`kiosk ARGS` as the operator runs it. SQLite: the default database of the folder."""
        env = {**os.environ, "KIOSK_INSTANCE": str(self.folder), "PYTHONPATH": str(PROJECT)}
        if self.sqlite:
            env.pop("DATABASE_URL", None)
        else:
            env["DATABASE_URL"] = self.url
        if path is not None:
            env["PATH"] = path
        return subprocess.run(KIOSK + list(args), env=env, capture_output=True, text=True, timeout=300)

    def app(self):
        """The app as the server makes it: its secrets from the instance folder."""
        return create_app({"INSTANCE_PATH": str(self.folder), "SQLALCHEMY_DATABASE_URI": self.url})

    def rows(self, query=ISSUANCES) -> dict:
        engine = create_engine(normalise_database_url(self.url))
        try:
            with engine.connect() as connection:
                return {row[0]: tuple(row[1:]) for row in connection.execute(query)}
        finally:
            engine.dispose()

    def scalar(self, sql: str):
        engine = create_engine(normalise_database_url(self.url))
        try:
            with engine.connect() as connection:
                return connection.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def tables(self) -> list[str]:
        from sqlalchemy import inspect

        engine = create_engine(normalise_database_url(self.url))
        try:
            with engine.connect() as connection:
                return inspect(connection).get_table_names()
        finally:
            engine.dispose()


@pytest.fixture
def new_instance(backend, tmp_path, sqlite_template):
    """A function: name -> an instance folder and its database, not migrated (migrated())."""
    made: list[str] = []
    admin = server = None
    if backend == "postgresql":
        server = os.environ.get("TEST_DATABASE_URL")
        if not server:
            if os.environ.get("CI"):
                pytest.fail("CI must run the PostgreSQL tests: set TEST_DATABASE_URL")
            pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
        admin = create_engine(normalise_database_url(server), isolation_level="AUTOCOMMIT")

    def make(name: str) -> Instance:
        folder = tmp_path / name
        if backend == "sqlite":
            return Instance(folder, f"sqlite:///{folder / 'kodomat.db'}")
        database = f"kodomat_bk_{uuid.uuid4().hex[:12]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        made.append(database)
        url = make_url(normalise_database_url(server)).set(database=database)
        return Instance(folder, url.render_as_string(hide_password=False))

    yield make
    if admin is not None:
        with admin.connect() as connection:
            for database in made:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def migrated(instance: Instance, sqlite_template: Path):
    """The instance's app on a migrated database."""
    instance.folder.mkdir(parents=True, exist_ok=True)
    if instance.sqlite:
        shutil.copy(sqlite_template, instance.folder / "kodomat.db")
        return instance.app()
    app = instance.app()
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()
    return instance.app()  # a fresh start, as after `kiosk db upgrade`: it records the pepper


def with_library(instance: Instance, sqlite_template: Path, slug: str, values: list[str], cards: list[str]):
    """A migrated instance with a library, its pool for this month, and a code issued
    to each card; returns the issue results by card."""
    app = migrated(instance, sqlite_template)
    with app.app_context():
        library = make_library(slug)
        make_pool(library, values, this_month())
        results = {card: issue(app, card, utcnow(), library=slug) for card in cards}
        db.session.remove()
        db.engine.dispose()
    return results


def folder_state(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.iterdir()) if path.is_file()}


class Kiosks:
    """Kiosks issuing at once, each its own connection, until stopped: for every
    code, when its unit of work had committed (time.monotonic())."""

    def __init__(self, url: str, pepper: str, count: int = 4, per_kiosk: int = 400):
        self.url, self.pepper, self.per_kiosk = normalise_database_url(url), pepper, per_kiosk
        self.committed: dict[int, float] = {}  # issuance id -> moment
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(1, count + 1)]
        for thread in self.threads:
            thread.start()

    def run(self, number: int) -> None:
        engine = configure_engine(create_engine(self.url))
        session = Session(engine)
        try:
            for n in range(self.per_kiosk):
                if self.stop.is_set():
                    break
                card = f"{number}{n:07d}"
                result = run_in_transaction(session, lambda s: issue_code(
                    s, library_slug="lib", card_number=card, channel=Channel.KIOSK, actor=TEST, now=utcnow(),
                    pepper=self.pepper), late_lock=True)
                moment = time.monotonic()
                assert result.outcome is Outcome.ISSUED, result
                with self.lock:
                    self.committed[result.issuance_id] = moment
                time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.errors.append(exc)
        finally:
            session.close()
            engine.dispose()

    def wait_for(self, number: int) -> None:
        deadline = time.monotonic() + 60
        while len(self.committed) < number and time.monotonic() < deadline and not self.errors:
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        assert not self.errors, self.errors


# -- the backup of a running instance, restored --------------------------------------

def test_a_backup_taken_while_kiosks_issue_restores_every_issuance_committed_before_it(
        new_instance, sqlite_template, tmp_path):
    source = new_instance("source")
    before = with_library(source, sqlite_template, "lib", codes("BK", 2500), [f"9{n:07d}" for n in range(30)])
    pepper = (source.folder / "reader-pepper.key").read_text().strip()
    archive = tmp_path / "kopia.tar.gz"

    kiosks = Kiosks(source.url, pepper)
    try:
        kiosks.wait_for(20)  # the kiosks are issuing
        began = time.monotonic()
        backed_up = source.kiosk("backup", "-o", str(archive))
        ended = time.monotonic()
    finally:
        kiosks.finish()

    assert backed_up.returncode == 0, backed_up.stderr
    assert "Zapisano kopię" in backed_up.stdout and "reader-pepper.key" in backed_up.stdout
    assert (archive.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no partial file left
    assert any(began < moment < ended for moment in kiosks.committed.values())  # issued during the backup
    source_rows = source.rows()

    target = new_instance("restored")
    restored = target.kiosk("restore", str(archive))

    assert restored.returncode == 0, restored.stderr
    assert "tyle samo co w archiwum" in restored.stdout
    rows = target.rows()
    committed_before = {result.issuance_id for result in before.values()}
    committed_before |= {issuance for issuance, moment in kiosks.committed.items() if moment < began}
    assert committed_before <= set(rows)
    # Each issuance there is whole and the very one the source has: code, reader key, window, moment.
    assert all(rows[issuance] == source_rows[issuance] for issuance in rows)
    assert {row[2] for row in rows.values()} == {"issued"}
    assert target.scalar("SELECT count(*) FROM codes WHERE status = 'issued'") == len(rows)
    assert target.scalar("SELECT count(*) FROM events WHERE kind = 'issue'") == len(rows)
    assert (target.folder / "reader-pepper.key").read_text().strip() == pepper
    assert ((target.folder / "reader-pepper.key").stat().st_mode & 0o777) == 0o600

    # The restored instance knows its readers: the same card gets its code again, not a second one.
    app = target.app()
    with app.app_context():
        card, first = next(iter(before.items()))
        again = issue(app, card, utcnow())
        db.session.remove()
        db.engine.dispose()
    assert again.outcome is Outcome.REPRINT and again.code == first.code


# -- an instance that is not empty -------------------------------------------------------

def test_restore_refuses_an_instance_with_data_and_force_replaces_it_keeping_the_old_aside(
        new_instance, sqlite_template, tmp_path):
    source = new_instance("source")
    ours = with_library(source, sqlite_template, "lib", codes("SRC", 20), ["11111111", "22222222"])
    archive = tmp_path / "kopia.tar.gz"
    assert source.kiosk("backup", "-o", str(archive)).returncode == 0
    target = new_instance("target")
    theirs = with_library(target, sqlite_template, "other", codes("OTH", 5), ["33333333"])
    kept_files = folder_state(target.folder)

    refused = target.kiosk("restore", str(archive))

    assert refused.returncode == 1
    assert "Instancja nie jest pusta" in refused.stderr and "--force" in refused.stderr
    assert "issuances" in refused.stderr
    assert folder_state(target.folder) == kept_files
    assert target.scalar("SELECT slug FROM libraries") == "other"
    assert set(target.rows()) == {theirs["33333333"].issuance_id}

    forced = target.kiosk("restore", "--force", str(archive))

    assert forced.returncode == 0, forced.stderr
    assert "Odłożono poprzednie" in forced.stdout
    assert target.scalar("SELECT slug FROM libraries") == "lib"
    assert {row[1] for row in target.rows().values()} == {r.code for r in ours.values()}
    assert (target.folder / "reader-pepper.key").read_text() == (source.folder / "reader-pepper.key").read_text()
    aside = {p.name.split(".before-restore-")[0] for p in target.folder.iterdir() if ".before-restore-" in p.name}
    assert aside == {"kodomat.db" if target.sqlite else "kodomat.pgdump", "reader-pepper.key", "secret-key.key"}
    if target.sqlite:  # the old database, whole, beside the new one
        old = next(target.folder.glob("kodomat.db.before-restore-*"))
        assert Instance(target.folder, f"sqlite:///{old}").scalar("SELECT slug FROM libraries") == "other"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_restore_refuses_a_database_the_server_still_has_open(new_instance, sqlite_template, tmp_path):
    import sqlite3

    source = new_instance("source")
    with_library(source, sqlite_template, "lib", codes("SRC", 3), ["11111111"])
    archive = tmp_path / "kopia.tar.gz"
    assert source.kiosk("backup", "-o", str(archive)).returncode == 0
    target = new_instance("target")
    migrated(target, sqlite_template)
    server = sqlite3.connect(target.folder / "kodomat.db")
    server.execute("PRAGMA journal_mode = WAL")
    server.execute("SELECT count(*) FROM libraries").fetchone()
    try:
        refused = target.kiosk("restore", "--force", str(archive))
    finally:
        server.close()

    assert refused.returncode == 1 and "zatrzymaj serwer" in refused.stderr
    assert not list(target.folder.glob("*.before-restore-*"))


# -- archives to refuse ---------------------------------------------------------------------

def restore_in_process(folder: Path, archive: Path, *args: str, url: str | None = None):
    """`kiosk restore` in this process (it makes no app): quicker than a process of its own."""
    from click.testing import CliRunner

    from kiosk.cli import main

    env = {"KIOSK_INSTANCE": str(folder), "DATABASE_URL": url}
    return CliRunner().invoke(main, ["restore", *args, str(archive)], env=env)


@pytest.fixture(scope="module")
def good_archive(tmp_path_factory, sqlite_template) -> tuple[Path, Path]:
    """A SQLite instance with a library and two readers served, and its archive."""
    from kiosk.storage.backup import make_backup
    from kiosk.storage.secrets import PEPPER_FILE, SECRET_KEY_FILE

    root = tmp_path_factory.mktemp("good")
    source = Instance(root / "source", f"sqlite:///{root / 'source' / 'kodomat.db'}")
    with_library(source, sqlite_template, "lib", codes("SRC", 10), ["11111111", "22222222"])
    secrets = {name: (source.folder / name).read_text() for name in (PEPPER_FILE, SECRET_KEY_FILE)}
    archive = root / "kopia.tar.gz"
    make_backup(source.url, secrets, archive, utcnow())
    return source.folder, archive


def members_of(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def packed(members: dict[str, bytes], *, extra: tuple[tarfile.TarInfo, ...] = (), mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return buffer.getvalue()


def with_manifest(good: bytes, **changes) -> bytes:
    members = members_of(good)
    members["manifest.json"] = json.dumps({**json.loads(members["manifest.json"]), **changes}).encode()
    return packed(members)


def with_member(good: bytes, name: str, change) -> bytes:
    members = members_of(good)
    members[name] = change(members[name])
    return packed(members)


def flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]


def file_info(name: str, size: int = 4) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def link_info(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def without(good: bytes, name: str) -> dict[str, bytes]:
    members = members_of(good)
    del members[name]
    return members


HOSTILE = {
    "garbage": (lambda good: os.urandom(4096), "To nie jest archiwum kopii Kodomatu"),
    "an empty file": (lambda good: b"", "To nie jest archiwum kopii Kodomatu"),
    "a tar not gzipped": (lambda good: packed(members_of(good), mode="w"), "To nie jest archiwum kopii Kodomatu"),
    "truncated": (lambda good: good[: len(good) // 2], "Archiwum jest ucięte albo uszkodzone"),
    "the database tampered with": (lambda good: with_member(good, "database/kodomat.db", flipped),
                                   "Suma kontrolna elementu „database/kodomat.db” nie zgadza się"),
    "another pepper": (lambda good: with_member(good, "instance/reader-pepper.key", lambda _: b"0" * 64 + b"\n"),
                       "Suma kontrolna elementu „instance/reader-pepper.key” nie zgadza się"),
    "a newer schema": (lambda good: with_manifest(good, revision="0999"), "nowszy niż ten program"),
    "a newer format": (lambda good: with_manifest(good, version=2), "nowsza wersja Kodomatu"),
    "no manifest": (lambda good: packed(without(good, "manifest.json")), "To nie jest archiwum kopii Kodomatu"),
    "a member climbing out": (lambda good: packed(members_of(good), extra=(file_info("../../evil.key"),)),
                              "niedozwolony element „../../evil.key”"),
    "an absolute member": (lambda good: packed(members_of(good), extra=(file_info("/tmp/kodomat-evil.key"),)),
                           "niedozwolony element „/tmp/kodomat-evil.key”"),
    "the database as a link": (lambda good: packed(without(good, "database/kodomat.db"),
                                                   extra=(link_info("database/kodomat.db", "/etc/passwd"),)),
                               "niedozwolony element „database/kodomat.db”"),
    "a stranger member": (lambda good: packed(members_of(good), extra=(file_info("config.py"),)),
                          "To nie jest archiwum kopii Kodomatu (config.py)"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_archive_is_refused_and_nothing_changes(case, good_archive, tmp_path):
    source_folder, archive = good_archive
    make, said = HOSTILE[case]
    bad = tmp_path / "zla-kopia.tar.gz"
    bad.write_bytes(make(archive.read_bytes()))
    used = tmp_path / "used"
    shutil.copytree(source_folder, used)
    kept = folder_state(used)

    into_used = restore_in_process(used, bad, "--force")
    into_new = restore_in_process(tmp_path / "new", bad)

    for refused in (into_used, into_new):
        assert refused.exit_code == 1, refused.output
        assert said in refused.output and "nic nie zmieniono" in refused.output
    assert folder_state(used) == kept
    assert sorted(p.name for p in used.iterdir()) == sorted(kept)  # nor a working folder left behind
    assert not (tmp_path / "new").exists()
    assert not list(tmp_path.rglob("*evil*")) and not Path("/tmp/kodomat-evil.key").exists()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_sqlite_archive_is_refused_by_a_postgresql_instance(new_instance, good_archive):
    target = new_instance("target")

    refused = restore_in_process(target.folder, good_archive[1], url=target.url)

    assert refused.exit_code == 1
    assert "Archiwum jest z innej bazy niż ta instancja (sqlite → postgresql)" in refused.output
    assert target.tables() == [] and not (target.folder / "reader-pepper.key").exists()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_without_pg_dump_or_pg_restore_nothing_is_written_and_the_package_is_named(
        new_instance, sqlite_template, tmp_path):
    source = new_instance("source")
    with_library(source, sqlite_template, "lib", codes("SRC", 3), ["11111111"])
    bare = tmp_path / "bin"  # a PATH without the PostgreSQL client
    bare.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    archive = out / "kopia.tar.gz"

    no_dump = source.kiosk("backup", "-o", str(archive), path=str(bare))

    assert no_dump.returncode == 1
    assert "Brak programu `pg_dump`" in no_dump.stderr and "postgresql-client" in no_dump.stderr
    assert list(out.iterdir()) == []  # neither the archive nor a part of it

    assert source.kiosk("backup", "-o", str(archive)).returncode == 0
    target = new_instance("target")
    no_restore = target.kiosk("restore", str(archive), path=str(bare))

    assert no_restore.returncode == 1
    assert "Brak programu `pg_restore`" in no_restore.stderr and "postgresql-client" in no_restore.stderr
    assert target.tables() == [] and not target.folder.exists()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_backup_into_a_folder_names_the_archive_by_the_moment_and_keeps_only_the_days_asked(
        new_instance, sqlite_template, tmp_path):
    from click.testing import CliRunner

    from kiosk.cli import main

    source = new_instance("source")
    with_library(source, sqlite_template, "lib", codes("SRC", 3), ["11111111"])
    folder = tmp_path / "kopie"
    folder.mkdir()
    for name in ("kodomat-2020-01-01-020000.tar.gz", "kodomat-notatki.txt", "inne-2020-01-01-020000.tar.gz"):
        (folder / name).write_text("x")

    done = CliRunner().invoke(main, ["backup", "-o", str(folder), "--keep-days", "14"],
                              env={"KIOSK_INSTANCE": str(source.folder), "DATABASE_URL": None})

    assert done.exit_code == 0, done.output
    names = sorted(p.name for p in folder.iterdir())
    assert "kodomat-2020-01-01-020000.tar.gz" not in names and "Usunięto starą kopię" in done.output
    assert "kodomat-notatki.txt" in names and "inne-2020-01-01-020000.tar.gz" in names
    [made] = [n for n in names if n.startswith(f"kodomat-{utcnow().year}")]
    assert tarfile.open(folder / made).getnames()[0] == "manifest.json"


def test_an_archive_larger_than_the_free_disk_is_refused_before_unpacking(good_archive, tmp_path, monkeypatch):
    import shutil as shell

    from kiosk.storage import backup

    _source_folder, archive = good_archive
    real = shell.disk_usage
    monkeypatch.setattr(backup.shutil, "disk_usage",  # a disk with 1 kB left past the margin
                        lambda path: real(path)._replace(free=backup.DISK_MARGIN + 1000))

    refused = restore_in_process(tmp_path / "new", archive)

    assert refused.exit_code == 1 and "Za mało miejsca na dysku" in refused.output, refused.output
    assert not (tmp_path / "new").exists()


def test_an_archive_from_before_an_update_restores_over_the_updated_database(new_instance, sqlite_template, tmp_path):
    """The rollback an update's "backup of the moment before" is for: the database
    has gained a table since (here one made by hand, as a later migration would, with
    a foreign key into the archive's tables); --force puts the old one back whole."""
    source = new_instance("source")
    ours = with_library(source, sqlite_template, "lib", codes("OLD", 5), ["11111111"])
    archive = tmp_path / "przed-aktualizacja.tar.gz"
    assert source.kiosk("backup", "-o", str(archive)).returncode == 0
    engine = create_engine(normalise_database_url(source.url))
    with engine.begin() as connection:  # "the update": a new table that points at libraries
        connection.execute(text("CREATE TABLE later_feature (id INTEGER PRIMARY KEY, "
                                "library_id INTEGER NOT NULL REFERENCES libraries (id))"))
        connection.execute(text("INSERT INTO later_feature (id, library_id) SELECT 1, id FROM libraries"))
    engine.dispose()

    forced = source.kiosk("restore", "--force", str(archive))

    assert forced.returncode == 0, forced.stderr
    assert "later_feature" not in source.tables()
    assert {row[1] for row in source.rows().values()} == {r.code for r in ours.values()}


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_backup_outlasts_the_servers_idle_in_transaction_timeout(new_instance, sqlite_template, tmp_path):
    """deploy/postgresql.conf ends sessions idle in a transaction after 60 s; the one
    that lends pg_dump its snapshot waits that way for as long as the dump takes."""
    source = new_instance("source")
    with_library(source, sqlite_template, "lib", codes("SLO", 5), ["11111111"])
    engine = create_engine(normalise_database_url(source.url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        name = connection.execute(text("SELECT current_database()")).scalar_one()
        connection.execute(text(f'ALTER DATABASE "{name}" SET idle_in_transaction_session_timeout = \'1s\''))
    engine.dispose()
    slow = tmp_path / "bin"
    slow.mkdir()
    # A dump that takes longer than the timeout before it takes up the snapshot.
    (slow / "pg_dump").write_text(f'#!/bin/sh\nsleep 3\nexec "{shutil.which("pg_dump")}" "$@"\n')
    (slow / "pg_dump").chmod(0o755)
    archive = tmp_path / "kopia.tar.gz"

    made = source.kiosk("backup", "-o", str(archive), path=f"{slow}{os.pathsep}{os.environ['PATH']}")

    assert made.returncode == 0, made.stderr
    target = new_instance("target")
    assert target.kiosk("restore", str(archive)).returncode == 0
    assert target.scalar("SELECT count(*) FROM codes") == 5
