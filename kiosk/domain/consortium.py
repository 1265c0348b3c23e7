"""The consortium's one settings row (name, service end) and the guard on the
reader-key pepper."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from kiosk.domain.readers import reader_key
from kiosk.storage.models import Consortium


def consortium_row(session: Session) -> Consortium | None:
    return session.scalar(select(Consortium).limit(1))


def consortium(session: Session) -> Consortium:
    """The one settings row, added with defaults on first use (inside a unit of work)."""
    settings = consortium_row(session)
    if settings is None:
        settings = Consortium(name="Kodomat")
        session.add(settings)
        session.flush()
    return settings


def service_end(session: Session) -> date | None:
    return session.scalar(select(Consortium.service_end).limit(1))


class PepperMismatch(RuntimeError):
    pass


def schema_missing(session: Session) -> bool:
    try:
        consortium_row(session)
    except (OperationalError, ProgrammingError):
        session.rollback()
        return True
    return False


def guard_pepper(session: Session, pepper: str) -> None:
    """Refuse to run with a reader-key pepper other than the one the database was
    used with; remember the pepper's fingerprint on first use. Runs in a unit of
    work; does nothing before `kiosk db upgrade` has made the schema."""
    fingerprint = reader_key(pepper, "kodomat pepper check")
    settings = consortium(session)
    if settings.pepper_check is None:
        settings.pepper_check = fingerprint
    elif settings.pepper_check != fingerprint:
        raise PepperMismatch(
            "reader-pepper.key in the instance folder is not the one this database was used with: "
            "restore the instance folder from its backup (or set KIOSK_INSTANCE to it). Starting with "
            "another pepper would let every reader get a second code.")
