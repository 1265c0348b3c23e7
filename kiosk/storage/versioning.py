"""The settings version: every change to a table the issuing path keeps in memory
(kiosk.domain.snapshot) replaces consortium.settings_version in the same
transaction, so every process sees at its next look that its copy is old.

Changes through the ORM are caught by a before_flush hook on every session, and
UPDATE/DELETE statements run through a session by a do_orm_execute hook; a change
made past both (raw SQL) must call bump_settings_version itself."""
from __future__ import annotations

import secrets
from itertools import chain

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from kiosk.storage.models import ClosedDay, Consortium, Kiosk, Library, Platform, Pool, RuleSet, Sip2Setting

CACHED = (Library, Platform, Consortium, RuleSet, Sip2Setting, ClosedDay, Kiosk, Pool)
_CACHED_TABLES = frozenset(model.__table__ for model in CACHED)


def new_version() -> str:
    return secrets.token_hex(8)


def bump_settings_version(session: Session) -> None:
    # On the connection, not the session: no autoflush from inside a flush.
    session.connection().execute(update(Consortium.__table__).values(settings_version=new_version()))


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session: Session, _context, _instances) -> None:
    changed = chain(session.new, session.deleted, (obj for obj in session.dirty if session.is_modified(obj)))
    if any(isinstance(obj, CACHED) for obj in changed):
        bump_settings_version(session)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_statement(state) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if table is not None and table in _CACHED_TABLES:
        bump_settings_version(state.session)
