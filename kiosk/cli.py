"""The `kiosk` command: every core operation for staff, scripts and checks.

Exit codes: 0 done (a reprint too), 1 refused with a message, 2 bad usage."""
from __future__ import annotations

import getpass
import json
import sys
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kiosk import create_app
from kiosk.clock import format_date, format_moment, parse_date, parse_month, utcnow
from kiosk.database import is_busy
from kiosk.extensions import db
from kiosk.channels import issue_now
from kiosk.issuing import Actor, DatabaseBusy
from kiosk.messages import describe_import_refusal, describe_issue
from kiosk.cards import CHECK_DIGITS
from kiosk.models import CardCheckKind, Channel, Library, Platform, Role
from kiosk.pools import ImportRefused, import_pool, pool_summaries
from kiosk.registry import import_cards


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _library(slug: str) -> Library:
    library = db.session.scalar(select(Library).where(Library.slug == slug))
    if library is None:
        known = ", ".join(db.session.scalars(select(Library.slug).order_by(Library.slug))) or "brak"
        raise click.BadParameter(f"nie ma biblioteki „{slug}” (są: {known})", param_hint="--library")
    return library


def _platform(slug: str) -> Platform:
    platform = db.session.scalar(select(Platform).where(Platform.slug == slug))
    if platform is None:
        raise click.BadParameter(f"nie ma platformy „{slug}”", param_hint="--platform")
    return platform


def _refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _date_option(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError:
        raise click.BadParameter(f"„{value}” nie jest datą (RRRR-MM-DD albo DD.MM.RRRR)", param_hint=name)


class KioskGroup(FlaskGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            if not is_busy(exc):
                raise
            _refuse("Baza danych jest zajęta; nic nie wydano ani nie zmieniono. Spróbuj za chwilę.")


@click.group(cls=KioskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Kodomat: kody e-booków dla czytelników bibliotek."""


@main.command("add-library")
@click.argument("slug")
@click.option("--name", required=True, help="Pełna nazwa biblioteki.")
@click.option("--slip-header", help="Tekst na górze wydruku (domyślnie nazwa).")
@click.option("--card-check", type=click.Choice([k.value for k in CardCheckKind]), default="format",
              show_default=True, help="format: tylko wzorzec; registry: lista kart z systemu bibliotecznego.")
@click.option("--card-pattern", help="Wyrażenie regularne numeru karty (po normalizacji).")
@click.option("--check-digit", type=click.Choice(sorted(CHECK_DIGITS)), help="Cyfra kontrolna karty.")
@with_appcontext
def add_library(slug, name, slip_header, card_check, card_pattern, check_digit) -> None:
    """Dodaje bibliotekę."""
    from kiosk.libraries import LibraryExists, add_library as add

    try:
        library = add(db.session, slug=slug, name=name, slip_header=slip_header, card_check=card_check,
                      card_pattern=card_pattern, check_digit=check_digit, actor=_cli_actor(), now=utcnow())
    except LibraryExists:
        _refuse(f"Biblioteka „{slug}” już istnieje.")
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    click.echo(f"Dodano bibliotekę {library.slug}: {library.name}.")


@main.command("consortium")
@click.option("--name", help="Nazwa konsorcjum (lub biblioteki).")
@click.option("--service-end", help="Dzień końca usługi (RRRR-MM-DD).")
@click.option("--activation-url", help="Adres aktywacji kodu dla platformy.")
@click.option("--platform", default="legimi", show_default=True)
@with_appcontext
def consortium_settings(name, service_end, activation_url, platform) -> None:
    """Pokazuje lub zmienia ustawienia konsorcjum."""
    from kiosk.libraries import consortium

    settings = consortium(db.session)
    platform_row = _platform(platform)
    if name:
        settings.name = name
    if service_end:
        settings.service_end = _date_option(service_end, "--service-end")
    if activation_url:
        platform_row.activation_url = activation_url
    db.session.commit()
    end = format_date(settings.service_end) if settings.service_end else "nie ustawiono"
    click.echo(f"{settings.name}; koniec usługi: {end}; {platform_row.name}: {platform_row.activation_url}")


@main.command("import-codes")
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
        window = (_date_option(valid_from, "--valid-from"), _date_option(valid_until, "--valid-until"))
    library, platform = _library(library_slug), _platform(platform_slug)
    data = file.read_bytes()
    db.session.commit()  # parse without holding SQLite's write lock
    try:
        report = import_pool(db.session, library=library, platform=platform, data=data,
                             filename=file.name, window=window, actor=_cli_actor(), now=utcnow(),
                             dry_run=dry_run)
    except ImportRefused as exc:
        _refuse(f"Odrzucono {file.name}: {describe_import_refusal(exc)}")
    span = f"{format_date(report.valid_from)}–{format_date(report.valid_until)}"
    head = "Próba, nic nie zapisano: zaimportowałbym" if dry_run else "Zaimportowano"
    click.echo(f"{head} {report.count} kodów {platform.name} dla {library.slug}, ważnych {span} "
               f"(plik {report.filename}, kolumna {report.code_column}, SHA-256 {report.sha256[:12]}…).")
    if dry_run:
        click.echo("Pierwsze kody: " + ", ".join(report.sample))


@main.command("import-cards")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--library", "library_slug", required=True)
@with_appcontext
def import_cards_command(file: Path, library_slug) -> None:
    """Zastępuje rejestr ważnych kart biblioteki eksportem z systemu bibliotecznego."""
    library = _library(library_slug)
    try:
        report = import_cards(db.session, library=library, data=file.read_bytes(),
                              pepper=current_app.config["READER_PEPPER"], actor=_cli_actor(), now=utcnow())
    except ImportRefused as exc:
        _refuse(f"Odrzucono {file.name}: {describe_import_refusal(exc)}")
    click.echo(f"Rejestr kart {library.slug}: {report.count} kart, w tym {report.blocked} zablokowanych, "
               f"{report.with_expiry} z datą ważności.")
    if library.card_check != CardCheckKind.REGISTRY:
        click.echo("Uwaga: ta biblioteka sprawdza tylko format karty; rejestr zadziała po ustawieniu "
                   "sprawdzania „registry”.")


@main.command("issue")
@click.option("--library", "library_slug", required=True)
@click.option("--card", required=True, help="Numer karty czytelnika.")
@click.option("--platform", "platform_slug", default="legimi", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Wynik jako obiekt JSON.")
@with_appcontext
def issue(library_slug, card, platform_slug, as_json) -> None:
    """Wydaje czytelnikowi kod na ten miesiąc (albo ten sam, jeśli już go dostał)."""
    _library(library_slug)
    _platform(platform_slug)
    try:
        result = issue_now(library_slug, card, Channel.DESK, Actor(_cli_actor()), platform_slug)
    except DatabaseBusy:
        _refuse("Baza danych jest zajęta; nic nie wydano. Spróbuj za chwilę.")
    if as_json:
        click.echo(json.dumps({**result.as_json(), "message": describe_issue(result)}, ensure_ascii=False))
    else:
        click.echo(describe_issue(result))
    if not result.has_code:
        sys.exit(1)


@main.command("pools")
@click.option("--library", "library_slug")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def pools(library_slug, as_json) -> None:
    """Pokazuje pule kodów: ile jest, ile wydano, ile zostało, ile przepadło."""
    library_id = _library(library_slug).id if library_slug else None
    summaries = pool_summaries(db.session, utcnow(), library_id=library_id)
    if as_json:
        click.echo(json.dumps([s.as_json() for s in summaries], ensure_ascii=False))
        return
    if not summaries:
        click.echo("Brak pul kodów.")
        return
    click.echo(f"{'biblioteka':<16} {'platforma':<9} {'ważna':<23} {'razem':>6} {'wydane':>6} "
               f"{'zostało':>7} {'przepadło':>9}")
    for s in summaries:
        span = f"{format_date(s.valid_from)}–{format_date(s.valid_until)}"
        click.echo(f"{s.library:<16} {s.platform:<9} {span:<23} {s.total:>6} {s.issued:>6} "
                   f"{s.left:>7} {s.expired:>9}")


@main.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--library", "library_slug", help="Biblioteka (nie dotyczy administratora konsorcjum).")
@with_appcontext
def create_user(username, role, library_slug) -> None:
    """Zakłada konto pracownika i wypisuje wygenerowane hasło."""
    from kiosk.accounts import UserExists, create_user as create

    if role != Role.CONSORTIUM_ADMIN and not library_slug:
        raise click.UsageError("podaj --library dla tej roli")
    library_id = _library(library_slug).id if library_slug and role != Role.CONSORTIUM_ADMIN else None
    try:
        _user, password = create(db.session, username=username, role=role, library_id=library_id,
                                 actor=_cli_actor(), now=utcnow())
    except UserExists:
        _refuse(f"Użytkownik „{username}” już istnieje.")
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    click.echo(f"Utworzono konto {username} ({role}). Hasło (zapisz je, nie pokażę go ponownie): {password}")


@main.command("demo")
@with_appcontext
def demo() -> None:
    """Gdy baza jest pusta: dodaje demonstracyjną bibliotekę z pulą na bieżący miesiąc."""
    from kiosk.demo import seed_demo

    outcome = seed_demo(db.session, instance=Path(current_app.instance_path), now=utcnow())
    click.echo(outcome)
    from kiosk.demo import demo_kiosk_link
    token = demo_kiosk_link(db.session, now=utcnow())
    if token:
        click.echo(f"Kiosk demonstracyjny: otwórz {enrol_url(token)}")
        from kiosk.demo import DEMO_ADMIN, demo_admin_password
        password = demo_admin_password(db.session, now=utcnow())
        base = current_app.config["KIOSK_BASE_URL"].rstrip("/")
        click.echo(f"Stanowisko i panel: {base}/login — użytkownik {DEMO_ADMIN}, hasło {password}")


@main.command("enroll-kiosk")
@click.option("--library", "library_slug", required=True)
@click.option("--name", required=True, help="Nazwa kiosku, np. „Hol, parter”.")
@click.option("--printer", default="browser", show_default=True,
              help="browser, cups:KOLEJKA, escpos-tcp:HOST[:PORT], escpos-usb:VID:PID, escpos-file:ŚCIEŻKA")
@with_appcontext
def enroll_kiosk(library_slug, name, printer) -> None:
    """Dopisuje kiosk i wypisuje jednorazowy link, który trzeba otworzyć na kiosku."""
    from kiosk.kiosks import enrol_kiosk
    from printing.printers import PrinterSettingError, printer_from_setting

    try:
        printer_from_setting(printer)
    except PrinterSettingError as exc:
        raise click.BadParameter(str(exc), param_hint="--printer")
    enrolment = enrol_kiosk(db.session, library=_library(library_slug), name=name, printer=printer,
                            actor=_cli_actor(), now=utcnow())
    click.echo(f"Kiosk „{name}” (nr {enrolment.kiosk.id}). Otwórz na kiosku ten link "
               f"(działa raz, do {format_moment(enrolment.expires_at)}):")
    click.echo(enrol_url(enrolment.token))


@main.command("slip")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["pdf80", "pdf58", "a6", "escpos"]), default="pdf80",
              show_default=True)
@click.option("--lang", type=click.Choice(["pl", "en", "uk"]), default="pl", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def slip(code, fmt, lang, output: Path) -> None:
    """Drukuje ponownie wydruk wydanego kodu (PDF albo ESC/POS do pliku)."""
    from kiosk.slips import live_issuance_of_code, slip_for_issuance
    from printing.escpos import render_escpos
    from printing.pdf import render_pdf

    issuance = live_issuance_of_code(db.session, code)
    if issuance is None:
        _refuse(f"Kod {code} nie został nikomu wydany (albo został wycofany).")
    model = slip_for_issuance(db.session, issuance.id, lang)
    output.write_bytes(render_escpos(model) if fmt == "escpos" else render_pdf(model, fmt))
    from kiosk.events import record_event
    issuance.print_count += 1
    record_event(db.session, kind="slip_reprint", actor=_cli_actor(), library_id=issuance.library_id,
                 now=utcnow(), issuance_id=issuance.id, format=fmt)
    db.session.commit()
    click.echo(f"Zapisano wydruk {model.slip_id} ({fmt}) do {output}.")


def enrol_url(token: str) -> str:
    return current_app.config["KIOSK_BASE_URL"].rstrip("/") + f"/kiosk/enrol/{token}"


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host, port, threads) -> None:
    """Uruchamia serwer (waitress)."""
    from waitress import serve as waitress_serve

    from kiosk import MIGRATIONS
    from kiosk.database import schema_is_current

    app = create_app()
    with app.app_context():
        if not schema_is_current(db.engine, str(MIGRATIONS)):
            _refuse("Baza danych nie jest przygotowana albo jest starsza niż program: "
                    "uruchom najpierw `kiosk db upgrade`.")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Kodomat: http://{shown}:{port}/  (zatrzymanie: Ctrl+C)")
    waitress_serve(app, host=host, port=port, threads=threads)
