"""API keys of library systems (kiosk.web.api): made and revoked by an admin, the
secret shown once and only its SHA-256 kept; checked on every request; counted per
minute (the rate limit and the last use in one row); and the first answer to a POST
sent with an Idempotency-Key, kept so that a retry gets it back.

A secret carries 256 random bits, so a fast hash is enough (no password hash is
needed against guessing), and finding a key by its hash gives an attacker no
timing to learn from: the index compares hashes of what they sent, not secrets."""
from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.events import EventKind, record_event
from kiosk.domain.refusals import Refused
from kiosk.storage.models import Library
from kiosk.storage.remote import ApiKey, ApiUsage, IdempotentAnswer

SECRET_PREFIX = "kdm_"
SHOWN_PREFIX = 12  # "kdm_" and 8 characters: enough to tell keys apart on screen, nothing to guess from
MAX_NAME = 80
MAX_SECRET = 200  # far above a real secret: a longer Authorization is not even hashed
DEFAULT_PER_MINUTE = 1000
MAX_PER_MINUTE = 100_000
USAGE_KEPT = timedelta(hours=1)  # per-minute counts older than this are dropped
ANSWERS_KEPT = timedelta(hours=24)  # an Idempotency-Key is honoured this long
MAX_IDEMPOTENCY_KEY = 255


class ApiKeyProblem(enum.StrEnum):
    NAME = "name"
    NAME_TAKEN = "name_taken"
    PER_MINUTE = "per_minute"
    NOT_FOUND = "not_found"


class ApiKeyRefused(Refused):
    pass


@dataclass(frozen=True)
class NewKey:
    id: int
    name: str
    prefix: str
    secret: str  # shown once; never stored
    library_id: int | None
    per_minute: int


@dataclass(frozen=True)
class KeyRow:
    id: int
    name: str
    prefix: str
    library: str | None  # the library's slug; None for a consortium key
    per_minute: int
    created_at: datetime
    created_by: str
    last_used_at: datetime | None


@dataclass(frozen=True)
class CallingKey:
    """The key a request came with: who calls, and what it may name."""

    id: int
    name: str
    library_id: int | None  # None: a consortium key, any library
    per_minute: int

    def may_name(self, library_id: int) -> bool:
        return self.library_id is None or self.library_id == library_id


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_key_fields(name: str, per_minute) -> tuple[str, int]:
    """The name (1–80 printable characters) and the limit (1–100,000 a minute)."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ApiKeyRefused(ApiKeyProblem.NAME, limit=MAX_NAME)
    try:
        per_minute = int(str(per_minute).strip()) if per_minute not in (None, "") else DEFAULT_PER_MINUTE
    except ValueError:
        raise ApiKeyRefused(ApiKeyProblem.PER_MINUTE, high=MAX_PER_MINUTE) from None
    if not 1 <= per_minute <= MAX_PER_MINUTE:
        raise ApiKeyRefused(ApiKeyProblem.PER_MINUTE, high=MAX_PER_MINUTE)
    return name, per_minute


def _scope(library_id: int | None):
    return ApiKey.library_id.is_(None) if library_id is None else ApiKey.library_id == library_id


def _live_key(session: Session, library_id: int | None, *, key_id: int | None = None,
              name: str | None = None) -> ApiKey:
    query = select(ApiKey).where(_scope(library_id), ApiKey.revoked_at.is_(None))
    query = query.where(ApiKey.id == key_id) if key_id is not None else query.where(ApiKey.name == name)
    key = session.scalar(query)
    if key is None:
        raise ApiKeyRefused(ApiKeyProblem.NOT_FOUND, name=name or "")
    return key


def create_key(session: Session, *, library_id: int | None, name: str, per_minute=None, actor: Actor,
               now: datetime) -> NewKey:
    """A new key of the library (None: of the consortium, for any library). Two
    admins naming a key alike at once: the unique index stops one, whose unit of
    work tries again and is refused as NAME_TAKEN."""
    name, per_minute = check_key_fields(name, per_minute)
    taken = session.scalar(select(ApiKey.id).where(_scope(library_id), ApiKey.name == name,
                                                   ApiKey.revoked_at.is_(None)))
    if taken is not None:
        raise ApiKeyRefused(ApiKeyProblem.NAME_TAKEN, name=name)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(library_id=library_id, name=name, prefix=secret[:SHOWN_PREFIX], secret_sha256=secret_hash(secret),
                 per_minute=per_minute, created_at=now, created_by=actor.label)
    session.add(key)
    session.flush()
    record_event(session, kind=EventKind.API_KEY_CREATED, actor=actor, library_id=library_id, now=now,
                 api_key_id=key.id, name=name, prefix=key.prefix, per_minute=per_minute)
    return NewKey(key.id, name, key.prefix, secret, library_id, per_minute)


def revoke_key(session: Session, *, library_id: int | None, actor: Actor, now: datetime, key_id: int | None = None,
               name: str | None = None) -> str:
    """Revokes a live key of the library (None: a consortium key), by id or name;
    its next request is refused. Returns the key's name."""
    key = _live_key(session, library_id, key_id=key_id, name=name)
    key.revoked_at = now
    record_event(session, kind=EventKind.API_KEY_REVOKED, actor=actor, library_id=library_id, now=now,
                 api_key_id=key.id, name=key.name, prefix=key.prefix)
    return key.name


def live_keys(session: Session, library_ids: list[int | None]) -> list[KeyRow]:
    """The live keys of these libraries (None among them: the consortium's), by
    library and name."""
    scopes = [_scope(library_id) for library_id in library_ids]
    if not scopes:
        return []
    rows = session.execute(select(ApiKey, Library.slug).outerjoin(Library, ApiKey.library_id == Library.id)
                           .where(or_(*scopes), ApiKey.revoked_at.is_(None))
                           .order_by(Library.slug.is_not(None), Library.slug, ApiKey.name)).all()
    return [KeyRow(k.id, k.name, k.prefix, slug, k.per_minute, k.created_at, k.created_by, k.last_used_at)
            for k, slug in rows]


def calling_key(session: Session, secret: str) -> CallingKey | None:
    """The live key whose secret this is; None for anything else (revoked too)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > MAX_SECRET:
        return None
    found = session.execute(select(ApiKey.id, ApiKey.name, ApiKey.library_id, ApiKey.per_minute).where(
        ApiKey.secret_sha256 == secret_hash(secret), ApiKey.revoked_at.is_(None))).first()
    return CallingKey(*found) if found is not None else None


_UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_USAGE = ApiUsage.__table__


def count_use(session: Session, key_id: int, now: datetime) -> int:
    """Counts one request of the key in this minute; returns the minute's count so
    far, this one included (one statement: parallel requests each get their own).
    The first request of a minute also notes the key's last use and drops what is
    no longer needed, so a busy key writes its own row once a minute at most."""
    minute = now.replace(second=0, microsecond=0)
    upsert = _UPSERTS[session.get_bind().dialect.name](_USAGE).values(api_key_id=key_id, minute=minute, requests=1)
    upsert = upsert.on_conflict_do_update(index_elements=[_USAGE.c.api_key_id, _USAGE.c.minute],
                                          set_={"requests": _USAGE.c.requests + 1}).returning(_USAGE.c.requests)
    requests = session.execute(upsert).scalar_one()
    if requests == 1:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        session.execute(delete(ApiUsage).where(ApiUsage.api_key_id == key_id, ApiUsage.minute < now - USAGE_KEPT))
        session.execute(delete(IdempotentAnswer).where(IdempotentAnswer.api_key_id == key_id,
                                                       IdempotentAnswer.created_at < now - ANSWERS_KEPT))
    return requests


# -- idempotent answers --------------------------------------------------------------

class IdempotencyMismatch(Exception):
    """The key was used before with another request: its answer is not this one's."""


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: str


def request_digest(pepper: str, *parts) -> str:
    """What a request asked, keyed with the pepper: the request holds a card number,
    which a plain hash would give away to anyone trying card numbers."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hmac.new(pepper.encode(), text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def stored_answer(session: Session, key_id: int, idempotency_key: str, digest: str,
                  now: datetime) -> StoredAnswer | None:
    """The first answer to this key's request under this Idempotency-Key, if one
    was given in the last 24 hours. IdempotencyMismatch for another request."""
    found = session.execute(select(IdempotentAnswer.request_sha256, IdempotentAnswer.status, IdempotentAnswer.body)
                            .where(IdempotentAnswer.api_key_id == key_id, IdempotentAnswer.key == idempotency_key,
                                   IdempotentAnswer.created_at >= now - ANSWERS_KEPT)).first()
    if found is None:
        return None
    if not hmac.compare_digest(found.request_sha256, digest):
        raise IdempotencyMismatch(idempotency_key)
    return StoredAnswer(found.status, found.body)


def keep_answer(session: Session, key_id: int, idempotency_key: str, digest: str, answer: StoredAnswer,
                now: datetime) -> None:
    """Keeps the answer in the unit of work that did what it says: both are
    committed, or neither. A parallel request under the same key loses on the
    unique index, and its unit of work, tried again, finds this answer."""
    session.execute(delete(IdempotentAnswer).where(  # an expired answer of the same key gives way
        IdempotentAnswer.api_key_id == key_id, IdempotentAnswer.key == idempotency_key,
        IdempotentAnswer.created_at < now - ANSWERS_KEPT))
    session.execute(insert(IdempotentAnswer).values(api_key_id=key_id, key=idempotency_key, request_sha256=digest,
                                                    status=answer.status, body=answer.body, created_at=now))
