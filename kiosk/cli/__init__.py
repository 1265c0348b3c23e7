"""The `kiosk` command: every core operation for staff, scripts and checks.

Exit codes: 0 done (a reprint too), 1 refused with a message, 2 bad usage.
Every refusal is said with the same sentence the panel uses (kiosk.wording),
except where the command line has its own options to name."""
from __future__ import annotations

import getpass
import sys
from datetime import date

import click
from flask.cli import FlaskGroup
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from kiosk import create_app
from kiosk.app.extensions import db
from kiosk.domain.actors import Actor
from kiosk.domain.clock import parse_date
from kiosk.domain.refusals import Refused
from kiosk.storage.database import DatabaseBusy, is_busy
from kiosk.storage.models import Library, Platform

BUSY = "Baza danych jest zajęta; nic nie wydano ani nie zmieniono. Spróbuj za chwilę."


def cli_actor() -> Actor:
    try:
        return Actor.cli(getpass.getuser())
    except Exception:  # no user name in some containers
        return Actor.cli(None)


def library_named(slug: str) -> Library:
    library = db.session.scalar(select(Library).where(Library.slug == slug))
    if library is None:
        known = ", ".join(db.session.scalars(select(Library.slug).order_by(Library.slug))) or "brak"
        raise click.BadParameter(f"nie ma biblioteki „{slug}” (są: {known})", param_hint="--library")
    return library


def platform_named(slug: str) -> Platform:
    platform = db.session.scalar(select(Platform).where(Platform.slug == slug))
    if platform is None:
        raise click.BadParameter(f"nie ma platformy „{slug}”", param_hint="--platform")
    return platform


def refuse(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def refuse_because(refused: Refused, prefix: str = "") -> None:
    from kiosk.wording.messages import describe_refusal

    refuse(prefix + describe_refusal(refused, audience="cli"))


def date_option(value: str | None, name: str) -> date | None:
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
        except DatabaseBusy:
            refuse(BUSY)
        except OperationalError as exc:
            if not is_busy(exc):
                raise
            refuse(BUSY)


@click.group(cls=KioskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Kodomat: kody e-booków dla czytelników bibliotek."""


from kiosk.cli import activations, closed_days, codes, rules, setup, sip2  # noqa: E402,F401  (their commands join `main`)
