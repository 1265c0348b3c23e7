"""The append-only event log: who did what, for the question "who got this code?".

The log is for people; no limit or decision is read back from it (the pauses and
sign-in limits have their own store, kiosk.domain.limits)."""
from __future__ import annotations

import enum
import json
from datetime import date, datetime

from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.storage.models import Event


class EventKind(enum.StrEnum):
    # issuing
    ISSUE = "issue"
    REPRINT = "reprint"
    REPRINT_WITHHELD = "reprint_withheld"
    CARD_REFUSED = "card_refused"
    NO_POOL = "no_pool"
    NO_CODES_LEFT = "no_codes_left"
    SERVICE_ENDED = "service_ended"
    VOID = "void"
    REPLACE = "replace"
    PRINT_FAILED = "print_failed"
    # pools and the card registry
    IMPORT = "import"
    IMPORT_CARDS = "import_cards"
    # libraries and settings
    LIBRARY_ADDED = "library_added"
    SETTINGS = "settings"
    # staff accounts
    USER_CREATED = "user_created"
    USER_ROLE = "user_role"
    USER_ENABLED = "user_enabled"
    USER_DISABLED = "user_disabled"
    PASSWORD_CHANGED = "password_changed"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    LOGOUT = "logout"
    # kiosks
    KIOSK_ENROL_LINK = "kiosk_enrol_link"
    KIOSK_ENROLLED = "kiosk_enrolled"
    KIOSK_CHANGED = "kiosk_changed"
    KIOSK_REVOKED = "kiosk_revoked"
    KIOSK_PAUSED = "kiosk_paused"


def _jsonable(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, set, list)):
        return [_jsonable(item) for item in value]
    return value


def record_event(session: Session, *, kind: EventKind, actor: Actor, now: datetime,
                 library_id: int | None = None, **details) -> Event:
    """Adds an event to the session; it is committed with the change it records."""
    event = Event(
        at=now,
        library_id=library_id,
        actor=actor.label,
        kind=EventKind(kind).value,
        details=json.dumps({key: _jsonable(value) for key, value in details.items()},
                           ensure_ascii=False, sort_keys=True),
    )
    session.add(event)
    return event
