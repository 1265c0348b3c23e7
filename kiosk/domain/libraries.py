"""Adding a library (its settings are checked by kiosk.domain.settings)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.consortium import consortium
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.settings import NewLibrary, SettingProblem, SettingsRefused
from kiosk.storage.models import Library


def add_library(session: Session, new: NewLibrary, *, actor: Actor, now: datetime) -> Library:
    """Adds the library checked by settings.parse_new_library (inside a unit of work)."""
    if session.scalar(select(Library.id).where(Library.slug == new.slug)) is not None:
        raise SettingsRefused(SettingProblem.SLUG_TAKEN, value=new.slug)
    consortium(session)
    library = Library(slug=new.slug, name=new.name, slip_header=new.slip_header, card_check=new.card_check,
                      card_pattern=new.card_pattern, card_check_digit=new.card_check_digit, created_at=now)
    session.add(library)
    session.flush()
    record_event(session, kind=EventKind.LIBRARY_ADDED, actor=actor, library_id=library.id, now=now,
                 slug=new.slug, name=new.name)
    return library
