"""`kiosk backup` and `kiosk restore`: one archive of the database and the instance
folder's secrets (kiosk.storage.backup), made while the server runs, brought back
into an empty instance with the server stopped.

`restore` makes no app: the app would make new secrets in an empty instance folder,
and check the pepper of a database about to be replaced."""
from __future__ import annotations

import re
import tempfile
from datetime import timedelta
from pathlib import Path

import click
from flask.cli import with_appcontext

from kiosk.cli import refuse

ARCHIVE_NAME = re.compile(r"^kodomat-(\d{4}-\d{2}-\d{2})-\d{6}\.tar\.gz$")
NOTHING_CHANGED = "nic nie zmieniono."
SECRETS_NOTE = ("Archiwum zawiera sekrety instancji (reader-pepper.key, secret-key.key): kto je ma, może powiązać "
                "numer karty z czytelnikiem. Trzymaj archiwa tak pilnie jak hasła.")
REFUSALS = {
    "unsupported": "Kopię robi się tylko z SQLite albo PostgreSQL (tu: {detail}); " + NOTHING_CHANGED,
    "no_database": "Nie ma bazy danych albo nie można się z nią połączyć ({detail}); " + NOTHING_CHANGED,
    "not_migrated": "Baza nie ma jeszcze schematu Kodomatu (`kiosk db upgrade`): nie ma czego kopiować.",
    "tool_missing": "Brak programu `{detail}` (w Debianie: apt-get install postgresql-client, w wersji serwera "
                    "bazy albo nowszej); " + NOTHING_CHANGED,
    "tool_failed": "Narzędzie PostgreSQL zgłosiło błąd; " + NOTHING_CHANGED + "\n{detail}",
    "damaged": "Kopia bazy SQLite jest uszkodzona (PRAGMA integrity_check: {detail}); " + NOTHING_CHANGED,
    "in_use": "Baza danych jest otwarta przez inny program: zatrzymaj serwer (`kiosk serve` albo gunicorn) i "
              "spróbuj ponownie; " + NOTHING_CHANGED,
    "not_an_archive": "To nie jest archiwum kopii Kodomatu ({detail}); " + NOTHING_CHANGED,
    "truncated": "Archiwum jest ucięte albo uszkodzone ({detail}); " + NOTHING_CHANGED,
    "unsafe_member": "Archiwum zawiera niedozwolony element „{detail}” (ścieżka poza archiwum, link albo "
                     "katalog); " + NOTHING_CHANGED,
    "checksum": "Suma kontrolna elementu „{detail}” nie zgadza się z manifestem: archiwum jest uszkodzone albo "
                "zmienione; " + NOTHING_CHANGED,
    "newer_format": "Archiwum zrobiła nowsza wersja Kodomatu (format {detail}): zaktualizuj program; "
                    + NOTHING_CHANGED,
    "newer_schema": "Archiwum ma schemat bazy „{detail}”, nowszy niż ten program: zaktualizuj Kodomat i spróbuj "
                    "ponownie; " + NOTHING_CHANGED,
    "backend_mismatch": "Archiwum jest z innej bazy niż ta instancja ({detail}): kopię z SQLite przywraca się do "
                        "SQLite, z PostgreSQL do PostgreSQL (DATABASE_URL); " + NOTHING_CHANGED,
    "not_empty": "Instancja nie jest pusta ({detail}): przywrócenie zastąpiłoby jej dane. Aby je zastąpić, dodaj "
                 "--force (obecna baza i sekrety zostaną odłożone obok); " + NOTHING_CHANGED,
    "no_space": "Za mało miejsca na dysku instancji, by rozpakować archiwum ({detail}); zwolnij miejsce albo "
                "sprawdź, czy to na pewno kopia Kodomatu; " + NOTHING_CHANGED,
    "counts_differ": "Przywrócona baza ma inną liczbę wierszy niż archiwum ({detail}): nie uruchamiaj serwera i "
                     "sprawdź kopię. Poprzednie dane, jeśli były, leżą obok w plikach *.before-restore-*.",
    "copy_differs": "Baza w archiwum ma inną liczbę wierszy niż jej manifest ({detail}): archiwum jest "
                    "niespójne; " + NOTHING_CHANGED,
}


def refuse_backup(refused) -> None:
    refuse(REFUSALS[refused.reason].format(detail=refused.detail))


def summary(counts: dict[str, int]) -> str:
    shown = {"libraries": "biblioteki", "codes": "kody", "issuances": "wydania"}
    return ", ".join(f"{word}: {counts.get(table, 0):,}".replace(",", " ") for table, word in shown.items())


@click.command("backup")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Plik archiwum albo istniejący folder (wtedy plik kodomat-RRRR-MM-DD-GGMMSS.tar.gz w nim).")
@click.option("--keep-days", type=click.IntRange(min=1),
              help="Z folderem w -o: usuwa z niego archiwa Kodomatu starsze niż tyle dni (po udanej kopii).")
@with_appcontext
def backup(output: Path, keep_days: int | None) -> None:
    """Zapisuje do jednego pliku spójną kopię bazy danych i sekretów instancji; serwer może działać."""
    from flask import current_app

    from zoneinfo import ZoneInfo

    from kiosk.domain.clock import DEFAULT_TIMEZONE, local_day, utcnow
    from kiosk.storage.backup import make_backup
    from kiosk.storage.dumps import BackupRefused
    from kiosk.storage.secrets import PEPPER_FILE, SECRET_KEY_FILE

    now = utcnow()
    folder = output if output.is_dir() else None
    if folder is not None:
        output = folder / f"kodomat-{now.astimezone(ZoneInfo(DEFAULT_TIMEZONE)):%Y-%m-%d-%H%M%S}.tar.gz"
    elif keep_days is not None:
        raise click.BadParameter("--keep-days tylko z folderem w -o", param_hint="--keep-days")
    if not output.absolute().parent.is_dir():
        raise click.BadParameter(f"nie ma folderu {output.absolute().parent}", param_hint="-o")
    secrets = {PEPPER_FILE: current_app.config["READER_PEPPER"], SECRET_KEY_FILE: current_app.config["SECRET_KEY"]}
    try:
        manifest, size = make_backup(current_app.config["SQLALCHEMY_DATABASE_URI"], secrets, output, now)
    except BackupRefused as refused:
        refuse_backup(refused)
    click.echo(f"Zapisano kopię {output}: {_size(size)}, {manifest.backend}, schemat "
               f"{manifest.revision}; {summary(manifest.counts)}.")
    click.echo(SECRETS_NOTE)
    if folder is not None and keep_days is not None:
        oldest = local_day(now) - timedelta(days=keep_days)
        for old in sorted(folder.iterdir()):
            found = ARCHIVE_NAME.match(old.name)
            if found and found[1] < oldest.isoformat() and old.is_file():
                old.unlink()
                click.echo(f"Usunięto starą kopię {old}.")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True,
              help="Także do instancji, która ma już dane: obecna baza i sekrety zostają odłożone obok.")
def restore(archive: Path, force: bool) -> None:
    """Przywraca kopię z `kiosk backup` do pustej instancji (przy zatrzymanym serwerze)."""
    from zoneinfo import ZoneInfo

    from kiosk.app.factory import MIGRATIONS, configured_database_url, instance_folder
    from kiosk.domain.clock import DEFAULT_TIMEZONE, format_moment, parse_moment, utcnow
    from kiosk.storage import backup as backups
    from kiosk.storage.dumps import BackupRefused, Reason

    instance = instance_folder()
    made = not instance.exists()
    instance.mkdir(parents=True, exist_ok=True)
    url = configured_database_url(instance)
    heads, known = _revisions(MIGRATIONS)
    try:
        with tempfile.TemporaryDirectory(dir=instance, prefix=".kodomat-restore-") as work:
            staged = backups.read_archive(archive, Path(work))
            if staged.manifest.revision not in known:
                raise BackupRefused(Reason.NEWER_SCHEMA, staged.manifest.revision)
            backups.check(staged, url)
            occupied = backups.occupied(url, instance, staged)
            if occupied and not force:
                raise BackupRefused(Reason.NOT_EMPTY, ", ".join(occupied))
            stamp = f"before-restore-{utcnow().astimezone(ZoneInfo(DEFAULT_TIMEZONE)):%Y%m%d-%H%M%S}"
            kept = backups.restore(staged, url, instance, stamp)
    except BackupRefused as refused:
        if made and not any(instance.iterdir()):
            instance.rmdir()
        refuse_backup(refused)
    made_at = staged.manifest.created_at
    try:
        made_at = format_moment(parse_moment(made_at.replace("Z", "+00:00")))
    except ValueError:
        pass
    click.echo(f"Przywrócono kopię z {made_at} ({staged.manifest.backend}, schemat {staged.manifest.revision}) "
               f"do {instance}; {summary(staged.manifest.counts)}: tyle samo co w archiwum.")
    for path in kept:
        click.echo(f"Odłożono poprzednie: {path}")
    if staged.manifest.revision not in heads:
        click.echo("Schemat bazy jest starszy niż program: uruchom `kiosk db upgrade` przed `kiosk serve`.")


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB".replace(".", ",") if size >= 1_000_000 else f"{max(1, size // 1000)} kB"


def _revisions(migrations: Path) -> tuple[set[str], set[str]]:
    """The program's head revisions, and every revision it knows."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(migrations))
    return set(script.get_heads()), {revision.revision for revision in script.walk_revisions()}
