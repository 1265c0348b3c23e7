"""`kiosk reader-data`: everything stored about a reader's card (GDPR art. 15)."""
from __future__ import annotations

import json
import sys

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import pepper, write
from kiosk.cli.common import cli_actor, library_named, refuse_because
from kiosk.domain.clock import utcnow


@click.command("reader-data")
@click.option("--library", "library_slug", required=True)
@click.option("--card", prompt="Numer karty", hide_input=True,
              help="Numer karty czytelnika. Bez tej opcji program o niego zapyta (numer nie trafi wtedy do "
                   "historii poleceń ani na listę procesów); '-' czyta go ze standardowego wejścia.")
@click.option("--json", "as_json", is_flag=True, help="Wynik jako obiekt JSON (daty ISO 8601).")
@with_appcontext
def reader_data(library_slug, card, as_json) -> None:
    """Wypisuje wszystko, co zapisano o karcie czytelnika w bibliotece (prawo dostępu, RODO art. 15);
    wgląd trafia do dziennika."""
    from kiosk.domain.reader_data import look_up
    from kiosk.domain.refusals import Refused
    from kiosk.wording import reader_data as words

    if card == "-":
        card = sys.stdin.readline().strip()
    library_id, actor = library_named(library_slug).id, cli_actor()
    try:
        data = write(lambda s: look_up(s, library_id=library_id, card=card, pepper=pepper(), actor=actor,
                                       now=utcnow(), form="json" if as_json else "text"))
    except Refused as refused:
        refuse_because(refused, "Karta: ")
    db.session.rollback()
    if as_json:
        click.echo(json.dumps(words.as_json(data), ensure_ascii=False, indent=2))
    else:
        click.echo(words.as_text(data), nl=False)
