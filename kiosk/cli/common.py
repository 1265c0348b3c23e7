"""What the commands share: the actor a command acts as, a library or platform named
on the command line, a refusal said and exit 1, a date option."""
from __future__ import annotations

import getpass
from datetime import date

import click
from sqlalchemy import select

from kiosk.app.extensions import db
from kiosk.cli import refuse
from kiosk.domain.actors import Actor
from kiosk.domain.clock import parse_date
from kiosk.domain.refusals import Refused
from kiosk.storage.models import Library, Platform


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
