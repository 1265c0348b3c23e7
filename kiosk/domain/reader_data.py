"""Everything Kodomat keeps about one card in one library: the reader's right of
access (GDPR art. 15), for the desk, the admin panel and `kiosk reader-data`.

A card is known only by its reader key (kiosk.domain.readers); what names that key,
or an issuance, code or message of it, is the reader's: the issuances with their
codes, the card register's row, the outbox's messages, the log's events, the rate
limits' hits counted against the card, and the API's kept answers with its codes.
What names no reader is not here, and cannot be: a refused card's event (the log
keeps no card, by design), an e-mail address's limit hits (an address, not a card,
and shared across libraries), a refused API request's kept answer (its key is an
HMAC of the request, PIN included). Only this library's rows are read."""
from __future__ import annotations

import enum
import json
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kiosk.domain.actors import Actor
from kiosk.domain.cards import CardRefusal, card_record, check_format
from kiosk.domain.events import EventKind, events_mentioning, record_event
from kiosk.domain.issuing import card_hint
from kiosk.domain.kiosks import SAME_CARD, WRONG_PINS, WRONG_PINS_DAY, card_subject
from kiosk.domain.limits import LimitKind
from kiosk.domain.readers import normalise_card, reader_key
from kiosk.domain.refusals import Refused
from kiosk.storage.models import (ActivationImport, ApiKey, Code, IdempotentAnswer, Issuance, Kiosk, Library,
                                  LimitHit, OutboxMessage, Platform)

_CHUNK = 100  # OR-ed LIKEs per query: SQLite's parser limits how deep one expression may nest
# Limits whose subject is "<library id>:<card>" (kiosk.domain.kiosks, kiosk.domain.online).
_CARD_LIMITS = (WRONG_PINS.kind, WRONG_PINS_DAY.kind, LimitKind.ONLINE_PIN_ASKS, LimitKind.ONLINE_RESENDS)


class Activation(enum.StrEnum):
    ACTIVATED = "activated"  # on a platform's list of activated codes
    NOT_ACTIVATED = "not_activated"  # not on a list imported after its window ended
    UNKNOWN = "unknown"  # no such list yet


class MessageState(enum.StrEnum):
    SENT = "sent"
    FAILED = "failed"  # given up
    WAITING = "waiting"


@dataclass(frozen=True)
class RegisterRow:
    """The card register's row (imported from the library system)."""

    expires_on: date | None
    blocked: bool
    birth_date: date | None
    last_loan: date | None
    debt_grosze: int | None
    email: str | None


@dataclass(frozen=True)
class IssuanceData:
    issuance_id: int
    code: str
    platform: str  # slug
    platform_name: str
    window_start: date
    window_end: date
    issued_at: datetime
    channel: str
    actor: str  # "kiosk:3", "staff:anna", "api:…", "online": who handed it out
    kiosk: str | None  # the kiosk's name, where a kiosk did
    print_count: int
    card_hint: str | None
    note: str | None
    first_timer: bool
    voided_at: datetime | None
    void_reason: str | None
    replaces: int | None  # the issuance this one replaced (a faulty code), and the one that replaced it
    replaced_by: int | None
    activation: Activation
    activated_on: date | None


@dataclass(frozen=True)
class MessageData:
    message_id: int
    issuance_id: int
    to_address: str
    language: str
    created_at: datetime
    state: MessageState
    attempts: int
    sent_at: datetime | None
    failed_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class EventData:
    at: datetime
    kind: str
    actor: str
    details: dict
    code: str | None  # the code its issuance_id (or code_id) stands for


@dataclass(frozen=True)
class LimitHitData:
    kind: str
    at: datetime


@dataclass(frozen=True)
class ApiAnswerData:
    api_key: str  # the key's name
    created_at: datetime
    status: int
    body: dict


@dataclass(frozen=True)
class ReaderData:
    library_slug: str
    library_name: str
    timezone: str
    reader_key: str
    card_hint: str | None
    generated_at: datetime
    register: RegisterRow | None
    issuances: tuple[IssuanceData, ...]
    messages: tuple[MessageData, ...]
    events: tuple[EventData, ...]
    limit_hits: tuple[LimitHitData, ...]
    api_answers: tuple[ApiAnswerData, ...]

    @property
    def found(self) -> bool:
        """Anything stored about the card ("nothing" is an answer too), earlier
        lookups aside: they are listed, but a card only looked up is not known."""
        return bool(self.register or self.issuances or self.messages or self.limit_hits or self.api_answers
                    or any(event.kind != EventKind.READER_DATA for event in self.events))


def card_refusal(library: Library, card: str) -> CardRefusal | None:
    """Why a typed card cannot be looked up: empty, or nothing like a card number.
    A card-like number the library's pattern no longer takes is still looked up
    (the pattern may have changed since the card was served)."""
    own = check_format(card, library.card_pattern, library.card_check_digit)
    if own is CardRefusal.FORMAT and check_format(card, None, None) is None:
        return None
    return own


def reader_data(session: Session, library: Library, card: str, pepper: str, now: datetime) -> ReaderData:
    """Everything stored about this card in this library. Refused for a garbage card."""
    card = normalise_card(card)
    refusal = card_refusal(library, card)
    if refusal is not None:
        raise Refused(refusal)
    key = reader_key(pepper, card)
    issuances = _issuances(session, library, key)
    messages = _messages(session, library.id, [i.issuance_id for i in issuances])
    events = _events(session, library.id, key, issuances, messages)
    issuances = _with_replacements(issuances, events)
    record = card_record(session, library.id, key)
    register = RegisterRow(record.expires_on, bool(record.blocked), record.birth_date, record.last_loan,
                           record.debt_grosze, record.email) if record is not None else None
    return ReaderData(
        library_slug=library.slug, library_name=library.name, timezone=library.timezone, reader_key=key,
        card_hint=card_hint(card), generated_at=now, register=register, issuances=tuple(issuances),
        messages=tuple(messages), events=tuple(events), limit_hits=tuple(_limit_hits(session, library.id, card,
                                                                                     pepper)),
        api_answers=tuple(_api_answers(session, library.id, issuances)))


def look_up(session: Session, *, library_id: int, card: str, pepper: str, actor: Actor, now: datetime,
            form: str = "page") -> ReaderData:
    """reader_data, and the lookup logged (who, when, which reader key; never the
    card): a later lookup of the card lists it among the card's events."""
    library = session.get(Library, library_id)
    data = reader_data(session, library, card, pepper, now)
    record_event(session, kind=EventKind.READER_DATA, actor=actor, library_id=library_id, now=now,
                 reader_key=data.reader_key, found=data.found, form=form)
    return data


def _issuances(session: Session, library: Library, key: str) -> list[IssuanceData]:
    reported = dict(session.execute(
        select(ActivationImport.platform_id, func.max(ActivationImport.as_of))
        .where(ActivationImport.library_id == library.id).group_by(ActivationImport.platform_id)).all())
    rows = session.execute(
        select(Issuance, Code, Platform.slug, Platform.name, Kiosk.name)
        .join(Code, Issuance.code_id == Code.id).join(Platform, Issuance.platform_id == Platform.id)
        .outerjoin(Kiosk, Issuance.kiosk_id == Kiosk.id)
        .where(Issuance.library_id == library.id, Issuance.reader_key == key)
        .order_by(Issuance.issued_at, Issuance.id))
    found = []
    for issuance, code, slug, platform_name, kiosk in rows:
        if code.activation_marked_at is not None:
            activation = Activation.ACTIVATED
        elif reported.get(issuance.platform_id) is not None and reported[issuance.platform_id] > issuance.window_end:
            activation = Activation.NOT_ACTIVATED
        else:
            activation = Activation.UNKNOWN
        found.append(IssuanceData(
            issuance_id=issuance.id, code=code.value, platform=slug, platform_name=platform_name,
            window_start=issuance.window_start, window_end=issuance.window_end, issued_at=issuance.issued_at,
            channel=issuance.channel, actor=issuance.actor, kiosk=kiosk, print_count=issuance.print_count,
            card_hint=issuance.card_hint, note=issuance.note, first_timer=bool(issuance.first_timer),
            voided_at=issuance.voided_at, void_reason=code.void_reason if issuance.voided_at else None,
            replaces=None, replaced_by=None, activation=activation, activated_on=code.activated_on))
    return found


def _messages(session: Session, library_id: int, issuance_ids: list[int]) -> list[MessageData]:
    if not issuance_ids:
        return []
    found = session.scalars(select(OutboxMessage).where(OutboxMessage.library_id == library_id,
                                                        OutboxMessage.issuance_id.in_(issuance_ids))
                            .order_by(OutboxMessage.created_at, OutboxMessage.id))
    return [MessageData(
        message_id=m.id, issuance_id=m.issuance_id, to_address=m.to_address, language=m.language,
        created_at=m.created_at, attempts=m.attempts, sent_at=m.sent_at, failed_at=m.failed_at,
        state=MessageState.SENT if m.sent_at else MessageState.FAILED if m.failed_at else MessageState.WAITING,
        last_error=m.last_error) for m in found]


def _events(session: Session, library_id: int, key: str, issuances: list[IssuanceData],
            messages: list[MessageData]) -> list[EventData]:
    ids = [i.issuance_id for i in issuances]
    code_ids = dict(session.execute(select(Issuance.code_id, Issuance.id).where(Issuance.id.in_(ids))).all()) \
        if ids else {}
    found = events_mentioning(session, library_id,
                              {"issuance_id": ids, "replaces_issuance_id": ids, "code_id": list(code_ids),
                               "outbox_id": [m.message_id for m in messages]},
                              {"reader_key": key})
    codes = {i.issuance_id: i.code for i in issuances}
    result = []
    for event in found:
        details = json.loads(event.details or "{}")
        named = details.get("issuance_id")
        if not isinstance(named, int):
            named = code_ids.get(details.get("code_id"))
        result.append(EventData(at=event.at, kind=event.kind, actor=event.actor, details=details,
                                code=codes.get(named)))
    return result


def _with_replacements(issuances: list[IssuanceData], events: list[EventData]) -> list[IssuanceData]:
    """Which issuance replaced which: the log's "replace" events say (both are the reader's)."""
    ours = {i.issuance_id for i in issuances}
    replaced = {e.details["replaces_issuance_id"]: e.details["issuance_id"] for e in events
                if e.kind == EventKind.REPLACE and e.details.get("replaces_issuance_id") in ours
                and e.details.get("issuance_id") in ours}
    replacing = {new: old for old, new in replaced.items()}
    return [replace(i, replaces=replacing.get(i.issuance_id), replaced_by=replaced.get(i.issuance_id))
            for i in issuances]


def _limit_hits(session: Session, library_id: int, card: str, pepper: str) -> list[LimitHitData]:
    """Hits counted against the card: its wrong PINs, PIN asks and resends in this
    library, and its codes shown again at each of the library's kiosks."""
    hashed = card_subject(pepper, card)
    kiosk_ids = session.scalars(select(Kiosk.id).where(Kiosk.library_id == library_id)).all()
    at_kiosks = [f"{kiosk_id}:{hashed}" for kiosk_id in kiosk_ids]
    conditions = [LimitHit.kind.in_([kind.value for kind in _CARD_LIMITS])
                  & (LimitHit.subject == f"{library_id}:{hashed}")]
    if at_kiosks:
        conditions.append((LimitHit.kind == SAME_CARD.kind.value) & LimitHit.subject.in_(at_kiosks))
    rows = session.execute(select(LimitHit.kind, LimitHit.at).where(or_(*conditions))
                           .order_by(LimitHit.at, LimitHit.id))
    return [LimitHitData(kind, at) for kind, at in rows]


def _api_answers(session: Session, library_id: int, issuances: list[IssuanceData]) -> list[ApiAnswerData]:
    """The API's kept answers naming one of the reader's codes, to this library's
    keys or the consortium's (a code is unique per platform: the code and its
    platform name one issuance)."""
    ours = {(i.code, i.platform) for i in issuances}
    if not ours:
        return []
    keys = dict(session.execute(select(ApiKey.id, ApiKey.name).where(
        or_(ApiKey.library_id == library_id, ApiKey.library_id.is_(None)))).all())
    if not keys:
        return []
    mentions = [IdempotentAnswer.body.contains(f'"code": {json.dumps(code, ensure_ascii=False)}', autoescape=True)
                for code in sorted({code for code, _platform in ours})]
    found = {}
    for start in range(0, len(mentions), _CHUNK):
        for answer in session.scalars(select(IdempotentAnswer).where(
                IdempotentAnswer.api_key_id.in_(list(keys)), or_(*mentions[start:start + _CHUNK]))):
            try:
                body = json.loads(answer.body)
            except ValueError:
                continue
            if isinstance(body, dict) and (body.get("code"), body.get("platform")) in ours:
                found[answer.id] = ApiAnswerData(keys[answer.api_key_id], answer.created_at, answer.status, body)
    return [found[n] for n in sorted(found, key=lambda n: (found[n].created_at, n))]
