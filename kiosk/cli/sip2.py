"""`kiosk sip2` sets a library's live card check over SIP2; `kiosk check-card`
asks about one card as a kiosk would, and issues nothing (the connection test)."""
from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.cli.common import cli_actor, library_named, refuse_because
from kiosk.domain.clock import utcnow
from kiosk.domain.refusals import Refused
from kiosk.domain.sip2_settings import ENCODINGS, OnFailure, current_sip2, parse_sip2_settings, save_sip2_settings


@click.command("sip2")
@click.option("--library", "library_slug", required=True)
@click.option("--host", help="Adres serwera SIP2 systemu bibliotecznego.")
@click.option("--port", type=int, help="Port serwera SIP2.")
@click.option("--tls/--no-tls", default=None, help="Połączenie szyfrowane TLS.")
@click.option("--ca-file", help="Z --tls: plik z certyfikatem CA serwera.")
@click.option("--login", "login_user", help="Użytkownik SIP2 (komunikat 93); bez niego bez logowania.")
@click.option("--password", envvar="KIOSK_SIP2_PASSWORD",
              help="Hasło użytkownika SIP2 (nigdy nie jest pokazywane); lepiej w zmiennej KIOSK_SIP2_PASSWORD.")
@click.option("--institution", help="Identyfikator instytucji (pole AO).")
@click.option("--location", help="Lokalizacja terminala (pole CP).")
@click.option("--encoding", type=click.Choice(ENCODINGS), help="Kodowanie znaków serwera.")
@click.option("--timeout", help="Ile sekund czekać na odpowiedź, np. 3 albo 2,5 (domyślnie 3).")
@click.option("--on-failure", type=click.Choice([choice.value for choice in OnFailure]),
              help="Gdy system nie odpowiada: refuse (odmowa) albo registry (zaimportowany rejestr kart).")
@click.option("--require-pin/--no-require-pin", default=None, help="Kiosk pyta czytelnika o PIN.")
@with_appcontext
def sip2(library_slug, **options) -> None:
    """Ustawia sprawdzanie kart biblioteki na żywo przez SIP2."""
    library = library_named(library_slug)
    library_id = library.id
    current = current_sip2(db.session, library_id)
    # An option left out keeps its value; --login "" is given, and turns the login off.
    values = {key: value for key, value in options.items() if value is not None}
    try:
        form = parse_sip2_settings(values, current)
    except Refused as refused:
        refuse_because(refused)
    actor, reader_pepper = cli_actor(), pepper()
    changed = write(lambda s: save_sip2_settings(s, library_id, form, pepper=reader_pepper, actor=actor,
                                                 now=utcnow()))
    click.echo(f"SIP2 dla {library_slug}: {form.host}:{form.port}"
               f"{' (TLS)' if form.tls else ''}, {form.encoding}, {form.timeout:g} s, "
               f"bez odpowiedzi: {form.on_failure.value}, PIN: {'tak' if form.require_pin else 'nie'}"
               f"{'' if changed else ' (bez zmian)'}.")


@click.command("check-card")
@click.option("--library", "library_slug", required=True)
@click.option("--card", required=True, help="Numer karty czytelnika.")
@click.option("--pin", default=None, help="PIN czytelnika (sprawdza go system biblioteki).")
@click.option("--json", "as_json", is_flag=True, help="Wynik jako obiekt JSON.")
@with_appcontext
def check_card(library_slug, card, pin, as_json) -> None:
    """Sprawdza kartę tak jak kiosk, niczego nie wydając: test połączenia z systemem biblioteki."""
    from kiosk.domain.library_system import check_card_now
    from kiosk.wording.library_system import describe_card_check

    report = check_card_now(db.session, library_named(library_slug), card, pin=pin, pepper=pepper(), now=utcnow())
    if as_json:
        click.echo(json.dumps(report.as_json(), ensure_ascii=False))
    else:
        click.echo(describe_card_check(report))
    if not report.accepted:
        sys.exit(1)
