"""The append-only event log: who did what, for the question "who got this code?".

The log is for people; no limit or decision is read back from it (the pauses and
sign-in limits have their own store, kiosk.domain.limits)."""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import false, func, insert, or_, select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.storage.models import Code, Event, Issuance, Pool


class EventKind(enum.StrEnum):
    # issuing
    ISSUE = "issue"
    REPRINT = "reprint"
    REPRINT_WITHHELD = "reprint_withheld"
    CARD_REFUSED = "card_refused"
    NO_POOL = "no_pool"
    NO_CODES_LEFT = "no_codes_left"
    SERVICE_ENDED = "service_ended"
    NOT_ELIGIBLE = "not_eligible"
    VOID = "void"
    REPLACE = "replace"
    PRINT_FAILED = "print_failed"
    NO_ADDRESS = "no_address"  # the online form: no PIN and no e-mail address to send the code to
    # pools and the card registry
    IMPORT = "import"
    IMPORT_CARDS = "import_cards"
    IMPORT_ACTIVATIONS = "import_activations"
    # libraries and settings
    LIBRARY_ADDED = "library_added"
    SETTINGS = "settings"
    RULES = "rules"
    CLOSED_DAY_ADDED = "closed_day_added"
    CLOSED_DAY_REMOVED = "closed_day_removed"
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
    # e-mail (kiosk.domain.outbox)
    MAIL_SENT_AGAIN = "mail_sent_again"
    # library systems' API keys (kiosk.domain.api_keys)
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"
    # a reader's data shown to staff (GDPR art. 15; kiosk.domain.reader_data)
    READER_DATA = "reader_data"
    # retention (kiosk.domain.retention)
    PURGE = "purge"


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
    event = Event(**_event_row(kind, actor, now, library_id, details))
    session.add(event)
    return event


_INSERT_EVENT = insert(Event.__table__)


def insert_event(session: Session, *, kind: EventKind, actor: Actor, now: datetime,
                 library_id: int | None = None, **details) -> None:
    """The same row, written at once by one INSERT: the issuing path's way, which
    has no ORM objects to flush and spares the unit of work."""
    session.connection().execute(_INSERT_EVENT, _event_row(kind, actor, now, library_id, details))


def _event_row(kind: EventKind, actor: Actor, now: datetime, library_id: int | None, details: dict) -> dict:
    return {"at": now, "library_id": library_id, "actor": actor.label, "kind": EventKind(kind).value,
            "details": json.dumps({key: _jsonable(value) for key, value in details.items()},
                                  ensure_ascii=False, sort_keys=True)}


# -- reading the log: a page of events, filtered ---------------------------------------

LOG_PAGE = 200


@dataclass(frozen=True)
class LogFilters:
    kind: str = ""
    who: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    code: str = ""


@dataclass(frozen=True)
class LogRow:
    """An event with its details, and the codes its ids stand for (issuance_id and
    code_id are the database's; people know the code and the slip)."""

    event: Event
    details: dict
    codes: dict[str, str]  # "issuance_id"/"code_id"/"replaces_issuance_id" -> the code


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    page: int
    has_newer: bool
    has_older: bool
    kinds: list[str]


def _id_mention(key: str, value: int):
    """Events whose details name this id under this key (the details are JSON with
    sorted keys, written by record_event, so `"key": 42` ends with "," or "}")."""
    return or_(Event.details.like(f'%"{key}": {int(value)},%'), Event.details.like(f'%"{key}": {int(value)}}}%'))


_MENTIONS_PER_QUERY = 100  # SQLite's parser limits how deep one expression may nest


def events_mentioning(session: Session, library_id: int, ids: dict[str, list[int]],
                      texts: dict[str, str] | None = None) -> list[Event]:
    """A library's events whose details name one of these ids under its key (or
    this text under its key), oldest first: everything the log says of a reader's
    issuances, codes and messages (kiosk.domain.reader_data)."""
    mentions = [_id_mention(key, n) for key, values in ids.items() for n in sorted(set(values))]
    mentions += [Event.details.contains(f'"{key}": {json.dumps(value, ensure_ascii=False)}', autoescape=True)
                 for key, value in (texts or {}).items()]
    found: dict[int, Event] = {}
    for start in range(0, len(mentions), _MENTIONS_PER_QUERY):
        chunk = mentions[start:start + _MENTIONS_PER_QUERY]
        for event in session.scalars(select(Event).where(Event.library_id == library_id, or_(*chunk))):
            found[event.id] = event
    return sorted(found.values(), key=lambda event: (event.at, event.id))


def _code_filter(session: Session, code: str, library_id: int | None):
    value = code.strip().upper()
    code_query = select(Code.id).where(func.upper(Code.value) == value)
    if library_id is not None:
        code_query = code_query.join(Pool, Code.pool_id == Pool.id).where(Pool.library_id == library_id)
    code_ids = list(session.scalars(code_query))
    issuance_ids = list(session.scalars(select(Issuance.id).where(Issuance.code_id.in_(code_ids)))) \
        if code_ids else []
    mentions = [_id_mention("code_id", n) for n in code_ids]
    mentions += [_id_mention(key, n) for n in issuance_ids for key in ("issuance_id", "replaces_issuance_id")]
    return or_(*mentions) if mentions else false()


def event_log(session: Session, *, library_id: int | None, filters: LogFilters, page: int = 1,
              per_page: int = LOG_PAGE) -> LogPage:
    """One page (newest first) of a library's log, or with library_id None of what
    belongs to no library."""
    scope = Event.library_id == library_id if library_id is not None else Event.library_id.is_(None)
    query = select(Event).where(scope)
    if filters.kind:
        query = query.where(Event.kind == filters.kind)
    if filters.who:
        query = query.where(Event.actor.contains(filters.who, autoescape=True))
    if filters.since is not None:
        query = query.where(Event.at >= filters.since)
    if filters.until is not None:
        query = query.where(Event.at < filters.until)
    if filters.code.strip():
        query = query.where(_code_filter(session, filters.code, library_id))
    page = max(page, 1)
    events = list(session.scalars(query.order_by(Event.at.desc(), Event.id.desc())
                                  .offset((page - 1) * per_page).limit(per_page + 1)))
    has_older, events = len(events) > per_page, events[:per_page]
    details = [json.loads(event.details or "{}") for event in events]
    codes = _codes_named(session, details)
    # Only ids name a code; other details may be lists (a register import's facts).
    rows = [LogRow(event, data, {key: codes[(key, value)] for key, value in data.items()
                                 if isinstance(value, int) and (key, value) in codes})
            for event, data in zip(events, details)]
    kinds = sorted(session.scalars(select(Event.kind).where(scope).distinct()))
    return LogPage(rows=rows, page=page, has_newer=page > 1, has_older=has_older, kinds=kinds)


def _codes_named(session: Session, details: list[dict]) -> dict[tuple[str, int], str]:
    """(key, id) -> the code's value, for every issuance and code id on the page."""
    issuance_ids = {d[key] for d in details for key in ("issuance_id", "replaces_issuance_id")
                    if isinstance(d.get(key), int)}
    code_ids = {d["code_id"] for d in details if isinstance(d.get("code_id"), int)}
    by_issuance = dict(session.execute(select(Issuance.id, Code.value).join(Code, Issuance.code_id == Code.id)
                                       .where(Issuance.id.in_(issuance_ids))).all()) if issuance_ids else {}
    by_code = dict(session.execute(select(Code.id, Code.value).where(Code.id.in_(code_ids))).all()) \
        if code_ids else {}
    named = {(key, n): value for n, value in by_issuance.items() for key in ("issuance_id", "replaces_issuance_id")}
    named.update({("code_id", n): value for n, value in by_code.items()})
    return named
