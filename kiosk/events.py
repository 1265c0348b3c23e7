"""The append-only event log."""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy.orm import Session

from kiosk.models import Event


def _jsonable(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (tuple, set)):
        return [_jsonable(item) for item in value]
    return value


def record_event(session: Session, *, kind: str, actor: str, now: datetime,
                 library_id: int | None = None, **details) -> Event:
    """Adds an event to the session; it is committed with the change it records."""
    event = Event(
        at=now,
        library_id=library_id,
        actor=actor,
        kind=kind,
        details=json.dumps({key: _jsonable(value) for key, value in details.items()},
                           ensure_ascii=False, sort_keys=True),
    )
    session.add(event)
    return event
