"""Backups: one archive of the database and of the instance folder's secrets, made
while the server runs (kiosk.storage.dumps), and brought back into an empty instance.

The archive is a tar.gz with fixed member names:
- manifest.json: the format's version, the database's schema revision (Alembic),
  its backend, when it was made (UTC), the row count of every table (the restore
  checks them) and the SHA-256 of every other member;
- database/kodomat.db (SQLite) or database/kodomat.pgdump (pg_dump, custom format);
- instance/reader-pepper.key and instance/secret-key.key: the archive holds the
  pepper, so whoever has it can tie a card number to its reader key.

It is written to a private temporary file beside the target and renamed into place
only when complete. Reading never extracts by a member's own name: each expected
member is streamed to a file named here, its checksum checked. Knows nothing of the
app: it is given a database URL, the instance folder and the secrets' values."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kiosk.storage import dumps
from kiosk.storage.dumps import BackupRefused, Reason
from kiosk.storage.secrets import PEPPER_FILE, SECRET_KEY_FILE

FORMAT = "kodomat-backup"
VERSION = 1
MANIFEST = "manifest.json"
SECRETS = (PEPPER_FILE, SECRET_KEY_FILE)
SECRET_MEMBERS = {f"instance/{name}": name for name in SECRETS}
KNOWN_MEMBERS = {MANIFEST, *dumps.MEMBERS.values(), *SECRET_MEMBERS}
MANIFEST_LIMIT = 1024 * 1024
SECRET_LIMIT = 4096  # a secret file is 65 bytes
DISK_MARGIN = 256 * 1024 * 1024  # left free after unpacking (the database restored next needs room too)
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Manifest:
    revision: str
    backend: str
    created_at: str
    counts: dict[str, int]
    sha256: dict[str, str]  # member name -> hex digest

    def as_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "version": VERSION, "revision": self.revision,
                           "backend": self.backend, "created_at": self.created_at, "counts": self.counts,
                           "sha256": self.sha256}, indent=2, sort_keys=True).encode()


@dataclass
class Staged:
    """An archive read and checked: its manifest and its members in a private folder."""
    manifest: Manifest
    database: Path
    secrets: dict[str, str] = field(default_factory=dict)  # file name -> content


# -- making one ---------------------------------------------------------------------

def make_backup(database_url: str, secrets: dict[str, str], target: Path, now: datetime) -> tuple[Manifest, int]:
    """Writes the archive to target; returns its manifest and size. secrets: the
    values the app runs with, by file name (PEPPER_FILE, SECRET_KEY_FILE)."""
    import tempfile

    target = target.absolute()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kodomat-backup-") as work:
        dump = dumps.dump_database(database_url, Path(work))
        files = {dumps.MEMBERS[dump.backend]: dump.path}
        for member, name in SECRET_MEMBERS.items():
            path = Path(work) / name
            _write_private(path, secrets[name].strip() + "\n")
            files[member] = path
        manifest = Manifest(revision=dump.revision, backend=dump.backend,
                            created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), counts=dump.counts,
                            sha256={member: _sha256(path) for member, path in files.items()})
        manifest_path = Path(work) / MANIFEST
        manifest_path.write_bytes(manifest.as_json())
        partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                # Level 1: half the time of level 6 for a 5 % larger SQLite archive; a pg_dump is compressed already.
                with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=1) as archive:
                    for member, path in [(MANIFEST, manifest_path), *files.items()]:
                        info = archive.gettarinfo(str(path), arcname=member)
                        info.uid = info.gid = 0
                        info.uname = info.gname = ""
                        with path.open("rb") as source:
                            archive.addfile(info, source)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    _sync_folder(target.parent)
    return manifest, target.stat().st_size


def _write_private(path: Path, content: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open a folder: its renames are durable as they are
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- reading one ----------------------------------------------------------------------

def read_archive(path: Path, work: Path) -> Staged:
    """The archive checked whole, its members written into work (a private folder).
    BackupRefused: not an archive, truncated, a member out of place, a checksum."""
    try:
        archive = tarfile.open(path, mode="r:gz")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, str(exc)) from exc
    with archive:
        try:
            members = archive.getmembers()
            return _staged(archive, members, work)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise BackupRefused(Reason.TRUNCATED, str(exc)) from exc
        except OSError as exc:
            if isinstance(exc, (FileNotFoundError, PermissionError)):
                raise
            raise BackupRefused(Reason.TRUNCATED, str(exc)) from exc


def _staged(archive: tarfile.TarFile, members: list[tarfile.TarInfo], work: Path) -> Staged:
    names = [member.name for member in members]
    for name in names:
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/") or ":" in name:
            raise BackupRefused(Reason.UNSAFE_MEMBER, name)
    strangers = sorted(set(names) - KNOWN_MEMBERS)
    if strangers or len(names) != len(set(names)) or MANIFEST not in names:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, ", ".join(strangers) or "manifest.json")
    by_name = {member.name: member for member in members}
    for member in members:
        if not member.isfile():
            raise BackupRefused(Reason.UNSAFE_MEMBER, member.name)
    manifest = _manifest(archive, by_name[MANIFEST])
    database_member = dumps.MEMBERS[manifest.backend]
    expected = {database_member, *SECRET_MEMBERS}
    if set(manifest.sha256) != expected or set(names) != expected | {MANIFEST}:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, ", ".join(sorted(set(names) ^ (expected | {MANIFEST}))))
    for name in SECRET_MEMBERS:
        if by_name[name].size > SECRET_LIMIT:
            raise BackupRefused(Reason.NOT_AN_ARCHIVE, name)
    # The sizes the archive declares, against the disk it is unpacked to: a crafted
    # archive (a small file that unpacks to terabytes) is refused before it fills it.
    needed = sum(by_name[name].size for name in expected)
    free = shutil.disk_usage(work).free
    if needed > free - DISK_MARGIN:
        room = max(0, free - DISK_MARGIN)
        raise BackupRefused(Reason.NO_SPACE, f"{needed // 1_000_000} MB > {room // 1_000_000} MB")
    staged = Staged(manifest, work / Path(database_member).name)
    for member in sorted(expected):
        local = work / Path(member).name  # a name chosen here, never the archive's path
        digest = hashlib.sha256()
        source = archive.extractfile(by_name[member])
        descriptor = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with source, os.fdopen(descriptor, "wb") as handle:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != manifest.sha256[member]:
            raise BackupRefused(Reason.CHECKSUM, member)
        if member in SECRET_MEMBERS:
            staged.secrets[SECRET_MEMBERS[member]] = local.read_text().strip()
    return staged


def _manifest(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Manifest:
    if member.size > MANIFEST_LIMIT:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, MANIFEST)
    try:
        data = json.loads(archive.extractfile(member).read(MANIFEST_LIMIT))
        if data.get("format") != FORMAT:
            raise ValueError("format")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise BackupRefused(Reason.NEWER_FORMAT, str(data.get("version")))
        manifest = Manifest(revision=str(data["revision"]), backend=str(data["backend"]),
                            created_at=str(data["created_at"]),
                            counts={str(k): int(v) for k, v in dict(data["counts"]).items()},
                            sha256={str(k): str(v) for k, v in dict(data["sha256"]).items()})
    except BackupRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, MANIFEST) from exc
    if manifest.backend not in dumps.MEMBERS:
        raise BackupRefused(Reason.NOT_AN_ARCHIVE, manifest.backend)
    return manifest


# -- bringing one back -------------------------------------------------------------------

def occupied(database_url: str, instance: Path, staged: Staged) -> list[str]:
    """What the instance holds already that the restore would replace: tables with
    rows (but the ones a new instance fills itself), and secret files other than
    the archive's. [] is an empty instance."""
    found = dumps.used_tables(database_url)
    for name in SECRETS:
        path = instance / name
        if path.exists() and path.read_text().strip() != staged.secrets[name]:
            found.append(name)
    return found


def check(staged: Staged, database_url: str) -> None:
    """The staged archive fits this instance's database: the same backend, a whole
    copy (SQLite), the tool to put it back (PostgreSQL). Changes nothing."""
    backend = dumps.backend_of(database_url)
    if backend != staged.manifest.backend:
        raise BackupRefused(Reason.BACKEND_MISMATCH, f"{staged.manifest.backend} → {backend}")
    dumps.check_copy(backend, staged.database)
    if backend == "postgresql":
        dumps.tool("psql")  # what empties a database the archive replaces


def restore(staged: Staged, database_url: str, instance: Path, aside_suffix: str) -> list[Path]:
    """Puts the staged archive in place: the database, then the secrets. What was
    there is kept aside under its name plus aside_suffix (SQLite: the old file;
    PostgreSQL: a pg_dump of the old database, in the instance folder). The caller
    has run check() and found the instance empty, or was asked to replace it.
    Returns what was kept aside; BackupRefused(COUNTS_DIFFER) when the restored
    database's rows are not the archive's."""
    backend = dumps.backend_of(database_url)
    kept: list[Path] = []
    if backend == "sqlite":
        target = dumps.sqlite_path(database_url)
        if dumps.sqlite_in_use(target):
            raise BackupRefused(Reason.IN_USE, str(target))
        _expect_counts(dumps.database_counts(f"sqlite:///{staged.database}"), staged.manifest.counts,
                       installed=False)
        kept += dumps.install_sqlite(staged.database, target, aside_suffix)
    else:
        if dumps.postgres_in_use(database_url):
            raise BackupRefused(Reason.IN_USE, "")
        clean = dumps.has_schema(database_url)
        old = None
        if dumps.used_tables(database_url):
            old = instance / f"kodomat.pgdump.{aside_suffix}"
            os.replace(dumps.dump_database(database_url, instance).path, old)
        try:
            dumps.restore_postgres(database_url, staged.database, clean=clean)
        except BackupRefused:
            if old is not None:  # the database is as it was: no copy of it left behind
                old.unlink(missing_ok=True)
            raise
        if old is not None:
            kept.append(old)
    kept += _install_secrets(staged.secrets, instance, aside_suffix)
    _expect_counts(dumps.database_counts(database_url), staged.manifest.counts)
    return kept


def _install_secrets(secrets: dict[str, str], instance: Path, aside_suffix: str) -> list[Path]:
    instance.mkdir(parents=True, exist_ok=True)
    kept = []
    for name, value in secrets.items():
        path = instance / name
        if path.exists() and path.read_text().strip() == value:
            continue
        if path.exists():
            aside = path.with_name(f"{name}.{aside_suffix}")
            os.replace(path, aside)
            kept.append(aside)
        placed = path.with_name(f".{name}.restoring")
        _write_private(placed, value + "\n")
        os.replace(placed, path)
    _sync_folder(instance)
    return kept


def _expect_counts(found: dict[str, int], expected: dict[str, int], *, installed: bool = True) -> None:
    differ = [f"{name}: {found.get(name)} ≠ {count}" for name, count in sorted(expected.items())
              if found.get(name) != count]
    if differ:
        raise BackupRefused(Reason.COUNTS_DIFFER if installed else Reason.COPY_DIFFERS, "; ".join(differ))
