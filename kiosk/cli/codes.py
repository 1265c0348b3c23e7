"""Commands about codes: importing pools and the card registry, issuing, what is
left, printing a slip again."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.cli.common import cli_actor, date_option, library_named, platform_named, refuse_because
from kiosk.domain.clock import format_date, parse_month, utcnow
from kiosk.wording.languages import LANGUAGES


def read_upload(file: Path) -> bytes:
    """The file's bytes, if it is not past the size any upload may have: a file of
    hundreds of megabytes is refused before it is read."""
    from kiosk.domain.pool_files import ImportProblem, ImportRefused
    from kiosk.domain.spreadsheets import MAX_FILE_BYTES

    if file.stat().st_size > MAX_FILE_BYTES:
        raise ImportRefused(ImportProblem.TOO_LARGE, limit_mb=MAX_FILE_BYTES // (1024 * 1024))
    return file.read_bytes()


@click.command("import-codes")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--library", "library_slug", required=True)
@click.option("--platform", "platform_slug", default="legimi", show_default=True)
@click.option("--month", help="Miesiąc ważności, RRRR-MM (gdy plik go nie podaje).")
@click.option("--valid-from", help="Pierwszy dzień ważności.")
@click.option("--valid-until", help="Ostatni dzień ważności.")
@click.option("--dry-run", is_flag=True, help="Tylko sprawdza plik; niczego nie zapisuje.")
@with_appcontext
def import_codes(file: Path, library_slug, platform_slug, month, valid_from, valid_until, dry_run) -> None:
    """Importuje pulę kodów z pliku XLSX, XLS lub CSV z panelu platformy."""
    from kiosk.domain.pool_files import ImportRefused, prepare_pool
    from kiosk.domain.pools import import_pool, preview_pool
    from kiosk.wording.messages import codes_imported, codes_would_import

    if month and (valid_from or valid_until):
        raise click.UsageError("podaj --month albo --valid-from/--valid-until, nie oba")
    if bool(valid_from) != bool(valid_until):
        raise click.UsageError("podaj oba: --valid-from i --valid-until")
    window = None
    if month:
        try:
            window = parse_month(month)
        except ValueError:
            raise click.BadParameter(f"„{month}” nie jest miesiącem RRRR-MM", param_hint="--month")
    elif valid_from:
        window = (date_option(valid_from, "--valid-from"), date_option(valid_until, "--valid-until"))
    library, platform = library_named(library_slug), platform_named(platform_slug)
    library_id, platform_id, platform_name, actor = library.id, platform.id, platform.name, cli_actor()
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_pool(read_upload(file), file.name, window)
        if dry_run:
            report = preview_pool(db.session, library_id=library_id, platform_id=platform_id, prepared=prepared)
        else:
            report = write(lambda s: import_pool(s, library_id=library_id, platform_id=platform_id,
                                                 prepared=prepared, actor=actor, now=utcnow()))
    except ImportRefused as refused:
        refuse_because(refused, f"Odrzucono {file.name}: ")
    said = (codes_would_import if dry_run else codes_imported)(report.count, report.valid_from, report.valid_until)
    click.echo(f"{said} "
               f"Platforma {platform_name}, biblioteka {report.library}; plik {report.filename}, "
               f"kolumna {report.code_column}, SHA-256 {report.sha256[:12]}…")
    if dry_run:
        click.echo("Pierwsze kody: " + ", ".join(report.sample))


@click.command("import-cards")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--library", "library_slug", required=True)
@with_appcontext
def import_cards_command(file: Path, library_slug) -> None:
    """Zastępuje rejestr ważnych kart biblioteki eksportem z systemu bibliotecznego."""
    from kiosk.domain.pool_files import ImportRefused
    from kiosk.domain.registry import import_cards, prepare_cards
    from kiosk.storage.models import CardCheckKind
    from kiosk.wording.messages import cards_imported

    library = library_named(library_slug)
    library_id, slug, check, actor = library.id, library.slug, library.card_check, cli_actor()
    pattern, check_digit = library.card_pattern, library.card_check_digit
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_cards(read_upload(file), card_pattern=pattern, check_digit=check_digit, pepper=pepper())
        report = write(lambda s: import_cards(s, library_id=library_id, prepared=prepared, actor=actor,
                                              now=utcnow()))
    except ImportRefused as refused:
        refuse_because(refused, f"Odrzucono {file.name}: ")
    summary = cards_imported(report.count, report.blocked, report.with_expiry, report.facts)
    click.echo(f"Rejestr kart {slug}: {summary}")
    # Under sip2 the register is used too: for the last loan, and when the library system is silent.
    if check == CardCheckKind.FORMAT:
        click.echo("Uwaga: ta biblioteka sprawdza tylko format karty; rejestr zadziała po ustawieniu "
                   "sprawdzania „registry”.")


@click.command("issue")
@click.option("--library", "library_slug", required=True)
@click.option("--card", required=True, help="Numer karty czytelnika.")
@click.option("--pin", default=None, help="PIN czytelnika, sprawdzany przez system biblioteki (SIP2).")
@click.option("--platform", "platform_slug", default="legimi", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Wynik jako obiekt JSON.")
@click.option("--dry-run", is_flag=True, help="Tylko sprawdza, co czytelnik by dostał; niczego nie zapisuje.")
@click.option("--at", "at", metavar="MOMENT", help="Z --dry-run: chwila sprawdzenia, np. 2027-05-04T09:59.")
@with_appcontext
def issue(library_slug, card, pin, platform_slug, as_json, dry_run, at) -> None:
    """Wydaje czytelnikowi kod na ten miesiąc (albo ten sam, jeśli już go dostał)."""
    from kiosk.app.extensions import db
    from kiosk.domain.clock import parse_moment
    from kiosk.domain.issuing import issue_code
    from kiosk.domain.library_system import ask_before_issuing
    from kiosk.storage.database import run_and_roll_back
    from kiosk.storage.models import Channel
    from kiosk.wording.messages import describe_issue

    library = library_named(library_slug)
    platform_named(platform_slug)
    if at is not None and not dry_run:
        raise click.UsageError("--at działa tylko z --dry-run: kod wydaje się teraz.")
    try:
        now = parse_moment(at, library.timezone) if at else utcnow()
    except ValueError:
        raise click.BadParameter(f"„{at}” nie jest chwilą (np. 2027-05-04T09:59 albo 04.05.2027 09:59)",
                                 param_hint="--at")
    actor = cli_actor()
    answer = ask_before_issuing(db.session, library_slug, card, pin=pin, pepper=pepper(), now=now)
    work = lambda s: issue_code(s, library_slug=library_slug, card_number=card, channel=Channel.DESK,  # noqa: E731
                                actor=actor, now=now, pepper=pepper(), platform_slug=platform_slug, answer=answer)
    result = run_and_roll_back(db.session, work, late_lock=True) if dry_run else write(work, late_lock=True)
    if as_json:
        answer = {**result.as_json(), "message": describe_issue(result, dry_run=dry_run)}
        if dry_run:  # nothing was handed out: no code to name
            answer.update(dry_run=True, at=now.isoformat(), code=None)
        click.echo(json.dumps(answer, ensure_ascii=False))
    else:
        click.echo(("Próba, nic nie zapisano: " if dry_run else "") + describe_issue(result, dry_run=dry_run))
    if not result.has_code:
        sys.exit(1)


@click.command("pools")
@click.option("--library", "library_slug")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def pools(library_slug, as_json) -> None:
    """Pokazuje pule kodów: ile jest, ile wydano, ile zostało, ile przepadło."""
    from kiosk.domain.pools import pool_summaries

    library_id = library_named(library_slug).id if library_slug else None
    summaries = pool_summaries(db.session, utcnow(), library_id=library_id)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in summaries], ensure_ascii=False))
        return
    if not summaries:
        click.echo("Brak pul kodów.")
        return
    click.echo(f"{'biblioteka':<16} {'platforma':<10} {'ważna':<23} {'razem':>6} {'wydane':>6} "
               f"{'zostało':>7} {'przepadło':>9}")
    for s in summaries:
        span = f"{format_date(s.valid_from)}–{format_date(s.valid_until)}"
        click.echo(f"{s.library:<16} {s.platform:<10} {span:<23} {s.total:>6} {s.issued:>6} "
                   f"{s.left:>7} {s.expired:>9}")


@click.command("slip")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["pdf80", "pdf58", "a6", "escpos"]), default="pdf80",
              show_default=True)
@click.option("--lang", type=click.Choice(list(LANGUAGES)), default="pl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def slip(code, fmt, lang, output: Path) -> None:
    """Drukuje ponownie wydruk wydanego kodu (PDF albo ESC/POS do pliku): liczony i
    zapisany w dzienniku jak każdy ponowny wydruk; tylko kod ważny w tym miesiącu."""
    from kiosk.domain.reprints import (IssuanceRefusal, IssuanceRefused, issuance_of_code, printable_issuance,
                                       reprint)
    from kiosk.storage.models import Channel
    from kiosk.wording.slips import slip_for_issuance

    issuance_id = issuance_of_code(db.session, code)
    actor = cli_actor()
    try:
        if issuance_id is None:
            raise IssuanceRefused(IssuanceRefusal.NOT_FOUND, code=code)
        printable_issuance(db.session, issuance_id, None, utcnow())
        model = slip_for_issuance(db.session, issuance_id, lang)
        output.write_bytes(_rendered(model, fmt))
        # Counted once the slip exists; a refusal in between (withdrawn meanwhile) removes it.
        write(lambda s: reprint(s, issuance_id=issuance_id, library_id=None, actor=actor, channel=Channel.DESK,
                                now=utcnow(), format=fmt))
    except IssuanceRefused as refused:
        output.unlink(missing_ok=True)
        refuse_because(refused, f"Kod {code}: ")
    click.echo(f"Zapisano wydruk {model.slip_id} ({fmt}) do {output}.")


def _rendered(model, fmt: str) -> bytes:
    """The slip in one format, importing only its renderer (python-escpos loads its
    printer database on import; reportlab is large)."""
    if fmt == "escpos":
        from printing.escpos import render_escpos

        return render_escpos(model)
    from printing.pdf import render_pdf

    return render_pdf(model, fmt)
