"""Libraries and the consortium settings."""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from kiosk.cards import CHECK_DIGITS
from kiosk.events import record_event
from kiosk.models import CardCheckKind, Consortium, Library
from kiosk.readers import reader_key

SLUG = re.compile(r"[a-z0-9][a-z0-9\-]{0,59}")


class LibraryExists(ValueError):
    pass


def consortium(session: Session) -> Consortium:
    """The one settings row, created with defaults on first use."""
    settings = session.scalar(select(Consortium).limit(1))
    if settings is None:
        settings = Consortium(name="Kodomat")
        session.add(settings)
        session.flush()
    return settings


class PepperMismatch(RuntimeError):
    pass


def guard_pepper(session: Session, pepper: str) -> None:
    """Refuse to run with a reader-key pepper other than the one the database was
    used with; remember the pepper's fingerprint on first use."""
    fingerprint = reader_key(pepper, "kodomat pepper check")
    try:
        settings = consortium(session)
    except (OperationalError, ProgrammingError):
        session.rollback()  # no schema yet: `kiosk db upgrade` is about to make it
        return
    if settings.pepper_check is None:
        settings.pepper_check = fingerprint
        session.commit()
    elif settings.pepper_check != fingerprint:
        session.rollback()
        raise PepperMismatch(
            "reader-pepper.key in the instance folder is not the one this database was used with: "
            "restore the instance folder from its backup (or set KIOSK_INSTANCE to it). Starting with "
            "another pepper would let every reader get a second code.")
    else:
        session.rollback()


def add_library(session: Session, *, slug: str, name: str, actor: str, now: datetime,
                slip_header: str | None = None, card_check: str = CardCheckKind.FORMAT.value,
                card_pattern: str | None = None, check_digit: str | None = None) -> Library:
    if not SLUG.fullmatch(slug):
        raise ValueError(f"„{slug}”: skrót to małe litery, cyfry i myślniki")
    if card_pattern:
        try:
            re.compile(card_pattern)
        except re.error as exc:
            raise ValueError(f"wzorzec karty jest błędny: {exc}") from exc
    if check_digit and check_digit not in CHECK_DIGITS:
        raise ValueError(f"nieznana cyfra kontrolna: {check_digit}")
    if session.scalar(select(Library).where(Library.slug == slug)) is not None:
        raise LibraryExists(slug)
    consortium(session)
    library = Library(slug=slug, name=name.strip(), slip_header=slip_header, card_check=card_check,
                      card_pattern=card_pattern, card_check_digit=check_digit, created_at=now)
    session.add(library)
    session.flush()
    record_event(session, kind="library_added", actor=actor, library_id=library.id, now=now,
                 slug=slug, name=name)
    session.commit()
    return library
