"""`kiosk closed-days`: a library's own closed days (besides weekends and public
holidays), which move a release on the first working day of the month."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.cli.common import cli_actor, date_option, library_named, refuse_because
from kiosk.domain.clock import format_date, local_day, utcnow
from kiosk.domain.refusals import Refused
from kiosk.domain.working_days import add_closed_day, closed_days, remove_closed_day


@click.command("closed-days")
@click.option("--library", "library_slug", required=True)
@click.option("--add", "to_add", metavar="DZIEŃ", help="Dodaje dzień zamknięcia (DD.MM.RRRR albo RRRR-MM-DD).")
@click.option("--remove", "to_remove", metavar="DZIEŃ", help="Usuwa dzień zamknięcia.")
@click.option("--list", "show", is_flag=True, help="Wypisuje dni zamknięcia od dziś, jeden w wierszu.")
@with_appcontext
def closed_days_command(library_slug, to_add, to_remove, show) -> None:
    """Dni zamknięcia biblioteki poza weekendami i świętami: dodaje, usuwa albo wypisuje
    (zmiana trafia do dziennika)."""
    from kiosk.wording.days import weekday_name

    if [to_add is not None, to_remove is not None, show].count(True) != 1:
        raise click.UsageError("podaj dokładnie jedno z --add DZIEŃ, --remove DZIEŃ, --list")
    library = library_named(library_slug)
    library_id, today = library.id, local_day(utcnow(), library.timezone)
    if show:
        days = sorted(closed_days(db.session, library_id, since=today))
        for day in days:
            click.echo(f"{format_date(day)} {weekday_name(day)}")
        if not days:
            click.echo(f"Brak dni zamknięcia od {format_date(today)}.")
        return
    day = date_option(to_add, "--add") if to_add is not None else date_option(to_remove, "--remove")
    change = add_closed_day if to_add is not None else remove_closed_day
    actor = cli_actor()
    try:
        write(lambda s: change(s, library_id, day, actor, utcnow()))
    except Refused as refused:
        refuse_because(refused)
    done = "Dodano" if to_add is not None else "Usunięto"
    click.echo(f"{done} dzień zamknięcia {format_date(day)} ({weekday_name(day)}).")
