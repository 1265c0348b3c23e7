"""`kiosk rules`: a library's rule set, shown and changed (kiosk.domain.rules)."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from kiosk.app.units import write
from kiosk.cli.common import cli_actor, library_named, refuse_because
from kiosk.domain.clock import utcnow
from kiosk.domain.refusals import Refused
from kiosk.domain.rules import RULE_NAMES, parse_changes, rules_as_dict, rules_for, save_rules


@click.command("rules")
@click.option("--library", "library_slug", required=True)
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE",
              help=f"Zmienia jedną zasadę ({', '.join(RULE_NAMES)}); „off” ją wyłącza.")
@click.option("--json", "as_json", is_flag=True, help="Zasady jako obiekt JSON.")
@with_appcontext
def rules(library_slug, settings, as_json) -> None:
    """Pokazuje zasady wydawania kodów biblioteki; --set zmienia zasadę."""
    library = library_named(library_slug)
    library_id = library.id
    changes: dict[str, str] = {}
    for setting in settings:
        name, sep, value = setting.partition("=")
        if not sep:
            raise click.BadParameter(f"„{setting}”: podaj NAZWA=WARTOŚĆ", param_hint="--set")
        changes[name.strip()] = value
    if changes:
        try:
            parsed = parse_changes(changes)
        except Refused as refused:
            refuse_because(refused)
        actor = cli_actor()
        current = write(lambda s: save_rules(s, library_id, parsed, actor, utcnow()))
    else:
        from kiosk.app.extensions import db

        current = rules_for(db.session, library_id)
    shown = rules_as_dict(current)
    if as_json:
        click.echo(json.dumps(shown, ensure_ascii=False))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        click.echo(f"{name:<{width}}  {value}")
