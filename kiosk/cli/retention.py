"""`kiosk purge`: readers' traces older than the kept months removed, the monthly
figures of the reports kept (kiosk.domain.retention). The server runs the same
purge once a day (kiosk.app.background); this is for an operator, or cron."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.cli.common import cli_actor, refuse_because
from kiosk.domain.clock import format_date, utcnow


@click.command("purge")
@click.option("--older-than", "months", type=int,
              help="Ile miesięcy danych zostaje (domyślnie ustawienie konsorcjum, zwykle 24).")
@click.option("--dry-run", is_flag=True, help="Tylko policz, co zostałoby usunięte; niczego nie zmienia.")
@with_appcontext
def purge_command(months, dry_run) -> None:
    """Usuwa dane czytelników (klucze, końcówki kart, notatki, adresy) starsze niż
    podana liczba miesięcy; liczby w raportach miesięcznych zostają."""
    from kiosk.domain.retention import kept_months, run_purge
    from kiosk.domain.settings import SettingsRefused

    actor = cli_actor()
    if months is None:
        months = kept_months(db.session)
    try:
        done = run_purge(db.session, months=months, now=utcnow(), actor=actor, dry_run=dry_run)
    except SettingsRefused as refused:
        refuse_because(refused, "Nic nie usunięto: ")
    lead = ("Próba, nic nie zapisano: usunięto by" if dry_run else "Usunięto")
    click.echo(f"{lead} dane czytelników sprzed {format_date(done.cut_off)} (starsze niż {done.months} mies.): "
               f"wydania {done.issuances}, zdarzenia w dzienniku {done.events}, powody wycofania kodów "
               f"{done.void_reasons}, e-maile {done.outbox}, odpowiedzi API {done.api_answers}, "
               f"zliczone próby {done.limit_hits}.")
