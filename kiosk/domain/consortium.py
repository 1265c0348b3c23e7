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


def pepper_known(session: Session, pepper: str) -> bool:
    """True when the database was used with this pepper (a read: every start of the
    app asks, and a read takes no write lock); PepperMismatch for another one."""
    settings = consortium_row(session)
    if settings is None or settings.pepper_check is None:
        return False
    _compare(settings.pepper_check, pepper)
    return True


def guard_pepper(session: Session, pepper: str) -> None:
    """Refuse to run with a reader-key pepper other than the one the database was
    used with; remember the pepper's fingerprint on first use. Runs in a unit of
    work; does nothing before `kiosk db upgrade` has made the schema."""
    settings = consortium(session)
    if settings.pepper_check is None:
        settings.pepper_check = reader_key(pepper, "kodomat pepper check")
    else:
        _compare(settings.pepper_check, pepper)


def _compare(recorded: str, pepper: str) -> None:
    if recorded != reader_key(pepper, "kodomat pepper check"):
        raise PepperMismatch(
            "reader-pepper.key in the instance folder is not the one this database was used with: "
            "restore the instance folder from its backup (or set KIOSK_INSTANCE to it). Starting with "
            "another pepper would let every reader get a second code.")
