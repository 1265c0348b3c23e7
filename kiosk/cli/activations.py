"""Importing a platform's list of activated codes (kiosk.domain.activations)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from kiosk.app.extensions import db
from kiosk.app.units import write
from kiosk.cli.common import cli_actor, library_named, platform_named, refuse_because
from kiosk.cli.codes import read_upload
from kiosk.domain.clock import utcnow


@click.command("import-activations")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--library", "library_slug", required=True)
@click.option("--platform", "platform_slug", default="legimi", show_default=True)
@with_appcontext
def import_activations_command(file: Path, library_slug, platform_slug) -> None:
    """Oznacza jako aktywowane kody z listy aktywacji z panelu platformy (XLSX, XLS lub CSV)."""
    from kiosk.domain.activations import import_activations, prepare_activations
    from kiosk.domain.pool_files import ImportRefused
    from kiosk.wording.messages import activations_imported

    library, platform = library_named(library_slug), platform_named(platform_slug)
    library_id, platform_id, actor = library.id, platform.id, cli_actor()
    db.session.rollback()  # read the file outside any transaction
    try:
        prepared = prepare_activations(read_upload(file))
        report = write(lambda s: import_activations(s, library_id=library_id, platform_id=platform_id,
                                                    prepared=prepared, filename=file.name, actor=actor,
                                                    now=utcnow()))
    except ImportRefused as refused:
        refuse_because(refused, f"Odrzucono {file.name}: ")
    click.echo(activations_imported(report))
