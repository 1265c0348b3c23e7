"""`kiosk api-key`: API keys for library systems (kiosk.web.api)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.cli.common import cli_actor, library_named, refuse_because
from kiosk.domain.clock import format_moment, utcnow


@click.command("api-key")
@click.option("--library", "library_slug", help="Biblioteka, której system będzie używał klucza.")
@click.option("--consortium", is_flag=True, help="Klucz konsorcjum: może wskazać każdą bibliotekę.")
@click.option("--name", help="Nazwa nowego klucza, np. „Sowa OPAC”.")
@click.option("--per-minute", type=int, default=None, help="Limit zapytań na minutę (domyślnie 1000).")
@click.option("--revoke", "revoke_name", metavar="NAME", help="Unieważnia klucz o tej nazwie.")
@click.option("--list", "list_keys", is_flag=True, help="Wypisuje ważne klucze.")
@with_appcontext
def api_key(library_slug, consortium, name, per_minute, revoke_name, list_keys) -> None:
    """Zakłada klucz API dla systemu biblioteki i wypisuje go raz; --revoke unieważnia, --list wypisuje."""
    from kiosk.domain.api_keys import ApiKeyRefused, create_key, live_keys, revoke_key

    actions = [action for action, given in (("--name", name), ("--revoke", revoke_name), ("--list", list_keys))
               if given]
    if len(actions) != 1:
        raise click.UsageError("podaj jedno z: --name (nowy klucz), --revoke NAZWA albo --list")
    if library_slug and consortium:
        raise click.UsageError("podaj --library albo --consortium, nie oba")
    if not list_keys and not (library_slug or consortium):
        raise click.UsageError("podaj --library SKRÓT albo --consortium")
    if per_minute is not None and not name:
        raise click.UsageError("--per-minute działa tylko z --name")
    library = library_named(library_slug) if library_slug else None
    library_id, actor = (library.id if library else None), cli_actor()
    if list_keys:
        scope = [library_id] if library_slug or consortium else [None, *_all_library_ids()]
        _print_keys(live_keys(db.session, scope))
        return
    try:
        if revoke_name:
            write(lambda s: revoke_key(s, library_id=library_id, name=revoke_name, actor=actor, now=utcnow()))
            click.echo(f"Unieważniono klucz „{revoke_name}”.")
            return
        new = write(lambda s: create_key(s, library_id=library_id, name=name, per_minute=per_minute, actor=actor,
                                         now=utcnow()))
    except ApiKeyRefused as refused:
        refuse_because(refused)
    whose = f"biblioteki {library_slug}" if library_slug else "konsorcjum (każda biblioteka)"
    # The secret last on its line: a script takes the line's last word.
    click.echo(f"Klucz API „{new.name}” {whose}, limit {new.per_minute}/min; zapisz go teraz, nie będzie "
               f"pokazany ponownie: {new.secret}")


def _all_library_ids() -> list[int]:
    from sqlalchemy import select

    from kiosk.storage.models import Library

    return list(db.session.scalars(select(Library.id)))


def _print_keys(keys) -> None:
    if not keys:
        click.echo("Brak ważnych kluczy API.")
        return
    click.echo(f"{'biblioteka':<16} {'nazwa':<24} {'początek':<13} {'limit/min':>9}  {'utworzony':<16}  "
               f"ostatnie użycie")
    for key in keys:
        used = format_moment(key.last_used_at) if key.last_used_at else "—"
        click.echo(f"{key.library or '(konsorcjum)':<16} {key.name:<24} {key.prefix + '…':<13} {key.per_minute:>9}  "
                   f"{format_moment(key.created_at):<16}  {used}")
