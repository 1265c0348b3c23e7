"""Commands that set Kodomat up: libraries, the consortium, staff accounts,
kiosks, the demo, and the server."""
from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.app.links import enrol_url, public_url
from kiosk.app.units import write
from kiosk.cli import refuse
from kiosk.cli.common import cli_actor, library_named, refuse_because
from kiosk.domain.cards import CHECK_DIGITS
from kiosk.domain.clock import format_date, format_moment, utcnow
from kiosk.storage.models import CardCheckKind, Platform, Role


@click.command("add-library")
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
    from kiosk.domain.libraries import add_library as add
    from kiosk.domain.settings import SettingsRefused, parse_new_library

    actor = cli_actor()
    try:
        new = parse_new_library(slug=slug, name=name, slip_header=slip_header, card_check=card_check,
                                card_pattern=card_pattern, check_digit=check_digit)
        write(lambda s: add(s, new, actor=actor, now=utcnow()))
    except SettingsRefused as refused:
        refuse_because(refused)
    click.echo(f"Dodano bibliotekę {new.slug}: {new.name}.")


@click.command("consortium")
@click.option("--name", help="Nazwa konsorcjum (lub biblioteki).")
@click.option("--service-end", help="Dzień końca usługi (RRRR-MM-DD albo DD.MM.RRRR; pusty: bez końca).")
@click.option("--activation-url", help="Adres aktywacji kodu dla platformy.")
@click.option("--platform", default="legimi", show_default=True)
@click.option("--retention-months", help="Ile miesięcy przechowywać dane czytelników (`kiosk purge` codziennie).")
@with_appcontext
def consortium_settings(name, service_end, activation_url, platform, retention_months) -> None:
    """Pokazuje lub zmienia ustawienia konsorcjum (zmiana trafia do dziennika)."""
    from kiosk.domain.settings import (SettingsRefused, current_consortium_settings, parse_consortium_settings,
                                       save_consortium_settings)

    actor = cli_actor()
    try:
        settings = parse_consortium_settings(
            {"name": name, "service_end": service_end, "activation_url": activation_url,
             "retention_months": retention_months},
            current_consortium_settings(db.session, platform))
        if any(value is not None for value in (name, service_end, activation_url, retention_months)):
            write(lambda s: save_consortium_settings(s, settings, platform, actor, utcnow()))
    except SettingsRefused as refused:
        refuse_because(refused, "Nic nie zapisano: ")
    end = format_date(settings.service_end) if settings.service_end else "nie ustawiono"
    platform_name = db.session.scalar(select(Platform.name).where(Platform.slug == platform)) or platform
    click.echo(f"{settings.name}; koniec usługi: {end}; {platform_name}: {settings.activation_url}; "
               f"dane czytelników: {settings.retention_months} mies.")


@click.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--library", "library_slug", help="Biblioteka (nie dotyczy administratora konsorcjum).")
@with_appcontext
def create_user(username, role, library_slug) -> None:
    """Zakłada konto pracownika i wypisuje wygenerowane hasło."""
    from kiosk.domain.accounts import AccountRefused, create_user as create

    if role != Role.CONSORTIUM_ADMIN and not library_slug:
        raise click.UsageError("podaj --library dla tej roli")
    library_id = library_named(library_slug).id if library_slug and role != Role.CONSORTIUM_ADMIN else None
    actor = cli_actor()
    try:
        password = write(lambda s: create(s, username=username, role=role, library_id=library_id, actor=actor,
                                          now=utcnow(), must_change_password=True)[1])
    except AccountRefused as refused:
        refuse_because(refused)
    click.echo(f"Utworzono konto {username} ({role}). Hasło (zapisz je, nie pokażę go ponownie): {password}")


@click.command("demo")
@with_appcontext
def demo() -> None:
    """Gdy baza jest pusta: dodaje demonstracyjną bibliotekę z pulą na bieżący miesiąc."""
    from kiosk.cli.demo import DEMO_ADMIN, DEMO_SLUG, demo_admin_password, demo_kiosk_link, seed_demo

    click.echo(seed_demo(db.session, instance=Path(current_app.instance_path), now=utcnow()))
    token = demo_kiosk_link(db.session, now=utcnow())
    if token:
        click.echo(f"Kiosk demonstracyjny: otwórz {enrol_url(token)}")
        password = demo_admin_password(db.session, now=utcnow())
        click.echo(f"Stanowisko i panel: {public_url('/login')} — użytkownik {DEMO_ADMIN}, hasło {password}")
        click.echo(f"Formularz dla czytelników: {public_url(f'/r/{DEMO_SLUG}/')} (API: {public_url('/api/v1/docs')})")


@click.command("enroll-kiosk")
@click.option("--library", "library_slug", required=True)
@click.option("--name", required=True, help="Nazwa kiosku, np. „Hol, parter”.")
@click.option("--printer", default="browser", show_default=True,
              help="browser, cups:KOLEJKA, escpos-tcp:HOST[:PORT], escpos-usb:VID:PID, escpos-file:ŚCIEŻKA")
@with_appcontext
def enroll_kiosk(library_slug, name, printer) -> None:
    """Dopisuje kiosk i wypisuje jednorazowy link, który trzeba otworzyć na kiosku."""
    from kiosk.domain.kiosks import check_kiosk_fields, enrol_kiosk
    from kiosk.domain.settings import SettingsRefused
    from printing.printers import PrinterSettingError, printer_from_setting

    try:
        printer_from_setting(printer)
    except PrinterSettingError as exc:
        raise click.BadParameter(str(exc), param_hint="--printer")
    try:
        # The operator may name any printer here; the panel only those in PRINTERS.
        name, printer = check_kiosk_fields(name, printer, allowed_printers=[printer])
    except SettingsRefused as refused:
        refuse_because(refused)
    library_id, actor = library_named(library_slug).id, cli_actor()
    enrolment = write(lambda s: enrol_kiosk(s, library_id=library_id, name=name, printer=printer, actor=actor,
                                            now=utcnow()))
    click.echo(f"Kiosk „{name}” (nr {enrolment.kiosk.id}). Otwórz na kiosku ten link "
               f"(działa raz, do {format_moment(enrolment.expires_at)}):")
    click.echo(enrol_url(enrolment.token))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host, port, threads) -> None:
    """Uruchamia serwer (waitress)."""
    from waitress import serve as waitress_serve

    from kiosk import create_app
    from kiosk.app.factory import MIGRATIONS, waitress_options
    from kiosk.app.logs import configure_logging
    from kiosk.app.background import start_background
    from kiosk.storage.database import schema_is_current

    configure_logging()  # JSON lines on standard error, with each request's id
    app = create_app()
    with app.app_context():
        if not schema_is_current(db.engine, str(MIGRATIONS)):
            refuse("Baza danych nie jest przygotowana albo jest starsza niż program: "
                   "uruchom najpierw `kiosk db upgrade`.")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Kodomat: http://{shown}:{port}/  (zatrzymanie: Ctrl+C)")
    start_background(app)  # the outbox's sender (without MAIL_SERVER: one warning) and the daily purge
    waitress_serve(app, host=host, port=port, threads=threads, **waitress_options(app))
